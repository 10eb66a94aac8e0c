//! Agents: the persona a call talks to, and the numbers that route to it.

use crate::{is_unique_violation, q, AgentId, Result, Store, StoreError, UnixMillis};
use sqlx::Row;

/// Whether an agent asks for consent before recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consent {
    Required,
    Off,
}

impl Consent {
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Required => "required",
            Consent::Off => "off",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    pub numbers: Vec<String>,
    pub greeting: String,
    pub prompt: String,
    pub consent: Consent,
    pub transfer_to: Option<String>,
    pub language: String,
    pub voice: String,
}

impl Store {
    /// Creates the agent `agent.name`, or updates it in place (keeping its id) and replaces its
    /// numbers. A number already routed to another agent is a conflict and changes nothing.
    pub async fn upsert_agent(&self, agent: &Agent) -> Result<AgentId> {
        let now = UnixMillis::now().0;
        let mut tx = self.write_tx().await?;
        let existing: Option<String> = sqlx::query("SELECT id FROM agents WHERE name = $1")
            .bind(&agent.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("read agent"))?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(q("read agent"))?;
        let id = match existing {
            Some(id) => {
                sqlx::query(
                    "UPDATE agents SET greeting = $1, prompt = $2, consent = $3, transfer_to = $4, \
                     language = $5, voice = $6, updated_at = $7 WHERE id = $8",
                )
                .bind(&agent.greeting)
                .bind(&agent.prompt)
                .bind(agent.consent.as_str())
                .bind(agent.transfer_to.as_deref())
                .bind(&agent.language)
                .bind(&agent.voice)
                .bind(now)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(q("update agent"))?;
                sqlx::query("DELETE FROM agent_numbers WHERE agent_id = $1")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(q("update agent numbers"))?;
                AgentId::from_string(id)
            }
            None => {
                let id = AgentId::new();
                sqlx::query(
                    "INSERT INTO agents (id, name, greeting, prompt, consent, transfer_to, language, \
                     voice, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                )
                .bind(id.as_str())
                .bind(&agent.name)
                .bind(&agent.greeting)
                .bind(&agent.prompt)
                .bind(agent.consent.as_str())
                .bind(agent.transfer_to.as_deref())
                .bind(&agent.language)
                .bind(&agent.voice)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(q("create agent"))?;
                id
            }
        };
        for number in &agent.numbers {
            sqlx::query("INSERT INTO agent_numbers (number, agent_id) VALUES ($1, $2)")
                .bind(number)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict {
                            what: "agent number",
                            key: number.clone(),
                        }
                    } else {
                        q("route agent number")(e)
                    }
                })?;
        }
        tx.commit().await.map_err(q("commit agent"))?;
        Ok(id)
    }

    /// The agent a dialled number (SIP user part or DID) routes to.
    pub async fn agent_for_number(&self, number: &str) -> Result<Option<Agent>> {
        let name: Option<String> = sqlx::query(
            "SELECT a.name FROM agent_numbers n JOIN agents a ON a.id = n.agent_id WHERE n.number = $1",
        )
        .bind(number)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("route number"))?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(q("route number"))?;
        match name {
            Some(name) => self.agent_by_name(&name).await,
            None => Ok(None),
        }
    }

    pub async fn agent_by_name(&self, name: &str) -> Result<Option<Agent>> {
        let Some(r) = sqlx::query(
            "SELECT id, name, greeting, prompt, consent, transfer_to, language, voice FROM agents \
             WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read agent"))?
        else {
            return Ok(None);
        };
        let id: String = r.try_get(0).map_err(q("read agent"))?;
        let consent: String = r.try_get(4).map_err(q("read agent"))?;
        let numbers =
            sqlx::query("SELECT number FROM agent_numbers WHERE agent_id = $1 ORDER BY number")
                .bind(&id)
                .fetch_all(&self.pool)
                .await
                .map_err(q("read agent numbers"))?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<Vec<String>, _>>()
                .map_err(q("read agent numbers"))?;
        Ok(Some(Agent {
            id: AgentId::from_string(id),
            name: r.try_get(1).map_err(q("read agent"))?,
            numbers,
            greeting: r.try_get(2).map_err(q("read agent"))?,
            prompt: r.try_get(3).map_err(q("read agent"))?,
            consent: match consent.as_str() {
                "required" => Consent::Required,
                "off" => Consent::Off,
                _ => {
                    return Err(StoreError::Corrupt {
                        what: "consent mode",
                        value: consent,
                    })
                }
            },
            transfer_to: r.try_get(5).map_err(q("read agent"))?,
            language: r.try_get(6).map_err(q("read agent"))?,
            voice: r.try_get(7).map_err(q("read agent"))?,
        }))
    }

    /// Names of all agents, sorted.
    pub async fn agent_names(&self) -> Result<Vec<String>> {
        sqlx::query("SELECT name FROM agents ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list agents"))?
            .iter()
            .map(|r| r.try_get(0).map_err(q("list agents")))
            .collect()
    }

    /// Every agent's id and name, sorted by name (to show names where rows hold ids).
    pub async fn agent_ids(&self) -> Result<Vec<(AgentId, String)>> {
        sqlx::query("SELECT id, name FROM agents ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(q("list agents"))?
            .iter()
            .map(|r| {
                Ok((
                    AgentId::from_string(r.try_get(0).map_err(q("list agents"))?),
                    r.try_get(1).map_err(q("list agents"))?,
                ))
            })
            .collect()
    }
}
