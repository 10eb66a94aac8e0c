//! RFC 4733 telephone-event: the payload, a receiver that turns packets into one digit per key
//! press, and a sender that produces the packets for one digit.

use std::collections::VecDeque;

use crate::Error;

/// An event code (RFC 4733 §3.2: 0–9, 10 `*`, 11 `#`, 12–15 A–D, 16 flash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventCode(pub u8);

impl EventCode {
    /// The DTMF character for codes 0..=15.
    pub fn to_char(self) -> Option<char> {
        Some(match self.0 {
            0..=9 => (b'0' + self.0) as char,
            10 => '*',
            11 => '#',
            12..=15 => (b'A' + self.0 - 12) as char,
            _ => return None,
        })
    }

    /// The code for a DTMF character (`0-9 * # A-D`, case-insensitive).
    pub fn from_char(c: char) -> Option<Self> {
        Some(EventCode(match c.to_ascii_uppercase() {
            d @ '0'..='9' => d as u8 - b'0',
            '*' => 10,
            '#' => 11,
            l @ 'A'..='D' => l as u8 - b'A' + 12,
            _ => return None,
        }))
    }
}

/// One telephone-event payload block (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event.
    pub event: EventCode,
    /// E bit: the event has ended.
    pub end: bool,
    /// Power level, 0..=63 meaning 0 to −63 dBm0.
    pub volume: u8,
    /// Duration so far in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Encoded length.
    pub const LEN: usize = 4;

    /// Parses the first block of a payload. The R bit is ignored as §2.3 requires.
    pub fn parse(payload: &[u8]) -> Result<Self, Error> {
        match payload {
            [event, flags, d0, d1, ..] => Ok(TelephoneEvent {
                event: EventCode(*event),
                end: flags & 0x80 != 0,
                volume: flags & 0x3F,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => Err(Error::TelephoneEventTooShort(payload.len())),
        }
    }

    /// Encodes the block (R bit zero, volume masked to 6 bits).
    pub fn to_bytes(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event.0,
            (self.end as u8) << 7 | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// A key press recognised by [`TelephoneEventReceiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// The event.
    pub event: EventCode,
    /// The RTP timestamp identifying the press (the event's start).
    pub timestamp: u32,
}

/// Turns a stream of telephone-event packets into exactly one [`Digit`] per key press.
///
/// RFC 4733 §2.5.2: all packets of one event share its start timestamp, updates grow the
/// duration, and the end packet is sent (typically) three times. The receiver reports a digit on
/// the first packet it sees for a new timestamp — start, update or end, so a lost start packet
/// still yields the digit — and ignores everything else for that timestamp and any older one.
#[derive(Debug, Clone, Default)]
pub struct TelephoneEventReceiver {
    current: Option<Current>,
    /// Timestamps of recent events, to drop retransmissions arriving after a newer event began.
    recent: VecDeque<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    timestamp: u32,
    ended: bool,
    duration: u16,
}

const RECENT: usize = 16;

impl TelephoneEventReceiver {
    /// A receiver with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one packet's RTP timestamp and payload. Returns the digit if this packet starts a
    /// new key press. A short payload is an error; everything else is a value.
    pub fn handle(&mut self, rtp_timestamp: u32, payload: &[u8]) -> Result<Option<Digit>, Error> {
        let event = TelephoneEvent::parse(payload)?;
        if let Some(current) = &mut self.current {
            if current.timestamp == rtp_timestamp {
                current.duration = current.duration.max(event.duration);
                current.ended |= event.end;
                return Ok(None);
            }
            // Serial-number comparison: anything older than the current event is stale.
            if (rtp_timestamp.wrapping_sub(current.timestamp) as i32) < 0 {
                return Ok(None);
            }
        }
        if self.recent.contains(&rtp_timestamp) {
            return Ok(None);
        }
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(rtp_timestamp);
        self.current = Some(Current {
            timestamp: rtp_timestamp,
            ended: event.end,
            duration: event.duration,
        });
        Ok(Some(Digit {
            event: event.event,
            timestamp: rtp_timestamp,
        }))
    }

    /// Whether a key is held down now (a current event without an end packet yet).
    pub fn is_active(&self) -> bool {
        self.current.is_some_and(|c| !c.ended)
    }
}

/// One packet of a digit: send with the telephone-event payload type, this marker and
/// timestamp, sharing the audio stream's SSRC and sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// Marker bit (set on the first packet of the event, RFC 4733 §2.5.1.1).
    pub marker: bool,
    /// RTP timestamp: the event's start, constant for all its packets.
    pub timestamp: u32,
    /// The payload.
    pub event: TelephoneEvent,
}

/// Produces the packets of one digit, one per packet interval: the first with the marker, updates
/// with growing duration, then the end packet three times (RFC 4733 §2.5.1.4).
#[derive(Debug, Clone)]
pub struct TelephoneEventSender {
    event: EventCode,
    volume: u8,
    timestamp: u32,
    total: u16,
    step: u16,
    elapsed: u16,
    ends_sent: u8,
}

impl TelephoneEventSender {
    /// Number of times the end packet is sent.
    pub const END_REPEATS: u8 = 3;

    /// A digit starting at `timestamp` lasting `duration` timestamp units (capped at 65535; longer
    /// events would need §2.5.1.3 segmentation), sent every `step` units (160 for 20 ms at 8 kHz).
    pub fn new(event: EventCode, volume: u8, timestamp: u32, duration: u32, step: u16) -> Self {
        TelephoneEventSender {
            event,
            volume: volume & 0x3F,
            timestamp,
            total: duration.clamp(1, u16::MAX as u32) as u16,
            step: step.max(1),
            elapsed: 0,
            ends_sent: 0,
        }
    }

    /// Whether all packets have been produced.
    pub fn is_done(&self) -> bool {
        self.ends_sent >= Self::END_REPEATS
    }
}

impl Iterator for TelephoneEventSender {
    type Item = EventPacket;

    fn next(&mut self) -> Option<EventPacket> {
        if self.is_done() {
            return None;
        }
        let marker = self.elapsed == 0;
        self.elapsed = self.elapsed.saturating_add(self.step).min(self.total);
        let end = self.elapsed >= self.total;
        if end {
            self.ends_sent += 1;
        }
        Some(EventPacket {
            marker,
            timestamp: self.timestamp,
            event: TelephoneEvent {
                event: self.event,
                end,
                volume: self.volume,
                duration: self.elapsed,
            },
        })
    }
}
