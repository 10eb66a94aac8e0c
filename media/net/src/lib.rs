//! RTP on tokio sockets for Switchboard calls: the port pool, one session
//! task per call, and the SDP glue between them.
//!
//! # What it does
//! - [`PortPool`]: even RTP ports drawn at random from a configured range,
//!   RTCP on the odd port above (or rtcp-mux); ports return to the pool when
//!   dropped.
//! - [`RtpSession`]: per call, a task driving the sans-IO
//!   [`media_rtp::RtpSession`] on the call's sockets. It receives RTP (RFC 3550
//!   validation → jitter buffer → G.711 decode, PLC for lost frames) and
//!   hands the application 20 ms frames of 8 kHz `i16` plus RFC 4733
//!   digits ([`MediaEvent`]); and sends the application's queued audio
//!   paced at 20 ms from a monotonic anchor (silence when the queue is
//!   empty — see `media_rtp::session` for why), with [`RtpSessionHandle::clear_outbound`]
//!   for barge-in, RFC 4733 digits, symmetric-RTP latching and RTCP SR/RR
//!   every 5 s. Media is played only from the caller: the SDP's address, or
//!   a NAT port of the SDP's or SIP peer's host latched in the first seconds;
//!   one source, one live SSRC (`media_rtp::source_filter`).
//! - [`answer_offer`], [`accept_answer`], [`offer`]: SDP bytes ⇄
//!   [`RtpConfig`] via `media_rtp::sdp`.
//!
//! SRTP (SDES) when [`LocalCapabilities::srtp`] allows it and the peer asks for it, or always when
//! it requires it; the keys come out of the negotiation in [`RtpConfig::srtp`].
//!
//! # What it does not do
//! DTLS-SRTP, codecs other than G.711, resampling to 16 kHz or VAD (the call
//! runtime does that on the frames it receives), and anything SIP.
//!
//! # Invariants
//! Nothing the network sends can panic the session; malformed datagrams are
//! counted in [`SessionStats::packets_ignored`], media from a source the
//! session does not accept in [`SessionStats::packets_refused`]. A slow
//! application loses frames (counted), never stalls the pacing.
//!
//! # Example
//! ```no_run
//! # async fn run(offer: &[u8]) -> Result<(), media_net::Error> {
//! use media_net::{answer_offer, local_capabilities, MediaEvent, PortPool, RtpSession};
//! let pool = PortPool::new("127.0.0.1".parse().unwrap(), 20000, 29999, false)?;
//! let sockets = pool.allocate()?;
//! let caps = local_capabilities("127.0.0.1".parse().unwrap(), &sockets, 1);
//! let (answer_sdp, config) = answer_offer(offer, &caps, 42)?;
//! // … send answer_sdp in the 200 OK …
//! let mut session = RtpSession::spawn(sockets, config, 100);
//! session.handle.push_audio(vec![0; 8000])?; // one second
//! while let Some(event) = session.events.recv().await {
//!     if let MediaEvent::Digit(d) = event { println!("pressed {d}"); }
//! }
//! # let _ = answer_sdp; Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod error;
mod negotiate;
mod port_pool;
mod session;

pub use error::Error;
pub use negotiate::{
    accept_answer, answer_offer, local_capabilities, media_destination_allowed, offer,
    session_config,
};
pub use port_pool::{PortPool, RtpSockets};
pub use session::{
    Cleared, MediaEvent, RtpConfig, RtpSession, RtpSessionHandle, SessionStats, FRAME_SAMPLES,
};

pub use media_audio::g711::Law;
pub use media_rtp::sdp::{Direction, LocalCapabilities, SrtpPolicy};
pub use media_rtp::srtp::MasterKey;

/// The driver's clock: tokio's, so a test can run it in virtual time (`tokio::time::pause`);
/// otherwise the system's monotonic clock.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
