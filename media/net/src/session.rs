//! The per-call RTP session task: the tokio driver of [`media_rtp::RtpSession`].
//!
//! One task per call owns the sockets and feeds the sans-IO session what they receive and the
//! clock; it sends what the session transmits and hands the application its 20 ms frames and
//! digits ([`MediaEvent`]). What the session does (admission, jitter buffer, decoding, paced
//! sending with silence fill, RTCP) is documented and tested in `media_rtp::session`; here is
//! only the I/O and the channel to the application: a slow application loses frames (counted
//! in [`SessionStats::frames_dropped`]) and never stalls the pacing; a digit waits for room.

use crate::now;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use media_rtp::session::{Event, Socket};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, trace, warn};

use crate::{Error, RtpSockets};

pub use media_rtp::session::{Cleared, RtpConfig, SessionStats, FRAME_SAMPLES};

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

struct Task {
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    session: media_rtp::RtpSession,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<MediaEvent>,
    frames_dropped: u64,
}

impl Task {
    fn new(
        sockets: RtpSockets,
        config: RtpConfig,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::Sender<MediaEvent>,
    ) -> Task {
        let RtpSockets { rtp, rtcp, .. } = sockets;
        let session = media_rtp::RtpSession::new(now(), SystemTime::now(), config, rtcp.is_some());
        Task {
            rtp,
            rtcp,
            session,
            commands,
            events,
            frames_dropped: 0,
        }
    }

    async fn run(mut self) -> SessionStats {
        let mut rtp_buf = vec![0u8; 2048];
        let mut rtcp_buf = vec![0u8; 2048];
        loop {
            self.drain().await;
            let wake = tokio::time::Instant::from_std(self.session.poll_timeout());
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                () = tokio::time::sleep_until(wake) => self.session.handle_timeout(now()),
                received = self.rtp.recv_from(&mut rtp_buf) => match received {
                    Ok((len, from)) => {
                        self.session.handle_datagram(now(), Socket::Rtp, from, &rtp_buf[..len]);
                    }
                    Err(error) => trace!(%error, "RTP receive error"),
                },
                received = recv_optional(self.rtcp.as_ref(), &mut rtcp_buf) => match received {
                    Ok((len, from)) => {
                        self.session.handle_datagram(now(), Socket::Rtcp, from, &rtcp_buf[..len]);
                    }
                    Err(error) => trace!(%error, "RTCP receive error"),
                },
            }
        }
        self.session.close(now());
        self.drain().await;
        debug!(stats = ?self.stats(), "RTP session ended");
        self.stats()
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Push(samples) => self.session.push_audio(&samples),
            Command::Clear(reply) => {
                let _ = reply.send(self.session.clear_outbound());
            }
            Command::Digit { digit, duration } => {
                if let Err(error) = self.session.send_digit(digit, duration) {
                    warn!(%error, "digit not sent");
                }
            }
            Command::Update(config) => {
                info!(direction = config.direction.as_str(), remote = ?config.remote_rtp,
                    "RTP session updated");
                self.session.update(now(), *config);
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
        }
    }

    fn stats(&self) -> SessionStats {
        SessionStats {
            frames_dropped: self.frames_dropped,
            ..self.session.stats()
        }
    }

    /// Sends what the session transmits and hands its events on.
    async fn drain(&mut self) {
        while let Some(t) = self.session.poll_transmit() {
            let socket = match t.socket {
                Socket::Rtcp => self.rtcp.as_ref().unwrap_or(&self.rtp),
                Socket::Rtp => &self.rtp,
            };
            if let Err(error) = socket.send_to(&t.bytes, t.to).await {
                trace!(to = %t.to, %error, "RTP send failed");
            }
        }
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Audio(frame) => self.emit(MediaEvent::Audio(frame)),
                Event::Digit(digit) => {
                    debug!(%digit, "RFC 4733 digit");
                    // Digits are rare and matter: wait for room rather than drop.
                    let _ = self.events.send(MediaEvent::Digit(digit)).await;
                }
                Event::Latched(to) => {
                    info!(from = %to, sdp = ?self.session.config().remote_rtp,
                        "RTP latched to the source address");
                    self.emit(MediaEvent::Latched(to));
                }
                Event::Refused {
                    from,
                    why,
                    accepted,
                } => {
                    warn!(%from, ?why, ?accepted, "RTP refused: not this call's media");
                }
                Event::Unauthenticated { from, error } => {
                    warn!(%from, %error, "SRTP refused: not this call's keys");
                }
                Event::PeerBye => debug!("RTCP BYE from the peer"),
            }
        }
    }

    fn emit(&mut self, event: MediaEvent) {
        if self.events.try_send(event).is_err() {
            self.frames_dropped += 1;
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
