//! Contact lists, outbound campaigns and their attempts.
//!
//! Several boxes may dial the same campaign from one PostgreSQL database: an attempt is claimed
//! with `FOR UPDATE SKIP LOCKED`, so two dialers never take the same contact. SQLite has a single
//! writer, so the same statement without the locking clause is already exclusive there.

use crate::{
    q, AgentId, AttemptId, Backend, CallRecordId, CampaignId, ContactId, ContactListId, Result,
    Store, StoreError, UnixMillis,
};
use sqlx::Row;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewContact {
    pub number: String,
    pub name: Option<String>,
    pub time_zone: String,
    /// JSON object of the list's extra columns.
    pub fields: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub id: ContactId,
    pub number: String,
    pub name: Option<String>,
    pub time_zone: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CampaignStatus {
    Draft,
    Running,
    Paused,
    Finished,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Running => "running",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Finished => "finished",
        }
    }

    pub fn parse(s: &str) -> Option<CampaignStatus> {
        [
            CampaignStatus::Draft,
            CampaignStatus::Running,
            CampaignStatus::Paused,
            CampaignStatus::Finished,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    pub agent_id: AgentId,
    pub list_id: ContactListId,
    pub trunk: String,
    pub status: CampaignStatus,
    /// `HH:MM` in the contact's zone; the end is exclusive.
    pub window_start: String,
    pub window_end: String,
    /// `mon,tue,…` as the dialer's `Days` writes them.
    pub days: String,
    /// `YYYY-MM-DD,…`; empty for none.
    pub holidays: String,
    /// Attempts per contact, of every outcome together.
    pub max_attempts: i64,
    /// The least time between two attempts on one contact.
    pub retry_delay_s: i64,
    /// The retry rule per outcome (`busy=3/10m,…`), as the dialer's `RetryPolicy` writes it.
    pub retry_policy: String,
    pub max_concurrent: i64,
    /// 0: no spacing.
    pub calls_per_minute: i64,
    /// The number shown to the contact (our From user part); the trunk's when `None`.
    pub caller_id: Option<String>,
    pub ring_timeout_s: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptStatus {
    Pending,
    Dialing,
    Answered,
    NoAnswer,
    Busy,
    Voicemail,
    Failed,
    Done,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Pending => "pending",
            AttemptStatus::Dialing => "dialing",
            AttemptStatus::Answered => "answered",
            AttemptStatus::NoAnswer => "no_answer",
            AttemptStatus::Busy => "busy",
            AttemptStatus::Voicemail => "voicemail",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<AttemptStatus> {
        [
            AttemptStatus::Pending,
            AttemptStatus::Dialing,
            AttemptStatus::Answered,
            AttemptStatus::NoAnswer,
            AttemptStatus::Busy,
            AttemptStatus::Voicemail,
            AttemptStatus::Failed,
            AttemptStatus::Done,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// An attempt claimed by this box: dial `contact` now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub id: AttemptId,
    pub contact: Contact,
    pub attempt_no: i64,
}

impl Store {
    pub async fn create_contact_list(&self, name: &str) -> Result<ContactListId> {
        let id = ContactListId::new();
        sqlx::query("INSERT INTO contact_lists (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.as_str())
            .bind(name)
            .bind(UnixMillis::now().0)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if crate::is_unique_violation(&e) {
                    StoreError::Conflict {
                        what: "contact list",
                        key: name.to_string(),
                    }
                } else {
                    q("create contact list")(e)
                }
            })?;
        Ok(id)
    }

    /// Imports contacts in one transaction: all or none. A number already on the list is skipped;
    /// returns how many were added.
    pub async fn add_contacts(&self, list: &ContactListId, contacts: &[NewContact]) -> Result<u64> {
        let now = UnixMillis::now().0;
        let mut tx = self.write_tx().await?;
        let mut added = 0;
        for c in contacts {
            added += sqlx::query(
                "INSERT INTO contacts (id, list_id, number, name, time_zone, fields, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (list_id, number) DO NOTHING",
            )
            .bind(ContactId::new().as_str())
            .bind(list.as_str())
            .bind(self.seal_number(&c.number))
            .bind(c.name.as_deref().map(|n| self.seal_text(n)))
            .bind(&c.time_zone)
            .bind(self.seal_text(&c.fields))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(q("import contact"))?
            .rows_affected();
        }
        tx.commit().await.map_err(q("commit contact import"))?;
        Ok(added)
    }

    pub async fn contacts(&self, list: &ContactListId) -> Result<Vec<Contact>> {
        let rows = sqlx::query(
            "SELECT id, number, name, time_zone FROM contacts WHERE list_id = $1 ORDER BY created_at, id",
        )
        .bind(list.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("read contacts"))?;
        let mut contacts: Vec<Contact> = rows
            .iter()
            .map(|r| self.contact_from_row(r))
            .collect::<Result<_>>()?;
        // Sealed numbers do not sort: sort the opened ones.
        contacts.sort_by(|a, b| a.number.cmp(&b.number));
        Ok(contacts)
    }

    pub async fn create_campaign(&self, c: &Campaign) -> Result<()> {
        sqlx::query(
            "INSERT INTO campaigns (id, name, agent_id, list_id, trunk, status, window_start, \
             window_end, max_attempts, retry_delay_s, max_concurrent, created_at, days, holidays, \
             calls_per_minute, retry_policy, caller_id, ring_timeout_s) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(c.id.as_str())
        .bind(&c.name)
        .bind(c.agent_id.as_str())
        .bind(c.list_id.as_str())
        .bind(&c.trunk)
        .bind(c.status.as_str())
        .bind(&c.window_start)
        .bind(&c.window_end)
        .bind(c.max_attempts)
        .bind(c.retry_delay_s)
        .bind(c.max_concurrent)
        .bind(UnixMillis::now().0)
        .bind(&c.days)
        .bind(&c.holidays)
        .bind(c.calls_per_minute)
        .bind(&c.retry_policy)
        .bind(c.caller_id.as_deref())
        .bind(c.ring_timeout_s)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if crate::is_unique_violation(&e) {
                StoreError::Conflict {
                    what: "campaign",
                    key: c.name.clone(),
                }
            } else {
                q("create campaign")(e)
            }
        })?;
        Ok(())
    }

    /// Queues a first attempt, due at `due`, for every contact of the campaign's list that has none
    /// yet and is not on the DND list or blacklist. Returns how many were queued.
    pub async fn queue_first_attempts(
        &self,
        campaign: &CampaignId,
        due: UnixMillis,
    ) -> Result<u64> {
        let rows = sqlx::query(
            "SELECT ct.id FROM campaigns c JOIN contacts ct ON ct.list_id = c.list_id \
             WHERE c.id = $1 \
               AND NOT EXISTS (SELECT 1 FROM campaign_attempts a \
                               WHERE a.campaign_id = c.id AND a.contact_id = ct.id) \
               AND NOT EXISTS (SELECT 1 FROM dnd d WHERE d.number = ct.number) \
               AND NOT EXISTS (SELECT 1 FROM blacklist b WHERE b.number = ct.number)",
        )
        .bind(campaign.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("select contacts to queue"))?;
        let mut tx = self.write_tx().await?;
        let now = UnixMillis::now().0;
        for r in &rows {
            let contact: String = r.try_get(0).map_err(q("select contacts to queue"))?;
            sqlx::query(
                "INSERT INTO campaign_attempts (id, campaign_id, contact_id, attempt_no, status, \
                 due_at, created_at) VALUES ($1, $2, $3, 1, 'pending', $4, $5) \
                 ON CONFLICT (campaign_id, contact_id, attempt_no) DO NOTHING",
            )
            .bind(AttemptId::new().as_str())
            .bind(campaign.as_str())
            .bind(contact)
            .bind(due.0)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(q("queue attempt"))?;
        }
        tx.commit().await.map_err(q("commit queued attempts"))?;
        Ok(rows.len() as u64)
    }

    /// Claims the most overdue pending attempt of `campaign` for node `node`, marking it dialing.
    /// `None` when nothing is due. Safe to call from several boxes at once.
    pub async fn claim_due_attempt(
        &self,
        campaign: &CampaignId,
        node: &str,
        now: UnixMillis,
    ) -> Result<Option<Attempt>> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE campaign_attempts SET status = 'dialing', claimed_by = $1, claimed_at = $2 \
             WHERE id = (SELECT id FROM campaign_attempts WHERE campaign_id = $3 \
                         AND status = 'pending' AND due_at <= $2 ORDER BY due_at, id LIMIT 1 {lock}) \
             RETURNING id, contact_id, attempt_no"
        );
        let Some(r) = sqlx::query(&sql)
            .bind(node)
            .bind(now.0)
            .bind(campaign.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(q("claim attempt"))?
        else {
            return Ok(None);
        };
        let e = || q("claim attempt");
        let contact_id: String = r.try_get(1).map_err(e())?;
        let contact = sqlx::query("SELECT id, number, name, time_zone FROM contacts WHERE id = $1")
            .bind(&contact_id)
            .fetch_one(&self.pool)
            .await
            .map_err(q("read claimed contact"))?;
        Ok(Some(Attempt {
            id: AttemptId::from_string(r.try_get(0).map_err(e())?),
            contact: self.contact_from_row(&contact)?,
            attempt_no: r.try_get(2).map_err(e())?,
        }))
    }

    /// Records how an attempt ended and, when `retry_at` is given, queues the next attempt — both
    /// in one transaction, so a contact is never lost between the two.
    pub async fn finish_attempt(
        &self,
        attempt: &AttemptId,
        status: AttemptStatus,
        disposition: Option<&str>,
        call: Option<&CallRecordId>,
        retry_at: Option<UnixMillis>,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "UPDATE campaign_attempts SET status = $1, disposition = $2, call_id = $3 \
             WHERE id = $4 RETURNING campaign_id, contact_id, attempt_no",
        )
        .bind(status.as_str())
        .bind(disposition)
        .bind(call.map(|c| c.as_str().to_string()))
        .bind(attempt.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(q("finish attempt"))?
        .ok_or_else(|| StoreError::NotFound {
            what: "attempt",
            key: attempt.to_string(),
        })?;
        if let Some(due) = retry_at {
            let e = || q("finish attempt");
            let campaign: String = row.try_get(0).map_err(e())?;
            let contact: String = row.try_get(1).map_err(e())?;
            let n: i64 = row.try_get(2).map_err(e())?;
            sqlx::query(
                "INSERT INTO campaign_attempts (id, campaign_id, contact_id, attempt_no, status, \
                 due_at, created_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6)",
            )
            .bind(AttemptId::new().as_str())
            .bind(campaign)
            .bind(contact)
            .bind(n + 1)
            .bind(due.0)
            .bind(UnixMillis::now().0)
            .execute(&mut *tx)
            .await
            .map_err(q("queue retry"))?;
        }
        tx.commit().await.map_err(q("commit attempt"))
    }
}

/// Where a campaign's attempts stand: how many in each status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub contacts: i64,
    /// Attempts by status, every status present.
    pub attempts: Vec<(AttemptStatus, i64)>,
}

impl Progress {
    pub fn count(&self, status: AttemptStatus) -> i64 {
        self.attempts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    }
}

/// One attempt as an operator reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRow {
    pub id: AttemptId,
    pub number: String,
    pub attempt_no: i64,
    pub status: AttemptStatus,
    pub disposition: Option<String>,
    pub due_at: UnixMillis,
    pub call_id: Option<CallRecordId>,
}

/// An attempt a box had claimed when it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedAttempt {
    pub id: AttemptId,
    pub campaign_id: CampaignId,
    pub attempt_no: i64,
}

const CAMPAIGN_COLUMNS: &str = "id, name, agent_id, list_id, trunk, status, window_start, \
     window_end, days, holidays, max_attempts, retry_delay_s, retry_policy, max_concurrent, \
     calls_per_minute, caller_id, ring_timeout_s";

impl Store {
    pub async fn contact_list_by_name(&self, name: &str) -> Result<Option<ContactListId>> {
        let row = sqlx::query("SELECT id FROM contact_lists WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read contact list"))?;
        row.map(|r| r.try_get(0).map(ContactListId::from_string))
            .transpose()
            .map_err(q("read contact list"))
    }

    pub async fn campaign_by_name(&self, name: &str) -> Result<Option<Campaign>> {
        let row = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read campaign"))?;
        row.as_ref().map(campaign_from_row).transpose()
    }

    /// Every campaign, by name; `status` filters.
    pub async fn campaigns(&self, status: Option<CampaignStatus>) -> Result<Vec<Campaign>> {
        let rows = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE $1 = '' OR status = $1 ORDER BY name"
        ))
        .bind(status.map_or("", CampaignStatus::as_str))
        .fetch_all(&self.pool)
        .await
        .map_err(q("list campaigns"))?;
        rows.iter().map(campaign_from_row).collect()
    }

    /// Moves a campaign to `status`, audited as `actor`. Starting one queues a first attempt for
    /// each contact without one (due now).
    pub async fn set_campaign_status(
        &self,
        campaign: &CampaignId,
        status: CampaignStatus,
        actor: &str,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE campaigns SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(campaign.as_str())
            .execute(&mut *tx)
            .await
            .map_err(q("set campaign status"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "campaign",
                key: campaign.to_string(),
            });
        }
        let detail = serde_json::json!({ "status": status.as_str() }).to_string();
        crate::audit::append(
            &mut tx,
            actor,
            "campaign.status",
            campaign.as_str(),
            &detail,
        )
        .await?;
        tx.commit().await.map_err(q("commit campaign status"))
    }

    /// How many of the campaign's attempts are being dialled or are in a call, on every box.
    pub async fn attempts_in_flight(&self, campaign: &CampaignId) -> Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM campaign_attempts WHERE campaign_id = $1 AND status = 'dialing'",
        )
        .bind(campaign.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(q("count attempts in flight"))
    }

    /// Hands a claimed attempt back, due at `due` (the contact's window is closed now).
    pub async fn defer_attempt(&self, attempt: &AttemptId, due: UnixMillis) -> Result<()> {
        sqlx::query(
            "UPDATE campaign_attempts SET status = 'pending', due_at = $1, claimed_by = NULL, \
             claimed_at = NULL WHERE id = $2 AND status = 'dialing'",
        )
        .bind(due.0)
        .bind(attempt.as_str())
        .execute(&self.pool)
        .await
        .map_err(q("defer attempt"))?;
        Ok(())
    }

    /// The attempts `node` had claimed and not finished: it stopped while dialling them.
    pub async fn claimed_attempts(&self, node: &str) -> Result<Vec<ClaimedAttempt>> {
        let rows = sqlx::query(
            "SELECT id, campaign_id, attempt_no FROM campaign_attempts \
             WHERE claimed_by = $1 AND status = 'dialing' ORDER BY claimed_at, id",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read claimed attempts"))?;
        let e = || q("read claimed attempts");
        rows.iter()
            .map(|r| {
                Ok(ClaimedAttempt {
                    id: AttemptId::from_string(r.try_get(0).map_err(e())?),
                    campaign_id: CampaignId::from_string(r.try_get(1).map_err(e())?),
                    attempt_no: r.try_get(2).map_err(e())?,
                })
            })
            .collect()
    }

    pub async fn campaign_progress(&self, campaign: &CampaignId) -> Result<Progress> {
        let contacts: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM contacts ct JOIN campaigns c ON ct.list_id = c.list_id \
             WHERE c.id = $1",
        )
        .bind(campaign.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(q("count campaign contacts"))?;
        let rows = sqlx::query(
            "SELECT status, COUNT(*) FROM campaign_attempts WHERE campaign_id = $1 GROUP BY status",
        )
        .bind(campaign.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("campaign progress"))?;
        let mut attempts = Vec::new();
        for r in &rows {
            let status: String = r.try_get(0).map_err(q("campaign progress"))?;
            let n: i64 = r.try_get(1).map_err(q("campaign progress"))?;
            if let Some(s) = AttemptStatus::parse(&status) {
                attempts.push((s, n));
            }
        }
        Ok(Progress { contacts, attempts })
    }

    /// Every attempt of the campaign, oldest first.
    pub async fn campaign_attempts(&self, campaign: &CampaignId) -> Result<Vec<AttemptRow>> {
        let rows = sqlx::query(
            "SELECT a.id, ct.number, a.attempt_no, a.status, a.disposition, a.due_at, a.call_id \
             FROM campaign_attempts a JOIN contacts ct ON ct.id = a.contact_id \
             WHERE a.campaign_id = $1 ORDER BY a.created_at, a.id",
        )
        .bind(campaign.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(q("read attempts"))?;
        let e = || q("read attempts");
        rows.iter()
            .map(|r| {
                let status: String = r.try_get(3).map_err(e())?;
                Ok(AttemptRow {
                    id: AttemptId::from_string(r.try_get(0).map_err(e())?),
                    number: self.open_number(&r.try_get::<String, _>(1).map_err(e())?)?,
                    attempt_no: r.try_get(2).map_err(e())?,
                    status: AttemptStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                        what: "attempt status",
                        value: status.clone(),
                    })?,
                    disposition: r.try_get(4).map_err(e())?,
                    due_at: UnixMillis(r.try_get(5).map_err(e())?),
                    call_id: r
                        .try_get::<Option<String>, _>(6)
                        .map_err(e())?
                        .map(CallRecordId::from_string),
                })
            })
            .collect()
    }

    /// A running campaign with nothing pending or being dialled is finished. Returns whether it
    /// was.
    pub async fn finish_campaign_if_done(&self, campaign: &CampaignId) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE campaigns SET status = 'finished' WHERE id = $1 AND status = 'running' \
             AND NOT EXISTS (SELECT 1 FROM campaign_attempts a WHERE a.campaign_id = $1 \
                             AND a.status IN ('pending', 'dialing'))",
        )
        .bind(campaign.as_str())
        .execute(&self.pool)
        .await
        .map_err(q("finish campaign"))?;
        Ok(done.rows_affected() > 0)
    }
}

fn campaign_from_row(r: &sqlx::any::AnyRow) -> Result<Campaign> {
    let e = || q("read campaign");
    let status: String = r.try_get(5).map_err(e())?;
    Ok(Campaign {
        id: CampaignId::from_string(r.try_get(0).map_err(e())?),
        name: r.try_get(1).map_err(e())?,
        agent_id: AgentId::from_string(r.try_get(2).map_err(e())?),
        list_id: ContactListId::from_string(r.try_get(3).map_err(e())?),
        trunk: r.try_get(4).map_err(e())?,
        status: CampaignStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            what: "campaign status",
            value: status.clone(),
        })?,
        window_start: r.try_get(6).map_err(e())?,
        window_end: r.try_get(7).map_err(e())?,
        days: r.try_get(8).map_err(e())?,
        holidays: r.try_get(9).map_err(e())?,
        max_attempts: r.try_get(10).map_err(e())?,
        retry_delay_s: r.try_get(11).map_err(e())?,
        retry_policy: r.try_get(12).map_err(e())?,
        max_concurrent: r.try_get(13).map_err(e())?,
        calls_per_minute: r.try_get(14).map_err(e())?,
        caller_id: r.try_get(15).map_err(e())?,
        ring_timeout_s: r.try_get(16).map_err(e())?,
    })
}

impl Store {
    fn contact_from_row(&self, r: &sqlx::any::AnyRow) -> Result<Contact> {
        let e = || q("read contact");
        Ok(Contact {
            id: ContactId::from_string(r.try_get(0).map_err(e())?),
            number: self.open_number(&r.try_get::<String, _>(1).map_err(e())?)?,
            name: self.open_optional(r.try_get(2).map_err(e())?)?,
            time_zone: r.try_get(3).map_err(e())?,
        })
    }
}
