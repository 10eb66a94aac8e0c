//! How fast a campaign starts calls: at most `max_concurrent` up at once, and calls started no
//! closer together than a minute divided by `calls_per_minute`, so a list does not hit the trunk
//! (or the people answering transfers) in one burst.

use std::time::{Duration, Instant};

/// One campaign's pacing on this box. Time is an input.
#[derive(Clone, Debug)]
pub struct Pacer {
    max_concurrent: u32,
    spacing: Duration,
    last_start: Option<Instant>,
}

impl Pacer {
    /// `calls_per_minute` 0 means no spacing.
    pub fn new(max_concurrent: u32, calls_per_minute: u32) -> Pacer {
        let spacing = match calls_per_minute {
            0 => Duration::ZERO,
            n => Duration::from_secs(60) / n,
        };
        Pacer {
            max_concurrent,
            spacing,
            last_start: None,
        }
    }

    /// Whether a call may start at `now` with `in_flight` of the campaign's calls up (on every
    /// box); when not for pacing alone, the instant it may.
    pub fn may_start(&self, now: Instant, in_flight: u32) -> Pace {
        if in_flight >= self.max_concurrent {
            return Pace::Full;
        }
        match self.last_start.map(|t| t + self.spacing) {
            Some(next) if next > now => Pace::At(next),
            _ => Pace::Now,
        }
    }

    /// A call was started at `now`.
    pub fn started(&mut self, now: Instant) {
        self.last_start = Some(now);
    }

    /// New limits (the campaign was edited); the spacing since the last start still holds.
    pub fn set_limits(&mut self, max_concurrent: u32, calls_per_minute: u32) {
        let last_start = self.last_start;
        *self = Pacer::new(max_concurrent, calls_per_minute);
        self.last_start = last_start;
    }
}

/// Whether a campaign may start a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    Now,
    /// Not before this instant.
    At(Instant),
    /// As many calls are up as the campaign allows; wait for one to end.
    Full,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_spaced_and_capped() {
        let t0 = Instant::now();
        let mut p = Pacer::new(2, 6);
        assert_eq!(p.may_start(t0, 0), Pace::Now);
        p.started(t0);
        let ten = t0 + Duration::from_secs(10);
        assert_eq!(p.may_start(t0 + Duration::from_secs(3), 1), Pace::At(ten));
        assert_eq!(p.may_start(ten, 1), Pace::Now);
        assert_eq!(p.may_start(ten, 2), Pace::Full);
        p.set_limits(3, 0);
        assert_eq!(p.may_start(t0 + Duration::from_secs(1), 2), Pace::Now);
    }
}
