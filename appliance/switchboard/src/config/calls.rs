//! `[calls]`: limits and timings every call shares, and the RTP ports.

use super::*;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// The most calls this box carries at once; more are answered 503 with Retry-After rather
    /// than slowing every call down. Below it the box learns its own limit (`target_p95_ms`).
    pub max_concurrent: u32,
    /// Voice-to-voice latency (end of the caller's speech to the first sound of the reply) that
    /// 95 % of turns should beat: turns answered at the current call limit that miss it lower
    /// the limit by one call, turns well under it raise it again, up to `max_concurrent`.
    /// 0 turns the learning off (`max_concurrent` is then the limit).
    pub target_p95_ms: u32,
    /// UDP ports for RTP, as "FIRST-LAST" (even ports are used, RTCP on the next odd one).
    pub rtp_ports: PortRange,
    /// A model that has not answered (transcript, first words of a reply) within this many
    /// milliseconds has failed: the caller hears the fallback line instead of dead air.
    pub engine_timeout_ms: u32,
    /// Calls are ended politely after this many minutes.
    pub max_duration_min: u32,
    /// Seconds of caller silence before "are you still there?".
    pub silence_timeout_s: u32,
    /// Hours a verified caller's number is blocked after abusive language; each repeat offence
    /// blocks four times as long (at most 90 days). An operator lifts a block with
    /// `switchboard blacklist remove` or the API.
    pub abuse_block_hours: u32,
    /// Call slots outbound campaigns leave free for inbound callers: a campaign dials only while
    /// more than this many slots are free under the current limit.
    pub inbound_reserve: u32,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            max_concurrent: 2,
            target_p95_ms: 1200,
            rtp_ports: PortRange {
                first: 10000,
                last: 20000,
            },
            engine_timeout_ms: 8000,
            max_duration_min: 30,
            silence_timeout_s: 8,
            abuse_block_hours: 24,
            inbound_reserve: 1,
        }
    }
}

impl CallsConfig {
    /// The latency target the call limit is learnt from, if learning is on.
    pub fn latency_target(&self) -> Option<std::time::Duration> {
        (self.target_p95_ms > 0)
            .then(|| std::time::Duration::from_millis(self.target_p95_ms.into()))
    }
}

/// A range of UDP ports above the privileged ones, written "FIRST-LAST".
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// A port range that is not one.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a port range FIRST-LAST above 1023")]
pub struct PortRangeError(String);

impl std::str::FromStr for PortRange {
    type Err = PortRangeError;

    fn from_str(text: &str) -> Result<Self, PortRangeError> {
        let bad = || PortRangeError(text.to_owned());
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let (first, last) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        (first < last && first >= 1024)
            .then_some(PortRange { first, last })
            .ok_or_else(bad)
    }
}

impl TryFrom<String> for PortRange {
    type Error = PortRangeError;

    fn try_from(text: String) -> Result<Self, PortRangeError> {
        text.parse()
    }
}
