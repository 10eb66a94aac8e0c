//! SDP (RFC 8866, formerly RFC 4566): parse, serialise, and typed access to the attributes a
//! telephony audio stream uses; [`offer`] and [`answer`] implement RFC 3264 for G.711.
//!
//! Parsing is lenient where peers are known to deviate (bare `\n` line ends, missing `t=`,
//! unknown line types kept verbatim) and strict where a wrong guess would misroute media (`c=`,
//! `m=`, `rtpmap`). Lines outside the fields we model are preserved in order for round trips.

mod offer_answer;

use std::fmt::{self, Write as _};
use std::net::IpAddr;

pub use offer_answer::{
    answer, choose_ptime, negotiate_answer, offer, Answer, Codec, LocalCapabilities,
    NegotiatedMedia, SrtpPolicy, PTIMES_MS,
};

use crate::{Error, PayloadType, SdpErrorKind};

/// Largest description accepted, in bytes.
pub const MAX_LEN: usize = 64 * 1024;

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` line.
    pub origin: Origin,
    /// `s=` line (a single space when the peer has nothing to say).
    pub session_name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level lines we do not model (`i= u= e= p= b= t= r= z= k=` and unknown types), in
    /// order.
    pub other: Vec<Line>,
    /// Session-level `a=` lines.
    pub attributes: Vec<Attribute>,
    /// `m=` sections.
    pub media: Vec<MediaDescription>,
}

/// A raw line kept for round trips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Type letter.
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

/// `o=<username> <sess-id> <sess-version> IN <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username (`-` when none).
    pub username: String,
    /// Session id (digits; kept as text since some peers exceed 64 bits).
    pub session_id: String,
    /// Session version; the answerer increments it on each change.
    pub session_version: u64,
    /// Network type and address.
    pub address: Address,
}

/// An `IN IP4|IP6 <address>` triple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// IP4 or IP6.
    pub family: AddressFamily,
    /// The address text (an IP literal, or an FQDN which we cannot send to).
    pub host: String,
}

/// Address type of `o=` and `c=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamily {
    /// IPv4.
    Ip4,
    /// IPv6.
    Ip6,
}

/// `c=IN <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The address.
    pub address: Address,
}

impl Connection {
    /// A connection line for an IP address.
    pub fn new(ip: IpAddr) -> Self {
        Connection {
            address: Address::from_ip(ip),
        }
    }

    /// The IP address, if the host is an IP literal (a multicast `/ttl` suffix is dropped).
    pub fn ip(&self) -> Option<IpAddr> {
        self.address
            .host
            .split('/')
            .next()
            .and_then(|h| h.parse().ok())
    }

    /// RFC 2543 legacy hold: `c=IN IP4 0.0.0.0`.
    pub fn is_hold(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

impl Address {
    /// From an IP address.
    pub fn from_ip(ip: IpAddr) -> Self {
        Address {
            family: if ip.is_ipv4() {
                AddressFamily::Ip4
            } else {
                AddressFamily::Ip6
            },
            host: ip.to_string(),
        }
    }
}

/// An `a=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Name before `:`.
    pub name: String,
    /// Value after `:`, if any.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute (`a=sendrecv`).
    pub fn flag(name: &str) -> Self {
        Attribute {
            name: name.to_owned(),
            value: None,
        }
    }

    /// A value attribute (`a=ptime:20`).
    pub fn value(name: &str, value: impl Into<String>) -> Self {
        Attribute {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }
}

/// Media direction (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Send and receive (the default).
    SendRecv,
    /// Send only.
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// Whether this side sends.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// The answer's direction for an offer with this direction when we want `local`
    /// (RFC 3264 §6.1: sendonly ↔ recvonly, inactive stays inactive).
    pub fn answer_to(self, local: Direction) -> Direction {
        Direction::from_flags(
            self.receives() && local.sends(),
            self.sends() && local.receives(),
        )
    }
}

/// An `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, …
    pub media: String,
    /// Transport port; 0 rejects or disables the stream.
    pub port: u16,
    /// `/<number of ports>` if present.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, …
    pub protocol: String,
    /// Format list (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    /// Media-level lines we do not model (`i= b= k=`, unknown), in order.
    pub other: Vec<Line>,
    /// Media-level `a=` lines.
    pub attributes: Vec<Attribute>,
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub payload_type: PayloadType,
    /// Encoding name as written (compare case-insensitively).
    pub encoding: String,
    /// Clock rate.
    pub clock_rate: u32,
    /// Channels, if given.
    pub channels: Option<u16>,
}

/// `a=rtcp:<port> [IN IP4 <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttribute {
    /// RTCP port.
    pub port: u16,
    /// RTCP address if different from `c=`.
    pub connection: Option<Connection>,
}

impl MediaDescription {
    /// First attribute value with `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.value.as_deref())
    }

    /// Whether a property attribute is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attributes.iter().any(|a| a.name == name)
    }

    /// Parsed `rtpmap` attributes; malformed ones are skipped.
    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap> + '_ {
        self.attributes
            .iter()
            .filter(|a| a.name == "rtpmap")
            .filter_map(|a| parse_rtpmap(a.value.as_deref()?))
    }

    /// The `fmtp` parameters for a payload type.
    pub fn fmtp(&self, payload_type: PayloadType) -> Option<&str> {
        self.attributes
            .iter()
            .filter(|a| a.name == "fmtp")
            .filter_map(|a| a.value.as_deref())
            .find_map(|v| {
                let (pt, params) = v.split_once(' ')?;
                (pt.parse::<u8>().ok()? == payload_type.get()).then_some(params.trim())
            })
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        self.attribute("ptime")?.trim().parse().ok()
    }

    /// `a=maxptime` in milliseconds (RFC 4566 §6).
    pub fn maxptime(&self) -> Option<u32> {
        self.attribute("maxptime")?.trim().parse().ok()
    }

    /// Media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .find_map(|a| Direction::from_name(&a.name))
    }

    /// `a=rtcp` (RFC 3605).
    pub fn rtcp(&self) -> Option<RtcpAttribute> {
        let value = self.attribute("rtcp")?;
        let mut parts = value.split_whitespace();
        let port = parts.next()?.parse().ok()?;
        let connection = match (parts.next(), parts.next(), parts.next()) {
            (Some("IN"), Some(family), Some(host)) => Some(Connection {
                address: Address {
                    family: parse_family(family)?,
                    host: host.to_owned(),
                },
            }),
            _ => None,
        };
        Some(RtcpAttribute { port, connection })
    }

    /// Payload types in the format list that parse as numbers.
    pub fn payload_types(&self) -> impl Iterator<Item = PayloadType> + '_ {
        self.formats
            .iter()
            .filter_map(|f| PayloadType::new(f.parse().ok()?).ok())
    }

    /// Removes direction attributes and sets `direction`.
    pub fn set_direction(&mut self, direction: Direction) {
        self.attributes
            .retain(|a| Direction::from_name(&a.name).is_none());
        self.attributes.push(Attribute::flag(direction.as_str()));
    }
}

impl SessionDescription {
    /// Parses a description. Never panics; errors name the 1-based line.
    pub fn parse(input: &[u8]) -> Result<Self, Error> {
        if input.len() > MAX_LEN {
            return Err(sdp_err(0, SdpErrorKind::TooLarge));
        }
        let text = std::str::from_utf8(input).map_err(|_| sdp_err(0, SdpErrorKind::NotUtf8))?;
        let mut origin = None;
        let mut session_name = None;
        let mut session = SessionDescription {
            origin: Origin {
                username: String::new(),
                session_id: String::new(),
                session_version: 0,
                address: Address {
                    family: AddressFamily::Ip4,
                    host: String::new(),
                },
            },
            session_name: String::new(),
            connection: None,
            other: Vec::new(),
            attributes: Vec::new(),
            media: Vec::new(),
        };
        let mut seen_version = false;
        for (index, raw) in text.split('\n').enumerate() {
            let n = index + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.is_empty() {
                continue;
            }
            let bytes = line.as_bytes();
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
                return Err(sdp_err(n, SdpErrorKind::MalformedLine));
            }
            let kind = bytes[0] as char;
            let value = &line[2..];
            if !seen_version {
                if kind != 'v' || value.trim() != "0" {
                    return Err(sdp_err(n, SdpErrorKind::BadVersion));
                }
                seen_version = true;
                continue;
            }
            match (kind, session.media.last_mut()) {
                ('v', _) => return Err(sdp_err(n, SdpErrorKind::BadVersion)),
                ('m', _) => session.media.push(parse_media(n, value)?),
                ('c', None) => session.connection = Some(parse_connection(n, value)?),
                ('c', Some(m)) => m.connection = Some(parse_connection(n, value)?),
                ('a', None) => session.attributes.push(parse_attribute(value)),
                ('a', Some(m)) => m.attributes.push(parse_attribute(value)),
                ('o', None) => origin = Some(parse_origin(n, value)?),
                ('s', None) => session_name = Some(value.to_owned()),
                (_, None) => session.other.push(Line {
                    kind,
                    value: value.to_owned(),
                }),
                (_, Some(m)) => m.other.push(Line {
                    kind,
                    value: value.to_owned(),
                }),
            }
        }
        if !seen_version {
            return Err(sdp_err(1, SdpErrorKind::BadVersion));
        }
        session.origin = origin.ok_or(sdp_err(0, SdpErrorKind::Missing('o')))?;
        session.session_name = session_name.ok_or(sdp_err(0, SdpErrorKind::Missing('s')))?;
        Ok(session)
    }

    /// Session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .find_map(|a| Direction::from_name(&a.name))
    }

    /// The effective direction of media section `index`: media level, else session level, else
    /// sendrecv (RFC 3264 §5.1).
    pub fn media_direction(&self, index: usize) -> Direction {
        self.media
            .get(index)
            .and_then(MediaDescription::direction)
            .or(self.direction())
            .unwrap_or(Direction::SendRecv)
    }

    /// The effective connection of media section `index` (media level overrides session level).
    pub fn media_connection(&self, index: usize) -> Option<&Connection> {
        self.media
            .get(index)
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
    }

    /// Sets the address in `o=` and every `c=` (e.g. the NAT's external address).
    pub fn set_connection_address(&mut self, ip: IpAddr) {
        self.origin.address = Address::from_ip(ip);
        let connection = Connection::new(ip);
        self.connection = Some(connection.clone());
        for m in &mut self.media {
            if m.connection.is_some() {
                m.connection = Some(connection.clone());
            }
        }
    }

    /// Serialises with CRLF line ends in RFC 8866 §5 order.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(
            f,
            "v=0\r\no={} {} {} IN {} {}\r\ns={}\r\n",
            o.username,
            o.session_id,
            o.session_version,
            family_str(o.address.family),
            o.address.host,
            self.session_name
        )?;
        // RFC 8866 §5 order: i u e p before c; b t r z k after.
        for line in self.other.iter().filter(|l| "iuep".contains(l.kind)) {
            write!(f, "{}={}\r\n", line.kind, line.value)?;
        }
        if let Some(c) = &self.connection {
            write_connection(f, c)?;
        }
        let has_time = self.other.iter().any(|l| l.kind == 't');
        for line in self.other.iter().filter(|l| l.kind == 'b') {
            write!(f, "b={}\r\n", line.value)?;
        }
        if !has_time {
            f.write_str("t=0 0\r\n")?;
        }
        for line in self.other.iter().filter(|l| !"iuepb".contains(l.kind)) {
            write!(f, "{}={}\r\n", line.kind, line.value)?;
        }
        for a in &self.attributes {
            write_attribute(f, a)?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(count) = m.port_count {
                write!(f, "/{count}")?;
            }
            write!(f, " {}", m.protocol)?;
            for fmt in &m.formats {
                write!(f, " {fmt}")?;
            }
            f.write_str("\r\n")?;
            for line in m.other.iter().filter(|l| l.kind == 'i') {
                write!(f, "i={}\r\n", line.value)?;
            }
            if let Some(c) = &m.connection {
                write_connection(f, c)?;
            }
            for line in m.other.iter().filter(|l| l.kind != 'i') {
                write!(f, "{}={}\r\n", line.kind, line.value)?;
            }
            for a in &m.attributes {
                write_attribute(f, a)?;
            }
        }
        Ok(())
    }
}

fn write_connection(f: &mut fmt::Formatter<'_>, c: &Connection) -> fmt::Result {
    write!(
        f,
        "c=IN {} {}\r\n",
        family_str(c.address.family),
        c.address.host
    )
}

fn write_attribute(f: &mut fmt::Formatter<'_>, a: &Attribute) -> fmt::Result {
    f.write_str("a=")?;
    f.write_str(&a.name)?;
    if let Some(v) = &a.value {
        f.write_char(':')?;
        f.write_str(v)?;
    }
    f.write_str("\r\n")
}

fn family_str(family: AddressFamily) -> &'static str {
    match family {
        AddressFamily::Ip4 => "IP4",
        AddressFamily::Ip6 => "IP6",
    }
}

fn sdp_err(line: usize, kind: SdpErrorKind) -> Error {
    Error::Sdp { line, kind }
}

fn bad(line: usize, line_type: char, field: &'static str) -> Error {
    sdp_err(line, SdpErrorKind::BadField { line_type, field })
}

fn parse_family(s: &str) -> Option<AddressFamily> {
    match s {
        "IP4" => Some(AddressFamily::Ip4),
        "IP6" => Some(AddressFamily::Ip6),
        _ => None,
    }
}

fn parse_origin(n: usize, value: &str) -> Result<Origin, Error> {
    let f: Vec<&str> = value.split_whitespace().collect();
    let [username, session_id, version, net, family, host] = f[..] else {
        return Err(bad(n, 'o', "field count"));
    };
    if net != "IN" {
        return Err(bad(n, 'o', "nettype"));
    }
    Ok(Origin {
        username: username.to_owned(),
        session_id: session_id.to_owned(),
        session_version: version.parse().map_err(|_| bad(n, 'o', "sess-version"))?,
        address: Address {
            family: parse_family(family).ok_or(bad(n, 'o', "addrtype"))?,
            host: host.to_owned(),
        },
    })
}

fn parse_connection(n: usize, value: &str) -> Result<Connection, Error> {
    let f: Vec<&str> = value.split_whitespace().collect();
    let [net, family, host] = f[..] else {
        return Err(bad(n, 'c', "field count"));
    };
    if net != "IN" {
        return Err(bad(n, 'c', "nettype"));
    }
    Ok(Connection {
        address: Address {
            family: parse_family(family).ok_or(bad(n, 'c', "addrtype"))?,
            host: host.to_owned(),
        },
    })
}

fn parse_media(n: usize, value: &str) -> Result<MediaDescription, Error> {
    let mut f = value.split_whitespace();
    let media = f.next().ok_or(bad(n, 'm', "media"))?.to_owned();
    let port_field = f.next().ok_or(bad(n, 'm', "port"))?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, c)) => (p, Some(c.parse().map_err(|_| bad(n, 'm', "port count"))?)),
        None => (port_field, None),
    };
    let port = port.parse().map_err(|_| bad(n, 'm', "port"))?;
    let protocol = f.next().ok_or(bad(n, 'm', "proto"))?.to_owned();
    let formats: Vec<String> = f.map(str::to_owned).collect();
    Ok(MediaDescription {
        media,
        port,
        port_count,
        protocol,
        formats,
        connection: None,
        other: Vec::new(),
        attributes: Vec::new(),
    })
}

fn parse_attribute(value: &str) -> Attribute {
    match value.split_once(':') {
        Some((name, v)) => Attribute::value(name, v),
        None => Attribute::flag(value),
    }
}

fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, rest) = value.trim().split_once(' ')?;
    let payload_type = PayloadType::new(pt.parse().ok()?).ok()?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next()?.to_owned();
    let clock_rate = parts.next()?.parse().ok()?;
    let channels = match parts.next() {
        Some(c) => Some(c.parse().ok()?),
        None => None,
    };
    Some(RtpMap {
        payload_type,
        encoding,
        clock_rate,
        channels,
    })
}
