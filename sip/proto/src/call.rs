//! Per-call state, one type per state (STYLE §4): what an outgoing,
//! incoming, accepting and established call each know.

use std::time::{Duration, Instant};

use sip_message::{Request, Uri};

use crate::dialog::Dialog;
use crate::digest::Credentials;
use crate::session_timer::{Agreed, SessionTimer};
use crate::transaction::{ClientKey, Peer, ServerKey};
use crate::trunk::HostCredentials;

#[allow(clippy::large_enum_variant)] // reason: one per call, moved rarely; boxing buys nothing
pub(crate) enum CallState {
    Outgoing(Outgoing),
    Incoming(Incoming),
    Accepting(Accepting),
    Established(Established),
}

impl CallState {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            CallState::Outgoing(_) => "outgoing",
            CallState::Incoming(_) => "incoming",
            CallState::Accepting(_) => "awaiting ACK",
            CallState::Established(_) => "established",
        }
    }

    pub(crate) fn dialog(&self) -> Option<&Dialog> {
        match self {
            CallState::Outgoing(_) | CallState::Incoming(_) => None,
            CallState::Accepting(a) => Some(&a.dialog),
            CallState::Established(e) => Some(&e.dialog),
        }
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match self {
            CallState::Accepting(a) => Some(a.ok.next),
            CallState::Established(e) => {
                let ok = e.reoffer_ok.as_ref().map(|r| r.next);
                let timer = e.session.timer.as_ref().map(SessionTimer::next_timeout);
                ok.into_iter().chain(timer).min()
            }
            _ => None,
        }
    }
}

/// UAC: INVITE sent, no final response yet.
pub(crate) struct Outgoing {
    /// The INVITE as last sent (CANCEL and the authenticated retry copy it).
    pub invite: Request,
    pub key: ClientKey,
    pub peer: Peer,
    /// The trunk's credentials, answering a challenge to this INVITE.
    pub credentials: Option<Credentials>,
    /// The trunk's other destinations, tried in turn after a timeout,
    /// transport error or 503 (RFC 3263 §4.3).
    pub alternatives: Vec<Peer>,
    pub auth_attempted: bool,
    /// §9.1: CANCEL only after a provisional response.
    pub provisional_seen: bool,
    pub cancel: Cancel,
    /// RFC 4028 §7.4: a 422 was answered once with a larger interval.
    pub interval_retried: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    NotRequested,
    /// Hangup before any provisional: CANCEL goes out on the first one.
    Pending,
    Sent,
}

/// UAS: INVITE received, the application has not answered.
pub(crate) struct Incoming {
    pub invite: Request,
    pub key: ServerKey,
    /// Prepared with our tag, registered when answered.
    pub dialog: Dialog,
    /// RFC 4028 §9: the session timer our 2xx will confirm.
    pub agreed: Option<Agreed>,
}

/// UAS: 2xx sent, retransmitted until the ACK (§13.3.1.4).
pub(crate) struct Accepting {
    pub dialog: Dialog,
    pub ok: Retransmit2xx,
    pub session: Session,
}

/// What the UA keeps about the media session to refresh it (RFC 4028):
/// the SDP last offered and answered (bytes, never read) and the timer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Session {
    pub local_sdp: Vec<u8>,
    pub remote_sdp: Vec<u8>,
    /// The peer's Allow lists UPDATE (RFC 3311), so a refresh needs no SDP.
    pub peer_allows_update: bool,
    pub timer: Option<SessionTimer>,
    /// Our re-INVITE's offer, current once answered.
    pub pending_offer: Option<Vec<u8>>,
}

/// A 2xx to an INVITE that the UA core retransmits (§13.3.1.4): T1
/// doubling to T2, given up after 64*T1.
pub(crate) struct Retransmit2xx {
    pub bytes: Vec<u8>,
    /// The INVITE's CSeq number, which the ACK repeats.
    pub cseq: u32,
    pub interval: Duration,
    pub next: Instant,
    pub give_up: Instant,
}

/// The dialog is confirmed.
pub(crate) struct Established {
    pub dialog: Dialog,
    /// UAC: the ACK last sent for a 2xx and its CSeq, resent when the 2xx
    /// is retransmitted (§13.2.2.4).
    pub ack: Option<(u32, Vec<u8>)>,
    /// A re-INVITE or UPDATE from the peer awaiting `answer_reoffer`.
    pub reoffer_in: Option<ReofferIn>,
    /// Our 2xx to a re-INVITE, until its ACK.
    pub reoffer_ok: Option<Retransmit2xx>,
    /// Our re-INVITE in flight.
    pub reoffer_out: Option<ClientKey>,
    /// We are the transferee of a REFER: the NOTIFY subscription (RFC 3515 §2.4.4).
    pub transferee: Option<Uri>,
    pub session: Session,
    /// UAC through a trunk: its credentials, for in-dialog requests to the
    /// host the INVITE went to.
    pub credentials: Option<HostCredentials>,
}

pub(crate) struct ReofferIn {
    pub key: ServerKey,
    pub request: Request,
    /// RFC 4028: the session timer the 2xx will confirm.
    pub agreed: Option<Agreed>,
}

impl Established {
    pub(crate) fn new(dialog: Dialog, session: Session) -> Established {
        Established {
            session,
            dialog,
            ack: None,
            reoffer_in: None,
            reoffer_ok: None,
            reoffer_out: None,
            transferee: None,
            credentials: None,
        }
    }
}

/// What a client transaction was started for, so its outcome reaches the right handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Invite,
    Reinvite,
    Cancel,
    Bye,
    Refer,
    Notify,
    Info,
    /// RFC 4028 §10: our session refresh (UPDATE or re-INVITE).
    SessionRefresh,
}
