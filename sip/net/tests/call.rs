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

/// A TCP connection from `from` to `to` that sent an OPTIONS: whether the driver answered it
/// (served) or closed it at once (refused), and the stream to keep it open.
async fn connect_and_ask(
    from: &str,
    to: std::net::SocketAddr,
    n: u32,
) -> (bool, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    let local = stream.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKcap{n}\r\n\
         From: <sip:probe@{local}>;tag=c{n}\r\nTo: <sip:{to}>\r\nCall-ID: cap-{n}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    let _ = stream.write_all(options.as_bytes()).await;
    let mut reply = [0u8; 12];
    let served = matches!(
        timeout(Duration::from_secs(5), stream.read(&mut reply)).await,
        Ok(Ok(n)) if n > 0 && reply.starts_with(b"SIP/2.0")
    );
    (served, stream)
}

/// One host cannot take every connection: beyond the per-source cap its new connections are
/// closed unread, while another host still gets in up to the overall cap; a closed connection
/// frees its place.
#[tokio::test]
async fn tcp_connections_are_capped_per_source_and_in_all() {
    let mut config = SipConfig::new("127.0.0.1:0".parse().unwrap());
    config.max_connections_per_source = 3;
    config.max_connections = 5;
    let net = SipNet::bind(config).await.unwrap();
    let to = net.local_addr;
    let mut open = Vec::new();
    for n in 0..3 {
        let (served, stream) = connect_and_ask("127.0.0.1", to, n).await;
        assert!(served, "connection {n} from the first host");
        open.push(stream);
    }
    assert!(
        !connect_and_ask("127.0.0.1", to, 3).await.0,
        "over the per-source cap"
    );
    for n in 4..6 {
        let (served, stream) = connect_and_ask("127.0.0.2", to, n).await;
        assert!(served, "connection {n} from another host");
        open.push(stream);
    }
    assert!(
        !connect_and_ask("127.0.0.3", to, 6).await.0,
        "over the overall cap"
    );
    drop(open.remove(0));
    let mut freed = false;
    for n in 7..27 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let (true, stream) = connect_and_ask("127.0.0.1", to, n).await {
            open.push(stream);
            freed = true;
            break;
        }
    }
    assert!(freed, "a closed connection frees its place");
}
