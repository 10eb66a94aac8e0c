//! `cargo run --release --example llm_bench -p models-llama`: prefill and generation speed, and the
//! first token of a 40-token turn on a cached agent prefix.

use std::time::Instant;

use models_api::testing::model_file;
use models_api::{CancelToken, ChatMessage, Flow, GenerateOptions, Llm, LlmSession};
use models_llama::{Llama, LlamaConfig};

const SYSTEM: &str = models_api::bench::AGENT_PROMPT;

fn main() {
    let Some(path) = model_file("qwen2.5-coder-0.5b-instruct-q4_0.gguf") else {
        return;
    };
    let started = Instant::now();
    let mut config = LlamaConfig::new(path);
    if let Some(n) = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.threads = n;
        config.batch_threads = n;
    }
    let llm = Llama::load(&config).expect("load");
    println!(
        "Qwen2.5-Coder-0.5B Q4_0 load: {:?}, threads {}",
        started.elapsed(),
        llm.config().threads
    );
    let cancel = CancelToken::new();

    let t = Instant::now();
    let prefix = llm.prefix(SYSTEM).expect("prefix");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "prefill (agent prefix, cold): {} tokens in {:.0} ms = {:.0} tok/s",
        prefix.token_count(),
        secs * 1000.0,
        prefix.token_count() as f64 / secs
    );

    let turn = models_api::bench::CALLER_TURN;
    println!("turn: {} tokens of user text", llm.count_tokens(turn));
    for round in 0..3 {
        let t = Instant::now();
        let mut s = llm.session(Some(&prefix)).expect("session");
        let session_ms = t.elapsed().as_secs_f64() * 1000.0;
        s.push(ChatMessage::user(turn));
        let options = GenerateOptions {
            max_tokens: 64,
            ..Default::default()
        };
        let g = s
            .generate(&options, &cancel, &mut |_| Flow::Continue)
            .expect("generate");
        let gen_secs = (g.elapsed - g.first_token.unwrap_or_default()).as_secs_f64();
        println!(
            "round {round}: session from prefix {session_ms:.0} ms; turn prefill {} tokens in {:.0} ms ({} cached); \
             first token {:.0} ms; generation {} tokens at {:.1} tok/s; {:?}",
            g.prefilled_tokens,
            g.prefill.as_secs_f64() * 1000.0,
            g.cached_tokens,
            g.first_token.unwrap_or_default().as_secs_f64() * 1000.0,
            g.generated_tokens,
            (g.generated_tokens.saturating_sub(1)) as f64 / gen_secs.max(1e-9),
            g.stop
        );
        if round == 0 {
            println!("  reply: {:?}", g.text);
        }
    }
}
