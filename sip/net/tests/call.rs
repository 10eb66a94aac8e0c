//! Two drivers calling each other over real loopback sockets.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::time::Duration;

use sip_message::{NameAddr, Uri};
use sip_net::{AllowList, Event, SipConfig, SipNet};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn node(seed: u64, allow_list: AllowList) -> SipNet {
    let mut config = SipConfig::new("127.0.0.1:0".parse().unwrap());
    config.seed = seed;
    config.allow_list = allow_list;
    SipNet::bind(config).await.unwrap()
}

async fn next(net: &mut SipNet) -> Event {
    timeout(LIMIT, net.events.recv())
        .await
        .expect("an event in time")
        .expect("the driver is running")
}

async fn call_and_hang_up(transport: &str) {
    let mut a = node(1, AllowList::any()).await;
    let mut b = node(2, AllowList::any()).await;
    let target = Uri::parse(&format!("sip:bob@{};transport={transport}", b.local_addr)).unwrap();
    let from = NameAddr::parse(&format!("<sip:alice@{}>", a.local_addr)).unwrap();
    let call = a
        .handle
        .invite(target, from, b"v=0\r\n".to_vec())
        .await
        .unwrap();
    let Event::IncomingCall(incoming) = next(&mut b).await else {
        panic!("expected IncomingCall")
    };
    assert_eq!(incoming.offer, b"v=0\r\n");
    b.handle.ringing(incoming.call).await.unwrap();
    b.handle
        .answer(incoming.call, b"v=1\r\n".to_vec())
        .await
        .unwrap();
    loop {
        match next(&mut a).await {
            Event::Provisional { .. } => continue,
            Event::Answered { call: c, sdp } => {
                assert_eq!((c, sdp.as_slice()), (call, &b"v=1\r\n"[..]));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    a.handle.hangup(call).await.unwrap();
    assert!(matches!(
        next(&mut b).await,
        Event::CallEnded { by_peer: true, .. }
    ));
    assert!(matches!(
        next(&mut a).await,
        Event::CallEnded { by_peer: false, .. }
    ));
}

#[tokio::test]
async fn call_over_udp() {
    call_and_hang_up("udp").await;
}

#[tokio::test]
async fn call_over_tcp_reuses_the_connection() {
    call_and_hang_up("tcp").await;
}

#[tokio::test]
async fn invite_from_outside_the_allow_list_gets_403() {
    let mut a = node(3, AllowList::any()).await;
    let mut b = node(4, AllowList::only(["10.0.0.0/8".parse().unwrap()])).await;
    let target = Uri::parse(&format!("sip:bob@{}", b.local_addr)).unwrap();
    let from = NameAddr::parse(&format!("<sip:alice@{}>", a.local_addr)).unwrap();
    let call = a.handle.invite(target, from, Vec::new()).await.unwrap();
    loop {
        match next(&mut a).await {
            Event::Provisional { .. } => continue,
            Event::Failed {
                call: c, status, ..
            } => {
                assert_eq!((c, status), (call, 403));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // The refused call never reached b's application.
    assert!(b.events.try_recv().is_err());
}

#[tokio::test]
async fn commands_the_endpoint_refuses_come_back_as_errors() {
    let a = node(5, AllowList::any()).await;
    let mut b = node(6, AllowList::any()).await;
    let target = Uri::parse(&format!("sip:bob@{}", b.local_addr)).unwrap();
    let from = NameAddr::parse("<sip:alice@127.0.0.1>").unwrap();
    a.handle.invite(target, from, Vec::new()).await.unwrap();
    let Event::IncomingCall(incoming) = next(&mut b).await else {
        panic!()
    };
    b.handle
        .reject(incoming.call, sip_net::Rejection::Busy)
        .await
        .unwrap();
    assert!(matches!(
        b.handle.answer(incoming.call, Vec::new()).await,
        Err(sip_net::Error::Proto(_))
    ));
}
