//! Packet loss concealment for G.711 in the spirit of G.711 Appendix I: repeat the last good
//! audio, attenuate it linearly by 20 % per 10 ms after the first 10 ms of loss so it is silent
//! after 60 ms, and cross-fade back into the first good frame. (Appendix I also repeats by pitch
//! period with overlap-add; this simpler repetition is what we need for ASR input.)

/// Concealment state for one stream.
#[derive(Debug, Clone)]
pub struct Concealer {
    sample_rate: u32,
    history: Vec<i16>,
    lost_samples: u32,
    position: usize,
    /// The continuation of concealment, cross-faded into the next good frame.
    tail: Vec<i16>,
}

impl Concealer {
    /// For audio at `sample_rate`.
    pub fn new(sample_rate: u32) -> Self {
        Concealer {
            sample_rate: sample_rate.max(1),
            history: Vec::new(),
            lost_samples: 0,
            position: 0,
            tail: Vec::new(),
        }
    }

    /// Records a good frame; after a loss it is cross-faded in place with the concealed signal.
    pub fn good_frame(&mut self, frame: &mut [i16]) {
        if self.lost_samples > 0 && !self.history.is_empty() {
            let fade = (self.sample_rate / 1000 * 4) as usize; // 4 ms
            let n = fade.min(frame.len());
            self.tail.clear();
            for _ in 0..n {
                let s = self.next_concealed_sample();
                self.tail.push(s);
            }
            for (i, (out, &c)) in frame.iter_mut().zip(&self.tail).enumerate() {
                let w = (i + 1) as i32;
                let n = n as i32 + 1;
                *out = ((*out as i32 * w + c as i32 * (n - w)) / n) as i16;
            }
        }
        self.lost_samples = 0;
        self.position = 0;
        self.history.clear();
        self.history.extend_from_slice(frame);
    }

    /// Fills `out` for a lost frame.
    pub fn conceal(&mut self, out: &mut [i16]) {
        if self.history.is_empty() {
            out.fill(0);
            self.lost_samples = self.lost_samples.saturating_add(out.len() as u32);
            return;
        }
        for o in out.iter_mut() {
            *o = self.next_concealed_sample();
        }
    }

    fn next_concealed_sample(&mut self) -> i16 {
        let ms10 = self.sample_rate / 100;
        let gain = if self.lost_samples < ms10 {
            1.0
        } else {
            // 20 % per 10 ms after the first 10 ms: zero at 60 ms.
            (1.0 - 0.2 * (self.lost_samples - ms10) as f32 / ms10 as f32).max(0.0)
        };
        let s = self.history[self.position % self.history.len()];
        self.position = (self.position + 1) % self.history.len();
        self.lost_samples = self.lost_samples.saturating_add(1);
        (s as f32 * gain) as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_then_fades_to_silence() {
        let mut plc = Concealer::new(8000);
        let mut good = [1000i16; 160];
        plc.good_frame(&mut good);
        let mut out = [0i16; 160];
        plc.conceal(&mut out);
        // First 10 ms repeat at full level, then it decays.
        assert!(out[..80].iter().all(|&s| s == 1000));
        assert!(out[159] < 1000 && out[159] > 700, "{}", out[159]);
        for _ in 0..2 {
            plc.conceal(&mut out);
        }
        // Decaying through 40..60 ms, silent from 60 ms on.
        assert!(out[0] > out[159]);
        plc.conceal(&mut out);
        assert!(out.iter().all(|&s| s == 0), "{:?}", &out[..10]);
    }

    #[test]
    fn crossfades_into_next_good_frame() {
        let mut plc = Concealer::new(8000);
        plc.good_frame(&mut [1000i16; 160]);
        let mut out = [0i16; 160];
        plc.conceal(&mut out);
        let mut next = [-1000i16; 160];
        plc.good_frame(&mut next);
        assert!(next[0] > 0, "starts near the concealed level: {}", next[0]);
        assert!(next[16] < next[0]);
        assert_eq!(next[40], -1000);
    }

    #[test]
    fn loss_before_any_audio_is_silence() {
        let mut plc = Concealer::new(8000);
        let mut out = [5i16; 160];
        plc.conceal(&mut out);
        assert!(out.iter().all(|&s| s == 0));
    }
}
