//! `/api/calls`: the call history, and one call with its transcript and per-turn timings.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_store::{AgentId, CallRecord, CallRecordId, UnixMillis};

use super::access::Caller;
use super::{ApiError, AppState, Params};

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    /// Unix milliseconds: only calls that started before (the previous page's last `started_at`).
    before: Option<i64>,
}

/// Calls, newest first, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    Params(query): Params<ListQuery>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: between 1 and {MAX_LIMIT}"
        )));
    }
    let scoped = caller.agents(&state).await?.is_some();
    let calls = state
        .store
        .calls(
            query.before.map(UnixMillis),
            limit,
            scoped.then_some(&caller.user.id),
        )
        .await?;
    let names: HashMap<AgentId, String> = state.store.agent_ids().await?.into_iter().collect();
    Ok(Json(calls.iter().map(|c| record(c, &names)).collect()))
}

/// One call: its record, how it ended, its transcript and its turns with their timings. The
/// read is audited before anything is returned: no transcript leaves without a trace.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let id = CallRecordId::from_string(id);
    let store = &state.store;
    let (call, names) = visible_call(&state, &caller, &id).await?;
    store
        .audit(&caller.user.username, "call.read", id.as_str(), "{}")
        .await?;
    let mut body = record(&call, &names);
    // A call still up has none of these yet: the fields are there, null.
    let end = store.end_of_call(&id).await?;
    body["summary"] = json!(end.as_ref().and_then(|e| e.summary.clone()));
    body["transfer_outcome"] = json!(end.as_ref().and_then(|e| e.transfer_outcome.clone()));
    body["recorded"] = json!(end.as_ref().is_some_and(|e| e.recording_path.is_some()));
    // Stored as the JSON the LLM extracted; shown as JSON, or as text if it is not.
    body["outcome"] = end
        .and_then(|e| e.outcome)
        .map(|o| serde_json::from_str(&o).unwrap_or(Value::String(o)))
        .unwrap_or(Value::Null);
    body["transcript"] = store
        .transcript(&id)
        .await?
        .into_iter()
        .map(|l| json!({ "seq": l.seq, "at_ms": l.at_ms, "speaker": l.speaker.as_str(), "text": l.text }))
        .collect();
    body["turns"] = store
        .turns(&id)
        .await?
        .into_iter()
        .map(|t| {
            json!({
                "seq": t.seq,
                "started_at": t.started_at.0,
                "caller_text": t.caller_text,
                "agent_text": t.agent_text,
                "interrupted": t.interrupted,
                "endpoint_ms": t.timings.endpoint_ms,
                "stt_ms": t.timings.stt_ms,
                "llm_first_token_ms": t.timings.llm_first_token_ms,
                "tts_first_audio_ms": t.timings.tts_first_audio_ms,
                "voice_to_voice_ms": t.timings.voice_to_voice_ms,
            })
        })
        .collect();
    Ok(Json(body))
}

/// The call's recording as a stereo WAV file (caller left, agent right), decrypted; its read
/// is audited first (`recording.read`). `X-Recording-Complete: false` when the call was cut
/// off (a crash, a full disk) and the file holds what was written until then. Recordings are
/// served by the box that took the call.
pub async fn recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let id = CallRecordId::from_string(id);
    let (call, _) = visible_call(&state, &caller, &id).await?;
    let recorded = state
        .store
        .end_of_call(&id)
        .await?
        .is_some_and(|e| e.recording_path.is_some());
    let here = call.node.as_deref().is_none_or(|n| n == state.node);
    if !recorded || !here {
        return Err(ApiError::NotFound {
            what: if recorded {
                "recording on this box of call"
            } else {
                "recording of call"
            },
            key: id.to_string(),
        });
    }
    let vault = state
        .recordings
        .clone()
        .ok_or(ApiError::RecordingsUnavailable)?;
    state
        .store
        .audit(&caller.user.username, "recording.read", id.as_str(), "{}")
        .await?;
    let call_id = id.to_string();
    let recording = tokio::task::spawn_blocking(move || vault.open_recording(&call_id))
        .await
        .map_err(|_| ApiError::Crashed("recording"))??;
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav"),
            (
                header::HeaderName::from_static("x-recording-complete"),
                if recording.complete { "true" } else { "false" },
            ),
        ],
        recording.wav,
    )
        .into_response())
}

/// The call `id` with the agents' names, if `caller` may see it: a call of an agent the caller
/// does not work for is one it cannot know exists.
async fn visible_call(
    state: &AppState,
    caller: &Caller,
    id: &CallRecordId,
) -> Result<(CallRecord, HashMap<AgentId, String>), ApiError> {
    let not_found = || ApiError::NotFound {
        what: "call",
        key: id.to_string(),
    };
    let call = state.store.call(id).await?.ok_or_else(not_found)?;
    let names: HashMap<AgentId, String> = state.store.agent_ids().await?.into_iter().collect();
    let agent = call.agent_id.as_ref().and_then(|a| names.get(a));
    if let Some(agents) = caller.agents(state).await? {
        if !agent.is_some_and(|a| agents.contains(a)) {
            return Err(not_found());
        }
    }
    Ok((call, names))
}

fn record(c: &CallRecord, names: &HashMap<AgentId, String>) -> Value {
    json!({
        "id": c.id.to_string(),
        "direction": c.direction.as_str(),
        "agent": c.agent_id.as_ref().and_then(|a| names.get(a)),
        "from": c.from_number,
        "to": c.to_number,
        "started_at": c.started_at.0,
        "answered_at": c.answered_at.map(|t| t.0),
        "ended_at": c.ended_at.map(|t| t.0),
        "end_reason": c.end_reason.map(|r| r.as_str()),
        "consent": c.consent,
    })
}
