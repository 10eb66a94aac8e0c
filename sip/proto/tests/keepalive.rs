//! OPTIONS keep-alives in virtual time: a peer that answers is up, one that
//! goes silent is down after Timer F, and comes back up when it answers again.

#![allow(clippy::unwrap_used)] // reason: tests fail loudly by design

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use sip_message::Uri;
use sip_proto::{Destination, Event, KeepaliveHandle, Trunk};
use util::{Pair, Side};

fn peer_events(pair: &Pair) -> Vec<(bool, u16)> {
    pair.a_events
        .iter()
        .filter_map(|e| match e {
            Event::PeerUp { status, .. } => Some((true, *status)),
            Event::PeerDown { status, .. } => Some((false, *status)),
            _ => None,
        })
        .collect()
}

fn start(pair: &mut Pair, interval: Duration) -> KeepaliveHandle {
    let now = pair.now;
    let target = Uri::parse(&format!("sip:{}", util::B)).unwrap();
    pair.a
        .keepalive(now, &Trunk::default(), target, interval)
        .unwrap()
}

#[test]
fn answering_peer_is_up_once_and_probed_every_interval() {
    let mut pair = Pair::new(3);
    let k = start(&mut pair, Duration::from_secs(30));
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(peer_events(&pair), vec![(true, 200)]);
    assert_eq!(pair.a.keepalive_up(k), Some(true));
    pair.drive_for(Duration::from_secs(100));
    // Sent at 0, 30, 60, 90 s; only the first outcome is a change.
    assert_eq!(pair.sent(Side::A, "OPTIONS "), 4);
    assert_eq!(peer_events(&pair), vec![(true, 200)]);
    let options = pair
        .wire
        .iter()
        .find(|(s, t)| *s == Side::A && t.starts_with("OPTIONS "))
        .unwrap();
    assert!(options
        .1
        .starts_with(&format!("OPTIONS sip:{} SIP/2.0", util::B)));
    assert!(options.1.contains("CSeq: 1 OPTIONS"), "{}", options.1);
}

#[test]
fn silent_peer_goes_down_after_timer_f_and_up_again_when_it_answers() {
    let mut pair = Pair::new(4);
    let deaf = Rc::new(Cell::new(false));
    let d = deaf.clone();
    // While `deaf`, everything A sends is lost.
    pair.link.filter = Some(Box::new(move |side, _| !(d.get() && side == Side::A)));
    let k = start(&mut pair, Duration::from_secs(30));
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(peer_events(&pair), vec![(true, 200)]);

    deaf.set(true);
    // The probe at 30 s times out at 30 + 64*T1 = 62 s.
    pair.drive_for(Duration::from_secs(60));
    assert_eq!(
        peer_events(&pair),
        vec![(true, 200)],
        "not down before Timer F"
    );
    pair.drive_for(Duration::from_secs(2));
    assert_eq!(peer_events(&pair), vec![(true, 200), (false, 408)]);
    assert_eq!(pair.a.keepalive_up(k), Some(false));
    // Still silent: no repeated PeerDown; probes continue.
    let before = pair.sent(Side::A, "OPTIONS ");
    pair.drive_for(Duration::from_secs(100));
    assert_eq!(peer_events(&pair).len(), 2);
    assert!(pair.sent(Side::A, "OPTIONS ") > before);

    deaf.set(false);
    pair.drive_for(Duration::from_secs(70));
    assert_eq!(
        peer_events(&pair),
        vec![(true, 200), (false, 408), (true, 200)]
    );
    pair.a.stop_keepalive(k).unwrap();
    let sent = pair.sent(Side::A, "OPTIONS ");
    pair.drive_for(Duration::from_secs(120));
    assert_eq!(pair.sent(Side::A, "OPTIONS "), sent, "stopped");
    assert!(pair.a.stop_keepalive(k).is_err());
}

#[test]
fn any_final_response_counts_as_up() {
    // A peer that refuses OPTIONS (here 404) is still there.
    let mut pair = Pair::new(5);
    let now = pair.now;
    let target = Uri::parse(&format!("sip:nobody@{}", util::B)).unwrap();
    pair.a
        .keepalive(now, &Trunk::default(), target, Duration::from_secs(30))
        .unwrap();
    let options = pair.a.poll_transmit().unwrap();
    let Ok(sip_message::Message::Request(request)) = sip_message::Message::parse(&options.bytes)
    else {
        panic!("not a request");
    };
    let refusal = sip_message::Message::Response(request.response(404, "Not Found", None));
    pair.a
        .handle_datagram(now, options.transport, pair.b_addr, &refusal.to_bytes())
        .unwrap();
    let mut events = Vec::new();
    while let Some(e) = pair.a.poll_event() {
        events.push(e);
    }
    assert!(
        matches!(events[..], [Event::PeerUp { status: 404, .. }]),
        "{events:?}"
    );
}

#[test]
fn a_named_target_needs_a_destination() {
    let mut pair = Pair::new(6);
    let now = pair.now;
    let named = Uri::parse("sip:trunk.example.net;transport=tcp").unwrap();
    assert!(pair
        .a
        .keepalive(
            now,
            &Trunk::default(),
            named.clone(),
            Duration::from_secs(30)
        )
        .is_err());
    let trunk = Trunk {
        destinations: vec![Destination {
            transport: sip_proto::TransportKind::Tcp,
            address: pair.b_addr,
        }],
        credentials: None,
    };
    pair.a
        .keepalive(now, &trunk, named, Duration::from_secs(30))
        .unwrap();
    let t = pair.a.poll_transmit().unwrap();
    assert_eq!(t.destination, pair.b_addr);
    assert_eq!(t.transport, sip_proto::TransportKind::Tcp);
    assert!(String::from_utf8_lossy(&t.bytes)
        .starts_with("OPTIONS sip:trunk.example.net;transport=tcp SIP/2.0"));
}

/// RFC 3261 §8.1.1.8, §26.2: OPTIONS to a `sips:` trunk go over TLS with a
/// TLS Via and a SIPS Contact; with no port in the URI, to 5061.
#[test]
fn a_sips_target_gets_a_tls_via_and_a_sips_contact() {
    let mut pair = Pair::new(7);
    let now = pair.now;
    let target = Uri::parse("sips:10.0.0.2").unwrap();
    pair.a
        .keepalive(now, &Trunk::default(), target, Duration::from_secs(30))
        .unwrap();
    let t = pair.a.poll_transmit().unwrap();
    assert_eq!(t.transport, sip_proto::TransportKind::Tls);
    assert_eq!(t.destination, "10.0.0.2:5061".parse().unwrap());
    let text = String::from_utf8_lossy(&t.bytes);
    assert!(text.contains("\r\nVia: SIP/2.0/TLS "), "{text}");
    assert!(text.contains("\r\nContact: <sips:"), "{text}");
}
