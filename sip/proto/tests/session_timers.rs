//! RFC 4028 session timers between two endpoints in virtual time.

#![allow(clippy::unwrap_used)] // reason: tests fail loudly by design

mod util;

use std::time::Duration;

use sip_message::{NameAddr, Uri};
use sip_proto::{CallHandle, EndReason, Event, RefreshMethod, SessionTimerConfig};
use util::{config, sdp, Pair, Side, A, B};

fn timers(interval: u32, min_se: u32, refresh_method: RefreshMethod) -> SessionTimerConfig {
    SessionTimerConfig {
        interval,
        min_se,
        refresh_method,
    }
}

fn pair_with(a: SessionTimerConfig, b: SessionTimerConfig) -> Pair {
    let mut ca = config(A);
    ca.session_timer = Some(a);
    let mut cb = config(B);
    cb.session_timer = Some(b);
    Pair::with_configs(ca, cb, 31)
}

/// A calls B; B answers. Returns (A's handle, B's handle).
fn call(pair: &mut Pair) -> (CallHandle, CallHandle) {
    let now = pair.now;
    let a_call = pair
        .a
        .invite(
            now,
            Uri::parse("sip:agent@10.0.0.2").unwrap(),
            NameAddr::parse("<sip:+15550001@example.com>").unwrap(),
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
        .expect("IncomingCall");
    let now = pair.now;
    pair.b.answer(now, b_call, sdp("sendrecv")).unwrap();
    pair.drive_for(Duration::from_millis(100));
    assert!(pair
        .a_events
        .iter()
        .any(|e| matches!(e, Event::Answered { call, .. } if *call == a_call)));
    (a_call, b_call)
}

fn ended(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .filter(|e| matches!(e, Event::CallEnded { .. }))
        .cloned()
        .collect()
}

#[test]
fn thirty_minute_call_with_90s_session_expires_stays_up_on_update_refreshes() {
    let config = timers(90, 90, RefreshMethod::UpdateWhenAllowed);
    let mut pair = pair_with(config, config);
    let (a_call, _) = call(&mut pair);
    let invite = &pair
        .wire
        .iter()
        .find(|(_, t)| t.starts_with("INVITE"))
        .unwrap()
        .1;
    assert!(invite.contains("Session-Expires: 90\r\n"), "{invite}");
    assert!(invite.contains("Supported: timer"));
    let ok = &pair
        .wire
        .iter()
        .find(|(_, t)| t.starts_with("SIP/2.0 200"))
        .unwrap()
        .1;
    assert!(ok.contains("Session-Expires: 90;refresher=uac"), "{ok}");
    assert!(ok.contains("Require: timer"));

    pair.drive_for(Duration::from_secs(30 * 60));
    assert!(ended(&pair.a_events).is_empty(), "{:?}", pair.a_events);
    assert!(ended(&pair.b_events).is_empty(), "{:?}", pair.b_events);
    // The UAC refreshes at half the interval: 1800 s / 45 s = 40 UPDATEs.
    let updates = pair.sent(Side::A, "UPDATE ");
    assert!((39..=40).contains(&updates), "{updates} UPDATEs");
    assert_eq!(
        pair.sent(Side::B, "UPDATE "),
        0,
        "only the refresher refreshes"
    );
    assert_eq!(pair.sent(Side::A, "INVITE "), 1, "no re-INVITE needed");
    // Refreshes are invisible to the application.
    assert!(!pair
        .b_events
        .iter()
        .any(|e| matches!(e, Event::Reoffer { .. })));
    let now = pair.now;
    pair.a.hangup(now, a_call).unwrap();
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(pair.a.call_count() + pair.b.call_count(), 0);
}

#[test]
fn reinvite_refreshes_repeat_the_sdp_and_keep_the_call_up() {
    let a = timers(90, 90, RefreshMethod::Reinvite);
    let b = timers(1800, 90, RefreshMethod::UpdateWhenAllowed);
    let mut pair = pair_with(a, b);
    call(&mut pair);
    pair.drive_for(Duration::from_secs(30 * 60));
    assert!(ended(&pair.a_events).is_empty());
    assert!(ended(&pair.b_events).is_empty());
    let reinvites = pair.sent(Side::A, "INVITE ") - 1;
    assert!((39..=40).contains(&reinvites), "{reinvites} re-INVITEs");
    assert_eq!(pair.sent(Side::A, "ACK "), reinvites + 1);
    assert!(!pair
        .b_events
        .iter()
        .any(|e| matches!(e, Event::Reoffer { .. })));
    // The refresh carries the SDP A offered; B's 200 repeats B's answer.
    let last = pair
        .wire
        .iter()
        .rev()
        .find(|(s, t)| *s == Side::A && t.starts_with("INVITE"))
        .unwrap();
    assert!(last
        .1
        .ends_with(std::str::from_utf8(&sdp("sendrecv")).unwrap()));
    assert!(last.1.contains("Session-Expires: 90;refresher=uac"));
}

#[test]
fn uas_sends_bye_near_expiry_when_the_refresher_goes_quiet() {
    let config = timers(90, 90, RefreshMethod::UpdateWhenAllowed);
    let mut pair = pair_with(config, config);
    let (_, b_call) = call(&mut pair);
    let answered_at = pair.now;
    // From now on A's refreshes are lost.
    pair.link.filter = Some(Box::new(|side, t| {
        !(side == Side::A && t.bytes.starts_with(b"UPDATE"))
    }));
    let done = pair.drive_until(Duration::from_secs(120), |p| !ended(&p.b_events).is_empty());
    assert!(done);
    assert_eq!(
        ended(&pair.b_events),
        vec![Event::CallEnded {
            call: b_call,
            by_peer: false,
            reason: EndReason::SessionExpired
        }]
    );
    // §10: BYE at 90 − min(32, 90/3) = 60 s after the last refresh.
    let elapsed = pair.now - answered_at;
    assert!(
        elapsed >= Duration::from_secs(59) && elapsed <= Duration::from_secs(61),
        "BYE after {elapsed:?}"
    );
    assert_eq!(pair.sent(Side::B, "BYE "), 1);
}

#[test]
fn interval_below_min_se_is_refused_with_422_and_retried() {
    let a = timers(90, 90, RefreshMethod::UpdateWhenAllowed);
    let b = timers(1800, 300, RefreshMethod::UpdateWhenAllowed);
    let mut pair = pair_with(a, b);
    call(&mut pair);
    assert_eq!(pair.sent(Side::B, "SIP/2.0 422"), 1);
    let reply = &pair
        .wire
        .iter()
        .find(|(_, t)| t.starts_with("SIP/2.0 422"))
        .unwrap()
        .1;
    assert!(reply.contains("Min-SE: 300"));
    let retry = &pair
        .wire
        .iter()
        .filter(|(_, t)| t.starts_with("INVITE"))
        .nth(1)
        .unwrap()
        .1;
    assert!(retry.contains("Session-Expires: 300\r\n"), "{retry}");
    assert!(retry.contains("CSeq: 2 INVITE"));
    // Refreshes now run every 150 s.
    pair.drive_for(Duration::from_secs(600));
    assert_eq!(pair.sent(Side::A, "UPDATE "), 4);
    assert!(ended(&pair.b_events).is_empty());
}

#[test]
fn caller_without_timer_support_gets_uas_refreshes() {
    let mut ca = config(A);
    ca.session_timer = None;
    let mut cb = config(B);
    cb.session_timer = Some(timers(120, 90, RefreshMethod::UpdateWhenAllowed));
    let mut pair = Pair::with_configs(ca, cb, 32);
    call(&mut pair);
    let ok = &pair
        .wire
        .iter()
        .find(|(_, t)| t.starts_with("SIP/2.0 200"))
        .unwrap()
        .1;
    assert!(ok.contains("Session-Expires: 120;refresher=uas"), "{ok}");
    assert!(!ok.contains("Require: timer"));
    pair.drive_for(Duration::from_secs(600));
    let updates = pair.sent(Side::B, "UPDATE ");
    assert!(
        (9..=10).contains(&updates),
        "B refreshes every 60 s: {updates}"
    );
    assert!(ended(&pair.a_events).is_empty());
    assert!(ended(&pair.b_events).is_empty());
}
