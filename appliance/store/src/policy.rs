//! What policy writes: the consent log, the blacklist and the do-not-disturb list.

use crate::{audit, is_unique_violation, q, CallRecordId, Result, Store, StoreError, UnixMillis};
use sqlx::Row;

/// The caller's answer to the recording-consent question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentDecision {
    Yes,
    No,
    /// Still unclear after the re-ask: treated as no.
    Unclear,
}

impl ConsentDecision {
    fn as_str(self) -> &'static str {
        match self {
            ConsentDecision::Yes => "yes",
            ConsentDecision::No => "no",
            ConsentDecision::Unclear => "unclear",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "yes" => Some(ConsentDecision::Yes),
            "no" => Some(ConsentDecision::No),
            "unclear" => Some(ConsentDecision::Unclear),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRecord {
    pub call_id: CallRecordId,
    pub caller_number: String,
    pub question: String,
    pub answer_text: String,
    pub decision: ConsentDecision,
    pub decided_at: UnixMillis,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlacklistEntry {
    pub number: String,
    pub reason: String,
    pub source_call_id: Option<CallRecordId>,
    pub added_by: String,
    pub added_at: UnixMillis,
}

impl Store {
    /// Writes a consent decision to the log and to the call, in one transaction. Recording may only
    /// start after this returns `Ok` with [`ConsentDecision::Yes`].
    pub async fn record_consent(&self, rec: &ConsentRecord) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO consent_log (id, call_id, caller_number, question, answer_text, decision, \
             decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(rec.call_id.as_str())
        .bind(&rec.caller_number)
        .bind(&rec.question)
        .bind(&rec.answer_text)
        .bind(rec.decision.as_str())
        .bind(rec.decided_at.0)
        .execute(&mut *tx)
        .await
        .map_err(q("write consent log"))?;
        let call_consent = if rec.decision == ConsentDecision::Yes {
            "given"
        } else {
            "declined"
        };
        let updated = sqlx::query("UPDATE calls SET consent = $1 WHERE id = $2")
            .bind(call_consent)
            .bind(rec.call_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(q("write call consent"))?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "call",
                key: rec.call_id.to_string(),
            });
        }
        tx.commit().await.map_err(q("commit consent"))
    }

    pub async fn consent_log(&self, call: &CallRecordId) -> Result<Vec<ConsentRecord>> {
        let rows = sqlx::query(
            "SELECT call_id, caller_number, question, answer_text, decision, decided_at \
             FROM consent_log WHERE call_id = $1 ORDER BY decided_at, id",
        )
        .bind(call.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("read consent log"))?;
        let e = || q("read consent log");
        rows.iter()
            .map(|r| {
                let decision: String = r.try_get(4).map_err(e())?;
                Ok(ConsentRecord {
                    call_id: CallRecordId::from_string(r.try_get(0).map_err(e())?),
                    caller_number: r.try_get(1).map_err(e())?,
                    question: r.try_get(2).map_err(e())?,
                    answer_text: r.try_get(3).map_err(e())?,
                    decision: ConsentDecision::parse(&decision).ok_or(StoreError::Corrupt {
                        what: "consent decision",
                        value: decision,
                    })?,
                    decided_at: UnixMillis(r.try_get(5).map_err(e())?),
                })
            })
            .collect()
    }

    /// Adds `entry.number` to the blacklist. An existing entry is kept as it is (the first reason
    /// stands) and `false` is returned.
    pub async fn add_to_blacklist(&self, entry: &BlacklistEntry) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO blacklist (number, reason, source_call_id, added_by, added_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (number) DO NOTHING",
        )
        .bind(&entry.number)
        .bind(&entry.reason)
        .bind(
            entry
                .source_call_id
                .as_ref()
                .map(|c| c.as_str().to_string()),
        )
        .bind(&entry.added_by)
        .bind(entry.added_at.0)
        .execute(&self.pool)
        .await
        .map_err(q("add to blacklist"))?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn blacklist_entry(&self, number: &str) -> Result<Option<BlacklistEntry>> {
        let Some(r) = sqlx::query(
            "SELECT number, reason, source_call_id, added_by, added_at FROM blacklist WHERE number = $1",
        )
        .bind(number)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read blacklist"))?
        else {
            return Ok(None);
        };
        let e = || q("read blacklist");
        Ok(Some(BlacklistEntry {
            number: r.try_get(0).map_err(e())?,
            reason: r.try_get(1).map_err(e())?,
            source_call_id: r
                .try_get::<Option<String>, _>(2)
                .map_err(e())?
                .map(CallRecordId::from_string),
            added_by: r.try_get(3).map_err(e())?,
            added_at: UnixMillis(r.try_get(4).map_err(e())?),
        }))
    }

    /// Removes a number from the blacklist; an operator action, audited in the same transaction.
    pub async fn remove_from_blacklist(&self, number: &str, actor: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM blacklist WHERE number = $1")
            .bind(number)
            .execute(&mut *tx)
            .await
            .map_err(q("remove from blacklist"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "blacklist entry",
                key: number.to_string(),
            });
        }
        audit::append(&mut tx, actor, "blacklist.remove", number, "{}").await?;
        tx.commit().await.map_err(q("commit blacklist removal"))
    }

    pub async fn add_to_dnd(&self, number: &str, source: &str, actor: &str) -> Result<()> {
        sqlx::query("INSERT INTO dnd (number, source, added_by, added_at) VALUES ($1, $2, $3, $4)")
            .bind(number)
            .bind(source)
            .bind(actor)
            .bind(UnixMillis::now().0)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict {
                        what: "DND entry",
                        key: number.to_string(),
                    }
                } else {
                    q("add to DND list")(e)
                }
            })?;
        Ok(())
    }

    /// True if the number may not be called: on the DND list or the blacklist.
    pub async fn is_do_not_call(&self, number: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM dnd WHERE number = $1 UNION ALL SELECT 1 FROM blacklist WHERE number = $1",
        )
        .bind(number)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("check DND"))?;
        Ok(row.is_some())
    }
}
