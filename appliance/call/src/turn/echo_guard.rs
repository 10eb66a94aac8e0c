//! Telling the caller's voice from our own voice coming back down the line.
//!
//! A PBX or a phone's hybrid reflects part of what we play back to us, some tens of milliseconds
//! later and at least `min_erl_db` quieter (ITU-T G.168 expects ≥ 6 dB echo return loss). Inbound
//! audio is only the caller's when it is louder than the loudest recent outbound frame less that
//! loss: echo alone can never be, double talk usually is.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct EchoConfig {
    /// How far back an outbound frame can still be heard as echo.
    pub tail: Duration,
    /// The least echo return loss we assume from the line.
    pub min_erl_db: f32,
}

impl Default for EchoConfig {
    fn default() -> Self {
        EchoConfig {
            tail: Duration::from_millis(400),
            min_erl_db: 6.0,
        }
    }
}

#[derive(Debug)]
pub struct EchoGuard {
    config: EchoConfig,
    /// (time sent, energy in dBFS) of recent outbound frames, oldest first.
    sent: VecDeque<(Instant, f32)>,
}

impl EchoGuard {
    pub fn new(config: EchoConfig) -> Self {
        EchoGuard {
            config,
            sent: VecDeque::new(),
        }
    }

    /// Notes an outbound frame's energy (the reference).
    pub fn sent(&mut self, now: Instant, energy_db: f32) {
        self.forget_before(now);
        self.sent.push_back((now, energy_db));
    }

    /// True when an inbound frame of `energy_db` at `now` can be explained as our own echo.
    pub fn is_echo(&mut self, now: Instant, energy_db: f32) -> bool {
        self.forget_before(now);
        let loudest = self
            .sent
            .iter()
            .map(|&(_, e)| e)
            .fold(f32::NEG_INFINITY, f32::max);
        energy_db <= loudest - self.config.min_erl_db
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some(&(t, _)) = self.sent.front() {
            if now.saturating_duration_since(t) > self.config.tail {
                self.sent.pop_front();
            } else {
                break;
            }
        }
    }
}

/// Energy of 16-bit PCM in dBFS (−96 for digital silence).
pub fn energy_db(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return -96.0;
    }
    let mean_square = samples
        .iter()
        .map(|&s| (s as f64) * (s as f64))
        .sum::<f64>()
        / samples.len() as f64;
    let rms = mean_square.sqrt() / 32768.0;
    if rms <= 1.0 / 65536.0 {
        -96.0
    } else {
        (20.0 * rms.log10()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_is_quieter_than_what_we_sent() {
        let t0 = Instant::now();
        let mut g = EchoGuard::new(EchoConfig::default());
        g.sent(t0, -12.0);
        let at = t0 + Duration::from_millis(60);
        assert!(g.is_echo(at, -24.0), "12 dB down: echo");
        assert!(!g.is_echo(at, -10.0), "louder than us: the caller");
        // Nothing sent for longer than the tail: anything is the caller.
        assert!(!g.is_echo(t0 + Duration::from_secs(1), -40.0));
    }

    #[test]
    fn energy_of_full_scale_and_silence() {
        assert!((energy_db(&[32767, -32767, 32767, -32767]) - 0.0).abs() < 0.01);
        assert_eq!(energy_db(&[0; 160]), -96.0);
        let half: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { 16384 } else { -16384 })
            .collect();
        assert!((energy_db(&half) + 6.02).abs() < 0.05);
    }
}
