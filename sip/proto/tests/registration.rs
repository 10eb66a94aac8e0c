//! The REGISTER client (RFC 3261 §10.2) against a test registrar, in
//! virtual time: digest challenge, refresh before expiry, back-off, 423.

#![allow(clippy::unwrap_used)] // reason: tests fail loudly by design

mod util;

use std::time::Duration;

use sip_message::Uri;
use sip_proto::{Event, RegistrationHandle};
use util::registrar::{pbx, ua_config, RegistrarPair};

fn uri(s: &str) -> Uri {
    Uri::parse(s).unwrap()
}

fn register(pair: &mut RegistrarPair, expires: u32) -> RegistrationHandle {
    register_with(pair, "s3cret", expires)
}

fn register_with(pair: &mut RegistrarPair, password: &str, expires: u32) -> RegistrationHandle {
    let now = pair.now;
    pair.ua
        .register(
            now,
            &pbx(password),
            uri("sip:10.0.0.5"),
            uri("sip:201@pbx.example.com"),
            expires,
        )
        .unwrap()
}

fn registered(pair: &RegistrarPair) -> Vec<u32> {
    pair.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Registered { expires, .. } => Some(*expires),
            _ => None,
        })
        .collect()
}

fn failures(pair: &RegistrarPair) -> Vec<(u16, Duration)> {
    pair.events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::RegistrationFailed {
                status, retry_in, ..
            } => Some((*status, *retry_in)),
            _ => None,
        })
        .collect()
}

#[test]
fn digest_challenge_answered_and_binding_refreshed_before_it_lapses() {
    let mut pair = RegistrarPair::new(ua_config(), 11);
    pair.registrar.max_expires = 120;
    let reg = register(&mut pair, 3600);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(registered(&pair), vec![120], "{:?}", pair.events);
    let requests = &pair.registrar.requests;
    assert_eq!(
        requests.len(),
        2,
        "REGISTER, 401, REGISTER with credentials"
    );
    assert!(requests[0].1.headers.get("Authorization").is_none());
    let auth = requests[1].1.headers.get("Authorization").unwrap();
    assert!(
        auth.value_str().unwrap().contains("algorithm=SHA-256"),
        "SHA-256 preferred when offered"
    );

    // An hour of refreshes: each at 50–80 % of the 120 s granted.
    pair.drive_for(Duration::from_secs(3600));
    assert_eq!(pair.registrar.lapses, 0, "the binding never lapsed");
    assert!(pair.registrar.binding.is_some());
    let ok_times: Vec<_> = pair
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Registered { .. }))
        .map(|(t, _)| *t)
        .collect();
    assert!(ok_times.len() >= 3600 / 96, "{} refreshes", ok_times.len());
    for gap in ok_times.windows(2).map(|w| w[1] - w[0]) {
        assert!(
            gap >= Duration::from_secs(60) && gap <= Duration::from_secs(97),
            "refresh gap {gap:?}"
        );
    }
    // §10.2.4: one Call-ID and From tag, CSeq strictly increasing.
    let requests = &pair.registrar.requests;
    let call_ids: std::collections::HashSet<_> = requests
        .iter()
        .map(|(_, r)| r.headers.call_id().unwrap())
        .collect();
    assert_eq!(call_ids.len(), 1);
    let from_tags: std::collections::HashSet<_> = requests
        .iter()
        .map(|(_, r)| r.headers.from().unwrap().tag())
        .collect();
    assert_eq!(from_tags.len(), 1);
    let seqs: Vec<u32> = requests
        .iter()
        .map(|(_, r)| r.headers.cseq().unwrap().seq)
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(failures(&pair).is_empty());
    assert_eq!(pair.ua.registration_count(), 1);
    let _ = reg;
}

#[test]
fn unregister_sends_expires_zero_and_stops_refreshing() {
    let mut pair = RegistrarPair::new(ua_config(), 12);
    let reg = register(&mut pair, 600);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(registered(&pair), vec![600]);
    let now = pair.now;
    pair.ua.unregister(now, reg).unwrap();
    pair.drive_for(Duration::from_secs(1));
    assert!(pair
        .events
        .iter()
        .any(|(_, e)| *e == Event::Unregistered { registration: reg }));
    assert!(pair.registrar.binding.is_none());
    let last = &pair.registrar.requests.last().unwrap().1;
    assert_eq!(last.headers.expires().unwrap(), Some(0));
    assert!(
        last.headers.get("Authorization").is_some(),
        "answered the challenge"
    );
    assert_eq!(pair.ua.registration_count(), 0);
    let sent = pair.registrar.requests.len();
    pair.drive_for(Duration::from_secs(3600));
    assert_eq!(
        pair.registrar.requests.len(),
        sent,
        "no refresh after unregister"
    );
    assert_eq!(pair.ua.poll_timeout(), None);
    let now = pair.now;
    assert!(pair.ua.unregister(now, reg).is_err());
}

#[test]
fn backs_off_exponentially_after_503_up_to_the_cap_then_recovers() {
    let mut pair = RegistrarPair::new(ua_config(), 13);
    pair.registrar.forced = std::iter::repeat_n((503, None), 9).collect();
    register(&mut pair, 600);
    pair.drive_for(Duration::from_secs(4 * 3600));
    let got: Vec<u64> = failures(&pair)
        .iter()
        .map(|(s, d)| {
            assert_eq!(*s, 503);
            d.as_secs()
        })
        .collect();
    assert_eq!(got, vec![30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
    // The retries went out when announced.
    let times: Vec<_> = pair.registrar.requests.iter().map(|(t, _)| *t).collect();
    for (i, expected) in got.iter().enumerate() {
        let gap = times[i + 1] - times[i];
        assert!(
            gap >= Duration::from_secs(*expected) && gap < Duration::from_secs(expected + 1),
            "retry {i}: {gap:?}"
        );
    }
    assert_eq!(registered(&pair), vec![600; registered(&pair).len()]);
    assert!(
        !registered(&pair).is_empty(),
        "registered once the registrar recovered"
    );
}

#[test]
fn retry_after_from_the_registrar_is_honoured() {
    let mut pair = RegistrarPair::new(ua_config(), 14);
    pair.registrar.forced.push_back((503, Some(7)));
    register(&mut pair, 600);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(failures(&pair), vec![(503, Duration::from_secs(7))]);
    pair.drive_for(Duration::from_secs(5));
    assert!(registered(&pair).is_empty());
    pair.drive_for(Duration::from_secs(2));
    assert_eq!(registered(&pair), vec![600]);
}

#[test]
fn interval_too_brief_retries_with_min_expires() {
    let mut pair = RegistrarPair::new(ua_config(), 15);
    pair.registrar.min_expires = 900;
    register(&mut pair, 60);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(registered(&pair), vec![900], "{:?}", pair.events);
    assert!(failures(&pair).is_empty());
    let expires: Vec<_> = pair
        .registrar
        .requests
        .iter()
        .map(|(_, r)| r.headers.expires().unwrap().unwrap())
        .collect();
    // 401 → authorized 60 → 423 → 900 (challenged again: the test
    // registrar asks for credentials on every REGISTER).
    assert_eq!(expires.first(), Some(&60));
    assert_eq!(expires.last(), Some(&900));
}

#[test]
fn wrong_password_is_reported_and_retried_later() {
    let mut pair = RegistrarPair::new(ua_config(), 16);
    register_with(&mut pair, "wrong", 600);
    pair.drive_for(Duration::from_secs(1));
    assert_eq!(failures(&pair), vec![(403, Duration::from_secs(30))]);
    pair.drive_for(Duration::from_secs(30));
    assert_eq!(failures(&pair).len(), 2);
}

#[test]
fn silent_registrar_times_out_with_408() {
    let mut pair = RegistrarPair::new(ua_config(), 17);
    pair.registrar.silent = true;
    register(&mut pair, 600);
    pair.drive_for(Duration::from_secs(33));
    assert_eq!(failures(&pair), vec![(408, Duration::from_secs(30))]);
}
