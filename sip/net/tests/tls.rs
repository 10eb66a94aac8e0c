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
