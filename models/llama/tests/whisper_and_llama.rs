//! The link problem: whisper.cpp (static, its own ggml) and llama.cpp (shared libllama.so +
//! libggml*.so) in one process, both used. A symbol clash shows up here as a crash or garbage.

use std::process::Command;

use models_api::testing::model_file;
use models_api::{
    i16_to_f32, CancelToken, ChatMessage, Flow, GenerateOptions, Llm, LlmSession, Stt, SttOptions,
};
use models_llama::{Llama, LlamaConfig};
use models_whisper::{Whisper, WhisperConfig};

#[test]
fn whisper_and_llama_in_one_process() {
    let (Some(w), Some(q)) = (
        model_file("ggml-tiny.en.bin"),
        model_file("qwen2.5-coder-0.5b-instruct-q4_0.gguf"),
    ) else {
        return;
    };
    let stt = Whisper::load(&WhisperConfig::new(w)).unwrap();
    let llm = Llama::load(&LlamaConfig {
        n_ctx: 1024,
        ..LlamaConfig::new(q)
    })
    .unwrap();

    // 16 kHz speech straight from espeak-ng (raw 16-bit output at 22050 Hz, naive decimation is
    // good enough for this smoke test).
    let out = Command::new("espeak-ng")
        .args(["-v", "en-us", "--stdout", "What is the capital of France?"])
        .output()
        .unwrap();
    let pcm: Vec<i16> = out.stdout[44..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let audio: Vec<f32> = i16_to_f32(&pcm)
        .iter()
        .enumerate()
        .filter(|(i, _)| i * 16_000 / 22_050 != (i + 1) * 16_000 / 22_050)
        .map(|(_, s)| *s)
        .collect();
    let heard = stt
        .transcribe(&audio, &SttOptions::default(), &CancelToken::new())
        .unwrap()
        .unwrap();
    eprintln!("heard {:?}", heard.text);
    assert!(
        heard.text.to_lowercase().contains("france"),
        "{:?}",
        heard.text
    );

    let mut s = llm.session(None).unwrap();
    s.push(ChatMessage::user(heard.text.clone()));
    let g = s
        .generate(
            &GenerateOptions {
                max_tokens: 24,
                ..Default::default()
            },
            &CancelToken::new(),
            &mut |_| Flow::Continue,
        )
        .unwrap();
    eprintln!("answer {:?}", g.text);
    assert!(g.text.contains("Paris"), "{:?}", g.text);

    // And whisper again after llama.cpp ran: its ggml state is untouched.
    let again = stt
        .transcribe(&audio, &SttOptions::default(), &CancelToken::new())
        .unwrap()
        .unwrap();
    assert_eq!(again.text, heard.text);
}
