//! Operation fuzzing (STYLE §9): two endpoints — A with credentials, B in
//! trunk mode with digest and session timers — driven by an arbitrary
//! sequence of datagrams, clock advances and commands. Checks that nothing
//! panics and that, once timers are handled, no deadline lies in the past.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sip_message::{NameAddr, Uri};
use sip_proto::{
    CallHandle, Config, Credentials, Endpoint, Event, InboundAuth, KeepaliveHandle,
    RegistrationHandle, Secret, SessionTimerConfig, TransportKind, Trunk,
};

#[derive(Arbitrary, Debug)]
enum Op {
    /// Raw bytes to A (`to_b` false) or B, as if from the other.
    Datagram {
        to_b: bool,
        bytes: Vec<u8>,
    },
    /// Milliseconds of virtual time.
    Advance(u32),
    Command {
        on_b: bool,
        command: Command,
    },
}

#[derive(Arbitrary, Debug)]
enum Command {
    Invite,
    Ringing(u8),
    Answer(u8),
    Hangup(u8),
    Reoffer(u8),
    AnswerReoffer(u8),
    Refer(u8),
    Dtmf(u8),
    Register { expires: u16 },
    Unregister(u8),
    TransportError,
    Keepalive { interval_s: u8 },
    StopKeepalive(u8),
}

struct World {
    a: Endpoint,
    b: Endpoint,
    now: Instant,
    calls: Vec<CallHandle>,
    registrations: Vec<RegistrationHandle>,
    keepalives: Vec<KeepaliveHandle>,
}

const A: &str = "10.0.0.1:5060";
const B: &str = "10.0.0.2:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

impl World {
    fn new() -> World {
        let mut a = Config::new(addr(A));
        a.session_timer = Some(SessionTimerConfig {
            interval: 90,
            ..SessionTimerConfig::default()
        });
        let mut b = Config::new(addr(B));
        let mut auth = InboundAuth::new("fuzz");
        auth.users
            .insert("trunk".into(), Secret::Password("pw".into()));
        b.inbound_auth = Some(auth);
        World {
            a: Endpoint::new(a, 1),
            b: Endpoint::new(b, 2),
            now: Instant::now(),
            calls: Vec::new(),
            registrations: Vec::new(),
            keepalives: Vec::new(),
        }
    }

    fn pick<T: Copy>(list: &[T], i: u8) -> Option<T> {
        (!list.is_empty()).then(|| list[usize::from(i) % list.len()])
    }

    /// Delivers traffic and fires due timers until both are quiet.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut busy = false;
            let now = self.now;
            while let Some(t) = self.a.poll_transmit() {
                busy = true;
                let _ = self.b.handle_datagram(now, t.transport, addr(A), &t.bytes);
            }
            while let Some(t) = self.b.poll_transmit() {
                busy = true;
                let _ = self.a.handle_datagram(now, t.transport, addr(B), &t.bytes);
            }
            for ep in [&mut self.a, &mut self.b] {
                while let Some(e) = ep.poll_event() {
                    busy = true;
                    if let Event::IncomingCall(c) = e {
                        self.calls.push(c.call);
                    }
                }
                if ep.poll_timeout().is_some_and(|t| t <= now) {
                    busy = true;
                    ep.handle_timeout(now);
                    assert!(ep.poll_timeout().is_none_or(|t| t > now));
                }
            }
            if !busy {
                return;
            }
        }
        panic!("endpoints never went quiet");
    }

    fn command(&mut self, on_b: bool, command: Command) {
        let now = self.now;
        let (ep, target) = if on_b {
            (&mut self.b, "sip:x@10.0.0.1")
        } else {
            (&mut self.a, "sip:x@10.0.0.2")
        };
        let call = |i| World::pick(&self.calls, i);
        let uri = |s: &str| Uri::parse(s).expect("literal uri");
        let trunk = Trunk::with_credentials(Credentials::new("trunk", "pw"));
        match command {
            Command::Invite => {
                let from = NameAddr::parse("<sip:f@example.com>").expect("literal");
                if let Ok(c) = ep.invite_via(now, &trunk, uri(target), from, b"v=0\r\n".to_vec()) {
                    self.calls.push(c);
                }
            }
            Command::Ringing(i) => drop(call(i).map(|c| ep.ringing(now, c))),
            Command::Answer(i) => drop(call(i).map(|c| ep.answer(now, c, b"v=0\r\n".to_vec()))),
            Command::Hangup(i) => drop(call(i).map(|c| ep.hangup(now, c))),
            Command::Reoffer(i) => drop(call(i).map(|c| ep.reoffer(now, c, b"v=1\r\n".to_vec()))),
            Command::AnswerReoffer(i) => {
                drop(call(i).map(|c| ep.answer_reoffer(now, c, b"v=1\r\n".to_vec())))
            }
            Command::Refer(i) => drop(call(i).map(|c| ep.refer(now, c, uri("sip:t@10.0.0.9")))),
            Command::Dtmf(i) => drop(call(i).map(|c| ep.send_dtmf(now, c, '5', 100))),
            Command::Register { expires } => {
                let registrar = if on_b { "sip:10.0.0.1" } else { "sip:10.0.0.2" };
                if let Ok(r) = ep.register(
                    now,
                    &trunk,
                    uri(registrar),
                    uri("sip:201@pbx"),
                    expires.into(),
                ) {
                    self.registrations.push(r);
                }
            }
            Command::Unregister(i) => {
                drop(World::pick(&self.registrations, i).map(|r| ep.unregister(now, r)))
            }
            Command::TransportError => {
                let peer = if on_b { addr(A) } else { addr(B) };
                ep.handle_transport_error(now, TransportKind::Udp, peer)
            }
            Command::Keepalive { interval_s } => {
                let target = if on_b { "sip:10.0.0.1" } else { "sip:10.0.0.2" };
                let interval = Duration::from_secs(u64::from(interval_s));
                if let Ok(k) = ep.keepalive(now, &Trunk::default(), uri(target), interval) {
                    self.keepalives.push(k);
                }
            }
            Command::StopKeepalive(i) => {
                drop(World::pick(&self.keepalives, i).map(|k| ep.stop_keepalive(k)))
            }
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut world = World::new();
    for op in ops.into_iter().take(256) {
        match op {
            Op::Datagram { to_b, bytes } => {
                let now = world.now;
                let _ = if to_b {
                    world
                        .b
                        .handle_datagram(now, TransportKind::Udp, addr(A), &bytes)
                } else {
                    world
                        .a
                        .handle_datagram(now, TransportKind::Udp, addr(B), &bytes)
                };
            }
            Op::Advance(ms) => world.now += Duration::from_millis(u64::from(ms % 600_000)),
            Op::Command { on_b, command } => world.command(on_b, command),
        }
        world.settle();
    }
});
