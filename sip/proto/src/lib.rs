//! Sans-IO SIP endpoint (work in progress).

#![forbid(unsafe_code)]

pub mod config;
pub mod digest;
pub mod error;
mod rng;
pub mod timer;
mod transaction;
pub mod transport;

use std::fmt;

pub use config::Config;
pub use digest::Credentials;
pub use error::Error;
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
