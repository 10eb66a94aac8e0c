//! The phone side of the daemon: admitting inbound calls, and placing the dialer's outbound ones
//! ([`Lines`]: the serve loop sends their INVITEs, so it routes their events from the first one).
//!
//! DESIGN "A call, step by step", 1: the trunk allow-list is enforced by the SIP driver; here a
//! blacklisted caller gets `603 Decline`, a number no agent answers gets `404 Not Found`, and a
//! box at capacity answers `503` with Retry-After instead of slowing every call down. Every
//! INVITE leaves a call record, rejected ones included, so operators see who was turned away.

use crate::capacity::Capacity;
use crate::engines::Models;
use crate::pii::Pii;
use crate::runtime::{Runtime, SipSignal};
use sip_message::{NameAddr, Uri};
use sip_net::{CallHandle, Event, IncomingCall, Rejection, SipHandle, SipNet};
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_store::{
    Agent, CallRecord, CallRecordId, Direction, EndOfCall, EndReason, Store, StoreError, UnixMillis,
};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

/// Seconds a caller turned away at capacity is told to wait.
const RETRY_AFTER_S: u32 = 30;

/// What happens to an inbound call.
#[derive(Debug)]
pub enum Decision {
    /// Take it: the agent that answers, and the capacity slot it holds until it ends.
    Admit {
        agent: Box<Agent>,
        slot: OwnedSemaphorePermit,
    },
    Reject {
        rejection: Rejection,
        reason: EndReason,
    },
}

/// Who is calling, and whether a source the operator trusts vouched for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerId {
    /// The caller's number (the user part of their URI); `anonymous` when withheld.
    pub number: String,
    /// Asserted by a trusted source (`sip.trust_caller_id_from`, trunks with
    /// `trust_caller_id`). Only a verified number is remembered or blacklisted: anyone can
    /// write any From, and a number read back someone's memory or blocked someone else.
    pub verified: bool,
}

impl CallerId {
    const ANONYMOUS: &'static str = "anonymous";

    /// RFC 3325: from a trusted source, the asserted identity (else the From it vouches for);
    /// from anyone else, the From as an unverified claim. A withheld number is never verified.
    pub fn of(incoming: &IncomingCall, trusted: &sip_net::AllowList) -> CallerId {
        let vouched = trusted.allows(incoming.source.ip());
        CallerId::from_invite(&incoming.from.uri, &incoming.asserted_identity, vouched)
    }

    fn from_invite(from: &Uri, asserted: &[NameAddr], vouched: bool) -> CallerId {
        let claimed = user_part(from);
        let number = if vouched {
            asserted.iter().find_map(|a| user_part(&a.uri)).or(claimed)
        } else {
            claimed
        };
        match number {
            Some(n) if !n.eq_ignore_ascii_case(Self::ANONYMOUS) => CallerId {
                number: n,
                verified: vouched,
            },
            _ => CallerId {
                number: Self::ANONYMOUS.into(),
                verified: false,
            },
        }
    }
}

/// Decides who gets in; cheap to clone.
#[derive(Clone, Debug)]
pub struct Admission {
    store: Store,
    capacity: Arc<Capacity>,
    /// This box's name, written into each call record.
    node: Arc<str>,
    /// Sources whose caller ID is believed.
    trusted: sip_net::AllowList,
}

impl Admission {
    pub fn new(
        store: Store,
        capacity: Arc<Capacity>,
        node: &str,
        trusted: sip_net::AllowList,
    ) -> Self {
        Admission {
            store,
            capacity,
            node: node.into(),
            trusted,
        }
    }

    /// Waits until every admitted call has released its slot (its record closed), up to
    /// `timeout`. Returns whether they all did.
    pub async fn drain(&self, timeout: std::time::Duration) -> bool {
        self.capacity.drain(timeout).await
    }

    /// Blacklist first (a blocked caller learns nothing else), then routing, then capacity.
    pub async fn decide(&self, caller: &str, called: &str) -> Result<Decision, StoreError> {
        let blocked = self.store.blacklist_entry(caller).await?;
        if blocked.is_some_and(|e| e.active_at(UnixMillis::now())) {
            return Ok(Decision::Reject {
                rejection: Rejection::Decline,
                reason: EndReason::Blacklisted,
            });
        }
        let Some(agent) = self.store.agent_for_number(called).await? else {
            return Ok(Decision::Reject {
                rejection: Rejection::NotFound,
                reason: EndReason::Unrouted,
            });
        };
        match self.capacity.try_admit() {
            Some(slot) => Ok(Decision::Admit {
                agent: Box::new(agent),
                slot,
            }),
            None => Ok(Decision::Reject {
                rejection: Rejection::Unavailable {
                    retry_after: Some(RETRY_AFTER_S),
                },
                reason: EndReason::AtCapacity,
            }),
        }
    }
}

/// The user part of a SIP URI, or the number of a tel: URI (parameters dropped).
pub fn user_part(uri: &Uri) -> Option<String> {
    let raw = match uri {
        Uri::Sip(u) => u.user.clone()?,
        Uri::Tel(t) => t.number.clone(),
        Uri::Other(_) => return None,
    };
    let user = raw.split(';').next().unwrap_or_default().to_string();
    (!user.is_empty()).then_some(user)
}

/// INVITEs admitted at once (each writes its record, asks the store and the runtime); more are
/// answered 503 with Retry-After straight away, before any database work.
const ADMITTING: usize = 64;

/// Serves SIP events until the driver stops. Admitted calls are answered by `runtime`; without
/// one (the model set is not usable) they are turned away with 480, never answered into silence.
/// Each INVITE is admitted in a task of its own, so a slow database delays that call only, not
/// the hang-ups, digits and re-offers of the calls already up.
pub async fn serve<M: Models>(
    mut sip: SipNet,
    admission: Admission,
    store: Store,
    runtime: Option<Arc<Runtime<M>>>,
    mut dials: mpsc::UnboundedReceiver<Dial>,
) {
    let handle = sip.handle.clone();
    let admission = Arc::new(admission);
    let admitting = Arc::new(Semaphore::new(ADMITTING));
    let (admitted_tx, mut admitted) = mpsc::unbounded_channel::<Admitted>();
    let mut live: HashMap<CallHandle, mpsc::UnboundedSender<SipSignal>> = HashMap::new();
    // What the SIP side reported of calls still being admitted, in order.
    let mut pending: HashMap<CallHandle, Vec<SipSignal>> = HashMap::new();
    loop {
        let event = tokio::select! {
            event = sip.events.recv() => match event {
                Some(event) => event,
                None => break,
            },
            Some(dial) = dials.recv() => {
                // Placed here, so its handle is known before any event about it is read.
                let placed = handle
                    .invite_via(dial.trunk, dial.target, dial.from, dial.offer)
                    .await
                    .map(|call| {
                        let (signals, events) = mpsc::unbounded_channel();
                        live.insert(call, signals);
                        (call, events)
                    });
                let _ = dial.reply.send(placed);
                continue;
            }
            Some((call, taken)) = admitted.recv() => {
                let waiting = pending.remove(&call).unwrap_or_default();
                if let Some(signals) = taken {
                    let ended = waiting.iter().any(|s| matches!(s, SipSignal::Ended { .. }));
                    for signal in waiting {
                        let _ = signals.send(signal);
                    }
                    if !ended {
                        live.insert(call, signals);
                    }
                }
                continue;
            }
        };
        let (call, signal) = match event {
            Event::IncomingCall(incoming) => {
                let call = incoming.call;
                let Ok(permit) = Arc::clone(&admitting).try_acquire_owned() else {
                    tracing::warn!("{ADMITTING} calls are being admitted already; answering 503");
                    metrics::counter!("switchboard_calls_rejected_total", "reason" => "admission_busy")
                        .increment(1);
                    let retry_after = Some(RETRY_AFTER_S);
                    let _ = handle
                        .reject(call, Rejection::Unavailable { retry_after })
                        .await;
                    continue;
                };
                pending.insert(call, Vec::new());
                let record = CallRecordId::new();
                let span = tracing::info_span!("call", call = %record);
                let (handle, admission, store, runtime, done) = (
                    handle.clone(),
                    Arc::clone(&admission),
                    store.clone(),
                    runtime.clone(),
                    admitted_tx.clone(),
                );
                tokio::spawn(
                    async move {
                        let mut report = Report {
                            call,
                            taken: None,
                            done,
                        };
                        report.taken = incoming_call(
                            &handle,
                            &admission,
                            &store,
                            runtime.as_deref(),
                            incoming,
                            record,
                        )
                        .await;
                        drop((report, permit));
                    }
                    .instrument(span),
                );
                continue;
            }
            Event::CallEnded { call, by_peer, .. } => (call, SipSignal::Ended { by_peer }),
            Event::CallCancelled { call } => (call, SipSignal::Ended { by_peer: true }),
            Event::Provisional { call, status, .. } => (call, SipSignal::Progress(status)),
            Event::Answered { call, sdp } => (call, SipSignal::Answered(sdp)),
            Event::Failed { call, status, .. } => (call, SipSignal::Failed(status)),
            Event::Dtmf { call, digit, .. } => (call, SipSignal::Dtmf(digit)),
            Event::Reoffer { call, sdp } => (call, SipSignal::Reoffer(sdp)),
            Event::TransferSucceeded { call } => (call, SipSignal::TransferSucceeded),
            Event::TransferFailed { call, status } => (call, SipSignal::TransferFailed(status)),
            _ => continue,
        };
        if let Some(waiting) = pending.get_mut(&call) {
            waiting.push(signal);
            continue;
        }
        let ended = matches!(signal, SipSignal::Ended { .. } | SipSignal::Failed(_));
        if let Some(signals) = live.get(&call) {
            let _ = signals.send(signal);
        }
        if ended {
            live.remove(&call);
        }
    }
}

/// Places outbound calls through the serve loop, which routes their SIP events back. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct Lines {
    dials: mpsc::UnboundedSender<Dial>,
}

/// An INVITE to send, and where to say how it went.
#[derive(Debug)]
pub struct Dial {
    trunk: sip_net::Trunk,
    target: Uri,
    from: NameAddr,
    offer: Vec<u8>,
    reply: oneshot::Sender<Result<Placed, sip_net::Error>>,
}

/// A call we placed, and its SIP events from the first provisional answer to the end.
pub type Placed = (CallHandle, mpsc::UnboundedReceiver<SipSignal>);

impl Lines {
    /// The lines, and what [`serve`] reads them from.
    pub fn new() -> (Lines, mpsc::UnboundedReceiver<Dial>) {
        let (dials, rx) = mpsc::unbounded_channel();
        (Lines { dials }, rx)
    }

    /// Sends INVITE `target` from `from` through `trunk` with our SDP `offer`.
    pub async fn invite(
        &self,
        trunk: sip_net::Trunk,
        target: Uri,
        from: NameAddr,
        offer: Vec<u8>,
    ) -> Result<Placed, sip_net::Error> {
        let (reply, placed) = oneshot::channel();
        let dial = Dial {
            trunk,
            target,
            from,
            offer,
            reply,
        };
        if self.dials.send(dial).is_err() {
            return Err(sip_net::Error::Closed);
        }
        placed.await.unwrap_or(Err(sip_net::Error::Closed))
    }
}

/// An admitted call's handle and where its SIP signals go (`None`: it was turned away).
type Admitted = (CallHandle, Option<mpsc::UnboundedSender<SipSignal>>);

/// Tells the serve loop how an admission ended when dropped: also when the admission panicked
/// (then as turned away), so the signals waiting for that call are not kept for ever.
struct Report {
    call: CallHandle,
    taken: Option<mpsc::UnboundedSender<SipSignal>>,
    done: mpsc::UnboundedSender<Admitted>,
}

impl Drop for Report {
    fn drop(&mut self) {
        let _ = self.done.send((self.call, self.taken.take()));
    }
}

async fn incoming_call<M: Models>(
    sip: &SipHandle,
    admission: &Admission,
    store: &Store,
    runtime: Option<&Runtime<M>>,
    incoming: IncomingCall,
    id: CallRecordId,
) -> Option<mpsc::UnboundedSender<SipSignal>> {
    let caller = CallerId::of(&incoming, &admission.trusted);
    let called = user_part(&incoming.request_uri)
        .or_else(|| user_part(&incoming.to.uri))
        .unwrap_or_default();
    let record = CallRecord {
        id,
        sip_call_id: incoming.call_id.to_string(),
        direction: Direction::Inbound,
        agent_id: None,
        from_number: caller.number.clone(),
        to_number: called.clone(),
        started_at: UnixMillis::now(),
        answered_at: None,
        ended_at: None,
        end_reason: None,
        consent: None,
        node: Some(admission.node.to_string()),
    };
    if let Err(e) = store.insert_call(&record).await {
        // Without a record we must not take the call: nothing of it could be kept.
        tracing::error!("cannot record the call: {e}; answering 503");
        let _ = sip
            .reject(
                incoming.call,
                Rejection::Unavailable {
                    retry_after: Some(RETRY_AFTER_S),
                },
            )
            .await;
        return None;
    }
    let decision = match admission.decide(&caller.number, &called).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("admission failed: {e}; answering 503");
            Decision::Reject {
                rejection: Rejection::Unavailable {
                    retry_after: Some(RETRY_AFTER_S),
                },
                reason: EndReason::StoreError,
            }
        }
    };
    match decision {
        Decision::Reject { rejection, reason } => {
            tracing::info!(caller = %Pii(&caller.number), called = %called, %reason, "call rejected");
            metrics::counter!("switchboard_calls_rejected_total", "reason" => reason.as_str())
                .increment(1);
            // The record is closed before the caller hears the answer: a daemon stopping right
            // after cannot leave it open.
            finish(store, &record.id, reason).await;
            let _ = sip.reject(incoming.call, rejection).await;
            None
        }
        Decision::Admit { agent, slot } => {
            tracing::info!(caller = %Pii(&caller.number), verified = caller.verified, agent = %agent.name, "call admitted");
            metrics::counter!("switchboard_calls_admitted_total").increment(1);
            let answered = match runtime {
                Some(runtime) => runtime
                    .answer(&incoming, &agent.name, record.id.clone(), caller, slot)
                    .await
                    .map_err(|e| (e.to_string(), EndReason::AnswerFailed, e.rejection())),
                None => Err((
                    "the model set is not usable (see /readyz)".to_owned(),
                    EndReason::RuntimeUnavailable,
                    Rejection::TemporarilyUnavailable,
                )),
            };
            match answered {
                Ok(signals) => Some(signals),
                Err((why, reason, rejection)) => {
                    let (status, _) = rejection.status();
                    tracing::error!("cannot take the call: {why}; answering {status}");
                    finish(store, &record.id, reason).await;
                    let _ = sip.reject(incoming.call, rejection).await;
                    None
                }
            }
        }
    }
}

async fn finish(store: &Store, id: &CallRecordId, reason: EndReason) {
    let end = EndOfCall::new(reason);
    if let Err(e) = store.finish_call(id, UnixMillis::now(), &end).await {
        tracing::error!(call = %id, "cannot close the call record: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capacity_blacklist_and_routing() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open_sqlite(&dir.path().join("db"), switchboard_store::DataKey::random())
                .await
                .unwrap();
        store
            .upsert_agent(&Agent {
                id: switchboard_store::AgentId::new(),
                name: "demo".into(),
                numbers: vec!["1000".into()],
                greeting: "Hello".into(),
                prompt: "Be brief".into(),
                consent: switchboard_store::Consent::Off,
                transfer_to: None,
                language: "en".into(),
                voice: "en_US-joe-medium".into(),
            })
            .await
            .unwrap();
        let admission = Admission::new(
            store.clone(),
            Capacity::new(1, None),
            "test",
            sip_net::AllowList::any(),
        );
        let first = admission.decide("+15551230001", "1000").await.unwrap();
        assert!(matches!(&first, Decision::Admit { agent, .. } if agent.name == "demo"));
        // The one slot is taken: the next caller is told to come back.
        let second = admission.decide("+15551230002", "1000").await.unwrap();
        assert!(matches!(
            second,
            Decision::Reject {
                rejection: Rejection::Unavailable {
                    retry_after: Some(RETRY_AFTER_S)
                },
                ..
            }
        ));
        drop(first);
        assert!(matches!(
            admission.decide("+15551230002", "1000").await.unwrap(),
            Decision::Admit { .. }
        ));
        assert!(matches!(
            admission.decide("+15551230002", "2000").await.unwrap(),
            Decision::Reject {
                rejection: Rejection::NotFound,
                ..
            }
        ));
    }

    #[test]
    fn caller_ids_are_believed_only_from_trusted_sources() {
        let from = Uri::parse("sip:+15550001234@203.0.113.7").unwrap();
        let pai = [NameAddr::parse("<tel:+15550009999>").unwrap()];
        // Anyone's From is a claim, whatever it asserts.
        let spoofed = CallerId::from_invite(&from, &pai, false);
        assert_eq!(spoofed.number, "+15550001234");
        assert!(!spoofed.verified);
        // A trusted source's assertion wins over the From it sent.
        let asserted = CallerId::from_invite(&from, &pai, true);
        assert_eq!(asserted.number, "+15550009999");
        assert!(asserted.verified);
        assert!(CallerId::from_invite(&from, &[], true).verified);
        // A withheld number is nobody, even from a trusted source.
        let withheld = Uri::parse("sip:anonymous@anonymous.invalid").unwrap();
        let anonymous = CallerId::from_invite(&withheld, &[], true);
        assert_eq!(
            (anonymous.number.as_str(), anonymous.verified),
            ("anonymous", false)
        );
    }

    #[test]
    fn user_parts() {
        let uri = |s: &str| Uri::parse(s).unwrap();
        assert_eq!(
            user_part(&uri("sip:demo@10.0.0.1:5060")).as_deref(),
            Some("demo")
        );
        assert_eq!(
            user_part(&uri("sip:+15550001000;npdi@trunk.example")).as_deref(),
            Some("+15550001000")
        );
        assert_eq!(
            user_part(&uri("tel:+15550001000")).as_deref(),
            Some("+15550001000")
        );
        assert_eq!(user_part(&uri("sip:10.0.0.1")), None);
    }
}
