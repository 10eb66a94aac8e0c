//! Admin UI users, their browser sessions and their API tokens. Password hashing and token
//! generation live above this crate; only PHC strings and token digests are stored here.

use crate::{
    audit, is_unique_violation, q, ApiTokenId, Result, Store, StoreError, UnixMillis, UserId,
};
use sqlx::Row;

/// What a user may do; enforced on every route of the HTTP API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Operator,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Agent => "agent",
        }
    }

    /// Whether this role may do what `min` may: admin > operator > agent.
    pub fn at_least(self, min: Role) -> bool {
        self.rank() >= min.rank()
    }

    fn rank(self) -> u8 {
        match self {
            Role::Agent => 0,
            Role::Operator => 1,
            Role::Admin => 2,
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "agent" => Some(Role::Agent),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: UnixMillis,
}

impl Store {
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User> {
        let user = User {
            id: UserId::new(),
            username: username.to_string(),
            password_hash: password_hash.to_string(),
            role,
            disabled: false,
            created_at: UnixMillis::now(),
        };
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id.as_str())
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(role.as_str())
        .bind(0_i64)
        .bind(user.created_at.0)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict {
                    what: "user",
                    key: username.to_string(),
                }
            } else {
                q("create user")(e)
            }
        })?;
        Ok(user)
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT id, username, password_hash, role, disabled, created_at FROM users \
             WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read user"))?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// Whether an enabled admin exists: until one does, nobody can run the box from the UI or API.
    pub async fn has_admin(&self) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) FROM users WHERE role = $1 AND disabled = 0")
            .bind(Role::Admin.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(q("count admins"))?;
        Ok(row.try_get::<i64, _>(0).map_err(q("count admins"))? > 0)
    }

    /// Enables or disables `username`, audited as done by `actor`. A disabled user's sessions and
    /// tokens stop working at once (every lookup checks the flag).
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        actor: &str,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2")
            .bind(i64::from(disabled))
            .bind(username)
            .execute(&mut *tx)
            .await
            .map_err(q("disable user"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "user",
                key: username.to_string(),
            });
        }
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        audit::append(&mut tx, actor, action, username, "{}").await?;
        tx.commit().await.map_err(q("commit user change"))
    }

    /// Opens a session for `user` under the digest of its cookie token, audited as a login with
    /// `detail` (JSON). Expired sessions of every user are cleared on the way.
    /// Replaces the agents `username` works for (what a user of the `agent` role may see),
    /// audited as done by `actor`.
    pub async fn set_user_agents(
        &self,
        username: &str,
        agents: &[String],
        actor: &str,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q("read user"))?;
        let id = id.ok_or_else(|| StoreError::NotFound {
            what: "user",
            key: username.to_string(),
        })?;
        sqlx::query("DELETE FROM user_agents WHERE user_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(q("set user agents"))?;
        let mut sorted: Vec<&String> = agents.iter().collect();
        sorted.sort();
        sorted.dedup();
        for agent in &sorted {
            sqlx::query("INSERT INTO user_agents (user_id, agent_name) VALUES ($1, $2)")
                .bind(&id)
                .bind(agent.as_str())
                .execute(&mut *tx)
                .await
                .map_err(q("set user agents"))?;
        }
        let detail = serde_json::json!({ "agents": sorted }).to_string();
        audit::append(&mut tx, actor, "user.agents", username, &detail).await?;
        tx.commit().await.map_err(q("commit user change"))
    }

    /// The agents `user` works for, by name, sorted.
    pub async fn user_agents(&self, user: &UserId) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT agent_name FROM user_agents WHERE user_id = $1 ORDER BY agent_name",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("read user agents"))
    }

    pub async fn create_session(
        &self,
        user: &User,
        token_hash: &str,
        expires_at: UnixMillis,
        detail: &str,
    ) -> Result<()> {
        let now = UnixMillis::now();
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(q("clear expired sessions"))?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user.id.as_str())
        .bind(now.0)
        .bind(expires_at.0)
        .execute(&mut *tx)
        .await
        .map_err(q("create session"))?;
        audit::append(
            &mut tx,
            &user.username,
            "user.login",
            &user.username,
            detail,
        )
        .await?;
        tx.commit().await.map_err(q("commit session"))
    }

    /// The enabled user of an unexpired session with this digest.
    pub async fn user_for_session(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.password_hash, u.role, u.disabled, u.created_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0",
        )
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("look up session"))?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// Ends the session with this digest; false when there was none.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(q("delete session"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores the digest of a new API token for `user`.
    pub async fn create_api_token(
        &self,
        user: &UserId,
        name: &str,
        token_hash: &str,
        expires_at: Option<UnixMillis>,
    ) -> Result<ApiTokenId> {
        let id = ApiTokenId::new();
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(user.as_str())
        .bind(name)
        .bind(token_hash)
        .bind(UnixMillis::now().0)
        .bind(expires_at.map(|t| t.0))
        .execute(&self.pool)
        .await
        .map_err(q("create API token"))?;
        Ok(id)
    }

    /// The enabled user owning an unexpired token with this digest, marking the token used.
    pub async fn user_for_token(&self, token_hash: &str, now: UnixMillis) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.password_hash, u.role, u.disabled, u.created_at, t.id \
             FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > $2) \
               AND u.disabled = 0",
        )
        .bind(token_hash)
        .bind(now.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("look up API token"))?;
        let Some(row) = row else { return Ok(None) };
        let token_id: String = row.try_get(6).map_err(q("look up API token"))?;
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(token_id)
            .execute(&self.pool)
            .await
            .map_err(q("touch API token"))?;
        user_from_row(&row).map(Some)
    }
}

fn user_from_row(r: &sqlx::any::AnyRow) -> Result<User> {
    let role: String = r.try_get(3).map_err(q("read user"))?;
    Ok(User {
        id: UserId::from_string(r.try_get(0).map_err(q("read user"))?),
        username: r.try_get(1).map_err(q("read user"))?,
        password_hash: r.try_get(2).map_err(q("read user"))?,
        role: Role::parse(&role).ok_or(StoreError::Corrupt {
            what: "role",
            value: role,
        })?,
        disabled: r.try_get::<i64, _>(4).map_err(q("read user"))? != 0,
        created_at: UnixMillis(r.try_get(5).map_err(q("read user"))?),
    })
}
