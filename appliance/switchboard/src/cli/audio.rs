//! WAV files for the operator tools: any common WAV in ([`media_audio::wav::read`]), mono 16-bit
//! PCM at a chosen rate out.

use anyhow::Context;
use media_audio::resample::SampleRate;
use media_audio::wav::read::{self, Channel, Decoded};
use std::path::Path;

/// Reads `path` as a WAV file and reduces it to one channel.
pub fn read_wav(path: &Path, channel: Channel) -> anyhow::Result<Decoded> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    read::decode(&bytes, channel).with_context(|| format!("{}", path.display()))
}

/// Resamples mono audio from `from` to `to` (see [`media_audio::resample::resample`]).
pub fn resample(samples: &[i16], from: SampleRate, to: SampleRate) -> anyhow::Result<Vec<i16>> {
    media_audio::resample::resample(samples, from, to).context("resampling")
}

/// Writes mono 16-bit PCM.
pub fn write_wav(path: &Path, samples: &[i16], rate: u32) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let write = || -> Result<(), hound::Error> {
        let mut w = hound::WavWriter::create(path, spec)?;
        let mut w16 = w.get_i16_writer(samples.len() as u32);
        for &s in samples {
            w16.write_sample(s);
        }
        w16.flush()?;
        w.finalize()
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_keeps_length_and_timing() {
        // A click at 0.5 s must stay at 0.5 s after 8 kHz → 16 kHz.
        let mut pcm = vec![0i16; 8000];
        pcm[4000] = 20000;
        let out = resample(&pcm, SampleRate::Hz8000, SampleRate::Hz16000).unwrap();
        assert_eq!(out.len(), 16000);
        let peak = (0..out.len())
            .max_by_key(|&i| out[i].unsigned_abs())
            .unwrap();
        assert!((7998..=8002).contains(&peak), "click at {peak}");
    }
}
