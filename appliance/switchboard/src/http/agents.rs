//! `/api/agents`: the agents and their knowledge, with the semantics of `switchboard kb`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::Caller;
use super::{ApiError, AppState, Params};
use crate::knowledge::{Document, Found, Knowledge, Uploaded};
use switchboard_agent::KnowledgeMode;

/// The largest document accepted in one upload.
pub const MAX_UPLOAD: usize = 32 * 1024 * 1024;
/// The most search results one request may ask for.
const MAX_K: usize = 50;

/// Every agent with its routing and persona, and (`calls`) the knowledge its calls use when it
/// takes calls on this box.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    let visible = caller.agents(&state).await?;
    let mut agents = Vec::new();
    for name in state.store.agent_names().await? {
        if visible.as_ref().is_some_and(|v| !v.contains(&name)) {
            continue;
        }
        let Some(a) = state.store.agent_by_name(&name).await? else {
            continue; // deleted between the two reads
        };
        agents.push(json!({
            "name": a.name,
            "numbers": a.numbers,
            "greeting": a.greeting,
            "prompt": a.prompt,
            "consent": a.consent.as_str(),
            "transfer_to": a.transfer_to,
            "language": a.language,
            "voice": a.voice,
            "calls": calls_status(&state, &a.name),
        }));
    }
    Ok(Json(agents))
}

pub async fn documents(
    State(state): State<AppState>,
    Path(agent): Path<String>,
    caller: Caller,
) -> Result<Json<Vec<Document>>, ApiError> {
    let knowledge = knowledge_of(&state, &caller, &agent).await?;
    blocking(move || knowledge.documents(&agent))
        .await
        .map(Json)
}

#[derive(Deserialize)]
pub struct UploadQuery {
    /// The document's name; its extension says how to read it.
    filename: String,
}

/// The request body is the file itself. 201 when the document is new, 200 when it replaced an
/// older version or was already there; 400/415/422 name what is wrong with the file.
pub async fn upload(
    State(state): State<AppState>,
    Path(agent): Path<String>,
    Params(query): Params<UploadQuery>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let knowledge = knowledge_of(&state, &caller, &agent).await?;
    let (name, a) = (query.filename.clone(), agent.clone());
    let outcome = blocking(move || knowledge.ingest_upload(&a, &name, &body)).await?;
    let outcome = outcome?;
    tracing::info!(user = %caller.user.username, %agent, document = %query.filename, ?outcome, "knowledge uploaded");
    let detail = json!({ "document": query.filename, "status": outcome }).to_string();
    state
        .store
        .audit(&caller.user.username, "knowledge.upload", &agent, &detail)
        .await?;
    let status = match outcome {
        Uploaded::Added => StatusCode::CREATED,
        Uploaded::Updated | Uploaded::Unchanged => StatusCode::OK,
    };
    if outcome != Uploaded::Unchanged {
        changed(&state, &agent);
    }
    Ok((
        status,
        Json(
            json!({ "document": query.filename, "status": outcome, "calls": calls_status(&state, &agent) }),
        ),
    ))
}

pub async fn remove(
    State(state): State<AppState>,
    Path((agent, document)): Path<(String, String)>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let knowledge = knowledge_of(&state, &caller, &agent).await?;
    let (a, d) = (agent.clone(), document.clone());
    let chunks = blocking(move || knowledge.remove(&a, &d)).await?;
    tracing::info!(user = %caller.user.username, %agent, %document, "knowledge removed");
    let detail = json!({ "document": document, "chunks": chunks }).to_string();
    state
        .store
        .audit(&caller.user.username, "knowledge.remove", &agent, &detail)
        .await?;
    changed(&state, &agent);
    Ok(Json(
        json!({ "document": document, "chunks_removed": chunks, "calls": calls_status(&state, &agent) }),
    ))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: String,
    k: Option<usize>,
}

/// The passages a call would retrieve for `q`, best first.
pub async fn search(
    State(state): State<AppState>,
    Path(agent): Path<String>,
    Params(query): Params<SearchQuery>,
    caller: Caller,
) -> Result<Json<Vec<Found>>, ApiError> {
    if query.q.trim().is_empty() {
        return Err(ApiError::BadRequest("q: the question is empty".into()));
    }
    let k = query.k.unwrap_or(5);
    if !(1..=MAX_K).contains(&k) {
        return Err(ApiError::BadRequest(format!("k: between 1 and {MAX_K}")));
    }
    let knowledge = knowledge_of(&state, &caller, &agent).await?;
    blocking(move || knowledge.search(&agent, &query.q, k))
        .await
        .map(Json)
}

/// Has the agent's calls pick up its changed knowledge.
fn changed(state: &AppState, agent: &str) {
    if let Some(runtime) = &state.runtime {
        runtime.knowledge_changed(agent);
    }
}

/// The knowledge the agent's calls use, or `null` when it takes no calls here.
fn calls_status(state: &AppState, agent: &str) -> Value {
    let Some(s) = state.runtime.as_ref().and_then(|r| r.agent_status(agent)) else {
        return Value::Null;
    };
    let knowledge = match s.knowledge {
        KnowledgeMode::None => json!({ "mode": "none" }),
        KnowledgeMode::Cached { tokens } => json!({ "mode": "cached", "tokens": tokens }),
        KnowledgeMode::Retrieval { chunks } => json!({ "mode": "retrieval", "chunks": chunks }),
    };
    json!({
        "knowledge": knowledge,
        "loaded_at": s.loaded_at.0,
        "reloading": s.reloading,
        "reload_error": s.reload_error,
    })
}

/// The knowledge base, once `agent` is known to exist and to be one `caller` may see.
async fn knowledge_of(
    state: &AppState,
    caller: &Caller,
    agent: &str,
) -> Result<Arc<Knowledge>, ApiError> {
    if state.store.agent_by_name(agent).await?.is_none() || !caller.sees(state, agent).await? {
        return Err(ApiError::NotFound {
            what: "agent",
            key: agent.to_owned(),
        });
    }
    state
        .knowledge
        .clone()
        .map_err(ApiError::KnowledgeUnavailable)
}

/// Runs knowledge work (disk, embedding) on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> kb::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError::Crashed("knowledge"))?
        .map_err(ApiError::from)
}
