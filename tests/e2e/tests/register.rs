//! REGISTER through sip-net against sipp acting as a digest registrar
//! (`sipp/registrar_digest.xml`: every REGISTER challenged, the answer
//! checked by sipp's `verifyauth`, 4 s bindings).
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::net::SocketAddr;

use sip_message::Uri;
use sip_net::{Credentials, Event, SipConfig, SipNet, Trunk};
use switchboard_e2e::{sipp_server, Peer, DEADLINE, LOCALHOST};

/// sipp as the registrar on a free port; `None` when sipp is not installed.
fn registrar(dir: &std::path::Path) -> Option<(Peer, u16)> {
    sipp_server(
        "registrar_digest.xml",
        1,
        &["-timeout", "45s", "-timeout_error"],
        dir,
    )
}

async fn extension() -> SipNet {
    let mut config = SipConfig::new(SocketAddr::new(LOCALHOST, 0));
    config.seed = 0x5eed;
    SipNet::bind(config).await.unwrap()
}

/// The PBX as a trunk with extension alice's credentials.
fn pbx(password: &str) -> Trunk {
    Trunk::with_credentials(Credentials::new("alice", password))
}

async fn next(net: &mut SipNet, what: &str) -> Event {
    tokio::time::timeout(DEADLINE, net.events.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("the driver is running")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_refreshes_and_unregisters_with_digest() {
    let dir = tempfile::tempdir().unwrap();
    let Some((sipp, port)) = registrar(dir.path()) else {
        return;
    };
    let mut net = extension().await;
    let registrar = Uri::parse(&format!("sip:127.0.0.1:{port}")).unwrap();
    let aor = Uri::parse("sip:alice@switchboard.test").unwrap();
    let registration = net
        .handle
        .register(pbx("s3cret"), registrar, aor, 3600)
        .await
        .unwrap();

    // The first binding, then the refresh at 50–80 % of the granted 4 s.
    for round in ["the registration", "the refresh"] {
        match next(&mut net, round).await {
            Event::Registered {
                registration: r,
                expires,
            } => {
                assert_eq!(r, registration);
                assert_eq!(expires, 4, "the registrar grants 4 s");
            }
            other => panic!("expected {round}, got {other:?}"),
        }
    }
    net.handle.unregister(registration).await.unwrap();
    match next(&mut net, "the unregistration").await {
        Event::Unregistered { registration: r } => assert_eq!(r, registration),
        other => panic!("expected Unregistered, got {other:?}"),
    }
    let (code, output) = sipp.wait().await;
    assert_eq!(code, 0, "sipp failed:\n{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    let Some((sipp, port)) = registrar(dir.path()) else {
        return;
    };
    let mut net = extension().await;
    let registrar = Uri::parse(&format!("sip:127.0.0.1:{port}")).unwrap();
    let aor = Uri::parse("sip:alice@switchboard.test").unwrap();
    let registration = net
        .handle
        .register(pbx("not-the-password"), registrar, aor, 3600)
        .await
        .unwrap();
    match next(&mut net, "the refusal").await {
        Event::RegistrationFailed {
            registration: r,
            status,
            ..
        } => {
            assert_eq!(r, registration);
            assert_eq!(status, 403, "sipp's verifyauth must reject the digest");
        }
        other => panic!("expected RegistrationFailed, got {other:?}"),
    }
    // The scenario ends after its 403.
    let (code, output) = sipp.wait().await;
    assert_eq!(code, 0, "sipp failed:\n{output}");
}
