//! The trunk allow-list: which source addresses may place inbound calls.
//!
//! It lives in the driver, not in the call runtime, because it is a
//! transport-level check on the datagram's source (DESIGN "A call, step by
//! step" 1) that must answer before any call state exists above SIP: a
//! refused INVITE gets `403 Forbidden` and never reaches the application.
//!
//! Refusals are sent once (never retransmitted) and rate-limited ([`Refusals`]): a source
//! address can be forged, and an answer to every INVITE of a flood would turn the box into a
//! reflector aimed at whoever the flood names.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use sip_proto::allow_list::{Cidr, CidrError};

/// Sources allowed to send INVITEs. An empty list allows nobody; use
/// [`AllowList::any`] (the default) to allow everyone (digest-authenticated
/// registrations, development).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowList {
    blocks: Option<Vec<Cidr>>,
}

impl AllowList {
    /// Everyone may call.
    pub fn any() -> AllowList {
        AllowList { blocks: None }
    }

    /// Only these blocks may call.
    pub fn only(blocks: impl IntoIterator<Item = Cidr>) -> AllowList {
        AllowList {
            blocks: Some(blocks.into_iter().collect()),
        }
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        match &self.blocks {
            None => true,
            Some(blocks) => blocks.iter().any(|b| b.contains(ip)),
        }
    }
}

/// How many refusals one source gets per [`Refusals::WINDOW`]; later INVITEs are dropped.
const PER_SOURCE: u32 = 5;
/// How many refusals all sources together get per window (bounds the table too).
const TOTAL: u32 = 200;

/// Which refused INVITEs are answered, per one-second window: the first `PER_SOURCE` of each
/// source and `TOTAL` in all; the rest are dropped unanswered and counted. Sans-IO: time is an
/// argument.
#[derive(Debug, Default)]
pub struct Refusals {
    window: Option<Instant>,
    per_source: HashMap<IpAddr, u32>,
    answered: u32,
    dropped: u64,
}

/// What to do with one INVITE from outside the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Answer 403; `first` when it is this source's first refusal in the window (log it).
    Answer { first: bool },
    /// Drop it unanswered.
    Drop,
}

impl Refusals {
    pub const WINDOW: Duration = Duration::from_secs(1);

    /// The verdict for an INVITE from `source` at `now`. When a window closes, returns with it
    /// how many INVITEs the closed window dropped (for one log line).
    pub fn refuse(&mut self, now: Instant, source: IpAddr) -> (Refusal, Option<u64>) {
        let mut closed = None;
        if self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= Self::WINDOW)
        {
            self.window = Some(now);
            self.per_source.clear();
            self.answered = 0;
            closed = Some(std::mem::take(&mut self.dropped)).filter(|&n| n > 0);
        }
        if self.answered >= TOTAL {
            self.dropped += 1;
            return (Refusal::Drop, closed);
        }
        let count = self.per_source.entry(source).or_insert(0);
        if *count >= PER_SOURCE {
            self.dropped += 1;
            return (Refusal::Drop, closed);
        }
        *count += 1;
        self.answered += 1;
        (Refusal::Answer { first: *count == 1 }, closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_rate_limited_per_source_and_in_all() {
        let t0 = Instant::now();
        let mut r = Refusals::default();
        let flood: IpAddr = "192.0.2.66".parse().unwrap();
        let verdicts: Vec<Refusal> = (0..10).map(|_| r.refuse(t0, flood).0).collect();
        assert_eq!(verdicts[0], Refusal::Answer { first: true });
        assert_eq!(verdicts[1], Refusal::Answer { first: false });
        assert_eq!(verdicts.iter().filter(|v| **v == Refusal::Drop).count(), 5);
        // Another source is still answered; the next window answers the flood again and
        // reports what the last one dropped.
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(r.refuse(t0, other).0, Refusal::Answer { first: true });
        let next = t0 + Refusals::WINDOW;
        assert_eq!(
            r.refuse(next, flood),
            (Refusal::Answer { first: true }, Some(5))
        );
        // Many sources: at most TOTAL answers a window.
        let mut r = Refusals::default();
        let answered = (0..1000u32)
            .map(|i| IpAddr::from([10, 0, (i >> 8) as u8, i as u8]))
            .filter(|ip| r.refuse(t0, *ip).0 != Refusal::Drop)
            .count();
        assert_eq!(answered, TOTAL as usize);
    }

    #[test]
    fn lists() {
        let list = AllowList::only(["127.0.0.0/8".parse().unwrap()]);
        assert!(list.allows("127.0.0.1".parse().unwrap()));
        assert!(!list.allows("192.0.2.1".parse().unwrap()));
        assert!(AllowList::any().allows("192.0.2.1".parse().unwrap()));
        assert!(!AllowList::only([]).allows("127.0.0.1".parse().unwrap()));
    }
}
