//! The audit log: who changed what, append-only.

use crate::{q, Result, Store, UnixMillis};
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
}

/// Appends an entry inside the caller's transaction, so the change and its audit commit together.
pub(crate) async fn append(
    tx: &mut Transaction<'_, Any>,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(UnixMillis::now().0)
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(detail)
    .execute(&mut **tx)
    .await
    .map_err(q("append audit log"))?;
    Ok(())
}
