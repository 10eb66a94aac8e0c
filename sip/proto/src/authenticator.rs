//! Inbound digest authentication for trunk mode (RFC 3261 §22.1, §22.4;
//! RFC 7616; RFC 8760): out-of-dialog requests from sources outside the
//! allow-list are challenged with 401, their Authorization is verified, and
//! wrong credentials get 403.
//!
//! Nonces come from the endpoint's seeded RNG and live in a bounded table
//! with their issue time; an expired or unknown nonce with otherwise right
//! credentials is re-challenged with `stale=true` (RFC 7616 §3.3), as is a
//! replayed nonce count.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_message::{Header, Request, Uri};

use crate::allow_list::{is_allowed, Cidr};
use crate::digest::{ha1, Algorithm, Authorization};

/// Who may send us requests, and how they prove it.
#[derive(Debug, Clone)]
pub struct InboundAuth {
    /// The realm in our challenges (RFC 3261 §22.1: names the protection space).
    pub realm: String,
    /// Username → secret.
    pub users: HashMap<String, Secret>,
    /// Sources never challenged (the trunk's signalling addresses).
    pub allow: Vec<Cidr>,
    /// Algorithms offered, most preferred first (RFC 8760 §2.4). Keep only
    /// `Md5` when the secrets are MD5 HA1s.
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce is accepted before `stale=true`.
    pub nonce_lifetime: Duration,
}

impl InboundAuth {
    /// SHA-256 and MD5 offered, nonces valid five minutes, nobody allow-listed.
    pub fn new(realm: impl Into<String>) -> InboundAuth {
        InboundAuth {
            realm: realm.into(),
            users: HashMap::new(),
            allow: Vec::new(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            nonce_lifetime: Duration::from_secs(300),
        }
    }
}

/// A user's secret: the password, or H(username:realm:password) per
/// algorithm so the password need not be stored (RFC 7616 §3.4.2).
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    Ha1 {
        md5: Option<String>,
        sha256: Option<String>,
    },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Password(<redacted>)"),
            Secret::Ha1 { .. } => f.write_str("Ha1(<redacted>)"),
        }
    }
}

impl Secret {
    fn ha1(&self, algorithm: Algorithm, username: &str, realm: &str) -> Option<String> {
        match (self, algorithm) {
            (Secret::Password(p), a) => Some(ha1(a, username, realm, p)),
            (Secret::Ha1 { md5, .. }, Algorithm::Md5) => md5.clone(),
            (Secret::Ha1 { sha256, .. }, Algorithm::Sha256) => sha256.clone(),
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Proceed; `user` is who authenticated (`None`: allow-listed).
    Accept { user: Option<String> },
    /// 401 with fresh challenges.
    Challenge { stale: bool },
    /// 403: the credentials are wrong.
    Forbidden,
}

/// At most this many outstanding nonces; the oldest go first.
const MAX_NONCES: usize = 4096;

struct Nonce {
    issued: Instant,
    /// Highest nonce count seen (RFC 7616 §3.4: must increase).
    last_nc: u32,
}

/// The server side of digest: the nonce table.
#[derive(Default)]
pub(crate) struct Nonces {
    table: HashMap<String, Nonce>,
}

impl Nonces {
    /// Decides on `request` from `source` (RFC 3261 §22.1).
    pub(crate) fn check(
        &mut self,
        config: &InboundAuth,
        now: Instant,
        request: &Request,
        source: SocketAddr,
    ) -> Verdict {
        if is_allowed(&config.allow, source) {
            return Verdict::Accept { user: None };
        }
        let answer = request
            .headers
            .get_all("Authorization")
            .filter_map(|h| h.value_str())
            .filter_map(|v| Authorization::parse(v).ok())
            .find(|a| a.realm == config.realm);
        let Some(answer) = answer else {
            return Verdict::Challenge { stale: false };
        };
        if !config.algorithms.contains(&answer.algorithm) {
            return Verdict::Challenge { stale: false };
        }
        let Some(secret) = config.users.get(&answer.username) else {
            return Verdict::Forbidden;
        };
        let Some(ha1) = secret.ha1(answer.algorithm, &answer.username, &config.realm) else {
            return Verdict::Challenge { stale: false };
        };
        // RFC 7616 §3.4: the digest covers the uri parameter, which must
        // name the Request-URI, or a captured answer could be replayed
        // against another target.
        let same_uri = Uri::parse(&answer.uri).is_ok_and(|u| u == request.uri);
        if !same_uri || !answer.verify(request.method.as_str(), &ha1) {
            return Verdict::Forbidden;
        }
        let fresh = match self.table.get_mut(&answer.nonce) {
            Some(n) if now.saturating_duration_since(n.issued) <= config.nonce_lifetime => {
                match &answer.qop_auth {
                    Some((nc, _)) => match u32::from_str_radix(nc, 16) {
                        Ok(nc) if nc > n.last_nc => {
                            n.last_nc = nc;
                            true
                        }
                        _ => false, // a replayed or garbled count
                    },
                    None => true,
                }
            }
            _ => false,
        };
        if !fresh {
            return Verdict::Challenge { stale: true };
        }
        Verdict::Accept {
            user: Some(answer.username),
        }
    }

    /// WWW-Authenticate headers for a 401, one per offered algorithm, with
    /// a nonce made of `random` hex.
    pub(crate) fn challenges(
        &mut self,
        config: &InboundAuth,
        now: Instant,
        random: String,
        stale: bool,
    ) -> Vec<Header> {
        if self.table.len() >= MAX_NONCES {
            let lifetime = config.nonce_lifetime;
            self.table
                .retain(|_, n| now.saturating_duration_since(n.issued) <= lifetime);
            if self.table.len() >= MAX_NONCES {
                if let Some(oldest) = self
                    .table
                    .iter()
                    .min_by_key(|(_, n)| n.issued)
                    .map(|(k, _)| k.clone())
                {
                    self.table.remove(&oldest);
                }
            }
        }
        self.table.insert(
            random.clone(),
            Nonce {
                issued: now,
                last_nc: 0,
            },
        );
        let stale = if stale { ", stale=true" } else { "" };
        config
            .algorithms
            .iter()
            .map(|a| {
                Header::new(
                    "WWW-Authenticate",
                    format!(
                        "Digest realm=\"{}\", nonce=\"{random}\", qop=\"auth\", algorithm={}{stale}",
                        config.realm,
                        a.as_str()
                    ),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Challenge, Credentials};
    use sip_message::{Message, Method};

    fn config() -> InboundAuth {
        let mut c = InboundAuth::new("switchboard");
        c.users
            .insert("trunk".into(), Secret::Password("pw".into()));
        c.users.insert(
            "md5only".into(),
            Secret::Ha1 {
                md5: Some(ha1(Algorithm::Md5, "md5only", "switchboard", "pw2")),
                sha256: None,
            },
        );
        c.allow.push("192.0.2.0/24".parse().unwrap());
        c
    }

    fn invite() -> Request {
        let bytes = b"INVITE sip:agent@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:agent@10.0.0.2>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        match Message::parse(bytes).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn answer(header: &Header, request: &Request, user: &str, password: &str, nc: u32) -> Request {
        let challenge = Challenge::parse(header.value_str().unwrap()).unwrap();
        let credentials = Credentials {
            username: user.into(),
            password: password.into(),
        };
        let mut r = request.clone();
        let value = challenge.authorization(
            &credentials,
            Method::Invite.as_str(),
            &r.uri.to_string(),
            nc,
            "abc",
        );
        r.headers.push(Header::new("Authorization", value));
        r
    }

    #[test]
    fn challenge_verify_stale_and_replay() {
        let c = config();
        let mut nonces = Nonces::default();
        let t0 = Instant::now();
        let stranger: SocketAddr = "203.0.113.5:5060".parse().unwrap();
        let request = invite();
        assert_eq!(
            nonces.check(&c, t0, &request, stranger),
            Verdict::Challenge { stale: false }
        );
        let headers = nonces.challenges(&c, t0, "n1".into(), false);
        assert_eq!(headers.len(), 2);
        assert!(headers[0].value_str().unwrap().contains("SHA-256"));
        assert!(headers[1].value_str().unwrap().contains("MD5"));

        let good = answer(&headers[0], &request, "trunk", "pw", 1);
        assert_eq!(
            nonces.check(&c, t0, &good, stranger),
            Verdict::Accept {
                user: Some("trunk".into())
            }
        );
        // The same nonce count again is a replay.
        assert_eq!(
            nonces.check(&c, t0, &good, stranger),
            Verdict::Challenge { stale: true }
        );
        let next = answer(&headers[1], &request, "trunk", "pw", 2);
        assert!(matches!(
            nonces.check(&c, t0, &next, stranger),
            Verdict::Accept { .. }
        ));
        // Past its lifetime the nonce is stale, not the password wrong.
        let later = t0 + Duration::from_secs(301);
        let late = answer(&headers[0], &request, "trunk", "pw", 3);
        assert_eq!(
            nonces.check(&c, later, &late, stranger),
            Verdict::Challenge { stale: true }
        );
        let wrong = answer(&headers[0], &request, "trunk", "nope", 4);
        assert_eq!(nonces.check(&c, t0, &wrong, stranger), Verdict::Forbidden);
        let nobody = answer(&headers[0], &request, "nobody", "pw", 5);
        assert_eq!(nonces.check(&c, t0, &nobody, stranger), Verdict::Forbidden);
        // A captured answer replayed to another Request-URI.
        let mut moved = answer(&headers[0], &request, "trunk", "pw", 6);
        moved.uri = Uri::parse("sip:other@10.0.0.2").unwrap();
        assert_eq!(nonces.check(&c, t0, &moved, stranger), Verdict::Forbidden);
        // Allow-listed sources need nothing.
        assert_eq!(
            nonces.check(&c, t0, &request, "192.0.2.9:5060".parse().unwrap()),
            Verdict::Accept { user: None }
        );
    }

    #[test]
    fn ha1_secrets_verify_their_algorithm_only() {
        let c = config();
        let mut nonces = Nonces::default();
        let t0 = Instant::now();
        let stranger: SocketAddr = "203.0.113.5:5060".parse().unwrap();
        let headers = nonces.challenges(&c, t0, "n2".into(), false);
        let md5 = answer(&headers[1], &invite(), "md5only", "pw2", 1);
        assert!(matches!(
            nonces.check(&c, t0, &md5, stranger),
            Verdict::Accept { .. }
        ));
        let sha = answer(&headers[0], &invite(), "md5only", "pw2", 2);
        assert_eq!(
            nonces.check(&c, t0, &sha, stranger),
            Verdict::Challenge { stale: false }
        );
    }

    #[test]
    fn nonce_table_is_bounded() {
        let c = config();
        let mut nonces = Nonces::default();
        let t0 = Instant::now();
        for i in 0..MAX_NONCES + 10 {
            nonces.challenges(&c, t0, format!("n{i}"), false);
        }
        assert!(nonces.table.len() <= MAX_NONCES);
    }
}
