//! Text-to-speech, sentence by sentence, so the first sentence plays while the rest renders.

use std::time::Duration;

use crate::{CancelToken, Flow};

/// A loaded voice.
///
/// Threading: `Send + Sync`; calls block for the synthesis of each sentence. Run on a dedicated
/// thread. Cancellation is checked before each sentence; a cancelled call returns `Ok` with what
/// was already delivered.
pub trait Tts: Send + Sync {
    /// The engine's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Output sample rate in Hz (Piper medium voices: 22050).
    fn sample_rate(&self) -> u32;

    /// Splits `text` into sentences and hands each one's audio to `on_audio` as soon as it is
    /// rendered. Returns how many sentences were delivered.
    fn synthesize(
        &self,
        text: &str,
        options: &TtsOptions,
        cancel: &CancelToken,
        on_audio: &mut dyn FnMut(Speech) -> Flow,
    ) -> Result<usize, Self::Error>;

    /// All of `text` as one buffer of mono i16 at [`sample_rate`](Self::sample_rate).
    fn say(&self, text: &str, options: &TtsOptions) -> Result<Vec<i16>, Self::Error> {
        let mut all = Vec::new();
        self.synthesize(text, options, &CancelToken::new(), &mut |s| {
            all.extend_from_slice(&s.samples);
            Flow::Continue
        })?;
        Ok(all)
    }
}

/// Voice options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TtsOptions {
    /// Speaking rate as Piper's length scale: 1.0 is the voice's own pace, above is slower.
    pub length_scale: f32,
    /// Output gain (1.0 = as rendered); samples are clipped to i16.
    pub volume: f32,
    /// Silence appended after each sentence.
    pub sentence_silence: Duration,
}

impl Default for TtsOptions {
    fn default() -> Self {
        TtsOptions {
            length_scale: 1.0,
            volume: 1.0,
            sentence_silence: Duration::from_millis(200),
        }
    }
}

/// One rendered sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    /// The sentence as rendered.
    pub text: String,
    /// Mono i16 samples.
    pub samples: Vec<i16>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Wall time it took to render.
    pub elapsed: Duration,
}

impl Speech {
    /// Length of the audio.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.sample_rate.max(1)))
    }
}
