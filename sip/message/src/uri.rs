//! URIs: SIP/SIPS (RFC 3261 §19.1), tel (RFC 3966), and any other absolute
//! URI kept opaque (so `isbn:` in a To parses; RFC 4475 §3.3.4).
//!
//! Escapes (`%HH`) are kept as received: comparing or decoding them is the
//! caller's choice (RFC 3261 §19.1.4), and `%00` must survive (RFC 4475
//! §3.1.1.4).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::params::Params;

/// A URI as it appears in a Request-URI or a name-addr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip(SipUri),
    /// `tel:` (RFC 3966): the number and its parameters.
    Tel(TelUri),
    /// Any other scheme, kept opaque.
    Other(AbsoluteUri),
}

/// Why a URI did not parse.
pub type UriError = &'static str;

impl Uri {
    /// Parses an absolute URI.
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.is_empty() {
            return Err("empty URI");
        }
        if s.bytes()
            .any(|b| b.is_ascii_whitespace() || b"<>\"".contains(&b) || b < 0x20)
        {
            return Err("whitespace, control or <>\" in URI");
        }
        let (scheme, rest) = s.split_once(':').ok_or("no scheme")?;
        let mut sb = scheme.bytes();
        let scheme_ok = sb.next().is_some_and(|b| b.is_ascii_alphabetic())
            && sb.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return Err("bad scheme");
        }
        if scheme.eq_ignore_ascii_case("sip") {
            SipUri::parse_rest(false, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_rest(true, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse_rest(rest).map(Uri::Tel)
        } else if rest.is_empty() {
            Err("empty URI after scheme")
        } else {
            Ok(Uri::Other(AbsoluteUri {
                scheme: scheme.to_owned(),
                rest: rest.to_owned(),
            }))
        }
    }

    /// The scheme, lower-case for the schemes we know.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other(u) => &u.scheme,
        }
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(u) => u.fmt(f),
            Uri::Other(u) => write!(f, "{}:{}", u.scheme, u.rest),
        }
    }
}

/// An absolute URI of a scheme this crate does not interpret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsoluteUri {
    pub scheme: String,
    /// Everything after the first `:`.
    pub rest: String,
}

/// A host: domain name, IPv4 address, or IPv6 reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Domain(String),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Parses a host; IPv6 must be bracketed (RFC 3261 §25.1 `IPv6reference`).
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or("unterminated IPv6 reference")?;
            return inner
                .parse::<Ipv6Addr>()
                .map(Host::Ipv6)
                .map_err(|_| "bad IPv6 address");
        }
        if s.is_empty() {
            return Err("empty host");
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            if let Ok(v4) = s.parse::<Ipv4Addr>() {
                return Ok(Host::Ipv4(v4));
            }
        }
        // hostname = *( domainlabel "." ) toplabel [ "." ]; we accept the
        // label characters and leave label structure to DNS.
        if s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            Ok(Host::Domain(s.to_owned()))
        } else {
            Err("bad host")
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => a.fmt(f),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Splits `host[:port]`, honouring IPv6 brackets.
pub(crate) fn host_port(s: &str) -> Result<(Host, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or("unterminated IPv6 reference")?;
        let (h, rest) = s.split_at(end + 1);
        match rest {
            "" => (h, None),
            _ => (
                h,
                Some(rest.strip_prefix(':').ok_or("junk after IPv6 reference")?),
            ),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| "port out of range")?)
        }
        Some(_) => return Err("bad port"),
    };
    Ok((Host::parse(host)?, port))
}

/// A `sip:` or `sips:` URI (RFC 3261 §19.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part, escapes kept (may contain `;` — RFC 4475 §3.1.1.9).
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    /// uri-parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// headers (`?Route=...&Subject=...`), name and value as received.
    pub headers: Vec<(String, String)>,
}

impl SipUri {
    /// Parses a SIP URI including its scheme.
    pub fn parse(s: &str) -> Result<SipUri, UriError> {
        match Uri::parse(s)? {
            Uri::Sip(u) => Ok(u),
            _ => Err("not a sip or sips URI"),
        }
    }

    fn parse_rest(secure: bool, rest: &str) -> Result<SipUri, UriError> {
        // userinfo ends at the first '@': user and password characters never
        // include an unescaped '@', but may include ';', '?', ',' and '/'.
        let (userinfo, hostpart) = match rest.find('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p.to_owned())),
                    None => (ui, None),
                };
                if u.is_empty() {
                    return Err("empty user");
                }
                (Some(u.to_owned()), p)
            }
        };
        let (before_headers, headers) = match hostpart.split_once('?') {
            Some((b, h)) => (b, Some(h)),
            None => (hostpart, None),
        };
        let (hp, params) = match before_headers.split_once(';') {
            Some((hp, p)) => (hp, Params::parse_uri(p)?),
            None => (before_headers, Params::default()),
        };
        let (host, port) = host_port(hp)?;
        let headers = match headers {
            None => Vec::new(),
            Some(h) => h
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
                    _ => Err("bad URI header"),
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(pw) = &self.password {
                write!(f, ":{pw}")?;
            }
            f.write_str("@")?;
        }
        self.host.fmt(f)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        self.params.fmt(f)?;
        for (i, (k, v)) in self.headers.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

/// A `tel:` URI (RFC 3966): the number as received and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    pub number: String,
    pub params: Params,
}

impl TelUri {
    fn parse_rest(rest: &str) -> Result<TelUri, UriError> {
        let (number, params) = match rest.split_once(';') {
            Some((n, p)) => (n, Params::parse_uri(p)?),
            None => (rest, Params::default()),
        };
        let ok = !number.is_empty()
            && number
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b"+-.()*#".contains(&b));
        if !ok {
            return Err("bad telephone number");
        }
        Ok(TelUri {
            number: number.to_owned(),
            params,
        })
    }
}

impl fmt::Display for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tel:{}{}", self.number, self.params)
    }
}
