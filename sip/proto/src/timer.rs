//! The transaction timers (RFC 3261 §17, Table 4) as a table of deadlines.
//!
//! A transaction never sleeps: it records when each running timer fires and
//! the endpoint reports the earliest one through `poll_timeout`.

use std::time::{Duration, Instant};

/// One RFC 3261 §17 timer (plus the RFC 6026 and §17.2.1 extras).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// §17.1.1.2: INVITE request retransmit, starts at T1, doubles (UDP only).
    A,
    /// §17.1.1.2: INVITE transaction timeout, 64*T1.
    B,
    /// §17.1.1.2: wait for response retransmits, ≥32 s on UDP, 0 on TCP.
    D,
    /// §17.1.2.2: non-INVITE request retransmit, T1 doubling to T2 (UDP only).
    E,
    /// §17.1.2.2: non-INVITE transaction timeout, 64*T1.
    F,
    /// §17.2.1: INVITE final response retransmit, T1 doubling to T2 (UDP only).
    G,
    /// §17.2.1: wait for ACK receipt, 64*T1.
    H,
    /// §17.2.1: wait for ACK retransmits, T4 on UDP, 0 on TCP.
    I,
    /// §17.2.2: wait for non-INVITE request retransmits, 64*T1 on UDP, 0 on TCP.
    J,
    /// §17.1.2.2: wait for response retransmits, T4 on UDP, 0 on TCP.
    K,
    /// RFC 6026 §7.1: INVITE server Accepted state, absorbs INVITE retransmits, 64*T1.
    L,
    /// §17.2.1: send 100 Trying if the TU has not answered within 200 ms.
    Trying,
}

const COUNT: usize = 12;

impl Timer {
    fn index(self) -> usize {
        self as usize
    }

    const ALL: [Timer; COUNT] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::Trying,
    ];
}

/// The RFC 3261 §17 base intervals (Table 4). Defaults are the RFC's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, 500 ms.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum duration a message remains in the network, 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64*T1: Timers B, F, H, J (UDP), L; and the 2xx give-up of §13.3.1.4.
    pub fn timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D: "at least 32 seconds" on UDP (§17.1.1.2), 0 on reliable.
    pub fn d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.timeout())
        }
    }

    /// Timers I and K: T4 on UDP, 0 on reliable.
    pub fn t4_or_zero(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer J: 64*T1 on UDP, 0 on reliable.
    pub fn j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timeout()
        }
    }

    /// The next retransmit interval: doubled, capped at T2 (Timers E, G,
    /// and the 2xx retransmission of §13.3.1.4).
    pub fn backoff(&self, interval: Duration) -> Duration {
        interval.saturating_mul(2).min(self.t2)
    }
}

/// §17.2.1: the TU has 200 ms to answer before the transaction sends 100.
pub const TRYING_DELAY: Duration = Duration::from_millis(200);

/// Deadlines of the running timers of one transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timers {
    deadlines: [Option<Instant>; COUNT],
}

impl Timers {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    pub(crate) fn clear_all(&mut self) {
        self.deadlines = [None; COUNT];
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Takes the earliest timer due at `now`, if any.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let (timer, _) = Timer::ALL
            .iter()
            .filter_map(|&t| self.deadlines[t.index()].map(|d| (t, d)))
            .filter(|&(_, d)| d <= now)
            .min_by_key(|&(_, d)| d)?;
        self.clear(timer);
        Some(timer)
    }
}
