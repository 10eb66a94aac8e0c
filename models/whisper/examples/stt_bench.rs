//! `cargo run --release --example stt_bench -p models-whisper`: STT latency on 3 s and 10 s of speech.

use std::process::Command;
use std::time::Instant;

use models_api::testing::model_file;
use models_api::{i16_to_f32, AudioContext, CancelToken, Stt, SttOptions};
use models_whisper::{Whisper, WhisperConfig};

/// espeak-ng speech at 16 kHz (espeak renders 22050 Hz; `sox`-free nearest-sample decimation is
/// fine for timing).
fn speech(text: &str) -> Vec<f32> {
    let out = Command::new("espeak-ng")
        .args(["-v", "en-us", "--stdout", text])
        .output()
        .expect("espeak-ng");
    let pcm: Vec<i16> = out.stdout[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let n = pcm.len() * 16_000 / 22_050;
    i16_to_f32(&(0..n).map(|i| pcm[i * 22_050 / 16_000]).collect::<Vec<_>>())
}

fn main() {
    let Some(path) = model_file("ggml-tiny.en.bin") else {
        return;
    };
    let started = Instant::now();
    let mut config = WhisperConfig::new(path);
    if let Some(n) = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.threads = n;
    }
    let stt = Whisper::load(&config).expect("load");
    println!("whisper tiny.en load: {:?}", started.elapsed());
    let sentence = "I would like to book a cleaning appointment next Tuesday afternoon please. ";
    let long = speech(&sentence.repeat(4));
    let cancel = CancelToken::new();
    for secs in [3usize, 10] {
        let audio = &long[..(secs * 16_000).min(long.len())];
        for (label, ctx) in [("fit", AudioContext::Fit), ("full", AudioContext::Full)] {
            let options = SttOptions {
                audio_context: ctx,
                ..SttOptions::default()
            };
            stt.transcribe(audio, &options, &cancel).expect("warm-up");
            let runs = 3;
            let t = Instant::now();
            let mut last = None;
            for _ in 0..runs {
                last = stt
                    .transcribe(audio, &options, &cancel)
                    .expect("transcribe");
            }
            let last = last.expect("not cancelled");
            println!(
                "STT {secs:>2} s audio, window {label:<4} (audio_ctx {:>4}): {:>6.0} ms  conf {:.2}  {:?}",
                last.audio_ctx,
                t.elapsed().as_secs_f64() * 1000.0 / runs as f64,
                last.confidence,
                last.text
            );
        }
    }
}
