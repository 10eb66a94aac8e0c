//! SIP over TLS between two of our UAs on loopback, with a self-signed
//! certificate made for the test (IP subjectAltName 127.0.0.1).
//!
//! sipp is not part of these tests: Debian's sipp 3.6.1 is built without
//! OpenSSL ("TLS support is not enabled!" for `-t l1`).
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use sip_net::{TlsConfig, TlsListenerConfig, TlsRoots};
use switchboard_e2e::{Ua, UaEvent, UaOptions, LOCALHOST};

/// A self-signed certificate for 127.0.0.1; returns (certificate, key) PEM paths.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

/// A UA listening on TLS with `cert`/`key`, trusting only `trusted`.
async fn tls_ua(cert: &Path, key: &Path, trusted: &Path) -> Ua {
    Ua::start(UaOptions {
        tls: Some(TlsConfig {
            listener: Some(TlsListenerConfig {
                addr: SocketAddr::new(LOCALHOST, 0),
                certificate_chain: cert.to_owned(),
                private_key: key.to_owned(),
            }),
            roots: TlsRoots::CaFile(trusted.to_owned()),
        }),
        ..UaOptions::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_call_ourselves_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "switchboard");
    let mut callee = tls_ua(&cert, &key, &cert).await;
    let mut caller = tls_ua(&cert, &key, &cert).await;
    let port = callee.tls_addr.unwrap().port();

    let call = caller.call(&format!("sips:agent@127.0.0.1:{port}")).await;
    let incoming = callee
        .expect("the INVITE over TLS", |e| match e {
            UaEvent::Incoming(c) => Some(*c),
            _ => None,
        })
        .await;
    caller
        .expect("the answer", |e| {
            (*e == UaEvent::Answered(call)).then_some(())
        })
        .await;
    caller.sip.hangup(call).await.unwrap();
    let by_peer = caller
        .expect("our BYE answered", |e| match e {
            UaEvent::Ended { call: c, by_peer } if *c == call => Some(*by_peer),
            _ => None,
        })
        .await;
    assert!(!by_peer);
    let by_peer = callee
        .expect("the BYE over TLS", |e| match e {
            UaEvent::Ended { call: c, by_peer } if *c == incoming => Some(*by_peer),
            _ => None,
        })
        .await;
    assert!(by_peer);
    let (stats, calls) = caller.sip.stats().await.unwrap();
    assert_eq!(calls, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_fails_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "switchboard");
    let (other, other_key) = certificate(dir.path(), "someone-else");
    let callee = tls_ua(&cert, &key, &cert).await;
    // The caller trusts only a different certificate.
    let mut caller = tls_ua(&other, &other_key, &other).await;
    let port = callee.tls_addr.unwrap().port();

    let call = caller
        .call(&format!("sip:agent@127.0.0.1:{port};transport=tls"))
        .await;
    let status = caller
        .expect("the call to fail", |e| match e {
            UaEvent::Failed { call: c, status } if *c == call => Some(*status),
            UaEvent::Answered(c) if *c == call => panic!("answered over an untrusted TLS"),
            _ => None,
        })
        .await;
    assert_eq!(status, 503, "a failed handshake is a transport error");
    // The handshake failed before any SIP was written: the callee has no call.
    let (_, calls) = callee.sip.stats().await.unwrap();
    assert_eq!(calls, 0);
}
