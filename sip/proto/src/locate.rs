//! Locating a trunk's servers (RFC 3263 §4), sans-IO: the driver asks DNS
//! what [`plan`] says to ask (NAPTR, SRV, A/AAAA) and hands the records
//! back; [`naptr_services`] and [`order_srv`] decide the order to try. The
//! result is the [`crate::Trunk::destinations`] list the endpoint fails
//! over along (§4.3).
//!
//! Randomness is an input: [`order_srv`] takes the RNG (RFC 2782's
//! weighted selection), so tests replay any order.

use std::net::IpAddr;

use sip_message::{Host, Uri};

use crate::transport::TransportKind;

/// What to look up for a URI (RFC 3263 §4.1, §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// An IP literal: no DNS (§4.2).
    Address {
        transport: TransportKind,
        ip: IpAddr,
        port: u16,
    },
    /// An explicit port: A/AAAA of `host` only, no NAPTR or SRV (§4.2).
    Host {
        transport: TransportKind,
        host: String,
        port: u16,
    },
    /// A transport but no port: SRV `_sip._udp.host` (or the like) for
    /// that transport, then A/AAAA with the default port (§4.2).
    Srv {
        transport: TransportKind,
        domain: String,
    },
    /// Neither: NAPTR for `domain`, else SRV for each transport in turn
    /// (§4.1), then A/AAAA on the default port of UDP (`sip:`) or TLS (`sips:`).
    Naptr { domain: String, secure: bool },
}

/// One NAPTR record (RFC 3403 §4.1), as far as SIP uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub service: String,
    pub replacement: String,
}

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// What `uri` needs resolved; `None` for a URI that is not `sip:`/`sips:`.
pub fn plan(uri: &Uri) -> Option<Plan> {
    let sip = uri.as_sip()?;
    let named = sip.params.get("transport").flatten().and_then(|t| {
        [
            ("udp", TransportKind::Udp),
            ("tcp", TransportKind::Tcp),
            ("tls", TransportKind::Tls),
        ]
        .into_iter()
        .find(|(n, _)| t.eq_ignore_ascii_case(n))
        .map(|(_, k)| k)
    });
    // §4.1: a sips: URI is always reached over TLS.
    let named = if sip.secure {
        Some(TransportKind::Tls)
    } else {
        named
    };
    let ip = match &sip.host {
        Host::Ipv4(a) => Some(IpAddr::V4(*a)),
        Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        Host::Domain(_) => None,
    };
    // §4.1: a numeric host or an explicit port means UDP unless named.
    let transport = named.unwrap_or(TransportKind::Udp);
    let port = sip.port.unwrap_or_else(|| default_port(transport));
    if let Some(ip) = ip {
        return Some(Plan::Address {
            transport,
            ip,
            port,
        });
    }
    let domain = match &sip.host {
        Host::Domain(d) => d.trim_end_matches('.').to_owned(),
        _ => return None,
    };
    if sip.port.is_some() {
        return Some(Plan::Host {
            transport,
            host: domain,
            port,
        });
    }
    match (named, sip.secure) {
        (Some(transport), false) => Some(Plan::Srv { transport, domain }),
        (_, secure) => Some(Plan::Naptr { domain, secure }),
    }
}

/// RFC 3261 §19.1.2: 5060, or 5061 for TLS.
pub fn default_port(transport: TransportKind) -> u16 {
    match transport {
        TransportKind::Tls => 5061,
        TransportKind::Udp | TransportKind::Tcp => 5060,
    }
}

/// The SRV name for `transport` at `domain` (RFC 3263 §4.1: `_sips._tcp`
/// for TLS, `_sip._tcp`, `_sip._udp`).
pub fn srv_name(transport: TransportKind, domain: &str) -> String {
    let prefix = match transport {
        TransportKind::Tls => "_sips._tcp",
        TransportKind::Tcp => "_sip._tcp",
        TransportKind::Udp => "_sip._udp",
    };
    format!("{prefix}.{domain}")
}

/// The transports to try and the SRV name for each, best first (RFC 3263
/// §4.1): NAPTR records for SIP+D2U, SIP+D2T and SIPS+D2T with the "s"
/// flag, by order then preference; for a `sips:` URI only SIPS+D2T. Without
/// usable NAPTR records, SRV for every transport we speak (TLS, TCP, UDP;
/// only TLS for `sips:`).
pub fn naptr_services(
    records: &[Naptr],
    domain: &str,
    secure: bool,
) -> Vec<(TransportKind, String)> {
    let mut usable: Vec<(&Naptr, TransportKind)> = records
        .iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter_map(|r| {
            let transport = match r.service.to_ascii_uppercase().as_str() {
                "SIPS+D2T" => TransportKind::Tls,
                "SIP+D2T" if !secure => TransportKind::Tcp,
                "SIP+D2U" if !secure => TransportKind::Udp,
                _ => return None,
            };
            Some((r, transport))
        })
        .collect();
    usable.sort_by_key(|(r, _)| (r.order, r.preference));
    if usable.is_empty() {
        let transports: &[TransportKind] = if secure {
            &[TransportKind::Tls]
        } else {
            &[TransportKind::Tls, TransportKind::Tcp, TransportKind::Udp]
        };
        return transports
            .iter()
            .map(|t| (*t, srv_name(*t, domain)))
            .collect();
    }
    usable
        .into_iter()
        .map(|(r, t)| (t, r.replacement.trim_end_matches('.').to_owned()))
        .collect()
}

/// SRV records in the order to try (RFC 2782): ascending priority; within
/// one priority, a weighted random order. `random(max)` returns a uniform
/// number in `0..=max`. A single record whose target is "." says the
/// service is not offered: nothing to try.
pub fn order_srv(records: &[Srv], mut random: impl FnMut(u32) -> u32) -> Vec<Srv> {
    if records.len() == 1 && records[0].target.trim_end_matches('.').is_empty() {
        return Vec::new();
    }
    let mut priorities: Vec<u16> = records.iter().map(|r| r.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let mut ordered = Vec::with_capacity(records.len());
    for priority in priorities {
        // RFC 2782: the zero-weight records first, then the others, each
        // round picking by a running sum of the weights.
        let mut left: Vec<&Srv> = records.iter().filter(|r| r.priority == priority).collect();
        left.sort_by_key(|r| r.weight != 0);
        while !left.is_empty() {
            let total: u32 = left.iter().map(|r| u32::from(r.weight)).sum();
            let pick = random(total);
            let mut running = 0;
            let index = left
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(left.len() - 1);
            ordered.push(left.remove(index).clone());
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn uri(s: &str) -> Uri {
        Uri::parse(s).unwrap()
    }

    #[test]
    fn plans_follow_rfc3263_section_4() {
        assert_eq!(
            plan(&uri("sip:192.0.2.4")),
            Some(Plan::Address {
                transport: TransportKind::Udp,
                ip: "192.0.2.4".parse().unwrap(),
                port: 5060
            })
        );
        assert_eq!(
            plan(&uri("sips:192.0.2.4")),
            Some(Plan::Address {
                transport: TransportKind::Tls,
                ip: "192.0.2.4".parse().unwrap(),
                port: 5061
            })
        );
        assert_eq!(
            plan(&uri("sip:sbc.example.com:5070;transport=tcp")),
            Some(Plan::Host {
                transport: TransportKind::Tcp,
                host: "sbc.example.com".into(),
                port: 5070
            })
        );
        assert_eq!(
            plan(&uri("sip:example.com;transport=tcp")),
            Some(Plan::Srv {
                transport: TransportKind::Tcp,
                domain: "example.com".into()
            })
        );
        assert_eq!(
            plan(&uri("sip:example.com")),
            Some(Plan::Naptr {
                domain: "example.com".into(),
                secure: false
            })
        );
        assert_eq!(
            plan(&uri("sips:example.com")),
            Some(Plan::Naptr {
                domain: "example.com".into(),
                secure: true
            })
        );
    }

    /// RFC 3263 §4.1's example: SIPS+D2T at order 50 is preferred over
    /// SIP+D2T (90) and SIP+D2U (100); a sips: URI keeps only SIPS+D2T.
    #[test]
    fn naptr_by_order_then_preference() {
        let naptr = |order, service: &str, replacement: &str| Naptr {
            order,
            preference: 50,
            flags: "s".into(),
            service: service.into(),
            replacement: replacement.into(),
        };
        let records = vec![
            naptr(100, "SIP+D2U", "_sip._udp.example.com."),
            naptr(90, "SIP+D2T", "_sip._tcp.example.com."),
            naptr(50, "SIPS+D2T", "_sips._tcp.example.com."),
            naptr(10, "E2U+sip", "ignored.example.com."),
        ];
        assert_eq!(
            naptr_services(&records, "example.com", false),
            vec![
                (TransportKind::Tls, "_sips._tcp.example.com".into()),
                (TransportKind::Tcp, "_sip._tcp.example.com".into()),
                (TransportKind::Udp, "_sip._udp.example.com".into()),
            ]
        );
        assert_eq!(
            naptr_services(&records, "example.com", true),
            vec![(TransportKind::Tls, "_sips._tcp.example.com".into())]
        );
        // No NAPTR: SRV for each transport (§4.1).
        assert_eq!(
            naptr_services(&[], "example.com", false)
                .into_iter()
                .map(|(_, n)| n)
                .collect::<Vec<_>>(),
            vec![
                "_sips._tcp.example.com",
                "_sip._tcp.example.com",
                "_sip._udp.example.com"
            ]
        );
    }

    #[test]
    fn srv_priority_first_then_weight() {
        // Two servers sharing priority 0 by weight, a backup at priority 10.
        let records = vec![
            srv(10, 0, 5060, "backup.example.com"),
            srv(0, 1, 5060, "small.example.com"),
            srv(0, 3, 5060, "big.example.com"),
        ];
        // random(4) = 0 picks the first with a running sum ≥ 0: "small"
        // (weight 1, sorted first as given); then "big"; then the backup.
        let order: Vec<String> = order_srv(&records, |_| 0)
            .into_iter()
            .map(|r| r.target)
            .collect();
        assert_eq!(
            order,
            ["small.example.com", "big.example.com", "backup.example.com"]
        );
        // random = max picks "big" first.
        let order: Vec<String> = order_srv(&records, |max| max)
            .into_iter()
            .map(|r| r.target)
            .collect();
        assert_eq!(
            order,
            ["big.example.com", "small.example.com", "backup.example.com"]
        );
    }

    /// Over many draws the weights hold within a priority.
    #[test]
    fn srv_weights_are_proportional() {
        let records = vec![srv(0, 1, 5060, "a"), srv(0, 3, 5060, "b")];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut first_b = 0;
        for _ in 0..4000 {
            let order = order_srv(&records, |max| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % (u64::from(max) + 1)) as u32
            });
            first_b += usize::from(order[0].target == "b");
        }
        // RFC 2782 draws in 0..=sum (here 0..=4) and 0 and 1 pick "a": "b"
        // comes first 3/5 of the time, 2400 ± 31 of 4000.
        assert!((2250..=2550).contains(&first_b), "{first_b}");
    }

    #[test]
    fn zero_weight_and_dot_target() {
        let records = vec![srv(0, 0, 5060, "zero"), srv(0, 5, 5060, "five")];
        let order = order_srv(&records, |_| 0);
        assert_eq!(
            order[0].target, "zero",
            "weight 0 goes first when the draw is 0"
        );
        assert_eq!(order.len(), 2);
        assert!(order_srv(&[srv(0, 0, 0, ".")], |_| 0).is_empty());
    }
}
