//! The trunk allow-list: which source addresses may place inbound calls.
//!
//! It lives in the driver, not in the call runtime, because it is a
//! transport-level check on the datagram's source (DESIGN "A call, step by
//! step" 1) that must answer before any call state exists above SIP: a
//! refused INVITE gets `403 Forbidden` and never reaches the application.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One CIDR block (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?}: not an IP address")]
    Address(String),
    #[error("{0:?}: prefix length out of range")]
    Prefix(String),
}

impl Cidr {
    pub fn new(network: IpAddr, prefix: u8) -> Result<Cidr, CidrError> {
        let max = if network.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(CidrError::Prefix(format!("{network}/{prefix}")));
        }
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 source (dual-stack socket) matches IPv4 blocks.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (address, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| CidrError::Address(s.to_owned()))?;
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse()
                .map_err(|_| CidrError::Prefix(s.to_owned()))?,
            None if network.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(network, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

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
    fn blocks_match_by_prefix() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let host: Cidr = "192.0.2.7".parse().unwrap();
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(!host.contains("192.0.2.8".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_blocks_are_refused() {
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("host.example/8".parse::<Cidr>().is_err());
        assert!("10.0.0.0/x".parse::<Cidr>().is_err());
    }

    #[test]
    fn lists() {
        let list = AllowList::only(["127.0.0.0/8".parse().unwrap()]);
        assert!(list.allows("127.0.0.1".parse().unwrap()));
        assert!(!list.allows("192.0.2.1".parse().unwrap()));
        assert!(AllowList::any().allows("192.0.2.1".parse().unwrap()));
        assert!(!AllowList::only([]).allows("127.0.0.1".parse().unwrap()));
    }
}
