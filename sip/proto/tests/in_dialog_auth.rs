//! §22.2 for in-dialog requests: a PBX that challenges BYE or REFER gets
//! them again, once, with credentials.

#![allow(clippy::unwrap_used)] // reason: tests fail loudly by design

mod util;

use std::time::Duration;

use sip_message::{Header, Message, NameAddr, Tag, Uri};
use sip_proto::{Credentials, Event, TransportKind, Trunk};
use util::{config, sdp, Pair, Side, A, B};

fn established(pair: &mut Pair) -> (sip_proto::CallHandle, sip_proto::CallHandle) {
    let now = pair.now;
    let a_call = pair
        .a
        .invite_via(
            now,
            &Trunk::with_credentials(Credentials::new("201", "pw")),
            Uri::parse("sip:agent@10.0.0.2").unwrap(),
            NameAddr::parse("<sip:a@example.com>").unwrap(),
            sdp("sendrecv"),
        )
        .unwrap();
    pair.drive_for(Duration::from_millis(100));
    let b_call = pair
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall(c) => Some(c.call),
            _ => None,
        })
        .unwrap();
    let now = pair.now;
    pair.b.answer(now, b_call, sdp("sendrecv")).unwrap();
    pair.drive_for(Duration::from_millis(100));
    (a_call, b_call)
}

/// Drops A's first `method` request on the link and answers it 401 to A
/// in B's name; returns the challenged request's text.
fn challenge_first(pair: &mut Pair, method: &'static str) -> String {
    let mut dropped = false;
    pair.link.filter = Some(Box::new(move |side, t| {
        if side == Side::A && !dropped && t.bytes.starts_with(method.as_bytes()) {
            dropped = true;
            return false;
        }
        true
    }));
    pair.drive_for(Duration::from_millis(1));
    let text = pair
        .wire
        .iter()
        .find(|(s, t)| *s == Side::A && t.starts_with(method))
        .unwrap()
        .1
        .clone();
    let Ok(Message::Request(request)) = Message::parse(text.as_bytes()) else {
        panic!("{text}");
    };
    let mut challenge = request.response(401, "Unauthorized", Tag::new("x").as_ref());
    challenge.headers.push(Header::new(
        "WWW-Authenticate",
        "Digest realm=\"pbx\", nonce=\"abc\", qop=\"auth\", algorithm=MD5",
    ));
    let now = pair.now;
    let b_addr = pair.b_addr;
    pair.a
        .handle_datagram(
            now,
            TransportKind::Udp,
            b_addr,
            &Message::Response(challenge).to_bytes(),
        )
        .unwrap();
    text
}

fn with_credentials() -> Pair {
    Pair::with_configs(config(A), config(B), 41)
}

#[test]
fn challenged_bye_is_resent_with_credentials() {
    let mut pair = with_credentials();
    let (a_call, b_call) = established(&mut pair);
    let now = pair.now;
    pair.a.hangup(now, a_call).unwrap();
    let first = challenge_first(&mut pair, "BYE ");
    pair.drive_for(Duration::from_millis(100));
    let second = &pair
        .wire
        .iter()
        .filter(|(s, t)| *s == Side::A && t.starts_with("BYE "))
        .nth(1)
        .unwrap()
        .1;
    assert!(second.contains("Authorization: Digest username=\"201\""));
    let seq = |t: &str| {
        let Ok(Message::Request(r)) = Message::parse(t.as_bytes()) else {
            panic!()
        };
        r.headers.cseq().unwrap().seq
    };
    assert_eq!(seq(second), seq(&first) + 1);
    assert!(pair.b_events.contains(&Event::CallEnded {
        call: b_call,
        by_peer: true,
        reason: sip_proto::EndReason::Bye
    }));
}

#[test]
fn challenged_refer_is_resent_and_accepted() {
    let mut pair = with_credentials();
    let (a_call, _) = established(&mut pair);
    let now = pair.now;
    pair.a
        .refer(now, a_call, Uri::parse("sip:queue@10.0.0.9").unwrap())
        .unwrap();
    challenge_first(&mut pair, "REFER ");
    pair.drive_for(Duration::from_millis(100));
    assert_eq!(pair.sent(Side::A, "REFER "), 2);
    assert!(pair
        .a_events
        .contains(&Event::TransferAccepted { call: a_call }));
    // Later in-dialog requests continue above the retried CSeq.
    let now = pair.now;
    pair.a.send_dtmf(now, a_call, '1', 100).unwrap();
    pair.drive_for(Duration::from_millis(100));
    assert!(pair
        .b_events
        .iter()
        .any(|e| matches!(e, Event::Dtmf { digit: '1', .. })));
}
