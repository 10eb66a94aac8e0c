//! The local engines, loaded once when the daemon (or an operator command) starts.
//!
//! Which files to load comes from the model manifest: the installed profile's file for each role.
//! Loading reads every weight file, so a missing or corrupt model is reported here, by path, at
//! start — never discovered in the middle of a call.

use models_bundle::{Manifest, Profile, Role};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::LlmBackend;
pub use crate::language_model::LanguageModel;
use models_api::{Embedder, Llm, Stt, Tts};
pub use models_embed::MiniLm;
pub use models_llama::Llama;
pub use models_piper::Piper;
pub use models_whisper::Whisper;

/// Why an engine could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{} does not exist: run `switchboard models install`", .0.display())]
    NotInstalled(PathBuf),
    /// The loading task panicked (a bug in an engine's loader).
    #[error("{0} loading crashed")]
    Crashed(&'static str),
    /// Deliberately absent (a test, or a tool that needs no engines).
    #[error("{0}")]
    Absent(&'static str),
    #[error("the {profile} model set has no {role} file in its manifest")]
    NotInProfile {
        profile: &'static str,
        role: &'static str,
    },
    #[error("{what} ({path}): {reason}")]
    Load {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// The engines the call runtime runs on, by role. The daemon's are the loaded [`Engines`]; the
/// runtime's own tests script fakes, so its behaviours are tested without the models.
pub trait Models: Send + Sync + 'static {
    type Stt: Stt + 'static;
    type Llm: Llm + 'static;
    type Embedder: Embedder + 'static;
    type Voice: Tts + 'static;

    fn stt(&self) -> Arc<Self::Stt>;
    fn llm(&self) -> Arc<Self::Llm>;
    fn embedder(&self) -> Arc<Self::Embedder>;
    /// The voice `name` (e.g. `en_US-joe-medium`).
    fn voice(&self, name: &str) -> Result<Arc<Self::Voice>, EngineError>;
}

/// The loaded engines. Each is `Send + Sync`; share them behind the `Arc`s.
pub struct Engines {
    pub stt: Arc<Whisper>,
    pub llm: Arc<LanguageModel>,
    pub embedder: Arc<MiniLm>,
    dir: PathBuf,
    voices: Mutex<HashMap<String, Arc<Piper>>>,
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Engines {
    /// Loads speech-to-text, the LLM and the embedder of `profile` from `dir`; the LLM decodes
    /// up to `calls` calls' replies together. Voices are loaded by [`Engines::voice`].
    pub fn load(
        dir: &Path,
        profile: Profile,
        backend: &LlmBackend,
        calls: u32,
    ) -> Result<Self, EngineError> {
        let stt = file_for(dir, profile, Role::Stt, "speech-to-text")?;
        let llm = file_for(dir, profile, Role::Llm, "LLM")?;
        let started = std::time::Instant::now();
        let stt = Whisper::load(&models_whisper::WhisperConfig::new(&stt)).map_err(|e| {
            EngineError::Load {
                what: "speech-to-text",
                path: stt.clone(),
                reason: e.to_string(),
            }
        })?;
        // A reply's LLM decoding and the TTS of its first phrase overlap, and both engines
        // spin-wait between steps, so more threads than cores slows both. On a box with more
        // than two cores the LLM leaves one to the voice. On two cores it takes both: until
        // the first phrase is out nothing else runs, and one thread decodes at half the speed.
        // Measured on 2 cores with the small profile: p50 voice-to-voice 1.9 s with one
        // generation thread, 1.3 s with two. Prefill always takes every core.
        let threads = if cores() <= 2 { cores() } else { cores() - 1 };
        // One sequence more than the calls: a call's outcome is extracted in a session of its
        // own while the call's conversation still holds its sequence.
        let sessions = calls.saturating_add(1);
        let llm = LanguageModel::open(backend, &llm, threads, cores(), sessions).map_err(|e| {
            EngineError::Load {
                what: "LLM",
                path: llm.clone(),
                reason: e.to_string(),
            }
        })?;
        let embed_dir = dir.join("all-MiniLM-L6-v2");
        let embedder = MiniLm::load(&embed_dir).map_err(|e| EngineError::Load {
            what: "embedder",
            path: embed_dir.clone(),
            reason: e.to_string(),
        })?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "engines loaded"
        );
        Ok(Engines {
            stt: Arc::new(stt),
            llm: Arc::new(llm),
            embedder: Arc::new(embedder),
            dir: dir.to_owned(),
            voices: Mutex::new(HashMap::new()),
        })
    }
}

impl Models for Engines {
    type Stt = Whisper;
    type Llm = LanguageModel;
    type Embedder = MiniLm;
    type Voice = Piper;

    fn stt(&self) -> Arc<Whisper> {
        Arc::clone(&self.stt)
    }

    fn llm(&self) -> Arc<LanguageModel> {
        Arc::clone(&self.llm)
    }

    fn embedder(&self) -> Arc<MiniLm> {
        Arc::clone(&self.embedder)
    }

    /// Loaded on first use, then shared.
    fn voice(&self, name: &str) -> Result<Arc<Piper>, EngineError> {
        let mut voices = self.voices.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = voices.get(name) {
            return Ok(Arc::clone(v));
        }
        // Every core: a sentence is rendered in its own CPU turn (`models_api::compute`), so it
        // never runs beside a llama.cpp step. One thread took 158 ms for a 10-word sentence's
        // first audio on 2 cores, two took 94 ms (`bench models`).
        let config = models_piper::PiperConfig::in_model_dir(&self.dir, name);
        let voice = Piper::load(&config).map_err(|e| EngineError::Load {
            what: "voice",
            path: config.model.clone(),
            reason: e.to_string(),
        })?;
        let voice = Arc::new(voice);
        voices.insert(name.to_owned(), Arc::clone(&voice));
        Ok(voice)
    }
}

fn cores() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as u32)
}

/// The path of `profile`'s file for `role`, from the built-in manifest (`what` names the role
/// in the error).
pub fn file_for(
    dir: &Path,
    profile: Profile,
    role: Role,
    what: &'static str,
) -> Result<PathBuf, EngineError> {
    Manifest::builtin()
        .files_for(profile)
        .into_iter()
        .find(|f| f.role == role)
        .map(|f| f.path.under(dir))
        .ok_or(EngineError::NotInProfile {
            profile: profile.as_str(),
            role: what,
        })
}
