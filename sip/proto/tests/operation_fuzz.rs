//! Operation fuzzing (STYLE §9): seeded random sequences of datagrams
//! (garbage and mutations of real messages), clock advances and commands,
//! checking that nothing panics and that timers never point into the past
//! once handled.

#![allow(clippy::unwrap_used)] // reason: tests fail loudly by design

mod util;

use std::net::SocketAddr;
use std::time::Duration;

use fastrand::Rng;
use sip_message::{NameAddr, Uri};
use sip_proto::{
    CallHandle, Credentials, Endpoint, Event, InboundAuth, KeepaliveHandle, RegistrationHandle,
    Rejection, Secret, SessionTimerConfig, TransportKind, Trunk,
};
use util::{sdp, Pair, Side};

/// A number below `n` (0 when `n` is 0), from the seeded generator: a failure reproduces.
fn below(rng: &mut Rng, n: usize) -> usize {
    rng.usize(..n.max(1))
}

#[derive(Debug)]
enum Op {
    Garbage(Vec<u8>),
    Mutated(Vec<u8>),
    Replay(Vec<u8>),
    Advance(Duration),
    Invite,
    Ringing,
    Answer,
    Reject,
    Hangup,
    Reoffer,
    AnswerReoffer,
    Refer,
    TransferProgress(u16),
    Dtmf,
    TransportError,
    Register(u32),
    Unregister,
    Keepalive(u64),
    StopKeepalive,
}

/// Real traffic to mutate: the wire of whole calls from the pair harness.
fn corpus() -> Vec<Vec<u8>> {
    let mut pair = Pair::new(77);
    let now = pair.now;
    let call = pair
        .a
        .invite(
            now,
            Uri::parse("sip:x@10.0.0.2").unwrap(),
            NameAddr::parse("<sip:a@example.com>").unwrap(),
            sdp("sendrecv"),
        )
        .unwrap();
    pair.drive_for(Duration::from_millis(300));
    let b_call = pair
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall(c) => Some(c.call),
            _ => None,
        })
        .unwrap();
    let now = pair.now;
    pair.b.ringing(now, b_call).unwrap();
    pair.b.answer(now, b_call, sdp("sendrecv")).unwrap();
    pair.drive_for(Duration::from_millis(100));
    let now = pair.now;
    pair.a.reoffer(now, call, sdp("sendonly")).unwrap();
    pair.drive_for(Duration::from_millis(100));
    let now = pair.now;
    let _ = pair.b.answer_reoffer(now, b_call, sdp("recvonly"));
    pair.a
        .refer(now, call, Uri::parse("sip:t@10.0.0.9").unwrap())
        .unwrap();
    pair.a.send_dtmf(now, call, '5', 100).unwrap();
    pair.drive_for(Duration::from_millis(100));
    let now = pair.now;
    pair.a.hangup(now, call).unwrap();
    pair.drive_for(Duration::from_millis(100));
    pair.wire.into_iter().map(|(_, t)| t.into_bytes()).collect()
}

fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    const TOKENS: &[&[u8]] = &[
        b"\r\n",
        b":",
        b";",
        b",",
        b"<",
        b">",
        b"\"",
        b" ",
        b"0",
        b"4294967296",
        b"tag=",
        b"branch=",
        b"SIP/2.0",
        b"\x00",
        b"\xff",
    ];
    for _ in 0..=below(rng, 4) {
        if bytes.is_empty() {
            break;
        }
        let at = below(rng, bytes.len());
        match below(rng, 5) {
            0 => bytes[at] = rng.u8(..),
            1 => {
                bytes.truncate(at);
            }
            2 => {
                let token = TOKENS[below(rng, TOKENS.len())];
                bytes.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + below(rng, 40)).min(bytes.len());
                bytes.drain(at..end);
            }
            _ => {
                // Duplicate a line.
                let start = bytes[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
                let end = bytes[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| at + p + 1);
                let line = bytes[start..end].to_vec();
                bytes.splice(end..end, line);
            }
        }
    }
    bytes
}

fn random_op(rng: &mut Rng, corpus: &[Vec<u8>]) -> Op {
    match below(rng, 16) {
        0 => Op::Garbage((0..below(rng, 300)).map(|_| rng.u8(..)).collect()),
        1..=3 => {
            let sample = corpus[below(rng, corpus.len())].clone();
            Op::Mutated(mutate(rng, sample))
        }
        4 => Op::Replay(corpus[below(rng, corpus.len())].clone()),
        5 | 6 => Op::Advance(Duration::from_millis(below(rng, 5_000) as u64)),
        7 => Op::Invite,
        8 => Op::Ringing,
        9 => Op::Answer,
        10 => Op::Reject,
        11 => Op::Hangup,
        12 => Op::Reoffer,
        13 => Op::AnswerReoffer,
        14 => match below(rng, 7) {
            0 => Op::Refer,
            1 => Op::Dtmf,
            2 => Op::Register([0, 30, 60, 3600][below(rng, 4)]),
            3 => Op::Unregister,
            4 => Op::Keepalive([0, 1, 30][below(rng, 3)]),
            5 => Op::StopKeepalive,
            _ => Op::TransportError,
        },
        _ => Op::TransferProgress([100, 180, 200, 486][below(rng, 4)]),
    }
}

/// One endpoint under attack, with a well-behaved twin feeding it real
/// traffic via the pair harness, so calls reach every state.
#[test]
fn random_operations_never_panic_and_timers_stay_ahead_of_the_clock() {
    let corpus = corpus();
    assert!(corpus.len() > 10);
    for seed in 0..60u64 {
        let mut rng = Rng::with_seed(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        // Session timers short enough to refresh and expire within a run;
        // B challenges like a trunk, A has credentials.
        let mut a = util::config(util::A);
        a.session_timer = Some(SessionTimerConfig {
            interval: 90,
            ..SessionTimerConfig::default()
        });
        let mut b = util::config(util::B);
        if seed % 2 == 0 {
            let mut auth = InboundAuth::new("fuzz");
            auth.users
                .insert("trunk".into(), Secret::Password("pw".into()));
            b.inbound_auth = Some(auth);
        }
        let mut pair = Pair::with_configs(a, b, seed);
        pair.link.loss = 0.1;
        let trunk = Trunk::with_credentials(Credentials::new("trunk", "pw"));
        let mut registrations: Vec<RegistrationHandle> = Vec::new();
        let mut keepalives: Vec<KeepaliveHandle> = Vec::new();
        let peer: SocketAddr = pair.b_addr;
        let mut handles: Vec<CallHandle> = Vec::new();
        for _ in 0..300 {
            let op = random_op(&mut rng, &corpus);
            let now = pair.now;
            let side = if below(&mut rng, 2) == 0 {
                Side::A
            } else {
                Side::B
            };
            let call = handles.get(below(&mut rng, handles.len() + 1)).copied();
            let ep: &mut Endpoint = pair.endpoint(side);
            match op {
                Op::Garbage(bytes) | Op::Mutated(bytes) | Op::Replay(bytes) => {
                    let _ = ep.handle_datagram(now, TransportKind::Udp, peer, &bytes);
                }
                Op::Advance(d) => pair.now += d,
                Op::Invite => {
                    let target = if side == Side::A {
                        "sip:x@10.0.0.2"
                    } else {
                        "sip:x@10.0.0.1"
                    };
                    if let Ok(c) = ep.invite_via(
                        now,
                        &trunk,
                        Uri::parse(target).unwrap(),
                        NameAddr::parse("<sip:f@example.com>").unwrap(),
                        sdp("sendrecv"),
                    ) {
                        handles.push(c);
                    }
                }
                Op::Ringing => drop(call.map(|c| ep.ringing(now, c))),
                Op::Answer => drop(call.map(|c| ep.answer(now, c, sdp("sendrecv")))),
                Op::Reject => drop(call.map(|c| {
                    ep.reject(
                        now,
                        c,
                        Rejection::Unavailable {
                            retry_after: Some(5),
                        },
                    )
                })),
                Op::Hangup => drop(call.map(|c| ep.hangup(now, c))),
                Op::Reoffer => drop(call.map(|c| ep.reoffer(now, c, sdp("sendonly")))),
                Op::AnswerReoffer => drop(call.map(|c| ep.answer_reoffer(now, c, sdp("recvonly")))),
                Op::Refer => {
                    drop(call.map(|c| ep.refer(now, c, Uri::parse("sip:t@10.0.0.9").unwrap())))
                }
                Op::TransferProgress(s) => drop(call.map(|c| ep.transfer_progress(now, c, s))),
                Op::Dtmf => drop(call.map(|c| ep.send_dtmf(now, c, '1', 100))),
                Op::TransportError => ep.handle_transport_error(now, TransportKind::Udp, peer),
                Op::Register(expires) => {
                    // The other endpoint is no registrar: 405s and back-off.
                    let registrar = if side == Side::A {
                        "sip:10.0.0.2"
                    } else {
                        "sip:10.0.0.1"
                    };
                    if let Ok(r) = ep.register(
                        now,
                        &trunk,
                        Uri::parse(registrar).unwrap(),
                        Uri::parse("sip:201@pbx").unwrap(),
                        expires,
                    ) {
                        registrations.push(r);
                    }
                }
                Op::Unregister => {
                    if let Some(r) = registrations.get(below(&mut rng, registrations.len().max(1)))
                    {
                        let _ = ep.unregister(now, *r);
                    }
                }
                Op::Keepalive(seconds) => {
                    let target = if side == Side::A {
                        "sip:10.0.0.2"
                    } else {
                        "sip:10.0.0.1"
                    };
                    if let Ok(k) = ep.keepalive(
                        now,
                        &Trunk::default(),
                        Uri::parse(target).unwrap(),
                        Duration::from_secs(seconds),
                    ) {
                        keepalives.push(k);
                    }
                }
                Op::StopKeepalive => {
                    if let Some(k) = keepalives.get(below(&mut rng, keepalives.len().max(1))) {
                        let _ = ep.stop_keepalive(*k);
                    }
                }
            }
            // Deliver traffic and fire everything due at this instant.
            drain_and_fire(&mut pair, &mut handles);
            let now = pair.now;
            for side in [Side::A, Side::B] {
                if let Some(t) = pair.endpoint(side).poll_timeout() {
                    assert!(
                        t > now,
                        "seed {seed}: {side:?} timer {t:?} not after now {now:?} once handled"
                    );
                }
            }
        }
    }
}

/// Flushes the link (tolerating malformed deliveries: the fuzz sends them)
/// and fires due timers until none is due at `pair.now`.
fn drain_and_fire(pair: &mut Pair, handles: &mut Vec<CallHandle>) {
    for _ in 0..1000 {
        let now = pair.now;
        let mut busy = false;
        for side in [Side::A, Side::B] {
            while let Some(t) = pair.endpoint(side).poll_transmit() {
                busy = true;
                // Everything is delivered at once, over a lossless wire, but
                // only if addressed to the other endpoint.
                let to = side.other();
                let from = match side {
                    Side::A => pair.a_addr,
                    Side::B => pair.b_addr,
                };
                let _ = pair
                    .endpoint(to)
                    .handle_datagram(now, t.transport, from, &t.bytes);
            }
            while let Some(e) = pair.endpoint(side).poll_event() {
                busy = true;
                if let Event::IncomingCall(c) = e {
                    handles.push(c.call);
                }
            }
            if pair.endpoint(side).poll_timeout().is_some_and(|t| t <= now) {
                busy = true;
                pair.endpoint(side).handle_timeout(now);
                if let Some(t) = pair.endpoint(side).poll_timeout() {
                    assert!(t > now, "handle_timeout left a timer due at or before now");
                }
            }
        }
        if !busy {
            return;
        }
    }
    panic!("endpoints never went quiet at one instant");
}

#[test]
fn timeouts_with_a_stale_clock_do_not_travel_back() {
    let mut pair = Pair::new(5);
    let now = pair.now;
    pair.a
        .invite(
            now + Duration::from_secs(10),
            Uri::parse("sip:x@10.0.0.2").unwrap(),
            NameAddr::parse("<sip:f@example.com>").unwrap(),
            sdp("sendrecv"),
        )
        .unwrap();
    let first = pair.a.poll_timeout().unwrap();
    // A caller passing an older instant does not move the endpoint's clock back.
    pair.a.handle_timeout(now);
    assert_eq!(pair.a.poll_timeout(), Some(first));
    assert!(first > now + Duration::from_secs(10));
}
