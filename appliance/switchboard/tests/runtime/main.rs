//! The call runtime's behaviours on scripted engines, in virtual time: a call goes through the
//! real SIP and RTP stacks on 127.0.0.1 and a real SQLite store, but whisper, the LLM and the
//! voice are the fakes of `fakes.rs`, which answer at once and log what they were asked. The
//! clock is tokio's paused one, paced to at most five times real time (`pace_the_clock`): a
//! ten-second call takes about two, and timeouts are reached without waiting for them. What the
//! real models say is tested in `calls.rs`.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

mod fakes;
mod outbound;

use fakes::{vowel, FakeModels, Log, Reply, Script, SENTENCE};
use sip_net::CallHandle;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use switchboard::capacity::Capacity;
use switchboard::config::{self, AgentConfig, Config, ConsentSetting};
use switchboard::runtime::prompts;
use switchboard::runtime::Runtime;
use switchboard::telephony::{self, Admission};
use switchboard_call::Prompt;
use switchboard_e2e::{Ua, UaEvent, UaOptions};
use switchboard_store::{
    Agent, AgentId, CallRecord, CallRecordId, Consent, DataKey, EndReason, Speaker, Store, Turn,
};
use tokio::time::sleep;

/// The agent's words the fakes render (the voice says 80 ms a word).
const GREETING: &str = "Hello, you have reached the front desk.";

/// The daemon's call path on fake engines, and a caller.
struct Line {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    ua: Ua,
    target: String,
    store: Store,
    log: Arc<Log>,
    /// What an outbound test needs to start a dialer on the same runtime.
    outbound: Outbound,
    _dir: tempfile::TempDir,
}

struct Outbound {
    config: Config,
    runtime: Arc<Runtime<FakeModels>>,
    capacity: Arc<Capacity>,
    lines: telephony::Lines,
    sip: sip_net::SipHandle,
}

impl Line {
    async fn start(script: Arc<Script>) -> Line {
        Line::start_with(script, |_| {}).await
    }

    async fn start_with(script: Arc<Script>, tune: impl FnOnce(&mut Config)) -> Line {
        let serial = SERIAL.lock().await;
        switchboard_e2e::init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let mut config = config::load(None, []).unwrap();
        config.data_dir = dir.path().join("data");
        config.sip.listen = "127.0.0.1:0".parse().unwrap();
        config.calls.rtp_ports = "22000-22999".parse().unwrap();
        config.sip.allow = vec!["127.0.0.1".parse().unwrap()];
        config.agents = vec![AgentConfig {
            name: "desk".into(),
            numbers: vec!["1000".into()],
            greeting: GREETING.into(),
            prompt: Some("You answer the phone for a shop.".into()),
            prompt_file: None,
            knowledge: Vec::new(),
            consent: ConsentSetting::Off,
            transfer_to: None,
            language: "en".into(),
            voice: "fake".into(),
            profanity_extra: Vec::new(),
            transfer_topics: Vec::new(),
            answers: Default::default(),
            retention: Default::default(),
        }];
        tune(&mut config);
        let store = Store::open_sqlite(&dir.path().join("calls.db"), DataKey::random())
            .await
            .unwrap();
        store
            .upsert_agent(&Agent {
                id: AgentId::new(),
                name: "desk".into(),
                numbers: vec!["1000".into()],
                greeting: GREETING.into(),
                prompt: "You answer the phone for a shop.".into(),
                consent: Consent::Off,
                transfer_to: None,
                language: "en".into(),
                voice: "fake".into(),
            })
            .await
            .unwrap();
        let log = Arc::new(Log::default());
        let models = Arc::new(FakeModels::new(script, Arc::clone(&log)));
        let sip = switchboard::bind_sip(&config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let target = format!("sip:1000@{}", sip.local_addr);
        let capacity = Capacity::new(4, None);
        let runtime = Runtime::start(
            &config,
            store.clone(),
            sip.handle.clone(),
            models,
            Arc::clone(&capacity),
        )
        .await
        .unwrap();
        let admission = Admission::new(
            store.clone(),
            Arc::clone(&capacity),
            "test",
            sip_net::AllowList::any(),
        );
        let runtime = Arc::new(runtime);
        let (lines, dials) = telephony::Lines::new();
        let outbound = Outbound {
            config: config.clone(),
            runtime: Arc::clone(&runtime),
            capacity,
            lines,
            sip: sip.handle.clone(),
        };
        tokio::spawn(telephony::serve(
            sip,
            admission,
            store.clone(),
            Some(runtime),
            dials,
        ));
        let ua = Ua::start(UaOptions {
            rtp_ports: (23000, 23999),
            ..UaOptions::default()
        })
        .await;
        // From here the clock is virtual. Not before: opening the store waits on its own
        // thread, and a paused clock with no call's timers would jump to the pool's timeout.
        tokio::time::pause();
        tokio::spawn(pace_the_clock());
        Line {
            _serial: serial,
            ua,
            target,
            store,
            log,
            outbound,
            _dir: dir,
        }
    }

    /// Calls the agent and waits out the greeting.
    async fn call(&mut self) -> CallHandle {
        let call = self.ua.call(&self.target).await;
        self.ua
            .expect("the answer", |e| {
                matches!(e, UaEvent::Answered(c) if *c == call).then_some(())
            })
            .await;
        sleep(Duration::from_secs(2)).await;
        call
    }

    /// The caller says the first `words` of [`SENTENCE`] (300 ms each), then is silent for
    /// `then`.
    fn say(&self, call: CallHandle, words: usize, then: Duration) {
        let mut audio = vowel(Duration::from_millis(300 * words as u64), 8000, 120.0);
        audio.extend(std::iter::repeat_n(0, (then.as_millis() * 8) as usize));
        self.ua.play(call, audio);
    }

    async fn hang_up(&mut self, call: CallHandle) -> CallRecord {
        self.ua.sip.hangup(call).await.unwrap();
        self.finished().await
    }

    /// The call's record, once closed.
    async fn finished(&self) -> CallRecord {
        for _ in 0..600 {
            if let Some(id) = self.store.recent_call_ids(1).await.unwrap().first() {
                let call = self.store.call(id).await.unwrap().unwrap();
                if call.ended_at.is_some() {
                    return call;
                }
            }
            sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the call record was never closed; engines did: {:?}",
            self.log.entries()
        );
    }

    async fn turns(&self, id: &CallRecordId) -> Vec<Turn> {
        self.store.turns(id).await.unwrap()
    }

    /// Waits for the call to end after the fallback line, the way an engine failure ends it;
    /// returns what the agent said.
    async fn ended_with_the_fallback(&self) -> Vec<String> {
        let record = self.finished().await;
        assert_eq!(record.end_reason, Some(EndReason::EngineFailure));
        let lines = self.agent_lines(&record.id).await;
        assert_eq!(lines.last().unwrap(), prompts::text(Prompt::Fallback, ""));
        lines
    }

    /// What the agent said, as the transcript holds it.
    async fn agent_lines(&self, id: &CallRecordId) -> Vec<String> {
        self.store
            .transcript(id)
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l.speaker == Speaker::Agent)
            .map(|l| l.text)
            .collect()
    }
}

/// Lets virtual time run at most five times as fast as real time. A paused clock jumps to the
/// next timer whenever every task waits, including while SQLite's thread is still writing or a
/// fake engine's thread is still answering; paced, a millisecond of such real work costs at most
/// five of virtual time, well inside every deadline the tests rely on. (A blocking task holds
/// the paused clock still while it runs.)
async fn pace_the_clock() {
    loop {
        sleep(Duration::from_millis(10)).await;
        let _ = tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(2))).await;
    }
}

/// One call at a time: the pacing above assumes the box is not shared with other calls' work.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn reply(pieces: &[&'static str]) -> Reply {
    Reply::Say(pieces.to_vec())
}

#[tokio::test]
async fn a_question_is_answered_and_recorded() {
    let script = Script::replies([reply(&["We are", " open", " every", " weekday."])]);
    let mut line = Line::start(script).await;
    let call = line.call().await;
    line.say(call, 8, Duration::from_secs(3));
    sleep(Duration::from_secs(6)).await;
    let record = line.hang_up(call).await;
    assert_eq!(record.end_reason, Some(EndReason::CallerHungUp));
    let turns = line.turns(&record.id).await;
    assert_eq!(turns.len(), 1, "{turns:?}");
    assert_eq!(turns[0].caller_text, SENTENCE.join(" "));
    assert_eq!(turns[0].agent_text, "We are open every weekday.");
    assert!(!turns[0].interrupted);
    let v2v = turns[0].timings.voice_to_voice_ms.unwrap();
    assert!(v2v > 0 && v2v < 2000, "voice to voice {v2v} ms");
    assert_eq!(
        line.agent_lines(&record.id).await,
        [GREETING, "We are open every weekday."]
    );
}

/// A re-offer aiming the box's media at a multicast group is refused with 488, and the call
/// goes on: the next question is answered.
#[tokio::test]
async fn a_reoffer_aiming_media_at_a_forbidden_address_is_refused() {
    let script = Script::replies([reply(&["Still", " here."])]);
    let mut line = Line::start(script).await;
    let call = line.call().await;
    let reoffer = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 224.0.0.251\r\nt=0 0\r\n\
                   m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";
    line.ua.sip.reoffer(call, reoffer.into()).await.unwrap();
    let status = line
        .ua
        .expect("the re-offer's refusal", |e| match e {
            UaEvent::ReofferFailed { call: c, status } if *c == call => Some(*status),
            _ => None,
        })
        .await;
    assert_eq!(status, 488);
    line.say(call, 8, Duration::from_secs(3));
    sleep(Duration::from_secs(6)).await;
    let record = line.hang_up(call).await;
    assert_eq!(record.end_reason, Some(EndReason::CallerHungUp));
    assert_eq!(line.turns(&record.id).await[0].agent_text, "Still here.");
}

#[tokio::test]
async fn the_transcript_taken_at_the_pause_is_reused() {
    let mut line = Line::start(Script::replies([])).await;
    let call = line.call().await;
    line.say(call, 8, Duration::from_secs(3));
    sleep(Duration::from_secs(6)).await;
    let record = line.hang_up(call).await;
    // Whisper ran as the caller spoke and paused, and the reply's prefill ran on each
    // transcript; the end of the turn took the last one rather than transcribing the same
    // audio again, so the reply followed that prefill directly.
    let entries = line.log.entries();
    let reply = line.log.position("asked: ").unwrap();
    let whole = SENTENCE.join(" ");
    assert_eq!(
        entries[reply - 1],
        format!("prefill: {whole}"),
        "{entries:?}"
    );
    assert_eq!(entries[reply - 2], format!("stt: {whole}"), "{entries:?}");
    assert!(
        line.log.of("stt: ").len() > 1,
        "no transcript before the end: {entries:?}"
    );
    let turns = line.turns(&record.id).await;
    assert_eq!(turns[0].timings.stt_ms, Some(0), "{turns:?}");
    assert_eq!(turns[0].caller_text, whole);
}

#[tokio::test]
async fn the_llm_holds_off_until_the_first_audio_is_out() {
    let pieces = [
        "Yes", ",", " we", " are", " open", " today", ",", " from", " morning", " to", " evening",
        " and", " on", " most", " days", ".",
    ];
    let mut line = Line::start(Script::replies([reply(&pieces)])).await;
    let call = line.call().await;
    line.say(call, 8, Duration::from_secs(3));
    sleep(Duration::from_secs(8)).await;
    let record = line.hang_up(call).await;
    // Unchecked, the LLM streams every piece before the voice has rendered the first clause
    // (both want every core of a small box, and the caller waits for that first audio).
    let first_audio = line.log.position("tts: Yes").unwrap();
    let last_piece = line.log.position("llm:  days").unwrap();
    assert!(first_audio < last_piece, "{:?}", line.log.entries());
    let turns = line.turns(&record.id).await;
    assert_eq!(
        turns[0].agent_text,
        "Yes, we are open today, from morning to evening and on most days."
    );
}

#[tokio::test]
async fn a_failed_reply_gets_the_fallback_line_and_a_polite_end() {
    let mut line = Line::start(Script::replies([Reply::Fail])).await;
    let call = line.call().await;
    line.say(call, 8, Duration::from_secs(3));
    line.ended_with_the_fallback().await;
}

#[tokio::test]
async fn a_failed_transcription_gets_the_fallback_line() {
    let script = Script::replies([]);
    script.stt_fails.store(true, Ordering::SeqCst);
    let mut line = Line::start(script).await;
    let call = line.call().await;
    line.say(call, 8, Duration::from_secs(3));
    let lines = line.ended_with_the_fallback().await;
    assert_eq!(lines, [GREETING, prompts::text(Prompt::Fallback, "")]);
    assert!(line.log.of("llm: ").is_empty(), "{:?}", line.log.entries());
}

#[tokio::test]
async fn a_silent_llm_is_given_up_after_the_engine_timeout() {
    let script = Script::replies([Reply::Hang]);
    let mut line =
        Line::start_with(Arc::clone(&script), |c| c.calls.engine_timeout_ms = 3000).await;
    let call = line.call().await;
    line.say(call, 8, Duration::from_secs(3));
    tokio::time::timeout(Duration::from_secs(30), script.hanging.notified())
        .await
        .expect("the reply started");
    // The hanging engine holds the paused clock still; the test moves it past the timeout.
    let started = tokio::time::Instant::now();
    while line.log.of("llm cancelled").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            line.log.entries()
        );
        tokio::time::advance(Duration::from_millis(100)).await;
        // Real time for the engine's thread to see a cancellation, the clock held still.
        let _ = tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(2))).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(2900),
        "gave up after {:?}",
        started.elapsed()
    );
    line.ended_with_the_fallback().await;
}

#[tokio::test]
async fn a_caller_who_talks_over_the_reply_stops_it_and_the_history_keeps_what_they_heard() {
    let long = [
        "Thank you for asking about that,",
        " and I will be glad to help you with it.",
        " Let me explain how it usually works here,",
        " step by step and slowly,",
        " so that nothing gets lost along the way.",
        " It is simpler than it sounds.",
    ];
    let script = Script::replies([reply(&long), reply(&["Of course."])]);
    let mut line = Line::start(script).await;
    let call = line.call().await;
    line.say(call, 8, Duration::from_millis(1500));
    line.say(call, 4, Duration::from_secs(3));
    sleep(Duration::from_secs(10)).await;
    let record = line.hang_up(call).await;
    let turns = line.turns(&record.id).await;
    assert_eq!(turns.len(), 2, "{turns:?}");
    let heard = &turns[0].agent_text;
    assert!(turns[0].interrupted, "{turns:?}");
    let whole: String = long.concat();
    assert!(
        !heard.is_empty() && heard.len() < whole.len() && whole.starts_with(heard.as_str()),
        "heard {heard:?} of {whole:?}"
    );
    assert_eq!(turns[1].caller_text, SENTENCE[..4].join(" "));
    assert_eq!(turns[1].agent_text, "Of course.");
    // The second reply was asked for after what the caller heard, not after the whole draft.
    let after = line.log.of("after: ");
    assert_eq!(
        after.last().unwrap(),
        &format!("after: {heard}"),
        "{:?}",
        line.log.entries()
    );
}

#[tokio::test]
async fn a_caller_who_gives_up_while_being_admitted_leaves_a_closed_record() {
    let mut line = Line::start(Script::replies([])).await;
    let call = line.ua.call(&line.target).await;
    // CANCEL at once: the INVITE is still being admitted, or just answered.
    line.ua.sip.hangup(call).await.unwrap();
    let record = line.finished().await;
    assert!(
        matches!(record.end_reason, Some(EndReason::CallerHungUp)),
        "{record:?}"
    );
    // Nothing of it is left running: the next call is answered and heard.
    let call = line.call().await;
    line.say(call, 8, Duration::from_secs(3));
    sleep(Duration::from_secs(6)).await;
    let record = line.hang_up(call).await;
    assert_eq!(line.turns(&record.id).await.len(), 1);
}
