//! Calls the runtime places for a campaign: our offer, the INVITE through the campaign's trunk,
//! the ring (cancelled at the ring timeout), and once the person answers, the same call task as
//! an inbound call.

use super::{accept_media, call, spawn_call, Runtime, RuntimeError, SipSignal};
use crate::engines::Models;
use crate::telephony::{CallerId, Lines};
use sip_message::{NameAddr, Uri};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_store::CallRecordId;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

/// One call to place.
pub struct OutboundCall {
    /// The call's record, written before the INVITE.
    pub id: CallRecordId,
    pub agent: String,
    /// The number called; taken as verified, since we chose it.
    pub callee: CallerId,
    pub route: sip_net::Trunk,
    pub target: Uri,
    pub from: NameAddr,
    /// How long to let the phone ring before cancelling.
    pub ring_timeout: Duration,
    /// The capacity slot the call holds until its record is closed.
    pub slot: OwnedSemaphorePermit,
}

/// How a placed call went.
#[derive(Debug)]
pub enum Dialled {
    /// Answered: the call runs; `ended` fires once its record is closed.
    Answered { ended: oneshot::Receiver<()> },
    /// Never answered: the final SIP status (487 when we cancelled at the ring timeout).
    NotAnswered { status: u16 },
}

impl<M: Models> Runtime<M> {
    /// Places `call` and, when the person answers, starts its task. An error means no call
    /// took place (no port, no INVITE sent, an answer we cannot use: hung up at once).
    pub async fn dial(&self, lines: &Lines, call: OutboundCall) -> Result<Dialled, RuntimeError> {
        let agent = self.agent(&call.agent)?;
        let peer = call
            .route
            .destinations
            .first()
            .map(|d| d.address)
            .or_else(|| target_address(&call.target))
            .ok_or(RuntimeError::NoRoute)?;
        let (sockets, caps) = self.media_towards(peer)?;
        let offer = media_net::offer(&caps);
        let (handle, mut signals) = lines
            .invite(call.route, call.target, call.from, offer.clone())
            .await?;
        let sip = &self.shared.sip;
        let ring_until = tokio::time::Instant::now() + call.ring_timeout;
        let mut cancelled = false;
        let answer = loop {
            let signal = tokio::select! {
                signal = signals.recv() => signal,
                () = tokio::time::sleep_until(ring_until), if !cancelled => {
                    // CANCEL; the INVITE then fails with 487 (or a 200 crossed it: the person
                    // picked up, and gets the call).
                    cancelled = true;
                    let _ = sip.hangup(handle).await;
                    continue;
                }
            };
            match signal {
                Some(SipSignal::Answered(sdp)) => break sdp,
                Some(SipSignal::Failed(status)) => return Ok(Dialled::NotAnswered { status }),
                Some(SipSignal::Progress(status)) => tracing::debug!(status, "ringing"),
                Some(SipSignal::Ended { .. }) | None => {
                    return Ok(Dialled::NotAnswered { status: 487 })
                }
                Some(_) => {}
            }
        };
        let media_config = media_net::accept_answer(&offer, &answer, call::rand_seed())
            .map_err(RuntimeError::Sdp)
            .and_then(|config| accept_media(config, peer.ip()));
        let media_config = match media_config {
            Ok(config) => config,
            Err(e) => {
                let _ = sip.hangup(handle).await;
                return Err(e);
            }
        };
        let media = media_net::RtpSession::spawn(sockets, media_config, 250);
        let task = call::CallTask {
            id: call.id,
            caller: call.callee,
            call: handle,
            agent,
            shared: Arc::clone(&self.shared),
            media,
            caps,
            peer: peer.ip(),
            signals,
        };
        let ended = spawn_call(task, call.slot);
        Ok(Dialled::Answered { ended })
    }
}

/// The address in `target` when its host is an IP literal.
fn target_address(target: &Uri) -> Option<SocketAddr> {
    match target {
        Uri::Sip(u) => {
            let ip: std::net::IpAddr = match u.host {
                sip_message::Host::Ipv4(ip) => ip.into(),
                sip_message::Host::Ipv6(ip) => ip.into(),
                sip_message::Host::Domain(_) => return None,
            };
            Some(SocketAddr::new(ip, u.port.unwrap_or(5060)))
        }
        _ => None,
    }
}
