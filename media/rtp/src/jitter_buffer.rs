//! Adaptive jitter buffer (sans-IO): [`JitterBuffer::push`] packets with their arrival time,
//! [`JitterBuffer::pop`] one frame per 20 ms playout tick.
//!
//! Packets need not be 20 ms: with [`JitterConfig::timestamp_units_per_byte`] set (1 for G.711),
//! a popped packet moves playout on by its own duration, so a caller that pops until it has a
//! frame's worth of samples plays 10, 30 or 40 ms packets without gaps; a tick with nothing due
//! is one frame lost.
//!
//! Playout starts when the first packet has waited the target delay. From then on each `pop`
//! plays the frame whose timestamp is next, reports it [`Playout::Lost`] when a later one is
//! already here (the caller conceals it), and after a few empty ticks goes back to buffering; the
//! next talkspurt is then scheduled with the current target delay, which is how the delay adapts
//! (RFC 3550 A.8 jitter estimate, `target = frame + 3·J` within `[min, max]`). Late, duplicate
//! and overflowing packets are counted drops. Feed audio payload types only; route
//! telephone-event packets to the RFC 4733 receiver.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::{RtpPacket, Ssrc};

/// Jitter buffer tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Frame (tick) duration.
    pub frame: Duration,
    /// Smallest target delay.
    pub min_delay: Duration,
    /// Largest target delay.
    pub max_delay: Duration,
    /// Target delay before any jitter has been measured.
    pub initial_delay: Duration,
    /// Most frames held; older ones are dropped beyond it.
    pub capacity: usize,
    /// Empty ticks concealed before going back to buffering (DTX or a stalled peer).
    pub max_concealed: u32,
    /// Timestamp distance, in ms, beyond which a packet is a stream jump and resets the buffer.
    pub max_jump_ms: u32,
    /// RTP timestamp units per payload byte (1 for G.711 at 8 kHz): a packet then lasts its
    /// payload length. 0: every packet lasts one `frame`.
    pub timestamp_units_per_byte: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            clock_rate: 8000,
            frame: Duration::from_millis(20),
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            initial_delay: Duration::from_millis(60),
            capacity: 50,
            max_concealed: 5,
            max_jump_ms: 10_000,
            timestamp_units_per_byte: 0,
        }
    }
}

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued for playout.
    Queued,
    /// Already queued; dropped.
    Duplicate,
    /// Its playout time has passed; dropped.
    TooLate,
    /// A new SSRC or a timestamp jump reset the buffer; the packet was queued as the first of a
    /// new stream.
    Reset,
}

/// One tick's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Still buffering, or idle: play nothing (or comfort noise).
    Buffering,
    /// The frame for this tick.
    Frame(Frame),
    /// This tick's frame is missing: conceal it.
    Lost {
        /// The missing frame's RTP timestamp.
        timestamp: u32,
        /// How much to conceal, in timestamp units: the length of the packet played before
        /// (one `frame` unless `timestamp_units_per_byte` is set).
        duration: u32,
    },
}

/// A buffered frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// RTP timestamp.
    pub timestamp: u32,
    /// Sequence number.
    pub sequence: u16,
    /// Marker bit.
    pub marker: bool,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// Counters, for the appliance's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterStats {
    /// Frames played.
    pub played: u64,
    /// Ticks reported lost.
    pub lost: u64,
    /// Packets dropped as late.
    pub late: u64,
    /// Packets dropped as duplicates.
    pub duplicates: u64,
    /// Packets dropped because the buffer was full.
    pub overflow: u64,
    /// Resets on SSRC change or timestamp jump.
    pub resets: u64,
    /// Current jitter estimate.
    pub jitter: Duration,
    /// Current target delay.
    pub target_delay: Duration,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Waiting for the first packet to age by the target delay.
    Buffering { first_arrival: Option<Instant> },
    /// Playing; `next` is the extended timestamp of the next frame, `packet` the length of the
    /// last one played (what the next is expected to last).
    Playing {
        next: i64,
        packet: i64,
        empty_ticks: u32,
    },
}

/// The buffer.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    ssrc: Option<Ssrc>,
    frames: BTreeMap<i64, Frame>,
    /// Last seen timestamp and its extended value, for unwrapping.
    reference: Option<(u32, i64)>,
    state: State,
    /// Previous (arrival µs since epoch, extended ts) for the jitter estimate.
    last_transit: Option<i64>,
    epoch: Option<Instant>,
    /// A.8 jitter in timestamp units, scaled by 16.
    jitter_q4: u64,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(config: JitterConfig) -> Self {
        let mut jb = JitterBuffer {
            config,
            ssrc: None,
            frames: BTreeMap::new(),
            reference: None,
            state: State::Buffering {
                first_arrival: None,
            },
            last_transit: None,
            epoch: None,
            jitter_q4: 0,
            stats: JitterStats::default(),
        };
        jb.stats.target_delay = config.initial_delay;
        jb
    }

    /// Counters and the current estimates.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Frames currently held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    fn frame_ts(&self) -> i64 {
        (self.config.clock_rate as u128 * self.config.frame.as_micros() / 1_000_000) as i64
    }

    /// How long `frame` plays, in timestamp units.
    fn duration_ts(&self, frame: &Frame) -> i64 {
        match self.config.timestamp_units_per_byte {
            0 => self.frame_ts(),
            _ if frame.payload.is_empty() => self.frame_ts(),
            units => frame.payload.len() as i64 * i64::from(units),
        }
    }

    /// Audio held from `next` to the end of the last queued packet.
    fn held(&self, next: i64) -> Duration {
        let Some((&last, frame)) = self.frames.last_key_value() else {
            return Duration::ZERO;
        };
        let span = (last + self.duration_ts(frame) - next).max(0) as u64;
        Duration::from_micros(span * 1_000_000 / u64::from(self.config.clock_rate.max(1)))
    }

    /// Adds a packet that arrived at `arrival`.
    pub fn push(&mut self, packet: &RtpPacket<'_>, arrival: Instant) -> PushOutcome {
        let mut outcome = PushOutcome::Queued;
        if self.ssrc != Some(packet.ssrc) {
            if self.ssrc.is_some() {
                self.reset();
                outcome = PushOutcome::Reset;
            }
            self.ssrc = Some(packet.ssrc);
        }
        let max_jump = self.config.max_jump_ms as i64 * self.config.clock_rate as i64 / 1000;
        let ext = match self.reference {
            Some((ts, ext)) => {
                let candidate = ext + packet.timestamp.wrapping_sub(ts) as i32 as i64;
                if (candidate - ext).abs() > max_jump {
                    self.reset();
                    outcome = PushOutcome::Reset;
                    packet.timestamp as i64
                } else {
                    candidate
                }
            }
            None => packet.timestamp as i64,
        };
        if self.reference.is_none_or(|(_, e)| ext > e) {
            self.reference = Some((packet.timestamp, ext));
        }
        self.update_jitter(ext, arrival);

        match &mut self.state {
            State::Playing { next, .. } if ext < *next => {
                self.stats.late += 1;
                return PushOutcome::TooLate;
            }
            State::Buffering { first_arrival } => {
                first_arrival.get_or_insert(arrival);
            }
            _ => {}
        }
        if self.frames.contains_key(&ext) {
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        self.frames.insert(
            ext,
            Frame {
                timestamp: packet.timestamp,
                sequence: packet.sequence,
                marker: packet.marker,
                payload: packet.payload.to_vec(),
            },
        );
        while self.frames.len() > self.config.capacity.max(1) {
            self.frames.pop_first();
            self.stats.overflow += 1;
        }
        outcome
    }

    /// One playout tick at `now`.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let frame_ts = self.frame_ts();
        match self.state {
            State::Buffering { first_arrival } => {
                let Some(first) = first_arrival else {
                    return Playout::Buffering;
                };
                if now < first + self.stats.target_delay {
                    return Playout::Buffering;
                }
                let Some((&start, _)) = self.frames.first_key_value() else {
                    self.state = State::Buffering {
                        first_arrival: None,
                    };
                    return Playout::Buffering;
                };
                self.state = State::Playing {
                    next: start,
                    packet: frame_ts,
                    empty_ticks: 0,
                };
                self.pop(now)
            }
            State::Playing {
                next,
                packet,
                empty_ticks,
            } => {
                // The packet whose timestamp falls in [next, next + packet length).
                let hit = self
                    .frames
                    .range(next..next + packet.max(1))
                    .next()
                    .map(|(&k, _)| k);
                let out = if let Some(key) = hit {
                    // Invariant: `key` was just found in the map.
                    let frame = self.frames.remove(&key);
                    let length = frame.as_ref().map_or(packet, |f| self.duration_ts(f));
                    self.state = State::Playing {
                        next: key + length,
                        packet: length,
                        empty_ticks: 0,
                    };
                    self.stats.played += 1;
                    frame.map_or(Playout::Buffering, Playout::Frame)
                } else if self.frames.is_empty() && empty_ticks >= self.config.max_concealed {
                    // Silence or a stall: rebuffer, so the next talkspurt gets the current target.
                    self.state = State::Buffering {
                        first_arrival: None,
                    };
                    return Playout::Buffering;
                } else {
                    self.state = State::Playing {
                        next: next + packet,
                        packet,
                        empty_ticks: if self.frames.is_empty() {
                            empty_ticks + 1
                        } else {
                            0
                        },
                    };
                    self.stats.lost += 1;
                    Playout::Lost {
                        timestamp: next as u32,
                        duration: packet as u32,
                    }
                };
                // Latency trim: far above target, skip one queued packet (counted as overflow).
                if let State::Playing {
                    next,
                    packet,
                    empty_ticks,
                } = self.state
                {
                    if self.held(next) > self.stats.target_delay + 3 * self.config.frame {
                        if let Some((key, frame)) = self.frames.pop_first() {
                            self.state = State::Playing {
                                next: next.max(key + self.duration_ts(&frame)),
                                packet,
                                empty_ticks,
                            };
                            self.stats.overflow += 1;
                        }
                    }
                }
                out
            }
        }
    }

    fn update_jitter(&mut self, ext: i64, arrival: Instant) {
        let epoch = *self.epoch.get_or_insert(arrival);
        let arrival_ts = (arrival.saturating_duration_since(epoch).as_micros()
            * self.config.clock_rate as u128
            / 1_000_000) as i64;
        let transit = arrival_ts - ext;
        if let Some(previous) = self.last_transit {
            let d = (transit - previous).unsigned_abs().min(1 << 32);
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
        let jitter_us = (self.jitter_q4 >> 4) * 1_000_000 / self.config.clock_rate.max(1) as u64;
        self.stats.jitter = Duration::from_micros(jitter_us);
        self.stats.target_delay = (self.config.frame + 3 * self.stats.jitter)
            .clamp(self.config.min_delay, self.config.max_delay);
    }

    fn reset(&mut self) {
        self.frames.clear();
        self.reference = None;
        self.state = State::Buffering {
            first_arrival: None,
        };
        self.last_transit = None;
        self.epoch = None;
        self.stats.resets += 1;
    }
}
