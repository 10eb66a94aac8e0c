//! Contact lists and campaigns: import a list, follow campaigns, start, pause and stop them.
//! The same operations as `switchboard contacts` and `switchboard campaign`
//! (`crate::campaigns`); status changes are audited under the user's name.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use switchboard_dialer::import::{Columns, Defaults};
use switchboard_store::CampaignStatus;

use super::access::Caller;
use super::{ApiError, AppState, Params};
use crate::campaigns::{self, CampaignError};

/// The largest CSV accepted: about 300 000 rows of a number, a name and a few fields.
pub const MAX_LIST: usize = 32 * 1024 * 1024;

/// How to read the uploaded CSV (`?number_column=Phone&country=GB…`).
#[derive(Deserialize)]
pub struct ImportParams {
    #[serde(default = "number")]
    number_column: String,
    name_column: Option<String>,
    time_zone_column: Option<String>,
    #[serde(default = "utc")]
    time_zone: String,
    country: Option<String>,
}

fn number() -> String {
    "number".into()
}

fn utc() -> String {
    "UTC".into()
}

/// Adds the CSV body's contacts to the list `name` (created if new): what was added, merged and
/// rejected (by line). 400 when the list cannot be read at all.
pub async fn import(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Params(p): Params<ImportParams>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let columns = Columns {
        number: p.number_column,
        name: p.name_column,
        time_zone: p.time_zone_column,
    };
    let defaults = Defaults {
        country: p.country,
        time_zone: p.time_zone,
    };
    let imported = campaigns::import(&state.store, &name, &body, &columns, &defaults).await?;
    tracing::info!(user = %caller.user.username, list = %name, added = imported.added,
        rejected = imported.report.rejected.len(), "contacts imported");
    Ok(Json(imported.json()))
}

/// Every campaign with its progress.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Value>>, ApiError> {
    let mut all = Vec::new();
    for c in state.store.campaigns(None).await? {
        all.push(campaigns::summary(&state.store, &c).await?);
    }
    Ok(Json(all))
}

/// One campaign's progress and every attempt.
pub async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = campaigns::named(&state.store, &name).await?;
    Ok(Json(campaigns::detail(&state.store, &c).await?))
}

#[derive(Deserialize)]
pub struct StatusChange {
    status: String,
}

/// `{"status": "running" | "paused" | "finished"}`: start or resume, pause, stop for good.
pub async fn set_status(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
    Json(change): Json<StatusChange>,
) -> Result<Json<Value>, ApiError> {
    let status = match CampaignStatus::parse(&change.status) {
        Some(s @ (CampaignStatus::Running | CampaignStatus::Paused | CampaignStatus::Finished)) => {
            s
        }
        _ => {
            return Err(ApiError::BadRequest(format!(
                "status {:?}: running, paused or finished",
                change.status
            )))
        }
    };
    campaigns::set_status(&state.store, &name, status, &caller.user.username).await?;
    let c = campaigns::named(&state.store, &name).await?;
    Ok(Json(campaigns::summary(&state.store, &c).await?))
}

impl From<CampaignError> for ApiError {
    fn from(e: CampaignError) -> Self {
        match e {
            CampaignError::Store(e) => ApiError::Store(e),
            CampaignError::NoCampaign(name) => ApiError::NotFound {
                what: "campaign",
                key: name,
            },
            e @ (CampaignError::Rules(_) | CampaignError::Finished(_)) => {
                ApiError::BadRequest(e.to_string())
            }
        }
    }
}
