//! What the endpoint tells the application (the call runtime).

use std::net::SocketAddr;

use sip_message::{CallId, NameAddr, Uri};

use std::time::Duration;

use crate::{CallHandle, KeepaliveHandle, RegistrationHandle};

/// One application-level happening. SDP travels as opaque bytes: this
/// crate never reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // reason: IncomingCall is the common event; boxing it only adds an allocation
pub enum Event {
    /// A new INVITE. Answer with `ringing`, `answer` or `reject`; until
    /// then the transaction sends 100 Trying after 200 ms.
    IncomingCall(IncomingCall),
    /// UAC: a 101–199 response (180 Ringing, 183 Session Progress); `sdp`
    /// is set for early media.
    Provisional {
        call: CallHandle,
        status: u16,
        sdp: Option<Vec<u8>>,
    },
    /// UAC: a 2xx arrived and was ACKed; `sdp` is the answer.
    Answered { call: CallHandle, sdp: Vec<u8> },
    /// UAC: the INVITE failed: a 3xx–6xx, 408 on Timer B, 503 on a transport error.
    Failed {
        call: CallHandle,
        status: u16,
        reason: String,
    },
    /// UAS: the caller cancelled before we answered (200 to the CANCEL
    /// and 487 to the INVITE were sent).
    CallCancelled { call: CallHandle },
    /// The call is over; the handle is no longer valid.
    CallEnded {
        call: CallHandle,
        by_peer: bool,
        reason: EndReason,
    },
    /// The peer sent a new offer (re-INVITE or UPDATE: hold, unhold,
    /// codec change). Reply with `answer_reoffer`.
    Reoffer { call: CallHandle, sdp: Vec<u8> },
    /// Our re-INVITE (`reoffer`) was answered.
    ReofferAnswered { call: CallHandle, sdp: Vec<u8> },
    /// Our re-INVITE was refused or timed out; the call continues with
    /// the previous session.
    ReofferFailed { call: CallHandle, status: u16 },
    /// A DTMF digit by SIP INFO (application/dtmf-relay or application/dtmf).
    Dtmf {
        call: CallHandle,
        digit: char,
        duration_ms: Option<u32>,
    },
    /// The peer asked us to transfer (RFC 3515 REFER, answered 202).
    /// Report the outcome with `transfer_progress`.
    TransferRequested { call: CallHandle, target: Uri },
    /// Our REFER was accepted (202).
    TransferAccepted { call: CallHandle },
    /// A NOTIFY reported a provisional status of the transfer target.
    TransferProgress { call: CallHandle, status: u16 },
    /// A NOTIFY reported a 2xx from the transfer target.
    TransferSucceeded { call: CallHandle },
    /// The REFER was refused, or a NOTIFY reported a final failure.
    TransferFailed { call: CallHandle, status: u16 },
    /// RFC 3891: an INVITE with `Replaces` took over the established call
    /// `old`. The endpoint answered it with `old`'s local SDP (so the
    /// media session carries on) and sent BYE on `old`, whose handle is no
    /// longer valid (no `CallEnded` follows for it). `offer` is the new
    /// peer's SDP: point the media at it, or `reoffer` if it does not fit.
    CallReplaced {
        old: CallHandle,
        new: CallHandle,
        offer: Vec<u8>,
    },
    /// The registrar accepted our binding for `expires` seconds (after
    /// `register` and after every refresh).
    Registered {
        registration: RegistrationHandle,
        expires: u32,
    },
    /// A REGISTER failed (`status`: the registrar's, 408 on timeout, 503 on
    /// a transport error); the endpoint retries after `retry_in`.
    RegistrationFailed {
        registration: RegistrationHandle,
        status: u16,
        retry_in: Duration,
    },
    /// `unregister` finished; the handle is no longer valid.
    Unregistered { registration: RegistrationHandle },
    /// A keep-alive's peer answered OPTIONS (`status`: its final response,
    /// any of which proves it is there) after being down or unknown.
    PeerUp {
        keepalive: KeepaliveHandle,
        status: u16,
    },
    /// A keep-alive's OPTIONS got no answer (`status`: 408 on Timer F, 503
    /// on a transport error) after the peer was up or unknown.
    PeerDown {
        keepalive: KeepaliveHandle,
        status: u16,
    },
}

/// A new inbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    pub call: CallHandle,
    pub call_id: CallId,
    pub from: NameAddr,
    pub to: NameAddr,
    pub request_uri: Uri,
    /// Where the INVITE came from (for trunk allow-lists).
    pub source: SocketAddr,
    /// The SDP offer; empty when the INVITE carried none.
    pub offer: Vec<u8>,
    /// Trunk mode: the digest username the caller proved; `None` when the
    /// source was allow-listed or no authentication is configured.
    pub authenticated_user: Option<String>,
    /// The identities a proxy asserted for the caller (RFC 3325
    /// P-Asserted-Identity: a SIP URI and/or a tel URI), unparseable values
    /// left out. Anyone can write this header: believe it only from a
    /// source in the application's trust domain.
    pub asserted_identity: Vec<NameAddr>,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// A BYE (from either side).
    Bye,
    /// We cancelled an unanswered outbound call.
    Cancelled,
    /// RFC 3261 §13.3.1.4: our 2xx was never ACKed within 64*T1; we sent BYE.
    NoAck,
    /// The transport to the peer failed.
    TransportError,
    /// RFC 4028 §10: the session was not refreshed in time; we sent BYE.
    SessionExpired,
}

/// How to refuse an inbound call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// 486 Busy Here.
    Busy,
    /// 503 Service Unavailable, with Retry-After in seconds (RFC 3261 §20.33)
    /// when the box is at capacity.
    Unavailable { retry_after: Option<u32> },
    /// 603 Decline (blacklisted caller).
    Decline,
    /// 404 Not Found (no agent for the dialled number).
    NotFound,
    /// 403 Forbidden (source not on the trunk allow-list).
    Forbidden,
    /// 480 Temporarily Unavailable.
    TemporarilyUnavailable,
    /// 488 Not Acceptable Here (no media in the offer we can take: RFC 3261 §21.4.26).
    NotAcceptableHere,
}

impl Rejection {
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Rejection::Busy => (486, "Busy Here"),
            Rejection::Unavailable { .. } => (503, "Service Unavailable"),
            Rejection::Decline => (603, "Decline"),
            Rejection::NotFound => (404, "Not Found"),
            Rejection::Forbidden => (403, "Forbidden"),
            Rejection::TemporarilyUnavailable => (480, "Temporarily Unavailable"),
            Rejection::NotAcceptableHere => (488, "Not Acceptable Here"),
        }
    }
}
