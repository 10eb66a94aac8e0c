//! The dialer: runs the store's running campaigns on this box.
//!
//! Every second it reads the running campaigns (a pause, stop or edit made on any box, by the
//! CLI or the API, takes effect here within a tick). For each, while the campaign's pacing, its
//! concurrency (counted across every box sharing the database) and this box's capacity allow
//! (campaigns leave `calls.inbound_reserve` slots to inbound callers), it claims the most
//! overdue attempt in a transaction, then checks at dial time:
//! - the contact's calling window in their own zone: closed, the attempt is handed back, due when
//!   it opens;
//! - the DND list and the blacklist: listed, the attempt ends `done` (`do_not_call`).
//!
//! The call's record is written before the INVITE. When the call ends, the attempt's outcome
//! and, when the retry policy wants one, the next attempt are committed together.
//!
//! At start, the attempts this box had claimed when it stopped end `failed` (`interrupted`),
//! retried by the policy like any failure: the contact may have been rung, so they are not
//! dialled again at once, and never lost.

use crate::capacity::Capacity;
use crate::config::{Config, TrunkConfig};
use crate::engines::Models;
use crate::pii::Pii;
use crate::runtime::{Dialled, OutboundCall, Runtime};
use crate::telephony::{CallerId, Lines};
use crate::trunks::Trunks;
use jiff::Timestamp;
use sip_message::{NameAddr, Uri};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_dialer::window::{self, Opening};
use switchboard_dialer::{CallingWindow, Outcome, Pacer, RetryPolicy};
use switchboard_store::{
    Attempt, AttemptStatus, CallRecord, CallRecordId, Campaign, CampaignId, CampaignStatus,
    Direction, EndOfCall, EndReason, Store, StoreError, UnixMillis,
};
use tracing::Instrument;

const TICK: Duration = Duration::from_secs(1);
/// How often contacts added to a running campaign's list are queued.
const REQUEUE: Duration = Duration::from_secs(60);

/// A campaign's rules, read from its row.
#[derive(Debug)]
pub struct Rules {
    pub window: CallingWindow,
    pub retry: RetryPolicy,
}

impl Rules {
    /// The rules a campaign row holds; an error names the bad field.
    pub fn of(campaign: &Campaign) -> Result<Rules, switchboard_dialer::Error> {
        let hours = format!("{}-{}", campaign.window_start, campaign.window_end);
        Ok(Rules {
            window: CallingWindow::parse(&hours, &campaign.days, &campaign.holidays)?,
            retry: RetryPolicy::parse(&campaign.retry_policy)?,
        })
    }

    /// When to try again after attempt `attempt_no` ended with `outcome`, if ever.
    fn retry_at(
        &self,
        campaign: &Campaign,
        outcome: Outcome,
        attempt_no: i64,
    ) -> Option<UnixMillis> {
        let max = u32::try_from(campaign.max_attempts).unwrap_or(0);
        let no = u32::try_from(attempt_no).unwrap_or(u32::MAX);
        let wait = self.retry.next(outcome, no, max)?;
        let floor = Duration::from_secs(u64::try_from(campaign.retry_delay_s).unwrap_or(0));
        let wait = i64::try_from(wait.max(floor).as_millis()).unwrap_or(i64::MAX);
        Some(UnixMillis(UnixMillis::now().0.saturating_add(wait)))
    }
}

/// One campaign as this box runs it.
struct Running {
    campaign: Campaign,
    rules: Arc<Rules>,
    pacer: Pacer,
    queued_at: Option<Instant>,
}

pub struct Dialer<M: Models> {
    store: Store,
    runtime: Arc<Runtime<M>>,
    lines: Lines,
    trunks: Trunks,
    trunk_configs: HashMap<String, TrunkConfig>,
    capacity: Arc<Capacity>,
    reserve: usize,
    node: String,
    /// The address written into our From when the trunk has none to offer.
    local_host: String,
    running: HashMap<CampaignId, Running>,
    /// Campaigns whose rules could not be read, logged once each.
    broken: HashMap<CampaignId, String>,
}

impl<M: Models> Dialer<M> {
    pub fn new(
        config: &Config,
        store: Store,
        runtime: Arc<Runtime<M>>,
        lines: Lines,
        trunks: Trunks,
        capacity: Arc<Capacity>,
        local_host: String,
    ) -> Dialer<M> {
        Dialer {
            store,
            runtime,
            lines,
            trunks,
            trunk_configs: config
                .trunks
                .iter()
                .map(|t| (t.name.clone(), t.clone()))
                .collect(),
            capacity,
            reserve: config.calls.inbound_reserve as usize,
            node: config.node_name(),
            local_host,
            running: HashMap::new(),
            broken: HashMap::new(),
        }
    }

    /// Recovers this box's interrupted attempts, then dials until the task is dropped.
    pub async fn run(mut self) {
        if let Err(e) = self.recover().await {
            tracing::error!("cannot recover the attempts interrupted at the last stop: {e}");
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.tick().await {
                tracing::warn!("dialer: {e}; trying again");
            }
        }
    }

    async fn recover(&self) -> Result<(), StoreError> {
        let campaigns: HashMap<CampaignId, Campaign> = self
            .store
            .campaigns(None)
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        for claimed in self.store.claimed_attempts(&self.node).await? {
            let retry = campaigns.get(&claimed.campaign_id).and_then(|c| {
                Rules::of(c)
                    .ok()?
                    .retry_at(c, Outcome::Failed, claimed.attempt_no)
            });
            tracing::warn!(attempt = %claimed.id, retry = retry.is_some(), "attempt interrupted by the last stop");
            self.store
                .finish_attempt(
                    &claimed.id,
                    AttemptStatus::Failed,
                    Some("interrupted"),
                    None,
                    retry,
                )
                .await?;
        }
        Ok(())
    }

    async fn tick(&mut self) -> Result<(), StoreError> {
        let campaigns = self.store.campaigns(Some(CampaignStatus::Running)).await?;
        self.running
            .retain(|id, _| campaigns.iter().any(|c| &c.id == id));
        for campaign in campaigns {
            if !self.runs(&campaign) {
                continue;
            }
            if !self.dial_due(&campaign.id).await? {
                // This box is full: the other campaigns wait for the next tick too.
                break;
            }
        }
        Ok(())
    }

    /// Takes `campaign`'s current row; false when its rules cannot be run here.
    fn runs(&mut self, campaign: &Campaign) -> bool {
        let rules = Rules::of(campaign)
            .map_err(|e| e.to_string())
            .and_then(|rules| {
                if self.trunk_configs.contains_key(&campaign.trunk) {
                    Ok(rules)
                } else {
                    Err(format!("no [[trunks]] entry named {:?}", campaign.trunk))
                }
            });
        let rules = match rules {
            Ok(rules) => rules,
            Err(why) => {
                // Logged once, not every second.
                if self
                    .broken
                    .insert(campaign.id.clone(), why.clone())
                    .is_none()
                {
                    tracing::error!(campaign = %campaign.name, "campaign not dialled: {why}");
                }
                return false;
            }
        };
        self.broken.remove(&campaign.id);
        let (concurrent, per_minute) = limits(campaign);
        match self.running.get_mut(&campaign.id) {
            Some(running) if &running.campaign == campaign => {}
            Some(running) => {
                running.pacer.set_limits(concurrent, per_minute);
                running.rules = Arc::new(rules);
                running.campaign = campaign.clone();
            }
            None => {
                let running = Running {
                    campaign: campaign.clone(),
                    rules: Arc::new(rules),
                    pacer: Pacer::new(concurrent, per_minute),
                    queued_at: None,
                };
                self.running.insert(campaign.id.clone(), running);
            }
        }
        true
    }

    /// Starts the campaign's due calls that its limits and the box allow. False when the box
    /// has no slot left for outbound calls.
    async fn dial_due(&mut self, id: &CampaignId) -> Result<bool, StoreError> {
        let Some(running) = self.running.get_mut(id) else {
            return Ok(true);
        };
        if running.queued_at.is_none_or(|t| t.elapsed() >= REQUEUE) {
            let queued = self
                .store
                .queue_first_attempts(id, UnixMillis::now())
                .await?;
            if queued > 0 {
                tracing::info!(campaign = %running.campaign.name, queued, "contacts queued");
            }
            running.queued_at = Some(Instant::now());
        }
        loop {
            let in_flight = self.store.attempts_in_flight(id).await?;
            let in_flight = u32::try_from(in_flight).unwrap_or(u32::MAX);
            if running.pacer.may_start(Instant::now(), in_flight)
                != switchboard_dialer::pacing::Pace::Now
            {
                return Ok(true);
            }
            let Some(slot) = self.capacity.try_admit_leaving(self.reserve) else {
                return Ok(false);
            };
            let now = UnixMillis::now();
            let Some(attempt) = self.store.claim_due_attempt(id, &self.node, now).await? else {
                if self.store.finish_campaign_if_done(id).await? {
                    tracing::info!(campaign = %running.campaign.name, "campaign finished: every contact reached or given up");
                }
                return Ok(true);
            };
            let zone = window::zone(&attempt.contact.time_zone).unwrap_or_else(|e| {
                tracing::warn!("{e}; calling window taken in UTC");
                jiff::tz::TimeZone::UTC
            });
            match running.rules.window.next_opening(timestamp(now), &zone) {
                Opening::Now => {}
                Opening::At(opens) => {
                    self.store
                        .defer_attempt(&attempt.id, UnixMillis(opens.as_millisecond()))
                        .await?;
                    continue;
                }
                Opening::Never => {
                    self.store
                        .finish_attempt(
                            &attempt.id,
                            AttemptStatus::Done,
                            Some("window_never_opens"),
                            None,
                            None,
                        )
                        .await?;
                    continue;
                }
            }
            if self.store.is_do_not_call(&attempt.contact.number).await? {
                tracing::info!(number = %Pii(&attempt.contact.number), "on the DND list or blacklist: not called");
                self.store
                    .finish_attempt(
                        &attempt.id,
                        AttemptStatus::Done,
                        Some("do_not_call"),
                        None,
                        None,
                    )
                    .await?;
                continue;
            }
            running.pacer.started(Instant::now());
            let call = prepare_call(
                &self.trunk_configs,
                &self.trunks,
                &self.local_host,
                &running.campaign,
                &attempt,
                slot,
            )
            .await;
            let Some(call) = call else {
                // The trunk is not located yet: hand the attempt back for a minute.
                let later = UnixMillis(now.0 + 60_000);
                self.store.defer_attempt(&attempt.id, later).await?;
                return Ok(true);
            };
            let record = CallRecordId::new();
            let span =
                tracing::info_span!("attempt", call = %record, campaign = %running.campaign.name);
            let task = Attempting {
                store: self.store.clone(),
                runtime: Arc::clone(&self.runtime),
                lines: self.lines.clone(),
                campaign: running.campaign.clone(),
                rules: Arc::clone(&running.rules),
                attempt,
                node: self.node.clone(),
            };
            tokio::spawn(task.run(record, call).instrument(span));
        }
    }
}

/// What [`prepare_call`] prepares; the record id is added when it is placed.
struct PartialCall {
    route: sip_net::Trunk,
    target: Uri,
    from: NameAddr,
    caller_id: String,
    slot: tokio::sync::OwnedSemaphorePermit,
}

/// The call for `attempt`, through the campaign's trunk; `None` while the trunk has no address
/// yet.
async fn prepare_call(
    trunk_configs: &HashMap<String, TrunkConfig>,
    trunks: &Trunks,
    local_host: &str,
    campaign: &Campaign,
    attempt: &Attempt,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Option<PartialCall> {
    let trunk = trunk_configs.get(&campaign.trunk)?;
    let route = trunks.route(&campaign.trunk).await?;
    let target = Uri::parse(&format!(
        "sip:{}@{}",
        attempt.contact.number,
        authority(&trunk.proxy.host, trunk.proxy.port)
    ))
    .ok()?;
    let user = campaign
        .caller_id
        .clone()
        .or_else(|| trunk.from_user.clone())
        .or_else(|| trunk.username.clone())
        .unwrap_or_else(|| "switchboard".into());
    let from = NameAddr::parse(&format!("<sip:{user}@{local_host}>")).ok()?;
    Some(PartialCall {
        route,
        target,
        from,
        caller_id: user,
        slot,
    })
}

/// One attempt being placed and, if answered, talked through.
struct Attempting<M: Models> {
    store: Store,
    runtime: Arc<Runtime<M>>,
    lines: Lines,
    campaign: Campaign,
    rules: Arc<Rules>,
    attempt: Attempt,
    node: String,
}

impl<M: Models> Attempting<M> {
    async fn run(self, id: CallRecordId, call: PartialCall) {
        let number = self.attempt.contact.number.clone();
        let record = CallRecord {
            id: id.clone(),
            sip_call_id: String::new(),
            direction: Direction::Outbound,
            agent_id: Some(self.campaign.agent_id.clone()),
            from_number: call.caller_id.clone(),
            to_number: number.clone(),
            started_at: UnixMillis::now(),
            answered_at: None,
            ended_at: None,
            end_reason: None,
            consent: None,
            node: Some(self.node.clone()),
        };
        let outcome = match self.store.insert_call(&record).await {
            Err(e) => {
                // Nothing of the call could be kept: do not place it.
                tracing::error!("cannot record the call: {e}; not dialling");
                Outcome::Failed
            }
            Ok(()) => self.place(&id, call).await,
        };
        tracing::info!(number = %Pii(&number), %outcome, attempt = self.attempt.attempt_no, "attempt ended");
        metrics::counter!("switchboard_campaign_attempts_total", "outcome" => outcome.as_str())
            .increment(1);
        let retry = self
            .rules
            .retry_at(&self.campaign, outcome, self.attempt.attempt_no);
        let finished = self
            .store
            .finish_attempt(
                &self.attempt.id,
                status(outcome),
                Some(outcome.as_str()),
                Some(&id),
                retry,
            )
            .await;
        if let Err(e) = finished {
            // The attempt stays `dialing` under this box: the next start closes it.
            tracing::error!("cannot record the attempt's outcome: {e}");
        }
    }

    async fn place(&self, id: &CallRecordId, call: PartialCall) -> Outcome {
        let agent = match self.store.agent_ids().await {
            Ok(ids) => ids
                .into_iter()
                .find(|(a, _)| *a == self.campaign.agent_id)
                .map(|(_, name)| name),
            Err(e) => {
                tracing::error!("cannot read the campaign's agent: {e}");
                None
            }
        };
        let outcome = match agent {
            None => Err("the campaign's agent is gone".to_string()),
            Some(agent) => {
                let outbound = OutboundCall {
                    id: id.clone(),
                    agent,
                    callee: CallerId {
                        number: self.attempt.contact.number.clone(),
                        verified: true,
                    },
                    route: call.route,
                    target: call.target,
                    from: call.from,
                    ring_timeout: Duration::from_secs(
                        u64::try_from(self.campaign.ring_timeout_s).unwrap_or(30),
                    ),
                    slot: call.slot,
                };
                self.runtime
                    .dial(&self.lines, outbound)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        match outcome {
            Ok(Dialled::Answered { ended }) => {
                // The call task closes the record.
                let _ = ended.await;
                Outcome::Answered
            }
            Ok(Dialled::NotAnswered { status }) => {
                tracing::info!(status, "not answered");
                self.close(id, EndReason::Unanswered).await;
                Outcome::of_status(status)
            }
            Err(why) => {
                tracing::error!("cannot place the call: {why}");
                self.close(id, EndReason::AnswerFailed).await;
                Outcome::Failed
            }
        }
    }

    async fn close(&self, id: &CallRecordId, reason: EndReason) {
        if let Err(e) = self
            .store
            .finish_call(id, UnixMillis::now(), &EndOfCall::new(reason))
            .await
        {
            tracing::error!("cannot close the call record: {e}");
        }
    }
}

/// The attempt status an outcome is stored as (the disposition keeps the outcome itself).
fn status(outcome: Outcome) -> AttemptStatus {
    match outcome {
        Outcome::Answered => AttemptStatus::Answered,
        Outcome::Busy => AttemptStatus::Busy,
        Outcome::NoAnswer => AttemptStatus::NoAnswer,
        Outcome::Voicemail => AttemptStatus::Voicemail,
        Outcome::Declined | Outcome::InvalidNumber | Outcome::Failed => AttemptStatus::Failed,
    }
}

fn limits(campaign: &Campaign) -> (u32, u32) {
    (
        u32::try_from(campaign.max_concurrent).unwrap_or(1).max(1),
        u32::try_from(campaign.calls_per_minute).unwrap_or(0),
    )
}

fn timestamp(t: UnixMillis) -> Timestamp {
    Timestamp::from_millisecond(t.0).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `host:port`, bracketing an IPv6 address.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
