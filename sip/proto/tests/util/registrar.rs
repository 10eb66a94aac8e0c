//! A minimal registrar (RFC 3261 §10.3) for the REGISTER client tests: it
//! challenges with digest (SHA-256 and MD5 offered, RFC 8760), enforces a
//! Min-Expires (423), caps the granted lifetime, and can be told to answer
//! the next requests with a forced status (503 + Retry-After). One endpoint
//! and the registrar share one virtual clock; nothing sleeps.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_message::{Header, Message, Request, Response};
use sip_proto::digest::{ha1, Algorithm, Authorization};
use sip_proto::{Config, Endpoint, Event, TransportKind};

pub const UA: &str = "10.0.0.1:5060";
pub const REGISTRAR: &str = "10.0.0.5:5060";

pub struct Registrar {
    pub addr: SocketAddr,
    pub realm: String,
    pub username: String,
    pub password: String,
    /// Challenge every REGISTER without valid credentials.
    pub challenge: bool,
    /// Granted lifetimes are capped here.
    pub max_expires: u32,
    /// Shorter requests get 423 (§10.3 step 7).
    pub min_expires: u32,
    /// Statuses (and Retry-After) to answer the next requests with.
    pub forced: VecDeque<(u16, Option<u32>)>,
    /// Drop every request (the registrar is down).
    pub silent: bool,
    /// Every REGISTER received, with its arrival time.
    pub requests: Vec<(Instant, Request)>,
    /// The bound contact and when the binding lapses.
    pub binding: Option<(String, Instant)>,
    /// Times the binding lapsed before a refresh arrived.
    pub lapses: usize,
    nonces: u64,
}

impl Registrar {
    pub fn new() -> Registrar {
        Registrar {
            addr: REGISTRAR.parse().expect("address"),
            realm: "pbx.example.com".into(),
            username: "201".into(),
            password: "s3cret".into(),
            challenge: true,
            max_expires: 3600,
            min_expires: 60,
            forced: VecDeque::new(),
            silent: false,
            requests: Vec::new(),
            binding: None,
            lapses: 0,
            nonces: 0,
        }
    }

    /// The response to one datagram, if any.
    pub fn handle(&mut self, now: Instant, bytes: &[u8]) -> Option<Response> {
        let Ok(Message::Request(request)) = Message::parse(bytes) else {
            return None;
        };
        if self.silent {
            return None;
        }
        if let Some((_, until)) = &self.binding {
            if *until < now {
                self.lapses += 1;
                self.binding = None;
            }
        }
        self.requests.push((now, request.clone()));
        let to_tag = sip_message::Tag::new("reg1");
        let respond = |status: u16, reason: &str| request.response(status, reason, to_tag.as_ref());
        if let Some((status, retry_after)) = self.forced.pop_front() {
            let mut r = respond(status, "Forced");
            if let Some(s) = retry_after {
                r.headers.push(Header::new("Retry-After", s.to_string()));
            }
            return Some(r);
        }
        if self.challenge {
            let credentials = request
                .headers
                .get("Authorization")
                .and_then(|h| h.value_str())
                .and_then(|v| Authorization::parse(v).ok());
            match credentials {
                None => {
                    self.nonces += 1;
                    let mut r = respond(401, "Unauthorized");
                    for algorithm in ["SHA-256", "MD5"] {
                        r.headers.push(Header::new(
                            "WWW-Authenticate",
                            format!(
                                "Digest realm=\"{}\", nonce=\"n{}\", qop=\"auth\", algorithm={algorithm}",
                                self.realm, self.nonces
                            ),
                        ));
                    }
                    return Some(r);
                }
                Some(auth) => {
                    let secret = ha1(auth.algorithm, &self.username, &self.realm, &self.password);
                    let ok = auth.username == self.username
                        && auth.realm == self.realm
                        && auth.uri == request.uri.to_string()
                        && auth.algorithm == Algorithm::Sha256
                        && auth.verify("REGISTER", &secret);
                    if !ok {
                        return Some(respond(403, "Forbidden"));
                    }
                }
            }
        }
        let contact = request.headers.contacts().ok()?.into_iter().next()?;
        let sip_message::Contact::Address(address) = &contact else {
            return Some(respond(400, "Wildcard not supported here"));
        };
        let asked = contact
            .expires()
            .and_then(Result::ok)
            .or_else(|| request.headers.expires().ok().flatten())
            .unwrap_or(3600);
        if asked == 0 {
            self.binding = None;
            return Some(respond(200, "OK"));
        }
        if asked < self.min_expires {
            let mut r = respond(423, "Interval Too Brief");
            r.headers
                .push(Header::new("Min-Expires", self.min_expires.to_string()));
            return Some(r);
        }
        let granted = asked.min(self.max_expires);
        let uri = address.uri.to_string();
        self.binding = Some((uri.clone(), now + Duration::from_secs(u64::from(granted))));
        let mut r = respond(200, "OK");
        // Registrars list every binding of the AOR; one other for realism.
        r.headers.push(Header::new(
            "Contact",
            format!("<sip:201@192.0.2.99:5060>;expires=77, <{uri}>;expires={granted}"),
        ));
        Some(r)
    }

    /// REGISTERs received so far whose Authorization is present.
    pub fn authorized_count(&self) -> usize {
        self.requests
            .iter()
            .filter(|(_, r)| r.headers.get("Authorization").is_some())
            .count()
    }
}

/// One endpoint (the extension) and the registrar, with a fixed one-way delay.
pub struct RegistrarPair {
    pub ua: Endpoint,
    pub registrar: Registrar,
    pub now: Instant,
    pub start: Instant,
    pub events: Vec<(Instant, Event)>,
    pub delay: Duration,
    ua_addr: SocketAddr,
    /// (due, to_registrar, bytes)
    queue: Vec<(Instant, bool, Vec<u8>)>,
}

pub fn ua_config() -> Config {
    let mut config = Config::new(UA.parse().expect("address"));
    config.contact_user = "201".into();
    config
}

/// The PBX as a trunk: extension 201's credentials, reached where the registrar URI routes.
pub fn pbx(password: &str) -> sip_proto::Trunk {
    sip_proto::Trunk::with_credentials(sip_proto::Credentials::new("201", password))
}

impl RegistrarPair {
    pub fn new(config: Config, seed: u64) -> RegistrarPair {
        let now = Instant::now();
        RegistrarPair {
            ua_addr: config.local_addr,
            ua: Endpoint::new(config, seed),
            registrar: Registrar::new(),
            now,
            start: now,
            events: Vec::new(),
            delay: Duration::from_millis(10),
            queue: Vec::new(),
        }
    }

    fn flush(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.ua.poll_transmit() {
                assert_eq!(t.destination, self.registrar.addr, "sent to a stranger");
                self.queue.push((self.now + self.delay, true, t.bytes));
                moved = true;
            }
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.queue)
                .into_iter()
                .partition(|(t, _, _)| *t <= now);
            self.queue = later;
            for (_, to_registrar, bytes) in due {
                moved = true;
                if to_registrar {
                    if let Some(response) = self.registrar.handle(now, &bytes) {
                        let bytes = Message::Response(response).to_bytes();
                        self.queue.push((now + self.delay, false, bytes));
                    }
                } else {
                    let from = self.registrar.addr;
                    let result = self
                        .ua
                        .handle_datagram(now, TransportKind::Udp, from, &bytes);
                    assert!(result.is_ok(), "{result:?}");
                }
            }
            while let Some(e) = self.ua.poll_event() {
                self.events.push((now, e));
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    pub fn drive_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        loop {
            self.flush();
            let next = [
                self.ua.poll_timeout(),
                self.queue.iter().map(|(t, _, _)| *t).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    if self.ua.poll_timeout().is_some_and(|t| t <= now) {
                        self.ua.handle_timeout(now);
                    }
                }
                _ => {
                    self.now = end;
                    self.flush();
                    return;
                }
            }
        }
    }

    pub fn ua_addr(&self) -> SocketAddr {
        self.ua_addr
    }
}
