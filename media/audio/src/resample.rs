//! Fixed-ratio streaming resampling between the rates a call uses (8 kHz telephony, 16 kHz for
//! speech recognition, 22.05 kHz from Piper TTS) and the rates of audio files operators bring
//! (44.1 and 48 kHz), on `rubato`'s synchronous FFT resampler.

use rubato::{FftFixedInOut, Resampler as _};

use crate::Error;

/// Sample rates the appliance converts between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleRate {
    /// 8 kHz, G.711.
    Hz8000,
    /// 16 kHz, whisper input.
    Hz16000,
    /// 22.05 kHz, Piper output.
    Hz22050,
    /// 44.1 kHz, CD-rate recordings.
    Hz44100,
    /// 48 kHz, most other recordings.
    Hz48000,
}

impl SampleRate {
    /// In hertz.
    pub fn hz(self) -> u32 {
        match self {
            SampleRate::Hz8000 => 8000,
            SampleRate::Hz16000 => 16000,
            SampleRate::Hz22050 => 22050,
            SampleRate::Hz44100 => 44100,
            SampleRate::Hz48000 => 48000,
        }
    }

    /// The rate of `hz` hertz, if it is one of ours.
    pub fn from_hz(hz: u32) -> Option<Self> {
        [
            SampleRate::Hz8000,
            SampleRate::Hz16000,
            SampleRate::Hz22050,
            SampleRate::Hz44100,
            SampleRate::Hz48000,
        ]
        .into_iter()
        .find(|r| r.hz() == hz)
    }
}

/// Resamples a whole mono buffer from `from` to `to` with the filter's delay removed, so sample
/// `i` of the output is at the time of sample `i * from / to` of the input.
pub fn resample(samples: &[i16], from: SampleRate, to: SampleRate) -> Result<Vec<i16>, Error> {
    if from == to {
        return Ok(samples.to_vec());
    }
    let mut r = Resampler::new(from, to)?;
    let delay = r.delay();
    let wanted = (samples.len() as u64 * u64::from(to.hz()) / u64::from(from.hz())) as usize;
    let mut out = Vec::with_capacity(wanted + delay);
    r.process(samples, &mut out)?;
    // Push silence through until the tail of the input has come out past the delay.
    let tail = (delay as u64 * u64::from(from.hz()) / u64::from(to.hz())) as usize + 1;
    r.process(&vec![0; tail], &mut out)?;
    r.flush(&mut out)?;
    Ok(out.into_iter().skip(delay).take(wanted).collect())
}

/// A mono streaming resampler: feed any number of samples, get whatever is ready.
pub struct Resampler {
    inner: FftFixedInOut<f32>,
    pending: Vec<f32>,
    input: Vec<Vec<f32>>,
    output: Vec<Vec<f32>>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Resampler {
    /// A resampler from `from` to `to`, processing about 20 ms chunks.
    pub fn new(from: SampleRate, to: SampleRate) -> Result<Self, Error> {
        let chunk = (from.hz() / 50) as usize;
        let inner = FftFixedInOut::<f32>::new(from.hz() as usize, to.hz() as usize, chunk, 1)?;
        let output = inner.output_buffer_allocate(true);
        Ok(Resampler {
            inner,
            pending: Vec::new(),
            input: vec![Vec::new()],
            output,
        })
    }

    /// Output samples of delay the filter adds.
    pub fn delay(&self) -> usize {
        self.inner.output_delay()
    }

    /// Resamples `samples`, appending ready output to `out`.
    pub fn process(&mut self, samples: &[i16], out: &mut Vec<i16>) -> Result<(), Error> {
        self.pending
            .extend(samples.iter().map(|&s| s as f32 / 32768.0));
        loop {
            let need = self.inner.input_frames_next();
            if self.pending.len() < need {
                return Ok(());
            }
            self.input[0].clear();
            self.input[0].extend(self.pending.drain(..need));
            let (_, written) =
                self.inner
                    .process_into_buffer(&self.input, &mut self.output, None)?;
            out.extend(
                self.output[0][..written]
                    .iter()
                    .map(|&s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16),
            );
        }
    }

    /// Pads the remainder with silence and emits it (end of stream).
    pub fn flush(&mut self, out: &mut Vec<i16>) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let need = self.inner.input_frames_next() - self.pending.len();
        self.process(&vec![0; need], out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| ((i as f32 * hz * std::f32::consts::TAU / rate as f32).sin() * 10000.0) as i16)
            .collect()
    }

    #[test]
    fn lengths_follow_the_ratio_in_any_chunking() {
        for (from, to) in [
            (SampleRate::Hz8000, SampleRate::Hz16000),
            (SampleRate::Hz16000, SampleRate::Hz8000),
            (SampleRate::Hz22050, SampleRate::Hz16000),
            (SampleRate::Hz22050, SampleRate::Hz8000),
            (SampleRate::Hz8000, SampleRate::Hz22050),
            (SampleRate::Hz44100, SampleRate::Hz16000),
            (SampleRate::Hz48000, SampleRate::Hz16000),
        ] {
            let input = tone(from.hz(), 440.0, from.hz() as usize); // one second
            let mut r = Resampler::new(from, to).unwrap();
            let mut out = Vec::new();
            for chunk in input.chunks(37) {
                r.process(chunk, &mut out).unwrap();
            }
            r.flush(&mut out).unwrap();
            let expected = to.hz() as usize;
            assert!(
                out.len() >= expected && out.len() <= expected + to.hz() as usize / 25,
                "{from:?}->{to:?}: {}",
                out.len()
            );
        }
    }

    #[test]
    fn rates_round_trip_through_hertz() {
        for hz in [8000, 16000, 22050, 44100, 48000] {
            assert_eq!(SampleRate::from_hz(hz).map(SampleRate::hz), Some(hz));
        }
        assert_eq!(SampleRate::from_hz(11025), None);
    }

    #[test]
    fn upsampled_tone_keeps_its_level() {
        let input = tone(8000, 440.0, 8000);
        let mut r = Resampler::new(SampleRate::Hz8000, SampleRate::Hz16000).unwrap();
        let mut out = Vec::new();
        r.process(&input, &mut out).unwrap();
        let d = r.delay();
        let steady = &out[d + 1000..d + 9000];
        let peak = steady.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((9500..=10500).contains(&peak), "peak {peak}");
    }
}
