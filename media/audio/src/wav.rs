//! Stereo per-leg call recording: caller on the left channel, agent on the right, each leg placed
//! by sample position with silence where it had nothing to say.

use std::collections::VecDeque;
use std::io::{Seek, Write};

use crate::Error;

/// Which side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// The remote party (left channel).
    Caller,
    /// Our agent (right channel).
    Agent,
}

/// Writes a 16-bit stereo WAV, interleaving two legs with silence fill.
pub struct StereoRecorder<W: Write + Seek> {
    writer: hound::WavWriter<W>,
    /// Samples of each leg from `written` on.
    legs: [VecDeque<i16>; 2],
    /// Frames written so far.
    written: u64,
    /// Samples dropped because they arrived for positions already written.
    late_samples: u64,
}

impl<W: Write + Seek> std::fmt::Debug for StereoRecorder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StereoRecorder")
            .field("written", &self.written)
            .finish()
    }
}

impl<W: Write + Seek> StereoRecorder<W> {
    /// A recorder at `sample_rate` writing to `sink`.
    pub fn new(sink: W, sample_rate: u32) -> Result<Self, Error> {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(StereoRecorder {
            writer: hound::WavWriter::new(sink, spec)?,
            legs: [VecDeque::new(), VecDeque::new()],
            written: 0,
            late_samples: 0,
        })
    }

    /// Places `samples` of `leg` starting at absolute sample position `at`. Overlaps with earlier
    /// audio of the same leg overwrite it; positions already written to the file are dropped.
    pub fn push(&mut self, leg: Leg, at: u64, samples: &[i16]) {
        let buf = &mut self.legs[leg as usize];
        let (skip, start) = if at < self.written {
            let skip = ((self.written - at) as usize).min(samples.len());
            self.late_samples += skip as u64;
            (skip, 0usize)
        } else {
            (0, (at - self.written) as usize)
        };
        let samples = &samples[skip..];
        if buf.len() < start + samples.len() {
            buf.resize(start + samples.len(), 0);
        }
        for (slot, &s) in buf.iter_mut().skip(start).zip(samples) {
            *slot = s;
        }
    }

    /// Writes every frame before position `until`, silence where a leg has nothing.
    pub fn flush_until(&mut self, until: u64) -> Result<(), Error> {
        while self.written < until {
            let left = self.legs[0].pop_front().unwrap_or(0);
            let right = self.legs[1].pop_front().unwrap_or(0);
            self.writer.write_sample(left)?;
            self.writer.write_sample(right)?;
            self.written += 1;
        }
        Ok(())
    }

    /// Samples dropped for arriving after their position was written.
    pub fn late_samples(&self) -> u64 {
        self.late_samples
    }

    /// Flushes both legs to their end and finalises the header.
    pub fn finish(mut self) -> Result<(), Error> {
        let end = self.written + self.legs.iter().map(VecDeque::len).max().unwrap_or(0) as u64;
        self.flush_until(end)?;
        self.writer.finalize()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_legs_with_silence_fill() {
        let mut cursor = std::io::Cursor::new(Vec::new());
        {
            let mut rec = StereoRecorder::new(&mut cursor, 8000).unwrap();
            rec.push(Leg::Caller, 0, &[1, 2, 3]);
            rec.push(Leg::Agent, 2, &[10, 11]);
            rec.flush_until(2).unwrap();
            rec.push(Leg::Caller, 1, &[99]); // already written: dropped
            rec.push(Leg::Caller, 6, &[7]);
            assert_eq!(rec.late_samples(), 1);
            rec.finish().unwrap();
        }
        cursor.set_position(0);
        let mut reader = hound::WavReader::new(cursor).unwrap();
        assert_eq!(reader.spec().channels, 2);
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(samples, vec![1, 0, 2, 0, 3, 10, 0, 11, 0, 0, 0, 0, 7, 0]);
    }
}
