//! The daemon as a user meets it: the binary's exit codes, and `run` serving real HTTP on
//! 127.0.0.1 with a real SQLite database.
#![allow(clippy::unwrap_used)] // reason: test helpers, where a panic is the failure report

use models_api::testing::{skip, Dependency};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use switchboard::config::{self, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    // The test environment's own overrides must not leak into what is being checked.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        c.env_remove(k);
    }
    c
}

#[test]
fn check_config_reports_the_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "data_dir = \"/tmp/x\"\n[http]\nlisten = \"127.0.0.1:8080\"\n[sip]\nlisten = true\n",
    )
    .unwrap();
    let out = bin().args(["check-config"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:5: sip.listen: ", file.display())),
        "{stderr}"
    );

    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/switchboard.example.toml");
    let out = bin().arg("check-config").arg(&example).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("admin API: plain HTTP on 127.0.0.1:8080"),
        "{said}"
    );

    // Listening beyond loopback: HTTPS, and an operator certificate that cannot be read stops
    // the start here.
    let missing = dir.path().join("missing.crt");
    std::fs::write(
        &file,
        format!(
            "data_dir = \"{}\"\n[http]\nlisten = \"0.0.0.0:8443\"\ncert = \"{}\"\nkey = \"{}\"\n",
            dir.path().display(),
            missing.display(),
            dir.path().join("missing.key").display()
        ),
    )
    .unwrap();
    let out = bin().arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&*missing.to_string_lossy()), "{stderr}");
    std::fs::write(&file, "[http]\nlisten = \"0.0.0.0:8443\"\n").unwrap();
    let out = bin().arg("check-config").arg(&file).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("HTTPS on 0.0.0.0:8443, with a self-signed"),
        "{said}"
    );
}

#[test]
fn serve_with_a_broken_config_exits_2_without_starting() {
    let out = bin()
        .args(["serve"])
        .env("SWITCHBOARD_HTTP_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("env SWITCHBOARD_HTTP_LISTEN: http.listen: "));
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["check-config", "--help"],
        &["user", "add", "--help"],
    ] {
        let out = bin().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let out = bin().arg("frobnicate").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn start(
    config: Config,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        let sip = switchboard::bind_sip(&config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        switchboard::run(config, switchboard::Listeners { http, sip }, shutdown)
            .await
            .unwrap();
    });
    // The listener is bound already; the database opens before the first request is answered.
    (addr, stop, task)
}

#[tokio::test]
async fn health_readiness_and_metrics_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config::load(None, []).unwrap();
    config.data_dir = dir.path().join("data");
    config.models.dir = dir.path().join("no-models-here");
    let (addr, stop, task) = start(config.clone()).await;

    let (status, body) = get(addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ok\""));

    // No models installed: alive, but not ready, and it says why.
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("no-models-here") && body.contains("\"database\":\"ok\""),
        "{body}"
    );

    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("switchboard_http_requests_total{route=\"readyz\",status=\"503\"}"),
        "{body}"
    );
    assert!(body.contains("switchboard_ready 0"), "{body}");

    stop.send(()).unwrap();
    task.await.unwrap();
    assert!(
        dir.path().join("data/switchboard.db").is_file(),
        "SQLite in the data dir"
    );
}

#[tokio::test]
async fn ready_once_the_model_set_is_installed() {
    let Ok(models) = std::env::var("SWITCHBOARD_MODELS_DIR") else {
        skip(
            Dependency::Models,
            "SWITCHBOARD_MODELS_DIR is not set (tests/run sets it)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = config::load(None, []).unwrap();
    config.data_dir = dir.path().join("data");
    config.models.dir = models.into();
    let (addr, stop, task) = start(config).await;
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"models\":\"ok\""), "{body}");
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[test]
fn models_verify_names_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["models", "verify", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("missing  ggml-tiny.en.bin"), "{stdout}");
}

#[tokio::test]
async fn agents_in_the_config_are_seeded_and_updated() {
    let dir = tempfile::tempdir().unwrap();
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/switchboard.example.toml");
    let mut config = config::load(Some(&example), []).unwrap();
    config.data_dir = dir.path().join("data");
    for greeting in ["first", "second"] {
        config.agents[0].greeting = greeting.into();
        let (addr, stop, task) = start(config.clone()).await;
        // A request is answered only once start-up, seeding included, is done.
        assert_eq!(get(addr, "/healthz").await.0, 200);
        stop.send(()).unwrap();
        task.await.unwrap();
    }
    let out = bin()
        .args(["agent", "list"])
        .env("SWITCHBOARD_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "demo\t1000,demo\n");
    let store = switchboard_store::Store::open_sqlite(
        &dir.path().join("data/switchboard.db"),
        switchboard::keys::data_key(&dir.path().join("data")).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        store
            .agent_for_number("demo")
            .await
            .unwrap()
            .unwrap()
            .greeting,
        "second"
    );
}

/// Monitoring details are for this box and `http.monitoring_allow`: from elsewhere `/metrics`
/// is refused and `/readyz` says only whether the box is ready, not why (error texts name paths
/// and hosts). Requests go through the daemon's router with the client address a real
/// connection would carry.
#[tokio::test]
async fn monitoring_details_are_served_to_this_box_and_listed_sources_only() {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    let store = switchboard_store::Store::open_sqlite(
        &dir.path().join("db.sqlite"),
        switchboard_store::DataKey::random(),
    )
    .await
    .unwrap();
    let missing = std::sync::Arc::new(switchboard::engines::EngineError::NotInstalled(
        dir.path().join("no-models-here"),
    ));
    let allowed: sip_net::Cidr = "198.51.100.0/24".parse().unwrap();
    let state = switchboard::http::AppState::new(store, Err(missing.clone()), Err(missing))
        .with_monitoring(sip_net::AllowList::only([allowed]));
    let get = |path: &'static str, from: &str| {
        let mut request = axum::http::Request::get(path).body(Body::empty()).unwrap();
        let peer: SocketAddr = from.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = switchboard::http::router(state.clone());
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    for local in ["127.0.0.1:40000", "[::1]:40000", "198.51.100.7:40000"] {
        let (status, body) = get("/readyz", local).await;
        assert_eq!(status, 503);
        assert!(body.contains("no-models-here"), "{local}: {body}");
        assert_eq!(get("/metrics", local).await.0, 200, "{local}");
    }
    let (status, body) = get("/readyz", "203.0.113.9:40000").await;
    assert_eq!((status, body.as_str()), (503, r#"{"ready":false}"#));
    let (status, body) = get("/metrics", "203.0.113.9:40000").await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("switchboard_"), "{body}");
    assert_eq!(
        get("/healthz", "203.0.113.9:40000").await.0,
        200,
        "liveness is for anyone"
    );
}

/// A GET over TLS to `addr`, trusting only the certificates in `roots` (PEM) for the name
/// `localhost`: the status line's code, or the handshake's error.
async fn get_tls(addr: SocketAddr, roots: &[u8], path: &str) -> Result<u16, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots) {
        store.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let raw = String::from_utf8_lossy(&raw);
    Ok(raw.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0))
}

/// Reads a file the daemon writes while starting.
async fn wait_for_file(path: &Path) -> Vec<u8> {
    for _ in 0..200 {
        if let Ok(bytes) = std::fs::read(path) {
            if !bytes.is_empty() {
                return bytes;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{} was never written", path.display());
}

/// `http.tls = "on"`: the admin API answers over HTTPS only, with a self-signed certificate made
/// on first start (its key readable by the daemon's user alone) and kept across restarts, since
/// its fingerprint is what operators trust; with `http.cert`/`http.key` it presents the
/// operator's certificate instead.
#[tokio::test]
async fn the_admin_api_is_served_over_https_with_a_lasting_certificate() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let mut config = config::load(None, []).unwrap();
    config.data_dir = dir.path().join("data");
    config.models.dir = dir.path().join("no-models-here");
    config.http.tls = config::TlsMode::On;
    let cert_file = config.data_dir.join("tls/admin.crt");

    let (addr, stop, task) = start(config.clone()).await;
    let cert = wait_for_file(&cert_file).await;
    assert_eq!(get_tls(addr, &cert, "/healthz").await, Ok(200));
    // The client's address reaches the handlers: /metrics is served to this box.
    assert_eq!(get_tls(addr, &cert, "/metrics").await, Ok(200));
    // Plain HTTP on the same port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw).await;
    assert!(
        !raw.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    let key_mode = std::fs::metadata(config.data_dir.join("tls/admin.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o077, 0, "the key is private: {key_mode:o}");
    // A client trusting another certificate refuses this one.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    assert!(get_tls(addr, other.cert.pem().as_bytes(), "/healthz")
        .await
        .is_err());
    stop.send(()).unwrap();
    task.await.unwrap();

    // Restarted, the box presents the same certificate.
    let (addr, stop, task) = start(config.clone()).await;
    assert_eq!(get_tls(addr, &cert, "/healthz").await, Ok(200));
    assert_eq!(std::fs::read(&cert_file).unwrap(), cert);
    stop.send(()).unwrap();
    task.await.unwrap();

    // The operator's certificate, when configured.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("admin.crt"), other.cert.pem()).unwrap();
    std::fs::write(theirs.join("admin.key"), other.key_pair.serialize_pem()).unwrap();
    config.http.cert = Some(theirs.join("admin.crt"));
    config.http.key = Some(theirs.join("admin.key"));
    let (addr, stop, task) = start(config).await;
    let mut served = Err(String::new());
    for _ in 0..100 {
        served = get_tls(addr, other.cert.pem().as_bytes(), "/healthz").await;
        if served.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(served, Ok(200));
    assert!(get_tls(addr, &cert, "/healthz").await.is_err());
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// `auto` speaks TLS exactly when the admin listener is reachable from other hosts.
#[test]
fn automatic_tls_is_on_off_loopback() {
    use switchboard::config::TlsMode::{Auto, Off, On};
    use switchboard::http::tls::enabled;
    let at = |a: &str| a.parse::<SocketAddr>().unwrap();
    assert!(!enabled(Auto, at("127.0.0.1:8080")));
    assert!(!enabled(Auto, at("[::1]:8080")));
    assert!(enabled(Auto, at("0.0.0.0:8443")));
    assert!(enabled(Auto, at("192.0.2.7:8443")));
    assert!(enabled(On, at("127.0.0.1:8080")));
    assert!(!enabled(Off, at("0.0.0.0:8080")));
}
