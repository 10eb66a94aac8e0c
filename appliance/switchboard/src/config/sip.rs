//! `[sip]`: the SIP listener, who may call, whose caller ID is believed, DNS.

use super::*;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// SIP over UDP and TCP, both on this address.
    pub listen: SocketAddr,
    /// The public IP peers must use to reach us (behind NAT): written into Via, Contact and SDP.
    pub external_address: Option<std::net::IpAddr>,
    /// Only these sources (CIDR blocks or addresses: the PBX, a carrier's SBCs) may send
    /// INVITEs; others get 403. Joined with every trunk's `allow` (see
    /// [`Config::inbound_allow`]). When all are empty, nobody may call unless `allow_any`.
    pub allow: Vec<Block>,
    /// Accept INVITEs from any source (a demo, a lab). Off by default: an appliance answers its
    /// PBX and trunks, not whoever finds its port.
    pub allow_any: bool,
    /// Sources whose caller ID is believed (the RFC 3325 trust domain: the PBX or carrier SBCs
    /// that assert it): the number in P-Asserted-Identity, else in From. Joined with the `allow`
    /// of trunks that set `trust_caller_id`. Caller memory and the blacklist use only such
    /// numbers; anyone else's From is a claim, and the call is treated as anonymous.
    pub trust_caller_id_from: Vec<Block>,
    /// Nameservers that locate trunks (NAPTR, SRV, A/AAAA), as "IP" or "IP:PORT" (port 53
    /// unless given), asked in this order. Empty: the system's, from `/etc/resolv.conf`.
    pub dns_servers: Vec<String>,
    /// SIP over TCP and TLS connections at once from one address, and in all: more are closed
    /// unread (a PBX needs a handful; raise for one that opens a connection per line).
    pub max_connections_per_source: u32,
    pub max_connections: u32,
    /// SRTP with keys in the SDP (SDES, RFC 4568) for the calls' media.
    pub srtp: SrtpMode,
}

/// Whether calls' media is SRTP. SDES keys travel in the SDP, so they are as private as the SIP
/// that carries them: SRTP protects media from the network only where signalling is TLS.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SrtpMode {
    /// RTP only; an offer of SRTP alone is refused (488).
    Off,
    /// SRTP when the caller offers it (RTP/SAVP), RTP otherwise.
    #[default]
    Accept,
    /// SRTP only; an offer of RTP is refused (488).
    Require,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            external_address: None,
            allow: Vec::new(),
            allow_any: false,
            trust_caller_id_from: Vec::new(),
            dns_servers: Vec::new(),
            max_connections_per_source: 32,
            max_connections: 1024,
            srtp: SrtpMode::Accept,
        }
    }
}

impl SipConfig {
    /// `dns_servers` as socket addresses (checked at load; an unparsable entry is skipped).
    pub fn dns_servers(&self) -> Vec<SocketAddr> {
        self.dns_servers
            .iter()
            .filter_map(|s| dns_server(s))
            .collect()
    }
}

/// "IP" (port 53) or "IP:PORT" ("[IPv6]:PORT").
pub(super) fn dns_server(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

/// An address or CIDR block (`203.0.113.0/24`, `2001:db8::1`), parsed at load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Block(pub sip_net::Cidr);

/// A list entry that is not an address or CIDR block.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not an address or CIDR block: {source}")]
pub struct BlockError {
    text: String,
    source: sip_net::CidrError,
}

impl std::str::FromStr for Block {
    type Err = BlockError;

    fn from_str(text: &str) -> Result<Self, BlockError> {
        text.parse().map(Block).map_err(|source| BlockError {
            text: text.to_owned(),
            source,
        })
    }
}

impl TryFrom<String> for Block {
    type Error = BlockError;

    fn try_from(text: String) -> Result<Self, BlockError> {
        text.parse()
    }
}
