//! Contact lists and campaigns as operators manage them, shared by the CLI (`cli/campaign.rs`)
//! and the API (`http/campaigns.rs`) so both say and store the same things.

use serde_json::{json, Value};
use switchboard_dialer::import::{import_csv, Columns, Defaults, ImportReport};
use switchboard_store::{AttemptRow, Campaign, CampaignStatus, NewContact, Store, StoreError};

/// Why a list could not be imported or a campaign changed.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error(transparent)]
    Rules(#[from] switchboard_dialer::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no campaign named {0:?}")]
    NoCampaign(String),
    #[error("campaign {0} is finished; create a new one to call its list again")]
    Finished(String),
}

/// What an import did.
#[derive(Debug)]
pub struct Imported {
    pub report: ImportReport,
    /// New to the list.
    pub added: u64,
}

impl Imported {
    pub fn json(&self) -> Value {
        json!({
            "added": self.added,
            "already_on_the_list": self.report.contacts.len() as u64 - self.added,
            "merged": self.report.merged.iter()
                .map(|(line, first)| json!({ "line": line, "into_line": first }))
                .collect::<Vec<_>>(),
            "rejected": self.report.rejected.iter()
                .map(|r| json!({ "line": r.line, "reason": r.reason }))
                .collect::<Vec<_>>(),
        })
    }
}

/// Reads `csv` and adds its contacts to the list `list` (created if new). Nothing is stored
/// when the list cannot be read at all.
pub async fn import(
    store: &Store,
    list: &str,
    csv: &[u8],
    columns: &Columns,
    defaults: &Defaults,
) -> Result<Imported, CampaignError> {
    let report = import_csv(csv, columns, defaults)?;
    let id = match store.contact_list_by_name(list).await? {
        Some(id) => id,
        None => store.create_contact_list(list).await?,
    };
    let contacts: Vec<NewContact> = report
        .contacts
        .iter()
        .map(|c| NewContact {
            number: c.number.clone(),
            name: c.name.clone(),
            time_zone: c.time_zone.clone(),
            fields: Value::Object(c.fields.clone()).to_string(),
        })
        .collect();
    let added = store.add_contacts(&id, &contacts).await?;
    Ok(Imported { report, added })
}

/// Moves the campaign `name` to `status`, audited as `actor`. A finished campaign stays so.
pub async fn set_status(
    store: &Store,
    name: &str,
    status: CampaignStatus,
    actor: &str,
) -> Result<(), CampaignError> {
    let c = named(store, name).await?;
    if c.status == CampaignStatus::Finished {
        return Err(CampaignError::Finished(name.to_string()));
    }
    store.set_campaign_status(&c.id, status, actor).await?;
    Ok(())
}

pub async fn named(store: &Store, name: &str) -> Result<Campaign, CampaignError> {
    store
        .campaign_by_name(name)
        .await?
        .ok_or_else(|| CampaignError::NoCampaign(name.to_string()))
}

/// A campaign's rules and progress.
pub async fn summary(store: &Store, c: &Campaign) -> Result<Value, StoreError> {
    let progress = store.campaign_progress(&c.id).await?;
    let attempts: serde_json::Map<String, Value> = progress
        .attempts
        .iter()
        .map(|(s, n)| (s.as_str().to_string(), (*n).into()))
        .collect();
    Ok(json!({
        "name": c.name,
        "status": c.status.as_str(),
        "trunk": c.trunk,
        "caller_id": c.caller_id,
        "window": format!("{}-{}", c.window_start, c.window_end),
        "days": c.days,
        "holidays": c.holidays,
        "retry": c.retry_policy,
        "max_attempts": c.max_attempts,
        "max_concurrent": c.max_concurrent,
        "calls_per_minute": c.calls_per_minute,
        "ring_timeout_s": c.ring_timeout_s,
        "contacts": progress.contacts,
        "attempts": attempts,
    }))
}

/// [`summary`] with every attempt.
pub async fn detail(store: &Store, c: &Campaign) -> Result<Value, StoreError> {
    let mut json = summary(store, c).await?;
    let attempts: Vec<Value> = store
        .campaign_attempts(&c.id)
        .await?
        .iter()
        .map(attempt)
        .collect();
    json["history"] = attempts.into();
    Ok(json)
}

fn attempt(a: &AttemptRow) -> Value {
    json!({
        "number": a.number,
        "attempt": a.attempt_no,
        "status": a.status.as_str(),
        "outcome": a.disposition,
        "due_at": a.due_at.0,
        "call_id": a.call_id.as_ref().map(|c| c.to_string()),
    })
}
