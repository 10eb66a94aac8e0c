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
    let store = switchboard_store::Store::open_sqlite(&dir.path().join("data/switchboard.db"))
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
    let store = switchboard_store::Store::open_sqlite(&dir.path().join("db.sqlite"))
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
