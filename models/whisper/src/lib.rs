//! Speech-to-text with whisper.cpp (through `whisper-rs`, linked statically), behind
//! [`models_api::Stt`].
//!
//! Latency rules applied on every call (DESIGN.md "Latency"): the encoder window is trimmed to
//! the segment ([`models_api::audio_ctx_for`]), the language is fixed, decoding is greedy with no
//! temperature fallback, and no text context is carried between calls (each call is one VAD-cut
//! segment; carrying context would leak one caller's words into the next decode). Decoding
//! stops once a finished sentence has started over (`RepeatGuard`) and the restart is cut from
//! the text ([`without_repeats`]): on a fitted window of a short question, tiny.en otherwise says
//! it again until the token limit, which cost up to 250 ms per phone turn.
//!
//! Threading: [`Whisper`] is `Send + Sync`. The model weights are shared; each concurrent call
//! takes a decoder state from an internal free list (created on first need, kept for reuse, so
//! steady state allocates nothing). Calls block: run them on a blocking thread, never
//! on an async runtime's workers. Cancellation is checked by whisper.cpp's abort callback between
//! compute steps; a cancelled call returns `Ok(None)`.
//!
//! Not here: VAD and endpointing (`media`), resampling to 16 kHz (`media-audio`).
//!
//! ```no_run
//! use models_api::{CancelToken, Stt, SttOptions};
//! let stt = models_whisper::Whisper::load(&models_whisper::WhisperConfig::new("ggml-tiny.en.bin"))?;
//! let audio = vec![0.0f32; 16_000];
//! let t = stt.transcribe(&audio, &SttOptions::default(), &CancelToken::new())?;
//! # Ok::<(), models_whisper::Error>(())
//! ```

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use models_api::{
    audio_ctx_for, AudioContext, CancelToken, Stt, SttOptions, Transcript, TranscriptSegment,
    FULL_AUDIO_CTX, STT_SAMPLE_RATE,
};
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
    WhisperSysContext, WhisperSysState, WhisperTokenData,
};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model file does not exist or cannot be read.
    #[error("whisper model {path}: {source}")]
    ModelUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a whisper.cpp ggml model, or whisper.cpp refused it.
    #[error("whisper model {path}: not a usable whisper.cpp ggml model: {reason}")]
    ModelCorrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// whisper.cpp could not allocate a decoder state (usually out of memory).
    #[error("whisper: cannot create a decoder state: {0}")]
    State(whisper_rs::WhisperError),
    /// whisper.cpp failed while transcribing.
    #[error("whisper: transcription failed: {0}")]
    Inference(whisper_rs::WhisperError),
    /// A language code whisper does not know.
    #[error("whisper: unknown language {0:?}")]
    UnknownLanguage(String),
}

/// How to load the model.
#[derive(Debug, Clone, PartialEq)]
pub struct WhisperConfig {
    /// Path of the ggml model file (e.g. `ggml-tiny.en.bin`).
    pub model: PathBuf,
    /// CPU threads per call.
    pub threads: u32,
    /// Offload to the GPU when built with the `cuda` feature.
    pub use_gpu: bool,
    /// Re-decode at higher temperatures when the greedy result looks degenerate. Off by default:
    /// it can multiply the decode time of a turn.
    pub temperature_fallback: bool,
}

impl WhisperConfig {
    /// Defaults for `model`: threads = available cores, CPU, no fallback.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        WhisperConfig {
            model: model.into(),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get() as u32),
            use_gpu: cfg!(feature = "cuda"),
            temperature_fallback: false,
        }
    }
}

/// A loaded whisper model. See the crate docs for the threading contract.
pub struct Whisper {
    context: WhisperContext,
    idle_states: Mutex<Vec<WhisperState>>,
    config: WhisperConfig,
    /// Also knows end-of-text, the first id that is not text. Boxed: whisper.cpp holds its
    /// address for the length of a `full` call.
    repeat_guard: Box<RepeatGuard>,
}

impl std::fmt::Debug for Whisper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whisper")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// whisper.cpp's file magic, 'ggml' as a little-endian u32.
const GGML_MAGIC: [u8; 4] = 0x6767_6d6c_u32.to_le_bytes();

impl Whisper {
    /// Loads the model and checks it is a whisper.cpp ggml file first, so a wrong or truncated
    /// file is reported by name instead of as a C++ log line.
    pub fn load(config: &WhisperConfig) -> Result<Self, Error> {
        let path = &config.model;
        let unreadable = |source| Error::ModelUnreadable {
            path: path.clone(),
            source,
        };
        let mut magic = [0u8; 4];
        File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .map_err(unreadable)?;
        if magic != GGML_MAGIC {
            return Err(Error::ModelCorrupt {
                path: path.clone(),
                reason: format!("magic {magic:02x?}, expected {GGML_MAGIC:02x?}"),
            });
        }
        // Route whisper.cpp's and its ggml's logs to `tracing` instead of stderr.
        whisper_rs::install_logging_hooks();
        let mut params = WhisperContextParameters::default();
        params.use_gpu(config.use_gpu);
        let context = WhisperContext::new_with_params(path_str(path)?, params).map_err(|e| {
            Error::ModelCorrupt {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        let repeat_guard = Box::new(RepeatGuard::new(&context));
        let whisper = Whisper {
            context,
            idle_states: Mutex::new(Vec::new()),
            config: config.clone(),
            repeat_guard,
        };
        // One state up front: the first call should not pay for the allocation.
        let state = whisper.take_state()?;
        whisper.give_back(state);
        Ok(whisper)
    }

    /// Whether the model is multilingual (tiny.en is not).
    pub fn is_multilingual(&self) -> bool {
        self.context.is_multilingual()
    }

    fn take_state(&self) -> Result<WhisperState, Error> {
        let idle = self.idle_states.lock().ok().and_then(|mut v| v.pop());
        match idle {
            Some(state) => Ok(state),
            None => self.context.create_state().map_err(Error::State),
        }
    }

    fn give_back(&self, state: WhisperState) {
        if let Ok(mut idle) = self.idle_states.lock() {
            idle.push(state);
        }
    }

    fn params<'a>(
        &self,
        options: &'a SttOptions,
        audio_ctx: u32,
        cancel: &'a CancelToken,
    ) -> FullParams<'a, 'a> {
        let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        p.set_n_threads(self.config.threads as i32);
        p.set_language(options.language.as_deref());
        p.set_detect_language(false);
        p.set_translate(false);
        if audio_ctx < FULL_AUDIO_CTX {
            p.set_audio_ctx(audio_ctx as i32);
            // A fitted window holds one utterance; letting whisper start further segments in
            // it makes it repeat the utterance ("… Saturday? What are … Saturday?").
            p.set_single_segment(true);
        }
        p.set_no_context(true);
        p.set_suppress_blank(true);
        p.set_suppress_nst(true);
        p.set_temperature(0.0);
        if !self.config.temperature_fallback {
            p.set_temperature_inc(0.0);
        }
        if options.max_tokens > 0 {
            p.set_max_tokens(options.max_tokens as i32);
        }
        if let Some(prompt) = &options.initial_prompt {
            p.set_initial_prompt(prompt);
        }
        p.set_print_progress(false);
        p.set_print_realtime(false);
        p.set_print_special(false);
        p.set_print_timestamps(false);
        // whisper-rs 0.16's `set_abort_callback_safe` casts its boxed `dyn FnMut` to the
        // closure's own type in the trampoline (type confusion: the encoder then aborts at
        // random), so the raw callback is used with the token as user data.
        #[allow(unsafe_code)]
        // SAFETY: `abort_if_cancelled` only reads a `CancelToken` through the pointer; the token
        // is borrowed by `transcribe` for the whole `full` call these params are consumed by.
        unsafe {
            p.set_abort_callback(Some(abort_if_cancelled));
            p.set_abort_callback_user_data(std::ptr::from_ref(cancel).cast_mut().cast());
        }
        #[allow(unsafe_code)]
        // SAFETY: `stop_repeats` only reads the `RepeatGuard` through the pointer; the guard is
        // boxed in `self`, which outlives every `full` call made with these params.
        unsafe {
            p.set_filter_logits_callback(Some(stop_repeats));
            let guard: &RepeatGuard = &self.repeat_guard;
            p.set_filter_logits_callback_user_data(std::ptr::from_ref(guard).cast_mut().cast());
        }
        p
    }
}

impl Stt for Whisper {
    type Error = Error;

    fn transcribe(
        &self,
        audio: &[f32],
        options: &SttOptions,
        cancel: &CancelToken,
    ) -> Result<Option<Transcript>, Error> {
        let started = Instant::now();
        let audio_len = Duration::from_secs_f64(audio.len() as f64 / f64::from(STT_SAMPLE_RATE));
        if let Some(lang) = options.language.as_deref() {
            if whisper_rs::get_lang_id(lang).is_none() {
                return Err(Error::UnknownLanguage(lang.to_owned()));
            }
        }
        let audio_ctx = match options.audio_context {
            AudioContext::Fit => audio_ctx_for(audio.len()),
            AudioContext::Full => FULL_AUDIO_CTX,
            AudioContext::Fixed(n) => n.clamp(1, FULL_AUDIO_CTX),
        };
        if audio.is_empty() {
            return Ok(Some(Transcript {
                text: String::new(),
                segments: Vec::new(),
                confidence: 0.0,
                audio: audio_len,
                elapsed: started.elapsed(),
                audio_ctx,
            }));
        }
        if cancel.is_cancelled() {
            return Ok(None);
        }
        let mut state = self.take_state()?;
        let result = {
            let _turn = (!cfg!(feature = "cuda")).then(models_api::compute::cpu_turn);
            state.full(self.params(options, audio_ctx, cancel), audio)
        };
        if cancel.is_cancelled() {
            // The state is reset by the next `full`; it is safe to reuse.
            self.give_back(state);
            return Ok(None);
        }
        if let Err(e) = result {
            self.give_back(state);
            return Err(Error::Inference(e));
        }
        let (mut segments, confidence) = self.collect(&state);
        self.give_back(state);
        // A single segment over a fitted window ends where the window does, past the audio.
        for s in &mut segments {
            s.end = s.end.min(audio_len);
            s.start = s.start.min(s.end);
        }
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Some(Transcript {
            text,
            segments,
            confidence,
            audio: audio_len,
            elapsed: started.elapsed(),
            audio_ctx,
        }))
    }
}

impl Whisper {
    /// Segments with their own confidences, and the mean probability over all text tokens.
    fn collect(&self, state: &WhisperState) -> (Vec<TranscriptSegment>, f32) {
        let mut segments = Vec::new();
        let (mut p_sum, mut p_count) = (0.0f32, 0usize);
        for segment in state.as_iter() {
            let (mut s_sum, mut s_count) = (0.0f32, 0usize);
            for i in 0..segment.n_tokens() {
                let Some(token) = segment.get_token(i) else {
                    continue;
                };
                // Ids at or above end-of-text are special (timestamps, language, task).
                if token.token_id() >= self.repeat_guard.eot {
                    continue;
                }
                s_sum += token.token_probability();
                s_count += 1;
            }
            p_sum += s_sum;
            p_count += s_count;
            let text = segment
                .to_str_lossy()
                .map(|t| without_repeats(&t))
                .unwrap_or_default();
            segments.push(TranscriptSegment {
                // whisper.cpp timestamps are in centiseconds.
                start: centis(segment.start_timestamp()),
                end: centis(segment.end_timestamp()),
                text,
                confidence: if s_count == 0 {
                    0.0
                } else {
                    s_sum / s_count as f32
                },
            });
        }
        let confidence = if p_count == 0 {
            0.0
        } else {
            p_sum / p_count as f32
        };
        (segments, confidence)
    }
}

/// whisper.cpp's abort callback: `user_data` is the call's `&CancelToken`.
#[allow(unsafe_code)]
unsafe extern "C" fn abort_if_cancelled(user_data: *mut std::ffi::c_void) -> bool {
    // SAFETY: set in `params` from a `&CancelToken` that outlives the `full` call.
    let token = unsafe { &*user_data.cast::<CancelToken>() };
    token.is_cancelled()
}

/// Ends decoding once a finished sentence or clause has started over: when the tokens after a
/// `.`, `?`, `!` or `,` are the utterance's first [`REPEAT_TOKENS`] tokens again (case and spaces
/// aside), only end-of-text is left possible, and [`without_repeats`] cuts the restart from the
/// text. A caller does not repeat an opening word for word in one breath; whisper on a short
/// fitted window does, until the token limit. Four tokens, so that "I'm sorry, I couldn't …" or
/// "I need a cleaning. I need a filling" go on.
struct RepeatGuard {
    eot: i32,
    /// Per text token: the id of the first token with the same lower-case, trimmed text.
    same_as: Vec<u32>,
    /// Per text token: its text ends with `.`, `?`, `!` or `,`.
    ends_clause: Vec<bool>,
    n_vocab: usize,
}

/// Tokens of the opening that must come again before decoding stops.
const REPEAT_TOKENS: usize = 4;

impl RepeatGuard {
    fn new(context: &WhisperContext) -> Self {
        let texts = (0..context.token_eot().max(0)).map(|id| {
            context
                .token_to_str_lossy(id)
                .map(|s| s.into_owned())
                .unwrap_or_default()
        });
        let mut guard = Self::from_texts(texts);
        guard.n_vocab = usize::try_from(context.n_vocab()).unwrap_or(0);
        guard
    }

    /// From the texts of the text tokens, in id order (end-of-text is the next id).
    fn from_texts(texts: impl Iterator<Item = String>) -> Self {
        let mut first: HashMap<String, u32> = HashMap::new();
        let (mut same_as, mut ends_clause) = (Vec::new(), Vec::new());
        for (id, text) in texts.enumerate() {
            let key = text.trim().to_lowercase();
            ends_clause.push(key.ends_with(['.', '?', '!', ',']));
            same_as.push(*first.entry(key).or_insert(id as u32));
        }
        RepeatGuard {
            eot: same_as.len() as i32,
            same_as,
            ends_clause,
            n_vocab: 0,
        }
    }

    /// Whether the decoded tokens `so_far` end with the opening said again after a clause.
    fn started_over(&self, so_far: &[i32]) -> bool {
        let words: Vec<u32> = so_far
            .iter()
            .filter_map(|id| usize::try_from(*id).ok())
            .filter(|&i| i < self.same_as.len())
            .map(|i| self.same_as[i])
            .collect();
        let n = words.len();
        if n < 2 * REPEAT_TOKENS + 1 {
            return false;
        }
        let restart = &words[n - REPEAT_TOKENS..];
        let before = words[n - REPEAT_TOKENS - 1] as usize;
        restart == &words[..REPEAT_TOKENS] && self.ends_clause[before]
    }
}

/// The text with a restart of its own beginning cut off ("Tell me about prices. Tell me
/// about"): what is left where `RepeatGuard` stopped whisper, or where the token limit did.
/// The restart's last word may be cut short ("… there, which didn't sw").
pub fn without_repeats(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let key = |w: &str| {
        w.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let keys: Vec<String> = words.iter().map(|w| key(w)).collect();
    for start in 3..keys.len() {
        let tail = &keys[start..];
        let Some((last, whole)) = tail.split_last() else {
            continue;
        };
        if tail.len() >= 3
            && whole == &keys[..whole.len()]
            && keys[whole.len()].starts_with(last.as_str())
        {
            return words[..start].join(" ");
        }
    }
    words.join(" ")
}

/// whisper.cpp's logits filter: `user_data` is the model's [`RepeatGuard`].
#[allow(unsafe_code)]
unsafe extern "C" fn stop_repeats(
    _ctx: *mut WhisperSysContext,
    _state: *mut WhisperSysState,
    tokens: *const WhisperTokenData,
    n_tokens: std::ffi::c_int,
    logits: *mut f32,
    user_data: *mut std::ffi::c_void,
) {
    // SAFETY: set in `params` from the boxed guard, which outlives the `full` call; whisper.cpp
    // passes its `n_tokens` decoded tokens and the `n_vocab` logits it is about to sample from.
    let guard = unsafe { &*user_data.cast::<RepeatGuard>() };
    let n = usize::try_from(n_tokens).unwrap_or(0);
    if tokens.is_null() || logits.is_null() || n == 0 || guard.n_vocab == 0 {
        return;
    }
    // SAFETY: as above.
    let (tokens, logits) = unsafe {
        (
            std::slice::from_raw_parts(tokens, n),
            std::slice::from_raw_parts_mut(logits, guard.n_vocab),
        )
    };
    let so_far: Vec<i32> = tokens.iter().map(|t| t.id).collect();
    if guard.started_over(&so_far) {
        let eot = usize::try_from(guard.eot).unwrap_or(0);
        for (id, logit) in logits.iter_mut().enumerate() {
            if id != eot {
                *logit = f32::NEG_INFINITY;
            }
        }
    }
}

fn centis(t: i64) -> Duration {
    Duration::from_millis(u64::try_from(t).unwrap_or(0) * 10)
}

fn path_str(path: &Path) -> Result<&str, Error> {
    path.to_str().ok_or_else(|| Error::ModelCorrupt {
        path: path.to_owned(),
        reason: "path is not UTF-8".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_model_names_the_file() {
        let err = Whisper::load(&WhisperConfig::new("/nonexistent/ggml-x.bin")).unwrap_err();
        assert!(matches!(err, Error::ModelUnreadable { .. }));
        assert!(err.to_string().contains("/nonexistent/ggml-x.bin"));
    }

    #[test]
    fn decoding_stops_once_a_finished_question_has_started_over() {
        let vocab = [
            "Where", " can", " I", " park", "?", " where", " Where", " I", "'m", " sorry", ",",
            " couldn",
        ];
        let guard = RepeatGuard::from_texts(vocab.iter().map(|t| (*t).to_owned()));
        assert_eq!(guard.eot, 12);
        let asked = [0, 1, 2, 3, 4];
        // Said again (in any case or spacing) after the "?": stop once four tokens match.
        assert!(guard.started_over(&[&asked[..], &[5, 1, 2, 3]].concat()));
        assert!(guard.started_over(&[&asked[..], &[6, 1, 2, 3]].concat()));
        assert!(!guard.started_over(&[&asked[..], &[0, 1, 2]].concat()));
        // Timestamp and special tokens (ids past end-of-text) are not words.
        assert!(guard.started_over(&[50_364, 0, 1, 2, 3, 4, 50_400, 0, 1, 2, 3]));
        // "I'm sorry, I couldn't …" goes on.
        let (i, m, sorry, comma, couldn) = (7, 8, 9, 10, 11);
        assert!(!guard.started_over(&[i, m, sorry, comma, i, couldn]));
        assert!(!guard.started_over(&[i, m, sorry, comma, i, couldn, i, m, sorry]));
    }

    #[test]
    fn a_restart_is_cut_from_the_text() {
        assert_eq!(
            without_repeats("What time do you open? What time do you open? What time"),
            "What time do you open?"
        );
        assert_eq!(
            without_repeats("Where can I park? Where can I park"),
            "Where can I park?"
        );
        assert_eq!(
            without_repeats("which didn't swirt there, which didn't sw"),
            "which didn't swirt there,"
        );
        assert_eq!(without_repeats("No. No, really."), "No. No, really.");
        assert_eq!(
            without_repeats("I need a cleaning. I need a filling."),
            "I need a cleaning. I need a filling."
        );
    }

    #[test]
    fn wrong_magic_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-model.bin");
        std::fs::write(&path, b"GGUFxxxxxxxx").unwrap();
        let err = Whisper::load(&WhisperConfig::new(&path)).unwrap_err();
        assert!(matches!(err, Error::ModelCorrupt { .. }), "{err}");
        assert!(err.to_string().contains("not-a-model.bin"));
    }
}
