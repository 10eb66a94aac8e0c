//! OPTIONS keep-alives through sip-net: a trunk (sipp answering OPTIONS)
//! is reported up, a silent address down after Timer F.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_message::Uri;
use sip_net::{Event, SipConfig, SipNet, Trunk};
use switchboard_e2e::{free_port, scenario, Peer, DEADLINE, LOCALHOST};

async fn driver(t1: Duration) -> SipNet {
    let mut config = SipConfig::new(SocketAddr::new(LOCALHOST, 0));
    config.seed = 0x0b7;
    config.endpoint.timers.t1 = t1;
    SipNet::bind(config).await.unwrap()
}

/// The next `PeerUp`/`PeerDown` as (up, status).
async fn next_peer_event(net: &mut SipNet) -> (bool, u16) {
    loop {
        let event = tokio::time::timeout(DEADLINE, net.events.recv())
            .await
            .expect("a keep-alive outcome in time")
            .expect("the driver is running");
        match event {
            Event::PeerUp { status, .. } => return (true, status),
            Event::PeerDown { status, .. } => return (false, status),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_answering_options_is_up_and_probed_again() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let args: Vec<String> = [
        "-sf",
        &scenario("uas_options.xml").display().to_string(),
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        // Two probes answered, then sipp exits: the keep-alive repeats.
        "-m",
        "2",
        "-timeout",
        "30s",
        "-timeout_error",
        "-nostdin",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let Some(sipp) = Peer::spawn("sipp", &args, dir.path()) else {
        return;
    };
    let mut net = driver(Duration::from_millis(500)).await;
    let target = Uri::parse(&format!("sip:127.0.0.1:{port}")).unwrap();
    // sipp may still be binding: the first probe's retransmissions cover it.
    net.handle
        .keepalive(Trunk::default(), target, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(next_peer_event(&mut net).await, (true, 200));
    let (code, output) = sipp.wait().await;
    assert_eq!(code, 0, "sipp failed:\n{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_trunk_is_down_after_timer_f() {
    // T1 = 50 ms makes Timer F (64*T1) 3.2 s.
    let mut net = driver(Duration::from_millis(50)).await;
    let nobody = free_port();
    let target = Uri::parse(&format!("sip:127.0.0.1:{nobody}")).unwrap();
    let started = Instant::now();
    net.handle
        .keepalive(Trunk::default(), target, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(next_peer_event(&mut net).await, (false, 408));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(3200) && took < Duration::from_secs(10),
        "down after {took:?}, expected Timer F = 3.2 s"
    );
}
