//! The latency harness: voice-to-voice latency measured from outside, as a caller hears it.
//!
//! A SIP caller (our UA) rings an agent, waits for the greeting to end, then asks questions:
//! for each turn it notes when the last sample of its question left and when the first packet
//! of reply speech arrived. That gap is what a caller waits. Run against a running daemon:
//!
//! ```text
//! switchboard serve &                      # README command 1
//! cargo run --release -p switchboard-e2e --bin latency -- sip:demo@127.0.0.1:5060 \
//!     --turns 20 --calls 1 --switchboard target/release/switchboard
//! ```
//! Questions are rendered with `switchboard say` (Piper, 8 kHz). With `--calls K`, K callers
//! talk at once: the p95 that still holds says how many calls this box can carry. They ask the
//! same questions in lock-step, the worst case; `--stagger MS` starts caller k k×MS later, on
//! question k, as callers on a real line would. The per-stage
//! breakdown (endpointing, STT, LLM first token, TTS first audio) is in the daemon's turn
//! records (`calls` and `call_turns` tables) and its `switchboard_voice_to_voice_seconds` metric.
#![allow(clippy::unwrap_used)] // reason: a measuring tool; a failure aborts the run with its message

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use switchboard_e2e::{read_wav, rms, Ua, UaEvent, UaOptions};

const QUESTIONS: [&str; 10] = [
    "What are your opening hours on Saturday?",
    "How much is a check-up and cleaning?",
    "Do you take Cigna insurance?",
    "Where can I park?",
    "How much does teeth whitening cost?",
    "Are you open on Sunday?",
    "What should new patients bring?",
    "How much is an emergency visit?",
    "What is your cancellation policy?",
    "Which dentists work there?",
];
/// A frame louder than this carries speech (line silence is digital zero or near it).
const SPEECH_RMS: f64 = 300.0;
/// Quiet that ends the agent's turn.
const END_OF_REPLY: Duration = Duration::from_millis(1500);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = args.first().cloned().unwrap_or_else(|| {
        eprintln!(
            "usage: latency SIP-URI [--turns N] [--calls K] [--stagger MS] [--switchboard PATH]"
        );
        std::process::exit(2);
    });
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let turns: usize = flag("--turns").map_or(20, |v| v.parse().unwrap());
    let calls: usize = flag("--calls").map_or(1, |v| v.parse().unwrap());
    let stagger = Duration::from_millis(flag("--stagger").map_or(0, |v| v.parse().unwrap()));
    let switchboard = flag("--switchboard").map_or_else(
        || {
            std::env::current_exe()
                .unwrap()
                .with_file_name("switchboard")
        },
        PathBuf::from,
    );
    let dir = tempfile::tempdir().unwrap();
    let questions: Vec<Vec<i16>> = QUESTIONS
        .iter()
        .enumerate()
        .map(|(i, q)| render(&switchboard, q, &dir.path().join(format!("q{i}.wav"))))
        .collect();

    let mut callers = Vec::new();
    for k in 0..calls {
        let (target, questions) = (target.clone(), questions.clone());
        callers.push(tokio::spawn(async move {
            if !stagger.is_zero() {
                tokio::time::sleep(stagger * k as u32).await;
            }
            let (turns, skip) = (turns.div_ceil(calls), if stagger.is_zero() { 0 } else { k });
            caller(k, &target, &questions[..], skip, turns).await
        }));
    }
    let mut gaps = Vec::new();
    for c in callers {
        gaps.extend(c.await.unwrap());
    }
    gaps.sort();
    let pct = |p: f64| gaps[((gaps.len() - 1) as f64 * p).round() as usize];
    println!(
        "voice-to-voice over {} turns, {calls} concurrent call(s): p50 {} ms, p95 {} ms, min {} ms, max {} ms",
        gaps.len(),
        pct(0.5).as_millis(),
        pct(0.95).as_millis(),
        gaps[0].as_millis(),
        gaps[gaps.len() - 1].as_millis()
    );
}

/// One caller: a call of `turns` questions. Returns each turn's gap.
async fn caller(
    k: usize,
    target: &str,
    questions: &[Vec<i16>],
    skip: usize,
    turns: usize,
) -> Vec<Duration> {
    let first = 40000 + 200 * k as u16;
    let mut ua = Ua::start(UaOptions {
        rtp_ports: (first, first + 199),
        ..UaOptions::default()
    })
    .await;
    ua.call(target).await;
    let call = ua
        .expect("the agent to answer", |e| match e {
            UaEvent::Answered(c) => Some(*c),
            UaEvent::Failed { status, .. } => panic!("call failed: {status}"),
            _ => None,
        })
        .await;
    wait_for_reply_end(&mut ua).await;
    let mut gaps = Vec::new();
    for (turn, question) in questions.iter().cycle().skip(skip).take(turns).enumerate() {
        let spoken = Duration::from_secs_f64(question.len() as f64 / 8000.0);
        ua.play(call, question.clone());
        let ended = Instant::now() + spoken;
        let heard = ua
            .expect("reply speech", |e| match e {
                UaEvent::Audio { frame, .. }
                    if Instant::now() > ended && rms(frame) > SPEECH_RMS =>
                {
                    Some(Instant::now())
                }
                UaEvent::Ended { .. } => panic!("the agent hung up"),
                _ => None,
            })
            .await;
        let gap = heard - ended;
        println!("caller {k} turn {turn}: {} ms", gap.as_millis());
        gaps.push(gap);
        wait_for_reply_end(&mut ua).await;
    }
    ua.sip.hangup(call).await.unwrap();
    gaps
}

async fn wait_for_reply_end(ua: &mut Ua) {
    let (mut spoke, mut quiet_since) = (false, Instant::now());
    ua.expect("the agent to finish speaking", |e| match e {
        UaEvent::Audio { frame, .. } => {
            if rms(frame) > SPEECH_RMS {
                spoke = true;
                quiet_since = Instant::now();
            }
            (spoke && quiet_since.elapsed() >= END_OF_REPLY).then_some(())
        }
        _ => None,
    })
    .await;
}

/// The question as 8 kHz audio, rendered by `switchboard say`.
fn render(switchboard: &Path, text: &str, out: &Path) -> Vec<i16> {
    let status = std::process::Command::new(switchboard)
        .args(["say", text, "--rate", "8000", "-o"])
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", switchboard.display()));
    assert!(status.success(), "switchboard say failed for {text:?}");
    let (samples, rate) = read_wav(out);
    assert_eq!(rate, 8000);
    samples
}
