//! The box talks to nobody but its configured peers: no library's telemetry, no lookups. The
//! real daemon binary runs under `strace` through start-up, a call (greeting, a spoken question,
//! the reply) and shut-down, on the example configuration with every address on loopback; each
//! `connect`, `sendto`, `sendmsg` and `sendmmsg` to an IP address must then be to loopback.
//!
//! The same call checks the other way personal data leaves its place: the daemon's log (the
//! journal, read by whoever administers the box) holds neither the caller's number nor their
//! words; those belong in the call record, behind the API's roles.
//!
//! ONNX Runtime's 1DS telemetry, on by default since 1.29, failed this: it asked DNS for
//! mobile.events.data.microsoft.com at start-up.
//!
//! Not covered: Unix sockets. espeak-ng's audio library probes a local PulseAudio socket at
//! start even when it only prints phonemes (a file on this box, not the network); the service
//! unit's address-family restrictions deny it on an installed box.

#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use models_api::testing::{model_file, models_dir};
use switchboard_e2e::{free_port, installed, read_wav, rms, Ua, UaEvent, UaOptions};

const SPEECH_RMS: f64 = 300.0;
/// The caller's number and words: neither may reach a log line.
const CALLER: &str = "+15550109876";
const QUESTION: &str = "What are your opening hours?";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_reaches_no_address_but_loopback() {
    if model_file("ggml-tiny.en.bin").is_none() || !installed("strace") {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let (sip_port, http_port) = (free_port(), free_port());
    let config = dir.path().join("switchboard.toml");
    std::fs::write(
        &config,
        loopback_config(&repo, dir.path(), sip_port, http_port),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_switchboard");

    let question = dir.path().join("question.wav");
    let status = daemon_command(bin, &config, &repo)
        .args(["say", QUESTION, "--rate", "8000", "-o"])
        .arg(&question)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "switchboard say");
    let (question, _) = read_wav(&question);

    let trace = dir.path().join("trace.txt");
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let mut strace = without_overrides(&mut Command::new("strace"))
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=connect,sendto,sendmsg,sendmmsg",
            "-o",
        ])
        .arg(&trace)
        .arg(bin)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        // The example lists no PBX; the test's caller on loopback stands in for one.
        .env("SWITCHBOARD_SIP_ALLOW", "[\"127.0.0.1\"]")
        // Every level: a number logged at debug is as leaked as one at info.
        .env("RUST_LOG", "debug")
        .current_dir(&repo)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_healthy(http_port).await;

    let mut ua = Ua::start(UaOptions {
        caller: CALLER.into(),
        ..UaOptions::default()
    })
    .await;
    ua.call(&format!("sip:demo@127.0.0.1:{sip_port}")).await;
    let call = ua
        .expect("the agent to answer", |e| match e {
            UaEvent::Answered(c) => Some(*c),
            UaEvent::Failed { status, .. } => panic!("call failed: {status}"),
            _ => None,
        })
        .await;
    speech(&mut ua).await; // the greeting
    let spoken = Duration::from_secs_f64(question.len() as f64 / 8000.0);
    ua.play(call, question);
    tokio::time::sleep(spoken).await;
    speech(&mut ua).await; // the reply: whisper, the LLM and Piper have all run
    ua.sip.hangup(call).await.unwrap();

    let daemon = child_of(strace.id());
    let killed = Command::new("kill")
        .args(["-TERM", &daemon.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while strace.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the daemon did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let text = std::fs::read_to_string(&trace).unwrap();
    let addresses: Vec<(IpAddr, &str)> = text
        .lines()
        .flat_map(|line| ip_addresses(line).into_iter().map(move |ip| (ip, line)))
        .collect();
    // The call's own RTP and SIP went to the caller on loopback: proof the trace saw sends.
    assert!(
        addresses
            .iter()
            .any(|(ip, l)| ip.is_loopback() && l.contains("send")),
        "strace recorded no send to the caller; is tracing allowed here?\n{text}"
    );
    let foreign: Vec<&str> = addresses
        .iter()
        .filter(|(ip, _)| !ip.to_canonical().is_loopback() && !ip.is_unspecified())
        .map(|(_, line)| *line)
        .collect();
    assert!(
        foreign.is_empty(),
        "the daemon reached addresses beyond loopback:\n{}",
        foreign.join("\n")
    );

    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap();
    assert!(
        log.contains("call admitted"),
        "the log was captured:\n{log}"
    );
    let digits = &CALLER[1..];
    let leaks: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(digits) || l.to_lowercase().contains("opening hours"))
        .collect();
    assert!(
        leaks.is_empty(),
        "personal data in the log:\n{}",
        leaks.join("\n")
    );
}

/// The example configuration with every listener on loopback and the data in `data`.
fn loopback_config(repo: &Path, data: &Path, sip_port: u16, http_port: u16) -> String {
    let example = std::fs::read_to_string(repo.join("packaging/switchboard.example.toml")).unwrap();
    let replace = |text: String, from: &str, to: &str| {
        assert!(
            text.contains(from),
            "the example config no longer has {from:?}"
        );
        text.replacen(from, to, 1)
    };
    let text = replace(
        example,
        "data_dir = \"var\"",
        &format!("data_dir = {:?}", data.join("var")),
    );
    let text = replace(
        text,
        "listen = \"127.0.0.1:8080\"",
        &format!("listen = \"127.0.0.1:{http_port}\""),
    );
    let text = replace(
        text,
        "listen = \"0.0.0.0:5060\"",
        &format!("listen = \"127.0.0.1:{sip_port}\""),
    );
    replace(
        text,
        "dir = \"var/models\"",
        &format!("dir = {:?}", models_dir()),
    )
}

/// `switchboard --config FILE` run from the repository (the example's knowledge paths are
/// relative to it).
fn daemon_command(bin: &str, config: &Path, repo: &Path) -> Command {
    let mut c = Command::new(bin);
    without_overrides(&mut c)
        .arg("--config")
        .arg(config)
        .current_dir(repo);
    c
}

/// `command` without the test environment's SWITCHBOARD_* overrides: the file says it all.
fn without_overrides(command: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        command.env_remove(k);
    }
    command
}

/// Waits until the agent has spoken and then been quiet for a second.
async fn speech(ua: &mut Ua) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut spoke, mut quiet_since) = (false, Instant::now());
    while Instant::now() < deadline {
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(1), ua.next()).await else {
            continue;
        };
        match event {
            UaEvent::Audio { frame, .. } if rms(&frame) > SPEECH_RMS => {
                spoke = true;
                quiet_since = Instant::now();
            }
            UaEvent::Audio { .. } if spoke && quiet_since.elapsed() > Duration::from_secs(1) => {
                return;
            }
            UaEvent::Ended { .. } => panic!("the agent hung up"),
            _ => {}
        }
    }
    panic!("the agent did not speak");
}

async fn wait_healthy(http_port: u16) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while tokio::net::TcpStream::connect(("127.0.0.1", http_port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the daemon never served HTTP");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The process strace started (its only child).
fn child_of(pid: u32) -> u32 {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("strace has a child")
}

/// The IP addresses in one line of strace output (`inet_addr("…")`, `inet_pton(AF_INET6, "…"`).
fn ip_addresses(line: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for marker in ["inet_addr(\"", "inet_pton(AF_INET6, \""] {
        let mut rest = line;
        while let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            if let Some(end) = rest.find('"') {
                if let Ok(ip) = rest[..end].parse() {
                    out.push(ip);
                }
                rest = &rest[end..];
            }
        }
    }
    out
}

#[test]
fn strace_addresses_are_read() {
    let line = r#"9395  connect(25, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = 0"#;
    assert_eq!(
        ip_addresses(line),
        ["10.255.255.53".parse::<IpAddr>().unwrap()]
    );
    let line = r#"12 sendto(5, "x", 1, 0, {sa_family=AF_INET6, sin6_port=htons(5060), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 1"#;
    assert_eq!(ip_addresses(line), ["::1".parse::<IpAddr>().unwrap()]);
}
