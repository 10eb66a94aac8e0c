//! WAV audio: stereo per-leg call recording (caller on the left channel, agent on the right,
//! each leg placed by sample position with silence where it had nothing to say), and the reader
//! for the WAV files operators hand the tools ([`read`]).

use std::collections::VecDeque;

pub mod read;

use crate::Error;

/// Which side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// The remote party (left channel).
    Caller,
    /// Our agent (right channel).
    Agent,
}

/// Interleaves two legs into 16-bit stereo frames, with silence where a leg had nothing. The
/// frames go wherever the caller puts them (an encrypted file, a WAV via [`wav_bytes`]).
#[derive(Debug, Default)]
pub struct StereoMixer {
    /// Samples of each leg from `drained` on.
    legs: [VecDeque<i16>; 2],
    /// Frames handed out so far.
    drained: u64,
    /// Samples dropped because they arrived for positions already handed out.
    late_samples: u64,
}

impl StereoMixer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Places `samples` of `leg` starting at absolute sample position `at`. Overlaps with earlier
    /// audio of the same leg overwrite it; positions already drained are dropped.
    pub fn push(&mut self, leg: Leg, at: u64, samples: &[i16]) {
        let buf = &mut self.legs[leg as usize];
        let (skip, start) = if at < self.drained {
            let skip = ((self.drained - at) as usize).min(samples.len());
            self.late_samples += skip as u64;
            (skip, 0usize)
        } else {
            (0, (at - self.drained) as usize)
        };
        let samples = &samples[skip..];
        if buf.len() < start + samples.len() {
            buf.resize(start + samples.len(), 0);
        }
        for (slot, &s) in buf.iter_mut().skip(start).zip(samples) {
            *slot = s;
        }
    }

    /// Appends to `out` every frame before position `until` (left, right interleaved).
    pub fn drain_until(&mut self, until: u64, out: &mut Vec<i16>) {
        while self.drained < until {
            out.push(self.legs[0].pop_front().unwrap_or(0));
            out.push(self.legs[1].pop_front().unwrap_or(0));
            self.drained += 1;
        }
    }

    /// Appends every frame left, to the end of the longer leg.
    pub fn drain_all(&mut self, out: &mut Vec<i16>) {
        let end = self.drained + self.legs.iter().map(VecDeque::len).max().unwrap_or(0) as u64;
        self.drain_until(end, out);
    }

    /// Frames handed out so far.
    pub fn drained(&self) -> u64 {
        self.drained
    }

    /// Samples dropped for arriving after their position was drained.
    pub fn late_samples(&self) -> u64 {
        self.late_samples
    }
}

/// A 16-bit PCM WAV file of interleaved `samples`.
pub fn wav_bytes(channels: u16, sample_rate: u32, samples: &[i16]) -> Result<Vec<u8>, Error> {
    let spec = hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    let mut writer = hound::WavWriter::new(&mut cursor, spec)?;
    let mut i16s = writer.get_i16_writer(samples.len() as u32);
    for &s in samples {
        i16s.write_sample(s);
    }
    i16s.flush()?;
    writer.finalize()?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_legs_with_silence_fill() {
        let mut mixer = StereoMixer::new();
        let mut out = Vec::new();
        mixer.push(Leg::Caller, 0, &[1, 2, 3]);
        mixer.push(Leg::Agent, 2, &[10, 11]);
        mixer.drain_until(2, &mut out);
        mixer.push(Leg::Caller, 1, &[99]); // already drained: dropped
        mixer.push(Leg::Caller, 6, &[7]);
        assert_eq!(mixer.late_samples(), 1);
        mixer.drain_all(&mut out);
        assert_eq!(out, vec![1, 0, 2, 0, 3, 10, 0, 11, 0, 0, 0, 0, 7, 0]);
        let wav = wav_bytes(2, 8000, &out).unwrap();
        let mut reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
        assert_eq!(reader.spec().channels, 2);
        let back: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(back, out);
    }
}
