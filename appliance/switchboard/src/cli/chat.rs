//! `switchboard chat --agent NAME`: a text conversation with an agent, with the same prompt,
//! knowledge and dialog as a call. Reads one caller turn per line from standard input
//! (interactive or piped) and streams the reply chunk by chunk, as TTS would receive it. With
//! `--json`, each turn is one JSON object instead (what `tests/eval` scores in text mode).

use std::io::{BufRead, Write};

use crate::config::Config;
use crate::engines::Engines;
use anyhow::Context;
use models_api::{CancelToken, Flow};
use switchboard_agent::{Dialog, KnowledgeMode};

/// How `chat` runs.
#[derive(Debug, Default)]
pub struct ChatOptions {
    /// What the agent remembers from this caller's earlier calls.
    pub memory: Option<String>,
    /// Each turn's timings on standard error.
    pub stats: bool,
    /// The outcome as JSON at the end of input.
    pub outcome: bool,
    /// A new conversation for every line.
    pub fresh: bool,
    /// One JSON object per turn on standard output.
    pub json: bool,
}

pub fn run(config: &Config, agent: &str, chat: &ChatOptions) -> anyhow::Result<()> {
    let spec = super::agent_spec(config, agent)?;
    let engines = Engines::load(
        &config.models.dir,
        config.models.profile.into(),
        &config.models.llm,
        1,
    )?;
    let dialog_options = config
        .agents
        .iter()
        .find(|a| a.name == agent)
        .map(|a| a.dialog_options())
        .unwrap_or_default();
    let dialog = Dialog::load_with(
        engines.llm,
        engines.embedder,
        &spec,
        &config.data_dir,
        dialog_options,
    )
    .with_context(|| format!("cannot load agent {agent:?}"))?;
    for (path, why) in dialog.knowledge_failures() {
        eprintln!(
            "warning: knowledge file {} not ingested: {why}",
            path.display()
        );
    }
    eprintln!(
        "agent {agent}: {}; one line per turn, end with Ctrl-D",
        match dialog.knowledge_mode() {
            KnowledgeMode::None => "no knowledge".to_string(),
            KnowledgeMode::Cached { tokens } =>
                format!("knowledge cached in the prompt (~{tokens} tokens)"),
            KnowledgeMode::Retrieval { chunks } =>
                format!("knowledge retrieved per turn ({chunks} chunks)"),
        }
    );
    let memory = chat.memory.as_deref();
    let mut call = dialog.conversation(memory)?;
    let mut out = std::io::stdout();
    if !chat.json {
        writeln!(out, "agent> {}", spec.greeting.trim())?;
    }
    for line in std::io::stdin().lock().lines() {
        let line = line.context("cannot read standard input")?;
        if line.trim().is_empty() {
            continue;
        }
        if chat.fresh {
            call = dialog.conversation(memory)?;
        }
        if !chat.json {
            write!(out, "agent> ")?;
            out.flush()?;
        }
        let json = chat.json;
        let reply = call.reply(&line, &CancelToken::new(), &mut |chunk| {
            if !json {
                let _ = write!(out, "{chunk}");
                let _ = out.flush();
            }
            Flow::Continue
        })?;
        if json {
            let turn = serde_json::json!({
                "question": line.trim(),
                "reply": reply.text,
                "first_chunk_ms": reply.first_token.as_millis() as u64,
                "total_ms": reply.total.as_millis() as u64,
                "retrieval_ms": reply.retrieval.as_millis() as u64,
                "prompt_tokens": reply.prompt_tokens,
                "snippets": reply.snippets,
                "no_relevant_facts": reply.no_relevant_facts,
                "ungrounded": reply.ungrounded.as_ref().map(ToString::to_string),
            });
            writeln!(out, "{turn}")?;
        } else {
            writeln!(out)?;
        }
        if chat.stats {
            eprintln!(
                "[first chunk {} ms, total {} ms, retrieval {} ms, {} prompt tokens ({} cached), {} snippets]",
                reply.first_token.as_millis(),
                reply.total.as_millis(),
                reply.retrieval.as_millis(),
                reply.prompt_tokens,
                reply.cached_tokens,
                reply.snippets
            );
        }
    }
    if chat.outcome {
        let outcome = call.outcome(&CancelToken::new())?;
        println!("{}", serde_json::to_string(&outcome)?);
    }
    Ok(())
}
