//! Callers talk to agents on the real small models: the daemon runs in-process on 127.0.0.1 with
//! a real SQLite database, callers are our test UA (sip-net + media-net, scripted audio made with
//! Piper) and baresip, and what the caller heard is transcribed with whisper and checked.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use models_api::testing::{model_file, models_dir};
use models_api::{AudioContext, CancelToken, Stt, SttOptions, Tts, TtsOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use switchboard::config::{self, AgentConfig, Config, ConsentSetting};
use switchboard::runtime::prompts::to_8k;
use switchboard_e2e::{rms, Ua, UaEvent, UaOptions};
use switchboard_store::{CallRecordId, ConsentDecision, EndReason, Store};

/// One agent per behaviour under test; the numbers route to them.
fn agents() -> Vec<AgentConfig> {
    let knowledge =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/demo/acme-dental.md");
    let example = config::load(
        Some(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/switchboard.example.toml"),
        ),
        [],
    )
    .unwrap();
    let base = example.agents[0].clone();
    let agent = |name: &str, number: &str, consent, transfer: Option<&str>| AgentConfig {
        name: name.into(),
        numbers: vec![number.into()],
        knowledge: vec![knowledge.clone()],
        consent,
        transfer_to: transfer.map(str::to_owned),
        profanity_extra: vec!["muppet".into()],
        ..base.clone()
    };
    vec![
        agent(
            "acme",
            "1000",
            ConsentSetting::Off,
            Some("sip:frontdesk@127.0.0.1:5999"),
        ),
        agent("acme-recorded", "2000", ConsentSetting::Required, None),
    ]
}

/// One daemon at a time: two would share the 2 cores of the reference box and time out.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Daemon {
    sip: SocketAddr,
    http: SocketAddr,
    data_dir: PathBuf,
    store: Store,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts the daemon; `None` (skip) when the models are not installed.
    async fn start(tune: impl FnOnce(&mut Config)) -> Option<Daemon> {
        model_file("ggml-tiny.en.bin")?;
        switchboard_e2e::init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let mut config = config::load(None, []).unwrap();
        config.data_dir = dir.path().join("data");
        config.models.dir = models_dir();
        config.agents = agents();
        config.calls.rtp_ports = "21000-21999".parse().unwrap();
        // Uploads are parsed by the built binary, not by this test's own executable.
        config.program = Some(env!("CARGO_BIN_EXE_switchboard").into());
        // The test's caller is the PBX: it may call, and the number it sends is believed.
        config.sip.allow = vec!["127.0.0.1".parse().unwrap()];
        config.sip.trust_caller_id_from = vec!["127.0.0.1".parse().unwrap()];
        // A loaded 2-core CI box may take a while to say the next line; no re-prompts meanwhile.
        config.calls.silence_timeout_s = 30;
        config.calls.engine_timeout_ms = 60_000;
        tune(&mut config);
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        let sip = switchboard::bind_sip(&config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let sip_addr = sip.local_addr;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let data_dir = config.data_dir.clone();
        let url = config.database_url();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            switchboard::run(config, switchboard::Listeners { http, sip }, shutdown)
                .await
                .unwrap();
        });
        // HTTP is served once the engines and agents are loaded.
        wait_healthy(http_addr, None).await;
        let store = Store::open(&url, switchboard::keys::data_key(&data_dir).unwrap())
            .await
            .unwrap();
        Some(Daemon {
            sip: sip_addr,
            http: http_addr,
            data_dir,
            store,
            stop: Some(stop),
            task,
            _dir: dir,
        })
    }

    fn uri(&self, number: &str) -> String {
        format!("sip:{number}@{}", self.sip)
    }

    /// The newest call record, once the daemon has closed it.
    async fn finished_call(&self) -> switchboard_store::CallRecord {
        self.idle().await;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let id: CallRecordId = self.store.recent_call_ids(1).await.unwrap()[0].clone();
            let call = self.store.call(&id).await.unwrap().unwrap();
            if call.ended_at.is_some() {
                return call;
            }
            assert!(
                Instant::now() < deadline,
                "the call record was never closed"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until no call is running (the last one's summary included), so the next call does
    /// not share the CPU with it.
    async fn idle(&self) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let mut s = tokio::net::TcpStream::connect(self.http).await.unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            if out.lines().any(|l| l == "switchboard_calls_active 0") {
                return;
            }
            assert!(Instant::now() < deadline, "calls still active");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Logs an operator in to the admin API; returns the session cookie.
    async fn operator(&self) -> String {
        let hash = switchboard::auth::hash_password("operator password").unwrap();
        self.store
            .create_user("olga", &hash, switchboard_store::Role::Operator)
            .await
            .unwrap();
        let body = serde_json::json!({ "username": "olga", "password": "operator password" });
        let (status, _, cookie) = self.api("POST", "/api/login", "", body.to_string()).await;
        assert_eq!(status, 200);
        cookie.unwrap().split(';').next().unwrap().to_owned()
    }

    /// One admin API request: the status, the JSON body and any cookie set.
    async fn api(
        &self,
        method: &str,
        path: &str,
        cookie: &str,
        body: String,
    ) -> (u16, serde_json::Value, Option<String>) {
        let request = ureq::request(method, &format!("http://{}{path}", self.http))
            .set("Cookie", cookie)
            .set("Content-Type", "application/json");
        tokio::task::spawn_blocking(move || {
            let response = match request.send_string(&body) {
                Ok(r) | Err(ureq::Error::Status(_, r)) => r,
                Err(e) => panic!("{e}"),
            };
            let cookie = response.header("set-cookie").map(str::to_owned);
            let status = response.status();
            let text = response.into_string().unwrap();
            (
                status,
                serde_json::from_str(&text).unwrap_or_default(),
                cookie,
            )
        })
        .await
        .unwrap()
    }

    /// The agent's line in `GET /api/agents`, once no knowledge reload is pending.
    async fn agent_reloaded(&self, cookie: &str, agent: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let (status, agents, _) = self.api("GET", "/api/agents", cookie, String::new()).await;
            assert_eq!(status, 200, "{agents}");
            let line = agents
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["name"] == agent)
                .unwrap()
                .clone();
            if line["calls"]["reloading"] == false {
                return line;
            }
            assert!(Instant::now() < deadline, "never reloaded: {line}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.task).await;
    }
}

/// The caller's voice (Piper, 8 kHz) and ears (whisper), loaded once.
struct Senses {
    voice: models_piper::Piper,
    stt: models_whisper::Whisper,
}

fn senses() -> &'static Senses {
    static SENSES: OnceLock<Senses> = OnceLock::new();
    SENSES.get_or_init(|| Senses {
        voice: models_piper::Piper::load(&models_piper::PiperConfig::in_model_dir(
            &models_dir(),
            "en_US-joe-medium",
        ))
        .unwrap(),
        stt: models_whisper::Whisper::load(&models_whisper::WhisperConfig::new(
            models_dir().join("ggml-tiny.en.bin"),
        ))
        .unwrap(),
    })
}

fn speak(text: &str) -> Vec<i16> {
    let voice = &senses().voice;
    let audio = voice.say(text, &TtsOptions::default()).unwrap();
    to_8k(&audio, voice.sample_rate()).unwrap()
}

fn transcribe(samples: &[i16]) -> String {
    let audio = switchboard::runtime::to_16k(samples).unwrap();
    let options = SttOptions {
        language: Some("en".into()),
        audio_context: AudioContext::Fit,
        ..SttOptions::default()
    };
    senses()
        .stt
        .transcribe(&audio, &options, &CancelToken::new())
        .unwrap()
        .map(|t| t.text.to_lowercase())
        .unwrap_or_default()
}

/// The last stretch of speech in `audio` (8 kHz): from the first voiced 20 ms frame after the
/// last second-long silence to the last voiced frame, with 200 ms either side.
fn last_speech(audio: &[i16]) -> &[i16] {
    let voiced: Vec<bool> = audio
        .chunks(160)
        .map(|f| {
            let power = f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / f.len() as f64;
            power.sqrt() > 300.0
        })
        .collect();
    let Some(last) = voiced.iter().rposition(|&v| v) else {
        return audio;
    };
    let mut first = last;
    let mut gap = 0;
    for i in (0..last).rev() {
        if voiced[i] {
            first = i;
            gap = 0;
        } else {
            gap += 1;
            if gap >= 50 {
                break;
            }
        }
    }
    let start = first.saturating_sub(10) * 160;
    let end = ((last + 11) * 160).min(audio.len());
    &audio[start..end]
}

/// What the caller heard of one stretch of the agent's speech.
struct Heard {
    audio: Vec<i16>,
    ended: bool,
}

impl Heard {
    fn text(&self) -> String {
        transcribe(&self.audio)
    }
}

/// Collects the agent's audio until it has said at least `speech` worth of sound and then been
/// quiet for `quiet` (or the call ended).
async fn hear(ua: &mut Ua, speech: Duration, quiet: Duration) -> Heard {
    let (mut audio, mut voiced, mut silent) = (Vec::new(), 0usize, 0usize);
    let need = (speech.as_millis() / 20) as usize;
    let hush = (quiet.as_millis() / 20) as usize;
    let ended = ua
        .expect("the agent to speak and then pause", |e| match e {
            UaEvent::Audio { frame, .. } => {
                let loud = rms(frame) > 300.0;
                if voiced > 0 || loud {
                    audio.extend_from_slice(frame);
                }
                if loud {
                    voiced += 1;
                    silent = 0;
                } else {
                    silent += 1;
                }
                (voiced >= need && silent >= hush).then_some(false)
            }
            UaEvent::Ended { .. } => Some(true),
            _ => None,
        })
        .await;
    Heard { audio, ended }
}

/// The agent's answer to what the caller just said: some speech, then a pause long enough to
/// be the end of the reply rather than a gap between sentences.
async fn answer(ua: &mut Ua) -> Heard {
    hear(ua, Duration::from_millis(600), Duration::from_millis(2500)).await
}

/// Waits until the agent has been quiet for `quiet`.
async fn quiet(ua: &mut Ua, quiet: Duration) {
    let hush = (quiet.as_millis() / 20) as usize;
    let mut silent = 0;
    ua.expect("the agent to stop talking", |e| match e {
        UaEvent::Audio { frame, .. } => {
            silent = if rms(frame) > 300.0 { 0 } else { silent + 1 };
            (silent >= hush).then_some(())
        }
        _ => None,
    })
    .await;
}

async fn answered(ua: &mut Ua, target: &str) -> sip_net::CallHandle {
    ua.call(target).await;
    ua.expect("the agent to answer", |e| match e {
        UaEvent::Answered(c) => Some(*c),
        UaEvent::Failed { status, .. } => panic!("the call failed with {status}"),
        _ => None,
    })
    .await
}

/// One call to the agent on 1000 with one question; what it answered.
async fn ask_once(daemon: &Daemon, ua: &mut Ua, question: &[i16]) -> String {
    let call = answered(ua, &daemon.uri("1000")).await;
    hear(ua, GREETING, PAUSE).await;
    ua.play(call, question.to_vec());
    let reply = answer(ua).await;
    ua.sip.hangup(call).await.unwrap();
    daemon.finished_call().await;
    reply.text()
}

fn contains_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

const GREETING: Duration = Duration::from_secs(2);
const PAUSE: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_talks_to_the_agent() {
    let _serial = SERIAL.lock().await;
    let Some(daemon) = Daemon::start(|_| {}).await else {
        return;
    };
    // Everything the caller says is rendered before dialling: the caller must not compete with
    // the agent for the CPU in the middle of a call.
    let emergency = speak("How much is an emergency visit?");
    let saturday = speak("What are your opening hours on Saturday?");
    let everything = speak("Tell me everything about your prices and your policies.");
    let interruption = speak("Sorry, stop. Is there free parking?");
    let yes = speak("Yes, that's fine.");
    let no = speak("No, please don't.");
    let parking = speak("Do you have free parking?");
    let abuse = speak("You useless muppet, this is bullshit.");
    let mut ua = Ua::start(UaOptions::default()).await;

    // 1. A question from the knowledge, answered from it; the turn is recorded with timings.
    let call = answered(&mut ua, &daemon.uri("1000")).await;
    let greeting = hear(&mut ua, GREETING, PAUSE).await;
    ua.play(call, emergency.clone());
    let reply = answer(&mut ua).await;
    ua.sip.hangup(call).await.unwrap();
    let record = daemon.finished_call().await;
    assert!(
        greeting.text().contains("dental"),
        "greeting: {}",
        greeting.text()
    );
    let text = reply.text();
    assert!(
        contains_any(&text, &["120", "hundred and twenty", "hundred twenty"]),
        "reply: {text}"
    );
    assert_eq!(record.end_reason, Some(EndReason::CallerHungUp));
    let turns = daemon.store.turns(&record.id).await.unwrap();
    assert_eq!(turns.len(), 1, "{turns:?}");
    assert!(
        turns[0].caller_text.to_lowercase().contains("emergency"),
        "{turns:?}"
    );
    let timings = turns[0].timings;
    assert!(
        timings.stt_ms.is_some() && timings.voice_to_voice_ms.is_some(),
        "{timings:?}"
    );

    // 1b. A day's hours among the hours of every day. The 0.5B model sits near a tie between the
    // Saturday line and the weekday one: in one run of two it said the weekday hours for
    // Saturday. The grounding check now stops figures said for a day they do not belong to, so
    // the caller hears Saturday's hours or the don't-know line, never another day's hours.
    let call = answered(&mut ua, &daemon.uri("1000")).await;
    hear(&mut ua, GREETING, PAUSE).await;
    ua.play(call, saturday.clone());
    let reply = answer(&mut ua).await;
    ua.sip.hangup(call).await.unwrap();
    daemon.finished_call().await;
    let text = reply.text();
    let weekday_hours = contains_any(&text, &["8", "eight", "6", "six", "4", "four"]);
    let saturday_hours = contains_any(&text, &["9", "nine", "1 p", "one p"]);
    let does_not_know = contains_any(&text, &["don't know", "don't have that"]);
    assert!(
        !weekday_hours && (saturday_hours || does_not_know),
        "Saturday hours: {text}"
    );

    // 2. Barge-in: talking over a reply stops it, and the turn is marked interrupted.
    let call = answered(&mut ua, &daemon.uri("1000")).await;
    hear(&mut ua, GREETING, PAUSE).await;
    ua.play(call, everything.clone());
    hear(
        &mut ua,
        Duration::from_millis(1500),
        Duration::from_millis(1),
    )
    .await;
    ua.play(call, interruption.clone());
    // The agent stops talking when the caller does, then answers the interruption.
    quiet(&mut ua, Duration::from_millis(400)).await;
    let after = answer(&mut ua).await;
    ua.sip.hangup(call).await.unwrap();
    let record = daemon.finished_call().await;
    let turns = daemon.store.turns(&record.id).await.unwrap();
    assert!(
        turns.iter().any(|t| t.interrupted),
        "no interrupted turn: {turns:?}"
    );
    assert!(
        turns
            .iter()
            .any(|t| !t.interrupted && t.caller_text.to_lowercase().contains("parking")),
        "the interruption was not answered: {turns:?} (heard {})",
        after.text()
    );

    // 3. DTMF 0 hands over to a human by REFER; a refused transfer is said out loud.
    for (status, outcome) in [(200u16, "succeeded"), (503, "failed")] {
        let call = answered(&mut ua, &daemon.uri("1000")).await;
        hear(&mut ua, GREETING, PAUSE).await;
        ua.press(call, '0');
        let target = ua
            .expect("a REFER", |e| match e {
                UaEvent::TransferRequested { target, .. } => Some(target.clone()),
                _ => None,
            })
            .await;
        assert!(target.contains("frontdesk@127.0.0.1:5999"), "{target}");
        ua.sip.transfer_progress(call, status).await.unwrap();
        if status == 200 {
            let end = hear(&mut ua, Duration::ZERO, Duration::from_secs(30)).await;
            assert!(end.ended, "the agent did not hang up after the transfer");
        } else {
            let said = hear(&mut ua, Duration::from_millis(600), PAUSE).await;
            assert!(
                contains_any(
                    &said.text(),
                    &["couldn't reach", "could not reach", "call you back"]
                ),
                "failed transfer: {}",
                said.text()
            );
            ua.sip.hangup(call).await.unwrap();
        }
        let record = daemon.finished_call().await;
        let end = daemon.store.end_of_call(&record.id).await.unwrap().unwrap();
        assert!(
            end.transfer_outcome
                .as_deref()
                .unwrap_or("")
                .starts_with(outcome),
            "{end:?}"
        );
    }

    // 4. Consent yes: recorded from then on, encrypted on disk, logged as yes.
    for (said, decision) in [(yes, ConsentDecision::Yes), (no, ConsentDecision::No)] {
        let call = answered(&mut ua, &daemon.uri("2000")).await;
        let asked = hear(&mut ua, Duration::from_secs(5), PAUSE).await;
        ua.play(call, said);
        let ack = hear(&mut ua, Duration::from_millis(600), PAUSE).await;
        // The call goes on either way.
        ua.play(call, parking.clone());
        let reply = answer(&mut ua).await;
        ua.sip.hangup(call).await.unwrap();
        let record = daemon.finished_call().await;
        assert!(
            asked.text().contains("record"),
            "consent question: {}",
            asked.text()
        );
        assert!(ack.text().contains("help"), "after consent: {}", ack.text());
        assert!(!reply.text().is_empty());
        let end = daemon.store.end_of_call(&record.id).await.unwrap().unwrap();
        let log = daemon.store.consent_log(&record.id).await.unwrap();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0].decision, decision, "{log:?}");
        let file = daemon
            .data_dir
            .join("recordings")
            .join(format!("{}.wav.sbrec", record.id.as_str()));
        if decision == ConsentDecision::Yes {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes.starts_with(b"RIFF"),
                "the recording is plain WAV on disk"
            );
            assert!(hound::WavReader::new(std::io::Cursor::new(&bytes)).is_err());
            let vault = switchboard::runtime::recording::Vault::open(&daemon.data_dir).unwrap();
            let recording = vault.open_recording(record.id.as_str()).unwrap();
            assert!(recording.complete);
            let reader = hound::WavReader::new(std::io::Cursor::new(recording.wav)).unwrap();
            assert_eq!(reader.spec().channels, 2);
            assert!(
                reader.duration() > 8000,
                "recording too short: {}",
                reader.duration()
            );
            assert_eq!(end.recording_path.as_deref(), Some(file.to_str().unwrap()));
        } else {
            assert!(!file.exists(), "recorded after a no");
            assert!(end.recording_path.is_none());
        }
    }

    // 5. Knowledge uploaded over the admin API reaches the next call, no restart: before it the
    // agent does not know the club's fee, after it the answer has it.
    let club = speak("How much is the Smile Club membership?");
    let before = ask_once(&daemon, &mut ua, &club).await;
    assert!(
        !contains_any(&before, &["19", "nineteen"]),
        "knew the fee before the upload: {before}"
    );
    let cookie = daemon.operator().await;
    let loaded = daemon.agent_reloaded(&cookie, "acme").await["calls"].clone();
    let document = "# Smile Club\n\nThe Acme Smile Club is our membership plan. \
                    The Smile Club membership costs $19 a month and gives 15% off every treatment.\n";
    let (status, body, _) = daemon
        .api(
            "POST",
            "/api/agents/acme/knowledge?filename=smile-club.md",
            &cookie,
            document.to_owned(),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let reloaded = daemon.agent_reloaded(&cookie, "acme").await["calls"].clone();
    assert!(
        reloaded["loaded_at"].as_i64() > loaded["loaded_at"].as_i64(),
        "{loaded} → {reloaded}"
    );
    assert_eq!(reloaded["reload_error"], serde_json::Value::Null);
    let after = ask_once(&daemon, &mut ua, &club).await;
    assert!(
        contains_any(&after, &["19", "nineteen"]),
        "the uploaded fact was not used: {after}"
    );

    // 6. Abuse: one polite line, BYE, blacklisted, and the next INVITE gets 603.
    let call = answered(&mut ua, &daemon.uri("1000")).await;
    hear(&mut ua, GREETING, PAUSE).await;
    ua.play(call, abuse.clone());
    let bye = hear(&mut ua, Duration::ZERO, Duration::from_secs(30)).await;
    if !bye.ended {
        // What whisper heard tells a misheard line from a missed one.
        let id = daemon.store.recent_call_ids(1).await.unwrap()[0].clone();
        let heard: Vec<String> = daemon
            .store
            .transcript(&id)
            .await
            .unwrap()
            .into_iter()
            .map(|l| format!("{}: {}", l.speaker.as_str(), l.text))
            .collect();
        panic!("the agent did not hang up on abuse; the call's transcript: {heard:#?}");
    }
    let record = daemon.finished_call().await;
    assert_eq!(record.end_reason, Some(EndReason::Abuse));
    let entry = daemon.store.blacklist_entry("switchboard").await.unwrap();
    assert!(entry.is_some_and(|e| e.source_call_id.as_ref() == Some(&record.id)));
    ua.call(&daemon.uri("1000")).await;
    let status = ua
        .expect("the blacklisted caller's INVITE to fail", |e| match e {
            UaEvent::Failed { status, .. } => Some(*status),
            UaEvent::Answered(_) => Some(200),
            _ => None,
        })
        .await;
    assert_eq!(status, 603);
    daemon.stop().await;
}

/// The daemon killed in the middle of a recorded call: the consent decision and the call record
/// survive, and at the next start the call is closed as interrupted with what its recording held
/// until the kill (sealed, readable, marked incomplete).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_call_keeps_the_record_and_the_recording() {
    let _serial = SERIAL.lock().await;
    if model_file("ggml-tiny.en.bin").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let example = std::fs::read_to_string(root.join("packaging/switchboard.example.toml")).unwrap();
    let knowledge = root.join("packaging/demo/acme-dental.md");
    let config = example
        .replace(
            "data_dir = \"var\"",
            &format!("data_dir = {data_dir:?}\nnode = \"crash-test\""),
        )
        .replace("consent = \"off\"", "consent = \"required\"")
        .replace(
            "knowledge = [\"packaging/demo/acme-dental.md\"]",
            &format!("knowledge = [{knowledge:?}]"),
        );
    let config_file = dir.path().join("switchboard.toml");
    std::fs::write(&config_file, config).unwrap();
    let free_port = || {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (http, sip) = (free_port(), free_port());
    // Each start logs to a file of its own, shown if it never becomes ready.
    let log = |start: &str| dir.path().join(format!("daemon-{start}.log"));
    let serve = |start: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
            c.env_remove(k);
        }
        c.arg("--config")
            .arg(&config_file)
            .arg("serve")
            .env("SWITCHBOARD_HTTP_LISTEN", http.to_string())
            .env("SWITCHBOARD_SIP_LISTEN", sip.to_string())
            .env("SWITCHBOARD_SIP_ALLOW", "[\"127.0.0.1\"]")
            .env("SWITCHBOARD_MODELS_DIR", models_dir())
            .env("SWITCHBOARD_CALLS_RTP_PORTS", "22000-22999")
            .env("SWITCHBOARD_CALLS_SILENCE_TIMEOUT_S", "30")
            .env("SWITCHBOARD_CALLS_ENGINE_TIMEOUT_MS", "60000")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log(start)).unwrap())
            .spawn()
            .map(Killed)
            .unwrap()
    };
    let yes = speak("Yes, that's fine.");
    let question = speak("Do you have free parking? And how much is an emergency visit?");

    let daemon = serve("first");
    wait_healthy(http, Some(&log("first"))).await;
    let mut ua = Ua::start(UaOptions::default()).await;
    let call = answered(&mut ua, &format!("sip:demo@{sip}")).await;
    hear(&mut ua, Duration::from_secs(5), PAUSE).await;
    ua.play(call, yes);
    hear(&mut ua, Duration::from_millis(600), PAUSE).await;
    ua.play(call, question);
    answer(&mut ua).await;
    drop(daemon);

    let store = Store::open_sqlite(
        &data_dir.join("switchboard.db"),
        switchboard::keys::data_key(&data_dir).unwrap(),
    )
    .await
    .unwrap();
    let id = store.recent_call_ids(1).await.unwrap()[0].clone();
    let record = store.call(&id).await.unwrap().unwrap();
    assert_eq!(record.ended_at, None, "{record:?}");
    let consent = store.consent_log(&id).await.unwrap();
    assert_eq!(consent.len(), 1, "{consent:?}");
    assert_eq!(consent[0].decision, ConsentDecision::Yes);

    let _daemon = serve("after-crash");
    wait_healthy(http, Some(&log("after-crash"))).await;
    let record = store.call(&id).await.unwrap().unwrap();
    assert_eq!(record.end_reason, Some(EndReason::Interrupted));
    assert!(record.ended_at >= record.answered_at, "{record:?}");
    assert_eq!(record.node.as_deref(), Some("crash-test"));
    let end = store.end_of_call(&id).await.unwrap().unwrap();
    assert!(end.recording_path.is_some(), "{end:?}");
    let vault = switchboard::runtime::recording::Vault::open(&data_dir).unwrap();
    let recording = vault.open_recording(id.as_str()).unwrap();
    assert!(!recording.complete);
    let reader = hound::WavReader::new(std::io::Cursor::new(recording.wav)).unwrap();
    assert!(
        reader.duration() >= 2 * 8000,
        "kept {} frames of a call recorded for more than 3 s",
        reader.duration()
    );
}

/// A daemon process, SIGKILLed when dropped (also when the test fails).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the daemon at `http` answers `/healthz` (it does once engines and agents loaded);
/// a daemon that never does fails the test with the end of its `log`.
async fn wait_healthy(http: SocketAddr, log: Option<&Path>) {
    let ready = async {
        loop {
            if let Ok(mut s) = tokio::net::TcpStream::connect(http).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let _ = s
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    .await;
                let mut out = String::new();
                let _ = s.read_to_string(&mut out).await;
                if out.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(300), ready)
        .await
        .is_err()
    {
        let log = log.map_or(String::new(), |l| {
            std::fs::read_to_string(l).unwrap_or_default()
        });
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "the daemon never became ready; its log ends:\n{}",
            tail.join("\n")
        );
    }
}

/// A model that does not answer in time: the caller hears the fallback line, not silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_gives_the_fallback_line() {
    let _serial = SERIAL.lock().await;
    let Some(daemon) = Daemon::start(|c| c.calls.engine_timeout_ms = 1).await else {
        return;
    };
    let yes = speak("Yes.");
    let mut ua = Ua::start(UaOptions::default()).await;
    let call = answered(&mut ua, &daemon.uri("2000")).await;
    hear(&mut ua, Duration::from_secs(5), PAUSE).await;
    ua.play(call, yes);
    let mut said = hear(&mut ua, Duration::from_millis(600), Duration::from_secs(3)).await;
    // The consent answer may have been transcribed at the caller's pause, before the endpoint:
    // then no model was waited for, and the first question's reply is what times out.
    if !contains_any(&said.text(), &["technical", "trouble"]) {
        ua.play(call, speak("How much is a cleaning?"));
        said = hear(&mut ua, Duration::from_millis(600), Duration::from_secs(3)).await;
    }
    assert!(
        contains_any(&said.text(), &["technical", "trouble"]),
        "fallback: {}",
        said.text()
    );
    let record = daemon.finished_call().await;
    assert_eq!(record.end_reason, Some(EndReason::EngineFailure));
    daemon.stop().await;
}

/// baresip, a real softphone, asks a question from a WAV file; what it heard back answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_asks_and_hears_the_answer() {
    let _serial = SERIAL.lock().await;
    if !switchboard_e2e::installed("baresip") {
        return;
    }
    let Some(daemon) = Daemon::start(|_| {}).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Silence through the greeting, the question, then silence while the agent answers.
    let mut input = vec![0i16; 8000 * 7];
    input.extend(speak("How much is teeth whitening?"));
    input.extend(vec![0i16; 8000 * 40]);
    switchboard_e2e::write_wav(&dir.path().join("in.wav"), &input, 8000);
    let port = switchboard_e2e::free_port();
    switchboard_e2e::baresip_config(
        dir.path(),
        port,
        &dir.path().join("in.wav"),
        "<sip:caller@127.0.0.1>;regint=0",
    );
    let args = [
        "-f".to_owned(),
        dir.path().display().to_string(),
        "-e".into(),
        format!("/dial {}", daemon.uri("1000")),
    ];
    let mut peer = switchboard_e2e::Peer::spawn("baresip", &args, dir.path()).unwrap();
    let pid = peer.pid();
    // The agent's answer is on record once its turn is stored.
    let deadline = Instant::now() + Duration::from_secs(240);
    let turn = loop {
        if Instant::now() > deadline {
            let _ = std::process::Command::new("kill")
                .arg(pid.unwrap().to_string())
                .status();
            panic!("no answered turn; baresip said:\n{}", peer.wait().await.1);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(id) = daemon
            .store
            .recent_call_ids(1)
            .await
            .unwrap()
            .first()
            .cloned()
        else {
            continue;
        };
        if let Some(t) = daemon.store.turns(&id).await.unwrap().into_iter().next() {
            break t;
        }
    };
    // Let the last words reach baresip, then SIGTERM so it closes its recording.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.unwrap().to_string())
        .status();
    let output = peer.wait().await.1;
    let dump = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("baresip wrote no recording:\n{output}"));
    let (heard, rate) = switchboard_e2e::read_wav(&dump);
    assert_eq!(rate, 8000);
    // The answer is the last stretch of speech; whisper on the seconds of silence before it
    // (after the greeting) can loop and swallow it.
    let text = transcribe(last_speech(&heard));
    assert!(
        contains_any(&text, &["350", "three hundred"]),
        "baresip heard: {text} (turn: {turn:?})"
    );
    daemon.stop().await;
}

/// Someone on the network who learnt a live call's RTP port speaks into it, from another host
/// and from another port of the caller's host, during the caller's question: the caller is
/// answered, and nothing the injector said reaches the transcript or moves the call (their words
/// ask for a transfer the caller never asked for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_injected_into_a_live_call_is_never_heard() {
    let _serial = SERIAL.lock().await;
    let Some(daemon) = Daemon::start(|_| {}).await else {
        return;
    };
    let question = speak("How much is an emergency visit?");
    let injected = speak("Put me through to a person right now, please.");
    let mut ua = Ua::start(UaOptions::default()).await;
    let call = answered(&mut ua, &daemon.uri("1000")).await;
    let port = daemon_rtp_port(21000..=21999).expect("the call's RTP port in /proc/net/udp");
    hear(&mut ua, GREETING, PAUSE).await;

    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let injector = tokio::spawn(async move {
        let other_host = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
        let other_port = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for (i, frame) in injected.chunks(160).enumerate() {
            let payload: Vec<u8> = frame
                .iter()
                .map(|&s| media_audio::g711::Law::Mu.encode(s))
                .collect();
            let packet = media_rtp::RtpPacket::new(
                media_rtp::PayloadType::PCMU,
                i as u16,
                (i * 160) as u32,
                media_rtp::Ssrc(0x6666),
                &payload,
            )
            .to_vec();
            let _ = other_host.send_to(&packet, target).await;
            let _ = other_port.send_to(&packet, target).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    ua.play(call, question);
    let reply = answer(&mut ua).await;
    injector.await.unwrap();
    ua.sip.hangup(call).await.unwrap();
    let record = daemon.finished_call().await;

    let caller: Vec<String> = daemon
        .store
        .transcript(&record.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.speaker == switchboard_store::Speaker::Caller)
        .map(|l| l.text.to_lowercase())
        .collect();
    let said = caller.join(" | ");
    assert!(
        said.contains("emergency"),
        "the caller's question was heard: {said}"
    );
    assert!(
        !contains_any(&said, &["person", "through", "right now"]),
        "injected words in the transcript: {said}"
    );
    // The injected words asked for a person: the call must not have been handed over, nor ended
    // any other way than by the caller's hang-up. (Stop 23's CI saw another end here once, not
    // reproduced since; the message now says which.)
    assert_eq!(
        record.end_reason,
        Some(EndReason::CallerHungUp),
        "reply: {}; caller: {said}",
        reply.text()
    );
}

/// The even UDP port in `range` bound on this host: the one live call's RTP port (a port an
/// attacker on the path would read from the SDP).
fn daemon_rtp_port(range: std::ops::RangeInclusive<u16>) -> Option<u16> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|l| {
                    l.split_whitespace()
                        .nth(1)?
                        .rsplit(':')
                        .next()
                        .map(str::to_owned)
                })
                .filter_map(|hex| u16::from_str_radix(&hex, 16).ok())
                .collect::<Vec<_>>()
        })
        .find(|p| range.contains(p) && p % 2 == 0)
}

/// The resident set of this process (the daemon runs in it), in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// 2,000 INVITEs a second for 10 s from a source nobody listed, while a call is up: the caller
/// is still answered, their hang-up still ends the call, the box sends at most its refusal
/// budget back (no reflection), and its memory does not grow with the flood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_flood_from_an_unknown_source_leaves_a_live_call_alone() {
    let _serial = SERIAL.lock().await;
    let Some(daemon) = Daemon::start(|_| {}).await else {
        return;
    };
    let question = speak("How much is an emergency visit?");
    let mut ua = Ua::start(UaOptions::default()).await;
    let call = answered(&mut ua, &daemon.uri("1000")).await;
    hear(&mut ua, GREETING, PAUSE).await;
    let before = rss_kib();

    let target = daemon.sip;
    let flood = tokio::spawn(async move {
        // 127.0.0.2 is not in sip.allow (127.0.0.1 is).
        let socket = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let (mut sent, mut answers) = (0u32, 0u32);
        let mut buf = vec![0u8; 2048];
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        while started.elapsed() < Duration::from_secs(10) {
            tick.tick().await;
            for _ in 0..20 {
                sent += 1;
                let invite = format!(
                    "INVITE sip:1000@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKflood{sent}\r\n\
                     From: <sip:flood@{local}>;tag=f{sent}\r\nTo: <sip:1000@{target}>\r\n\
                     Call-ID: flood-{sent}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
                     Contact: <sip:flood@{local}>\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = socket.send_to(invite.as_bytes(), target).await;
            }
            while let Ok(Ok(_)) =
                tokio::time::timeout(Duration::ZERO, socket.recv_from(&mut buf)).await
            {
                answers += 1;
            }
        }
        (sent, answers)
    });
    // The caller asks during the flood and is answered.
    tokio::time::sleep(Duration::from_secs(2)).await;
    ua.play(call, question);
    let reply = answer(&mut ua).await;
    let (sent, answers) = flood.await.unwrap();
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    ua.sip.hangup(call).await.unwrap();
    let record = daemon.finished_call().await;
    eprintln!("flood: {sent} INVITEs, {answers} answers, resident memory +{grown_mib} MiB");

    assert!(sent >= 15_000, "the flood sent {sent}");
    assert!(
        contains_any(
            &reply.text().to_lowercase(),
            &["120", "hundred", "emergency"]
        ),
        "answered during the flood: {}",
        reply.text()
    );
    assert_eq!(record.end_reason, Some(EndReason::CallerHungUp));
    // Refusals are capped at 5 a second per source: nothing like one answer per INVITE.
    assert!(answers <= 200, "{answers} answers to {sent} INVITEs");
    assert!(
        grown_mib < 64,
        "memory grew {grown_mib} MiB during the flood"
    );
    assert_eq!(
        daemon.store.recent_call_ids(10).await.unwrap().len(),
        1,
        "the flood left no call records"
    );
}
