//! A sans-IO SIP user agent: RFC 3261 transactions (§17) with their timer
//! table, dialogs (§12), the UAC and UAS cores (§8, §13, §15), CANCEL (§9),
//! digest authentication (RFC 7616/8760), INFO DTMF, and blind transfer by
//! REFER (RFC 3515) and attended transfer (RFC 3891 Replaces), with RFC
//! 3581 `rport`; registration with a registrar
//! (§10.2) for running as a PBX extension; inbound digest authentication
//! with a source allow-list for trunk mode; OPTIONS keep-alives to trunks;
//! RFC 4028 session timers.
//!
//! # What it does not do
//! It owns no socket, task or clock, queries no DNS (targets are IP
//! literals, a trunk's destinations the driver resolved with [`locate`], or
//! the configured outbound proxy), and never reads SDP:
//! offers and answers travel as opaque bytes. Messages are parsed and
//! written by `sip-message`.
//!
//! # The contract
//! One [`Endpoint`] has five verbs (STYLE §1):
//! - inputs: [`Endpoint::handle_datagram`] (network), [`Endpoint::handle_timeout`]
//!   (clock), and commands from the application ([`Endpoint::invite`],
//!   [`Endpoint::answer`], [`Endpoint::hangup`], …, plus
//!   [`Endpoint::handle_transport_error`] from the driver);
//! - outputs: [`Endpoint::poll_transmit`], [`Endpoint::poll_event`],
//!   [`Endpoint::poll_timeout`].
//!
//! **After any input, drain `poll_transmit` and `poll_event` and re-read
//! `poll_timeout` before the next input.** Time is an input: pass the same
//! monotonic clock everywhere (the endpoint never calls `Instant::now()`
//! and ignores instants older than one it has seen). Randomness is an
//! input: `Endpoint::new(config, seed)` derives every tag, branch, Call-ID
//! and cnonce from `seed`.
//!
//! Invariants: nothing a peer sends can panic the endpoint; a malformed
//! request is answered with a status and a reason naming the problem when
//! a response can be formed, otherwise dropped and counted in
//! [`Stats`]; after `handle_timeout(now)`, `poll_timeout()` is later than
//! `now` or `None`.
//!
//! # Run loop
//! A driver (tokio UDP/TCP in `sip-net`) looks like this; here a vector
//! stands in for the socket:
//! ```
//! use std::time::{Duration, Instant};
//! use sip_proto::{Config, Endpoint, Event, TransportKind};
//!
//! let mut endpoint = Endpoint::new(Config::new("127.0.0.1:5060".parse()?), 7);
//! let mut now = Instant::now();
//! let inbound: Vec<(std::net::SocketAddr, Vec<u8>)> = Vec::new(); // socket.recv_from
//! for (from, bytes) in inbound {
//!     // Malformed input is answered or counted; the error is for the log.
//!     let _ = endpoint.handle_datagram(now, TransportKind::Udp, from, &bytes);
//!     while let Some(t) = endpoint.poll_transmit() {
//!         let _ = (t.destination, t.bytes); // socket.send_to
//!     }
//!     while let Some(event) = endpoint.poll_event() {
//!         if let Event::IncomingCall(call) = event {
//!             endpoint.answer(now, call.call, b"v=0\r\n".to_vec())?;
//!         }
//!     }
//! }
//! // When nothing arrives, sleep until poll_timeout and fire the timers.
//! if let Some(deadline) = endpoint.poll_timeout() {
//!     now = now.max(deadline);
//!     endpoint.handle_timeout(now);
//! }
//! # let _ = Duration::ZERO;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//! On TCP/TLS the driver frames the stream with [`sip_message::frame_stream`]
//! and passes one message at a time to `handle_datagram`; a failed send or
//! a refused connection is reported with `handle_transport_error`.
//!
//! # Layout (read top-down)
//! - [`endpoint`](Endpoint): the verbs, inbound routing, Via/Contact composition.
//! - `commands`: what the application calls; `uas`: requests we receive;
//!   `uac`: responses to ours, 2xx retransmission; `dialog`, `call`: state.
//! - `transaction/`: `invite_client`, `non_invite_client`, `invite_server`,
//!   `non_invite_server`, and matching (§17.1.3, §17.2.3); [`timer`]: the
//!   deadline table citing each §17 clause.
//! - `trunk`: where requests to a trunk go and the credentials that answer
//!   its challenges (per trunk, bound to the host they were sent to).
//! - [`digest`]: challenges and responses (client and server side);
//!   [`authenticator`]: trunk-mode 401/403 and the nonce table;
//!   [`allow_list`]: CIDR source checks; `body`: DTMF and sipfrag bodies.
//! - `registration`: the REGISTER client (§10.2) with refresh and back-off.
//! - `keepalive`: OPTIONS keep-alives to trunks, reporting the peer up or down.
//! - [`locate`]: RFC 3263 server location: what to ask DNS for a trunk's
//!   URI, and NAPTR/SRV answers ordered into destinations (RFC 2782).
//! - `replaces`: attended transfer (RFC 3891 Replaces, `refer_attended`).
//! - [`session_timer`]: RFC 4028 negotiation and the refresh/expiry deadlines.

#![forbid(unsafe_code)]

pub mod allow_list;
pub mod authenticator;
mod body;
mod call;
mod commands;
pub mod config;
mod dialog;
pub mod digest;
mod endpoint;
pub mod error;
pub mod event;
mod keepalive;
pub mod locate;
mod registration;
mod replaces;
mod rng;
pub mod session_timer;
pub mod timer;
mod transaction;
pub mod transport;
mod trunk;
mod uac;
mod uas;

use std::fmt;

pub use allow_list::Cidr;
pub use authenticator::{InboundAuth, Secret};
pub use config::Config;
pub use digest::Credentials;
pub use endpoint::{Endpoint, Stats};
pub use error::Error;
pub use event::{EndReason, Event, IncomingCall, Rejection};
pub use registration::RegistrationConfig;
pub use session_timer::{RefreshMethod, SessionTimerConfig};
pub use timer::{Timer, TimerConfig};
pub use transport::{Transmit, TransportKind};
pub use trunk::{Destination, Trunk};

/// Our handle on one call (one INVITE dialog); not the SIP Call-ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(u64);

/// Our handle on one OPTIONS keep-alive (a trunk we watch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeepaliveHandle(u64);

impl fmt::Display for KeepaliveHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "keepalive#{}", self.0)
    }
}

/// Our handle on one registration (a REGISTER binding we keep alive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistrationHandle(u64);

impl fmt::Display for RegistrationHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reg#{}", self.0)
    }
}

impl fmt::Display for CallHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
