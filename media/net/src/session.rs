//! The per-call RTP session task.
//!
//! One task per call owns the sockets and the sans-IO pieces of
//! `media-rtp`: inbound RTP goes through [`SourceState`] (RFC 3550 A.1
//! validation, loss, jitter) into the [`JitterBuffer`] and out as decoded
//! 20 ms frames (G.711, with PLC for lost frames) whatever the peer's
//! packet size; telephone-event packets go to the [`TelephoneEventReceiver`].
//! Outbound audio is queued by the application and sent in packets of the
//! negotiated ptime ([`RtpConfig::ptime_ms`]: 10–40 ms), paced by a
//! [`Pacer`] anchored at the session's start (deadlines are
//! `start + n·ptime`, so wake-up jitter never accumulates); a second pacer
//! plays inbound audio out every 20 ms.
//!
//! When the outbound queue is empty the session keeps sending G.711
//! silence rather than stopping: peers' media-timeout detectors (Asterisk
//! `rtptimeout`, FreeSWITCH `media_timeout`) hang up on a silent stream, an
//! SBC doing symmetric RTP needs our packets to latch to us, NAT bindings
//! stay open, and the peer's jitter buffer never rebuffers between our
//! sentences. At 20 ms it costs 50 packets/s of 172 bytes per call.

use crate::now;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use media_audio::g711::Law;
use media_audio::plc::Concealer;
use media_rtp::rtcp::{self, RtcpPacket, SdesChunk, SdesItem, SourceDescription};
use media_rtp::sdp::Direction;
use media_rtp::telephone_event::{EventCode, TelephoneEventReceiver, TelephoneEventSender};
use media_rtp::{
    classify, Admission, JitterBuffer, JitterConfig, JitterStats, Pacer, PacketKind, PayloadType,
    Playout, ReceptionStats, RtpPacket, RtpSender, SenderConfig, SourceFilter, SourceState, Ssrc,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, trace, warn};

use crate::{Error, RtpSockets};

/// Samples per 20 ms frame at 8 kHz: the size of every [`MediaEvent::Audio`].
pub const FRAME_SAMPLES: usize = 160;
const FRAME: Duration = Duration::from_millis(20);
/// Samples of concealment for one lost packet, at most (a 40 ms packet).
const MAX_CONCEALED: usize = 320;
/// After a stall, send at most this many packets at once; the rest are skipped.
const MAX_BURST: u32 = 3;
/// How long a NAT'd source may be latched after the session starts or is renegotiated: a
/// caller's phone sends its first packets as soon as the call is answered.
pub const LATCH_WINDOW: Duration = Duration::from_secs(10);

/// How a session sends and receives; built from the SDP negotiation
/// ([`crate::answer_offer`], [`crate::accept_answer`]).
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
    /// is never accepted (see `media_rtp::source_filter`).
    pub signalling_peer: Option<IpAddr>,
    /// Our SSRC and random initial sequence number and timestamp.
    pub ssrc: Ssrc,
    pub initial_sequence: u16,
    pub initial_timestamp: u32,
    pub jitter: JitterConfig,
    /// Milliseconds of audio per packet we send: the negotiated ptime (one of
    /// `media_rtp::sdp::PTIMES_MS`). What we receive may be any size.
    pub ptime_ms: u32,
    /// RTCP report interval (RFC 3550 §6.2: 5 s minimum).
    pub rtcp_interval: Duration,
    /// RTCP SDES CNAME.
    pub cname: String,
}

impl RtpConfig {
    /// Defaults for a PCMU session to `remote_rtp`, random values from `seed`.
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
        }
    }
}

/// What the session tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// 20 ms of 8 kHz audio: decoded, or concealed when the packet was lost.
    Audio(Vec<i16>),
    /// An RFC 4733 key press (once per press).
    Digit(char),
    /// Symmetric RTP: we now send to where the peer's RTP comes from.
    Latched(SocketAddr),
}

/// What [`RtpSessionHandle::clear_outbound`] stopped.
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
    /// Inbound packets decoded and played (one per 20 ms at ptime 20).
    pub frames_delivered: u64,
    /// Lost inbound packets concealed.
    pub frames_concealed: u64,
    /// Frames the application did not take in time (its channel was full).
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

#[derive(Debug)]
enum Command {
    Push(Vec<i16>),
    Clear(oneshot::Sender<Cleared>),
    Digit { digit: char, duration: Duration },
    Update(Box<RtpConfig>),
    Stats(oneshot::Sender<SessionStats>),
}

/// The application's handle on a session. Clone freely; the session ends
/// when every handle is dropped (sending an RTCP BYE).
#[derive(Debug, Clone)]
pub struct RtpSessionHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl RtpSessionHandle {
    /// Queues 8 kHz audio of any length for paced playout.
    pub fn push_audio(&self, samples: Vec<i16>) -> Result<(), Error> {
        self.send(Command::Push(samples))
    }

    /// Barge-in: drops everything queued; the next packet is silence.
    pub async fn clear_outbound(&self) -> Result<Cleared, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Clear(tx))?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Sends an RFC 4733 digit (0-9, *, #, A-D); audio pauses meanwhile.
    pub fn send_digit(&self, digit: char, duration: Duration) -> Result<(), Error> {
        self.send(Command::Digit { digit, duration })
    }

    /// Applies a renegotiation (hold, resume, new address or codec); the
    /// sending stream (SSRC, sequence, timestamps) continues.
    pub fn update(&self, config: RtpConfig) -> Result<(), Error> {
        self.send(Command::Update(Box::new(config)))
    }

    pub async fn stats(&self) -> Result<SessionStats, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stats(tx))?;
        rx.await.map_err(|_| Error::Closed)
    }

    fn send(&self, command: Command) -> Result<(), Error> {
        self.commands.send(command).map_err(|_| Error::Closed)
    }
}

/// A running session: the handle, the application's frames and digits, and
/// the task (it ends when every handle is dropped).
#[derive(Debug)]
pub struct RtpSession {
    pub handle: RtpSessionHandle,
    pub events: mpsc::Receiver<MediaEvent>,
    pub task: tokio::task::JoinHandle<SessionStats>,
}

impl RtpSession {
    /// Starts the session task on the current runtime. `event_capacity` is
    /// how many frames (20 ms each) the application may fall behind before
    /// frames are dropped and counted.
    pub fn spawn(sockets: RtpSockets, config: RtpConfig, event_capacity: usize) -> RtpSession {
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(event_capacity.max(1));
        let task = Task::new(sockets, config, commands, events_tx);
        RtpSession {
            handle: RtpSessionHandle {
                commands: commands_tx,
            },
            events,
            task: tokio::spawn(task.run()),
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

struct Task {
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    config: RtpConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<MediaEvent>,
    sender: RtpSender,
    source: Option<SourceState>,
    jitter: JitterBuffer,
    concealer: Concealer,
    digits_in: TelephoneEventReceiver,
    outbound: VecDeque<i16>,
    digits_out: VecDeque<(char, Duration)>,
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
}

impl Task {
    fn new(
        sockets: RtpSockets,
        config: RtpConfig,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::Sender<MediaEvent>,
    ) -> Task {
        let sender = RtpSender::new(SenderConfig {
            ssrc: config.ssrc,
            payload_type: config.payload_type,
            clock_rate: 8000,
            ptime_ms: ptime(config.ptime_ms).as_millis() as u32,
            initial_sequence: config.initial_sequence,
            initial_timestamp: config.initial_timestamp,
        });
        let RtpSockets { rtp, rtcp, .. } = sockets;
        let start = now();
        let sources = SourceFilter::new(
            start,
            config.remote_rtp,
            config.signalling_peer,
            config.latch,
            config.latch_window,
        );
        Task {
            sources,
            send_pacer: Pacer::new(start, ptime(config.ptime_ms)),
            play_pacer: Pacer::new(start, FRAME),
            inbound: VecDeque::with_capacity(2 * FRAME_SAMPLES),
            rtp,
            rtcp,
            jitter: JitterBuffer::new(config.jitter),
            config,
            commands,
            events,
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
        }
    }

    async fn run(mut self) -> SessionStats {
        let start = now();
        let mut next_report = start + self.config.rtcp_interval;
        let mut rtp_buf = vec![0u8; 2048];
        let mut rtcp_buf = vec![0u8; 2048];
        loop {
            let tick = tokio::time::Instant::from_std(
                self.send_pacer
                    .poll_timeout()
                    .min(self.play_pacer.poll_timeout()),
            );
            let report = tokio::time::Instant::from_std(next_report);
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                () = tokio::time::sleep_until(tick) => {
                    let now = now();
                    for _ in 0..self.send_pacer.handle_timeout(now, MAX_BURST) {
                        self.send_one().await;
                    }
                    for _ in 0..self.play_pacer.handle_timeout(now, MAX_BURST) {
                        self.play_one(now);
                    }
                }
                received = self.rtp.recv_from(&mut rtp_buf) => match received {
                    Ok((len, from)) => {
                        let now = now();
                        match classify(&rtp_buf[..len]) {
                            PacketKind::Rtp => self.on_rtp(now, from, &rtp_buf[..len]).await,
                            PacketKind::Rtcp => self.on_rtcp(now, from, &rtp_buf[..len]),
                            PacketKind::Unknown => self.stats.packets_ignored += 1,
                        }
                    }
                    Err(error) => trace!(%error, "RTP receive error"),
                },
                received = recv_optional(self.rtcp.as_ref(), &mut rtcp_buf) => match received {
                    Ok((len, from)) => {
                        let bytes = rtcp_buf[..len].to_vec();
                        self.on_rtcp(now(), from, &bytes);
                    }
                    Err(error) => trace!(%error, "RTCP receive error"),
                },
                () = tokio::time::sleep_until(report) => {
                    self.send_report(now(), false).await;
                    next_report += self.config.rtcp_interval;
                }
            }
        }
        self.send_report(now(), true).await;
        debug!(stats = ?self.stats(), "RTP session ended");
        self.stats()
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Push(samples) => self.outbound.extend(samples),
            Command::Clear(reply) => {
                let cleared = Cleared {
                    sent_samples: std::mem::take(&mut self.sent_since_clear),
                    dropped_samples: self.outbound.len(),
                };
                self.outbound.clear();
                let _ = reply.send(cleared);
            }
            Command::Digit { digit, duration } => self.digits_out.push_back((digit, duration)),
            Command::Update(config) => {
                let config = *config;
                if config.remote_rtp != self.config.remote_rtp {
                    // A new address from SDP overrides an earlier latch; a source
                    // may latch again in a new window.
                    self.latched_rtcp = None;
                    self.sources.renegotiated(now(), config.remote_rtp);
                }
                if config.payload_type != self.config.payload_type {
                    self.jitter = JitterBuffer::new(config.jitter);
                }
                if config.ptime_ms != self.config.ptime_ms {
                    // A new packet time from a re-INVITE: the stream continues, the
                    // packets change size from the next deadline on.
                    self.sender.set_ptime(config.ptime_ms);
                    self.send_pacer = Pacer::new(now(), ptime(config.ptime_ms));
                }
                info!(direction = config.direction.as_str(), remote = ?config.remote_rtp,
                    "RTP session updated");
                // The sending stream continues: keep SSRC, sequence and timestamps.
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
            Command::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
        }
    }

    fn stats(&self) -> SessionStats {
        SessionStats {
            reception: self.source.as_ref().map(SourceState::stats),
            jitter: self.jitter.stats(),
            remote_rtp: self.remote_rtp(),
            latched: self.latched_rtp().is_some(),
            ..self.stats
        }
    }

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
        Some(if self.rtcp.is_some() {
            SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
        } else {
            rtp
        })
    }

    async fn send_one(&mut self) {
        let remote = self.remote_rtp();
        if !self.config.direction.sends() || remote.is_none() {
            // On hold (or nowhere to send): time passes, the queue waits.
            self.sender.skip(1);
            return;
        }
        let Some(remote) = remote else { return };
        if self.digit_now.is_none() {
            if let Some((digit, duration)) = self.digits_out.pop_front() {
                self.digit_now = self.start_digit(digit, duration);
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
                self.send_rtp(remote, &wire).await;
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
        self.send_rtp(remote, &wire).await;
    }

    fn start_digit(&mut self, digit: char, duration: Duration) -> Option<TelephoneEventSender> {
        let Some(event) = EventCode::from_char(digit) else {
            warn!(%digit, "not an RFC 4733 digit; not sent");
            return None;
        };
        if self.config.telephone_event.is_none() {
            warn!("the peer did not negotiate telephone-event; digit not sent");
            return None;
        }
        let units = (duration.as_millis() as u64 * 8).min(u32::MAX as u64) as u32;
        Some(TelephoneEventSender::new(
            event,
            10,
            self.sender.timestamp(),
            units,
            self.packet_samples() as u16,
        ))
    }

    /// Samples in one outbound packet (ptime at 8 kHz).
    fn packet_samples(&self) -> usize {
        self.sender.samples_per_packet() as usize
    }

    async fn send_rtp(&mut self, remote: SocketAddr, wire: &[u8]) {
        match self.rtp.send_to(wire, remote).await {
            Ok(_) => {
                self.stats.packets_sent += 1;
                self.sent_since_report = true;
            }
            Err(error) => trace!(%remote, %error, "RTP send failed"),
        }
    }

    /// One 20 ms frame out: packets are taken from the jitter buffer until
    /// there is a frame's worth (one 40 ms packet lasts two frames, two 10 ms
    /// packets make one).
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
        if self.inbound.len() < FRAME_SAMPLES {
            return;
        }
        let frame: Vec<i16> = self.inbound.drain(..FRAME_SAMPLES).collect();
        self.emit(MediaEvent::Audio(frame));
    }

    fn emit(&mut self, event: MediaEvent) {
        if self.events.try_send(event).is_err() {
            self.stats.frames_dropped += 1;
        }
    }

    async fn on_rtp(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
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
            Admission::Latched(to) => {
                // Symmetric RTP: send where the caller's media actually comes from.
                info!(from = %to, sdp = ?self.config.remote_rtp, "RTP latched to the source address");
                self.emit(MediaEvent::Latched(to));
            }
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
                        debug!(digit = %c, "RFC 4733 digit");
                        self.stats.digits_received += 1;
                        // Digits are rare and matter: wait for room rather than drop.
                        let _ = self.events.send(MediaEvent::Digit(c)).await;
                    }
                }
                Ok(None) => {}
                Err(_) => self.stats.packets_ignored += 1,
            }
        } else {
            self.jitter.push(&packet, now);
        }
    }

    /// A packet the session does not accept: counted, and logged once per session (a flood
    /// must not flood the log).
    fn refused(&mut self, from: SocketAddr, why: Admission) {
        if self.stats.packets_refused == 0 {
            warn!(%from, ?why, accepted = ?self.sources.locked(), "RTP refused: not this call's media");
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
                RtcpPacket::Goodbye(_) => debug!("RTCP BYE from the peer"),
                _ => {}
            }
        }
    }

    async fn send_report(&mut self, now: Instant, bye: bool) {
        let Some(remote) = self.remote_rtcp() else {
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
            let info = self.sender.sender_info(ntp_now(), self.sender.timestamp());
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
        let Ok(wire) = rtcp::write_compound(&packets) else {
            return;
        };
        let socket = self.rtcp.as_ref().unwrap_or(&self.rtp);
        if socket.send_to(&wire, remote).await.is_ok() {
            self.stats.rtcp_sent += 1;
        }
    }
}

async fn recv_optional(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// The wall clock as a 64-bit NTP timestamp (RFC 3550 §4).
fn ntp_now() -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since.as_secs() + NTP_UNIX_OFFSET;
    let fraction = (since.subsec_nanos() as u64) * (1u64 << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// SplitMix64: the session's random values come from a seed (an input).
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
