//! Source allow-lists for trunk mode: CIDR blocks (IPv4 and IPv6) whose
//! requests are trusted without digest authentication (a carrier's SBC
//! addresses). Pure functions on addresses; no I/O.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An address block: `203.0.113.0/24`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("not an IP address: {0:?}")]
    Address(String),
    #[error("prefix length {prefix} is longer than {max}")]
    PrefixTooLong { prefix: u8, max: u8 },
    #[error("not a prefix length: {0:?}")]
    Prefix(String),
}

impl Cidr {
    /// The block of `prefix` leading bits of `address` (host bits cleared).
    pub fn new(address: IpAddr, prefix: u8) -> Result<Cidr, CidrError> {
        let max = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > max {
            return Err(CidrError::PrefixTooLong { prefix, max });
        }
        let network = match address {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(prefix))),
        };
        Ok(Cidr { network, prefix })
    }

    /// Whether the block is of IPv4 addresses.
    pub fn is_ipv4(&self) -> bool {
        self.network.is_ipv4()
    }

    /// Whether `ip` lies in the block. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`, what a dual-stack socket reports) matches the
    /// IPv4 blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & mask_v4(self.prefix) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & mask_v6(self.prefix) == u128::from(n),
            _ => false,
        }
    }
}

/// Whether `source` is in any of `allow`.
pub fn is_allowed(allow: &[Cidr], source: SocketAddr) -> bool {
    allow.iter().any(|c| c.contains(source.ip()))
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `address/prefix`, or a bare address (a /32 or /128).
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let s = s.trim();
        let (address, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| CidrError::Address(address.to_owned()))?;
        let prefix = match prefix {
            Some(p) => p.parse().map_err(|_| CidrError::Prefix(p.to_owned()))?,
            None if address.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(address, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn ipv4_blocks() {
        let block = cidr("203.0.113.77/24");
        assert_eq!(block.to_string(), "203.0.113.0/24");
        assert!(block.contains(ip("203.0.113.1")));
        assert!(block.contains(ip("203.0.113.255")));
        assert!(!block.contains(ip("203.0.114.1")));
        assert!(cidr("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(cidr("10.1.2.3").contains(ip("10.1.2.3")));
        assert!(!cidr("10.1.2.3").contains(ip("10.1.2.4")));
        // Dual-stack sockets report IPv4 peers as mapped IPv6.
        assert!(block.contains(ip("::ffff:203.0.113.9")));
        assert!(!block.contains(ip("2001:db8::1")));
    }

    #[test]
    fn ipv6_blocks() {
        let block = cidr("2001:db8:abcd::/48");
        assert!(block.contains(ip("2001:db8:abcd:1::5")));
        assert!(!block.contains(ip("2001:db8:abce::1")));
        assert!(!block.contains(ip("203.0.113.1")));
        assert!(cidr("::/0").contains(ip("fe80::1")));
        assert!(cidr("2001:db8::1").contains(ip("2001:db8::1")));
        assert!(!cidr("2001:db8::1").contains(ip("2001:db8::2")));
    }

    #[test]
    fn bad_blocks_are_refused() {
        assert_eq!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::PrefixTooLong {
                prefix: 33,
                max: 32
            })
        );
        assert!("2001:db8::/129".parse::<Cidr>().is_err());
        assert!("10.0.0/8".parse::<Cidr>().is_err());
        assert!("10.0.0.0/x".parse::<Cidr>().is_err());
        assert!("".parse::<Cidr>().is_err());
    }

    #[test]
    fn allow_list_checks_the_source_ip_only() {
        let allow = [cidr("198.51.100.0/28"), cidr("2001:db8::/32")];
        assert!(is_allowed(&allow, "198.51.100.14:5060".parse().unwrap()));
        assert!(!is_allowed(&allow, "198.51.100.16:5060".parse().unwrap()));
        assert!(is_allowed(&allow, "[2001:db8::7]:5080".parse().unwrap()));
        assert!(!is_allowed(&[], "198.51.100.14:5060".parse().unwrap()));
    }
}
