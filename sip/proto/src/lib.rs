//! Sans-IO SIP endpoint (work in progress).

#![forbid(unsafe_code)]

mod body;
mod call;
mod commands;
pub mod config;
mod dialog;
pub mod digest;
mod endpoint;
pub mod error;
pub mod event;
mod rng;
pub mod timer;
mod transaction;
pub mod transport;
mod uac;
mod uas;

use std::fmt;

pub use config::Config;
pub use digest::Credentials;
pub use endpoint::{Endpoint, Stats};
pub use error::Error;
pub use event::{EndReason, Event, IncomingCall, Rejection};
pub use timer::{Timer, TimerConfig};
pub use transport::{TransportKind, Transmit};

/// Our handle on one call (one INVITE dialog); not the SIP Call-ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(u64);

impl fmt::Display for CallHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
