//! Voice activity detection on the WebRTC VAD (`webrtc-vad`, the C libfvad inside).
//! The underlying handle is not `Send`: create one per call on the thread that uses it.

use crate::Error;

/// How eagerly non-speech is rejected (WebRTC VAD modes 0–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggressiveness {
    /// Mode 0: most likely to call something speech.
    Quality,
    /// Mode 1.
    LowBitrate,
    /// Mode 2.
    Aggressive,
    /// Mode 3: least likely to call noise speech.
    VeryAggressive,
}

/// A VAD for 8 or 16 kHz mono frames of 10, 20 or 30 ms.
pub struct Vad {
    inner: webrtc_vad::Vad,
    rate: u32,
}

impl std::fmt::Debug for Vad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vad").field("rate", &self.rate).finish()
    }
}

impl Vad {
    /// A detector for `rate` Hz (8000 or 16000).
    pub fn new(rate: u32, aggressiveness: Aggressiveness) -> Result<Self, Error> {
        let sample_rate = match rate {
            8000 => webrtc_vad::SampleRate::Rate8kHz,
            16000 => webrtc_vad::SampleRate::Rate16kHz,
            other => return Err(Error::VadRate(other)),
        };
        let mode = match aggressiveness {
            Aggressiveness::Quality => webrtc_vad::VadMode::Quality,
            Aggressiveness::LowBitrate => webrtc_vad::VadMode::LowBitrate,
            Aggressiveness::Aggressive => webrtc_vad::VadMode::Aggressive,
            Aggressiveness::VeryAggressive => webrtc_vad::VadMode::VeryAggressive,
        };
        Ok(Vad {
            inner: webrtc_vad::Vad::new_with_rate_and_mode(sample_rate, mode),
            rate,
        })
    }

    /// Whether `frame` (10, 20 or 30 ms) contains speech.
    pub fn is_speech(&mut self, frame: &[i16]) -> Result<bool, Error> {
        let per_ms = (self.rate / 1000) as usize;
        if ![10, 20, 30].iter().any(|ms| ms * per_ms == frame.len()) {
            return Err(Error::VadFrameLength {
                samples: frame.len(),
                rate: self.rate,
            });
        }
        // Lengths were checked above, so the library's only error cannot occur.
        self.inner
            .is_voice_segment(frame)
            .map_err(|()| Error::VadFrameLength {
                samples: frame.len(),
                rate: self.rate,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_not_speech_and_lengths_are_checked() {
        for rate in [8000u32, 16000] {
            let mut vad = Vad::new(rate, Aggressiveness::Aggressive).unwrap();
            for ms in [10usize, 20, 30] {
                let frame = vec![0i16; ms * rate as usize / 1000];
                assert!(!vad.is_speech(&frame).unwrap());
            }
            assert!(matches!(
                vad.is_speech(&[0; 100]),
                Err(Error::VadFrameLength { samples: 100, .. })
            ));
        }
        assert!(matches!(
            Vad::new(22050, Aggressiveness::Quality),
            Err(Error::VadRate(22050))
        ));
    }

    #[test]
    fn voiced_harmonics_are_speech() {
        // A 120 Hz pulse-like voiced signal with formant-ish harmonics, 300 ms.
        let mut vad = Vad::new(8000, Aggressiveness::Quality).unwrap();
        let signal: Vec<i16> = (0..2400)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let s: f32 = (1..20)
                    .map(|h| (std::f32::consts::TAU * 120.0 * h as f32 * t).sin() / h as f32)
                    .sum();
                (s * 6000.0) as i16
            })
            .collect();
        let speech = signal
            .chunks(160)
            .filter(|f| vad.is_speech(f).unwrap())
            .count();
        assert!(speech >= 10, "{speech} of 15 frames");
    }
}
