//! Caller memory: what an agent keeps from one call to the next call from the same number.

use crate::sealing::redacted;
use crate::{audit, q, AgentId, CallRecordId, Result, Store, StoreError, UnixMillis};
use sqlx::Row;

/// What an agent remembers about one caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerMemory {
    pub agent_id: AgentId,
    pub caller_number: String,
    /// The end-of-call summary of the last call (it reaches the next call's prompt).
    pub summary: String,
    pub updated_at: UnixMillis,
    /// The call that left this summary; `None` once that call record is deleted.
    pub last_call_id: Option<CallRecordId>,
}

impl Store {
    /// Stores (or replaces) what `memory.agent_id` remembers about `memory.caller_number`.
    pub async fn remember_caller(&self, memory: &CallerMemory) -> Result<()> {
        sqlx::query(
            "INSERT INTO caller_memory (agent_id, caller_number, summary, updated_at, last_call_id) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (agent_id, caller_number) DO UPDATE SET summary = excluded.summary, \
             updated_at = excluded.updated_at, last_call_id = excluded.last_call_id",
        )
        .bind(memory.agent_id.as_str())
        .bind(self.seal_number(&memory.caller_number))
        .bind(self.seal_text(&memory.summary))
        .bind(memory.updated_at.0)
        .bind(memory.last_call_id.as_ref().map(|c| c.as_str().to_string()))
        .execute(&self.pool)
        .await
        .map_err(q("remember caller"))?;
        Ok(())
    }

    /// What `agent` remembers about `number`, if anything.
    pub async fn caller_memory(
        &self,
        agent: &AgentId,
        number: &str,
    ) -> Result<Option<CallerMemory>> {
        let row = sqlx::query(
            "SELECT agent_id, caller_number, summary, updated_at, last_call_id FROM caller_memory \
             WHERE agent_id = $1 AND caller_number = $2",
        )
        .bind(agent.as_str())
        .bind(self.seal_number(number))
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read caller memory"))?;
        row.as_ref().map(|r| self.memory_from_row(r)).transpose()
    }

    /// Everything `agent` remembers, most recently updated first (the operator's view).
    pub async fn caller_memories(&self, agent: &AgentId) -> Result<Vec<CallerMemory>> {
        let rows = sqlx::query(
            "SELECT agent_id, caller_number, summary, updated_at, last_call_id FROM caller_memory \
             WHERE agent_id = $1 ORDER BY updated_at DESC, caller_number",
        )
        .bind(agent.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("read caller memory"))?;
        rows.iter().map(|r| self.memory_from_row(r)).collect()
    }

    /// What every agent remembers about `number` (the operator's view of one caller).
    pub async fn memories_of_caller(&self, number: &str) -> Result<Vec<CallerMemory>> {
        let rows = sqlx::query(
            "SELECT agent_id, caller_number, summary, updated_at, last_call_id FROM caller_memory \
             WHERE caller_number = $1 ORDER BY updated_at DESC, agent_id",
        )
        .bind(self.seal_number(number))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read caller memory"))?;
        rows.iter().map(|r| self.memory_from_row(r)).collect()
    }

    /// Deletes what `agent` remembers about `number`; an operator action (privacy request),
    /// audited in the same transaction. The summary itself is not copied into the audit log.
    pub async fn forget_caller(&self, agent: &AgentId, number: &str, actor: &str) -> Result<()> {
        self.forget(Some(agent), number, actor).await.map(drop)
    }

    /// Deletes what every agent remembers about `number` (a caller's "forget me"), audited as
    /// [`Store::forget_caller`] is. Returns how many agents forgot.
    pub async fn forget_caller_everywhere(&self, number: &str, actor: &str) -> Result<u64> {
        self.forget(None, number, actor).await
    }

    async fn forget(&self, agent: Option<&AgentId>, number: &str, actor: &str) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let done = match agent {
            Some(agent) => {
                sqlx::query("DELETE FROM caller_memory WHERE agent_id = $1 AND caller_number = $2")
                    .bind(agent.as_str())
                    .bind(self.seal_number(number))
                    .execute(&mut *tx)
                    .await
            }
            None => {
                sqlx::query("DELETE FROM caller_memory WHERE caller_number = $1")
                    .bind(self.seal_number(number))
                    .execute(&mut *tx)
                    .await
            }
        }
        .map_err(q("forget caller"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "caller memory",
                key: number.to_string(),
            });
        }
        let detail = match agent {
            Some(agent) => serde_json::json!({ "agent_id": agent.as_str() }),
            None => serde_json::json!({ "agents": done.rows_affected() }),
        };
        audit::append(
            &mut tx,
            actor,
            "caller_memory.forget",
            &redacted(number),
            &detail.to_string(),
        )
        .await?;
        tx.commit()
            .await
            .map_err(q("commit caller memory deletion"))?;
        Ok(done.rows_affected())
    }
}

impl Store {
    fn memory_from_row(&self, r: &sqlx::any::AnyRow) -> Result<CallerMemory> {
        let e = || q("read caller memory");
        Ok(CallerMemory {
            agent_id: AgentId::from_string(r.try_get(0).map_err(e())?),
            caller_number: self.open_number(&r.try_get::<String, _>(1).map_err(e())?)?,
            summary: self.open_text(&r.try_get::<String, _>(2).map_err(e())?)?,
            updated_at: UnixMillis(r.try_get(3).map_err(e())?),
            last_call_id: r
                .try_get::<Option<String>, _>(4)
                .map_err(e())?
                .map(CallRecordId::from_string),
        })
    }
}
