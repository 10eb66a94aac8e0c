//! Trunks as the core sees them: where out-of-dialog requests to a carrier
//! SBC or a PBX go, and the digest credentials that answer its challenges.
//!
//! Credentials belong to a trunk, not to the box: a carrier trunk and a PBX
//! extension on one endpoint each answer 401/407 with their own username
//! and password. A challenge is answered only on a request that was sent to
//! that trunk, and the answer goes back to where the request went, never to
//! whoever sent the challenge; in-dialog requests (BYE, REFER, re-INVITE)
//! are answered only when they go to the host the dialog's INVITE went to.
//! The realm a peer names never selects credentials, so a peer cannot
//! claim another trunk's realm to obtain a digest for it.

use std::net::{IpAddr, SocketAddr};

use crate::digest::Credentials;
use crate::transaction::Peer;
use crate::transport::TransportKind;

/// Where requests to a trunk go and how they authenticate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trunk {
    /// Where requests go, in the order to try (RFC 3263 §4.3: the next one
    /// after a transport error, a timeout or a 503). Empty: where the
    /// Request-URI routes (its host when an IP literal, else the outbound
    /// proxy).
    pub destinations: Vec<Destination>,
    /// Answers 401/407 to requests sent to this trunk, and only to them.
    pub credentials: Option<Credentials>,
}

impl Trunk {
    /// A trunk reached where the Request-URI routes, answering challenges with `credentials`.
    pub fn with_credentials(credentials: Credentials) -> Trunk {
        Trunk {
            destinations: Vec::new(),
            credentials: Some(credentials),
        }
    }
}

/// One place to send a request: a transport and an address (a resolved
/// SRV target or the proxy's address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Destination {
    pub transport: TransportKind,
    pub address: SocketAddr,
}

impl From<Destination> for Peer {
    fn from(d: Destination) -> Peer {
        Peer {
            transport: d.transport,
            address: d.address,
        }
    }
}

/// A dialog's credentials, bound to the host its INVITE was sent to.
#[derive(Debug, Clone)]
pub(crate) struct HostCredentials {
    credentials: Credentials,
    host: IpAddr,
}

impl HostCredentials {
    pub(crate) fn new(credentials: Credentials, peer: Peer) -> HostCredentials {
        HostCredentials {
            credentials,
            host: peer.address.ip(),
        }
    }

    /// The credentials, when `peer` is the host they were given for.
    pub(crate) fn for_peer(&self, peer: Peer) -> Option<&Credentials> {
        (peer.address.ip() == self.host).then_some(&self.credentials)
    }
}
