//! Trunk mode: inbound digest authentication and the source allow-list,
//! between two endpoints in virtual time.

#![allow(clippy::unwrap_used)] // reason: tests fail loudly by design

mod util;

use std::time::Duration;

use sip_message::{NameAddr, Uri};
use sip_proto::{Credentials, Event, InboundAuth, Secret, Trunk};
use util::{config, sdp, Pair, Side, A, B};

fn trunk_auth(allow: &[&str]) -> InboundAuth {
    let mut auth = InboundAuth::new("switchboard");
    auth.users
        .insert("carrier".into(), Secret::Password("pa55".into()));
    auth.allow = allow.iter().map(|c| c.parse().unwrap()).collect();
    auth
}

/// A dials B through a trunk whose credentials carry `password`.
fn pair(password: &str, allow: &[&str]) -> (Pair, Trunk) {
    let mut b = config(B);
    b.inbound_auth = Some(trunk_auth(allow));
    let trunk = Trunk::with_credentials(Credentials::new("carrier", password));
    (Pair::with_configs(config(A), b, 21), trunk)
}

fn call(pair: &mut Pair, trunk: &Trunk) -> sip_proto::CallHandle {
    let now = pair.now;
    let call = pair
        .a
        .invite_via(
            now,
            trunk,
            Uri::parse("sip:agent@10.0.0.2").unwrap(),
            NameAddr::parse("<sip:+15550001@carrier.example>").unwrap(),
            sdp("sendrecv"),
        )
        .unwrap();
    pair.drive_for(Duration::from_millis(100));
    call
}

#[test]
fn challenged_invite_answered_correctly_proceeds_to_a_call() {
    let (mut pair, trunk) = pair("pa55", &[]);
    let a_call = call(&mut pair, &trunk);
    assert_eq!(pair.sent(Side::B, "SIP/2.0 401"), 1);
    assert_eq!(pair.sent(Side::A, "INVITE "), 2);
    assert_eq!(pair.sent(Side::A, "ACK "), 1, "the 401 was ACKed");
    let challenge = pair
        .wire
        .iter()
        .find(|(_, t)| t.starts_with("SIP/2.0 401"))
        .unwrap();
    assert!(challenge.1.contains("algorithm=SHA-256"));
    assert!(challenge.1.contains("algorithm=MD5"));
    let incoming = pair
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall(c) => Some(c.clone()),
            _ => None,
        })
        .expect("the authenticated INVITE reached the application");
    assert_eq!(incoming.authenticated_user.as_deref(), Some("carrier"));
    let now = pair.now;
    pair.b.answer(now, incoming.call, sdp("sendrecv")).unwrap();
    pair.drive_for(Duration::from_millis(100));
    assert!(pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Answered { call, .. } if *call == a_call)));
    // In-dialog requests are not challenged: the dialog was.
    let now = pair.now;
    pair.a.hangup(now, a_call).unwrap();
    pair.drive_for(Duration::from_millis(100));
    assert_eq!(pair.sent(Side::B, "SIP/2.0 200 OK"), 2);
    assert_eq!(pair.b.stats().auth_challenged, 1);
}

#[test]
fn wrong_password_gets_403_and_no_call() {
    let (mut pair, trunk) = pair("wrong", &[]);
    let a_call = call(&mut pair, &trunk);
    assert_eq!(pair.sent(Side::B, "SIP/2.0 401"), 1);
    assert_eq!(pair.sent(Side::B, "SIP/2.0 403"), 1);
    assert!(pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Failed { call, status: 403, .. } if *call == a_call)));
    assert!(pair.b_events.is_empty(), "{:?}", pair.b_events);
    assert_eq!(pair.b.stats().auth_rejected, 1);
}

#[test]
fn no_credentials_at_all_ends_at_the_401() {
    let mut b = config(B);
    b.inbound_auth = Some(trunk_auth(&[]));
    let mut pair = Pair::with_configs(config(A), b, 22);
    let a_call = call(&mut pair, &Trunk::default());
    assert!(pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Failed { call, status: 401, .. } if *call == a_call)));
    assert!(pair.b_events.is_empty());
}

#[test]
fn allow_listed_source_is_not_challenged() {
    let (mut pair, trunk) = pair("irrelevant", &["10.0.0.0/24", "2001:db8::/32"]);
    call(&mut pair, &trunk);
    assert_eq!(pair.sent(Side::B, "SIP/2.0 401"), 0);
    let incoming = pair
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(incoming.authenticated_user, None);
}

#[test]
fn options_keepalives_pass_without_challenge() {
    let (mut pair, _) = pair("pa55", &[]);
    let options = format!(
        "OPTIONS sip:10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKopt1\r\nFrom: <sip:ping@x>;tag=p\r\nTo: <sip:10.0.0.2>\r\nCall-ID: ping1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    let now = pair.now;
    let a_addr = pair.a_addr;
    pair.b
        .handle_datagram(
            now,
            sip_proto::TransportKind::Udp,
            a_addr,
            options.as_bytes(),
        )
        .unwrap();
    let reply = pair.b.poll_transmit().unwrap();
    assert!(reply.bytes.starts_with(b"SIP/2.0 200"));
}
