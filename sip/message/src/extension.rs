//! Typed values of extension header fields the user agent reads: RFC 4028
//! session timers (Session-Expires, Min-SE), RFC 3891 Replaces, and the
//! option tags of Supported/Require (RFC 3261 §20.37, §20.32).

use std::fmt;

use crate::params::Params;
use crate::scalar::{parse_decimal, CallId};
use crate::syntax::is_token;

/// Which side of the transaction refreshes the session (RFC 4028 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// Session-Expires (RFC 4028 §4): `delta-seconds *(;se-params)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    /// The session interval in seconds.
    pub delta: u32,
    /// `None` when the `refresher` parameter is absent (the UAS chooses, §9).
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    pub fn parse(s: &str) -> Result<SessionExpires, &'static str> {
        let (delta, params) = split_delta(s)?;
        let refresher = match params.get("refresher") {
            None => None,
            Some(Some(r)) if r.eq_ignore_ascii_case("uac") => Some(Refresher::Uac),
            Some(Some(r)) if r.eq_ignore_ascii_case("uas") => Some(Refresher::Uas),
            Some(_) => return Err("refresher is neither uac nor uas"),
        };
        Ok(SessionExpires { delta, refresher })
    }
}

impl fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta)?;
        if let Some(r) = self.refresher {
            write!(f, ";refresher={}", r.as_str())?;
        }
        Ok(())
    }
}

/// Min-SE (RFC 4028 §5): `delta-seconds *(;generic-param)`.
pub fn parse_min_se(s: &str) -> Result<u32, &'static str> {
    split_delta(s).map(|(delta, _)| delta)
}

fn split_delta(s: &str) -> Result<(u32, Params), &'static str> {
    let s = s.trim();
    let (delta, rest) = match s.find(';') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let delta = parse_decimal(delta.trim())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or("not delta-seconds below 2**32")?;
    let params = match rest {
        Some(r) => Params::parse_header(r)?,
        None => Params::default(),
    };
    Ok((delta, params))
}

/// Replaces (RFC 3891 §6.1): the dialog an INVITE takes the place of:
/// `callid *(;to-tag=…|;from-tag=…|;early-only)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: CallId,
    /// The To tag of the replaced dialog as its sender saw it: the
    /// recipient's local tag.
    pub to_tag: String,
    /// The From tag as its sender saw it: the recipient's remote tag.
    pub from_tag: String,
    pub early_only: bool,
}

impl Replaces {
    pub fn parse(s: &str) -> Result<Replaces, &'static str> {
        let s = s.trim();
        let (call_id, rest) = s.split_once(';').ok_or("no tags")?;
        let call_id = CallId::parse(call_id)?;
        let params = Params::parse_header(rest)?;
        let tag = |name: &str| match params.get(name) {
            Some(Some(t)) if is_token(t) => Ok(t.to_owned()),
            _ => Err("to-tag and from-tag are required tokens"),
        };
        Ok(Replaces {
            call_id,
            to_tag: tag("to-tag")?,
            from_tag: tag("from-tag")?,
            early_only: params.contains("early-only"),
        })
    }
}

impl fmt::Display for Replaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};to-tag={};from-tag={}",
            self.call_id, self.to_tag, self.from_tag
        )?;
        if self.early_only {
            f.write_str(";early-only")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_expires_rfc4028_examples() {
        assert_eq!(
            SessionExpires::parse("4000;refresher=uac"),
            Ok(SessionExpires {
                delta: 4000,
                refresher: Some(Refresher::Uac)
            })
        );
        assert_eq!(
            SessionExpires::parse(" 1800 "),
            Ok(SessionExpires {
                delta: 1800,
                refresher: None
            })
        );
        assert!(SessionExpires::parse("90;refresher=me").is_err());
        assert!(SessionExpires::parse("-1").is_err());
        assert!(SessionExpires::parse("99999999999").is_err());
        assert_eq!(parse_min_se("90;lr"), Ok(90));
        assert_eq!(
            SessionExpires::parse("90;refresher=UAS").map(|s| s.to_string()),
            Ok("90;refresher=uas".to_owned())
        );
    }

    #[test]
    fn replaces_rfc3891_example() {
        let r = Replaces::parse("425928@bobster.example.org;to-tag=7743;from-tag=6472").unwrap();
        assert_eq!(r.call_id.as_str(), "425928@bobster.example.org");
        assert_eq!((r.to_tag.as_str(), r.from_tag.as_str()), ("7743", "6472"));
        assert!(!r.early_only);
        assert_eq!(
            r.to_string(),
            "425928@bobster.example.org;to-tag=7743;from-tag=6472"
        );
        assert!(Replaces::parse("abc;to-tag=1").is_err());
        assert!(Replaces::parse("abc").is_err());
        assert!(Replaces::parse("a b;to-tag=1;from-tag=2").is_err());
        assert!(
            Replaces::parse("x;from-tag=2;to-tag=1;early-only")
                .unwrap()
                .early_only
        );
    }
}
