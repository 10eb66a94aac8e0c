//! name-addr / addr-spec values: From, To, Contact, Route, Record-Route
//! (RFC 3261 §20.10, §20.20, §20.39, §25.1).

use std::fmt;

use crate::params::Params;
use crate::syntax::{is_token, quoted_string};
use crate::uri::Uri;

/// A From/To tag (RFC 3261 §19.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    /// A tag from a token; `None` if `s` is not a non-empty token.
    pub fn new(s: impl Into<String>) -> Option<Tag> {
        let s = s.into();
        is_token(&s).then_some(Tag(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name, URI and header parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Unquoted, quoted-pairs resolved; tokens joined by single spaces.
    pub display_name: Option<String>,
    pub uri: Uri,
    /// Header parameters (after `>`, or after the addr-spec).
    pub params: Params,
}

impl NameAddr {
    /// Parses `[display-name] <uri> *(;param)` or `addr-spec *(;param)`.
    pub fn parse(s: &str) -> Result<NameAddr, &'static str> {
        let s = s.trim();
        let (display_name, after_name) = if s.starts_with('"') {
            let (name, rest) = quoted_string(s).ok_or("unterminated quoted display name")?;
            let rest = rest.trim_start();
            if !rest.starts_with('<') {
                return Err("quoted display name not followed by <");
            }
            (Some(name), rest)
        } else if let Some(lt) = s.find('<') {
            let name = s[..lt].trim();
            // Unquoted display names are tokens separated by LWS; a comma or
            // other non-token character needs quotes (RFC 4475 §3.1.2.15).
            if !name.split_ascii_whitespace().all(is_token) {
                return Err("display name needs quoting");
            }
            let name = name.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
            ((!name.is_empty()).then_some(name), &s[lt..])
        } else {
            (None, s)
        };
        let (uri_text, params_text) = if let Some(inner) = after_name.strip_prefix('<') {
            let end = inner.find('>').ok_or("unterminated <")?;
            let rest = inner[end + 1..].trim_start();
            let params = match rest {
                "" => None,
                r => Some(r.strip_prefix(';').ok_or("junk after >")?),
            };
            (&inner[..end], params)
        } else {
            // addr-spec: any ';' starts header parameters, and a URI with
            // '?', ',' or ';' of its own must be in <> (RFC 3261 §20).
            let (uri, params) = match after_name.split_once(';') {
                Some((u, p)) => (u.trim_end(), Some(p)),
                None => (after_name, None),
            };
            if uri.contains(['?', ',']) {
                return Err("URI with ? or , must be enclosed in <>");
            }
            (uri, params)
        };
        // No LWS inside <> (RFC 4475 §3.1.2.14).
        let uri = Uri::parse(uri_text)?;
        let params = match params_text {
            Some(p) => Params::parse_header(p)?,
            None => Params::default(),
        };
        Ok(NameAddr {
            display_name,
            uri,
            params,
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<Tag> {
        self.params.get("tag").flatten().and_then(Tag::new)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            f.write_str("\"")?;
            for c in name.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// A Contact value: `*` (RFC 3261 §10.2.2, REGISTER only) or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Wildcard(Params),
    Address(NameAddr),
}

/// A `q` value in thousandths (RFC 3261 §20.10: 0 to 1, three decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QValue(u16);

impl QValue {
    pub fn parse(s: &str) -> Option<QValue> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let whole = match int {
            "0" => 0u16,
            "1" if frac.bytes().all(|b| b == b'0') => 1000,
            _ => return None,
        };
        let mut thousandths = 0u16;
        for (i, b) in frac.bytes().enumerate() {
            thousandths += u16::from(b - b'0') * [100, 10, 1][i];
        }
        Some(QValue(whole + thousandths))
    }

    pub fn thousandths(self) -> u16 {
        self.0
    }
}

impl Contact {
    pub fn parse(s: &str) -> Result<Contact, &'static str> {
        let t = s.trim();
        if let Some(rest) = t.strip_prefix('*') {
            let rest = rest.trim_start();
            let params = match rest {
                "" => Params::default(),
                r => Params::parse_header(r.strip_prefix(';').ok_or("junk after *")?)?,
            };
            return Ok(Contact::Wildcard(params));
        }
        NameAddr::parse(t).map(Contact::Address)
    }

    fn params(&self) -> &Params {
        match self {
            Contact::Wildcard(p) => p,
            Contact::Address(a) => &a.params,
        }
    }

    /// The `expires` parameter, if present and numeric.
    pub fn expires(&self) -> Option<Result<u32, &'static str>> {
        self.params().get("expires").map(|v| {
            v.and_then(|v| v.parse().ok())
                .ok_or("bad expires parameter")
        })
    }

    /// The `q` parameter, if present.
    pub fn q(&self) -> Option<Result<QValue, &'static str>> {
        self.params()
            .get("q")
            .map(|v| v.and_then(QValue::parse).ok_or("bad q parameter"))
    }
}
