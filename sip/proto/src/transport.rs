//! What the driver owns: transports and the datagrams to send.

use std::fmt;
use std::net::SocketAddr;

/// The transport a message arrived on or must leave by.
///
/// Reliable transports (TCP, TLS) zero the timers that only absorb
/// retransmissions (RFC 3261 §17.1.1.2 Timer D, §17.1.2.2 Timer K,
/// §17.2.1 Timer I, §17.2.2 Timer J) and disable retransmission timers
/// (A, E, G).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Udp,
    Tcp,
    Tls,
}

impl TransportKind {
    /// RFC 3261 §18: TCP and TLS deliver reliably; UDP does not.
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    /// The token used in Via sent-protocol (RFC 3261 §20.42).
    pub fn via_token(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_token())
    }
}

/// Bytes the driver must send: on UDP one datagram to `destination`; on a
/// stream transport, written to the connection with that peer (opening one
/// if needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub transport: TransportKind,
    pub destination: SocketAddr,
    pub bytes: Vec<u8>,
}
