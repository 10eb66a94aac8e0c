//! Speech-to-text: a VAD-cut segment of 16 kHz mono audio in, text with timings and a confidence
//! out; and [`PartialTranscriber`] for a growing utterance.

use std::time::Duration;

use crate::CancelToken;

/// A speech-to-text engine (a loaded model).
///
/// Threading: `Send + Sync`; concurrent calls are allowed and each uses its own decoder state.
/// Calls block for the whole decode: run them on a blocking thread, never an async worker.
/// Cancellation: checked between decoder steps; a cancelled call returns `Ok(None)`.
pub trait Stt: Send + Sync {
    /// The engine's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Transcribes one segment of 16 kHz mono audio (samples in -1.0..=1.0).
    /// `Ok(None)` means `cancel` fired before the transcript was complete.
    fn transcribe(
        &self,
        audio: &[f32],
        options: &SttOptions,
        cancel: &CancelToken,
    ) -> Result<Option<Transcript>, Self::Error>;
}

/// Per-call options. The defaults are the latency-tuned ones (see DESIGN.md "Latency").
#[derive(Debug, Clone, PartialEq)]
pub struct SttOptions {
    /// Fixed spoken language (ISO 639-1, e.g. `"en"`); `None` asks the model to detect it, which
    /// costs an extra encoder pass. English-only models ignore it.
    pub language: Option<String>,
    /// Encoder window. [`AudioContext::Fit`] trims it to the segment: whisper's default 30 s
    /// window costs about 10× on a 2-3 s utterance.
    pub audio_context: AudioContext,
    /// Text that biases decoding (business names, product words).
    pub initial_prompt: Option<String>,
    /// Upper bound on decoded tokens per segment (0 = the model's limit).
    pub max_tokens: u32,
}

impl Default for SttOptions {
    fn default() -> Self {
        SttOptions {
            language: Some("en".to_owned()),
            audio_context: AudioContext::Fit,
            initial_prompt: None,
            max_tokens: 0,
        }
    }
}

/// How many encoder positions whisper attends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioContext {
    /// [`audio_ctx_for`] the segment's length.
    Fit,
    /// The model's full 30 s window (1500 positions).
    Full,
    /// An explicit number of positions (50 per second of audio).
    Fixed(u32),
}

/// Whisper's encoder has 1500 positions for 30 s: one per 320 samples at 16 kHz.
const SAMPLES_PER_POSITION: usize = 320;
/// The full window.
pub const FULL_AUDIO_CTX: u32 = 1500;
/// Below this whisper starts to hallucinate or drop words on short answers ("yes", "no").
const MIN_AUDIO_CTX: u32 = 128;

/// The encoder window for `samples` of 16 kHz audio: the positions the audio covers plus a
/// margin of 10% + 32 (0.64 s), rounded up to a multiple of 8, within 128..=1500.
/// The margin matters: audio past the window is silently dropped, and a window that ends right at
/// the last word makes whisper cut it.
pub fn audio_ctx_for(samples: usize) -> u32 {
    let covered = samples.div_ceil(SAMPLES_PER_POSITION);
    let with_margin = covered + covered / 10 + 32;
    let rounded = with_margin.div_ceil(8) * 8;
    u32::try_from(rounded)
        .unwrap_or(FULL_AUDIO_CTX)
        .clamp(MIN_AUDIO_CTX, FULL_AUDIO_CTX)
}

/// Converts 16-bit PCM to the `f32` range whisper wants.
pub fn i16_to_f32(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| f32::from(s) / 32768.0).collect()
}

/// A finished transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// All segments' text joined, trimmed.
    pub text: String,
    /// Segments with timestamps relative to the start of the audio.
    pub segments: Vec<TranscriptSegment>,
    /// Mean probability of the text tokens (0..=1); low values flag mumbles and noise.
    pub confidence: f32,
    /// Length of the transcribed audio.
    pub audio: Duration,
    /// Wall time of the call.
    pub elapsed: Duration,
    /// The encoder window used (see [`AudioContext`]).
    pub audio_ctx: u32,
}

/// One decoded segment.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptSegment {
    /// Start, relative to the audio's start.
    pub start: Duration,
    /// End, relative to the audio's start.
    pub end: Duration,
    /// The segment's text, trimmed.
    pub text: String,
    /// Mean token probability of this segment.
    pub confidence: f32,
}

/// Transcribes a growing utterance: push audio as it arrives, call [`update`](Self::update)
/// whenever a partial result is wanted (e.g. every 500 ms of new speech), and
/// [`finish`](Self::finish) when endpointing closes the turn.
///
/// Each update re-transcribes the whole buffer with the window fitted to it; the words on which
/// the last two hypotheses agree are reported as [`Partial::stable`] ("local agreement"), which is
/// what the dialog may start prefilling on.
#[derive(Debug, Default)]
pub struct PartialTranscriber {
    audio: Vec<f32>,
    transcribed_len: usize,
    previous: Option<String>,
}

/// A partial hypothesis for a growing utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    /// The latest full hypothesis.
    pub text: String,
    /// The leading words on which the latest two hypotheses agree.
    pub stable: String,
    /// Audio covered by this hypothesis.
    pub audio: Duration,
}

impl PartialTranscriber {
    /// An empty utterance.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends audio (16 kHz mono).
    pub fn push(&mut self, samples: &[f32]) {
        self.audio.extend_from_slice(samples);
    }

    /// The audio received so far.
    pub fn audio(&self) -> &[f32] {
        &self.audio
    }

    /// Samples received since the last [`update`](Self::update).
    pub fn pending(&self) -> usize {
        self.audio.len() - self.transcribed_len
    }

    /// Re-transcribes everything received so far. `Ok(None)` if cancelled or nothing new arrived.
    pub fn update<S: Stt + ?Sized>(
        &mut self,
        stt: &S,
        options: &SttOptions,
        cancel: &CancelToken,
    ) -> Result<Option<Partial>, S::Error> {
        if self.pending() == 0 {
            return Ok(None);
        }
        let Some(t) = stt.transcribe(&self.audio, options, cancel)? else {
            return Ok(None);
        };
        self.transcribed_len = self.audio.len();
        let stable = match &self.previous {
            Some(prev) => common_words(prev, &t.text),
            None => String::new(),
        };
        self.previous = Some(t.text.clone());
        Ok(Some(Partial {
            text: t.text,
            stable,
            audio: t.audio,
        }))
    }

    /// The final transcript of the whole utterance; the transcriber is reset for the next one.
    pub fn finish<S: Stt + ?Sized>(
        &mut self,
        stt: &S,
        options: &SttOptions,
        cancel: &CancelToken,
    ) -> Result<Option<Transcript>, S::Error> {
        let audio = std::mem::take(&mut self.audio);
        self.transcribed_len = 0;
        self.previous = None;
        stt.transcribe(&audio, options, cancel)
    }
}

/// The leading words two hypotheses share, compared case- and punctuation-insensitively, spelled
/// as in `b`.
fn common_words(a: &str, b: &str) -> String {
    let norm = |w: &str| -> String {
        w.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let n = a
        .split_whitespace()
        .zip(b.split_whitespace())
        .take_while(|(x, y)| norm(x) == norm(y))
        .count();
    b.split_whitespace().take(n).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_ctx_covers_audio_with_margin() {
        // 2.1 s, the DESIGN.md example measured with audio_ctx = 150.
        assert_eq!(audio_ctx_for(33_600), 152);
        assert_eq!(audio_ctx_for(0), MIN_AUDIO_CTX);
        assert_eq!(audio_ctx_for(16_000 * 30), FULL_AUDIO_CTX);
        assert_eq!(audio_ctx_for(16_000 * 60), FULL_AUDIO_CTX);
        for secs in 3..25 {
            let n = 16_000 * secs;
            assert!(audio_ctx_for(n) as usize * SAMPLES_PER_POSITION >= n);
        }
    }

    #[test]
    fn stable_prefix_ignores_case_and_punctuation() {
        assert_eq!(
            common_words("I would like", "I would like to book."),
            "I would like"
        );
        assert_eq!(
            common_words("Hello, there", "hello there friend"),
            "hello there"
        );
        assert_eq!(common_words("book a", "look at"), "");
    }

    struct Echo;
    impl Stt for Echo {
        type Error = std::io::Error;
        fn transcribe(
            &self,
            audio: &[f32],
            _: &SttOptions,
            cancel: &CancelToken,
        ) -> Result<Option<Transcript>, Self::Error> {
            if cancel.is_cancelled() {
                return Ok(None);
            }
            let words = ["one", "two", "three", "four"];
            let text = words[..(audio.len() / 100).min(4)].join(" ");
            Ok(Some(Transcript {
                text,
                segments: Vec::new(),
                confidence: 1.0,
                audio: Duration::from_millis(audio.len() as u64 / 16),
                elapsed: Duration::ZERO,
                audio_ctx: 0,
            }))
        }
    }

    #[test]
    fn partial_reports_agreed_words() {
        let mut p = PartialTranscriber::new();
        let (o, c) = (SttOptions::default(), CancelToken::new());
        p.push(&[0.0; 200]);
        let first = p.update(&Echo, &o, &c).unwrap().unwrap();
        assert_eq!(
            (first.text.as_str(), first.stable.as_str()),
            ("one two", "")
        );
        assert!(p.update(&Echo, &o, &c).unwrap().is_none(), "nothing new");
        p.push(&[0.0; 100]);
        let second = p.update(&Echo, &o, &c).unwrap().unwrap();
        assert_eq!(second.stable, "one two");
        let done = p.finish(&Echo, &o, &c).unwrap().unwrap();
        assert_eq!(done.text, "one two three");
        assert!(p.audio().is_empty());
    }
}
