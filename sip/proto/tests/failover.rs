//! RFC 3263 §4.3 in virtual time: a trunk's requests move on to its next
//! destination after a timeout (Timer B/F), a transport error or a 503.

#![allow(clippy::unwrap_used)] // reason: tests fail loudly by design

mod util;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_message::{Message, NameAddr, Request, Tag, Uri};
use sip_proto::{Destination, Endpoint, Event, Transmit, TransportKind, Trunk};

const FIRST: &str = "10.0.0.5:5060";
const SECOND: &str = "10.0.0.6:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn trunk() -> Trunk {
    let at = |a: &str| Destination {
        transport: TransportKind::Udp,
        address: addr(a),
    };
    Trunk {
        destinations: vec![at(FIRST), at(SECOND)],
        credentials: None,
    }
}

fn request(t: &Transmit) -> Request {
    match Message::parse(&t.bytes).unwrap() {
        Message::Request(r) => r,
        Message::Response(r) => panic!("a response {}", r.status),
    }
}

fn transmits(ep: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// Fires every timer up to `until`, collecting what is sent.
fn run_until(ep: &mut Endpoint, until: Instant) -> Vec<Transmit> {
    let mut sent = Vec::new();
    while let Some(t) = ep.poll_timeout().filter(|t| *t <= until) {
        ep.handle_timeout(t);
        sent.extend(transmits(ep));
    }
    sent
}

fn answer(ep: &mut Endpoint, now: Instant, t: &Transmit, status: u16) {
    let response = request(t).response(status, "Whatever", Tag::new("srv").as_ref());
    ep.handle_datagram(
        now,
        TransportKind::Udp,
        t.destination,
        &Message::Response(response).to_bytes(),
    )
    .unwrap();
}

#[test]
fn a_silent_first_destination_hands_the_keepalive_to_the_second() {
    let mut ep = Endpoint::new(util::config(util::A), 1);
    let t0 = Instant::now();
    let interval = Duration::from_secs(30);
    ep.keepalive(
        t0,
        &trunk(),
        Uri::parse("sip:sbc.example.com").unwrap(),
        interval,
    )
    .unwrap();
    let first = transmits(&mut ep);
    assert_eq!(first[0].destination, addr(FIRST));
    // Timer F (32 s) passes in silence; the next OPTIONS goes to the second.
    let sent = run_until(&mut ep, t0 + Duration::from_secs(33));
    let options: Vec<&Transmit> = sent
        .iter()
        .filter(|t| request(t).method == sip_message::Method::Options)
        .collect();
    let second = options
        .iter()
        .find(|t| t.destination == addr(SECOND))
        .unwrap();
    assert!(
        events(&mut ep).is_empty(),
        "not down while another may answer"
    );
    let now = t0 + Duration::from_secs(33);
    answer(&mut ep, now, second, 200);
    assert!(matches!(
        events(&mut ep)[..],
        [Event::PeerUp { status: 200, .. }]
    ));
    // The next probe sticks to the destination that answered.
    let next = run_until(&mut ep, now + interval);
    assert!(
        next.iter().all(|t| t.destination == addr(SECOND)),
        "{next:?}"
    );
}

#[test]
fn down_only_when_every_destination_failed() {
    let mut ep = Endpoint::new(util::config(util::A), 2);
    let t0 = Instant::now();
    ep.keepalive(
        t0,
        &trunk(),
        Uri::parse("sip:sbc.example.com").unwrap(),
        Duration::from_secs(30),
    )
    .unwrap();
    transmits(&mut ep);
    ep.handle_transport_error(t0, TransportKind::Udp, addr(FIRST));
    let retry = transmits(&mut ep);
    assert_eq!(retry[0].destination, addr(SECOND), "moved on at once");
    assert!(events(&mut ep).is_empty());
    ep.handle_transport_error(t0, TransportKind::Udp, addr(SECOND));
    assert!(matches!(
        events(&mut ep)[..],
        [Event::PeerDown { status: 503, .. }]
    ));
}

#[test]
fn a_503_registrar_hands_the_registration_to_the_next() {
    let mut ep = Endpoint::new(util::config(util::A), 3);
    let now = Instant::now();
    let uri = |s: &str| Uri::parse(s).unwrap();
    ep.register(
        now,
        &trunk(),
        uri("sip:pbx.example.com"),
        uri("sip:2001@pbx.example.com"),
        600,
    )
    .unwrap();
    let first = transmits(&mut ep).remove(0);
    assert_eq!(first.destination, addr(FIRST));
    answer(&mut ep, now, &first, 503);
    let second = transmits(&mut ep)
        .into_iter()
        .find(|t| t.destination == addr(SECOND))
        .unwrap();
    let (a, b) = (request(&first), request(&second));
    assert_eq!(a.headers.call_id().unwrap(), b.headers.call_id().unwrap());
    assert!(b.headers.cseq().unwrap().seq > a.headers.cseq().unwrap().seq);
    answer(&mut ep, now, &second, 200);
    assert!(
        matches!(events(&mut ep)[..], [Event::Registered { .. }]),
        "no failure reported"
    );
}

#[test]
fn an_invite_times_out_then_goes_to_the_next_destination() {
    let mut ep = Endpoint::new(util::config(util::A), 4);
    let t0 = Instant::now();
    let call = ep
        .invite_via(
            t0,
            &trunk(),
            Uri::parse("sip:+15551234@sbc.example.com").unwrap(),
            NameAddr::parse("<sip:agent@example.com>").unwrap(),
            b"v=0\r\n".to_vec(),
        )
        .unwrap();
    let first = transmits(&mut ep).remove(0);
    assert_eq!(first.destination, addr(FIRST));
    // Timer B: 64*T1 = 32 s of silence.
    let sent = run_until(&mut ep, t0 + Duration::from_secs(33));
    let second = sent.iter().find(|t| t.destination == addr(SECOND)).unwrap();
    let (a, b) = (request(&first), request(second));
    assert_eq!(b.method, sip_message::Method::Invite);
    assert_ne!(
        a.headers.top_via().unwrap().branch,
        b.headers.top_via().unwrap().branch
    );
    assert!(events(&mut ep).is_empty(), "the call goes on");
    // The second is busy too: 503, and nothing is left to try.
    answer(&mut ep, t0 + Duration::from_secs(33), second, 503);
    assert!(
        matches!(events(&mut ep)[..], [Event::Failed { call: c, status: 503, .. }] if c == call)
    );
}

/// A trunk re-resolved after its DNS records expired: the keep-alive and
/// the registration go to the new addresses from their next request on.
#[test]
fn a_retargeted_trunk_is_probed_and_registered_at_its_new_addresses() {
    const THIRD: &str = "10.0.0.7:5060";
    let mut ep = Endpoint::new(util::config(util::A), 5);
    let t0 = Instant::now();
    let interval = Duration::from_secs(30);
    let uri = |s: &str| Uri::parse(s).unwrap();
    let keepalive = ep
        .keepalive(t0, &trunk(), uri("sip:sbc.example.com"), interval)
        .unwrap();
    let probe = transmits(&mut ep).remove(0);
    answer(&mut ep, t0, &probe, 200);
    let registration = ep
        .register(
            t0,
            &trunk(),
            uri("sip:sbc.example.com"),
            uri("sip:2001@sbc.example.com"),
            600,
        )
        .unwrap();
    let register = transmits(&mut ep).remove(0);
    answer(&mut ep, t0, &register, 200);
    events(&mut ep);

    let moved = Trunk {
        destinations: vec![Destination {
            transport: TransportKind::Udp,
            address: addr(THIRD),
        }],
        credentials: None,
    };
    ep.retarget_keepalive(keepalive, &moved).unwrap();
    ep.retarget_registration(registration, &moved).unwrap();
    // The next probe and the refresh (at most 80 % of 600 s) go to the new address.
    let sent = run_until(&mut ep, t0 + Duration::from_secs(481));
    assert!(sent
        .iter()
        .any(|t| request(t).method == sip_message::Method::Options));
    assert!(sent
        .iter()
        .any(|t| request(t).method == sip_message::Method::Register));
    assert!(
        sent.iter().all(|t| t.destination == addr(THIRD)),
        "{:?}",
        sent.iter().map(|t| t.destination).collect::<Vec<_>>()
    );
    ep.stop_keepalive(keepalive).unwrap();
    assert!(matches!(
        ep.retarget_keepalive(keepalive, &moved),
        Err(sip_proto::Error::UnknownKeepalive(_))
    ));
}
