//! Caller memory: what agents remember about a number between calls. Operators read it and
//! delete it on a caller's request; deletions are audited under the operator's name.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_store::{AgentId, CallerMemory, Store};

use super::access::Caller;
use super::{ApiError, AppState, Params};
use crate::pii::Pii;

/// What every agent remembers about `number`; an empty list when nothing.
pub async fn of_caller(
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let memories = state.store.memories_of_caller(&number).await?;
    Ok(Json(shown(&state.store, memories).await?))
}

/// Everything `agent` remembers, most recent first.
pub async fn of_agent(
    State(state): State<AppState>,
    Path(agent): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let id = agent_id(&state.store, &agent).await?;
    let memories = state.store.caller_memories(&id).await?;
    Ok(Json(shown(&state.store, memories).await?))
}

#[derive(Deserialize)]
pub struct ForgetQuery {
    /// Only this agent forgets; every agent when absent.
    agent: Option<String>,
}

/// Deletes what agents remember about `number`; 404 when nothing was remembered.
pub async fn forget(
    State(state): State<AppState>,
    Path(number): Path<String>,
    Params(query): Params<ForgetQuery>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let actor = &caller.user.username;
    let forgotten = match &query.agent {
        Some(agent) => {
            let id = agent_id(&state.store, agent).await?;
            state.store.forget_caller(&id, &number, actor).await?;
            1
        }
        None => state.store.forget_caller_everywhere(&number, actor).await?,
    };
    tracing::info!(user = %actor, caller = %Pii(&number), forgotten, "caller memory deleted");
    Ok(Json(
        json!({ "number": number, "agents_forgotten": forgotten }),
    ))
}

/// Erases every trace of the caller `number` (the right to erasure): their calls with
/// transcripts, turns, consent decisions and this box's recordings, caller memory, blacklist
/// entries and campaign contacts; the do-not-disturb entry stays. Returns what was removed.
pub async fn erase(
    State(state): State<AppState>,
    Path(number): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let erasure =
        crate::retention::erase(&state.store, &state.node, &number, &caller.user.username).await?;
    Ok(Json(erasure.to_json()))
}

async fn agent_id(store: &Store, name: &str) -> Result<AgentId, ApiError> {
    store
        .agent_by_name(name)
        .await?
        .map(|a| a.id)
        .ok_or_else(|| ApiError::NotFound {
            what: "agent",
            key: name.to_owned(),
        })
}

/// Memories as the API shows them: by agent name.
async fn shown(store: &Store, memories: Vec<CallerMemory>) -> Result<Vec<Value>, ApiError> {
    let names: HashMap<AgentId, String> = store.agent_ids().await?.into_iter().collect();
    Ok(memories
        .into_iter()
        .map(|m| {
            json!({
                "agent": names.get(&m.agent_id),
                "number": m.caller_number,
                "summary": m.summary,
                "updated_at": m.updated_at.0,
                "last_call_id": m.last_call_id.map(|c| c.to_string()),
            })
        })
        .collect())
}
