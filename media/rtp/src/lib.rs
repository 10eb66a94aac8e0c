//! Sans-IO RTP for Switchboard: RTP/RTCP packets, source statistics, the sending stream and
//! pacing, RFC 4733 telephone events, SDP offer/answer, the adaptive jitter buffer, and the
//! per-call [`RtpSession`] that puts them together.
//!
//! This crate owns no socket, task or clock. Time enters as a `std::time::Instant` argument;
//! random values (SSRC, initial sequence number and timestamp, SDP session id) are inputs too. A
//! driver (the tokio RTP socket in `media/net`) feeds datagrams and the clock in and sends what
//! comes out. After any input, drain the outputs (`poll_transmit`, `poll_event`; `pop`, `next`
//! on the parts) before the next input.
//!
//! Parsers of untrusted bytes ([`RtpPacket::parse`], [`rtcp::parse_compound`],
//! [`sdp::SessionDescription::parse`]) never panic; they return [`Error`]. Late, duplicate and
//! lost packets are counted values, not errors.
//!
//! ```
//! use media_rtp::{PayloadType, RtpPacket, RtpSender, SenderConfig, Ssrc};
//! let mut tx = RtpSender::new(SenderConfig {
//!     ssrc: Ssrc(0x1234), payload_type: PayloadType::PCMU, clock_rate: 8000, ptime_ms: 20,
//!     initial_sequence: 100, initial_timestamp: 0,
//! });
//! let wire = tx.next_packet(&[0xFF; 160]).to_vec();
//! let rx = RtpPacket::parse(&wire).unwrap();
//! assert!(rx.marker);
//! assert_eq!((rx.sequence, rx.timestamp, rx.payload.len()), (100, 0, 160));
//! ```
#![forbid(unsafe_code)]
// `usize::is_multiple_of` is newer than the workspace MSRV (1.85).
#![allow(clippy::manual_is_multiple_of)]

mod error;

pub mod jitter_buffer;
mod packet;
pub mod rtcp;
pub mod sdp;
pub mod session;
pub mod srtp;

mod sender;
mod source;
pub mod source_filter;
pub mod telephone_event;
mod types;

pub use error::{AnswerMismatch, Error, SdpErrorKind};

pub use jitter_buffer::{JitterBuffer, JitterConfig, JitterStats, Playout, PushOutcome};
pub use packet::{classify, Csrcs, HeaderExtension, PacketKind, RtpPacket, HEADER_LEN};
pub use sender::{Pacer, RtpSender, SenderConfig};
pub use session::{RtpConfig, RtpSession, SessionStats};
pub use source::{ReceptionStats, SequenceOutcome, SourceState};
pub use source_filter::{Admission, SourceFilter};
pub use types::{PayloadType, Ssrc};
