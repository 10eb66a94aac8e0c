//! RFC 3263 §4 server location through sip-net's resolver against a DNS
//! server on loopback (real UDP, hickory's stub resolver): what is asked,
//! in what order the answers come back, and what a silent nameserver gives.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use sip_message::Uri;
use sip_net::{Destination, DnsConfig, Error, Resolver, TransportKind};
use switchboard_e2e::dns::{self, DnsServer};

fn resolver(server: SocketAddr) -> Resolver {
    Resolver::new(&DnsConfig {
        nameservers: vec![server],
        timeout: Some(Duration::from_millis(300)),
        attempts: Some(1),
    })
}

fn to(transport: TransportKind, address: &str) -> Destination {
    Destination {
        transport,
        address: address.parse().unwrap(),
    }
}

async fn locate(resolver: &Resolver, uri: &str) -> Result<sip_net::Located, Error> {
    // Always the lowest draw: equal-priority records come in the order given.
    resolver.locate(&Uri::parse(uri).unwrap(), |_| 0).await
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

/// RFC 3263 §4.1's example, abridged: NAPTR prefers TCP over UDP; each
/// transport's SRV records by priority; every target's address.
#[tokio::test]
async fn naptr_then_srv_then_addresses_best_first() {
    let server = DnsServer::start(vec![
        dns::naptr("example.test", 90, "SIP+D2T", "_sip._tcp.example.test"),
        dns::naptr("example.test", 100, "SIP+D2U", "_sip._udp.example.test"),
        dns::srv("_sip._tcp.example.test", 10, 0, 5070, "b.example.test"),
        dns::srv("_sip._tcp.example.test", 0, 0, 5060, "a.example.test"),
        dns::srv("_sip._udp.example.test", 0, 0, 5060, "a.example.test"),
        dns::a("a.example.test", ip(1)),
        dns::a("b.example.test", ip(2)),
    ])
    .await;
    let located = locate(&resolver(server.addr), "sip:example.test")
        .await
        .unwrap();
    assert_eq!(
        located.destinations,
        [
            to(TransportKind::Tcp, "192.0.2.1:5060"),
            to(TransportKind::Tcp, "192.0.2.2:5070"),
            to(TransportKind::Udp, "192.0.2.1:5060"),
        ]
    );
    // TTL 60 s: located again in about a minute.
    let expires = located.expires.unwrap();
    assert!(expires > Instant::now() + Duration::from_secs(50));
    assert!(expires <= Instant::now() + Duration::from_secs(61));
}

/// No NAPTR: SRV for each transport in turn (§4.1); a sips: URI asks only
/// for `_sips._tcp`.
#[tokio::test]
async fn srv_without_naptr() {
    let server = DnsServer::start(vec![
        dns::srv("_sips._tcp.secure.test", 0, 0, 5061, "sbc.secure.test"),
        dns::srv("_sip._udp.secure.test", 0, 0, 5060, "sbc.secure.test"),
        dns::a("sbc.secure.test", ip(3)),
    ])
    .await;
    let dns = resolver(server.addr);
    let located = locate(&dns, "sip:secure.test").await.unwrap();
    assert_eq!(
        located.destinations,
        [
            to(TransportKind::Tls, "192.0.2.3:5061"),
            to(TransportKind::Udp, "192.0.2.3:5060"),
        ]
    );
    let asked = server.queries();
    assert_eq!(
        asked.iter().filter(|q| q.starts_with("SRV")).count(),
        3,
        "{asked:?}"
    );
    assert!(asked.contains(&"SRV _sip._tcp.secure.test.".to_string()));
    // A fresh resolver, so nothing comes from the cache.
    let located = locate(&resolver(server.addr), "sips:secure.test")
        .await
        .unwrap();
    assert_eq!(
        located.destinations,
        [to(TransportKind::Tls, "192.0.2.3:5061")]
    );
    let asked = server.queries();
    assert_eq!(
        asked.iter().filter(|q| q.starts_with("SRV")).count(),
        4,
        "only _sips._tcp for sips: — {asked:?}"
    );
}

/// A named transport skips NAPTR (§4.1); without SRV records the name's own
/// A record on the default port (§4.2); an explicit port asks only A/AAAA.
#[tokio::test]
async fn fallbacks_and_explicit_ports() {
    let server = DnsServer::start(vec![dns::a("plain.test", ip(4))]).await;
    let dns = resolver(server.addr);
    let located = locate(&dns, "sip:plain.test;transport=tcp").await.unwrap();
    assert_eq!(
        located.destinations,
        [to(TransportKind::Tcp, "192.0.2.4:5060")]
    );
    let located = locate(&dns, "sip:plain.test").await.unwrap();
    assert_eq!(
        located.destinations,
        [to(TransportKind::Udp, "192.0.2.4:5060")]
    );
    let located = locate(&dns, "sips:plain.test").await.unwrap();
    assert_eq!(
        located.destinations,
        [to(TransportKind::Tls, "192.0.2.4:5061")]
    );
    let before = server.queries().len();
    let located = locate(&resolver(server.addr), "sip:plain.test:5070")
        .await
        .unwrap();
    assert_eq!(
        located.destinations,
        [to(TransportKind::Udp, "192.0.2.4:5070")]
    );
    let asked = server.queries();
    assert!(
        asked.len() > before
            && asked[before..]
                .iter()
                .all(|q| q.starts_with("A ") || q.starts_with("AAAA ")),
        "{asked:?}"
    );
    let asked_before_literal = asked.len();
    let located = locate(&dns, "sip:192.0.2.9").await.unwrap();
    assert_eq!(
        located,
        sip_net::Located {
            destinations: vec![to(TransportKind::Udp, "192.0.2.9:5060")],
            expires: None,
        }
    );
    assert_eq!(server.queries().len(), asked_before_literal, "no DNS");
}

/// Nothing published: a precise error, not an empty list. An SRV target
/// without addresses is skipped in favour of the next.
#[tokio::test]
async fn unknown_names_and_dangling_targets() {
    let server = DnsServer::start(vec![
        dns::srv("_sip._udp.half.test", 0, 0, 5060, "gone.half.test"),
        dns::srv("_sip._udp.half.test", 1, 0, 5062, "here.half.test"),
        dns::a("here.half.test", ip(5)),
    ])
    .await;
    let dns = resolver(server.addr);
    let error = locate(&dns, "sip:nowhere.test").await.unwrap_err();
    assert!(
        matches!(&error, Error::NoAddress { uri } if uri == "sip:nowhere.test"),
        "{error}"
    );
    let located = locate(&dns, "sip:half.test;transport=udp").await.unwrap();
    assert_eq!(
        located.destinations,
        [to(TransportKind::Udp, "192.0.2.5:5062")]
    );
}

/// A nameserver that never answers: the first query's error, naming it.
#[tokio::test]
async fn a_silent_nameserver_is_an_error() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns = resolver(silent.local_addr().unwrap());
    let started = Instant::now();
    let error = locate(&dns, "sip:carrier.test").await.unwrap_err();
    assert!(
        matches!(&error, Error::Dns { name, query: "NAPTR", .. } if name == "carrier.test"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .starts_with("DNS NAPTR query for carrier.test failed: "),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}
