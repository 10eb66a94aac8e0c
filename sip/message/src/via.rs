//! The Via header field (RFC 3261 §20.42, §18.2.1) with RFC 3581 `rport`.

use std::fmt;
use std::net::IpAddr;

use crate::params::Params;
use crate::uri::{host_port, Host};

/// The transport named in a Via's sent-protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
    /// Any other token (`UNKNOWN` in RFC 4475 §3.1.1.10), upper-cased.
    Other(String),
}

impl Transport {
    fn parse(s: &str) -> Transport {
        match s.to_ascii_uppercase().as_str() {
            "UDP" => Transport::Udp,
            "TCP" => Transport::Tcp,
            "TLS" => Transport::Tls,
            "SCTP" => Transport::Sctp,
            "WS" => Transport::Ws,
            "WSS" => Transport::Wss,
            other => Transport::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
            Transport::Other(s) => s,
        }
    }
}

/// A Via branch parameter: the transaction identifier (RFC 3261 §8.1.1.7).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Branch(String);

/// RFC 3261 §8.1.1.7: branches that start with this are RFC 3261 branches.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

impl Branch {
    /// A branch from a token; `None` if `s` is empty.
    pub fn new(s: impl Into<String>) -> Option<Branch> {
        let s = s.into();
        (!s.is_empty()).then_some(Branch(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Starts with the magic cookie and has something after it. A bare
    /// `z9hG4bK` (RFC 4475 §3.2.1) is not usable as a transaction id.
    pub fn is_rfc3261(&self) -> bool {
        self.0.len() > MAGIC_COOKIE.len() && self.0.starts_with(MAGIC_COOKIE)
    }
}

impl fmt::Display for Branch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The RFC 3581 `rport` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rport {
    /// Valueless `rport`: the client asks for the source port to be filled in.
    Requested,
    /// `rport=5060`, as filled in by the server.
    Port(u16),
}

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: Transport,
    /// sent-by host.
    pub host: Host,
    /// sent-by port, if given.
    pub port: Option<u16>,
    pub branch: Option<Branch>,
    pub received: Option<IpAddr>,
    pub rport: Option<Rport>,
    pub maddr: Option<String>,
    pub ttl: Option<u8>,
    /// Every parameter, in order, the ones above included.
    pub params: Params,
}

impl Via {
    /// Parses one Via value (not a comma-separated list).
    pub fn parse(s: &str) -> Result<Via, &'static str> {
        // sent-protocol = "SIP" SLASH "2.0" SLASH transport, LWS allowed
        // around each slash (RFC 4475 §3.1.1.1).
        let mut rest = s.trim();
        let mut fields = [""; 3];
        for (i, field) in fields.iter_mut().enumerate() {
            let end = if i < 2 {
                rest.find('/')
                    .ok_or("sent-protocol needs SIP/2.0/transport")?
            } else {
                rest.find([' ', '\t']).ok_or("no sent-by after transport")?
            };
            *field = rest[..end].trim();
            rest = rest[end + usize::from(i < 2)..].trim_start();
        }
        let [name, version, transport] = fields;
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err("sent-protocol is not SIP/2.0");
        }
        if !crate::syntax::is_token(transport) {
            return Err("transport is not a token");
        }
        let (sent_by, params) = match rest.split_once(';') {
            Some((sb, p)) => (sb.trim(), Params::parse_header(p)?),
            None => (rest.trim(), Params::default()),
        };
        // sent-by may have LWS around ':' in theory; the torture tests do
        // not, and peers do not, so a space inside sent-by is an error.
        let (host, port) = host_port(sent_by)?;
        let branch = match params.get("branch") {
            Some(Some(b)) => Some(Branch::new(b).ok_or("empty branch")?),
            Some(None) => return Err("branch without value"),
            None => None,
        };
        let received = match params.get("received") {
            Some(Some(r)) => Some(
                r.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .map_err(|_| "received is not an IP address")?,
            ),
            Some(None) => return Err("received without value"),
            None => None,
        };
        let rport = match params.get("rport") {
            Some(None) => Some(Rport::Requested),
            Some(Some(p)) => Some(Rport::Port(p.parse().map_err(|_| "bad rport")?)),
            None => None,
        };
        let ttl = match params.get("ttl") {
            Some(Some(t)) => Some(t.parse().map_err(|_| "bad ttl")?),
            Some(None) => return Err("ttl without value"),
            None => None,
        };
        let maddr = params.get("maddr").flatten().map(str::to_owned);
        Ok(Via {
            transport: Transport::parse(transport),
            host,
            port,
            branch,
            received,
            rport,
            maddr,
            ttl,
            params,
        })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport.as_str(), self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        self.params.fmt(f)
    }
}
