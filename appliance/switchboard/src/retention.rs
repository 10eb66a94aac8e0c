//! Retention and erasure in the daemon: the hourly purge of what each agent's policy no longer
//! keeps (`[retention]`, `[agents.retention]`), and the erasure of one caller everywhere
//! (`switchboard erase`, `DELETE /api/callers/{number}`).
//!
//! Files go before rows: a recording is removed from disk first and its row forgets it after,
//! so a failure half-way leaves a row that names a missing file (removed again next time),
//! never a file that no row names.

use std::time::Duration;

use switchboard_store::{AgentId, CallsOf, Erased, Store, UnixMillis};

use crate::config::{Config, Retention};
use crate::pii::Pii;
use crate::Error;

/// How often the daemon purges.
pub const EVERY: Duration = Duration::from_secs(3600);

/// What one purge removed, over every agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub recordings: u64,
    /// Calls whose words were removed.
    pub transcripts: u64,
    pub memories: u64,
    pub calls: u64,
}

/// Removes, as of `now`, what the policies no longer keep: for each agent in the database (by
/// its configured policy over `[retention]`, or `[retention]` alone when it is no longer
/// configured) and for calls of no agent. Recordings only of this box.
pub async fn purge(config: &Config, store: &Store, now: UnixMillis) -> Result<Purged, Error> {
    let node = config.node_name();
    let mut scopes: Vec<(Option<AgentId>, String, Retention)> = store
        .agent_ids()
        .await?
        .into_iter()
        .map(|(id, name)| {
            let policy = config
                .agents
                .iter()
                .find(|a| a.name == name)
                .map_or(config.retention, |a| a.retention.or(config.retention));
            (Some(id), name, policy.applied())
        })
        .collect();
    scopes.push((None, "(no agent)".into(), config.retention.applied()));
    let mut purged = Purged::default();
    for (agent, target, keep) in &scopes {
        let calls = agent.as_ref().map_or(CallsOf::NoAgent, CallsOf::Agent);
        let before = |period: Duration| {
            UnixMillis(
                now.0
                    .saturating_sub(i64::try_from(period.as_millis()).unwrap_or(i64::MAX)),
            )
        };
        if let Some(period) = keep.recordings {
            let files = store
                .recordings_ended_before(calls, &node, before(period))
                .await?;
            let mut removed = 0;
            for (call, path) in files {
                if remove(&path).await {
                    store.forget_recording(&call).await?;
                    removed += 1;
                }
            }
            if removed > 0 {
                let detail = serde_json::json!({
                    "what": "recordings",
                    "recordings": removed,
                    "ended_before": before(period).0,
                });
                store
                    .audit("system", "retention.purge", target, &detail.to_string())
                    .await?;
            }
            purged.recordings += removed;
        }
        if let Some(period) = keep.transcripts {
            let (calls, memories) = store
                .purge_transcripts(calls, before(period), target)
                .await?;
            purged.transcripts += calls;
            purged.memories += memories;
        }
        if let Some(period) = keep.calls {
            purged.calls += store.purge_calls(calls, before(period), target).await?;
        }
    }
    Ok(purged)
}

/// Purges now and every [`EVERY`] until the task is dropped; failures are logged and retried
/// on the next round.
pub async fn run(config: Config, store: Store) {
    loop {
        match purge(&config, &store, UnixMillis::now()).await {
            Ok(p) if p != Purged::default() => tracing::info!(
                recordings = p.recordings,
                transcripts = p.transcripts,
                memories = p.memories,
                calls = p.calls,
                "retention: removed what the policies no longer keep"
            ),
            Ok(_) => tracing::debug!("retention: nothing to remove"),
            Err(e) => tracing::error!("retention purge failed (retried in an hour): {e}"),
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// What erasing a caller removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erasure {
    pub rows: Erased,
    /// Recording files removed from this box.
    pub recordings: u64,
}

impl Erasure {
    pub fn to_json(&self) -> serde_json::Value {
        let mut report = self.rows.to_json();
        report["recordings"] = self.recordings.into();
        report
    }
}

/// Erases every trace of the caller `number` (written with or without `+`): this box's
/// recordings of their calls, then every row about them ([`Store::erase_caller`]), audited as
/// done by `actor` under the number's last two digits. Recordings held by other boxes sharing
/// the database stop it before any row is touched: the erasure is run there first.
pub async fn erase(store: &Store, node: &str, number: &str, actor: &str) -> Result<Erasure, Error> {
    let number = number.trim();
    if number.trim_start_matches('+').is_empty() || number.contains(char::is_whitespace) {
        return Err(Error::NotANumber(number.to_owned()));
    }
    let forms = match number.strip_prefix('+') {
        Some(bare) => [number.to_owned(), bare.to_owned()],
        None => [number.to_owned(), format!("+{number}")],
    };
    let mut recordings = 0;
    let mut elsewhere = Vec::new();
    for (call, path, holder) in store.recordings_of_caller(&forms).await? {
        if holder.as_deref().is_some_and(|h| h != node) {
            elsewhere.extend(holder);
            continue;
        }
        if !remove(&path).await {
            return Err(Error::Recording { path });
        }
        store.forget_recording(&call).await?;
        recordings += 1;
    }
    if !elsewhere.is_empty() {
        elsewhere.sort();
        elsewhere.dedup();
        return Err(Error::RecordingsElsewhere(elsewhere.join(", ")));
    }
    let rows = store.erase_caller(&forms, actor).await?;
    tracing::info!(caller = %Pii(number), calls = rows.calls, recordings, "caller erased");
    Ok(Erasure { rows, recordings })
}

/// Removes a recording file; a file already gone counts as removed.
async fn remove(path: &str) -> bool {
    match tokio::fs::remove_file(path).await {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            tracing::error!(path, "cannot remove a recording: {e}");
            false
        }
    }
}
