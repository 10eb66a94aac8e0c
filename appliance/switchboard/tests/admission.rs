//! Inbound call admission against a real SIP peer (sipp): unrouted numbers get 404, blacklisted
//! callers 603, and every INVITE leaves a call record saying why.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::net::SocketAddr;
use std::path::Path;
use switchboard::config;
use switchboard_e2e::Peer;
use switchboard_store::{BlacklistEntry, Store, UnixMillis};

/// The daemon on the example configuration, with `allow` as `sip.allow`.
async fn daemon(
    data: &Path,
    allow: &[&str],
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    daemon_with(data, allow, |_| {}).await
}

/// [`daemon`], with `tune` applied to the configuration.
async fn daemon_with(
    data: &Path,
    allow: &[&str],
    tune: impl FnOnce(&mut config::Config),
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/switchboard.example.toml");
    let mut config = config::load(Some(&example), []).unwrap();
    config.data_dir = data.to_path_buf();
    config.sip.allow = allow.iter().map(|s| s.parse().unwrap()).collect();
    tune(&mut config);
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sip = switchboard::bind_sip(&config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let sip_addr = sip.local_addr;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        switchboard::run(config, switchboard::Listeners { http, sip }, shutdown)
            .await
            .unwrap();
    });
    (sip_addr, stop, task)
}

/// Runs sipp calling `service` as `caller`, expecting `status`; true when sipp saw it.
async fn call_expecting(sip: SocketAddr, service: &str, caller: &str, status: u16) -> Option<bool> {
    call_offering(sip, service, caller, status, None).await
}

/// [`call_expecting`], with the SDP's connection address replaced by `media` when given.
async fn call_offering(
    sip: SocketAddr,
    service: &str,
    caller: &str,
    status: u16,
    media: Option<&str>,
) -> Option<bool> {
    let dir = tempfile::tempdir().unwrap();
    let mut template =
        std::fs::read_to_string(switchboard_e2e::scenario("uac_expect_final.xml")).unwrap();
    if let Some(address) = media {
        template = template.replace(
            "c=IN IP[media_ip_type] [media_ip]",
            &format!("c=IN IP4 {address}"),
        );
    }
    let scenario = template
        .replace("@CALLER@", caller)
        .replace("@STATUS@", &status.to_string());
    run_sipp(sip, service, &scenario, &dir).await
}

/// Runs sipp once on `scenario` (the XML) against the daemon; true when the call went as the
/// scenario expects.
async fn run_sipp(
    sip: SocketAddr,
    service: &str,
    scenario: &str,
    dir: &tempfile::TempDir,
) -> Option<bool> {
    let path = dir.path().join("scenario.xml");
    std::fs::write(&path, scenario).unwrap();
    let args: Vec<String> = [
        &format!("127.0.0.1:{}", sip.port()),
        "-sf",
        path.to_str().unwrap(),
        "-s",
        service,
        "-i",
        "127.0.0.1",
        "-m",
        "1",
        "-timeout",
        "30s",
        "-timeout_error",
        "-nostdin",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let peer = Peer::spawn("sipp", &args, dir.path())?;
    let (code, output) = peer.wait().await;
    if code != 0 {
        eprintln!("sipp exited {code}:\n{output}");
    }
    Some(code == 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrouted_numbers_get_404_and_blacklisted_callers_603() {
    let data = tempfile::tempdir().unwrap();
    let (sip, stop, task) = daemon(data.path(), &["127.0.0.1"]).await;
    let store = Store::open_sqlite(
        &data.path().join("switchboard.db"),
        switchboard::keys::data_key(data.path()).unwrap(),
    )
    .await
    .unwrap();
    let blocked = "+15550009999";
    store
        .add_to_blacklist(&BlacklistEntry {
            number: blocked.into(),
            reason: "abusive language".into(),
            source_call_id: None,
            added_by: "system".into(),
            added_at: UnixMillis::now(),
            expires_at: None,
            offences: 1,
        })
        .await
        .unwrap();

    let Some(ok) = call_expecting(sip, "nobody-here", "+15550001111", 404).await else {
        return;
    };
    assert!(ok, "an unrouted number is answered 404");
    let ok = call_expecting(sip, "demo", blocked, 603).await.unwrap();
    assert!(
        ok,
        "a blacklisted caller is declined with 603, even to a routed number"
    );

    stop.send(()).unwrap();
    task.await.unwrap();
    let reasons = store_reasons(&store).await;
    assert_eq!(
        reasons,
        [
            ("+15550001111".into(), "unrouted".into()),
            (blocked.into(), "blacklisted".into())
        ]
    );
}

async fn store_reasons(store: &Store) -> Vec<(String, String)> {
    // Through the public API: the calls are ordered by start time.
    let mut out = Vec::new();
    for id in store.recent_call_ids(10).await.unwrap().into_iter().rev() {
        let c = store.call(&id).await.unwrap().unwrap();
        out.push((
            c.from_number,
            c.end_reason.map_or_else(String::new, |r| r.to_string()),
        ));
    }
    out
}

/// Nothing listens openly by default: with no allow-list (and no `sip.allow_any`), an INVITE
/// from a source nobody listed is refused 403 before it reaches routing or the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlisted_source_is_refused_by_default() {
    let data = tempfile::tempdir().unwrap();
    let (sip, stop, task) = daemon(data.path(), &[]).await;
    let Some(ok) = call_expecting(sip, "demo", "+15550001111", 403).await else {
        return;
    };
    assert!(ok, "an INVITE from an unlisted source is answered 403");
    stop.send(()).unwrap();
    task.await.unwrap();
    let store = Store::open_sqlite(
        &data.path().join("switchboard.db"),
        switchboard::keys::data_key(data.path()).unwrap(),
    )
    .await
    .unwrap();
    assert!(store_reasons(&store).await.is_empty(), "no call record");
}

/// A caller's SDP may not aim the box's media at a multicast group, or at the box's own
/// loopback services from elsewhere: the call is refused (480) once the runtime sees the offer,
/// and its record says it could not be answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_aiming_media_at_a_forbidden_address_is_refused() {
    if models_api::testing::model_file("ggml-tiny.en.bin").is_none() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let (sip, stop, task) = daemon_with(data.path(), &["127.0.0.1"], |c| {
        c.models.dir = models_api::testing::models_dir();
    })
    .await;
    let Some(ok) = call_offering(sip, "demo", "+15550002222", 488, Some("224.0.0.5")).await else {
        return;
    };
    assert!(ok, "media aimed at a multicast group is refused");
    stop.send(()).unwrap();
    task.await.unwrap();
    let store = Store::open_sqlite(
        &data.path().join("switchboard.db"),
        switchboard::keys::data_key(data.path()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        store_reasons(&store).await,
        [("+15550002222".into(), "answer_failed".into())]
    );
}

/// `sip.srtp = "require"`: an offer of plain RTP is refused with 488, an offer of SRTP is answered
/// with SRTP under a key of the call's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srtp_required_refuses_plain_rtp_and_answers_srtp() {
    if models_api::testing::model_file("ggml-tiny.en.bin").is_none() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let (sip, stop, task) = daemon_with(data.path(), &["127.0.0.1"], |c| {
        c.models.dir = models_api::testing::models_dir();
        c.sip.srtp = config::SrtpMode::Require;
    })
    .await;
    let Some(refused) = call_expecting(sip, "demo", "+15550003333", 488).await else {
        return;
    };
    assert!(refused, "plain RTP refused with 488");
    let dir = tempfile::tempdir().unwrap();
    let scenario = std::fs::read_to_string(switchboard_e2e::scenario("uac_srtp.xml"))
        .unwrap()
        .replace("@CALLER@", "+15550004444");
    let answered = run_sipp(sip, "demo", &scenario, &dir).await.unwrap();
    assert!(
        answered,
        "SRTP offer answered with RTP/SAVP and our own key"
    );
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// INVITE `n` to `demo` from `from` (our UDP socket), with a small SDP.
fn flood_invite(sip: SocketAddr, from: SocketAddr, n: usize) -> Vec<u8> {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 40000 RTP/AVP 0\r\n";
    format!(
        "INVITE sip:demo@{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-flood-{n}\r\n\
         From: <sip:+1555010{n:04}@127.0.0.1>;tag=flood{n}\r\n\
         To: <sip:demo@{sip}>\r\n\
         Call-ID: flood-{n}@admission.test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{from}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
    .into_bytes()
}

/// Final responses (status ≥ 200) per Call-ID, read from `socket` until `until` or until there
/// are `want`; responses to `ignore` are left out.
async fn final_responses(
    socket: &tokio::net::UdpSocket,
    until: tokio::time::Instant,
    into: &mut std::collections::HashMap<String, u16>,
    (want, ignore): (usize, &str),
) {
    let mut buf = vec![0u8; 4096];
    while into.len() < want {
        let Ok(Ok((len, _))) = tokio::time::timeout_at(until, socket.recv_from(&mut buf)).await
        else {
            return;
        };
        let text = String::from_utf8_lossy(&buf[..len]);
        let status: u16 = text.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0);
        let call_id = text
            .lines()
            .find_map(|l| l.strip_prefix("Call-ID: "))
            .unwrap_or_default()
            .to_owned();
        if status >= 200 && call_id != ignore {
            into.entry(call_id).or_insert(status);
        }
    }
}

/// A database stuck behind a lock holds up only the calls being admitted: INVITEs beyond what
/// may be admitted at once are answered 503 with Retry-After straight away, before any database
/// work, and once the database is free every held call gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_database_holds_up_only_the_calls_being_admitted() {
    let data = tempfile::tempdir().unwrap();
    let (sip, stop, task) = daemon(data.path(), &["127.0.0.1"]).await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = socket.local_addr().unwrap();
    let mut answers = std::collections::HashMap::new();
    // The daemon is up once a first call has its answer (no models: 480).
    for _ in 0..50 {
        socket
            .send_to(&flood_invite(sip, me, 0), sip)
            .await
            .unwrap();
        let until = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
        final_responses(&socket, until, &mut answers, (1, "")).await;
        if !answers.is_empty() {
            break;
        }
    }
    assert_eq!(answers.len(), 1, "the daemon answers");
    answers.clear();

    let store = Store::open_sqlite(
        &data.path().join("switchboard.db"),
        switchboard::keys::data_key(data.path()).unwrap(),
    )
    .await
    .unwrap();
    let mut lock = store.pool().acquire().await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let flood = 80;
    for n in 1..=flood {
        socket
            .send_to(&flood_invite(sip, me, n), sip)
            .await
            .unwrap();
    }
    // The first call's answer is retransmitted until acknowledged (Timer G): not one of these.
    let first = "flood-0@admission.test";
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
    final_responses(&socket, until, &mut answers, (usize::MAX, first)).await;
    let busy = answers.values().filter(|&&s| s == 503).count();
    assert_eq!(
        (busy, answers.len()),
        (flood - 64, flood - 64),
        "only the INVITEs beyond the 64 being admitted are answered while the database is stuck: {answers:?}"
    );
    sqlx::query("ROLLBACK").execute(&mut *lock).await.unwrap();
    drop(lock);
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    final_responses(&socket, until, &mut answers, (flood, first)).await;
    assert_eq!(
        answers.len(),
        flood,
        "every held call answered once the database is free"
    );
    // (Most of them 503 again, now for the box's call limit: no models here, max_concurrent 2.)
    store.close().await;
    stop.send(()).unwrap();
    task.await.unwrap();
}
