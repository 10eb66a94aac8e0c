//! The answer evaluation: businesses the code was never tuned on, asked as a caller would, each
//! reply scored right / wrong / invented / refused.
//!
//! Each folder under `tests/eval/` is a fictional business: `business.toml` (the agent),
//! `docs/` (its knowledge, in every format the knowledge base reads) and `questions.toml`
//! (questions, each in the `tune` or the `test` half; nothing is ever tuned on `test`). For each
//! business this starts a daemon with that one agent, then:
//! - `--mode sip` (default): renders each question with `switchboard say` at 8 kHz, calls the
//!   agent over SIP/RTP (one call per question, so answers do not lean on each other), measures
//!   the gap from the end of the question to the first reply audio, records the reply and
//!   transcribes it with `switchboard transcribe`; per-stage timings come from the daemon's
//!   turn records;
//! - `--mode text`: asks through `switchboard chat --fresh --json` (no audio: the dialog alone).
//!
//! Scoring ([`score`]): an answerable question is *right* when every term of one of its
//! `expect` alternatives is in the reply and no `reject` term is; *refused* when the reply says
//! it does not know; *invented* when it states a figure that no document of the business holds;
//! else *wrong*. A question the documents do not answer is right only when refused; any other
//! reply is *invented*. Replies are normalised first (number words to digits, `$` and thousands
//! commas dropped, `a.m.` to `am`).
//!
//! ```text
//! cargo run --release -p switchboard-e2e --bin eval -- [--mode sip|text] [--half tune|test|all]
//!     [--switchboard target/release/switchboard] [--out DIR] [--set min_similarity=0.4 …]
//!     [tests/eval/harbor-plumbing …]
//! ```
//! Exit code 1 when a business misses a target (≥ 90 % right, 0 invented, ≤ 5 % of answerable
//! questions refused) on the half asked for, unless `--report-only` (what CI runs: the whole
//! path must work, and the figures are printed; a harness failure still exits non-zero).
#![allow(clippy::unwrap_used)] // reason: a measuring tool; a failure aborts the run with its message

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use switchboard_e2e::{free_port, read_wav, rms, write_wav, Ua, UaEvent, UaOptions};

/// A frame louder than this carries speech.
const SPEECH_RMS: f64 = 300.0;
/// Quiet that ends the agent's reply.
const END_OF_REPLY: Duration = Duration::from_millis(1500);
/// Longest wait for any one event of a call.
const WAIT: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct Business {
    name: String,
    display_name: String,
    greeting: String,
    prompt: String,
}

#[derive(Deserialize)]
struct Questions {
    question: Vec<Question>,
}

#[derive(Deserialize, Clone)]
struct Question {
    text: String,
    kind: String,
    half: String,
    #[serde(default)]
    expect: Vec<Vec<String>>,
    #[serde(default)]
    reject: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Verdict {
    Right,
    Wrong,
    Invented,
    Refused,
}

/// One question's result.
struct Asked {
    question: Question,
    /// What the caller heard (the transcribed reply), or the reply's text in text mode.
    reply: String,
    /// What the daemon heard and said (its turn records), in SIP mode.
    record: Option<Record>,
    verdict: Verdict,
    /// The verdict on what the daemon said, before the reply's own trip through speech and
    /// speech-to-text (SIP mode): the two differ where the caller's side misheard a figure.
    said_verdict: Option<Verdict>,
    /// End of question → first reply audio (SIP), or → first speakable chunk (text).
    latency: Duration,
}

/// A call's turns as the daemon recorded them.
struct Record {
    heard: String,
    said: String,
    stages: Stages,
}

/// Per-stage timings of a call's first turn, from the daemon's records (ms).
#[derive(Clone, Copy, Default)]
struct Stages {
    endpoint: i64,
    stt: i64,
    llm_first: i64,
    tts_first: i64,
}

struct Args {
    mode: String,
    half: String,
    switchboard: PathBuf,
    out: Option<PathBuf>,
    profile: String,
    report_only: bool,
    /// `key=value` lines for every agent's `[agents.answers]` (to calibrate its knobs).
    answers: Vec<String>,
    /// Ask at most this many questions of each business, taken in turn from each kind.
    limit: Option<usize>,
    businesses: Vec<PathBuf>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let mut report = String::new();
    let mut missed = Vec::new();
    for dir in &args.businesses {
        let results = evaluate(dir, &args).await;
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let section = summarise(&name, &args, &results, &mut missed);
        print!("{section}");
        report.push_str(&section);
    }
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).unwrap();
        std::fs::write(out.join("eval.md"), &report).unwrap();
    }
    if !missed.is_empty() {
        println!("targets missed: {}", missed.join("; "));
        if !args.report_only {
            std::process::exit(1);
        }
    }
}

fn args() -> Args {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let mut args = Args {
        mode: "sip".into(),
        half: "all".into(),
        switchboard: std::env::current_exe()
            .unwrap()
            .with_file_name("switchboard"),
        out: None,
        profile: "small".into(),
        report_only: false,
        answers: Vec::new(),
        limit: None,
        businesses: Vec::new(),
    };
    let mut i = 0;
    while i < raw.len() {
        let value = || raw.get(i + 1).cloned().unwrap_or_default();
        match raw[i].as_str() {
            "--mode" => args.mode = value(),
            "--half" => args.half = value(),
            "--switchboard" => args.switchboard = PathBuf::from(value()),
            "--out" => args.out = Some(PathBuf::from(value())),
            "--profile" => args.profile = value(),
            "--set" => args.answers.push(value()),
            "--limit" => args.limit = value().parse().ok(),
            "--report-only" => {
                args.report_only = true;
                i += 1;
                continue;
            }
            path => {
                args.businesses.push(PathBuf::from(path));
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    assert!(
        matches!(args.mode.as_str(), "sip" | "text")
            && matches!(args.half.as_str(), "tune" | "test" | "all"),
        "usage: eval [--mode sip|text] [--half tune|test|all] [--profile small|standard] \
         [--switchboard PATH] [--out DIR] [--report-only] [--set KNOB=VALUE…] [--limit N] [BUSINESS_DIR…]"
    );
    if args.businesses.is_empty() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../eval");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("questions.toml").exists())
            .collect();
        dirs.sort();
        args.businesses = dirs;
    }
    args
}

async fn evaluate(dir: &Path, args: &Args) -> Vec<Asked> {
    let business: Business =
        toml::from_str(&std::fs::read_to_string(dir.join("business.toml")).unwrap()).unwrap();
    let questions: Vec<Question> =
        toml::from_str::<Questions>(&std::fs::read_to_string(dir.join("questions.toml")).unwrap())
            .unwrap()
            .question
            .into_iter()
            .filter(|q| args.half == "all" || q.half == args.half)
            .collect();
    let questions = match args.limit {
        Some(n) => one_of_each_kind_in_turn(questions, n),
        None => questions,
    };
    let known = document_figures(dir);
    let work = tempfile::tempdir().unwrap();
    let sip_port = free_port();
    let config = write_config(dir, &business, work.path(), sip_port, args);
    eprintln!(
        "== {} ({} questions, {} mode)",
        business.display_name,
        questions.len(),
        args.mode
    );
    let mut asked = if args.mode == "text" {
        ask_in_text(&args.switchboard, &config, &business, &questions)
    } else {
        ask_over_sip(
            &args.switchboard,
            &config,
            &business,
            &questions,
            sip_port,
            work.path(),
        )
        .await
    };
    for a in &mut asked {
        a.verdict = score(&a.question, &a.reply, &known);
        a.said_verdict = a
            .record
            .as_ref()
            .map(|r| score(&a.question, &r.said, &known));
    }
    asked
}

/// Up to `n` questions, taking the next question of each kind in turn (so a short run still
/// asks facts, yes/no and unanswerable questions), in their file order.
fn one_of_each_kind_in_turn(questions: Vec<Question>, n: usize) -> Vec<Question> {
    let mut kinds: Vec<&str> = Vec::new();
    for q in &questions {
        if !kinds.contains(&q.kind.as_str()) {
            kinds.push(&q.kind);
        }
    }
    let mut taken = vec![false; questions.len()];
    let mut count = 0;
    while count < n.min(questions.len()) {
        for kind in &kinds {
            let next = (0..questions.len()).find(|&i| !taken[i] && questions[i].kind == *kind);
            if let Some(i) = next.filter(|_| count < n) {
                taken[i] = true;
                count += 1;
            }
        }
    }
    questions
        .iter()
        .zip(taken)
        .filter(|(_, t)| *t)
        .map(|(q, _)| q.clone())
        .collect()
}

/// The daemon's configuration: one agent, the business's documents, the installed models. Two
/// calls at once, so the next question's call is not refused while the last call's summary is
/// written (the questions themselves never overlap).
fn write_config(dir: &Path, b: &Business, work: &Path, sip_port: u16, args: &Args) -> PathBuf {
    let models = std::env::var("SWITCHBOARD_MODELS_DIR").unwrap_or_else(|_| {
        format!(
            "{}/.cache/switchboard/models",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let docs = dir.join("docs").canonicalize().unwrap();
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let config = format!(
        "data_dir = {data}\n\
         [http]\nlisten = \"127.0.0.1:{http}\"\n\
         [sip]\nlisten = \"127.0.0.1:{sip_port}\"\nallow = [\"127.0.0.1\"]\n\
         [calls]\nmax_concurrent = 2\n\
         [models]\ndir = {models}\nprofile = \"{profile}\"\n\
         [[agents]]\nname = {name}\nnumbers = [{name}]\ngreeting = {greeting}\nprompt = {prompt}\n\
         knowledge = [{docs}]\nconsent = \"off\"\n",
        data = quote(&work.join("var").display().to_string()),
        http = free_port(),
        models = quote(&models),
        name = quote(&b.name),
        greeting = quote(&b.greeting),
        prompt = quote(&b.prompt),
        docs = quote(&docs.display().to_string()),
        profile = args.profile,
    ) + &format!("[agents.answers]\n{}\n", args.answers.join("\n"));
    let path = work.join("switchboard.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn switchboard(bin: &Path, config: &Path) -> Command {
    let mut c = Command::new(bin);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        c.env_remove(k);
    }
    c.arg("--config").arg(config);
    c
}

fn ask_in_text(bin: &Path, config: &Path, b: &Business, questions: &[Question]) -> Vec<Asked> {
    let mut child = switchboard(bin, config)
        .args(["chat", "--agent", &b.name, "--fresh", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for q in questions {
        writeln!(stdin, "{}", q.text).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "switchboard chat failed");
    let turns: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(turns.len(), questions.len(), "one reply per question");
    questions
        .iter()
        .zip(turns)
        .map(|(q, t)| Asked {
            question: q.clone(),
            reply: t["reply"].as_str().unwrap_or_default().to_owned(),
            record: None,
            verdict: Verdict::Wrong,
            said_verdict: None,
            latency: Duration::from_millis(t["first_chunk_ms"].as_u64().unwrap_or(0)),
        })
        .collect()
}

async fn ask_over_sip(
    bin: &Path,
    config: &Path,
    b: &Business,
    questions: &[Question],
    sip_port: u16,
    work: &Path,
) -> Vec<Asked> {
    let rendered: Vec<Vec<i16>> = questions
        .iter()
        .enumerate()
        .map(|(i, q)| render(bin, config, &q.text, &work.join(format!("q{i}.wav"))))
        .collect();
    let log = work.join("daemon.log");
    let mut daemon = switchboard(bin, config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_agent(&log, &mut daemon);
    let target = format!("sip:{}@127.0.0.1:{sip_port}", b.name);
    // An anonymous caller: no memory of the last question's call reaches the next one.
    let mut ua = Ua::start(UaOptions {
        rtp_ports: (42000, 42999),
        caller: "anonymous".into(),
        ..UaOptions::default()
    })
    .await;
    let mut asked = Vec::new();
    for (i, (q, audio)) in questions.iter().zip(rendered).enumerate() {
        let (latency, reply) = one_call(&mut ua, &target, audio).await;
        let wav = work.join(format!("reply{i}.wav"));
        write_wav(&wav, &reply, 8000);
        let heard = transcribe(bin, config, &wav);
        eprintln!("  [{}] {} -> {heard}", q.half, q.text);
        asked.push(Asked {
            question: q.clone(),
            reply: heard,
            record: None,
            verdict: Verdict::Wrong,
            said_verdict: None,
            latency,
        });
    }
    // Let the last call's record close, then read every call's first turn.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = daemon.kill();
    let _ = daemon.wait();
    let records = turn_records(&work.join("var")).await;
    if records.len() == asked.len() {
        for (a, record) in asked.iter_mut().zip(records) {
            a.record = Some(record);
        }
    } else {
        eprintln!(
            "warning: {} call records for {} questions; per-stage timings left out",
            records.len(),
            asked.len()
        );
    }
    asked
}

/// One call, one question: the gap to the first reply audio, and the reply's audio.
async fn one_call(ua: &mut Ua, target: &str, question: Vec<i16>) -> (Duration, Vec<i16>) {
    // The last call's slot stays taken while its summary is extracted: "full" (503) is an
    // answer to wait on, as a caller's PBX would.
    let mut attempts = 0;
    let call = loop {
        ua.call(target).await;
        let answered = ua
            .expect("the agent to answer", |e| match e {
                UaEvent::Answered(c) => Some(Some(*c)),
                UaEvent::Failed { status: 503, .. } => Some(None),
                UaEvent::Failed { status, .. } => panic!("call failed: {status}"),
                _ => None,
            })
            .await;
        match answered {
            Some(call) => break call,
            None if attempts < 60 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            None => panic!("the agent stayed busy (503) for a minute"),
        }
    };
    reply_audio(ua).await; // the greeting
    let spoken = Duration::from_secs_f64(question.len() as f64 / 8000.0);
    ua.play(call, question);
    let ended = Instant::now() + spoken;
    let started = ua
        .expect("reply speech", |e| match e {
            UaEvent::Audio { frame, .. } if Instant::now() > ended && rms(frame) > SPEECH_RMS => {
                Some(Instant::now())
            }
            UaEvent::Ended { .. } => panic!("the agent hung up"),
            _ => None,
        })
        .await;
    let reply = reply_audio(ua).await;
    ua.sip.hangup(call).await.unwrap();
    (started - ended, reply)
}

/// Audio until the agent has been quiet for [`END_OF_REPLY`] after speaking.
async fn reply_audio(ua: &mut Ua) -> Vec<i16> {
    let (mut audio, mut spoke, mut quiet_since) = (Vec::new(), false, Instant::now());
    let deadline = Instant::now() + WAIT;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline.into(), ua.next()).await {
        if let UaEvent::Audio { frame, .. } = event {
            if rms(&frame) > SPEECH_RMS {
                spoke = true;
                quiet_since = Instant::now();
            }
            if spoke {
                audio.extend_from_slice(&frame);
            }
            if spoke && quiet_since.elapsed() >= END_OF_REPLY {
                break;
            }
        }
    }
    audio
}

fn wait_for_agent(log: &Path, daemon: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("agent loaded") {
            return;
        }
        if let Ok(Some(status)) = daemon.try_wait() {
            panic!("the daemon exited ({status}):\n{text}");
        }
        assert!(Instant::now() < deadline, "no agent loaded:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Each call's agent text and first turn's stages, in call order, read from the daemon's
/// database in `data_dir` (the words opened with its data key).
async fn turn_records(data_dir: &Path) -> Vec<Record> {
    use sqlx::Row;
    let Some(key) = std::fs::read(data_dir.join("data.key"))
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .map(|k| switchboard_store::DataKey::new(&k))
    else {
        return Vec::new();
    };
    let url = format!(
        "sqlite://{}?mode=ro",
        data_dir.join("switchboard.db").display()
    );
    let Ok(pool) = sqlx::SqlitePool::connect(&url).await else {
        return Vec::new();
    };
    // Answered calls only: an INVITE refused as busy leaves a record too.
    let calls =
        sqlx::query("SELECT id FROM calls WHERE answered_at IS NOT NULL ORDER BY started_at")
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
    let mut out = Vec::new();
    for call in calls {
        let id: String = call.get(0);
        let turns = sqlx::query(
            "SELECT agent_text, endpoint_ms, stt_ms, llm_first_token_ms, tts_first_audio_ms, \
             caller_text \
             FROM call_turns WHERE call_id = ? ORDER BY seq",
        )
        .bind(&id)
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
        let text = |column: usize| {
            turns
                .iter()
                .map(|t| {
                    key.open_text(&t.get::<String, _>(column))
                        .expect("a turn sealed with the daemon's data key")
                })
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let stages = turns.first().map_or_else(Stages::default, |t| Stages {
            endpoint: t.get::<Option<i64>, _>(1).unwrap_or(0),
            stt: t.get::<Option<i64>, _>(2).unwrap_or(0),
            llm_first: t.get::<Option<i64>, _>(3).unwrap_or(0),
            tts_first: t.get::<Option<i64>, _>(4).unwrap_or(0),
        });
        out.push(Record {
            heard: text(5),
            said: text(0),
            stages,
        });
    }
    out
}

fn render(bin: &Path, config: &Path, text: &str, out: &Path) -> Vec<i16> {
    let status = switchboard(bin, config)
        .args(["say", text, "--rate", "8000", "-o"])
        .arg(out)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "switchboard say failed for {text:?}");
    read_wav(out).0
}

fn transcribe(bin: &Path, config: &Path, wav: &Path) -> String {
    let out = switchboard(bin, config)
        .arg("transcribe")
        .arg(wav)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The verdict on one reply.
fn score(q: &Question, reply: &str, known_figures: &HashSet<String>) -> Verdict {
    let words = normalise(reply);
    let refused = refuses(&words);
    if q.kind == "unanswerable" {
        return if refused {
            Verdict::Right
        } else {
            Verdict::Invented
        };
    }
    let has = |term: &str| contains_phrase(&words, &normalise(term));
    let expected = q.expect.iter().any(|alt| alt.iter().all(|t| has(t)));
    let rejected = q.reject.iter().any(|t| has(t));
    let asked: HashSet<String> = normalise(&q.text).into_iter().collect();
    let foreign_figure = words.iter().any(|w| {
        w.starts_with(|c: char| c.is_ascii_digit())
            && !known_figures.contains(w)
            && !asked.contains(w)
    });
    if expected && !rejected {
        Verdict::Right
    } else if refused {
        Verdict::Refused
    } else if foreign_figure {
        Verdict::Invented
    } else {
        Verdict::Wrong
    }
}

fn refuses(words: &[String]) -> bool {
    let text = format!(" {} ", words.join(" "));
    [
        "don't know",
        "do not know",
        "don't have that",
        "do not have that",
        "don't have information",
        "not sure",
        "no information",
    ]
    .iter()
    .any(|p| text.contains(&format!(" {p} ")))
}

fn contains_phrase(words: &[String], phrase: &[String]) -> bool {
    !phrase.is_empty() && words.windows(phrase.len()).any(|w| w == phrase)
}

/// Lower-case words with numbers as digits: "$1,100.00" → "1100", "nine thirty a.m." → "9 30
/// am", "9:00" → "9", "twenty-five" → "25".
fn normalise(text: &str) -> Vec<String> {
    let text = text
        .to_lowercase()
        .replace(['’', '‘'], "'")
        .replace("a.m.", " am ")
        .replace("p.m.", " pm ")
        .replace('$', " ");
    let mut words: Vec<String> = Vec::new();
    for raw in text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '\'' | '.' | ':' | ','))) {
        let raw = raw.trim_matches(|c: char| !c.is_alphanumeric());
        if raw.is_empty() {
            continue;
        }
        // "9am" → "9", "am"; "1,100" → "1100"; "45.00" → "45"; "9:00" → "9".
        let split = raw.find(|c: char| c.is_alphabetic()).filter(|&i| {
            i > 0
                && raw[..i]
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, ':' | '.' | ','))
        });
        let (number, suffix) = match split {
            Some(i) => (&raw[..i], Some(&raw[i..])),
            None => (raw, None),
        };
        let number = number.strip_suffix(".00").unwrap_or(number);
        for part in number.split(',').filter(|p| !p.is_empty()) {
            words.push(part.to_owned());
        }
        if number.contains(',') && number.split(',').skip(1).all(|p| p.len() == 3) {
            let joined: String = number.split(',').collect();
            let n = number.split(',').count();
            words.truncate(words.len() - n);
            words.push(joined);
        }
        // "9:00" → "9"; "9:30" → "9", "30", as "nine thirty" reads.
        if let Some((hour, minutes)) = words
            .last()
            .and_then(|w| w.split_once(':'))
            .map(|(h, m)| (h.to_owned(), m.to_owned()))
        {
            words.pop();
            words.push(hour);
            if minutes != "00" {
                words.push(minutes);
            }
        }
        words.extend(suffix.map(str::to_owned));
    }
    numbers_to_digits(words)
}

/// Number words to digits. The product's grounding check has its own reading of numbers; the
/// scorer deliberately shares none of its code, so a mistake in one cannot hide in the other.
fn numbers_to_digits(words: Vec<String>) -> Vec<String> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    let mut out = Vec::new();
    let mut value: Option<u64> = None;
    let flush = |value: &mut Option<u64>, out: &mut Vec<String>| {
        if let Some(v) = value.take() {
            out.push(v.to_string());
        }
    };
    for word in words {
        let parts: Vec<&str> = word.split('-').collect();
        let mut numeric = parts.iter().all(|p| UNITS.contains(p) || TENS.contains(p));
        numeric &= !parts.is_empty();
        if numeric {
            // "twenty five" continues a tens word; "nine thirty" starts a new number.
            let n: u64 = parts
                .iter()
                .map(|p| {
                    UNITS.iter().position(|u| u == p).map_or_else(
                        || 20 + 10 * TENS.iter().position(|t| t == p).unwrap_or(0) as u64,
                        |u| u as u64,
                    )
                })
                .sum();
            // "one hundred fifty", "forty five"; "nine thirty" is two numbers.
            let continues = |v: u64| {
                (v >= 100 && v.is_multiple_of(100) && n < 100)
                    || ((20..100).contains(&v) && v.is_multiple_of(10) && n < 10)
            };
            match value {
                Some(v) if continues(v) => value = Some(v + n),
                _ => {
                    flush(&mut value, &mut out);
                    value = Some(n);
                }
            }
        } else if word == "hundred" && value.is_some() {
            value = value.map(|v| v - v % 1000 + (v % 1000) * 100);
        } else if word == "thousand" && value.is_some() {
            value = value.map(|v| v * 1000);
        } else if word == "and" && value.is_some_and(|v| v >= 100) {
        } else {
            flush(&mut value, &mut out);
            out.push(word);
        }
    }
    flush(&mut value, &mut out);
    out
}

/// Every number in the business's documents (the PDFs through their source text).
fn document_figures(dir: &Path) -> HashSet<String> {
    let mut text = String::new();
    for sub in ["docs", "docs-src"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if let Ok(content) = std::fs::read_to_string(&path) {
                text.push_str(&content);
                text.push('\n');
            }
        }
    }
    normalise(&text)
        .into_iter()
        .filter(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .collect()
}

fn summarise(name: &str, args: &Args, results: &[Asked], missed: &mut Vec<String>) -> String {
    let mut s = String::new();
    writeln!(
        s,
        "\n### {name} ({} mode, {} profile{})\n",
        args.mode,
        args.profile,
        args.answers
            .iter()
            .map(|a| format!(", {a}"))
            .collect::<String>()
    )
    .unwrap();
    writeln!(s, "| verdict | half | kind | question | reply |").unwrap();
    writeln!(s, "|---|---|---|---|---|").unwrap();
    for a in results {
        let said = a
            .record
            .as_ref()
            .map(|r| format!(" (heard {:?}, said {:?})", r.heard, r.said))
            .unwrap_or_default();
        writeln!(
            s,
            "| {:?} | {} | {} | {} | {}{said} |",
            a.verdict, a.question.half, a.question.kind, a.question.text, a.reply
        )
        .unwrap();
    }
    writeln!(s).unwrap();
    for half in ["tune", "test", "all"] {
        let rows: Vec<&Asked> = results
            .iter()
            .filter(|a| half == "all" || a.question.half == half)
            .collect();
        if rows.is_empty() || (half != "all" && args.half != "all") {
            continue;
        }
        let count = |v: Verdict| rows.iter().filter(|a| a.verdict == v).count();
        let answerable = rows
            .iter()
            .filter(|a| a.question.kind != "unanswerable")
            .count();
        let right = count(Verdict::Right) as f64 / rows.len() as f64;
        let refused = count(Verdict::Refused) as f64 / answerable.max(1) as f64;
        let mut latencies: Vec<Duration> = rows.iter().map(|a| a.latency).collect();
        let (p50, p95) = percentiles(&mut latencies);
        writeln!(
            s,
            "{half}: {} questions, right {:.0} %, wrong {}, invented {}, refused {} ({:.0} % of answerable); latency p50 {} ms, p95 {} ms",
            rows.len(),
            right * 100.0,
            count(Verdict::Wrong),
            count(Verdict::Invented),
            count(Verdict::Refused),
            refused * 100.0,
            p50.as_millis(),
            p95.as_millis()
        )
        .unwrap();
        let said: Vec<Verdict> = rows.iter().filter_map(|a| a.said_verdict).collect();
        if said.len() == rows.len() {
            let count = |v: Verdict| said.iter().filter(|x| **x == v).count();
            writeln!(
                s,
                "{half} as the daemon said it: right {:.0} %, wrong {}, invented {}, refused {}",
                count(Verdict::Right) as f64 * 100.0 / rows.len() as f64,
                count(Verdict::Wrong),
                count(Verdict::Invented),
                count(Verdict::Refused)
            )
            .unwrap();
        }
        let stages: Vec<Stages> = rows
            .iter()
            .filter_map(|a| a.record.as_ref().map(|r| r.stages))
            .collect();
        if !stages.is_empty() {
            let stage = |f: fn(&Stages) -> i64| {
                let mut v: Vec<Duration> = stages
                    .iter()
                    .map(|x| Duration::from_millis(f(x).max(0) as u64))
                    .collect();
                let (a, b) = percentiles(&mut v);
                format!("{}/{}", a.as_millis(), b.as_millis())
            };
            writeln!(
                s,
                "{half} stages p50/p95 ms: endpoint {}, stt {}, llm first phrase {}, tts first audio {}",
                stage(|x| x.endpoint),
                stage(|x| x.stt),
                stage(|x| x.llm_first),
                stage(|x| x.tts_first)
            )
            .unwrap();
        }
        if half == "all" {
            let mut misses = Vec::new();
            if right < 0.9 {
                misses.push(format!("right {:.0} %", right * 100.0));
            }
            if count(Verdict::Invented) > 0 {
                misses.push(format!("{} invented", count(Verdict::Invented)));
            }
            if refused > 0.05 {
                misses.push(format!("refused {:.0} %", refused * 100.0));
            }
            if !misses.is_empty() {
                missed.push(format!("{name}: {}", misses.join(", ")));
            }
        }
    }
    s
}

fn percentiles(v: &mut [Duration]) -> (Duration, Duration) {
    if v.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    v.sort();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.95))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(kind: &str, expect: &[&[&str]], reject: &[&str]) -> Question {
        Question {
            text: "How much is it?".into(),
            kind: kind.into(),
            half: "tune".into(),
            expect: expect
                .iter()
                .map(|a| a.iter().map(|t| t.to_string()).collect())
                .collect(),
            reject: reject.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn replies_are_normalised_before_matching() {
        assert_eq!(
            normalise("It's $1,100.00, open 9:00 a.m. to 5pm, twenty-five or forty five."),
            ["it's", "1100", "open", "9", "am", "to", "5", "pm", "25", "or", "45"]
        );
        assert_eq!(
            normalise("one hundred and fifty dollars"),
            ["150", "dollars"]
        );
    }

    #[test]
    fn verdicts() {
        let known: HashSet<String> = ["45", "39", "89"].iter().map(|s| s.to_string()).collect();
        let price = q("fact", &[&["45"]], &["39"]);
        assert_eq!(
            score(&price, "It's forty-five dollars a month.", &known),
            Verdict::Right
        );
        assert_eq!(
            score(&price, "It's $45, or $39 for the locker.", &known),
            Verdict::Wrong
        );
        assert_eq!(
            score(&price, "I'm sorry, I don't know that.", &known),
            Verdict::Refused
        );
        assert_eq!(
            score(&price, "It's $120 a month.", &known),
            Verdict::Invented
        );
        assert_eq!(score(&price, "It's $89 a month.", &known), Verdict::Wrong);
        let unanswerable = q("unanswerable", &[], &[]);
        assert_eq!(
            score(
                &unanswerable,
                "I'm sorry, I don't know that. Shall I transfer you?",
                &known
            ),
            Verdict::Right
        );
        assert_eq!(
            score(&unanswerable, "No, we don't offer that.", &known),
            Verdict::Invented
        );
    }
}
