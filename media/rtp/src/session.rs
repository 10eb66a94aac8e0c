//! One call's RTP session, sans-IO: what arrives is admitted, decoded and played out in 20 ms
//! frames; what the application queues is sent paced at the negotiated ptime; RTCP reports go out
//! on schedule. The driver (`media-net`, on tokio sockets) owns the sockets and the clock:
//!
//! ```text
//! session.handle_datagram(now, socket, from, &bytes);  // input from the network
//! session.handle_timeout(now);                         // input from the clock
//! session.push_audio(&samples);                        // commands from the application
//! while let Some(t) = session.poll_transmit() { … }    // datagrams to send
//! while let Some(e) = session.poll_event() { … }       // frames, digits, latching
//! let wake = session.poll_timeout();                   // when to call handle_timeout
//! ```
//!
//! After any input, drain `poll_transmit` and `poll_event` before the next input.
//!
//! Inbound RTP goes through the [`SourceFilter`] (only the caller's address, or a NAT port of
//! the caller's host latched in the first seconds, and one live SSRC), [`SourceState`] (RFC 3550
//! A.1 validation, loss, jitter) and the [`JitterBuffer`], and comes out as decoded 20 ms frames
//! (G.711, with concealment for lost packets) whatever the peer's packet size; telephone events go
//! to the [`TelephoneEventReceiver`]. Outbound audio is sent in packets of the negotiated ptime
//! (10–40 ms) from a [`Pacer`] anchored at the start (deadlines are `start + n·ptime`, so late
//! wake-ups never accumulate); a second pacer plays inbound audio out every 20 ms.
//!
//! On an SRTP call ([`RtpConfig::srtp`]) every datagram is authenticated and decrypted before
//! anything else reads it (a forged, altered or replayed one goes no further and is counted), and
//! what we send is sealed last.
//!
//! When nothing is queued the session keeps sending G.711 silence rather than stopping: peers'
//! media-timeout detectors (Asterisk `rtptimeout`, FreeSWITCH `media_timeout`) hang up on a silent
//! stream, an SBC doing symmetric RTP needs our packets to latch to us, NAT bindings stay open, and
//! the peer's jitter buffer never rebuffers between our sentences. At 20 ms that is 50 packets/s of
//! 172 bytes per call.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use media_audio::g711::Law;
use media_audio::plc::Concealer;

use crate::rtcp::{self, RtcpPacket, SdesChunk, SdesItem, SourceDescription};
use crate::sdp::Direction;
use crate::srtp::{self, Keying};
use crate::telephone_event::{EventCode, TelephoneEventReceiver, TelephoneEventSender};
use crate::{
    classify, Admission, Error, JitterBuffer, JitterConfig, JitterStats, Pacer, PacketKind,
    PayloadType, Playout, ReceptionStats, RtpPacket, RtpSender, SenderConfig, SourceFilter,
    SourceState, Ssrc,
};

/// Samples per 20 ms frame at 8 kHz: the size of every [`Event::Audio`].
pub const FRAME_SAMPLES: usize = 160;
const FRAME: Duration = Duration::from_millis(20);
/// Samples of concealment for one lost packet, at most (a 40 ms packet).
const MAX_CONCEALED: usize = 320;
/// After a stall, send at most this many packets at once; the rest are skipped.
const MAX_BURST: u32 = 3;
/// How long a NAT'd source may be latched after the session starts or is renegotiated: a
/// caller's phone sends its first packets as soon as the call is answered.
pub const LATCH_WINDOW: Duration = Duration::from_secs(10);

/// How a session sends and receives; built from the SDP negotiation.
#[derive(Debug, Clone)]
pub struct RtpConfig {
    pub law: Law,
    pub payload_type: PayloadType,
    pub telephone_event: Option<PayloadType>,
    /// Where to send RTP; `None` until the peer is known (or latched).
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP; `None`: RTP port + 1 (or the RTP address with rtcp-mux).
    pub remote_rtcp: Option<SocketAddr>,
    /// Our direction (sendrecv; recvonly while the peer holds us).
    pub direction: Direction,
    /// Symmetric RTP (NAT): media from another port of the SDP's host or of
    /// [`RtpConfig::signalling_peer`] is accepted during the first
    /// [`RtpConfig::latch_window`], and then sent back to where it comes
    /// from rather than to the SDP address. Off: the SDP address only.
    pub latch: bool,
    pub latch_window: Duration,
    /// The host the call's SIP signalling comes from: a NAT's public address
    /// media may come from. Media from any other host than it and the SDP's
    /// is never accepted (see [`crate::source_filter`]).
    pub signalling_peer: Option<IpAddr>,
    /// Our SSRC and random initial sequence number and timestamp.
    pub ssrc: Ssrc,
    pub initial_sequence: u16,
    pub initial_timestamp: u32,
    pub jitter: JitterConfig,
    /// Milliseconds of audio per packet we send: the negotiated ptime (one of
    /// [`crate::sdp::PTIMES_MS`]). What we receive may be any size.
    pub ptime_ms: u32,
    /// RTCP report interval (RFC 3550 §6.2: 5 s minimum).
    pub rtcp_interval: Duration,
    /// RTCP SDES CNAME.
    pub cname: String,
    /// SRTP keys (SDES); `None`: plain RTP.
    pub srtp: Option<Keying>,
}

impl RtpConfig {
    /// The interval reports are scheduled at: the configured one, at least a second (an
    /// interval of zero would never move the schedule on).
    fn report_interval(&self) -> Duration {
        self.rtcp_interval.max(Duration::from_secs(1))
    }

    /// Defaults for a session to `remote_rtp` in `law`, random values from `seed`.
    pub fn new(law: Law, remote_rtp: Option<SocketAddr>, seed: u64) -> RtpConfig {
        let mut rng = SplitMix(seed);
        RtpConfig {
            law,
            payload_type: match law {
                Law::Mu => PayloadType::PCMU,
                Law::A => PayloadType::PCMA,
            },
            telephone_event: PayloadType::new(101).ok(),
            remote_rtp,
            remote_rtcp: None,
            direction: Direction::SendRecv,
            latch: true,
            latch_window: LATCH_WINDOW,
            signalling_peer: None,
            ssrc: Ssrc(rng.next() as u32),
            initial_sequence: rng.next() as u16,
            initial_timestamp: rng.next() as u32,
            // G.711: one byte per sample, so packets of any size play back to back.
            jitter: JitterConfig {
                timestamp_units_per_byte: 1,
                ..JitterConfig::default()
            },
            ptime_ms: 20,
            rtcp_interval: Duration::from_secs(5),
            cname: format!("switchboard-{:08x}", rng.next() as u32),
            srtp: None,
        }
    }
}

/// Which of the session's local sockets a datagram arrived on or leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// The RTP port (RTCP too, with rtcp-mux).
    Rtp,
    /// The RTCP port above it.
    Rtcp,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub socket: Socket,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What the session tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// 20 ms of 8 kHz audio: decoded, or concealed when the packet was lost.
    Audio(Vec<i16>),
    /// An RFC 4733 key press (once per press).
    Digit(char),
    /// Symmetric RTP: we now send to where the peer's RTP comes from.
    Latched(SocketAddr),
    /// The first packet refused as not this call's media (an injection attempt, a stale
    /// stream). Later ones are only counted: a flood must not flood the log.
    Refused {
        from: SocketAddr,
        why: Admission,
        /// The source the session plays, if it has locked to one.
        accepted: Option<SocketAddr>,
    },
    /// The first SRTP or SRTCP packet that failed authentication or was a replay (forged,
    /// altered, plain RTP into an SRTP call). Later ones are only counted.
    Unauthenticated {
        from: SocketAddr,
        error: crate::Error,
    },
    /// The peer sent an RTCP BYE.
    PeerBye,
}

/// What [`RtpSession::clear_outbound`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleared {
    /// Queued samples sent since the previous clear (or the start): how much
    /// of the interrupted reply the caller actually heard.
    pub sent_samples: u64,
    /// Samples discarded from the queue.
    pub dropped_samples: usize,
}

/// Counters, for the appliance's metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionStats {
    pub packets_sent: u64,
    pub packets_received: u64,
    /// Datagrams that were not RTP/RTCP, or had an unexpected payload type.
    pub packets_ignored: u64,
    /// RTP/RTCP from an address or SSRC the session does not accept (injection attempts, a
    /// stale stream), dropped unplayed.
    pub packets_refused: u64,
    /// SRTP/SRTCP packets that failed authentication or were replays, dropped undecrypted.
    pub packets_unauthenticated: u64,
    /// Inbound packets decoded and played (one per 20 ms at ptime 20).
    pub frames_delivered: u64,
    /// Lost inbound packets concealed.
    pub frames_concealed: u64,
    /// Frames the application did not take in time: counted by the driver that hands frames
    /// over (the session itself never drops one).
    pub frames_dropped: u64,
    pub digits_received: u64,
    pub digits_sent: u64,
    pub rtcp_sent: u64,
    pub rtcp_received: u64,
    /// Samples of queued audio sent (silence fill excluded).
    pub samples_played: u64,
    pub reception: Option<ReceptionStats>,
    pub jitter: JitterStats,
    pub remote_rtp: Option<SocketAddr>,
    pub latched: bool,
}

/// One call's RTP session (see the module documentation).
pub struct RtpSession {
    config: RtpConfig,
    /// Whether RTCP has its own socket (no rtcp-mux).
    rtcp_socket: bool,
    sender: RtpSender,
    source: Option<SourceState>,
    jitter: JitterBuffer,
    concealer: Concealer,
    digits_in: TelephoneEventReceiver,
    outbound: VecDeque<i16>,
    digits_out: VecDeque<(EventCode, Duration)>,
    digit_now: Option<TelephoneEventSender>,
    sent_since_clear: u64,
    latched_rtcp: Option<SocketAddr>,
    /// Who may send media into the call; the source it locked to is where we send (symmetric
    /// RTP) when that is not the SDP's address.
    sources: SourceFilter,
    sent_since_report: bool,
    stats: SessionStats,
    encoded: Vec<u8>,
    decoded: Vec<i16>,
    /// Decoded inbound audio not yet played out in 20 ms frames.
    inbound: VecDeque<i16>,
    /// Outbound packets, every ptime.
    send_pacer: Pacer,
    /// Inbound frames, every 20 ms.
    play_pacer: Pacer,
    next_report: Instant,
    /// The monotonic and wall clocks at the start, for RTCP's NTP timestamps.
    start: Instant,
    start_ntp: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Seals what we send and opens what arrives, on an SRTP call.
    protect: Option<srtp::Outbound>,
    unprotect: Option<srtp::Inbound>,
    /// What `unprotect` last opened, kept for the next packet.
    opened: Vec<u8>,
}

impl std::fmt::Debug for RtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpSession")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl RtpSession {
    /// A session starting at `now` (`wall` is the same moment on the wall clock, for RTCP).
    /// `rtcp_socket`: RTCP has its own port (no rtcp-mux).
    pub fn new(now: Instant, wall: SystemTime, config: RtpConfig, rtcp_socket: bool) -> Self {
        let sender = RtpSender::new(SenderConfig {
            ssrc: config.ssrc,
            payload_type: config.payload_type,
            clock_rate: 8000,
            ptime_ms: ptime(config.ptime_ms).as_millis() as u32,
            initial_sequence: config.initial_sequence,
            initial_timestamp: config.initial_timestamp,
        });
        let sources = SourceFilter::new(
            now,
            config.remote_rtp,
            config.signalling_peer,
            config.latch,
            config.latch_window,
        );
        let protect = config
            .srtp
            .as_ref()
            .map(|k| srtp::Outbound::new(k.suite, &k.ours));
        let unprotect = config
            .srtp
            .as_ref()
            .map(|k| srtp::Inbound::new(k.suite, &k.theirs));
        RtpSession {
            protect,
            unprotect,
            opened: Vec::new(),
            sources,
            send_pacer: Pacer::new(now, ptime(config.ptime_ms)),
            play_pacer: Pacer::new(now, FRAME),
            next_report: now + config.report_interval(),
            start: now,
            start_ntp: ntp(wall),
            inbound: VecDeque::with_capacity(2 * FRAME_SAMPLES),
            rtcp_socket,
            jitter: JitterBuffer::new(config.jitter),
            config,
            sender,
            source: None,
            concealer: Concealer::new(8000),
            digits_in: TelephoneEventReceiver::new(),
            outbound: VecDeque::new(),
            digits_out: VecDeque::new(),
            digit_now: None,
            sent_since_clear: 0,
            latched_rtcp: None,
            sent_since_report: false,
            stats: SessionStats::default(),
            encoded: Vec::with_capacity(MAX_CONCEALED),
            decoded: Vec::with_capacity(MAX_CONCEALED),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    // ---- inputs ----

    /// A datagram that arrived on `socket` from `from`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        socket: Socket,
        from: SocketAddr,
        bytes: &[u8],
    ) {
        let rtcp = match (socket, classify(bytes)) {
            (Socket::Rtcp, _) | (Socket::Rtp, PacketKind::Rtcp) => true,
            (Socket::Rtp, PacketKind::Rtp) => false,
            (Socket::Rtp, PacketKind::Unknown) => {
                self.stats.packets_ignored += 1;
                return;
            }
        };
        let Some(inbound) = &mut self.unprotect else {
            return self.on_datagram(now, from, rtcp, bytes);
        };
        // Opened into the session's own buffer: no allocation per packet.
        let mut opened = std::mem::take(&mut self.opened);
        let result = if rtcp {
            inbound.unprotect_rtcp(bytes, &mut opened)
        } else {
            inbound.unprotect_rtp(bytes, &mut opened)
        };
        match result {
            Ok(()) => self.on_datagram(now, from, rtcp, &opened),
            Err(error) => {
                if self.stats.packets_unauthenticated == 0 {
                    self.events
                        .push_back(Event::Unauthenticated { from, error });
                }
                self.stats.packets_unauthenticated += 1;
            }
        }
        self.opened = opened;
    }

    fn on_datagram(&mut self, now: Instant, from: SocketAddr, rtcp: bool, plain: &[u8]) {
        if rtcp {
            self.on_rtcp(now, from, plain);
        } else {
            self.on_rtp(now, from, plain);
        }
    }

    /// Sends and plays what is due at `now`, and the RTCP report when it is time.
    pub fn handle_timeout(&mut self, now: Instant) {
        for _ in 0..self.send_pacer.handle_timeout(now, MAX_BURST) {
            self.send_one();
        }
        for _ in 0..self.play_pacer.handle_timeout(now, MAX_BURST) {
            self.play_one(now);
        }
        if now >= self.next_report {
            self.send_report(now, false);
            // One report per wake-up; a stalled driver does not send a burst of them.
            let interval = self.config.report_interval();
            while self.next_report <= now {
                self.next_report += interval;
            }
        }
    }

    // ---- commands ----

    /// Queues 8 kHz audio of any length for paced playout.
    pub fn push_audio(&mut self, samples: &[i16]) {
        self.outbound.extend(samples);
    }

    /// Barge-in: drops everything queued; the next packet is silence.
    pub fn clear_outbound(&mut self) -> Cleared {
        let cleared = Cleared {
            sent_samples: std::mem::take(&mut self.sent_since_clear),
            dropped_samples: self.outbound.len(),
        };
        self.outbound.clear();
        cleared
    }

    /// Queues an RFC 4733 digit (0-9, *, #, A-D); audio pauses while it plays.
    pub fn send_digit(&mut self, digit: char, duration: Duration) -> Result<(), Error> {
        let event = EventCode::from_char(digit).ok_or(Error::NotADigit(digit))?;
        if self.config.telephone_event.is_none() {
            return Err(Error::NoTelephoneEvent);
        }
        self.digits_out.push_back((event, duration));
        Ok(())
    }

    /// Applies a renegotiation (hold, resume, new address, codec or ptime); the sending stream
    /// (SSRC, sequence, timestamps) continues.
    pub fn update(&mut self, now: Instant, config: RtpConfig) {
        if config.remote_rtp != self.config.remote_rtp {
            // A new address from SDP overrides an earlier latch; a source may latch again in a
            // new window.
            self.latched_rtcp = None;
            self.sources.renegotiated(now, config.remote_rtp);
        }
        if config.payload_type != self.config.payload_type {
            self.jitter = JitterBuffer::new(config.jitter);
        }
        // New keys get new contexts; a side whose key is unchanged keeps its context, since
        // starting it again would reuse its keystream (RFC 4568 §7.1.4).
        let (old, new) = (self.config.srtp.as_ref(), config.srtp.as_ref());
        if old.map(|k| (k.suite, &k.ours)) != new.map(|k| (k.suite, &k.ours)) {
            self.protect = new.map(|k| srtp::Outbound::new(k.suite, &k.ours));
        }
        if old.map(|k| (k.suite, &k.theirs)) != new.map(|k| (k.suite, &k.theirs)) {
            self.unprotect = new.map(|k| srtp::Inbound::new(k.suite, &k.theirs));
        }
        if config.ptime_ms != self.config.ptime_ms {
            // The packets change size from the next deadline on.
            self.sender.set_ptime(config.ptime_ms);
            self.send_pacer = Pacer::new(now, ptime(config.ptime_ms));
        }
        // A re-offer's SDP does not say where signalling comes from.
        self.config = RtpConfig {
            signalling_peer: config.signalling_peer.or(self.config.signalling_peer),
            ssrc: self.config.ssrc,
            initial_sequence: self.config.initial_sequence,
            initial_timestamp: self.config.initial_timestamp,
            cname: std::mem::take(&mut self.config.cname),
            ..config
        };
    }

    /// The session ends: a last report with an RTCP BYE (RFC 3550 §6.6).
    pub fn close(&mut self, now: Instant) {
        self.send_report(now, true);
    }

    // ---- outputs ----

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`RtpSession::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Instant {
        self.send_pacer
            .poll_timeout()
            .min(self.play_pacer.poll_timeout())
            .min(self.next_report)
    }

    pub fn config(&self) -> &RtpConfig {
        &self.config
    }

    pub fn stats(&self) -> SessionStats {
        SessionStats {
            reception: self.source.as_ref().map(SourceState::stats),
            jitter: self.jitter.stats(),
            remote_rtp: self.remote_rtp(),
            latched: self.latched_rtp().is_some(),
            ..self.stats
        }
    }

    // ---- where to send ----

    /// Where the caller's media comes from when that is not the SDP's address (symmetric RTP:
    /// we send there). Only a latching session locks to such a source.
    fn latched_rtp(&self) -> Option<SocketAddr> {
        self.sources
            .locked()
            .filter(|a| Some(*a) != self.config.remote_rtp)
    }

    fn remote_rtp(&self) -> Option<SocketAddr> {
        self.latched_rtp().or(self.config.remote_rtp)
    }

    fn remote_rtcp(&self) -> Option<SocketAddr> {
        if let Some(rtcp) = self.latched_rtcp {
            return Some(rtcp);
        }
        if self.latched_rtp().is_none() {
            if let Some(rtcp) = self.config.remote_rtcp {
                return Some(rtcp);
            }
        }
        let rtp = self.remote_rtp()?;
        Some(if self.rtcp_socket {
            SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
        } else {
            rtp
        })
    }

    // ---- sending ----

    fn send_one(&mut self) {
        let remote = self.remote_rtp();
        let Some(remote) = remote.filter(|_| self.config.direction.sends()) else {
            // On hold (or nowhere to send): time passes, the queue waits.
            self.sender.skip(1);
            return;
        };
        if self.digit_now.is_none() {
            if let Some((event, duration)) = self.digits_out.pop_front() {
                self.digit_now = Some(self.start_digit(event, duration));
            }
        }
        if let (Some(digit), Some(pt)) = (&mut self.digit_now, self.config.telephone_event) {
            if let Some(packet) = digit.next() {
                let payload = packet.event.to_bytes();
                let wire = self
                    .sender
                    .packet_with(pt, packet.marker, packet.timestamp, &payload)
                    .to_vec();
                // The audio clock advances under the event (RFC 4733 §2.5.1.2).
                self.sender.skip(1);
                if digit.is_done() {
                    self.digit_now = None;
                    self.stats.digits_sent += 1;
                }
                self.send_rtp(remote, wire);
                return;
            }
            self.digit_now = None;
        }
        let law = self.config.law;
        let samples = self.packet_samples();
        self.encoded.clear();
        let queued = self.outbound.len().min(samples);
        self.encoded
            .extend(self.outbound.drain(..queued).map(|s| law.encode(s)));
        self.encoded.resize(samples, law.silence());
        self.sent_since_clear += queued as u64;
        self.stats.samples_played += queued as u64;
        let payload = std::mem::take(&mut self.encoded);
        let wire = self.sender.next_packet(&payload).to_vec();
        self.encoded = payload;
        self.send_rtp(remote, wire);
    }

    fn start_digit(&mut self, event: EventCode, duration: Duration) -> TelephoneEventSender {
        let units = (duration.as_millis() as u64 * 8).min(u32::MAX as u64) as u32;
        TelephoneEventSender::new(
            event,
            10,
            self.sender.timestamp(),
            units,
            self.packet_samples() as u16,
        )
    }

    /// Samples in one outbound packet (ptime at 8 kHz).
    fn packet_samples(&self) -> usize {
        self.sender.samples_per_packet() as usize
    }

    fn send_rtp(&mut self, to: SocketAddr, mut bytes: Vec<u8>) {
        if let Some(outbound) = &mut self.protect {
            // Our own packets always have a whole header: this never fails.
            if outbound.protect_rtp(&mut bytes).is_err() {
                return;
            }
        }
        self.stats.packets_sent += 1;
        self.sent_since_report = true;
        self.transmits.push_back(Transmit {
            socket: Socket::Rtp,
            to,
            bytes,
        });
    }

    fn send_report(&mut self, now: Instant, bye: bool) {
        let Some(to) = self.remote_rtcp() else {
            return;
        };
        let reports: Vec<_> = self
            .source
            .as_mut()
            .filter(|s| s.is_valid())
            .map(|s| s.report_block(now))
            .into_iter()
            .collect();
        let ssrc = self.config.ssrc;
        let first = if std::mem::take(&mut self.sent_since_report) {
            let ntp = self.start_ntp.wrapping_add(ntp_span(now - self.start));
            let info = self.sender.sender_info(ntp, self.sender.timestamp());
            RtcpPacket::SenderReport(rtcp::SenderReport {
                ssrc,
                info,
                reports,
            })
        } else {
            RtcpPacket::ReceiverReport(rtcp::ReceiverReport { ssrc, reports })
        };
        let mut packets = vec![
            first,
            RtcpPacket::SourceDescription(SourceDescription {
                chunks: vec![SdesChunk {
                    ssrc,
                    items: vec![SdesItem {
                        kind: rtcp::SDES_CNAME,
                        value: self.config.cname.as_bytes(),
                    }],
                }],
            }),
        ];
        if bye {
            packets.push(RtcpPacket::Goodbye(rtcp::Goodbye {
                sources: vec![ssrc],
                reason: None,
            }));
        }
        // Only a CNAME longer than SDES allows fails here; the report is then skipped.
        let Ok(mut bytes) = rtcp::write_compound(&packets) else {
            return;
        };
        if let Some(outbound) = &mut self.protect {
            if outbound.protect_rtcp(&mut bytes).is_err() {
                return;
            }
        }
        self.stats.rtcp_sent += 1;
        let socket = if self.rtcp_socket {
            Socket::Rtcp
        } else {
            Socket::Rtp
        };
        self.transmits.push_back(Transmit { socket, to, bytes });
    }

    // ---- receiving ----

    /// One 20 ms frame out: packets are taken from the jitter buffer until there is a frame's
    /// worth (one 40 ms packet lasts two frames, two 10 ms packets make one).
    fn play_one(&mut self, now: Instant) {
        while self.inbound.len() < FRAME_SAMPLES {
            match self.jitter.pop(now) {
                Playout::Buffering => break,
                Playout::Frame(frame) => {
                    self.decoded.resize(frame.payload.len(), 0);
                    let n = self
                        .config
                        .law
                        .decode_into(&frame.payload, &mut self.decoded);
                    self.decoded.truncate(n);
                    self.concealer.good_frame(&mut self.decoded);
                    self.inbound.extend(&self.decoded);
                    self.stats.frames_delivered += 1;
                }
                Playout::Lost { duration, .. } => {
                    let n = (duration as usize).clamp(1, MAX_CONCEALED);
                    self.decoded.clear();
                    self.decoded.resize(n, 0);
                    self.concealer.conceal(&mut self.decoded);
                    self.inbound.extend(&self.decoded);
                    self.stats.frames_concealed += 1;
                }
            }
        }
        if self.inbound.len() >= FRAME_SAMPLES {
            let frame = self.inbound.drain(..FRAME_SAMPLES).collect();
            self.events.push_back(Event::Audio(frame));
        }
    }

    fn on_rtp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Ok(packet) = RtpPacket::parse(bytes) else {
            self.stats.packets_ignored += 1;
            return;
        };
        let is_audio = packet.payload_type == self.config.payload_type;
        let is_event = Some(packet.payload_type) == self.config.telephone_event;
        if !is_audio && !is_event {
            self.stats.packets_ignored += 1;
            return;
        }
        match self.sources.admit(now, from, packet.ssrc) {
            Admission::Accept => {}
            // Symmetric RTP: send where the caller's media actually comes from.
            Admission::Latched(to) => self.events.push_back(Event::Latched(to)),
            refused @ (Admission::ForeignAddress | Admission::ForeignSsrc) => {
                self.refused(from, refused);
                return;
            }
        }
        self.stats.packets_received += 1;
        // Events share the audio stream's SSRC and sequence space (RFC 4733 §2.1).
        let source = match &mut self.source {
            Some(s) if s.ssrc() == packet.ssrc => s,
            other => other.insert(SourceState::new(packet.ssrc, 8000, packet.sequence)),
        };
        source.update(packet.sequence, packet.timestamp, now);
        if is_event {
            match self.digits_in.handle(packet.timestamp, packet.payload) {
                Ok(Some(digit)) => {
                    if let Some(c) = digit.event.to_char() {
                        self.stats.digits_received += 1;
                        self.events.push_back(Event::Digit(c));
                    }
                }
                Ok(None) => {}
                Err(_) => self.stats.packets_ignored += 1,
            }
        } else {
            self.jitter.push(&packet, now);
        }
    }

    fn refused(&mut self, from: SocketAddr, why: Admission) {
        if self.stats.packets_refused == 0 {
            self.events.push_back(Event::Refused {
                from,
                why,
                accepted: self.sources.locked(),
            });
        }
        self.stats.packets_refused += 1;
    }

    fn on_rtcp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if !self.sources.admits_control(now, from) {
            self.refused(from, Admission::ForeignAddress);
            return;
        }
        let Ok(packets) = rtcp::parse_compound(bytes) else {
            self.stats.packets_ignored += 1;
            return;
        };
        self.stats.rtcp_received += 1;
        if self.latched_rtp().is_some() {
            self.latched_rtcp = Some(from);
        }
        for packet in packets {
            match packet {
                RtcpPacket::SenderReport(sr) => {
                    if let Some(source) = self.source.as_mut().filter(|s| s.ssrc() == sr.ssrc) {
                        source.on_sender_report(sr.info.ntp_timestamp, now);
                    }
                }
                RtcpPacket::Goodbye(_) => self.events.push_back(Event::PeerBye),
                _ => {}
            }
        }
    }
}

/// A packet time as a duration; 0 (never negotiated) means 20 ms.
fn ptime(ms: u32) -> Duration {
    if ms == 0 {
        FRAME
    } else {
        Duration::from_millis(u64::from(ms))
    }
}

/// A wall-clock time as a 64-bit NTP timestamp (RFC 3550 §4).
fn ntp(wall: SystemTime) -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    ((since.as_secs() + NTP_UNIX_OFFSET) << 32)
        + ntp_span(Duration::from_nanos(since.subsec_nanos().into()))
}

/// A duration in NTP's 32.32 fixed point.
fn ntp_span(d: Duration) -> u64 {
    (d.as_secs() << 32) + (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000
}

/// SplitMix64: a session's random values come from a seed (an input).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
