//! TLS configuration errors are reported at bind, naming the file.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::path::{Path, PathBuf};

use sip_net::{Error, SipConfig, SipNet, TlsConfig, TlsListenerConfig, TlsRoots};

fn write_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

async fn bind(cert: &Path, key: &Path, ca: &Path) -> Result<SipNet, Error> {
    let mut config = SipConfig::new("127.0.0.1:0".parse().unwrap());
    config.tls = Some(TlsConfig {
        listener: Some(TlsListenerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            certificate_chain: cert.to_owned(),
            private_key: key.to_owned(),
        }),
        roots: TlsRoots::CaFile(ca.to_owned()),
    });
    SipNet::bind(config).await
}

#[tokio::test]
async fn bad_tls_files_fail_the_bind() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_certificate(dir.path(), "a");
    let (_, other_key) = write_certificate(dir.path(), "b");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let missing = dir.path().join("missing.pem");

    let net = bind(&cert, &key, &cert).await.unwrap();
    let tls = net.tls_addr.unwrap();
    assert_ne!(tls.port(), net.local_addr.port(), "TLS has its own port");

    match bind(&cert, &key, &missing).await {
        Err(Error::TlsFile { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    match bind(&cert, &key, &empty).await {
        Err(Error::NoCertificates { path }) => assert_eq!(path, empty),
        other => panic!("{other:?}"),
    }
    match bind(&missing, &key, &cert).await {
        Err(Error::TlsFile { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
    // A key that is not the certificate's.
    assert!(matches!(
        bind(&cert, &other_key, &cert).await,
        Err(Error::Tls(_))
    ));
}

/// A test CA and a certificate it signs for `name`: (ca, cert, key) paths.
fn test_pki(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let paths = (
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// A trunk over TLS: connections to its address check the certificate
/// against its host name (sent as SNI) and its own CA, without any TLS in
/// the driver's configuration. The right CA: OPTIONS over TLS, peer up. A
/// wrong CA, or a name the certificate does not carry: peer down (503).
#[tokio::test]
async fn tls_peers_are_checked_against_their_name_and_roots() {
    use sip_net::{Destination, Event, TlsPeer, TransportKind, Trunk};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki(dir.path(), "pbx.test");
    let (other_ca, _, _) = test_pki(dir.path(), "other.test");
    let server = bind(&cert, &key, &ca).await.unwrap();
    let address = server.tls_addr.unwrap();
    let target = sip_message::Uri::parse(&format!("sips:pbx.test:{}", address.port())).unwrap();
    let trunk = Trunk {
        destinations: vec![Destination {
            transport: TransportKind::Tls,
            address,
        }],
        credentials: None,
    };
    for (name, roots, up) in [
        ("pbx.test", TlsRoots::CaFile(ca.clone()), true),
        ("pbx.test", TlsRoots::CaFile(other_ca.clone()), false),
        ("wrong.test", TlsRoots::CaFile(ca.clone()), false),
    ] {
        let mut ours = SipNet::bind(SipConfig::new("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let peer = TlsPeer {
            server_name: name.into(),
            roots,
        };
        ours.handle.tls_peer(address, peer).await.unwrap();
        ours.handle
            .keepalive(trunk.clone(), target.clone(), Duration::from_secs(30))
            .await
            .unwrap();
        let event = tokio::time::timeout(Duration::from_secs(20), ours.events.recv())
            .await
            .unwrap()
            .unwrap();
        match (up, &event) {
            (true, Event::PeerUp { status: 200, .. }) => {}
            (false, Event::PeerDown { status: 503, .. }) => {}
            _ => panic!("{name}: {event:?}"),
        }
    }
    // A CA file that is not there is the registration's error.
    let missing = TlsPeer {
        server_name: "pbx.test".into(),
        roots: TlsRoots::CaFile(dir.path().join("missing.pem")),
    };
    let ours = SipNet::bind(SipConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    assert!(matches!(
        ours.handle.tls_peer(address, missing).await,
        Err(Error::TlsFile { .. })
    ));
}
