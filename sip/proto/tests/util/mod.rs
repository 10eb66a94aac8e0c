//! The pair harness (STYLE §3; after quinn's `tests/util.rs` `Pair`): two
//! endpoints, a link that can drop, duplicate and delay datagrams, and one
//! virtual clock. Nothing here sleeps.

#![allow(dead_code)] // reason: each test file uses a different subset

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub mod registrar;

use sip_proto::{Config, Endpoint, Event, Transmit, TransportKind};

pub const A: &str = "10.0.0.1:5060";
pub const B: &str = "10.0.0.2:5060";

/// Which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Decides a datagram's fate: `false` drops it.
pub type Filter = Box<dyn FnMut(Side, &Transmit) -> bool>;

pub struct Link {
    rng: u64,
    /// Probability (0..1) that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra random delay up to this much (reorders datagrams).
    pub jitter: Duration,
    /// Targeted loss, checked before `loss`.
    pub filter: Option<Filter>,
    queue: Vec<(Instant, Side, Transmit)>,
}

impl Link {
    fn random(&mut self) -> f64 {
        // xorshift64*: the harness's own seeded randomness.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn send(&mut self, now: Instant, from: Side, transmit: Transmit) {
        if let Some(filter) = &mut self.filter {
            if !filter(from, &transmit) {
                return;
            }
        }
        if self.random() < self.loss {
            return;
        }
        let copies = if self.random() < self.duplicate { 2 } else { 1 };
        for _ in 0..copies {
            let jitter = self.jitter.mul_f64(self.random());
            self.queue
                .push((now + self.delay + jitter, from, transmit.clone()));
        }
    }

    fn next_delivery(&self) -> Option<Instant> {
        self.queue.iter().map(|(t, _, _)| *t).min()
    }
}

pub struct Pair {
    pub a: Endpoint,
    pub b: Endpoint,
    pub a_addr: SocketAddr,
    pub b_addr: SocketAddr,
    pub now: Instant,
    pub start: Instant,
    pub link: Link,
    pub a_events: Vec<Event>,
    pub b_events: Vec<Event>,
    /// Every datagram put on the link: sender and text.
    pub wire: Vec<(Side, String)>,
}

pub fn config(addr: &str) -> Config {
    let mut config = Config::new(addr.parse().expect("address"));
    config.user_agent = Some("test".into());
    // The tests' UAs act on a REFER (as the transferee); the default refuses it.
    config.accept_refer = true;
    config
}

impl Pair {
    pub fn new(seed: u64) -> Pair {
        Pair::with_configs(config(A), config(B), seed)
    }

    pub fn with_configs(a: Config, b: Config, seed: u64) -> Pair {
        let now = Instant::now();
        Pair {
            a_addr: a.local_addr,
            b_addr: b.local_addr,
            a: Endpoint::new(a, seed),
            b: Endpoint::new(b, seed.wrapping_add(1)),
            now,
            start: now,
            link: Link {
                rng: seed | 1,
                loss: 0.0,
                duplicate: 0.0,
                delay: Duration::from_millis(10),
                jitter: Duration::ZERO,
                filter: None,
                queue: Vec::new(),
            },
            a_events: Vec::new(),
            b_events: Vec::new(),
            wire: Vec::new(),
        }
    }

    pub fn endpoint(&mut self, side: Side) -> &mut Endpoint {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    fn addr(&self, side: Side) -> SocketAddr {
        match side {
            Side::A => self.a_addr,
            Side::B => self.b_addr,
        }
    }

    /// Moves what both endpoints want to send onto the link, delivers what
    /// is due, and collects events, until nothing moves at this instant.
    pub fn flush(&mut self) {
        loop {
            let mut moved = false;
            for side in [Side::A, Side::B] {
                while let Some(t) = self.endpoint(side).poll_transmit() {
                    assert_eq!(
                        t.destination,
                        self.addr(side.other()),
                        "{side:?} sent to a stranger"
                    );
                    self.wire
                        .push((side, String::from_utf8_lossy(&t.bytes).into_owned()));
                    let now = self.now;
                    self.link.send(now, side, t);
                    moved = true;
                }
            }
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.link.queue)
                .into_iter()
                .partition(|(t, _, _)| *t <= now);
            self.link.queue = later;
            for (_, from, t) in due {
                let source = self.addr(from);
                // Malformed input is the fuzz test's business; here it's an error.
                let result =
                    self.endpoint(from.other())
                        .handle_datagram(now, t.transport, source, &t.bytes);
                assert!(result.is_ok(), "{result:?}");
                moved = true;
            }
            while let Some(e) = self.a.poll_event() {
                self.a_events.push(e);
                moved = true;
            }
            while let Some(e) = self.b.poll_event() {
                self.b_events.push(e);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    /// Runs the virtual clock forward by `duration`, firing timers and
    /// delivering datagrams at the instants they are due.
    pub fn drive_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        loop {
            self.flush();
            let next = [
                self.a.poll_timeout(),
                self.b.poll_timeout(),
                self.link.next_delivery(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    if self.a.poll_timeout().is_some_and(|t| t <= now) {
                        self.a.handle_timeout(now);
                    }
                    if self.b.poll_timeout().is_some_and(|t| t <= now) {
                        self.b.handle_timeout(now);
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

    /// Drives until `done` holds for the pair, or `limit` of virtual time passes.
    pub fn drive_until(&mut self, limit: Duration, mut done: impl FnMut(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.drive_for(Duration::from_millis(10));
        }
        done(self)
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// How many datagrams `side` sent whose first line starts with `prefix`.
    pub fn sent(&self, side: Side, prefix: &str) -> usize {
        self.wire
            .iter()
            .filter(|(s, text)| *s == side && text.starts_with(prefix))
            .count()
    }

    pub fn transport(&self) -> TransportKind {
        TransportKind::Udp
    }
}

/// Minimal SDP; the stack treats it as opaque bytes.
pub fn sdp(direction: &str) -> Vec<u8> {
    format!("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na={direction}\r\n").into_bytes()
}
