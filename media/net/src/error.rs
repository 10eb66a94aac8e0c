//! The crate's one error type.

use std::io;

/// Why a port could not be had, an SDP could not be answered, or a session
/// command could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configured range holds no even port pair.
    #[error("RTP port range {first}..={last} holds no even port (with its RTCP port)")]
    EmptyRange { first: u16, last: u16 },
    /// Every port of the range is in use (by us or another process).
    #[error("no free RTP port in {first}..={last} ({in_use} in use by calls)")]
    PoolExhausted {
        first: u16,
        last: u16,
        in_use: usize,
    },
    /// A socket could not be set up for tokio.
    #[error("RTP socket on port {port}: {source}")]
    Socket { port: u16, source: io::Error },
    /// The SDP could not be parsed or has nothing we can use.
    #[error("SDP: {0}")]
    Sdp(#[from] media_rtp::Error),
    /// The operating system's random source failed.
    #[error("no randomness for the RTP port: {0}")]
    Random(String),
    /// The session task has ended.
    #[error("the RTP session has ended")]
    Closed,
}
