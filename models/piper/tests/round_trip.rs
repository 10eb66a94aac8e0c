//! Piper speech recognised by whisper: at 16 kHz, and after the phone path (8 kHz, G.711 µ-law).

use std::sync::OnceLock;

use media_audio::g711::Law;
use media_audio::resample::{Resampler, SampleRate};
use models_api::testing::{model_file, models_dir, word_error_rate};
use models_api::{i16_to_f32, CancelToken, Flow, Stt, SttOptions, Tts, TtsOptions};
use models_piper::{Piper, PiperConfig};
use models_whisper::{Whisper, WhisperConfig};

/// No brand name: tiny.en hears "Acme Dental" as "Nacnedental" or "that me dental" (MODELS.md saw
/// the same); the appliance passes such names as `SttOptions::initial_prompt`.
const SENTENCE: &str = "Hello, thank you for calling the dental office. I can book a cleaning appointment for next Tuesday afternoon.";

fn engines() -> Option<&'static (Piper, Whisper)> {
    static ENGINES: OnceLock<Option<(Piper, Whisper)>> = OnceLock::new();
    ENGINES
        .get_or_init(|| {
            model_file("piper/en_US-joe-medium.onnx")?;
            let w = model_file("ggml-tiny.en.bin")?;
            let piper = Piper::load(&PiperConfig::in_model_dir(
                &models_dir(),
                "en_US-joe-medium",
            ))
            .expect("load Piper");
            let whisper = Whisper::load(&WhisperConfig::new(w)).expect("load whisper");
            Some((piper, whisper))
        })
        .as_ref()
}

fn resample(samples: &[i16], from: SampleRate, to: SampleRate) -> Vec<i16> {
    let mut r = Resampler::new(from, to).expect("supported rates");
    let mut out = Vec::new();
    r.process(samples, &mut out).expect("resample");
    r.flush(&mut out).expect("resample");
    out
}

fn transcribe(whisper: &Whisper, pcm16k: &[i16]) -> String {
    let t = whisper
        .transcribe(
            &i16_to_f32(pcm16k),
            &SttOptions::default(),
            &CancelToken::new(),
        )
        .expect("transcribe")
        .expect("not cancelled");
    t.text
}

#[test]
fn say_then_transcribe_round_trips() {
    let Some((piper, whisper)) = engines() else {
        return;
    };
    let audio = piper.say(SENTENCE, &TtsOptions::default()).unwrap();
    assert_eq!(piper.sample_rate(), 22050);
    let secs = audio.len() as f64 / 22050.0;
    assert!((4.0..12.0).contains(&secs), "{secs} s");
    let text = transcribe(
        whisper,
        &resample(&audio, SampleRate::Hz22050, SampleRate::Hz16000),
    );
    let wer = word_error_rate(SENTENCE, &text);
    eprintln!("16 kHz: {text:?} WER {wer:.3}");
    assert!(wer <= 0.10, "{text:?}");
}

#[test]
fn round_trips_through_8k_ulaw() {
    let Some((piper, whisper)) = engines() else {
        return;
    };
    let audio = piper.say(SENTENCE, &TtsOptions::default()).unwrap();
    let phone = resample(&audio, SampleRate::Hz22050, SampleRate::Hz8000);
    let decoded = Law::Mu.decode_vec(&Law::Mu.encode_vec(&phone));
    let text = transcribe(
        whisper,
        &resample(&decoded, SampleRate::Hz8000, SampleRate::Hz16000),
    );
    let wer = word_error_rate(SENTENCE, &text);
    eprintln!("8 kHz µ-law: {text:?} WER {wer:.3}");
    assert!(wer <= 0.10, "{text:?}");
}

#[test]
fn streams_sentence_by_sentence_and_honours_rate_volume_cancel() {
    let Some((piper, _)) = engines() else { return };
    let mut parts = Vec::new();
    let n = piper
        .synthesize(
            SENTENCE,
            &TtsOptions::default(),
            &CancelToken::new(),
            &mut |s| {
                parts.push(s);
                Flow::Continue
            },
        )
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        parts[0].text,
        "Hello, thank you for calling the dental office."
    );

    // Piper draws phoneme durations with noise (noise_w), so one rendering can run long or
    // short; three of each keep the comparison about the rate, not the draw.
    let slow = TtsOptions {
        length_scale: 1.5,
        volume: 0.5,
        ..TtsOptions::default()
    };
    let renderings = |options: &TtsOptions| -> Vec<Vec<i16>> {
        (0..3)
            .map(|_| piper.say(&parts[0].text, options).unwrap())
            .collect()
    };
    let seconds = |audio: &[Vec<i16>]| audio.iter().map(Vec::len).sum::<usize>() as f64 / 22050.0;
    let slow_renderings = renderings(&slow);
    let normal_secs = seconds(&renderings(&TtsOptions::default()));
    let slow_secs = seconds(&slow_renderings);
    eprintln!("length scale 1.5: {slow_secs:.2} s against {normal_secs:.2} s");
    assert!(
        slow_secs > normal_secs * 1.2,
        "{slow_secs} vs {normal_secs}"
    );
    let slow_audio = &slow_renderings[0];
    let peak = slow_audio.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!((16_000..=16_500).contains(&peak), "half volume peak {peak}");

    let cancel = CancelToken::new();
    let n = piper
        .synthesize(SENTENCE, &TtsOptions::default(), &cancel, &mut |_| {
            cancel.cancel();
            Flow::Continue
        })
        .unwrap();
    assert_eq!(n, 1, "cancel stops before the next sentence");
}

#[test]
fn phonemes_keep_clause_punctuation() {
    let Some((piper, _)) = engines() else { return };
    let ipa = piper.phonemize("Hello, world. Ready?").unwrap();
    eprintln!("{ipa}");
    assert!(ipa.contains(',') && ipa.ends_with('?'), "{ipa}");
    assert!(ipa.contains("həlˈoʊ"), "{ipa}");
}
