//! Barge-in: the caller talking over the agent.
//!
//! Playback is paused once real caller speech (voiced, and not our echo) has lasted `after`
//! (160 ms, inside the 200 ms promise). Whether it was a real interruption is known only from the
//! words: a backchannel ("uh-huh", "okay", "right") resumes the reply where it paused; anything
//! else stops it, and what was played so far is what enters the history.

use super::super::policy::profanity::words;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct BargeInConfig {
    /// Continuous caller speech needed to pause playback.
    pub after: Duration,
}

impl Default for BargeInConfig {
    fn default() -> Self {
        BargeInConfig {
            after: Duration::from_millis(160),
        }
    }
}

#[derive(Debug)]
pub struct BargeInDetector {
    config: BargeInConfig,
    run_start: Option<Instant>,
}

const FRAME: Duration = Duration::from_millis(20);

impl BargeInDetector {
    pub fn new(config: BargeInConfig) -> Self {
        BargeInDetector {
            config,
            run_start: None,
        }
    }

    pub fn reset(&mut self) {
        self.run_start = None;
    }

    /// Feeds one inbound frame ending at `now`, already judged: `caller_speech` is voiced and not
    /// echo. Returns true once, when playback should pause.
    pub fn frame(&mut self, now: Instant, caller_speech: bool) -> bool {
        if !caller_speech {
            self.run_start = None;
            return false;
        }
        let start = *self.run_start.get_or_insert(now - FRAME);
        if now.duration_since(start) >= self.config.after {
            self.run_start = None;
            return true;
        }
        false
    }
}

const BACKCHANNELS: &[&str] = &[
    "uh huh",
    "uh-huh",
    "mm hmm",
    "mm-hmm",
    "mhm",
    "hmm",
    "mm",
    "okay",
    "ok",
    "right",
    "yeah",
    "yep",
    "yes",
    "sure",
    "i see",
    "got it",
    "alright",
    "all right",
    "cool",
    "great",
    "good",
];

/// True when the whole utterance is a backchannel (at most a few words, all of them listed).
pub fn is_backchannel(transcript: &str) -> bool {
    let tokens = words(&transcript.replace('-', " "));
    if tokens.is_empty() || tokens.len() > 4 {
        return false;
    }
    let mut rest: &[String] = &tokens;
    'outer: while !rest.is_empty() {
        for b in BACKCHANNELS {
            let parts: Vec<&str> = b.split([' ', '-']).collect();
            if rest.len() >= parts.len() && rest.iter().zip(&parts).all(|(t, p)| t == p) {
                rest = &rest[parts.len()..];
                continue 'outer;
            }
        }
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_after_160ms_of_caller_speech() {
        let t0 = Instant::now();
        let mut d = BargeInDetector::new(BargeInConfig::default());
        let fires: Vec<usize> = (0..20)
            .filter(|&i| d.frame(t0 + FRAME * (i as u32 + 1), true))
            .collect();
        assert_eq!(fires.first(), Some(&7), "the 8th frame completes 160 ms");
        let mut d = BargeInDetector::new(BargeInConfig::default());
        let choppy = (0..40).any(|i| d.frame(t0 + FRAME * (i as u32 + 1), i % 5 != 4));
        assert!(!choppy, "never 160 ms in one run");
    }

    #[test]
    fn backchannels() {
        for t in ["Uh-huh.", "okay", "Right, right.", "Mm-hmm", "Yeah, I see."] {
            assert!(is_backchannel(t), "{t}");
        }
        for t in ["", "No, Tuesday.", "Okay but what about Saturday?", "wait"] {
            assert!(!is_backchannel(t), "{t}");
        }
    }
}
