//! `;name[=value]` parameter lists, for URIs and header fields.

use std::fmt;

use crate::syntax::{is_token, quoted_string, split_top_level};

/// One parameter: name as received, value as received (quotes kept), or
/// `None` for a valueless one like `lr` or `rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
}

/// An ordered parameter list. Names compare case-insensitively
/// (RFC 3261 §7.3.1, §19.1.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<Param>);

impl Params {
    /// The parameter named `name`: `Some(None)` if present without value.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_deref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.0.iter()
    }

    pub fn push(&mut self, name: impl Into<String>, value: Option<String>) {
        self.0.push(Param {
            name: name.into(),
            value,
        });
    }

    /// URI parameters (after the first `;`): no whitespace, escapes kept.
    pub(crate) fn parse_uri(s: &str) -> Result<Params, &'static str> {
        let mut out = Vec::new();
        for part in s.split(';') {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (part, None),
            };
            if name.is_empty() {
                return Err("empty URI parameter");
            }
            out.push(Param {
                name: name.to_owned(),
                value,
            });
        }
        Ok(Params(out))
    }

    /// Header parameters (after the first `;` of a value): LWS allowed
    /// around `;` and `=` (RFC 3261 §25.1 SEMI, EQUAL), values are token,
    /// host or quoted-string.
    pub(crate) fn parse_header(s: &str) -> Result<Params, &'static str> {
        let mut out = Vec::new();
        for part in split_top_level(s, b';') {
            let part = part.trim();
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim_end(), Some(v.trim_start())),
                None => (part, None),
            };
            if name.is_empty() {
                return Err("empty parameter");
            }
            if !is_token(name) {
                return Err("parameter name is not a token");
            }
            let value = match value {
                None => None,
                Some(v) if v.starts_with('"') => match quoted_string(v) {
                    Some((_, "")) => Some(v.to_owned()),
                    _ => return Err("bad quoted parameter value"),
                },
                Some(v) => {
                    let ok = !v.is_empty()
                        && v.bytes()
                            .all(|b| crate::syntax::is_token_char(b) || b"[]:".contains(&b));
                    if !ok {
                        return Err("bad parameter value");
                    }
                    Some(v.to_owned())
                }
            };
            out.push(Param {
                name: name.to_owned(),
                value,
            });
        }
        Ok(Params(out))
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            write!(f, ";{}", p.name)?;
            if let Some(v) = &p.value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}
