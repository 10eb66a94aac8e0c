//! `cargo run --release --example tts_bench -p models-piper`: time to first audio of a 10-word
//! sentence and the real-time factor.

use std::time::Instant;

use models_api::testing::{model_file, models_dir};
use models_api::{CancelToken, Flow, Tts, TtsOptions};
use models_piper::{Piper, PiperConfig};

fn main() {
    if model_file("piper/en_US-joe-medium.onnx").is_none() {
        return;
    }
    let started = Instant::now();
    let tts = Piper::load(&PiperConfig::in_model_dir(
        &models_dir(),
        "en_US-joe-medium",
    ))
    .expect("load");
    println!("Piper joe-medium load: {:?}", started.elapsed());
    let options = TtsOptions::default();
    let cancel = CancelToken::new();
    let sentence = "Thank you for calling Acme Dental, how can I help?";
    tts.say("Warm up.", &options).expect("warm-up");
    for _ in 0..3 {
        let t = Instant::now();
        let mut first = None;
        tts.synthesize(sentence, &options, &cancel, &mut |s| {
            first.get_or_insert((t.elapsed(), s.duration()));
            Flow::Continue
        })
        .expect("synthesize");
        let (latency, audio) = first.expect("audio");
        println!(
            "10-word sentence: first audio after {:.0} ms for {:.2} s of speech",
            latency.as_secs_f64() * 1000.0,
            audio.as_secs_f64()
        );
    }
    let t = Instant::now();
    let short = tts.say("Sure.", &options).expect("say");
    println!(
        "\"Sure.\": {:.0} ms ({} samples)",
        t.elapsed().as_secs_f64() * 1000.0,
        short.len()
    );
    let paragraph = "We are open Monday to Friday from nine to five. Our address is twelve Main \
                     Street, above the pharmacy. A cleaning costs eighty dollars. Would you like \
                     me to book an appointment for you?";
    let t = Instant::now();
    let audio = tts.say(paragraph, &options).expect("say");
    let secs = t.elapsed().as_secs_f64();
    let dur = audio.len() as f64 / f64::from(tts.sample_rate());
    println!(
        "paragraph: {dur:.2} s of audio in {:.0} ms, real-time factor {:.3}",
        secs * 1000.0,
        secs / dur
    );
}
