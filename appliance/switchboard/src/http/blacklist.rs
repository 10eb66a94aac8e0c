//! The blacklist: numbers blocked after abuse (for a time that grows with each offence) or by an
//! operator. Operators read it and lift blocks; each removal is audited under their name.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use switchboard_store::{BlacklistEntry, UnixMillis};

use super::access::Caller;
use super::{ApiError, AppState};
use crate::pii::Pii;

/// Every entry, newest first, with whether it still blocks.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Value>>, ApiError> {
    let now = UnixMillis::now();
    let entries = state.store.blacklist().await?;
    Ok(Json(entries.iter().map(|e| shown(e, now)).collect()))
}

/// Lifts the block on `number`; 404 when it is not on the list.
pub async fn remove(
    State(state): State<AppState>,
    Path(number): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let actor = &caller.user.username;
    state.store.remove_from_blacklist(&number, actor).await?;
    tracing::info!(user = %actor, caller = %Pii(&number), "blacklist entry removed");
    Ok(Json(json!({ "number": number, "removed": true })))
}

/// One entry as the API and the CLI show it.
pub fn shown(e: &BlacklistEntry, now: UnixMillis) -> Value {
    json!({
        "number": e.number,
        "reason": e.reason,
        "call": e.source_call_id.as_ref().map(|c| c.to_string()),
        "added_by": e.added_by,
        "added_at": e.added_at.0,
        "expires_at": e.expires_at.map(|t| t.0),
        "offences": e.offences,
        "active": e.active_at(now),
    })
}
