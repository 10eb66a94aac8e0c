//! HTTP Digest authentication for SIP (RFC 3261 §22.4, RFC 2617, RFC 7616,
//! RFC 8760): parsing a challenge and computing the response.
//!
//! Only `qop=auth` (or no qop, RFC 2069 style) is supported; `auth-int`
//! and the `-sess` algorithms are refused, so the UA reports the 401/407.

use std::fmt;

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// A username and password answering a trunk's challenges (see [`crate::Trunk`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The hash algorithm (RFC 7616 §3.3; RFC 8760 for SIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub(crate) fn parse(s: &str) -> Option<Algorithm> {
        if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hex(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 => Md5::digest(data.as_bytes()).to_vec(),
            Algorithm::Sha256 => Sha256::digest(data.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The server offered `qop=auth`.
    pub qop_auth: bool,
    /// RFC 7616 §3.3: the previous credentials were right but the nonce
    /// was stale; answering again with the new nonce is expected.
    pub stale: bool,
}

impl Challenge {
    /// Parses one challenge. Refuses schemes other than Digest, unknown
    /// algorithms, and a qop list without `auth`.
    pub fn parse(value: &str) -> Result<Challenge, &'static str> {
        let (params, algorithm) = digest_params(value, "not a Digest challenge")?;
        let get = |name: &str| param(&params, name);
        let qop_auth = match get("qop") {
            None => false,
            Some(q) if q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")) => true,
            Some(_) => return Err("qop without auth"),
        };
        Ok(Challenge {
            realm: get("realm").ok_or("no realm")?,
            nonce: get("nonce").ok_or("no nonce")?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization` / `Proxy-Authorization` value answering this
    /// challenge for `method` and `uri` (RFC 7616 §3.4). `nc` and
    /// `cnonce` are used only when the challenge offered qop=auth.
    pub fn authorization(
        &self,
        credentials: &Credentials,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let qop = self.qop_auth.then(|| (format!("{nc:08x}"), cnonce));
        let response = response(
            self.algorithm,
            credentials,
            &self.realm,
            &self.nonce,
            method,
            uri,
            qop.as_ref().map(|(nc, c)| (nc.as_str(), *c)),
        );
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            credentials.username,
            self.realm,
            self.nonce,
            self.algorithm.as_str()
        );
        if let Some((nc, cnonce)) = qop {
            out.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(opaque) = &self.opaque {
            out.push_str(&format!(", opaque=\"{opaque}\""));
        }
        out
    }
}

/// The credentials in an `Authorization` / `Proxy-Authorization` header
/// (RFC 7616 §3.4), as a server reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    /// `(nc, cnonce)` when the client used `qop=auth`.
    pub qop_auth: Option<(String, String)>,
    pub opaque: Option<String>,
}

impl Authorization {
    /// Parses one Digest credentials value; refuses other schemes,
    /// unknown algorithms and a qop other than `auth`.
    pub fn parse(value: &str) -> Result<Authorization, &'static str> {
        let (params, algorithm) = digest_params(value, "not Digest credentials")?;
        let get = |name: &str| param(&params, name);
        let qop_auth = match get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => Some((
                get("nc").ok_or("qop without nc")?,
                get("cnonce").ok_or("qop without cnonce")?,
            )),
            Some(_) => return Err("qop other than auth"),
        };
        Ok(Authorization {
            username: get("username").ok_or("no username")?,
            realm: get("realm").ok_or("no realm")?,
            nonce: get("nonce").ok_or("no nonce")?,
            uri: get("uri").ok_or("no uri")?,
            response: get("response").ok_or("no response")?,
            algorithm,
            qop_auth,
            opaque: get("opaque"),
        })
    }

    /// Whether `response` is right for `method` given the user's H(A1)
    /// (`ha1`, hex, of this algorithm). Compares in constant time.
    pub fn verify(&self, method: &str, ha1: &str) -> bool {
        let ha2 = self.algorithm.hex(&format!("{method}:{}", self.uri));
        let nonce = &self.nonce;
        let expected = match &self.qop_auth {
            Some((nc, cnonce)) => self
                .algorithm
                .hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
            None => self.algorithm.hex(&format!("{ha1}:{nonce}:{ha2}")),
        };
        let given = self.response.to_ascii_lowercase();
        expected.len() == given.len()
            && expected
                .bytes()
                .zip(given.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// H(A1) = H(username:realm:password) (RFC 7616 §3.4.2), what a server
/// may store instead of the password.
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hex(&format!("{username}:{realm}:{password}"))
}

/// The request-digest (RFC 2617 §3.2.2.1, RFC 7616 §3.4.1):
/// `H(H(A1):nonce:nc:cnonce:qop:H(A2))` with qop=auth, else
/// `H(H(A1):nonce:H(A2))`; `A1 = user:realm:pass`, `A2 = method:uri`.
pub fn response(
    algorithm: Algorithm,
    credentials: &Credentials,
    realm: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop_auth: Option<(&str, &str)>,
) -> String {
    let ha1 = ha1(
        algorithm,
        &credentials.username,
        realm,
        &credentials.password,
    );
    let ha2 = algorithm.hex(&format!("{method}:{uri}"));
    match qop_auth {
        Some((nc, cnonce)) => algorithm.hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => algorithm.hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The auth-params of a `Digest …` header value, and its algorithm (MD5 when absent, RFC 7616
/// §3.3). `not_digest` is the error for another scheme.
fn digest_params(
    value: &str,
    not_digest: &'static str,
) -> Result<(AuthParams, Algorithm), &'static str> {
    let (scheme, rest) = value
        .trim()
        .split_once([' ', '\t'])
        .ok_or("no auth-params")?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(not_digest);
    }
    let params = auth_params(rest)?;
    let algorithm = match param(&params, "algorithm") {
        None => Algorithm::Md5,
        Some(a) => Algorithm::parse(&a).ok_or("unsupported algorithm")?,
    };
    Ok((params, algorithm))
}

/// A parameter's value; names are case-insensitive.
fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// A challenge's or credential's auth-params, in the order written.
type AuthParams = Vec<(String, String)>;

/// `name=value` pairs separated by commas; values are tokens or quoted
/// strings (quotes removed, quoted-pairs resolved).
pub(crate) fn auth_params(s: &str) -> Result<AuthParams, &'static str> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("auth-param without =")?;
        let name = rest[..eq].trim().trim_start_matches(',').trim().to_owned();
        if name.is_empty() {
            return Err("empty auth-param name");
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            v.push(e);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end = end.ok_or("unterminated quoted auth-param")?;
            value = v;
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        out.push((name, value));
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err("junk after auth-param");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mufasa() -> Credentials {
        Credentials {
            username: "Mufasa".into(),
            password: "Circle Of Life".into(),
        }
    }

    #[test]
    fn rfc2617_section_3_5_vector() {
        let r = response(
            Algorithm::Md5,
            &mufasa(),
            "testrealm@host.com",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "GET",
            "/dir/index.html",
            Some(("00000001", "0a4f113b")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_section_3_9_1_vectors() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let qop = Some(("00000001", cnonce));
        let realm = "http-auth@example.org";
        let uri = "/dir/index.html";
        // RFC 7616 spells the password with a lower-case "of".
        let mufasa = Credentials {
            username: "Mufasa".into(),
            password: "Circle of Life".into(),
        };
        assert_eq!(
            response(Algorithm::Md5, &mufasa, realm, nonce, "GET", uri, qop),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        assert_eq!(
            response(Algorithm::Sha256, &mufasa, realm, nonce, "GET", uri, qop),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn authorization_round_trip_verifies() {
        let challenge = Challenge::parse(
            "Digest realm=\"pbx\", nonce=\"abc\", qop=\"auth\", algorithm=SHA-256, opaque=\"o\"",
        )
        .unwrap();
        let value = challenge.authorization(&mufasa(), "REGISTER", "sip:pbx", 1, "c0ffee");
        let auth = Authorization::parse(&value).unwrap();
        assert_eq!(auth.username, "Mufasa");
        assert_eq!(auth.opaque.as_deref(), Some("o"));
        let right = ha1(Algorithm::Sha256, "Mufasa", "pbx", "Circle Of Life");
        let wrong = ha1(Algorithm::Sha256, "Mufasa", "pbx", "Circle of Life");
        assert!(auth.verify("REGISTER", &right));
        assert!(!auth.verify("INVITE", &right));
        assert!(!auth.verify("REGISTER", &wrong));
        assert!(Authorization::parse("Basic dXNlcjpwYXNz").is_err());
        assert!(Authorization::parse("Digest username=\"u\", qop=auth-int").is_err());
    }

    #[test]
    fn parses_challenges() {
        let c = Challenge::parse(
            "Digest realm=\"atlanta.com\", domain=\"sip:ss1.carrier.com\", qop=\"auth,auth-int\", nonce=\"f84f1cec41e6cbe5aea9c8e88d359\", opaque=\"\", stale=FALSE, algorithm=SHA-256",
        )
        .unwrap();
        assert_eq!(c.realm, "atlanta.com");
        assert_eq!(c.nonce, "f84f1cec41e6cbe5aea9c8e88d359");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert!(c.qop_auth);
        assert_eq!(c.opaque.as_deref(), Some(""));
        assert!(Challenge::parse("Basic realm=\"x\"").is_err());
        assert!(Challenge::parse("Digest realm=\"x\", nonce=\"n\", algorithm=MD5-sess").is_err());
        assert!(Challenge::parse("Digest realm=\"x").is_err());
        assert!(
            Challenge::parse("Digest realm=\"x\", nonce=\"n\", stale=TRUE")
                .unwrap()
                .stale
        );
    }
}
