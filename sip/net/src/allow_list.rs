//! The trunk allow-list: which source addresses may place inbound calls.
//!
//! It lives in the driver, not in the call runtime, because it is a
//! transport-level check on the datagram's source (DESIGN "A call, step by
//! step" 1) that must answer before any call state exists above SIP: a
//! refused INVITE gets `403 Forbidden` and never reaches the application.

use std::net::IpAddr;

pub use sip_proto::allow_list::{Cidr, CidrError};

/// Sources allowed to send INVITEs. An empty list allows nobody; use
/// [`AllowList::any`] (the default) to allow everyone (digest-authenticated
/// registrations, development).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowList {
    blocks: Option<Vec<Cidr>>,
}

impl AllowList {
    /// Everyone may call.
    pub fn any() -> AllowList {
        AllowList { blocks: None }
    }

    /// Only these blocks may call.
    pub fn only(blocks: impl IntoIterator<Item = Cidr>) -> AllowList {
        AllowList {
            blocks: Some(blocks.into_iter().collect()),
        }
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        match &self.blocks {
            None => true,
            Some(blocks) => blocks.iter().any(|b| b.contains(ip)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        let list = AllowList::only(["127.0.0.0/8".parse().unwrap()]);
        assert!(list.allows("127.0.0.1".parse().unwrap()));
        assert!(!list.allows("192.0.2.1".parse().unwrap()));
        assert!(AllowList::any().allows("192.0.2.1".parse().unwrap()));
        assert!(!AllowList::only([]).allows("127.0.0.1".parse().unwrap()));
    }
}
