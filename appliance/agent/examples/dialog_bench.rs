//! Cached vs retrieved knowledge, and speculative prefill, on the small models: time to the first
//! speakable chunk for the same questions over the Acme Dental documents.
//!
//! `cargo run --example dialog_bench -p switchboard-agent` (with `-p switchboard` in the same
//! invocation to reuse the engines' C++ build). `BENCH_THREADS` sets the LLM's threads (default 1).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use models_api::testing::model_file;
use models_api::{CancelToken, Flow};
use models_embed::MiniLm;
use models_llama::{Llama, LlamaConfig};
use switchboard_agent::{AgentSpec, Dialog};

const QUESTIONS: &[&str] = &[
    "How much does a cleaning cost?",
    "What time do you close on Fridays?",
    "Is there parking near the practice?",
    "What's the weather like on Mars?",
];

fn main() {
    let (Some(gguf), Some(minilm)) = (
        model_file("qwen2.5-coder-0.5b-instruct-q4_0.gguf"),
        model_file("all-MiniLM-L6-v2"),
    ) else {
        return;
    };
    let threads = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let llm = Arc::new(
        Llama::load(&LlamaConfig {
            threads,
            ..LlamaConfig::new(gguf)
        })
        .unwrap(),
    );
    let embedder = Arc::new(MiniLm::load(&minilm).unwrap());
    let acme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kb/tests/data/acme");
    let cases: [(&str, Vec<PathBuf>); 2] = [
        (
            "cached",
            vec![acme.join("about.md"), acme.join("prices.html")],
        ),
        (
            "retrieval",
            vec![
                acme.join("about.md"),
                acme.join("prices.html"),
                acme.join("faq.csv"),
                acme.join("policies.txt"),
                acme.join("new-patients.pdf"),
            ],
        ),
    ];
    println!("threads {threads}");
    for (name, knowledge) in cases {
        let data = tempfile::tempdir().unwrap();
        let spec = AgentSpec {
            name: name.into(),
            prompt: "You are Sam, the receptionist of Acme Dental, a family dental practice."
                .into(),
            greeting: "Hello, Acme Dental, this is Sam. How can I help you?".into(),
            knowledge,
            language: "en".into(),
            can_transfer: true,
        };
        let started = Instant::now();
        let dialog =
            Dialog::load(Arc::clone(&llm), Arc::clone(&embedder), &spec, data.path()).unwrap();
        println!(
            "{name}: {:?}, load (ingest + prefix prefill) {:?}",
            dialog.knowledge_mode(),
            started.elapsed()
        );
        let mut firsts = Vec::new();
        for q in QUESTIONS {
            let mut call = dialog.conversation(None).unwrap();
            call.prepare(&CancelToken::new()).unwrap();
            let r = call
                .reply(q, &CancelToken::new(), &mut |_| Flow::Continue)
                .unwrap();
            println!(
                "  {q:<40} first chunk {:>5} ms  retrieval {:>3} ms  prompt {:>3} tok  total {:>5} ms  {:?}",
                r.first_token.as_millis(), r.retrieval.as_millis(), r.prompt_tokens, r.total.as_millis(), r.text
            );
            firsts.push(r.first_token);
        }
        // The same questions with a speculative prefill on the first two thirds of the words.
        let mut speculative = Vec::new();
        for q in QUESTIONS {
            let mut call = dialog.conversation(None).unwrap();
            call.prepare(&CancelToken::new()).unwrap();
            let words: Vec<&str> = q.split_whitespace().collect();
            let partial = words[..words.len() * 2 / 3].join(" ");
            call.prefill_partial(&partial, &CancelToken::new()).unwrap();
            let r = call
                .reply(q, &CancelToken::new(), &mut |_| Flow::Continue)
                .unwrap();
            speculative.push(r.first_token);
        }
        println!(
            "  median first chunk: {:?}; after a speculative prefill: {:?}",
            median(firsts),
            median(speculative)
        );
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
