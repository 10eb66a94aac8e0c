//! Per-source reception state: RFC 3550 Appendix A.1 sequence validation and probation, A.3 loss
//! accounting, A.8 interarrival jitter, and the report block for an RR/SR.

use std::time::{Duration, Instant};

use crate::rtcp::ReportBlock;
use crate::Ssrc;

const RTP_SEQ_MOD: u32 = 1 << 16;
/// RFC 3550 A.1: largest forward jump still treated as the same stream.
const MAX_DROPOUT: u32 = 3000;
/// RFC 3550 A.1: largest backward jump treated as reordering.
const MAX_MISORDER: u32 = 100;
/// RFC 3550 A.1: in-order packets needed before a source is valid.
const MIN_SEQUENTIAL: u32 = 2;

/// What [`SourceState::update`] made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceOutcome {
    /// Accepted; carries the packet's extended sequence number.
    Valid(u64),
    /// The source is still on probation; the packet is not yet counted.
    Probation,
    /// A large jump; one more packet in sequence from here restarts the source (A.1 `bad_seq`).
    Jump,
    /// The source restarted after a confirmed jump (the sender likely restarted).
    Restarted(u64),
}

/// A snapshot of reception statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceptionStats {
    /// Packets counted as received (duplicates included, per the RFC).
    pub received: u64,
    /// Packets expected from the extended sequence range.
    pub expected: u64,
    /// Cumulative loss (negative with duplicates).
    pub cumulative_lost: i64,
    /// Extended highest sequence number.
    pub extended_highest: u64,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

/// Reception state of one remote source.
#[derive(Debug, Clone)]
pub struct SourceState {
    ssrc: Ssrc,
    clock_rate: u32,
    max_seq: u16,
    cycles: u64,
    base_seq: u64,
    bad_seq: u32,
    probation: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// A.8: last transit time, in timestamp units.
    transit: Option<u32>,
    /// A.8: jitter scaled by 16.
    jitter_q4: u32,
    /// The instant that maps to arrival timestamp 0.
    epoch: Option<Instant>,
    last_sender_report: Option<(u32, Instant)>,
}

impl SourceState {
    /// State for a source first seen with sequence number `first_sequence` (A.1: probation).
    pub fn new(ssrc: Ssrc, clock_rate: u32, first_sequence: u16) -> Self {
        let mut s = SourceState {
            ssrc,
            clock_rate: clock_rate.max(1),
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: 0,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
            epoch: None,
            last_sender_report: None,
        };
        s.init_seq(first_sequence);
        s.max_seq = first_sequence.wrapping_sub(1);
        s
    }

    /// The source.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// Whether probation is over.
    pub fn is_valid(&self) -> bool {
        self.probation == 0
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = seq as u64;
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// Feeds one packet's sequence number, RTP timestamp and arrival time (RFC 3550 A.1, A.8).
    pub fn update(
        &mut self,
        sequence: u16,
        rtp_timestamp: u32,
        arrival: Instant,
    ) -> SequenceOutcome {
        let outcome = self.update_seq(sequence);
        if matches!(
            outcome,
            SequenceOutcome::Valid(_) | SequenceOutcome::Restarted(_)
        ) {
            self.update_jitter(rtp_timestamp, arrival);
        }
        outcome
    }

    fn update_seq(&mut self, seq: u16) -> SequenceOutcome {
        let udelta = seq.wrapping_sub(self.max_seq) as u32;
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SequenceOutcome::Valid(self.extend(seq));
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SequenceOutcome::Probation;
        } else if udelta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD as u64;
            }
            self.max_seq = seq;
        } else if udelta <= RTP_SEQ_MOD - MAX_MISORDER {
            // A very large jump.
            if seq as u32 == self.bad_seq {
                // Two sequential packets: assume the other side restarted without telling us.
                self.init_seq(seq);
                self.received += 1;
                self.transit = None;
                return SequenceOutcome::Restarted(self.extend(seq));
            }
            self.bad_seq = (seq as u32 + 1) & (RTP_SEQ_MOD - 1);
            return SequenceOutcome::Jump;
        }
        // else: duplicate or reordered packet, counted as received.
        self.received += 1;
        SequenceOutcome::Valid(self.extend(seq))
    }

    /// Extends `seq` relative to the highest sequence seen (handles reordering across a wrap).
    fn extend(&self, seq: u16) -> u64 {
        let highest = self.cycles + self.max_seq as u64;
        let delta = seq.wrapping_sub(self.max_seq) as i16 as i64;
        (highest as i64 + delta).max(0) as u64
    }

    fn update_jitter(&mut self, rtp_timestamp: u32, arrival: Instant) {
        let epoch = *self.epoch.get_or_insert(arrival);
        let micros = arrival.saturating_duration_since(epoch).as_micros() as u64;
        let arrival_ts = (micros * self.clock_rate as u64 / 1_000_000) as u32;
        let transit = arrival_ts.wrapping_sub(rtp_timestamp);
        if let Some(previous) = self.transit {
            let d = (transit.wrapping_sub(previous) as i32).unsigned_abs();
            // A.8: J += (|D| - J) / 16, kept in fixed point scaled by 16.
            self.jitter_q4 = self
                .jitter_q4
                .wrapping_add(d)
                .wrapping_sub((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// Records a sender report from this source for LSR/DLSR (RFC 3550 §6.4.1).
    pub fn on_sender_report(&mut self, ntp_timestamp: u64, arrival: Instant) {
        self.last_sender_report = Some(((ntp_timestamp >> 16) as u32, arrival));
    }

    /// Current statistics.
    pub fn stats(&self) -> ReceptionStats {
        let extended_highest = self.cycles + self.max_seq as u64;
        let expected = if self.is_valid() {
            extended_highest.saturating_sub(self.base_seq) + 1
        } else {
            0
        };
        ReceptionStats {
            received: self.received,
            expected,
            cumulative_lost: expected as i64 - self.received as i64,
            extended_highest,
            jitter: self.jitter_q4 >> 4,
        }
    }

    /// Interarrival jitter as a duration.
    pub fn jitter(&self) -> Duration {
        Duration::from_micros((self.jitter_q4 >> 4) as u64 * 1_000_000 / self.clock_rate as u64)
    }

    /// Builds the report block for an RR/SR sent at `now`, advancing the "since last report"
    /// counters (RFC 3550 A.3).
    pub fn report_block(&mut self, now: Instant) -> ReportBlock {
        let stats = self.stats();
        let expected_interval = stats.expected.saturating_sub(self.expected_prior);
        self.expected_prior = stats.expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let (last_sender_report, delay_since_last_sender_report) = match self.last_sender_report {
            Some((lsr, at)) => {
                let delay = now.saturating_duration_since(at);
                (lsr, (delay.as_micros() as u64 * 65536 / 1_000_000) as u32)
            }
            None => (0, 0),
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: stats.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_sequence: stats.extended_highest as u32,
            jitter: stats.jitter,
            last_sender_report,
            delay_since_last_sender_report,
        }
    }
}
