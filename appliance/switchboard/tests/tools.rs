#![allow(clippy::unwrap_used)] // reason: test helpers, where a panic is the failure report
//! The operator tools through the built binary, on the real small models: `say` → `transcribe`
//! round trips (also through 8 kHz G.711 µ-law, the phone path), precise errors for bad files,
//! and `bench models --json`.

use media_audio::g711::Law;
use models_api::testing::{model_file, models_dir, word_error_rate};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// No brand name: tiny.en mishears "Acme Dental" (see models/piper/tests/round_trip.rs).
const SENTENCE: &str = "Hello, thank you for calling the dental office. I can book a cleaning \
                        appointment for next Tuesday afternoon.";

/// The binary with an empty configuration file and the test's model directory, so neither the
/// box's /etc/switchboard nor the test environment's overrides decide what is run.
fn switchboard(dir: &Path) -> Command {
    let config = dir.join("empty.toml");
    std::fs::write(&config, "").unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        c.env_remove(k);
    }
    c.arg("--config")
        .arg(config)
        .env("SWITCHBOARD_MODELS_DIR", models_dir());
    c
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn have_speech_models() -> bool {
    model_file("ggml-tiny.en.bin").is_some() && model_file("piper/en_US-joe-medium.onnx").is_some()
}

fn say(dir: &Path, text: &str, name: &str, rate: u32) -> PathBuf {
    let wav = dir.join(name);
    ok(switchboard(dir)
        .args(["say", text, "--rate", &rate.to_string(), "-o"])
        .arg(&wav)
        .output()
        .unwrap());
    wav
}

fn transcribe_json(dir: &Path, wav: &Path) -> serde_json::Value {
    let out = ok(switchboard(dir)
        .args(["transcribe", "--json"])
        .arg(wav)
        .output()
        .unwrap());
    serde_json::from_str(&out).unwrap()
}

#[test]
fn say_then_transcribe_returns_the_sentence() {
    if !have_speech_models() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wav = say(dir.path(), SENTENCE, "hello.wav", 16000);
    let text = ok(switchboard(dir.path())
        .arg("transcribe")
        .arg(&wav)
        .output()
        .unwrap());
    let wer = word_error_rate(SENTENCE, &text);
    eprintln!("16 kHz: {text:?} WER {wer:.3}");
    assert!(wer <= 0.10, "{text:?}");

    // The voice's own rate, with the JSON report.
    let wav = say(dir.path(), SENTENCE, "hello22.wav", 22050);
    let j = transcribe_json(dir.path(), &wav);
    let text = j["text"].as_str().unwrap();
    assert!(word_error_rate(SENTENCE, text) <= 0.10, "{text:?}");
    assert_eq!(j["input"]["sample_rate"], 22050);
    assert_eq!(j["input"]["encoding"], "pcm16");
    let duration = j["input"]["duration_ms"].as_u64().unwrap();
    assert!((4000..12000).contains(&duration), "{duration} ms");
    let confidence = j["confidence"].as_f64().unwrap();
    assert!(confidence > 0.5 && confidence <= 1.0, "{confidence}");
    let segments = j["segments"].as_array().unwrap();
    assert!(!segments.is_empty());
    let last_end = segments.last().unwrap()["end_ms"].as_u64().unwrap();
    assert!(last_end > 2000 && last_end <= duration + 500, "{last_end}");
    assert!(j["timing"]["transcribe_ms"].as_u64().unwrap() > 0);
}

#[test]
fn round_trips_through_8k_ulaw() {
    if !have_speech_models() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wav = say(dir.path(), SENTENCE, "phone.wav", 8000);
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (8000, 1, 16)
    );
    let pcm: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let ulaw = dir.path().join("phone-ulaw.wav");
    std::fs::write(&ulaw, g711_wav(7, 8000, &Law::Mu.encode_vec(&pcm))).unwrap();

    let j = transcribe_json(dir.path(), &ulaw);
    assert_eq!(j["input"]["encoding"], "mulaw");
    assert_eq!(j["input"]["sample_rate"], 8000);
    let text = j["text"].as_str().unwrap();
    let wer = word_error_rate(SENTENCE, text);
    eprintln!("8 kHz µ-law: {text:?} WER {wer:.3}");
    assert!(wer <= 0.10, "{text:?}");
}

/// On the fitted window of a short question, tiny.en used to say it again and again up to the
/// token limit ("Where can I park? Where can I park?").
#[test]
fn a_short_question_is_transcribed_once() {
    if !have_speech_models() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (k, question) in ["Are you open on Sunday?", "Where can I park?"]
        .into_iter()
        .enumerate()
    {
        let wav = say(dir.path(), question, &format!("q{k}.wav"), 8000);
        let j = transcribe_json(dir.path(), &wav);
        let text = j["text"].as_str().unwrap();
        assert_eq!(text.matches('?').count(), 1, "{text:?}");
        assert!(word_error_rate(question, text) <= 0.25, "{text:?}");
    }
}

#[test]
fn bad_files_get_a_precise_error_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "notes.wav",
            b"this is not audio at all",
            "not a valid WAV file",
        ),
        (
            "cut.wav",
            &g711_wav(7, 8000, &[0xFF; 400])[..300],
            "truncated WAV file",
        ),
        (
            "mp3.wav",
            &g711_wav(0x55, 8000, &[0; 64]),
            "unsupported WAV encoding (format tag 0x0055, 8 bits)",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = switchboard(dir.path())
            .arg("transcribe")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = switchboard(dir.path())
        .args(["transcribe", "/nonexistent/x.wav"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/x.wav"));
}

#[test]
fn say_rejects_a_rate_it_cannot_produce() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchboard(dir.path())
        .args(["say", "hi", "--rate", "11025", "-o"])
        .arg(dir.path().join("x.wav"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("11025 Hz is not one of"));
    assert!(!dir.path().join("x.wav").exists());
}

#[test]
fn bench_models_reports_every_figure_as_json() {
    if !have_speech_models()
        || model_file("qwen2.5-coder-0.5b-instruct-q4_0.gguf").is_none()
        || model_file("all-MiniLM-L6-v2/model.safetensors").is_none()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = ok(switchboard(dir.path())
        .args(["bench", "models", "--json", "--runs", "1"])
        .output()
        .unwrap());
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let positive = |v: &serde_json::Value, what: &str| {
        let x = v.as_f64().unwrap_or_else(|| panic!("{what} missing: {j}"));
        assert!(x > 0.0, "{what} = {x}");
    };
    assert_eq!(j["profile"], "small");
    let stt = j["stt"].as_array().unwrap();
    assert_eq!(stt.len(), 2);
    for (s, secs) in stt.iter().zip([3000.0, 10000.0]) {
        assert_eq!(s["audio_ms"].as_f64(), Some(secs));
        positive(&s["latency_ms"], "stt latency");
        positive(&s["real_time_factor"], "stt rtf");
        // Content, not speed: the utterance was heard. Checked on the words heard first:
        // tiny.en with its window fitted to a silence-padded utterance sometimes says it twice
        // (a second segment hallucinated in the silence; 1 rendering in 6 here), which the
        // report's word_error_rate shows and the bench does not hide.
        let spoken = s["spoken"].as_str().unwrap();
        let heard: Vec<&str> = s["heard"].as_str().unwrap().split_whitespace().collect();
        let first = heard[..heard.len().min(spoken.split_whitespace().count())].join(" ");
        assert!(word_error_rate(spoken, &first) <= 0.25, "{s}");
    }
    for f in [
        "prefill_tokens_per_s",
        "generation_tokens_per_s",
        "first_token_ms",
    ] {
        positive(&j["llm"][f], f);
    }
    let turn = j["llm"]["turn_tokens"].as_u64().unwrap();
    assert!((30..=60).contains(&turn), "turn of {turn} tokens");
    assert_eq!(
        j["llm"]["cached_tokens"].as_u64(),
        j["llm"]["prefix_tokens"].as_u64(),
        "the turn starts from the cached prefix"
    );
    assert!(!j["llm"]["reply"].as_str().unwrap().trim().is_empty());
    positive(&j["tts"]["first_audio_ms"], "tts first audio");
    positive(&j["tts"]["real_time_factor"], "tts rtf");
    positive(&j["embeddings"]["per_second"], "embeddings/s");
    let rss = j["peak_rss_bytes"].as_u64().unwrap();
    assert!(rss > 200 << 20, "peak RSS {rss} with every model loaded");
    let targets: Vec<&str> = j["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            "stt_3s_latency",
            "llm_first_token_cached_prefix",
            "tts_first_audio"
        ]
    );
    for t in j["targets"].as_array().unwrap() {
        assert_eq!(
            t["pass"].as_bool().unwrap(),
            t["measured_ms"].as_f64().unwrap() <= t["target_ms"].as_f64().unwrap()
        );
    }
}

/// A mono G.711 WAV (format tag 7 µ-law, 6 A-law), header written by hand.
fn g711_wav(tag: u16, rate: u32, codes: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + codes.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes()); // bytes per second: one byte per sample
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&8u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(codes.len() as u32).to_le_bytes());
    v.extend_from_slice(codes);
    v
}
