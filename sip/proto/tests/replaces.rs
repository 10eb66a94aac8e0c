//! Attended transfer (RFC 3891 Replaces, RFC 5589 §7) between two
//! endpoints in virtual time.
//!
//! A pair has two UAs, so A stands in for both the transferor and the
//! transferee: A refers B (on call y) to B itself with Replaces of call x,
//! then sends the INVITE that transfer asks for, from the very Refer-To URI
//! B received. B matches x, answers the new call and ends x with a BYE.

#![allow(clippy::unwrap_used)] // reason: tests fail loudly by design

mod util;

use std::time::Duration;

use sip_message::{NameAddr, Uri};
use sip_proto::{CallHandle, EndReason, Event};
use util::{sdp, Pair, Side};

fn uri(s: &str) -> Uri {
    Uri::parse(s).expect("uri")
}

fn from() -> NameAddr {
    NameAddr::parse("<sip:+15550001@example.com>").unwrap()
}

/// A calls B, B answers with `answer`; returns (A's handle, B's handle).
fn established(pair: &mut Pair, answer: &str) -> (CallHandle, CallHandle) {
    pair.b_events.clear();
    let now = pair.now;
    let target = uri(&format!("sip:agent@{}", pair.b_addr));
    let a = pair.a.invite(now, target, from(), sdp("sendrecv")).unwrap();
    pair.drive_for(Duration::from_millis(50));
    let b = pair
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall(c) => Some(c.call),
            _ => None,
        })
        .expect("IncomingCall");
    let now = pair.now;
    pair.b.answer(now, b, sdp(answer)).unwrap();
    pair.drive_for(Duration::from_millis(100));
    assert!(
        pair.a_events
            .iter()
            .any(|e| matches!(e, Event::Answered { call, .. } if *call == a)),
        "{:?}",
        pair.a_events
    );
    (a, b)
}

/// The value of `name` in the first message `side` sent that starts with `prefix`.
fn header(pair: &Pair, side: Side, prefix: &str, name: &str) -> String {
    let text = &pair
        .wire
        .iter()
        .find(|(s, t)| *s == side && t.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} from {side:?}"))
        .1;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_owned()
}

fn tag(value: &str) -> String {
    value.split(";tag=").nth(1).unwrap().to_owned()
}

#[test]
fn attended_transfer_replaces_the_call() {
    let mut pair = Pair::new(31);
    let (a_x, b_x) = established(&mut pair, "sendonly");
    // Call x's identifiers, read off the wire.
    let call_id = header(&pair, Side::A, "INVITE ", "Call-ID");
    let a_tag = tag(&header(&pair, Side::A, "INVITE ", "From"));
    let b_tag = tag(&header(&pair, Side::B, "SIP/2.0 200 OK", "To"));
    let (a_y, b_y) = established(&mut pair, "sendrecv");
    pair.wire.clear();

    let now = pair.now;
    pair.a.refer_attended(now, a_y, a_x).unwrap();
    pair.drive_for(Duration::from_millis(100));
    let target = pair
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::TransferRequested { call, target } if *call == b_y => Some(target.clone()),
            _ => None,
        })
        .expect("TransferRequested");
    assert!(pair
        .a_events
        .contains(&Event::TransferAccepted { call: a_y }));
    // Refer-To: x's remote target (B's Contact) with x's identifiers as B
    // keys them: to-tag is B's own tag, from-tag A's.
    let sip = target.as_sip().unwrap();
    assert_eq!(sip.port, Some(pair.b_addr.port()));
    let (name, value) = &sip.headers[0];
    assert_eq!(name, "Replaces");
    let escaped = |s: &str| s.replace('@', "%40");
    assert_eq!(
        value,
        &format!(
            "{}%3Bto-tag%3D{b_tag}%3Bfrom-tag%3D{a_tag}",
            escaped(&call_id)
        )
    );

    // The transferee's INVITE to that URI.
    pair.a_events.clear();
    pair.b_events.clear();
    let now = pair.now;
    let a_new = pair.a.invite(now, target, from(), sdp("sendrecv")).unwrap();
    pair.drive_for(Duration::from_millis(200));
    assert_eq!(
        header(&pair, Side::A, "INVITE ", "Replaces"),
        format!("{call_id};to-tag={b_tag};from-tag={a_tag}")
    );
    assert!(
        !header(&pair, Side::A, "INVITE ", "To").contains('?'),
        "URI headers stay out of To"
    );
    // B answered by itself, with x's SDP, and ended x.
    let b_new = match pair.b_events.as_slice() {
        [Event::CallReplaced { old, new, offer }] => {
            assert_eq!(*old, b_x);
            assert_eq!(offer, &sdp("sendrecv"));
            *new
        }
        other => panic!("expected only CallReplaced, got {other:?}"),
    };
    assert!(pair.a_events.contains(&Event::Answered {
        call: a_new,
        sdp: sdp("sendonly")
    }));
    assert!(pair.a_events.contains(&Event::CallEnded {
        call: a_x,
        by_peer: true,
        reason: EndReason::Bye
    }));
    assert_eq!(pair.sent(Side::B, "BYE "), 1);
    // x is gone at B; the new call and y live on.
    let now = pair.now;
    assert!(pair.b.hangup(now, b_x).is_err());
    assert_eq!(pair.b.call_count(), 2);
    pair.b.hangup(now, b_new).unwrap();
    pair.drive_for(Duration::from_millis(100));
    assert!(pair.a_events.contains(&Event::CallEnded {
        call: a_new,
        by_peer: true,
        reason: EndReason::Bye
    }));
}

/// A Replaces naming `replaces` (raw, as it would appear after `?Replaces=`).
fn invite_replacing(pair: &mut Pair, replaces: &str) -> CallHandle {
    let now = pair.now;
    let target = uri(&format!("sip:agent@{}?Replaces={replaces}", pair.b_addr));
    let call = pair.a.invite(now, target, from(), sdp("sendrecv")).unwrap();
    pair.drive_for(Duration::from_millis(200));
    call
}

fn failed_with(pair: &Pair, call: CallHandle) -> Option<u16> {
    pair.a_events.iter().find_map(|e| match e {
        Event::Failed {
            call: c, status, ..
        } if *c == call => Some(*status),
        _ => None,
    })
}

#[test]
fn replaces_of_an_unknown_dialog_is_481() {
    let mut pair = Pair::new(32);
    let (_, b_x) = established(&mut pair, "sendrecv");
    let call_id = header(&pair, Side::A, "INVITE ", "Call-ID");
    let a_tag = tag(&header(&pair, Side::A, "INVITE ", "From"));
    pair.b_events.clear();
    // Right Call-ID, wrong to-tag; then tags swapped (A's view, not B's).
    let b_tag = tag(&header(&pair, Side::B, "SIP/2.0 200 OK", "To"));
    for replaces in [
        format!("{call_id}%3Bto-tag%3Dnot-b%3Bfrom-tag%3D{a_tag}"),
        format!("{call_id}%3Bto-tag%3D{a_tag}%3Bfrom-tag%3D{b_tag}"),
    ] {
        let call = invite_replacing(&mut pair, &replaces.replace('@', "%40"));
        assert_eq!(failed_with(&pair, call), Some(481), "{:?}", pair.a_events);
    }
    assert!(pair.b_events.is_empty(), "{:?}", pair.b_events);
    assert_eq!(pair.sent(Side::B, "BYE "), 0);
    let now = pair.now;
    pair.b.hangup(now, b_x).unwrap(); // x was left alone
}

#[test]
fn early_only_does_not_replace_a_confirmed_call_and_junk_is_400() {
    let mut pair = Pair::new(33);
    let (_, b_x) = established(&mut pair, "sendrecv");
    let call_id = header(&pair, Side::A, "INVITE ", "Call-ID").replace('@', "%40");
    let a_tag = tag(&header(&pair, Side::A, "INVITE ", "From"));
    let b_tag = tag(&header(&pair, Side::B, "SIP/2.0 200 OK", "To"));
    pair.b_events.clear();
    let early = format!("{call_id}%3Bto-tag%3D{b_tag}%3Bfrom-tag%3D{a_tag}%3Bearly-only");
    let call = invite_replacing(&mut pair, &early);
    assert_eq!(failed_with(&pair, call), Some(486));
    let call = invite_replacing(&mut pair, &format!("{call_id}%3Bto-tag%3D{b_tag}"));
    assert_eq!(failed_with(&pair, call), Some(400), "from-tag is mandatory");
    assert!(pair.b_events.is_empty(), "{:?}", pair.b_events);
    let now = pair.now;
    pair.b.hangup(now, b_x).unwrap();
}
