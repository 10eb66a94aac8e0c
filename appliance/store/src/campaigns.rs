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
    fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Running => "running",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Finished => "finished",
        }
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
    pub window_start: String,
    pub window_end: String,
    pub max_attempts: i64,
    pub retry_delay_s: i64,
    pub max_concurrent: i64,
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
    fn as_str(self) -> &'static str {
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
             window_end, max_attempts, retry_delay_s, max_concurrent, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
