//! `switchboard memory …`: what agents remember about callers between calls, for an operator
//! to review and delete (privacy requests). Deletions are audited as done by `cli:$USER`.

use std::collections::HashMap;

use anyhow::Context;
use clap::Subcommand;
use switchboard_store::{AgentId, CallerMemory, Store};

#[derive(Subcommand)]
pub enum MemoryCommand {
    /// List what agents remember, most recent first.
    List {
        /// Only this agent's memories.
        #[arg(long)]
        agent: Option<String>,
    },
    /// Show what every agent remembers about one caller's number.
    Show { number: String },
    /// Delete what agents remember about one caller's number.
    Forget {
        number: String,
        /// Only this agent forgets [default: every agent].
        #[arg(long)]
        agent: Option<String>,
    },
}

pub async fn run(store: &Store, cmd: MemoryCommand) -> anyhow::Result<()> {
    let names: HashMap<AgentId, String> = store.agent_ids().await?.into_iter().collect();
    match cmd {
        MemoryCommand::List { agent } => {
            let agents: Vec<AgentId> = match agent {
                Some(name) => vec![agent_id(store, &name).await?],
                None => names.keys().cloned().collect(),
            };
            let mut memories = Vec::new();
            for id in &agents {
                memories.extend(store.caller_memories(id).await?);
            }
            memories.sort_by_key(|m| std::cmp::Reverse(m.updated_at));
            for m in &memories {
                print(m, &names)?;
            }
        }
        MemoryCommand::Show { number } => {
            let memories = store.memories_of_caller(&number).await?;
            anyhow::ensure!(!memories.is_empty(), "no agent remembers {number}");
            for m in &memories {
                print(m, &names)?;
            }
        }
        MemoryCommand::Forget { number, agent } => {
            let actor = super::actor();
            let forgotten = match agent {
                Some(name) => {
                    let id = agent_id(store, &name).await?;
                    store.forget_caller(&id, &number, &actor).await?;
                    1
                }
                None => store.forget_caller_everywhere(&number, &actor).await?,
            };
            println!("{number} forgotten by {forgotten} agent(s)");
        }
    }
    Ok(())
}

async fn agent_id(store: &Store, name: &str) -> anyhow::Result<AgentId> {
    Ok(store
        .agent_by_name(name)
        .await?
        .with_context(|| format!("no agent named {name:?}"))?
        .id)
}

/// One memory per line: agent, number, last update, summary.
fn print(m: &CallerMemory, names: &HashMap<AgentId, String>) -> anyhow::Result<()> {
    let agent = names.get(&m.agent_id).map_or("?", String::as_str);
    super::emit(&format!(
        "{agent}\t{}\t{}\t{}",
        m.caller_number,
        utc(m.updated_at.0),
        m.summary
    ))
}

/// An HTTP date (`Tue, 14 Nov 2023 22:13:20 GMT`) from Unix milliseconds.
fn utc(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(at)
}
