//! The crate's one error type.

use std::net::SocketAddr;

use sip_message::ParseError;
use thiserror::Error;

use crate::{CallHandle, KeepaliveHandle, RegistrationHandle};

/// Why an input or a command was not acted on. The endpoint's state is
/// intact after any error: errors from [`crate::Endpoint::handle_datagram`]
/// are for logs and counters, not a reason to stop the run loop.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// A command named a call the endpoint does not know (ended, or never was).
    #[error("no call {0}")]
    UnknownCall(CallHandle),
    /// A command named a registration the endpoint does not know.
    #[error("no registration {0}")]
    UnknownRegistration(RegistrationHandle),
    /// A command named a keep-alive the endpoint does not know.
    #[error("no keep-alive {0}")]
    UnknownKeepalive(KeepaliveHandle),
    /// The command does not apply to the call's current state (answering
    /// an answered call, REFER before the dialog is confirmed, …).
    #[error("call {call} cannot {command} while {state}")]
    InvalidState {
        call: CallHandle,
        command: &'static str,
        state: &'static str,
    },
    /// The sans-IO core does no DNS: a target must be an IP literal unless
    /// an outbound proxy is configured.
    #[error("cannot route to {uri}: host is not an IP address and no outbound proxy is set")]
    Unroutable { uri: String },
    /// Bytes from the network that are not an acceptable SIP message.
    /// `answered` is true when a 4xx/5xx naming the problem was sent.
    #[error("malformed message from {from}: {error}")]
    Malformed {
        from: SocketAddr,
        error: ParseError,
        answered: bool,
    },
}
