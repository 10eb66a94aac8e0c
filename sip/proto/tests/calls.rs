//! Whole calls between two endpoints in virtual time.

#![allow(clippy::unwrap_used)] // reason: tests fail loudly by design

mod util;

use std::time::{Duration, Instant};

use sip_message::{Header, Message, NameAddr, Uri};
use sip_proto::{CallHandle, EndReason, Event, Rejection, TransportKind};
use util::{sdp, Pair, Side};

fn uri(s: &str) -> Uri {
    Uri::parse(s).expect("uri")
}

fn name(s: &str) -> NameAddr {
    NameAddr::parse(s).expect("name-addr")
}

/// Starts a call from `from` to the other side; returns (caller handle, callee handle).
fn place_call(pair: &mut Pair, from: Side) -> (CallHandle, CallHandle) {
    let target = match from {
        Side::A => format!("sip:agent@{}", pair.b_addr),
        Side::B => format!("sip:agent@{}", pair.a_addr),
    };
    let now = pair.now;
    let caller = pair
        .endpoint(from)
        .invite(
            now,
            uri(&target),
            name("<sip:+15550001@example.com>"),
            sdp("sendrecv"),
        )
        .expect("invite");
    pair.drive_for(Duration::from_millis(50));
    let events = match from {
        Side::A => &pair.b_events,
        Side::B => &pair.a_events,
    };
    let callee = events
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall(c) => Some(c.call),
            _ => None,
        })
        .expect("IncomingCall");
    (caller, callee)
}

fn established(pair: &mut Pair, from: Side) -> (CallHandle, CallHandle) {
    let (caller, callee) = place_call(pair, from);
    let now = pair.now;
    pair.endpoint(from.other()).ringing(now, callee).unwrap();
    pair.drive_for(Duration::from_millis(50));
    pair.endpoint(from.other())
        .answer(now, callee, sdp("sendrecv"))
        .unwrap();
    pair.drive_for(Duration::from_millis(100));
    (caller, callee)
}

#[test]
fn invite_180_200_ack_then_bye_from_caller() {
    let mut pair = Pair::new(1);
    let (a_call, b_call) = place_call(&mut pair, Side::A);
    match &pair.b_events[0] {
        Event::IncomingCall(c) => {
            assert_eq!(c.offer, sdp("sendrecv"));
            assert_eq!(c.from.uri.to_string(), "sip:+15550001@example.com");
            assert_eq!(
                c.request_uri.to_string(),
                format!("sip:agent@{}", pair.b_addr)
            );
            assert_eq!(c.source, pair.a_addr);
        }
        other => panic!("{other:?}"),
    }
    let now = pair.now;
    pair.b.ringing(now, b_call).unwrap();
    pair.drive_for(Duration::from_millis(50));
    assert!(pair.a_events.contains(&Event::Provisional {
        call: a_call,
        status: 180,
        sdp: None
    }));
    let now = pair.now;
    pair.b.answer(now, b_call, sdp("sendrecv")).unwrap();
    pair.drive_for(Duration::from_secs(1));
    assert!(pair.a_events.contains(&Event::Answered {
        call: a_call,
        sdp: sdp("sendrecv")
    }));
    assert_eq!(
        pair.sent(Side::B, "SIP/2.0 200 OK"),
        1,
        "ACK stopped 2xx retransmission"
    );
    assert_eq!(pair.sent(Side::A, "ACK "), 1);
    let now = pair.now;
    pair.a.hangup(now, a_call).unwrap();
    pair.drive_for(Duration::from_secs(40));
    assert!(pair.a_events.contains(&Event::CallEnded {
        call: a_call,
        by_peer: false,
        reason: EndReason::Bye
    }));
    assert!(pair.b_events.contains(&Event::CallEnded {
        call: b_call,
        by_peer: true,
        reason: EndReason::Bye
    }));
    // Every transaction has run out its timers.
    assert_eq!(pair.a.transaction_count(), (0, 0));
    assert_eq!(pair.b.transaction_count(), (0, 0));
    assert_eq!(pair.a.call_count() + pair.b.call_count(), 0);
    assert_eq!(pair.a.poll_timeout(), None);
}

#[test]
fn call_from_b_and_bye_from_callee() {
    let mut pair = Pair::new(2);
    let (b_call, a_call) = established(&mut pair, Side::B);
    assert!(pair
        .b_events
        .iter()
        .any(|e| matches!(e, Event::Answered { call, .. } if *call == b_call)));
    let now = pair.now;
    pair.a.hangup(now, a_call).unwrap();
    pair.drive_for(Duration::from_secs(1));
    assert!(pair.b_events.contains(&Event::CallEnded {
        call: b_call,
        by_peer: true,
        reason: EndReason::Bye
    }));
}

#[test]
fn trying_sent_after_200ms_when_unanswered() {
    let mut pair = Pair::new(3);
    let now = pair.now;
    pair.a
        .invite(
            now,
            uri("sip:x@10.0.0.2:5060"),
            name("<sip:a@example.com>"),
            sdp("sendrecv"),
        )
        .unwrap();
    pair.drive_for(Duration::from_millis(150));
    assert_eq!(pair.sent(Side::B, "SIP/2.0 100"), 0);
    pair.drive_for(Duration::from_millis(100));
    assert_eq!(pair.sent(Side::B, "SIP/2.0 100"), 1);
    // 100 stopped Timer A: no INVITE retransmission even after T1 doublings.
    pair.drive_for(Duration::from_secs(5));
    assert_eq!(pair.sent(Side::A, "INVITE "), 1);
}

#[test]
fn cancel_before_answer() {
    let mut pair = Pair::new(4);
    let (a_call, b_call) = place_call(&mut pair, Side::A);
    let now = pair.now;
    pair.b.ringing(now, b_call).unwrap();
    pair.drive_for(Duration::from_millis(50));
    let now = pair.now;
    pair.a.hangup(now, a_call).unwrap();
    pair.drive_for(Duration::from_secs(1));
    assert!(pair
        .b_events
        .contains(&Event::CallCancelled { call: b_call }));
    assert!(pair.a_events.contains(&Event::CallEnded {
        call: a_call,
        by_peer: false,
        reason: EndReason::Cancelled
    }));
    assert_eq!(pair.sent(Side::A, "CANCEL "), 1);
    assert_eq!(pair.sent(Side::B, "SIP/2.0 487"), 1);
    assert_eq!(
        pair.sent(Side::A, "ACK "),
        1,
        "the transaction ACKs the 487"
    );
    let now = pair.now;
    assert!(pair.b.answer(now, b_call, sdp("sendrecv")).is_err());
}

#[test]
fn hangup_before_any_provisional_cancels_on_first_one() {
    let mut pair = Pair::new(5);
    let now = pair.now;
    let a_call = pair
        .a
        .invite(
            now,
            uri("sip:x@10.0.0.2"),
            name("<sip:a@example.com>"),
            sdp("sendrecv"),
        )
        .unwrap();
    pair.a.hangup(now, a_call).unwrap();
    pair.drive_for(Duration::from_millis(100));
    assert_eq!(
        pair.sent(Side::A, "CANCEL "),
        0,
        "§9.1: no CANCEL before a provisional"
    );
    // 100 Trying (sent by B's transaction at 200 ms) releases the CANCEL.
    pair.drive_for(Duration::from_millis(300));
    assert_eq!(pair.sent(Side::A, "CANCEL "), 1);
    assert!(pair
        .b_events
        .iter()
        .any(|e| matches!(e, Event::CallCancelled { .. })));
    assert!(pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::CallEnded { call, reason: EndReason::Cancelled, .. } if *call == a_call)));
}

#[test]
fn lost_ack_is_absorbed_by_2xx_retransmission() {
    let mut pair = Pair::new(6);
    let mut acks_dropped = 0;
    pair.link.filter = Some(Box::new(move |_, t| {
        let is_ack = t.bytes.starts_with(b"ACK ");
        if is_ack && acks_dropped < 2 {
            acks_dropped += 1;
            return false;
        }
        true
    }));
    let (a_call, b_call) = established(&mut pair, Side::A);
    pair.drive_for(Duration::from_secs(40));
    assert!(
        pair.sent(Side::B, "SIP/2.0 200 OK") >= 3,
        "2xx retransmitted"
    );
    assert_eq!(
        pair.sent(Side::A, "ACK "),
        3,
        "each 2xx retransmission re-ACKed"
    );
    assert!(pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Answered { call, .. } if *call == a_call)));
    assert!(!pair
        .b_events
        .iter()
        .any(|e| matches!(e, Event::CallEnded { .. })));
    // Still a live call at both ends: BYE works.
    let now = pair.now;
    pair.b.hangup(now, b_call).unwrap();
    pair.drive_for(Duration::from_secs(1));
    assert!(pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::CallEnded { by_peer: true, .. })));
}

#[test]
fn no_ack_at_all_ends_the_call_with_bye_after_64_t1() {
    let mut pair = Pair::new(7);
    pair.link.filter = Some(Box::new(|_, t| !t.bytes.starts_with(b"ACK ")));
    let (_, b_call) = place_call(&mut pair, Side::A);
    let now = pair.now;
    pair.b.answer(now, b_call, sdp("sendrecv")).unwrap();
    let answered_at = pair.now;
    assert!(
        pair.drive_until(Duration::from_secs(60), |p| p.b_events.iter().any(
            |e| matches!(
                e,
                Event::CallEnded {
                    reason: EndReason::NoAck,
                    ..
                }
            )
        ))
    );
    let waited = pair.now - answered_at;
    assert!(
        waited >= Duration::from_secs(32) && waited < Duration::from_secs(33),
        "{waited:?}"
    );
    assert!(pair.sent(Side::B, "BYE ") >= 1);
    // T1 doubling to T2: 0.5, 1, 2, 4, 4, 4, … over 32 s is 10 retransmissions.
    let oks = pair.sent(Side::B, "SIP/2.0 200 OK");
    assert!((9..=12).contains(&oks), "{oks}");
}

#[test]
fn timer_b_fails_with_408_in_virtual_time() {
    let real = Instant::now();
    let mut pair = Pair::new(8);
    pair.link.filter = Some(Box::new(|from, _| from == Side::B)); // B hears nothing
    let now = pair.now;
    let a_call = pair
        .a
        .invite(
            now,
            uri("sip:x@10.0.0.2"),
            name("<sip:a@example.com>"),
            sdp("sendrecv"),
        )
        .unwrap();
    pair.drive_until(Duration::from_secs(40), |p| !p.a_events.is_empty());
    assert_eq!(
        pair.a_events,
        vec![Event::Failed {
            call: a_call,
            status: 408,
            reason: "Request Timeout".into()
        }]
    );
    // Timer B = 64*T1 = 32 s (to the 10 ms drive step).
    let elapsed = pair.elapsed();
    assert!(
        elapsed >= Duration::from_secs(32) && elapsed <= Duration::from_millis(32_010),
        "{elapsed:?}"
    );
    // Timer A: 0.5, 1, 2, 4, 8, 16 → 6 retransmissions + the original.
    assert_eq!(pair.sent(Side::A, "INVITE "), 7);
    assert!(
        real.elapsed() < Duration::from_secs(2),
        "virtual time, not real time"
    );
}

#[test]
fn lossy_link_calls_eventually_succeed() {
    for seed in 0..20 {
        let mut pair = Pair::new(100 + seed);
        pair.link.loss = 0.25;
        pair.link.duplicate = 0.1;
        pair.link.jitter = Duration::from_millis(30);
        let now = pair.now;
        let a_call = pair
            .a
            .invite(
                now,
                uri("sip:x@10.0.0.2"),
                name("<sip:a@example.com>"),
                sdp("sendrecv"),
            )
            .unwrap();
        assert!(
            pair.drive_until(Duration::from_secs(30), |p| p
                .b_events
                .iter()
                .any(|e| matches!(e, Event::IncomingCall(_)))),
            "seed {seed}: INVITE never arrived"
        );
        let b_call = pair
            .b_events
            .iter()
            .find_map(|e| match e {
                Event::IncomingCall(c) => Some(c.call),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            pair.b_events
                .iter()
                .filter(|e| matches!(e, Event::IncomingCall(_)))
                .count(),
            1,
            "seed {seed}: retransmitted INVITE made a second call"
        );
        let now = pair.now;
        pair.b.answer(now, b_call, sdp("sendrecv")).unwrap();
        assert!(
            pair.drive_until(Duration::from_secs(30), |p| p
                .a_events
                .iter()
                .any(|e| matches!(e, Event::Answered { .. }))),
            "seed {seed}: never answered: {:?}",
            pair.a_events
        );
        pair.drive_for(Duration::from_secs(35));
        assert!(
            !pair
                .b_events
                .iter()
                .any(|e| matches!(e, Event::CallEnded { .. })),
            "seed {seed}: {:?}",
            pair.b_events
        );
        let now = pair.now;
        pair.a.hangup(now, a_call).unwrap();
        assert!(
            pair.drive_until(Duration::from_secs(40), |p| p
                .b_events
                .iter()
                .any(|e| matches!(e, Event::CallEnded { .. }))),
            "seed {seed}: BYE never arrived"
        );
    }
}

#[test]
fn reinvite_hold_and_unhold() {
    let mut pair = Pair::new(9);
    let (a_call, b_call) = established(&mut pair, Side::A);
    for (direction, answer) in [("sendonly", "recvonly"), ("sendrecv", "sendrecv")] {
        pair.a_events.clear();
        pair.b_events.clear();
        let now = pair.now;
        pair.a.reoffer(now, a_call, sdp(direction)).unwrap();
        pair.drive_for(Duration::from_millis(50));
        assert_eq!(
            pair.b_events,
            vec![Event::Reoffer {
                call: b_call,
                sdp: sdp(direction)
            }]
        );
        let now = pair.now;
        pair.b.answer_reoffer(now, b_call, sdp(answer)).unwrap();
        pair.drive_for(Duration::from_secs(2));
        assert_eq!(
            pair.a_events,
            vec![Event::ReofferAnswered {
                call: a_call,
                sdp: sdp(answer)
            }]
        );
    }
    assert_eq!(
        pair.sent(Side::B, "SIP/2.0 200 OK"),
        3,
        "no 2xx retransmissions once ACKed"
    );
    // The peer re-offers too (B holds A).
    let now = pair.now;
    pair.b.reoffer(now, b_call, sdp("sendonly")).unwrap();
    pair.drive_for(Duration::from_millis(50));
    assert!(pair.a_events.contains(&Event::Reoffer {
        call: a_call,
        sdp: sdp("sendonly")
    }));
}

/// A re-offer we cannot accept is refused with 488, and the call goes on as it was.
#[test]
fn an_unacceptable_reoffer_is_refused_and_the_call_goes_on() {
    let mut pair = Pair::new(31);
    let (a_call, b_call) = established(&mut pair, Side::A);
    pair.b_events.clear();
    let now = pair.now;
    pair.a.reoffer(now, a_call, sdp("sendonly")).unwrap();
    pair.drive_for(Duration::from_millis(50));
    assert!(pair
        .b_events
        .iter()
        .any(|e| matches!(e, Event::Reoffer { .. })));
    let now = pair.now;
    pair.b.refuse_reoffer(now, b_call).unwrap();
    pair.drive_for(Duration::from_secs(2));
    assert!(pair.a_events.contains(&Event::ReofferFailed {
        call: a_call,
        status: 488
    }));
    assert_eq!(
        pair.sent(Side::B, "SIP/2.0 488"),
        1,
        "ACKed, not retransmitted"
    );
    // Nothing pending any more, and the call is still up.
    let now = pair.now;
    assert!(pair.b.refuse_reoffer(now, b_call).is_err());
    pair.a.hangup(now, a_call).unwrap();
    pair.drive_for(Duration::from_millis(50));
    assert!(pair.b_events.iter().any(|e| matches!(
        e,
        Event::CallEnded { call, by_peer: true, .. } if *call == b_call
    )));
}

#[test]
fn info_dtmf_and_in_dialog_options() {
    let mut pair = Pair::new(10);
    let (a_call, b_call) = established(&mut pair, Side::A);
    let now = pair.now;
    pair.a.send_dtmf(now, a_call, '7', 160).unwrap();
    pair.drive_for(Duration::from_millis(100));
    assert!(pair.b_events.contains(&Event::Dtmf {
        call: b_call,
        digit: '7',
        duration_ms: Some(160)
    }));
    assert_eq!(pair.sent(Side::B, "SIP/2.0 200 OK"), 2);
}

#[test]
fn rejections_reach_the_caller() {
    for (rejection, status) in [
        (Rejection::Busy, 486),
        (
            Rejection::Unavailable {
                retry_after: Some(30),
            },
            503,
        ),
        (Rejection::Decline, 603),
        (Rejection::NotFound, 404),
    ] {
        let mut pair = Pair::new(11);
        let (a_call, b_call) = place_call(&mut pair, Side::A);
        let now = pair.now;
        pair.b.reject(now, b_call, rejection).unwrap();
        pair.drive_for(Duration::from_secs(1));
        assert!(
            pair.a_events.iter().any(|e| matches!(e, Event::Failed { call, status: s, .. } if *call == a_call && *s == status)),
            "{:?}",
            pair.a_events
        );
        if status == 503 {
            assert!(pair
                .wire
                .iter()
                .any(|(s, t)| *s == Side::B && t.contains("Retry-After: 30\r\n")));
        }
        assert_eq!(pair.sent(Side::A, "ACK "), 1);
    }
}

/// By default a REFER from the peer is refused (403), not accepted and then ignored: the box
/// does not call numbers of a caller's choosing.
#[test]
fn a_refer_is_refused_unless_accepted_by_configuration() {
    let mut b = util::config(util::B);
    b.accept_refer = false;
    let mut pair = Pair::with_configs(util::config(util::A), b, 12);
    let (a_call, _) = established(&mut pair, Side::A);
    let now = pair.now;
    pair.a
        .refer(now, a_call, uri("sip:+15559999@10.0.0.9"))
        .unwrap();
    pair.drive_for(Duration::from_millis(100));
    assert!(pair
        .wire
        .iter()
        .any(|(s, t)| *s == Side::B && t.starts_with("SIP/2.0 403 ")));
    assert!(!pair
        .b_events
        .iter()
        .any(|e| matches!(e, Event::TransferRequested { .. })));
    assert!(!pair
        .a_events
        .contains(&Event::TransferAccepted { call: a_call }));
}

#[test]
fn refer_with_notify_success_and_failure() {
    for (final_status, success) in [(200u16, true), (486, false)] {
        let mut pair = Pair::new(12);
        let (a_call, b_call) = established(&mut pair, Side::A);
        let now = pair.now;
        pair.a
            .refer(now, a_call, uri("sip:+15559999@10.0.0.9"))
            .unwrap();
        pair.drive_for(Duration::from_millis(100));
        assert!(pair.b_events.contains(&Event::TransferRequested {
            call: b_call,
            target: uri("sip:+15559999@10.0.0.9")
        }));
        assert!(pair
            .a_events
            .contains(&Event::TransferAccepted { call: a_call }));
        assert!(pair.a_events.contains(&Event::TransferProgress {
            call: a_call,
            status: 100
        }));
        let now = pair.now;
        pair.b.transfer_progress(now, b_call, 180).unwrap();
        pair.drive_for(Duration::from_millis(100));
        assert!(pair.a_events.contains(&Event::TransferProgress {
            call: a_call,
            status: 180
        }));
        let now = pair.now;
        pair.b.transfer_progress(now, b_call, final_status).unwrap();
        pair.drive_for(Duration::from_millis(100));
        let expected = if success {
            Event::TransferSucceeded { call: a_call }
        } else {
            Event::TransferFailed {
                call: a_call,
                status: final_status,
            }
        };
        assert!(pair.a_events.contains(&expected), "{:?}", pair.a_events);
        assert!(pair.wire.iter().any(|(s, t)| *s == Side::B
            && t.starts_with("NOTIFY ")
            && t.contains("Subscription-State: terminated")));
        // The subscription is over.
        let now = pair.now;
        assert!(pair.b.transfer_progress(now, b_call, 200).is_err());
    }
}

#[test]
fn tcp_call_has_no_retransmissions_and_zero_wait_timers() {
    let mut pair = Pair::new(13);
    pair.link.loss = 0.0;
    let now = pair.now;
    let a_call = pair
        .a
        .invite(
            now,
            uri("sip:x@10.0.0.2;transport=tcp"),
            name("<sip:a@example.com>"),
            sdp("sendrecv"),
        )
        .unwrap();
    pair.drive_for(Duration::from_millis(50));
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
    pair.drive_for(Duration::from_millis(50));
    let now = pair.now;
    pair.a.hangup(now, a_call).unwrap();
    pair.drive_for(Duration::from_millis(50));
    assert!(pair
        .b_events
        .iter()
        .any(|e| matches!(e, Event::CallEnded { by_peer: true, .. })));
    assert!(pair.wire.iter().all(|(_, t)| t.contains("SIP/2.0/TCP")));
    // Timer K and J are zero on TCP: the BYE transactions are gone at once.
    assert_eq!(pair.a.transaction_count().0, 0);
    assert_eq!(
        pair.b.transaction_count().1,
        1,
        "only the INVITE server's Timer L (RFC 6026) runs"
    );
    assert_eq!(
        pair.a.stats().retransmissions + pair.b.stats().retransmissions,
        0
    );
}

#[test]
fn transport_error_fails_the_invite_with_503() {
    let mut pair = Pair::new(14);
    let now = pair.now;
    let a_call = pair
        .a
        .invite(
            now,
            uri("sip:x@10.0.0.2;transport=tcp"),
            name("<sip:a@example.com>"),
            sdp("sendrecv"),
        )
        .unwrap();
    while pair.a.poll_transmit().is_some() {}
    pair.a
        .handle_transport_error(now, TransportKind::Tcp, pair.b_addr);
    assert!(
        matches!(pair.a.poll_event(), Some(Event::Failed { call, status: 503, .. }) if call == a_call)
    );
    assert_eq!(pair.a.call_count(), 0);
}

// --- single-endpoint tests with hand-made peer messages ---

fn parse_request(bytes: &[u8]) -> sip_message::Request {
    match Message::parse(bytes).expect("parse") {
        Message::Request(r) => r,
        Message::Response(r) => panic!("expected a request, got {}", r.status),
    }
}

#[test]
fn digest_challenge_answered_once_with_rfc7616_response() {
    let mut a = sip_proto::Endpoint::new(util::config(util::A), 42);
    let now = Instant::now();
    let mufasa = sip_proto::Credentials::new("Mufasa", "Circle of Life");
    let trunk: std::net::SocketAddr = "10.0.0.2:5060".parse().unwrap();
    let call = a
        .invite_via(
            now,
            &sip_proto::Trunk::with_credentials(mufasa),
            uri("sip:+15551234@10.0.0.2"),
            name("<sip:agent@example.com>"),
            sdp("sendrecv"),
        )
        .unwrap();
    let invite = parse_request(&a.poll_transmit().unwrap().bytes);
    let mut challenge =
        invite.response(401, "Unauthorized", sip_message::Tag::new("srv1").as_ref());
    challenge.headers.push(Header::new(
        "WWW-Authenticate",
        "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
    ));
    a.handle_datagram(
        now,
        TransportKind::Udp,
        trunk,
        &Message::Response(challenge.clone()).to_bytes(),
    )
    .unwrap();
    let ack = parse_request(&a.poll_transmit().unwrap().bytes);
    assert_eq!(ack.method, sip_message::Method::Ack);
    let retry = parse_request(&a.poll_transmit().unwrap().bytes);
    assert_eq!(retry.headers.cseq().unwrap().seq, 2);
    assert_ne!(
        retry.headers.top_via().unwrap().branch,
        invite.headers.top_via().unwrap().branch
    );
    let auth = retry
        .headers
        .get("Authorization")
        .unwrap()
        .value_str()
        .unwrap()
        .to_owned();
    let field = |name: &str| -> String {
        let start = auth.find(&format!("{name}=")).unwrap() + name.len() + 1;
        let rest = &auth[start..];
        let rest = rest.trim_start_matches('"');
        rest.split(['"', ',']).next().unwrap().to_owned()
    };
    assert_eq!(field("algorithm"), "SHA-256");
    assert_eq!(field("qop"), "auth");
    assert_eq!(field("nc"), "00000001");
    assert_eq!(
        field("opaque"),
        "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    );
    // Independent computation (RFC 7616 §3.4.1) with the cnonce sent.
    use sha2::Digest;
    let h = |s: String| format!("{:x}", sha2::Sha256::digest(s.as_bytes()));
    let ha1 = h("Mufasa:http-auth@example.org:Circle of Life".to_owned());
    let ha2 = h("INVITE:sip:+15551234@10.0.0.2".to_owned());
    let expected = h(format!(
        "{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:{}:auth:{ha2}",
        field("cnonce")
    ));
    assert_eq!(field("response"), expected);
    // The same algorithm reproduces the RFC 7616 §3.9.1 vector.
    let vector = sip_proto::digest::response(
        sip_proto::digest::Algorithm::Sha256,
        &sip_proto::Credentials {
            username: "Mufasa".into(),
            password: "Circle of Life".into(),
        },
        "http-auth@example.org",
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "GET",
        "/dir/index.html",
        Some(("00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")),
    );
    assert_eq!(
        vector,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    // A second challenge is not answered again: the call fails with it.
    let mut again = retry.response(401, "Unauthorized", sip_message::Tag::new("srv2").as_ref());
    again
        .headers
        .push(challenge.headers.get("WWW-Authenticate").unwrap().clone());
    a.handle_datagram(
        now,
        TransportKind::Udp,
        trunk,
        &Message::Response(again).to_bytes(),
    )
    .unwrap();
    assert!(
        matches!(a.poll_event(), Some(Event::Failed { call: c, status: 401, .. }) if c == call)
    );
}

const BAD_MAX_FORWARDS: &[u8] = b"OPTIONS sip:agent@10.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.5:5062;branch=z9hG4bKbad1;rport\r\n\
Max-Forwards: lots\r\n\
From: <sip:x@example.com>;tag=1\r\n\
To: <sip:agent@example.com>\r\n\
Call-ID: bad-1\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn malformed_request_answered_400_naming_the_problem_at_its_source() {
    let mut a = sip_proto::Endpoint::new(util::config(util::A), 1);
    let now = Instant::now();
    // Behind NAT: the packet arrives from a public address.
    let from: std::net::SocketAddr = "203.0.113.7:40123".parse().unwrap();
    let result = a.handle_datagram(now, TransportKind::Udp, from, BAD_MAX_FORWARDS);
    assert!(matches!(
        result,
        Err(sip_proto::Error::Malformed { answered: true, .. })
    ));
    let t = a.poll_transmit().unwrap();
    assert_eq!(t.destination, from, "rport: answer where it came from");
    let text = String::from_utf8(t.bytes).unwrap();
    assert!(
        text.starts_with("SIP/2.0 400 Bad Request (bad Max-Forwards header field"),
        "{text}"
    );
    assert!(text.contains("received=203.0.113.7;rport=40123"), "{text}");
    // Garbage is dropped and counted.
    let garbage = a.handle_datagram(now, TransportKind::Udp, from, b"\x00\x01hello");
    assert!(matches!(
        garbage,
        Err(sip_proto::Error::Malformed {
            answered: false,
            ..
        })
    ));
    assert!(a.poll_transmit().is_none());
    let stats = a.stats();
    assert_eq!((stats.malformed_answered, stats.malformed_dropped), (1, 1));
}

#[test]
fn out_of_dialog_options_answered_200_and_retransmission_absorbed() {
    let mut a = sip_proto::Endpoint::new(util::config(util::A), 1);
    let now = Instant::now();
    let from: std::net::SocketAddr = "10.0.0.2:5060".parse().unwrap();
    let options =
        String::from_utf8_lossy(BAD_MAX_FORWARDS).replace("Max-Forwards: lots", "Max-Forwards: 70");
    a.handle_datagram(now, TransportKind::Udp, from, options.as_bytes())
        .unwrap();
    let first = a.poll_transmit().unwrap();
    let text = String::from_utf8_lossy(&first.bytes).into_owned();
    assert!(text.starts_with("SIP/2.0 200 OK"), "{text}");
    assert!(text.contains("Allow: INVITE"));
    assert!(text.contains(";tag="), "§8.2.6.2: To tag added");
    // No rport → sent-by port (§18.2.2), source IP as received.
    assert_eq!(first.destination, "10.0.0.2:5060".parse().unwrap());
    a.handle_datagram(now, TransportKind::Udp, from, options.as_bytes())
        .unwrap();
    let second = a.poll_transmit().unwrap();
    assert_eq!(
        first.bytes, second.bytes,
        "the non-INVITE server transaction resends its response"
    );
    // Unknown dialog → 481.
    let bye = options
        .replace("OPTIONS", "BYE")
        .replace(
            "To: <sip:agent@example.com>",
            "To: <sip:agent@example.com>;tag=nope",
        )
        .replace("z9hG4bKbad1", "z9hG4bKbye1");
    a.handle_datagram(now, TransportKind::Udp, from, bye.as_bytes())
        .unwrap();
    let t = a.poll_transmit().unwrap();
    assert!(t.bytes.starts_with(b"SIP/2.0 481"));
}

#[test]
fn retransmitted_invite_resends_last_provisional_and_final() {
    let mut pair = Pair::new(15);
    // Drop B's responses for a while so A retransmits the INVITE.
    let mut dropped = 0;
    pair.link.filter = Some(Box::new(move |from, t| {
        if from == Side::B && t.bytes.starts_with(b"SIP/2.0 18") && dropped < 1 {
            dropped += 1;
            return false;
        }
        true
    }));
    let now = pair.now;
    pair.a
        .invite(
            now,
            uri("sip:x@10.0.0.2"),
            name("<sip:a@example.com>"),
            sdp("sendrecv"),
        )
        .unwrap();
    pair.drive_for(Duration::from_millis(20));
    let b_call = match &pair.b_events[0] {
        Event::IncomingCall(c) => c.call,
        other => panic!("{other:?}"),
    };
    let now = pair.now;
    pair.b.ringing(now, b_call).unwrap(); // lost
    pair.drive_for(Duration::from_millis(600)); // Timer A fires; B resends 180
    assert_eq!(pair.sent(Side::A, "INVITE "), 2);
    assert_eq!(pair.sent(Side::B, "SIP/2.0 180"), 2);
    assert_eq!(
        pair.b_events.len(),
        1,
        "the retransmission is not a new call"
    );
    let now = pair.now;
    pair.b.reject(now, b_call, Rejection::Busy).unwrap();
    pair.drive_for(Duration::from_secs(1));
    assert!(pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Failed { status: 486, .. })));
}

/// RFC 3325: the identities a proxy asserted reach the application, each parsed, for it to
/// believe only from its trust domain.
#[test]
fn asserted_identities_reach_the_application() {
    let mut b = sip_proto::Endpoint::new(util::config(util::B), 1);
    let now = Instant::now();
    let from: std::net::SocketAddr = "203.0.113.7:5060".parse().unwrap();
    let invite = raw_invite(
        "pai1",
        "P-Asserted-Identity: \"Ana\" <sip:+15550001234@carrier.example;user=phone>, <tel:+15550001234>\r\n\
         P-Asserted-Identity: <not a uri\r\n",
    );
    b.handle_datagram(now, TransportKind::Udp, from, invite.as_bytes())
        .unwrap();
    let incoming = std::iter::from_fn(|| b.poll_event())
        .find_map(|e| match e {
            Event::IncomingCall(c) => Some(c),
            _ => None,
        })
        .expect("IncomingCall");
    let asserted: Vec<String> = incoming
        .asserted_identity
        .iter()
        .map(|a| a.uri.to_string())
        .collect();
    assert_eq!(
        asserted,
        [
            "sip:+15550001234@carrier.example;user=phone",
            "tel:+15550001234"
        ]
    );
    assert_eq!(
        incoming.from.uri.to_string(),
        "sip:+15550009999@203.0.113.7"
    );
}

/// A refusal to a source we do not talk to is sent once: with its ACK lost (or never coming,
/// as from a forged address), the 403 is not retransmitted, unlike a rejected call's.
#[test]
fn a_refusal_is_sent_once_and_kept_nowhere() {
    for refuse in [true, false] {
        let mut pair = Pair::new(21);
        pair.link.filter = Some(Box::new(|from, t| {
            !(from == Side::A && t.bytes.starts_with(b"ACK"))
        }));
        let (_, b_call) = place_call(&mut pair, Side::A);
        let now = pair.now;
        if refuse {
            pair.b
                .refuse(now, b_call, Some(Rejection::Forbidden))
                .unwrap();
        } else {
            pair.b.reject(now, b_call, Rejection::Forbidden).unwrap();
        }
        pair.drive_for(Duration::from_secs(40));
        let sent = pair.sent(Side::B, "SIP/2.0 403");
        if refuse {
            assert_eq!(sent, 1, "refused once");
            assert_eq!(pair.b.call_count(), 0, "no call kept");
            assert_eq!(pair.b.transaction_count().1, 0, "no transaction kept");
        } else {
            assert!(sent > 5, "a rejection is retransmitted until ACKed: {sent}");
        }
    }
}

/// RFC 3261 §8.2.2.3: an INVITE that requires an extension we lack gets 420 naming it, and no
/// call; one that requires only what we implement is taken.
#[test]
fn a_required_extension_we_lack_is_refused_with_420() {
    let mut b = sip_proto::Endpoint::new(util::config(util::B), 1);
    let now = Instant::now();
    let from: std::net::SocketAddr = "203.0.113.7:5060".parse().unwrap();
    let invite =
        |branch: &str, require: &str| raw_invite(branch, &format!("Require: {require}\r\n"));
    b.handle_datagram(
        now,
        TransportKind::Udp,
        from,
        invite("r1", "100rel, timer, Foo").as_bytes(),
    )
    .unwrap();
    let t = b.poll_transmit().unwrap();
    let text = String::from_utf8(t.bytes).unwrap();
    assert!(text.starts_with("SIP/2.0 420 Bad Extension"), "{text}");
    assert!(text.contains("Unsupported: 100rel, Foo\r\n"), "{text}");
    assert!(std::iter::from_fn(|| b.poll_event()).all(|e| !matches!(e, Event::IncomingCall(_))));

    b.handle_datagram(
        now,
        TransportKind::Udp,
        from,
        invite("r2", "timer").as_bytes(),
    )
    .unwrap();
    assert!(std::iter::from_fn(|| b.poll_event()).any(|e| matches!(e, Event::IncomingCall(_))));
}

/// A caller's Contact names where our BYE goes, unless it aims at this box or its segment:
/// then the BYE goes back where the caller's INVITE came from.
#[test]
fn a_contact_aiming_at_this_box_or_its_segment_is_not_followed() {
    let from: std::net::SocketAddr = "203.0.113.7:5060".parse().unwrap();
    for (i, (contact, bye_to)) in [
        ("203.0.113.9:5070", "203.0.113.9:5070"),
        ("127.0.0.1:5060", "203.0.113.7:5060"),
        ("169.254.169.254:80", "203.0.113.7:5060"),
        ("224.0.0.1:5060", "203.0.113.7:5060"),
        ("0.0.0.0:5060", "203.0.113.7:5060"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = sip_proto::Endpoint::new(util::config(util::B), 1);
        let now = Instant::now();
        let invite = raw_invite_to(&format!("ct{i}"), contact, "");
        b.handle_datagram(now, TransportKind::Udp, from, invite.as_bytes())
            .unwrap();
        let call = std::iter::from_fn(|| b.poll_event())
            .find_map(|e| match e {
                Event::IncomingCall(c) => Some(c.call),
                _ => None,
            })
            .expect("IncomingCall");
        b.answer(now, call, sdp("sendrecv")).unwrap();
        b.hangup(now, call).unwrap();
        let bye = std::iter::from_fn(|| b.poll_transmit())
            .find(|t| t.bytes.starts_with(b"BYE "))
            .expect("a BYE");
        assert_eq!(bye.destination.to_string(), bye_to, "Contact {contact}");
    }
}

/// An INVITE from a carrier at 203.0.113.7 as it would arrive, with `extra` header lines (each
/// ending in CRLF).
fn raw_invite(branch: &str, extra: &str) -> String {
    raw_invite_to(branch, "203.0.113.7:5060", extra)
}

/// The same with the caller's Contact at `contact`.
fn raw_invite_to(branch: &str, contact: &str, extra: &str) -> String {
    format!(
        "INVITE sip:agent@10.0.0.2 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+15550009999@203.0.113.7>;tag=f1\r\n\
         To: <sip:agent@10.0.0.2>\r\n\
         Call-ID: raw-{branch}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:carrier@{contact}>\r\n\
         {extra}\
         Content-Length: 0\r\n\r\n"
    )
}
