//! CPU per call for N concurrent media-only calls over loopback.
//!
//! Each call is two `RtpSession`s: a caller that plays a tone, and the
//! agent leg under test, whose decoded frames the "application" pushes
//! straight back out (RTP in → SourceState → jitter buffer → G.711 decode →
//! app → G.711 encode → paced RTP out). Process CPU time (utime + stime from
//! /proc/self/stat) over the measurement window is divided by the number of
//! calls; both legs are counted, so the per-call figure is an upper bound for
//! the agent leg alone (about half of it).
//!
//! Run: `cargo bench -p media-net --bench media_calls -- [calls] [seconds] [srtp]`
//! (defaults 50 calls, 10 s, plain RTP; `srtp` keys both legs with AES_CM_128_HMAC_SHA1_80).
#![allow(clippy::unwrap_used)] // reason: a bench binary; a panic is its error report

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media_net::{Law, MasterKey, MediaEvent, PortPool, RtpConfig, RtpSession};
use media_rtp::srtp::{Keying, Suite};

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let calls: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(50);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let srtp = args.get(2).is_some_and(|a| a == "srtp");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(calls, Duration::from_secs(seconds), srtp));
}

/// Keys for one leg: `ours` seals what it sends, the other leg's opens what it receives.
fn keying(srtp: bool, ours: u8, theirs: u8) -> Option<Keying> {
    srtp.then(|| Keying {
        suite: Suite::AesCm128HmacSha1_80,
        ours: MasterKey::new([ours; 30]),
        theirs: MasterKey::new([theirs; 30]),
    })
}

async fn run(calls: usize, window: Duration, srtp: bool) {
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 40000, 49999, false).unwrap();
    let tone: Vec<i16> = (0..8000 * 120)
        .map(|n| (6000.0 * (2.0 * std::f64::consts::PI * 440.0 * n as f64 / 8000.0).sin()) as i16)
        .collect();
    let mut keep = Vec::new();
    let mut counters = Vec::new();
    for i in 0..calls {
        let a = pool.allocate().expect("port");
        let b = pool.allocate().expect("port");
        let a_port = a.port();
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let mut config = RtpConfig::new(Law::Mu, Some(addr(b.port())), 2 * i as u64);
        config.srtp = keying(srtp, 1, 2);
        let caller = RtpSession::spawn(a, config, 100);
        caller.handle.push_audio(tone.clone()).unwrap();
        let mut config = RtpConfig::new(Law::Mu, Some(addr(a_port)), 2 * i as u64 + 1);
        config.srtp = keying(srtp, 2, 1);
        let mut agent = RtpSession::spawn(b, config, 100);
        let echo = agent.handle.clone();
        let stats = agent.handle.clone();
        tokio::spawn(async move {
            while let Some(event) = agent.events.recv().await {
                if let MediaEvent::Audio(frame) = event {
                    let _ = echo.push_audio(frame);
                }
            }
        });
        // The caller's frames are drained and dropped.
        let mut caller = caller;
        let caller_handle = caller.handle.clone();
        tokio::spawn(async move { while caller.events.recv().await.is_some() {} });
        counters.push(stats);
        keep.push(caller_handle);
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // warm-up: jitter buffers fill
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    tokio::time::sleep(window).await;
    let (cpu1, wall) = (cpu_seconds(), wall0.elapsed());
    let mut delivered = 0;
    let mut sent = 0;
    for s in &counters {
        let st = s.stats().await.unwrap();
        delivered += st.frames_delivered;
        sent += st.packets_sent;
    }
    let core = (cpu1 - cpu0) / wall.as_secs_f64();
    println!(
        "media_calls: {calls} calls (2 {} sessions each), {:.1} s window",
        if srtp { "SRTP" } else { "RTP" },
        wall.as_secs_f64()
    );
    println!("  process CPU: {:.1} % of one core", core * 100.0);
    println!(
        "  per call (both legs): {:.3} % of a core",
        core * 100.0 / calls as f64
    );
    println!(
        "  per agent leg (half): {:.3} % of a core",
        core * 50.0 / calls as f64
    );
    println!("  agent legs: {delivered} frames decoded, {sent} packets sent in total");
}
