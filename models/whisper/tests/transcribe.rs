//! whisper tiny.en on speech rendered by the espeak-ng program (a robotic voice, so the bounds
//! are loose; the Piper round trip in models-piper is the accuracy test).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use media_audio::resample::{Resampler, SampleRate};
use models_api::testing::{model_file, word_error_rate};
use models_api::{i16_to_f32, AudioContext, CancelToken, PartialTranscriber, Stt, SttOptions};
use models_whisper::{Whisper, WhisperConfig};

fn whisper() -> Option<Whisper> {
    let path = model_file("ggml-tiny.en.bin")?;
    Some(Whisper::load(&WhisperConfig::new(path)).expect("load ggml-tiny.en.bin"))
}

/// `text` spoken by espeak-ng, as 16 kHz f32.
fn speech(text: &str) -> Vec<f32> {
    let dir = tempfile::tempdir().expect("temp dir");
    let wav: PathBuf = dir.path().join("speech.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng must be installed (Debian package espeak-ng)");
    assert!(status.success());
    let mut reader = hound::WavReader::open(&wav).expect("espeak-ng's WAV");
    assert_eq!(reader.spec().sample_rate, 22050);
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("WAV sample"))
        .collect();
    let mut r = Resampler::new(SampleRate::Hz22050, SampleRate::Hz16000).expect("supported rates");
    let mut out = Vec::new();
    r.process(&samples, &mut out).expect("resample");
    r.flush(&mut out).expect("resample");
    i16_to_f32(&out)
}

const SENTENCE: &str = "I would like to book a cleaning appointment next Tuesday afternoon.";

#[test]
fn transcribes_a_sentence_with_fitted_window() {
    let Some(stt) = whisper() else { return };
    let audio = speech(SENTENCE);
    let t = stt
        .transcribe(&audio, &SttOptions::default(), &CancelToken::new())
        .unwrap()
        .unwrap();
    let wer = word_error_rate(SENTENCE, &t.text);
    eprintln!(
        "{:?} wer={wer:.2} conf={:.2} ctx={} in {:?}",
        t.text, t.confidence, t.audio_ctx, t.elapsed
    );
    assert!(wer <= 0.25, "{:?}", t.text);
    assert!(
        t.audio_ctx < 1500,
        "window fitted to {:?} of audio",
        t.audio
    );
    assert!(t.confidence > 0.5 && t.confidence <= 1.0);
    assert!(!t.segments.is_empty());
    let last = t.segments.last().unwrap();
    assert!(last.end > Duration::ZERO && last.end <= t.audio + Duration::from_millis(500));
}

#[test]
/// The speed-up itself is measured by `stt_bench` (speed lives in benches, not in timed tests).
fn fitted_window_transcribes_like_the_full_one() {
    let Some(stt) = whisper() else { return };
    let audio = speech("What time do you open on Monday?");
    let cancel = CancelToken::new();
    let fit = SttOptions::default();
    let full = SttOptions {
        audio_context: AudioContext::Full,
        ..SttOptions::default()
    };
    stt.transcribe(&audio, &fit, &cancel).unwrap(); // warm-up
    let a = stt.transcribe(&audio, &fit, &cancel).unwrap().unwrap();
    let b = stt.transcribe(&audio, &full, &cancel).unwrap().unwrap();
    eprintln!(
        "fit {:?} ({}) vs full {:?}: {:?} / {:?}",
        a.elapsed, a.audio_ctx, b.elapsed, a.text, b.text
    );
    assert!(
        a.audio_ctx * 4 < b.audio_ctx,
        "a 2 s segment uses a fraction of the 30 s window"
    );
    assert!(word_error_rate(&b.text, &a.text) <= 0.2);
}

#[test]
fn cancelled_call_returns_none_and_state_is_reusable() {
    let Some(stt) = whisper() else { return };
    let audio = speech(SENTENCE);
    let cancel = CancelToken::new();
    cancel.cancel();
    assert!(stt
        .transcribe(&audio, &SttOptions::default(), &cancel)
        .unwrap()
        .is_none());

    // Cancelled from another thread while the decode waits for its CPU turn, which this thread
    // holds until it has cancelled: whisper's abort callback stops the decode at its first step
    // (or, had the decode not started yet, the check on entry does).
    let long: Vec<f32> = audio.iter().chain(&audio).chain(&audio).copied().collect();
    let cancel = CancelToken::new();
    let turn = models_api::compute::cpu_turn();
    let result = std::thread::scope(|s| {
        let decoding = s.spawn(|| stt.transcribe(&long, &SttOptions::default(), &cancel));
        cancel.cancel();
        drop(turn);
        decoding.join().unwrap()
    })
    .unwrap();
    assert!(result.is_none(), "cancelled mid-decode: {result:?}");
    let again = stt
        .transcribe(&audio, &SttOptions::default(), &CancelToken::new())
        .unwrap()
        .unwrap();
    assert!(
        word_error_rate(SENTENCE, &again.text) <= 0.25,
        "{:?}",
        again.text
    );
}

#[test]
fn partial_mode_stabilises_words_of_a_growing_utterance() {
    let Some(stt) = whisper() else { return };
    let audio = speech(SENTENCE);
    let options = SttOptions::default();
    let cancel = CancelToken::new();
    let mut partial = PartialTranscriber::new();
    let mut last = None;
    for chunk in audio.chunks(16_000 / 2 * 3) {
        partial.push(chunk);
        if let Some(p) = partial.update(&stt, &options, &cancel).unwrap() {
            eprintln!("partial {:?} stable {:?}", p.text, p.stable);
            last = Some(p);
        }
    }
    let last = last.unwrap();
    assert!(
        !last.stable.is_empty(),
        "later hypotheses agree on a prefix"
    );
    let done = partial.finish(&stt, &options, &cancel).unwrap().unwrap();
    assert!(
        word_error_rate(SENTENCE, &done.text) <= 0.25,
        "{:?}",
        done.text
    );
    assert!(SENTENCE
        .to_lowercase()
        .starts_with(&last.stable.to_lowercase().replace(',', "")[..3]));
}

#[test]
fn silence_and_empty_audio_give_no_words() {
    let Some(stt) = whisper() else { return };
    let t = stt
        .transcribe(&[], &SttOptions::default(), &CancelToken::new())
        .unwrap()
        .unwrap();
    assert_eq!(t.text, "");
    let t = stt
        .transcribe(
            &vec![0.0; 16_000],
            &SttOptions::default(),
            &CancelToken::new(),
        )
        .unwrap()
        .unwrap();
    assert!(t.text.split_whitespace().count() <= 2, "{:?}", t.text);
}
