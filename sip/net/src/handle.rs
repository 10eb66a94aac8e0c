//! What the application holds: a cheap, clonable handle whose methods send
//! a command to the driver task and await the endpoint's verdict.

use sip_message::{NameAddr, Uri};
use std::time::Duration;

use sip_proto::{CallHandle, KeepaliveHandle, RegistrationHandle, Rejection, Stats, Trunk};
use tokio::sync::{mpsc, oneshot};

use crate::tls::{OutboundTls, TlsPeer};
use crate::Error;
use std::net::SocketAddr;

/// A command for the endpoint on one call.
#[derive(Debug)]
pub(crate) enum CallOp {
    Ringing,
    Answer(Vec<u8>),
    Reject(Rejection),
    Hangup,
    Reoffer(Vec<u8>),
    AnswerReoffer(Vec<u8>),
    RefuseReoffer,
    Refer(Uri),
    ReferAttended(CallHandle),
    TransferProgress(u16),
    Dtmf { digit: char, duration_ms: u32 },
}

impl CallOp {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            CallOp::Ringing => "ringing",
            CallOp::Answer(_) => "answer",
            CallOp::Reject(_) => "reject",
            CallOp::Hangup => "hangup",
            CallOp::Reoffer(_) => "reoffer",
            CallOp::AnswerReoffer(_) => "answer_reoffer",
            CallOp::RefuseReoffer => "refuse_reoffer",
            CallOp::Refer(_) => "refer",
            CallOp::ReferAttended(_) => "refer_attended",
            CallOp::TransferProgress(_) => "transfer_progress",
            CallOp::Dtmf { .. } => "send_dtmf",
        }
    }
}

#[derive(Debug)]
pub(crate) enum Command {
    Invite {
        trunk: Trunk,
        target: Uri,
        from: NameAddr,
        offer: Vec<u8>,
        reply: oneshot::Sender<Result<CallHandle, sip_proto::Error>>,
    },
    Call {
        call: CallHandle,
        op: CallOp,
        reply: oneshot::Sender<Result<(), sip_proto::Error>>,
    },
    Register {
        trunk: Trunk,
        registrar: Uri,
        aor: Uri,
        expires: u32,
        reply: oneshot::Sender<Result<RegistrationHandle, sip_proto::Error>>,
    },
    Unregister {
        registration: RegistrationHandle,
        reply: oneshot::Sender<Result<(), sip_proto::Error>>,
    },
    Keepalive {
        trunk: Trunk,
        target: Uri,
        interval: Duration,
        reply: oneshot::Sender<Result<KeepaliveHandle, sip_proto::Error>>,
    },
    StopKeepalive {
        keepalive: KeepaliveHandle,
        reply: oneshot::Sender<Result<(), sip_proto::Error>>,
    },
    RetargetKeepalive {
        keepalive: KeepaliveHandle,
        trunk: Trunk,
        reply: oneshot::Sender<Result<(), sip_proto::Error>>,
    },
    RetargetRegistration {
        registration: RegistrationHandle,
        trunk: Trunk,
        reply: oneshot::Sender<Result<(), sip_proto::Error>>,
    },
    TlsPeer {
        address: SocketAddr,
        tls: OutboundTls,
        reply: oneshot::Sender<()>,
    },
    Stats {
        reply: oneshot::Sender<(Stats, usize)>,
    },
}

/// The application's handle on the SIP driver. Clone freely; every method
/// returns once the endpoint has accepted or refused the command (the
/// outcome on the wire arrives later as an [`sip_proto::Event`]).
#[derive(Debug, Clone)]
pub struct SipHandle {
    commands: mpsc::Sender<Command>,
}

impl SipHandle {
    pub(crate) fn new(commands: mpsc::Sender<Command>) -> SipHandle {
        SipHandle { commands }
    }

    /// UAC: INVITE `target` from `from` with the SDP `offer`, where
    /// `target` routes. Outcome: `Provisional`*, then `Answered` or `Failed`.
    pub async fn invite(
        &self,
        target: Uri,
        from: NameAddr,
        offer: Vec<u8>,
    ) -> Result<CallHandle, Error> {
        self.invite_via(Trunk::default(), target, from, offer).await
    }

    /// UAC: [`SipHandle::invite`] through `trunk`: to its destinations,
    /// answering its challenges with its credentials.
    pub async fn invite_via(
        &self,
        trunk: Trunk,
        target: Uri,
        from: NameAddr,
        offer: Vec<u8>,
    ) -> Result<CallHandle, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Invite {
            trunk,
            target,
            from,
            offer,
            reply,
        })
        .await?;
        Ok(rx.await.map_err(|_| Error::Closed)??)
    }

    /// UAS: 180 Ringing.
    pub async fn ringing(&self, call: CallHandle) -> Result<(), Error> {
        self.call(call, CallOp::Ringing).await
    }

    /// UAS: 200 OK with our SDP answer.
    pub async fn answer(&self, call: CallHandle, sdp: Vec<u8>) -> Result<(), Error> {
        self.call(call, CallOp::Answer(sdp)).await
    }

    /// UAS: refuse the call.
    pub async fn reject(&self, call: CallHandle, rejection: Rejection) -> Result<(), Error> {
        self.call(call, CallOp::Reject(rejection)).await
    }

    /// BYE an established call, CANCEL an unanswered outbound one, 480 an
    /// unanswered inbound one.
    pub async fn hangup(&self, call: CallHandle) -> Result<(), Error> {
        self.call(call, CallOp::Hangup).await
    }

    /// re-INVITE with a new offer (hold, resume). Outcome: `ReofferAnswered`
    /// or `ReofferFailed`.
    pub async fn reoffer(&self, call: CallHandle, sdp: Vec<u8>) -> Result<(), Error> {
        self.call(call, CallOp::Reoffer(sdp)).await
    }

    /// Answer the peer's `Reoffer`.
    pub async fn answer_reoffer(&self, call: CallHandle, sdp: Vec<u8>) -> Result<(), Error> {
        self.call(call, CallOp::AnswerReoffer(sdp)).await
    }

    /// Refuse the peer's `Reoffer` (488): the session stays as it was.
    pub async fn refuse_reoffer(&self, call: CallHandle) -> Result<(), Error> {
        self.call(call, CallOp::RefuseReoffer).await
    }

    /// RFC 3515 blind transfer. Outcome: `TransferAccepted`,
    /// `TransferProgress`*, then `TransferSucceeded` or `TransferFailed`.
    pub async fn refer(&self, call: CallHandle, target: Uri) -> Result<(), Error> {
        self.call(call, CallOp::Refer(target)).await
    }

    /// RFC 5589 §7 attended transfer: REFER the peer of `call` to the peer
    /// of `target_call` with `Replaces` for our dialog with it. Outcome as
    /// for [`SipHandle::refer`]; on success the target ends `target_call`
    /// with a BYE (`CallEnded`).
    pub async fn refer_attended(
        &self,
        call: CallHandle,
        target_call: CallHandle,
    ) -> Result<(), Error> {
        self.call(call, CallOp::ReferAttended(target_call)).await
    }

    /// Transferee: report the transfer's progress in a NOTIFY.
    pub async fn transfer_progress(&self, call: CallHandle, status: u16) -> Result<(), Error> {
        self.call(call, CallOp::TransferProgress(status)).await
    }

    /// A DTMF digit by SIP INFO (in-band RTP digits go through media-net).
    pub async fn send_dtmf(
        &self,
        call: CallHandle,
        digit: char,
        duration_ms: u32,
    ) -> Result<(), Error> {
        self.call(call, CallOp::Dtmf { digit, duration_ms }).await
    }

    /// RFC 3261 §10.2: bind our Contact to `aor` at `registrar` (the
    /// Request-URI) through `trunk` for `expires` seconds, answering
    /// challenges with the trunk's credentials, and keep the binding
    /// refreshed. Outcome: `Registered` (again after every refresh) or
    /// `RegistrationFailed` (retried with back-off).
    pub async fn register(
        &self,
        trunk: Trunk,
        registrar: Uri,
        aor: Uri,
        expires: u32,
    ) -> Result<RegistrationHandle, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Register {
            trunk,
            registrar,
            aor,
            expires,
            reply,
        })
        .await?;
        Ok(rx.await.map_err(|_| Error::Closed)??)
    }

    /// Remove the binding (REGISTER with Expires: 0). Outcome: `Unregistered`.
    pub async fn unregister(&self, registration: RegistrationHandle) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Unregister {
            registration,
            reply,
        })
        .await?;
        Ok(rx.await.map_err(|_| Error::Closed)??)
    }

    /// OPTIONS to `target` now and every `interval` (a trunk keep-alive),
    /// sent to `trunk`'s destinations (where the application resolved
    /// `target`'s host to), else where `target` routes. Outcome: `PeerUp` /
    /// `PeerDown` events whenever the peer's state changes.
    pub async fn keepalive(
        &self,
        trunk: Trunk,
        target: Uri,
        interval: Duration,
    ) -> Result<KeepaliveHandle, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Keepalive {
            trunk,
            target,
            interval,
            reply,
        })
        .await?;
        Ok(rx.await.map_err(|_| Error::Closed)??)
    }

    /// Stops a keep-alive.
    pub async fn stop_keepalive(&self, keepalive: KeepaliveHandle) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::StopKeepalive { keepalive, reply })
            .await?;
        Ok(rx.await.map_err(|_| Error::Closed)??)
    }

    /// From the next OPTIONS on, a keep-alive goes to `trunk`'s
    /// destinations (the trunk's name resolved anew); the one in use stays
    /// in use when it is still listed.
    pub async fn retarget_keepalive(
        &self,
        keepalive: KeepaliveHandle,
        trunk: Trunk,
    ) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::RetargetKeepalive {
            keepalive,
            trunk,
            reply,
        })
        .await?;
        Ok(rx.await.map_err(|_| Error::Closed)??)
    }

    /// From the next REGISTER on, a registration goes to `trunk`'s
    /// destinations, as [`SipHandle::retarget_keepalive`].
    pub async fn retarget_registration(
        &self,
        registration: RegistrationHandle,
        trunk: Trunk,
    ) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::RetargetRegistration {
            registration,
            trunk,
            reply,
        })
        .await?;
        Ok(rx.await.map_err(|_| Error::Closed)??)
    }

    /// TLS connections to `address` (a trunk's resolved address) send
    /// `peer.server_name` as SNI and accept only a certificate for that
    /// name from `peer.roots`. Call before the first request to it; the
    /// roots are read here, so a missing CA file is this call's error.
    pub async fn tls_peer(&self, address: SocketAddr, peer: TlsPeer) -> Result<(), Error> {
        let tls = tokio::task::spawn_blocking(move || OutboundTls::load(&peer))
            .await
            .map_err(|_| Error::Closed)??;
        let (reply, rx) = oneshot::channel();
        self.send(Command::TlsPeer {
            address,
            tls,
            reply,
        })
        .await?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// The endpoint's counters and the number of calls alive (admission control).
    pub async fn stats(&self) -> Result<(Stats, usize), Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Stats { reply }).await?;
        rx.await.map_err(|_| Error::Closed)
    }

    async fn call(&self, call: CallHandle, op: CallOp) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Call { call, op, reply }).await?;
        Ok(rx.await.map_err(|_| Error::Closed)??)
    }

    async fn send(&self, command: Command) -> Result<(), Error> {
        self.commands.send(command).await.map_err(|_| Error::Closed)
    }
}
