//! Per-trunk digest credentials: a carrier trunk and a PBX extension on one
//! endpoint each answer their own challenges, and no challenge gets a digest
//! made with another trunk's password — whatever realm it names.

#![allow(clippy::unwrap_used)] // reason: tests fail loudly by design

mod util;

use std::net::SocketAddr;
use std::time::Instant;

use sip_message::{Header, Message, NameAddr, Request, Response, Tag, Uri};
use sip_proto::digest::{ha1, Algorithm, Authorization};
use sip_proto::{Credentials, Destination, Endpoint, Event, Transmit, TransportKind, Trunk};

const CARRIER: &str = "10.0.0.5:5060";
const PBX: &str = "10.0.0.6:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn trunk(at: &str, username: &str, password: &str) -> Trunk {
    Trunk {
        destinations: vec![Destination {
            transport: TransportKind::Udp,
            address: addr(at),
        }],
        credentials: Some(Credentials::new(username, password)),
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

/// Answers `request` with 401 (or 407) naming `realm`, as if from `from`.
fn challenge(
    ep: &mut Endpoint,
    now: Instant,
    request: &Request,
    from: &str,
    status: u16,
    realm: &str,
) {
    let (reason, header) = match status {
        401 => ("Unauthorized", "WWW-Authenticate"),
        _ => ("Proxy Authentication Required", "Proxy-Authenticate"),
    };
    let mut response: Response = request.response(status, reason, Tag::new("srv").as_ref());
    response.headers.push(Header::new(
        header,
        format!("Digest realm=\"{realm}\", nonce=\"n-{from}\", qop=\"auth\", algorithm=MD5"),
    ));
    ep.handle_datagram(
        now,
        TransportKind::Udp,
        addr(from),
        &Message::Response(response).to_bytes(),
    )
    .unwrap();
}

fn answer_of(request: &Request, header: &str) -> Authorization {
    Authorization::parse(request.headers.get(header).unwrap().value_str().unwrap()).unwrap()
}

#[test]
fn two_registrations_answer_with_their_own_trunks_credentials() {
    let mut ep = Endpoint::new(util::config(util::A), 3);
    let now = Instant::now();
    let carrier = trunk(CARRIER, "acme", "carrier-secret");
    let pbx = trunk(PBX, "2001", "pbx-secret");
    let uri = |s: &str| Uri::parse(s).unwrap();
    ep.register(
        now,
        &carrier,
        uri("sip:sip.carrier.example"),
        uri("sip:acme@sip.carrier.example"),
        600,
    )
    .unwrap();
    ep.register(
        now,
        &pbx,
        uri("sip:pbx.example.internal"),
        uri("sip:2001@pbx.example.internal"),
        600,
    )
    .unwrap();
    let first = transmits(&mut ep);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].destination, addr(CARRIER));
    assert_eq!(first[1].destination, addr(PBX));
    // Both claim one realm: the realm never picks the credentials.
    challenge(&mut ep, now, &request(&first[0]), CARRIER, 401, "shared");
    challenge(&mut ep, now, &request(&first[1]), PBX, 407, "shared");
    let retries = transmits(&mut ep);
    assert_eq!(retries.len(), 2, "{retries:?}");
    for (t, at, user, password, header) in [
        (
            &retries[0],
            CARRIER,
            "acme",
            "carrier-secret",
            "Authorization",
        ),
        (
            &retries[1],
            PBX,
            "2001",
            "pbx-secret",
            "Proxy-Authorization",
        ),
    ] {
        assert_eq!(
            t.destination,
            addr(at),
            "the answer goes where the request went"
        );
        let answer = answer_of(&request(t), header);
        assert_eq!(answer.username, user);
        assert!(answer.verify("REGISTER", &ha1(Algorithm::Md5, user, "shared", password)));
    }
}

#[test]
fn a_trunk_without_credentials_leaves_its_challenge_unanswered() {
    let mut ep = Endpoint::new(util::config(util::A), 4);
    let now = Instant::now();
    let open = Trunk {
        credentials: None,
        ..trunk(CARRIER, "", "")
    };
    // Another trunk's credentials exist on the box; they are not this trunk's.
    let _pbx = trunk(PBX, "2001", "pbx-secret");
    let call = ep
        .invite_via(
            now,
            &open,
            Uri::parse("sip:+15551234@sip.carrier.example").unwrap(),
            NameAddr::parse("<sip:agent@example.com>").unwrap(),
            b"v=0\r\n".to_vec(),
        )
        .unwrap();
    let invite = request(&transmits(&mut ep)[0]);
    challenge(&mut ep, now, &invite, CARRIER, 407, "sip.carrier.example");
    let sent = transmits(&mut ep);
    assert!(sent
        .iter()
        .all(|t| request(t).method == sip_message::Method::Ack));
    assert!(
        matches!(ep.poll_event(), Some(Event::Failed { call: c, status: 407, .. }) if c == call)
    );
}

/// The carrier's INVITE was answered with credentials; its 2xx names a
/// remote target on another host and no Record-Route, so the BYE goes
/// there. That host's challenge is not answered with the carrier's password.
#[test]
fn in_dialog_challenges_from_another_host_are_not_answered() {
    for (contact, record_route, answered) in [
        ("sip:callee@192.0.2.77:5060", None, false),
        (
            "sip:callee@192.0.2.77:5060",
            Some("<sip:10.0.0.5:5060;lr>"),
            true,
        ),
    ] {
        let mut ep = Endpoint::new(util::config(util::A), 5);
        let now = Instant::now();
        let carrier = trunk(CARRIER, "acme", "carrier-secret");
        let call = ep
            .invite_via(
                now,
                &carrier,
                Uri::parse("sip:+15551234@sip.carrier.example").unwrap(),
                NameAddr::parse("<sip:agent@example.com>").unwrap(),
                b"v=0\r\n".to_vec(),
            )
            .unwrap();
        let invite = request(&transmits(&mut ep)[0]);
        challenge(&mut ep, now, &invite, CARRIER, 407, "carrier");
        let retry = transmits(&mut ep)
            .into_iter()
            .map(|t| request(&t))
            .next_back()
            .unwrap();
        assert_eq!(answer_of(&retry, "Proxy-Authorization").username, "acme");
        let mut ok = retry.response(200, "OK", Tag::new("callee").as_ref());
        ok.headers
            .push(Header::new("Contact", format!("<{contact}>")));
        if let Some(route) = record_route {
            ok.headers.push(Header::new("Record-Route", route));
        }
        ok.body = b"v=0\r\n".to_vec();
        ep.handle_datagram(
            now,
            TransportKind::Udp,
            addr(CARRIER),
            &Message::Response(ok).to_bytes(),
        )
        .unwrap();
        transmits(&mut ep); // the ACK
        ep.hangup(now, call).unwrap();
        let bye = transmits(&mut ep).remove(0);
        let expected = if record_route.is_some() {
            CARRIER
        } else {
            "192.0.2.77:5060"
        };
        assert_eq!(bye.destination, addr(expected));
        challenge(&mut ep, now, &request(&bye), expected, 401, "carrier");
        let again: Vec<Request> = transmits(&mut ep).iter().map(request).collect();
        let byes: Vec<&Request> = again
            .iter()
            .filter(|r| r.method == sip_message::Method::Bye)
            .collect();
        if answered {
            assert_eq!(byes.len(), 1, "the trunk's own challenge is answered");
            assert_eq!(answer_of(byes[0], "Authorization").username, "acme");
        } else {
            assert!(byes.is_empty(), "no digest for another host: {again:?}");
        }
    }
}
