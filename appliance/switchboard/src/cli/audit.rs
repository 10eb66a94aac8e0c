//! `switchboard audit …`: reading the audit log and checking that nobody edited it.

use clap::Subcommand;
use serde_json::json;
use switchboard_store::Store;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// The newest entries, newest first (one JSON object per line).
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Walk the hash chain: exits 1, naming each break, when an entry was edited, deleted or
    /// slipped in. Prints the head (sequence number and hash) to compare with the last one
    /// logged, which shows the newest entries cut off.
    Verify,
}

pub async fn run(store: &Store, cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::List { limit } => {
            for e in store.audit_entries(limit).await? {
                let line = json!({
                    "at": e.at.0,
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "detail": serde_json::from_str::<serde_json::Value>(&e.detail)
                        .unwrap_or(serde_json::Value::String(e.detail)),
                });
                super::emit(&line.to_string())?;
            }
            Ok(())
        }
        AuditCommand::Verify => {
            let verdict = store.verify_audit().await?;
            let head = verdict.head.map_or("none".into(), |(seq, hash)| {
                format!("entry {seq}, sha256 {hash}")
            });
            if verdict.breaks.is_empty() {
                println!("audit log intact: {} entries; head {head}", verdict.entries);
                return Ok(());
            }
            for problem in &verdict.breaks {
                eprintln!("{problem}");
            }
            anyhow::bail!(
                "the audit log was tampered with ({} breaks in {} entries; head {head})",
                verdict.breaks.len(),
                verdict.entries
            )
        }
    }
}
