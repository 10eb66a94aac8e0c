//! `switchboard chat --agent NAME`: a text conversation with an agent, with the same prompt,
//! knowledge and dialog brain as a call. Reads one caller turn per line from standard input
//! (interactive or piped) and streams the reply chunk by chunk, as TTS would receive it.

use std::io::{BufRead, Write};

use crate::config::Config;
use crate::engines::Engines;
use anyhow::Context;
use models_api::{CancelToken, Flow};
use switchboard_agent::{Brain, KnowledgeMode};

pub fn run(
    config: &Config,
    agent: &str,
    memory: Option<String>,
    stats: bool,
    outcome: bool,
) -> anyhow::Result<()> {
    let spec = super::agent_spec(config, agent)?;
    let engines = Engines::load(
        &config.models.dir,
        config.models.profile.into(),
        &config.models.llm,
    )?;
    let brain = Brain::load(engines.llm, engines.embedder, &spec, &config.data_dir)
        .with_context(|| format!("cannot load agent {agent:?}"))?;
    for (path, why) in brain.knowledge_failures() {
        eprintln!(
            "warning: knowledge file {} not ingested: {why}",
            path.display()
        );
    }
    eprintln!(
        "agent {agent}: {}; one line per turn, end with Ctrl-D",
        match brain.knowledge_mode() {
            KnowledgeMode::None => "no knowledge".to_string(),
            KnowledgeMode::Cached { tokens } =>
                format!("knowledge cached in the prompt (~{tokens} tokens)"),
            KnowledgeMode::Retrieval { chunks } =>
                format!("knowledge retrieved per turn ({chunks} chunks)"),
        }
    );
    let mut call = brain.conversation(memory.as_deref())?;
    let mut out = std::io::stdout();
    writeln!(out, "agent> {}", spec.greeting.trim())?;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("cannot read standard input")?;
        if line.trim().is_empty() {
            continue;
        }
        write!(out, "agent> ")?;
        out.flush()?;
        let reply = call.reply(&line, &CancelToken::new(), &mut |chunk| {
            let _ = write!(out, "{chunk}");
            let _ = out.flush();
            Flow::Continue
        })?;
        writeln!(out)?;
        if stats {
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
    if outcome {
        let outcome = call.outcome(&CancelToken::new())?;
        println!("{}", serde_json::to_string(&outcome)?);
    }
    Ok(())
}
