//! Retention and erasure: how long what a call leaves behind is kept, and how one caller is
//! forgotten everywhere.
//!
//! A call leaves three layers, kept for up to three periods: its recording (a file on the box
//! that took the call, pointed to by the call's row), its words (transcript, turns, summary and
//! outcome, and the caller memory made from them) and its record (the row itself, with the
//! consent decision that belongs to it). The daemon computes the cut-offs from each agent's
//! policy; this module removes what ended before them, each step audited in its own
//! transaction. A recording is removed only by the box that holds it, and a row whose recording
//! is still on disk waits for it: no file is ever left without the row that names it.

use sqlx::{Any, Row, Transaction};

use crate::sealing::redacted;
use crate::{audit, q, AgentId, CallRecordId, Result, Store, UnixMillis};

/// Whose calls a purge applies to.
#[derive(Clone, Copy, Debug)]
pub enum CallsOf<'a> {
    Agent(&'a AgentId),
    /// Calls routed to no agent (refused early, or their agent deleted).
    NoAgent,
}

impl CallsOf<'_> {
    /// The clause selecting these calls; the agent, when there is one, is `$2`.
    fn clause(self) -> &'static str {
        match self {
            CallsOf::Agent(_) => "agent_id = $2",
            CallsOf::NoAgent => "agent_id IS NULL",
        }
    }
}

/// What erasing one caller removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Erased {
    /// Calls from or to the number; their recordings are removed before.
    pub calls: u64,
    pub transcript_lines: u64,
    pub turns: u64,
    pub consent_entries: u64,
    pub memories: u64,
    pub blacklist_entries: u64,
    pub contacts: u64,
    /// The number is on the do-not-disturb list and stays there: erasing it would let the box
    /// call the person again.
    pub kept_on_dnd: bool,
}

impl Erased {
    /// The report as JSON, as the audit entry, the API and the command show it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "calls": self.calls,
            "transcript_lines": self.transcript_lines,
            "turns": self.turns,
            "consent_entries": self.consent_entries,
            "memories": self.memories,
            "blacklist_entries": self.blacklist_entries,
            "contacts": self.contacts,
            "kept_on_dnd": self.kept_on_dnd,
        })
    }
}

/// The parameters of a statement: a purge's cut-off (`$1`) and agent (`$2`), or a caller's
/// two written forms, sealed (`$1`, `$2`).
#[derive(Clone, Copy)]
enum Binds<'a> {
    Purge(UnixMillis, CallsOf<'a>),
    Caller(&'a [String; 2]),
}

impl Store {
    /// Recordings of calls that ended before `ended_before` and were taken by `node`: the files
    /// to remove before [`Store::forget_recording`].
    pub async fn recordings_ended_before(
        &self,
        calls: CallsOf<'_>,
        node: &str,
        ended_before: UnixMillis,
    ) -> Result<Vec<(CallRecordId, String)>> {
        let node_at = if matches!(calls, CallsOf::Agent(_)) {
            3
        } else {
            2
        };
        let sql = format!(
            "SELECT id, recording_path FROM calls WHERE ended_at < $1 AND {} \
             AND recording_path IS NOT NULL AND node = ${node_at}",
            calls.clause(),
        );
        let mut query = sqlx::query(&sql).bind(ended_before.0);
        if let CallsOf::Agent(agent) = calls {
            query = query.bind(agent.as_str());
        }
        let rows = query
            .bind(node)
            .fetch_all(&self.pool)
            .await
            .map_err(q("list recordings to purge"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    CallRecordId::from_string(r.try_get(0).map_err(q("list recordings"))?),
                    r.try_get(1).map_err(q("list recordings"))?,
                ))
            })
            .collect()
    }

    /// The call no longer has a recording (its file was removed).
    pub async fn forget_recording(&self, call: &CallRecordId) -> Result<()> {
        sqlx::query("UPDATE calls SET recording_path = NULL WHERE id = $1")
            .bind(call.as_str())
            .execute(&self.pool)
            .await
            .map_err(q("forget recording"))?;
        Ok(())
    }

    /// Removes the words of calls that ended before `ended_before` (transcript lines, turns,
    /// summary, outcome) and the agent's caller memories last updated before then; the records
    /// stay. Returns how many calls and memories lost something; audited as `retention.purge`
    /// by `system` under `target` when that is not nothing.
    pub async fn purge_transcripts(
        &self,
        calls: CallsOf<'_>,
        ended_before: UnixMillis,
        target: &str,
    ) -> Result<(u64, u64)> {
        let mut tx = self.write_tx().await?;
        let binds = Binds::Purge(ended_before, calls);
        let of = calls.clause();
        let purged = count(
            &mut tx,
            &format!(
                "SELECT COUNT(*) FROM calls c WHERE ended_at < $1 AND {of} \
                 AND (summary IS NOT NULL OR outcome IS NOT NULL \
                 OR EXISTS (SELECT 1 FROM call_turns t WHERE t.call_id = c.id) \
                 OR EXISTS (SELECT 1 FROM transcript_lines l WHERE l.call_id = c.id))"
            ),
            binds,
        )
        .await?;
        let ids = format!("SELECT id FROM calls WHERE ended_at < $1 AND {of}");
        for sql in [
            format!("DELETE FROM transcript_lines WHERE call_id IN ({ids})"),
            format!("DELETE FROM call_turns WHERE call_id IN ({ids})"),
            format!("UPDATE calls SET summary = NULL, outcome = NULL WHERE id IN ({ids})"),
        ] {
            execute(&mut tx, &sql, binds).await?;
        }
        let memories = match calls {
            CallsOf::Agent(_) => {
                // The agent is $2 here too, so the statement binds like the others.
                let sql = "DELETE FROM caller_memory WHERE updated_at < $1 AND agent_id = $2";
                execute(&mut tx, sql, binds).await?
            }
            CallsOf::NoAgent => 0,
        };
        if purged + memories > 0 {
            let detail = serde_json::json!({
                "what": "transcripts",
                "calls": purged,
                "memories": memories,
                "ended_before": ended_before.0,
            });
            audit_purge(&mut tx, target, detail).await?;
        }
        tx.commit().await.map_err(q("commit purge"))?;
        Ok((purged, memories))
    }

    /// Deletes the records of calls that ended before `ended_before`, with everything that
    /// hangs on them (transcript, turns, consent decisions); a call whose recording is still
    /// on disk is left for the box that holds it. Returns how many; audited as
    /// `retention.purge` by `system` under `target` when not none.
    pub async fn purge_calls(
        &self,
        calls: CallsOf<'_>,
        ended_before: UnixMillis,
        target: &str,
    ) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let ids = format!(
            "SELECT id FROM calls WHERE ended_at < $1 AND {} AND recording_path IS NULL",
            calls.clause()
        );
        let purged = delete_calls(&mut tx, &ids, Binds::Purge(ended_before, calls)).await?;
        if purged > 0 {
            let detail = serde_json::json!({
                "what": "calls",
                "calls": purged,
                "ended_before": ended_before.0,
            });
            audit_purge(&mut tx, target, detail).await?;
        }
        tx.commit().await.map_err(q("commit purge"))?;
        Ok(purged)
    }

    /// Recordings of calls from or to the number written as either of `forms`, with the box
    /// that holds each: the files to remove before [`Store::erase_caller`].
    pub async fn recordings_of_caller(
        &self,
        forms: &[String; 2],
    ) -> Result<Vec<(CallRecordId, String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT id, recording_path, node FROM calls WHERE recording_path IS NOT NULL \
             AND (from_number IN ($1, $2) OR to_number IN ($1, $2))",
        )
        .bind(self.seal_number(&forms[0]))
        .bind(self.seal_number(&forms[1]))
        .fetch_all(&self.pool)
        .await
        .map_err(q("list the caller's recordings"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    CallRecordId::from_string(r.try_get(0).map_err(q("list recordings"))?),
                    r.try_get(1).map_err(q("list recordings"))?,
                    r.try_get(2).map_err(q("list recordings"))?,
                ))
            })
            .collect()
    }

    /// Removes every row about the number written as either of `forms` (with and without
    /// `+`): calls from or to it with their transcripts, turns and consent decisions, caller
    /// memory, blacklist entries and campaign contacts. The do-not-disturb entry stays. One
    /// transaction, audited as `caller.erase` by `actor` under the number's last two digits
    /// only: the audit log is never erased.
    pub async fn erase_caller(&self, forms: &[String; 2], actor: &str) -> Result<Erased> {
        let mut tx = self.write_tx().await?;
        let sealed = forms.each_ref().map(|n| self.seal_number(n));
        let binds = Binds::Caller(&sealed);
        let ids = "SELECT id FROM calls WHERE from_number IN ($1, $2) OR to_number IN ($1, $2)";
        let in_calls =
            |table: &str| format!("SELECT COUNT(*) FROM {table} WHERE call_id IN ({ids})");
        let mut erased = Erased {
            transcript_lines: count(&mut tx, &in_calls("transcript_lines"), binds).await?,
            turns: count(&mut tx, &in_calls("call_turns"), binds).await?,
            consent_entries: count(
                &mut tx,
                &format!(
                    "SELECT COUNT(*) FROM consent_log WHERE call_id IN ({ids}) \
                     OR caller_number IN ($1, $2)"
                ),
                binds,
            )
            .await?,
            kept_on_dnd: count(
                &mut tx,
                "SELECT COUNT(*) FROM dnd WHERE number IN ($1, $2)",
                binds,
            )
            .await?
                > 0,
            ..Erased::default()
        };
        execute(
            &mut tx,
            "DELETE FROM consent_log WHERE caller_number IN ($1, $2)",
            binds,
        )
        .await?;
        erased.calls = delete_calls(&mut tx, ids, binds).await?;
        erased.memories = execute(
            &mut tx,
            "DELETE FROM caller_memory WHERE caller_number IN ($1, $2)",
            binds,
        )
        .await?;
        erased.blacklist_entries = execute(
            &mut tx,
            "DELETE FROM blacklist WHERE number IN ($1, $2)",
            binds,
        )
        .await?;
        erased.contacts = execute(
            &mut tx,
            "DELETE FROM contacts WHERE number IN ($1, $2)",
            binds,
        )
        .await?;
        let detail = erased.to_json().to_string();
        audit::append(
            &mut tx,
            actor,
            "caller.erase",
            &redacted(&forms[0]),
            &detail,
        )
        .await?;
        tx.commit().await.map_err(q("commit erasure"))?;
        Ok(erased)
    }
}

/// The audit entry of a purge: done by `system`, under the agent's name.
async fn audit_purge(
    tx: &mut Transaction<'static, Any>,
    target: &str,
    detail: serde_json::Value,
) -> Result<()> {
    audit::append(tx, "system", "retention.purge", target, &detail.to_string()).await
}

/// Deletes the calls `ids` selects, after what refers to them without a cascade: their consent
/// decisions go with them, campaign attempts and blacklist entries lose the link. Turns and
/// transcript lines cascade.
async fn delete_calls(
    tx: &mut Transaction<'static, Any>,
    ids: &str,
    binds: Binds<'_>,
) -> Result<u64> {
    for sql in [
        format!("DELETE FROM consent_log WHERE call_id IN ({ids})"),
        format!("UPDATE campaign_attempts SET call_id = NULL WHERE call_id IN ({ids})"),
        format!("UPDATE blacklist SET source_call_id = NULL WHERE source_call_id IN ({ids})"),
    ] {
        execute(tx, &sql, binds).await?;
    }
    execute(tx, &format!("DELETE FROM calls WHERE id IN ({ids})"), binds).await
}

/// Runs a statement; returns the rows it changed.
async fn execute(tx: &mut Transaction<'static, Any>, sql: &str, binds: Binds<'_>) -> Result<u64> {
    let query = match binds {
        Binds::Purge(ended_before, calls) => {
            let query = sqlx::query(sql).bind(ended_before.0);
            match calls {
                CallsOf::Agent(agent) => query.bind(agent.as_str()),
                CallsOf::NoAgent => query,
            }
        }
        Binds::Caller(forms) => sqlx::query(sql).bind(&forms[0]).bind(&forms[1]),
    };
    Ok(query
        .execute(&mut **tx)
        .await
        .map_err(q("retention"))?
        .rows_affected())
}

/// Runs a `SELECT COUNT(*)`.
async fn count(tx: &mut Transaction<'static, Any>, sql: &str, binds: Binds<'_>) -> Result<u64> {
    let query = match binds {
        Binds::Purge(ended_before, calls) => {
            let query = sqlx::query_scalar(sql).bind(ended_before.0);
            match calls {
                CallsOf::Agent(agent) => query.bind(agent.as_str()),
                CallsOf::NoAgent => query,
            }
        }
        Binds::Caller(forms) => sqlx::query_scalar(sql).bind(&forms[0]).bind(&forms[1]),
    };
    let n: i64 = query
        .fetch_one(&mut **tx)
        .await
        .map_err(q("retention count"))?;
    Ok(n.max(0) as u64)
}
