//! The audit log: who changed what, append-only and tamper-evident.
//!
//! Entries form a hash chain: each has a sequence number and the SHA-256 of its fields and of its
//! predecessor's hash. Editing an entry, deleting one or slipping one in breaks the chain at that
//! point, which [`Store::verify_audit`] reports (`switchboard audit verify`). Cutting the newest
//! entries off leaves a shorter chain that verifies: the head it reports (`seq` and hash) is to be
//! compared with one recorded elsewhere (each append logs it).

use crate::{q, Result, Store, UnixMillis};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: UnixMillis,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// JSON object with the details of the change.
    pub detail: String,
}

/// What [`Store::verify_audit`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditVerdict {
    /// Entries in the chain.
    pub entries: u64,
    /// The newest entry's sequence number and hash.
    pub head: Option<(i64, String)>,
    /// Where the chain is broken, in order; empty when it is intact.
    pub breaks: Vec<String>,
}

impl Store {
    /// Appends an entry on its own, for events that change nothing else (a failed login).
    pub async fn audit(&self, actor: &str, action: &str, target: &str, detail: &str) -> Result<()> {
        let mut tx = self.write_tx().await?;
        append(&mut tx, actor, action, target, detail).await?;
        tx.commit().await.map_err(q("commit audit"))
    }

    /// The newest `limit` entries, newest first.
    pub async fn audit_entries(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, actor, action, target, detail FROM audit_log ORDER BY at DESC, id DESC \
             LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read audit log"))?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: UnixMillis(r.try_get(0).map_err(q("read audit log"))?),
                    actor: r.try_get(1).map_err(q("read audit log"))?,
                    action: r.try_get(2).map_err(q("read audit log"))?,
                    target: r.try_get(3).map_err(q("read audit log"))?,
                    detail: r.try_get(4).map_err(q("read audit log"))?,
                })
            })
            .collect()
    }

    /// Walks the whole chain: every entry must follow its predecessor (sequence numbers without
    /// gaps) and match its hash, and no entry may stand outside the chain.
    pub async fn verify_audit(&self) -> Result<AuditVerdict> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, detail, seq, hash FROM audit_log \
             ORDER BY seq IS NULL, seq, at, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(q("read audit log"))?;
        let mut verdict = AuditVerdict {
            entries: 0,
            head: None,
            breaks: Vec::new(),
        };
        let mut previous = String::new();
        let mut expected = 1i64;
        for row in &rows {
            let entry = Chained::read(row)?;
            let Some((seq, hash)) = entry.seq.zip(entry.hash.clone()) else {
                verdict.breaks.push(format!(
                    "entry {} ({} {}) is outside the chain: inserted",
                    entry.id, entry.action, entry.target
                ));
                continue;
            };
            if seq != expected {
                verdict.breaks.push(format!(
                    "entries {expected} to {} are missing: deleted",
                    seq - 1
                ));
            }
            if entry.digest(&previous, seq) != hash {
                verdict.breaks.push(format!(
                    "entry {seq} ({} {}) does not match its hash: edited, or its predecessor was",
                    entry.action, entry.target
                ));
            }
            verdict.entries += 1;
            verdict.head = Some((seq, hash.clone()));
            previous = hash;
            expected = seq + 1;
        }
        Ok(verdict)
    }

    /// Chains the entries made before the chain existed, in the order they were made: once, while
    /// no entry is chained yet (afterwards an unchained entry is an inserted one).
    pub(crate) async fn chain_earlier_audit(&self) -> Result<()> {
        let mut tx = self.write_tx().await?;
        lock_chain(&mut tx).await?;
        let chained: i64 = sqlx::query("SELECT COUNT(*) FROM audit_log WHERE seq IS NOT NULL")
            .fetch_one(&mut *tx)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(q("read audit log"))?;
        if chained > 0 {
            return Ok(());
        }
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, detail, seq, hash FROM audit_log \
             ORDER BY at, id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(q("read audit log"))?;
        let mut previous = String::new();
        for (n, row) in rows.iter().enumerate() {
            let entry = Chained::read(row)?;
            let seq = n as i64 + 1;
            let hash = entry.digest(&previous, seq);
            sqlx::query("UPDATE audit_log SET seq = $1, hash = $2 WHERE id = $3")
                .bind(seq)
                .bind(&hash)
                .bind(&entry.id)
                .execute(&mut *tx)
                .await
                .map_err(q("chain audit log"))?;
            previous = hash;
        }
        if !rows.is_empty() {
            tracing::info!(entries = rows.len(), "audit log: earlier entries chained");
        }
        tx.commit().await.map_err(q("commit audit chain"))
    }
}

/// An audit row with its place in the chain.
struct Chained {
    id: String,
    at: i64,
    actor: String,
    action: String,
    target: String,
    detail: String,
    seq: Option<i64>,
    hash: Option<String>,
}

impl Chained {
    fn read(row: &sqlx::any::AnyRow) -> Result<Chained> {
        Ok(Chained {
            id: row.try_get(0).map_err(q("read audit log"))?,
            at: row.try_get(1).map_err(q("read audit log"))?,
            actor: row.try_get(2).map_err(q("read audit log"))?,
            action: row.try_get(3).map_err(q("read audit log"))?,
            target: row.try_get(4).map_err(q("read audit log"))?,
            detail: row.try_get(5).map_err(q("read audit log"))?,
            seq: row.try_get(6).map_err(q("read audit log"))?,
            hash: row.try_get(7).map_err(q("read audit log"))?,
        })
    }

    /// SHA-256 (hex) over the predecessor's hash and every field, each length-prefixed so that
    /// no two different entries encode alike.
    fn digest(&self, previous: &str, seq: i64) -> String {
        let mut sha = Sha256::new();
        let (seq, at) = (seq.to_string(), self.at.to_string());
        for field in [
            previous,
            &seq,
            &self.id,
            &at,
            &self.actor,
            &self.action,
            &self.target,
            &self.detail,
        ] {
            sha.update((field.len() as u64).to_le_bytes());
            sha.update(field.as_bytes());
        }
        hex::encode(sha.finalize())
    }
}

/// Serialises appends: on PostgreSQL, boxes sharing the database take a transaction-scoped
/// advisory lock (SQLite's write transaction already excludes every other writer).
async fn lock_chain(tx: &mut Transaction<'_, Any>) -> Result<()> {
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock(7467361)")
            .execute(&mut **tx)
            .await
            .map_err(q("lock audit log"))?;
    }
    Ok(())
}

/// Appends an entry inside the caller's transaction, so the change and its audit commit together.
pub(crate) async fn append(
    tx: &mut Transaction<'_, Any>,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    lock_chain(tx).await?;
    let tail = sqlx::query(
        "SELECT seq, hash FROM audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(&mut **tx)
    .await
    .map_err(q("read audit log"))?;
    let (previous_seq, previous) = match tail {
        Some(row) => (
            row.try_get::<i64, _>(0).map_err(q("read audit log"))?,
            row.try_get::<String, _>(1).map_err(q("read audit log"))?,
        ),
        None => (0, String::new()),
    };
    let entry = Chained {
        id: uuid::Uuid::now_v7().to_string(),
        at: UnixMillis::now().0,
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: detail.to_owned(),
        seq: Some(previous_seq + 1),
        hash: None,
    };
    let seq = previous_seq + 1;
    let hash = entry.digest(&previous, seq);
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, target, detail, seq, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&entry.id)
    .bind(entry.at)
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(detail)
    .bind(seq)
    .bind(&hash)
    .execute(&mut **tx)
    .await
    .map_err(q("append audit log"))?;
    // The head, kept outside the database too: cutting the newest entries off is found by
    // comparing `audit verify`'s head with the last one logged.
    tracing::info!(seq, hash = %hash, action, "audit entry");
    Ok(())
}
