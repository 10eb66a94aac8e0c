//! Piper text-to-speech behind [`models_api::Tts`]: text → sentences → clauses → IPA from an
//! `espeak-ng` child process → Piper phoneme ids (per the voice's `.onnx.json`) → the VITS model
//! on ONNX Runtime → 22050 Hz i16, one sentence at a time.
//!
//! ONNX Runtime is loaded at run time from a path (`ort`'s `load-dynamic`): nothing is downloaded
//! at build time and nothing links against it. [`init_onnx_runtime`] loads it once per process;
//! [`Piper::load`] calls it with [`PiperConfig::onnx_runtime`].
//!
//! Threading: [`Piper`] is `Send + Sync`. The ONNX session and the espeak-ng process are each
//! behind a lock, so concurrent calls serialise per voice; load one `Piper` per TTS thread for
//! parallel calls. Calls block; run them on dedicated threads. Cancellation is checked before
//! each sentence.
//!
//! Not here: resampling to 8 kHz and G.711 (`media-audio`), pre-rendered fixed prompts (the
//! appliance caches `say` output).

mod espeak;
mod text;
mod voice;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use models_api::{CancelToken, Flow, Speech, Tts, TtsOptions};
use ort::session::Session;
use ort::value::Tensor;

pub use voice::VoiceConfig;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model, voice config or library file does not exist or cannot be read.
    #[error("{path}: {source}")]
    FileUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The voice's `.onnx.json` is malformed or unsupported.
    #[error("Piper voice config {path}: {reason}")]
    VoiceConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The ONNX Runtime library could not be loaded (missing, wrong version).
    #[error("ONNX Runtime {path}: {reason}")]
    OnnxRuntime {
        /// The library file.
        path: PathBuf,
        /// The loader's answer.
        reason: String,
    },
    /// ONNX Runtime refused the voice model.
    #[error("Piper voice model {path}: {reason}")]
    ModelCorrupt {
        /// The file.
        path: PathBuf,
        /// ONNX Runtime's answer.
        reason: String,
    },
    /// The espeak-ng program could not be started.
    #[error("cannot start the phonemizer {program}: {source}")]
    PhonemizerStart {
        /// The program.
        program: PathBuf,
        /// The spawn error.
        source: std::io::Error,
    },
    /// espeak-ng misbehaved (exited, timed out, produced nothing).
    #[error("phonemizer: {0}")]
    Phonemizer(String),
    /// Inference failed.
    #[error("Piper inference: {0}")]
    Inference(String),
}

/// Where the voice and its helpers are.
#[derive(Debug, Clone, PartialEq)]
pub struct PiperConfig {
    /// The voice model (`en_US-joe-medium.onnx`); its config is the same path + `.json`.
    pub model: PathBuf,
    /// The directory holding `espeak-ng-data/` (espeak's `--path`).
    pub espeak_data: PathBuf,
    /// The espeak-ng program.
    pub espeak_program: PathBuf,
    /// The ONNX Runtime shared library (`libonnxruntime.so.1.32.0`).
    pub onnx_runtime: PathBuf,
    /// Intra-op threads for ONNX Runtime.
    pub threads: usize,
}

impl PiperConfig {
    /// The standard model-directory layout: `piper/<voice>.onnx`, `espeak-ng-data/`,
    /// `lib/libonnxruntime.so.1.32.0`, espeak-ng from `PATH`.
    pub fn in_model_dir(dir: &Path, voice: &str) -> Self {
        PiperConfig {
            model: dir.join("piper").join(format!("{voice}.onnx")),
            espeak_data: dir.to_owned(),
            espeak_program: PathBuf::from("espeak-ng"),
            onnx_runtime: dir.join("lib").join("libonnxruntime.so.1.32.0"),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// The environment variable (and value) that keeps ONNX Runtime from starting its telemetry;
/// see [`init_onnx_runtime`].
pub const ORT_TELEMETRY_OFF: (&str, &str) = ("ORT_DISABLE_TELEMETRY", "1");

/// Loads ONNX Runtime from `path` once per process and returns its environment; later calls
/// (any path) return the same one. Other crates that use `ort` (the Silero VAD) must go through
/// this function, as ONNX Runtime allows one environment per process.
pub fn init_onnx_runtime(path: &Path) -> Result<&'static ort::environment::Environment, Error> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    let fail = |reason: String| Error::OnnxRuntime {
        path: path.to_owned(),
        reason,
    };
    if ENV.get().is_none() && !path.is_file() {
        return Err(fail("no such file".into()));
    }
    ENV.get_or_init(|| {
        // ONNX Runtime 1.29+ on Linux starts Microsoft's 1DS telemetry when its environment is
        // created (DNS lookups and uploads to mobile.events.data.microsoft.com), before
        // `DisableTelemetryEvents` can be called; only this variable, read at creation, stops it.
        // The daemon sets it first thing in `main`, before any thread exists; this covers other
        // callers (tests, benches).
        if std::env::var_os(ORT_TELEMETRY_OFF.0).is_none() {
            std::env::set_var(ORT_TELEMETRY_OFF.0, ORT_TELEMETRY_OFF.1);
        }
        ort::init_from(path)
            .map_err(|e| e.to_string())?
            .with_name("switchboard")
            // The API switch as well, for builds that read it.
            .with_telemetry(false)
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| fail(e.clone()))
}

/// A loaded Piper voice. See the crate docs for the threading contract.
pub struct Piper {
    voice: VoiceConfig,
    session: Mutex<Session>,
    espeak: Mutex<espeak::Espeak>,
    model: PathBuf,
}

impl std::fmt::Debug for Piper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Piper")
            .field("model", &self.model)
            .field("voice", &self.voice.espeak_voice)
            .finish()
    }
}

impl Piper {
    /// Loads ONNX Runtime (once), the voice config and model, and starts espeak-ng.
    pub fn load(config: &PiperConfig) -> Result<Self, Error> {
        let environment = init_onnx_runtime(&config.onnx_runtime)?;
        let json = PathBuf::from(format!("{}.json", config.model.display()));
        let voice = VoiceConfig::load(&json)?;
        std::fs::metadata(&config.model).map_err(|source| Error::FileUnreadable {
            path: config.model.clone(),
            source,
        })?;
        let corrupt = |e: String| Error::ModelCorrupt {
            path: config.model.clone(),
            reason: e,
        };
        let session = Session::builder(environment)
            .map_err(|e| corrupt(e.to_string()))?
            .with_intra_threads(config.threads.max(1))
            .map_err(|e| corrupt(e.to_string()))?
            // Idle workers sleep instead of spinning: on a small box the cores go to llama.cpp's
            // next step the moment a sentence is rendered.
            .with_intra_op_spinning(false)
            .map_err(|e| corrupt(e.to_string()))?
            .commit_from_file(&config.model)
            .map_err(|e| corrupt(e.to_string()))?;
        let espeak_data = config.espeak_data.join("espeak-ng-data");
        std::fs::metadata(espeak_data.join("phondata")).map_err(|source| {
            Error::FileUnreadable {
                path: espeak_data.join("phondata"),
                source,
            }
        })?;
        let espeak = espeak::Espeak::start(
            &config.espeak_program,
            &config.espeak_data,
            &voice.espeak_voice,
        )?;
        Ok(Piper {
            voice,
            session: Mutex::new(session),
            espeak: Mutex::new(espeak),
            model: config.model.clone(),
        })
    }

    /// The voice's config.
    pub fn voice(&self) -> &VoiceConfig {
        &self.voice
    }

    /// The IPA Piper is given for one sentence: clauses joined by spaces, each followed by its
    /// punctuation.
    pub fn phonemize(&self, sentence: &str) -> Result<String, Error> {
        let clauses = text::clauses(sentence);
        let texts: Vec<&str> = clauses.iter().map(|c| c.text.as_str()).collect();
        let ipa = self
            .espeak
            .lock()
            .map_err(|_| Error::Phonemizer("lock poisoned".into()))?
            .phonemize(&texts)?;
        let mut out = String::new();
        for (clause, ipa) in clauses.iter().zip(ipa) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&ipa);
            if let Some(t) = clause.terminator {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Renders one sentence to f32 samples in -1..1 (before volume and conversion).
    fn render(&self, sentence: &str, options: &TtsOptions) -> Result<Vec<f32>, Error> {
        let ids = self.voice.phoneme_ids(&self.phonemize(sentence)?);
        let n = ids.len();
        let infer = |e: ort::Error| Error::Inference(e.to_string());
        let input = Tensor::from_array(([1usize, n], ids)).map_err(infer)?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(infer)?;
        let scales = Tensor::from_array((
            [3usize],
            vec![
                self.voice.noise_scale,
                self.voice.length_scale * options.length_scale,
                self.voice.noise_w,
            ],
        ))
        .map_err(infer)?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Inference("lock poisoned".into()))?;
        // The sentence waits for the LLM's current token, not for the rest of the reply.
        let _turn = models_api::compute::cpu_turn();
        let outputs = session
            .run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales])
            .map_err(infer)?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(infer)?;
        Ok(audio.to_vec())
    }
}

/// Peak-normalises (as Piper does), applies `volume` and converts to i16.
fn to_i16(audio: &[f32], volume: f32) -> Vec<i16> {
    let peak = audio.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if peak < 1e-8 {
        return vec![0; audio.len()];
    }
    let gain = volume / peak * 32767.0;
    audio
        .iter()
        .map(|x| (x * gain).clamp(-32768.0, 32767.0) as i16)
        .collect()
}

impl Tts for Piper {
    type Error = Error;

    fn sample_rate(&self) -> u32 {
        self.voice.sample_rate
    }

    fn synthesize(
        &self,
        text: &str,
        options: &TtsOptions,
        cancel: &CancelToken,
        on_audio: &mut dyn FnMut(Speech) -> Flow,
    ) -> Result<usize, Error> {
        let silence =
            (options.sentence_silence.as_secs_f64() * f64::from(self.voice.sample_rate)) as usize;
        let mut delivered = 0;
        for sentence in text::sentences(text) {
            if cancel.is_cancelled() {
                break;
            }
            let started = Instant::now();
            let audio = self.render(&sentence, options)?;
            let mut samples = to_i16(&audio, options.volume);
            samples.resize(samples.len() + silence, 0);
            delivered += 1;
            let speech = Speech {
                text: sentence,
                samples,
                sample_rate: self.voice.sample_rate,
                elapsed: started.elapsed(),
            };
            if on_audio(speech) == Flow::Stop {
                break;
            }
        }
        Ok(delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i16_conversion_normalises_and_applies_volume() {
        assert_eq!(to_i16(&[0.0, 0.5, -0.25], 1.0), vec![0, 32767, -16383]);
        assert_eq!(to_i16(&[0.0, 0.5], 0.5), vec![0, 16383]);
        assert_eq!(to_i16(&[0.0, 0.0], 1.0), vec![0, 0]);
    }

    #[test]
    fn missing_onnx_runtime_names_the_file() {
        let err = init_onnx_runtime(Path::new("/nonexistent/libonnxruntime.so")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/libonnxruntime.so"));
    }
}
