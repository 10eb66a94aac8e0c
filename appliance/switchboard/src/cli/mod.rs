//! Operator commands: those that run the engines in the foreground (`transcribe`, `say`,
//! `bench models`, `chat` and `kb`, loading only the engines they need, straight from the
//! model directory), `memory`, `blacklist`, `audit` and `keys`, on the database, and `doctor`.

pub mod audio;
pub mod audit;
pub mod bench;
pub mod blacklist;
pub mod campaign;
pub mod chat;
pub mod doctor;
pub mod kb;
pub mod keys;
pub mod memory;
pub mod tools;

use crate::config::Config;
use anyhow::Context;
use switchboard_agent::AgentSpec;

/// Writes `text` and a newline to standard output. A closed pipe (`… | head`) ends the output
/// quietly, as for any Unix tool, instead of panicking like `println!`.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to standard output"),
    }
}

/// Who did it, for the audit log: `cli:` and the operating-system user running the command.
pub fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

/// The agent `name` as a call would see it: declared in the configuration (with its knowledge
/// paths), else created in the admin UI (knowledge managed with `switchboard kb`).
pub fn agent_spec(config: &Config, name: &str) -> anyhow::Result<AgentSpec> {
    if let Some(a) = config.agents.iter().find(|a| a.name == name) {
        let prompt = a
            .prompt_text()
            .with_context(|| format!("cannot read the prompt file of agent {name:?}"))?;
        return Ok(AgentSpec {
            name: a.name.clone(),
            prompt,
            greeting: a.greeting.clone(),
            knowledge: a.knowledge.clone(),
            language: a.language.clone(),
            can_transfer: a.transfer_to.is_some(),
        });
    }
    let stored = stored_agent(config, name)?
        .with_context(|| format!("no agent named {name:?} in the configuration or the database"))?;
    Ok(AgentSpec {
        name: stored.name,
        prompt: stored.prompt,
        greeting: stored.greeting,
        knowledge: Vec::new(),
        language: stored.language,
        can_transfer: stored.transfer_to.is_some(),
    })
}

fn stored_agent(config: &Config, name: &str) -> anyhow::Result<Option<switchboard_store::Agent>> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let Some(store) = crate::open_existing_store(config).await? else {
                return Ok(None);
            };
            let agent = store.agent_by_name(name).await?;
            store.close().await;
            Ok(agent)
        })
}
