//! Single-valued header fields: Call-ID, CSeq, Max-Forwards, Content-Length,
//! Expires, Content-Type, Date.

use std::fmt;

use crate::method::Method;
use crate::params::Params;
use crate::syntax::{is_token, is_word_char};

/// A Call-ID (RFC 3261 §20.8): `word ["@" word]`, compared byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallId(String);

impl CallId {
    pub fn parse(s: &str) -> Result<CallId, &'static str> {
        let s = s.trim();
        let valid_word = |w: &str| !w.is_empty() && w.bytes().all(is_word_char);
        let ok = match s.split_once('@') {
            Some((a, b)) => valid_word(a) && valid_word(b),
            None => valid_word(s),
        };
        if ok {
            Ok(CallId(s.to_owned()))
        } else {
            Err("not word[@word]")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// CSeq (RFC 3261 §20.16): sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Below 2**31 (RFC 3261 §8.1.1.5).
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(s: &str) -> Result<CSeq, &'static str> {
        let mut parts = s.split_ascii_whitespace();
        let (Some(num), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err("not `number method`");
        };
        let seq = parse_decimal(num).ok_or("sequence number is not a number")?;
        if seq >= 1 << 31 {
            return Err("sequence number not below 2**31");
        }
        let method = Method::parse(method).ok_or("method is not a token")?;
        Ok(CSeq {
            seq: seq as u32,
            method,
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Parses `1*DIGIT` (leading zeros allowed, RFC 4475 §3.1.1.1) into a u64,
/// `None` on anything else or on overflow.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Max-Forwards (RFC 3261 §20.22): 0 to 255 in practice; we bound it there.
pub fn parse_max_forwards(s: &str) -> Result<u8, &'static str> {
    parse_decimal(s.trim())
        .and_then(|v| u8::try_from(v).ok())
        .ok_or("not a number from 0 to 255")
}

/// Content-Length (RFC 3261 §20.14).
pub fn parse_content_length(s: &str) -> Result<usize, &'static str> {
    parse_decimal(s.trim())
        .and_then(|v| usize::try_from(v).ok())
        .ok_or("not a non-negative number")
}

/// Expires (RFC 3261 §20.19): delta-seconds, at most 2**32-1.
pub fn parse_expires(s: &str) -> Result<u32, &'static str> {
    parse_decimal(s.trim())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or("not delta-seconds below 2**32")
}

/// Content-Type (RFC 3261 §20.15): `type/subtype *(;param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// Lower-cased.
    pub media_type: String,
    /// Lower-cased.
    pub subtype: String,
    pub params: Params,
}

impl ContentType {
    pub fn parse(s: &str) -> Result<ContentType, &'static str> {
        let (mt, params) = match s.split_once(';') {
            Some((m, p)) => (m, Params::parse_header(p)?),
            None => (s, Params::default()),
        };
        let (t, sub) = mt.trim().split_once('/').ok_or("no / in media type")?;
        let (t, sub) = (t.trim(), sub.trim());
        if !is_token(t) || !is_token(sub) {
            return Err("media type is not token/token");
        }
        Ok(ContentType {
            media_type: t.to_ascii_lowercase(),
            subtype: sub.to_ascii_lowercase(),
            params,
        })
    }

    /// `type/subtype`, lower-case.
    pub fn essence(&self) -> String {
        format!("{}/{}", self.media_type, self.subtype)
    }
}

/// Checks a Date value is an RFC 1123 date in GMT (RFC 3261 §20.17 allows
/// no other zone; RFC 4475 §3.1.2.12 sends EST).
pub fn check_date(s: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let [wkday, day, month, year, time, zone] = parts.as_slice() else {
        return Err("not `wkday, DD Mon YYYY HH:MM:SS GMT`");
    };
    let wkday_ok = wkday.len() == 4
        && wkday.ends_with(',')
        && wkday
            .get(..3)
            .is_some_and(|d| ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&d));
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let time_ok = time.len() == 8 && time.split(':').all(|t| digits(t, 2));
    if !(wkday_ok && digits(day, 2) && months.contains(month) && digits(year, 4) && time_ok) {
        return Err("not `wkday, DD Mon YYYY HH:MM:SS GMT`");
    }
    if *zone != "GMT" {
        return Err("time zone is not GMT");
    }
    Ok(())
}
