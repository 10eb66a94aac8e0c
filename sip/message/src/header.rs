//! Header fields as received: name and unfolded value, in order.
//!
//! Nothing here interprets a value; the typed views live in `headers/`
//! and are computed on demand, so an unknown or odd header costs nothing
//! and is forwarded byte for byte.

use crate::syntax::split_top_level;

/// One header field. `name` is kept as received (case and compact form
/// preserved); `value` is the unfolded value with surrounding whitespace
/// trimmed (RFC 3261 §7.3.1: a fold may be replaced by a single SP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<Vec<u8>>) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The canonical long-form name (`v` → `Via`), or the name as received
    /// for headers this crate does not know.
    pub fn canonical_name(&self) -> &str {
        canonical_name(&self.name)
    }

    /// The value as UTF-8, if it is.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// Compact forms (RFC 3261 §7.3.3, §20; RFC 3265, 3515, 3892, 3841, 4028,
/// 4474) and the long forms they stand for.
const COMPACT: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", "Referred-By"),
    ("c", "Content-Type"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("f", "From"),
    ("i", "Call-ID"),
    ("j", "Reject-Contact"),
    ("k", "Supported"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("n", "Identity-Info"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("s", "Subject"),
    ("t", "To"),
    ("u", "Allow-Events"),
    ("v", "Via"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
];

/// Long names whose canonical spelling we return, so lookups by any case
/// agree with what `canonical_name` reports.
const KNOWN: &[&str] = &[
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Authorization",
    "Call-Info",
    "Date",
    "Error-Info",
    "Expires",
    "In-Reply-To",
    "Max-Forwards",
    "Min-Expires",
    "Min-SE",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "Record-Route",
    "Require",
    "Retry-After",
    "Route",
    "Unsupported",
    "Warning",
    "WWW-Authenticate",
    "CSeq",
    "Path",
    "Service-Route",
    "Replaces",
];

/// Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1), so
/// several rows and one row with commas mean the same. Authorization,
/// WWW-Authenticate, Date and the like contain commas inherently and are
/// never split.
const LIST_HEADERS: &[&str] = &[
    "Via",
    "Contact",
    "Route",
    "Record-Route",
    "Path",
    "Service-Route",
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Allow",
    "Supported",
    "Require",
    "Proxy-Require",
    "Unsupported",
    "Content-Encoding",
    "Alert-Info",
    "Call-Info",
    "Error-Info",
    "In-Reply-To",
    "Warning",
    "Allow-Events",
    "P-Asserted-Identity",
];

pub(crate) fn canonical_name(name: &str) -> &str {
    if name.len() == 1 {
        if let Some((_, long)) = COMPACT.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
            return long;
        }
    }
    if let Some((_, long)) = COMPACT.iter().find(|(_, l)| l.eq_ignore_ascii_case(name)) {
        return long;
    }
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or(name)
}

/// Whether `name` (any form) is a comma-separated list header.
pub fn is_list_header(name: &str) -> bool {
    let canonical = canonical_name(name);
    LIST_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(canonical))
}

/// The header fields of a message, in the order received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<Header>,
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.fields.iter()
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Appends a field.
    pub fn push(&mut self, header: Header) {
        self.fields.push(header);
    }

    /// Every field named `name`, matched case-insensitively and across
    /// compact and long forms.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
        let wanted = canonical_name(name);
        self.fields
            .iter()
            .filter(move |h| h.canonical_name().eq_ignore_ascii_case(wanted))
    }

    /// The first field named `name`.
    pub fn get(&self, name: &str) -> Option<&Header> {
        let wanted = canonical_name(name);
        self.fields
            .iter()
            .find(|h| h.canonical_name().eq_ignore_ascii_case(wanted))
    }

    /// The values of `name`, list headers split on top-level commas (not
    /// inside quotes or `<...>`), each trimmed. Non-UTF-8 values are skipped:
    /// a typed accessor reports them.
    pub fn values<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        let split = is_list_header(name);
        let mut out = Vec::new();
        for header in self.get_all(name) {
            let Some(value) = header.value_str() else {
                continue;
            };
            if split {
                out.extend(split_top_level(value, b',').into_iter().map(str::trim));
            } else {
                out.push(value.trim());
            }
        }
        out
    }

    /// Removes every field named `name`.
    pub fn remove_all(&mut self, name: &str) {
        let wanted = canonical_name(name).to_owned();
        self.fields
            .retain(|h| !h.canonical_name().eq_ignore_ascii_case(&wanted));
    }

    /// Replaces the value of every field named `name` by one field with
    /// `value`, placed where the first one was (or appended).
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        let wanted = canonical_name(name).to_owned();
        let position = self
            .fields
            .iter()
            .position(|h| h.canonical_name().eq_ignore_ascii_case(&wanted));
        self.remove_all(name);
        let header = Header::new(name, value);
        match position {
            Some(p) => self.fields.insert(p.min(self.fields.len()), header),
            None => self.fields.push(header),
        }
    }
}
