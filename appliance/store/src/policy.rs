//! What policy writes: the consent log, the blacklist and the do-not-disturb list.

use crate::sealing::redacted;
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
    /// When the block lapses; `None`: until an operator removes it.
    pub expires_at: Option<UnixMillis>,
    /// How many times this number was blocked for abuse (each block lasts longer).
    pub offences: u32,
}

impl BlacklistEntry {
    /// Whether the number is blocked at `now`.
    pub fn active_at(&self, now: UnixMillis) -> bool {
        self.expires_at.is_none_or(|until| until > now)
    }
}

/// The longest a repeat offence blocks a number.
const MAX_BLOCK_MS: i64 = 90 * 24 * 3_600_000;
const BLACKLIST_COLUMNS: &str =
    "number, reason, source_call_id, added_by, added_at, expires_at, offences";

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
        .bind(self.seal_number(&rec.caller_number))
        .bind(&rec.question)
        .bind(self.seal_text(&rec.answer_text))
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
                    caller_number: self.open_number(&r.try_get::<String, _>(1).map_err(e())?)?,
                    question: r.try_get(2).map_err(e())?,
                    answer_text: self.open_text(&r.try_get::<String, _>(3).map_err(e())?)?,
                    decision: ConsentDecision::parse(&decision).ok_or(StoreError::Corrupt {
                        what: "consent decision",
                        value: decision,
                    })?,
                    decided_at: UnixMillis(r.try_get(5).map_err(e())?),
                })
            })
            .collect()
    }

    /// Blocks `number` after abuse on `call`: for `first` on a first offence, four times as long
    /// for each repeat (at most 90 days), from `now`. A lapsed or live entry counts as an
    /// offence. Returns the entry as stored.
    pub async fn block_for_abuse(
        &self,
        number: &str,
        reason: &str,
        call: &CallRecordId,
        added_by: &str,
        now: UnixMillis,
        first: std::time::Duration,
    ) -> Result<BlacklistEntry> {
        let mut tx = self.write_tx().await?;
        let sealed = self.seal_number(number);
        let earlier: Option<i64> = sqlx::query("SELECT offences FROM blacklist WHERE number = $1")
            .bind(&sealed)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("read blacklist"))?
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()
            .map_err(q("read blacklist"))?;
        let offences = earlier.unwrap_or(0).max(0) as u32 + 1;
        let first_ms = i64::try_from(first.as_millis()).unwrap_or(MAX_BLOCK_MS);
        let factor = 4i64.saturating_pow(offences - 1);
        let block = first_ms.saturating_mul(factor).min(MAX_BLOCK_MS);
        let entry = BlacklistEntry {
            number: number.to_owned(),
            reason: reason.to_owned(),
            source_call_id: Some(call.clone()),
            added_by: added_by.to_owned(),
            added_at: now,
            expires_at: Some(UnixMillis(now.0.saturating_add(block))),
            offences,
        };
        sqlx::query("DELETE FROM blacklist WHERE number = $1")
            .bind(&sealed)
            .execute(&mut *tx)
            .await
            .map_err(q("block for abuse"))?;
        self.insert_entry(INSERT_ENTRY, &entry)
            .execute(&mut *tx)
            .await
            .map_err(q("block for abuse"))?;
        tx.commit().await.map_err(q("commit block for abuse"))?;
        Ok(entry)
    }

    /// Every blacklist entry, lapsed ones included, newest first.
    pub async fn blacklist(&self) -> Result<Vec<BlacklistEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT {BLACKLIST_COLUMNS} FROM blacklist ORDER BY added_at DESC, number"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read blacklist"))?;
        rows.iter().map(|r| self.entry_from_row(r)).collect()
    }

    /// Adds `entry.number` to the blacklist. An existing entry is kept as it is (the first reason
    /// stands) and `false` is returned.
    pub async fn add_to_blacklist(&self, entry: &BlacklistEntry) -> Result<bool> {
        let sql = format!("{INSERT_ENTRY} ON CONFLICT (number) DO NOTHING");
        let done = self
            .insert_entry(&sql, entry)
            .execute(&self.pool)
            .await
            .map_err(q("add to blacklist"))?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn blacklist_entry(&self, number: &str) -> Result<Option<BlacklistEntry>> {
        let Some(r) = sqlx::query(&format!(
            "SELECT {BLACKLIST_COLUMNS} FROM blacklist WHERE number = $1"
        ))
        .bind(self.seal_number(number))
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read blacklist"))?
        else {
            return Ok(None);
        };
        self.entry_from_row(&r).map(Some)
    }

    /// Removes a number from the blacklist; an operator action, audited in the same transaction.
    pub async fn remove_from_blacklist(&self, number: &str, actor: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM blacklist WHERE number = $1")
            .bind(self.seal_number(number))
            .execute(&mut *tx)
            .await
            .map_err(q("remove from blacklist"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "blacklist entry",
                key: number.to_string(),
            });
        }
        audit::append(&mut tx, actor, "blacklist.remove", &redacted(number), "{}").await?;
        tx.commit().await.map_err(q("commit blacklist removal"))
    }

    pub async fn add_to_dnd(&self, number: &str, source: &str, actor: &str) -> Result<()> {
        sqlx::query("INSERT INTO dnd (number, source, added_by, added_at) VALUES ($1, $2, $3, $4)")
            .bind(self.seal_number(number))
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

    /// True if the number may not be called: on the DND list, or blocked by the blacklist now.
    pub async fn is_do_not_call(&self, number: &str) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM dnd WHERE number = $1 UNION ALL SELECT 1 FROM blacklist \
             WHERE number = $1 AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(self.seal_number(number))
        .bind(UnixMillis::now().0)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("check DND"))?;
        Ok(row.is_some())
    }
}

const INSERT_ENTRY: &str = "INSERT INTO blacklist (number, reason, source_call_id, added_by, \
     added_at, expires_at, offences) VALUES ($1, $2, $3, $4, $5, $6, $7)";

impl Store {
    /// `sql` (an `INSERT_ENTRY`, perhaps with a conflict clause) bound to `entry`.
    fn insert_entry<'q>(
        &self,
        sql: &'q str,
        entry: &'q BlacklistEntry,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        sqlx::query(sql)
            .bind(self.seal_number(&entry.number))
            .bind(entry.reason.as_str())
            .bind(
                entry
                    .source_call_id
                    .as_ref()
                    .map(|c| c.as_str().to_string()),
            )
            .bind(entry.added_by.as_str())
            .bind(entry.added_at.0)
            .bind(entry.expires_at.map(|t| t.0))
            .bind(i64::from(entry.offences))
    }

    fn entry_from_row(&self, r: &sqlx::any::AnyRow) -> Result<BlacklistEntry> {
        let e = || q("read blacklist");
        Ok(BlacklistEntry {
            number: self.open_number(&r.try_get::<String, _>(0).map_err(e())?)?,
            reason: r.try_get(1).map_err(e())?,
            source_call_id: r
                .try_get::<Option<String>, _>(2)
                .map_err(e())?
                .map(CallRecordId::from_string),
            added_by: r.try_get(3).map_err(e())?,
            added_at: UnixMillis(r.try_get(4).map_err(e())?),
            expires_at: r.try_get::<Option<i64>, _>(5).map_err(e())?.map(UnixMillis),
            offences: r
                .try_get::<i64, _>(6)
                .map_err(e())?
                .clamp(0, u32::MAX.into()) as u32,
        })
    }
}
