//! The sending side of one RTP stream: SSRC, sequence and timestamp continuity, the talkspurt
//! marker, sender-report counters, and pacing deadlines (one per packet time: 10–40 ms).

use std::time::{Duration, Instant};

use crate::rtcp::SenderInfo;
use crate::{PayloadType, RtpPacket, Ssrc};

/// How to start a stream. The initial sequence number and timestamp should be random (RFC 3550
/// §5.1); they are inputs so the core stays deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// Our SSRC.
    pub ssrc: Ssrc,
    /// The negotiated audio payload type.
    pub payload_type: PayloadType,
    /// RTP clock rate (8000 for G.711).
    pub clock_rate: u32,
    /// Packet duration in milliseconds (the negotiated ptime: 10, 20, 30 or 40).
    pub ptime_ms: u32,
    /// First sequence number.
    pub initial_sequence: u16,
    /// First timestamp.
    pub initial_timestamp: u32,
}

/// Sending state of one stream.
#[derive(Debug, Clone)]
pub struct RtpSender {
    config: SenderConfig,
    sequence: u16,
    timestamp: u32,
    talkspurt_start: bool,
    packet_count: u32,
    octet_count: u32,
}

impl RtpSender {
    /// A new stream; its first packet carries the marker bit.
    pub fn new(config: SenderConfig) -> Self {
        RtpSender {
            config,
            sequence: config.initial_sequence,
            timestamp: config.initial_timestamp,
            talkspurt_start: true,
            packet_count: 0,
            octet_count: 0,
        }
    }

    /// Samples per packet (160 for 20 ms at 8 kHz).
    pub fn samples_per_packet(&self) -> u32 {
        self.config.clock_rate * self.config.ptime_ms / 1000
    }

    /// The SSRC.
    pub fn ssrc(&self) -> Ssrc {
        self.config.ssrc
    }

    /// Timestamp the next audio packet will carry.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// The next audio packet: one `ptime` of encoded payload. Advances sequence and timestamp.
    pub fn next_packet<'p>(&mut self, payload: &'p [u8]) -> RtpPacket<'p> {
        let mut packet = RtpPacket::new(
            self.config.payload_type,
            self.sequence,
            self.timestamp,
            self.config.ssrc,
            payload,
        );
        // RFC 3551 §4.1: the marker flags the first packet after a silence period.
        packet.marker = std::mem::take(&mut self.talkspurt_start);
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(self.samples_per_packet());
        self.count(payload.len());
        packet
    }

    /// A packet of another payload type (telephone-event) sharing this stream's sequence space,
    /// with an explicit timestamp and marker. Does not advance the audio timestamp.
    pub fn packet_with<'p>(
        &mut self,
        payload_type: PayloadType,
        marker: bool,
        timestamp: u32,
        payload: &'p [u8],
    ) -> RtpPacket<'p> {
        let mut packet = RtpPacket::new(
            payload_type,
            self.sequence,
            timestamp,
            self.config.ssrc,
            payload,
        );
        packet.marker = marker;
        self.sequence = self.sequence.wrapping_add(1);
        self.count(payload.len());
        packet
    }

    /// Skips `packets` packet times without sending (silence suppression, or time covered by a
    /// telephone event). The next audio packet starts a talkspurt.
    pub fn skip(&mut self, packets: u32) {
        self.timestamp = self
            .timestamp
            .wrapping_add(self.samples_per_packet().wrapping_mul(packets));
        self.talkspurt_start = true;
    }

    /// Changes the packet time (a re-INVITE negotiated another): later packets carry
    /// `ptime_ms` of audio; sequence and timestamp continue.
    pub fn set_ptime(&mut self, ptime_ms: u32) {
        self.config.ptime_ms = ptime_ms;
    }

    /// Marks the next audio packet as the start of a talkspurt.
    pub fn start_talkspurt(&mut self) {
        self.talkspurt_start = true;
    }

    /// Sender information for an SR. `ntp_timestamp` is the wall clock at `rtp_timestamp`
    /// (usually [`timestamp`](Self::timestamp) at the moment of sending).
    pub fn sender_info(&self, ntp_timestamp: u64, rtp_timestamp: u32) -> SenderInfo {
        SenderInfo {
            ntp_timestamp,
            rtp_timestamp,
            packet_count: self.packet_count,
            octet_count: self.octet_count,
        }
    }

    fn count(&mut self, octets: usize) {
        self.packet_count = self.packet_count.wrapping_add(1);
        self.octet_count = self.octet_count.wrapping_add(octets as u32);
    }
}

/// Deadlines for a fixed packet interval, anchored at a start instant so that jitter in when the
/// driver wakes up does not accumulate as drift.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    start: Instant,
    interval: Duration,
    sent: u64,
}

impl Pacer {
    /// The first packet is due at `start`.
    pub fn new(start: Instant, interval: Duration) -> Self {
        Pacer {
            start,
            interval: interval.max(Duration::from_micros(1)),
            sent: 0,
        }
    }

    /// When the next packet is due (the driver's `poll_timeout`).
    pub fn poll_timeout(&self) -> Instant {
        self.start + self.interval * (self.sent as u32)
    }

    /// How many packets are due at `now`, marking them sent. After a stall longer than
    /// `max_burst` intervals the excess is skipped (returned count capped) rather than burst out.
    pub fn handle_timeout(&mut self, now: Instant, max_burst: u32) -> u32 {
        let elapsed = now.saturating_duration_since(self.start);
        let due_total = (elapsed.as_nanos() / self.interval.as_nanos()) as u64 + 1;
        if due_total <= self.sent {
            return 0;
        }
        let due = due_total - self.sent;
        let send = due.min(max_burst as u64);
        self.sent = due_total;
        send as u32
    }
}
