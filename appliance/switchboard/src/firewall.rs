//! The host firewall this box's configuration calls for, as an nftables ruleset
//! (`switchboard firewall`): open what the configured listeners use, to whom they answer, and
//! nothing else. The appliance image loads it at boot; a server installed from the package can
//! load it the same way (`switchboard firewall | nft -f -`).
//!
//! The daemon checks every source itself as well (`sip.allow`, the media's SDP address, API
//! roles): the firewall keeps everything else on the box unreachable and scanners off its ports.

use crate::config::Config;
use sip_net::Cidr;
use std::net::SocketAddr;

/// The nftables table that holds the rules; loading the ruleset again replaces it whole.
const TABLE: &str = "inet switchboard";

/// The ruleset for `config`: a table of its own whose input chain drops what is not listed.
pub fn nftables(config: &Config) -> String {
    let mut rules = Vec::new();
    if let Some(port) = reachable(config.sip.listen) {
        let sources = config.inbound_allow();
        let who = match &sources {
            None => "from anywhere (sip.allow_any)".to_owned(),
            Some(blocks) if blocks.is_empty() => "from nobody yet: sip.allow is empty".to_owned(),
            Some(_) => "from sip.allow and the trunks' allow".to_owned(),
        };
        rules.push(format!("# SIP over UDP and TCP on {port}, {who}"));
        for proto in ["udp", "tcp"] {
            rules.extend(from(
                sources.as_deref(),
                &format!("{proto} dport {port} accept"),
            ));
        }
        // Media comes from wherever the SDP says (a carrier's media servers are not its
        // signalling servers): the daemon takes a call's RTP only from that address.
        let ports = &config.calls.rtp_ports;
        rules.push(format!(
            "# RTP and RTCP on {}-{} (the daemon takes a call's media only from its SDP's address)",
            ports.first, ports.last
        ));
        rules.push(format!("udp dport {}-{} accept", ports.first, ports.last));
    }
    if let Some(port) = reachable(config.http.listen) {
        rules.push(format!(
            "# The admin UI and API on {port} (HTTPS, users and roles)"
        ));
        rules.push(format!("tcp dport {port} accept"));
    }
    let lines: String = BASE
        .iter()
        .map(|s| s.to_string())
        .chain(rules)
        .map(|line| format!("\t\t{line}\n"))
        .collect();
    format!(
        "# Written by `switchboard firewall` from this box's configuration.\n\
         table {TABLE}\ndelete table {TABLE}\n\
         table {TABLE} {{\n\tchain input {{\n\
         \t\ttype filter hook input priority filter; policy drop;\n{lines}\t}}\n}}\n"
    )
}

/// What every box needs: replies to its own traffic, loopback, and the ICMP that keeps IP
/// working (path MTU, unreachables, IPv6 neighbour discovery), and ping.
const BASE: [&str; 5] = [
    "ct state established,related accept",
    "ct state invalid drop",
    "iif lo accept",
    "icmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem } accept",
    "icmpv6 type { echo-request, destination-unreachable, packet-too-big, time-exceeded, \
     parameter-problem, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept",
];

/// The port of a listener others can reach; `None` for one on loopback.
fn reachable(listen: SocketAddr) -> Option<u16> {
    (!listen.ip().is_loopback()).then_some(listen.port())
}

/// `rule` for the sources in `blocks` (one line per address family that has any), or for
/// anyone when `None`.
fn from(blocks: Option<&[Cidr]>, rule: &str) -> Vec<String> {
    let Some(blocks) = blocks else {
        return vec![rule.to_owned()];
    };
    let set = |v4: bool| {
        let members: Vec<String> = blocks
            .iter()
            .filter(|b| b.is_ipv4() == v4)
            .map(|b| b.to_string())
            .collect();
        (!members.is_empty()).then(|| members.join(", "))
    };
    [("ip", set(true)), ("ip6", set(false))]
        .into_iter()
        .filter_map(|(family, set)| set.map(|s| format!("{family} saddr {{ {s} }} {rule}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, toml.as_bytes()).unwrap();
        crate::config::load(Some(file.path()), []).unwrap_or_else(|e| panic!("{e}"))
    }

    fn rules(toml: &str) -> Vec<String> {
        nftables(&config(toml))
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.starts_with('#'))
            .collect()
    }

    #[test]
    fn sip_is_open_only_to_the_allowed_sources_of_each_family() {
        let rules = rules(
            "[sip]\nlisten = \"0.0.0.0:5070\"\nallow = [\"192.0.2.10\", \"198.51.100.0/24\", \"2001:db8::/48\"]\n\
             [calls]\nrtp_ports = \"20000-20999\"\n\
             [[trunks]]\nname = \"carrier\"\nproxy = \"sip:203.0.113.5\"\nallow = [\"203.0.113.0/28\"]\n",
        );
        for proto in ["udp", "tcp"] {
            let v4 = format!(
                "ip saddr {{ 192.0.2.10/32, 198.51.100.0/24, 203.0.113.0/28 }} {proto} dport 5070 accept"
            );
            assert!(rules.contains(&v4), "{v4} not in {rules:#?}");
            let v6 = format!("ip6 saddr {{ 2001:db8::/48 }} {proto} dport 5070 accept");
            assert!(rules.contains(&v6), "{v6} not in {rules:#?}");
        }
        assert!(rules.contains(&"udp dport 20000-20999 accept".to_owned()));
        assert!(!rules
            .iter()
            .any(|r| r.contains("dport 5070") && !r.contains("saddr")));
    }

    #[test]
    fn with_nobody_allowed_sip_stays_closed_and_with_anyone_it_is_open() {
        let closed = rules("[sip]\nlisten = \"0.0.0.0:5060\"\n");
        assert!(!closed.iter().any(|r| r.contains("5060")), "{closed:#?}");
        let open = rules("[sip]\nlisten = \"0.0.0.0:5060\"\nallow_any = true\n");
        assert!(
            open.contains(&"udp dport 5060 accept".to_owned()),
            "{open:#?}"
        );
        assert!(
            open.contains(&"tcp dport 5060 accept".to_owned()),
            "{open:#?}"
        );
    }

    #[test]
    fn loopback_listeners_open_nothing_and_the_rest_is_dropped() {
        let text = nftables(&config(
            "[sip]\nlisten = \"127.0.0.1:5060\"\nallow_any = true\n[http]\nlisten = \"127.0.0.1:8080\"\n",
        ));
        assert!(!text.contains("dport"), "{text}");
        assert!(text.contains("policy drop;"), "{text}");
        let https = nftables(&config("[http]\nlisten = \"0.0.0.0:8443\"\n"));
        assert!(https.contains("\ttcp dport 8443 accept\n"), "{https}");
    }
}
