//! Commands from the application. Each takes `now` (time is an input) and
//! queues what to send; drain `poll_transmit` afterwards.

use std::time::Instant;

use sip_message::{Header, Message, Method, NameAddr, Request, Response, Uri};

use sip_message::Refresher;

use crate::call::{
    Accepting, CallState, Cancel, Incoming, Outgoing, Purpose, Retransmit2xx, Session,
};
use crate::endpoint::{Challengeable, Endpoint, ALLOW};
use crate::error::Error;
use crate::event::Rejection;
use crate::session_timer::{self, Agreed, SessionTimer};
use crate::transaction::ServerKey;
use crate::trunk::Trunk;
use crate::CallHandle;

impl Endpoint {
    /// UAC: sends an INVITE to `target` from `from` (whose tag we set) with
    /// the SDP `offer`, where `target` routes; challenges are not answered.
    /// Outcome: `Provisional`*, then `Answered` or `Failed`.
    pub fn invite(
        &mut self,
        now: Instant,
        target: Uri,
        from: NameAddr,
        offer: Vec<u8>,
    ) -> Result<CallHandle, Error> {
        self.invite_via(now, &Trunk::default(), target, from, offer)
    }

    /// UAC: [`Endpoint::invite`] through `trunk`: the INVITE goes to the
    /// trunk's destinations, and a 401/407 from it (or, later, from the
    /// same host on an in-dialog request) is answered with its credentials.
    pub fn invite_via(
        &mut self,
        now: Instant,
        trunk: &Trunk,
        target: Uri,
        from: NameAddr,
        offer: Vec<u8>,
    ) -> Result<CallHandle, Error> {
        let now = self.input_time(now);
        let mut target = target;
        // RFC 3261 §19.1.5: a Refer-To of an attended transfer carries
        // `?Replaces=`; it becomes a header, and the URI is used without it.
        let replaces = crate::replaces::take_uri_headers(&mut target);
        let mut peers = self.trunk_peers(trunk, &target)?;
        let peer = peers.remove(0);
        let (via, key) = self.new_via(peer.transport, &Method::Invite);
        let tag = self.rng.tag();
        let call_id = self.rng.call_id();
        let mut from = from;
        from.params
            .0
            .retain(|p| !p.name.eq_ignore_ascii_case("tag"));
        let mut invite = Request::new(Method::Invite, target.clone());
        let h = &mut invite.headers;
        h.push(via);
        h.push(Header::new("Max-Forwards", "70"));
        h.push(Header::new("From", format!("{from};tag={tag}")));
        h.push(Header::new("To", format!("<{target}>")));
        h.push(Header::new("Call-ID", call_id.to_string()));
        h.push(Header::new("CSeq", "1 INVITE"));
        h.push(self.contact_for(peer.transport, &target));
        h.push(Header::new("Allow", ALLOW));
        if let Some(replaces) = replaces {
            // RFC 3891 option tag: a UAS without Replaces refuses (420)
            // rather than answering as a second, unrelated call.
            h.push(Header::new("Require", "replaces"));
            h.push(replaces);
        }
        if let Some(st) = &self.config.session_timer {
            // RFC 4028 §7.1: ask; the UAS picks the refresher.
            session_timer::add_request_headers(h, st.interval, st.min_se, None);
        }
        if let Some(ua) = &self.config.user_agent {
            h.push(Header::new("User-Agent", ua.clone()));
        }
        if !offer.is_empty() {
            h.push(Header::new("Content-Type", "application/sdp"));
        }
        invite.body = offer;
        let call = self.new_call_handle();
        self.calls.insert(
            call,
            CallState::Outgoing(Outgoing {
                invite: invite.clone(),
                key: key.clone(),
                peer,
                credentials: trunk.credentials.clone(),
                alternatives: peers,
                auth_attempted: false,
                provisional_seen: false,
                cancel: Cancel::NotRequested,
                interval_retried: false,
            }),
        );
        self.start_client(now, key, invite, peer, Some((call, Purpose::Invite)));
        Ok(call)
    }

    /// UAS: 180 Ringing.
    pub fn ringing(&mut self, now: Instant, call: CallHandle) -> Result<(), Error> {
        let now = self.input_time(now);
        let (invite, key, tag) = match self.calls.get(&call) {
            Some(CallState::Incoming(i)) => {
                (i.invite.clone(), i.key.clone(), i.dialog.local_tag.clone())
            }
            Some(other) => return Err(invalid(call, "ring", other)),
            None => return Err(Error::UnknownCall(call)),
        };
        let mut response = self.response(&invite, 180, "Ringing", Some(&tag));
        response.headers.push(self.contact(key_transport(&invite)));
        self.respond(now, &key, response);
        Ok(())
    }

    /// UAS: 200 OK with the SDP answer; retransmitted until the ACK (§13.3.1.4).
    pub fn answer(&mut self, now: Instant, call: CallHandle, sdp: Vec<u8>) -> Result<(), Error> {
        let now = self.input_time(now);
        let incoming = match self.calls.remove(&call) {
            Some(CallState::Incoming(i)) => i,
            Some(other) => {
                let error = invalid(call, "answer", &other);
                self.calls.insert(call, other);
                return Err(error);
            }
            None => return Err(Error::UnknownCall(call)),
        };
        let tag = incoming.dialog.local_tag.clone();
        let mut response = self.response(&incoming.invite, 200, "OK", Some(&tag));
        if let Some(agreed) = incoming.agreed {
            session_timer::add_response_headers(&mut response.headers, agreed);
        }
        let session = Session {
            local_sdp: sdp.clone(),
            remote_sdp: incoming.invite.body.clone(),
            peer_allows_update: incoming.invite.headers.lists("Allow", "UPDATE"),
            // §10: the timer starts when the 2xx is sent; we are the UAS.
            timer: incoming
                .agreed
                .map(|a| SessionTimer::start(now, a.interval, a.refresher == Refresher::Uas)),
            pending_offer: None,
        };
        self.add_answer_headers(&mut response, &incoming.invite, sdp);
        let bytes = Message::Response(response.clone()).to_bytes();
        self.respond(now, &incoming.key, response);
        let cseq = incoming.invite.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let t1 = self.config.timers.t1;
        let dialog = incoming.dialog;
        self.dialogs.insert(dialog.id(), call);
        self.incoming_invites.remove(&incoming.key);
        self.calls.insert(
            call,
            CallState::Accepting(Accepting {
                dialog,
                ok: Retransmit2xx {
                    bytes,
                    cseq,
                    interval: t1,
                    next: now + t1,
                    give_up: now + self.config.timers.timeout(),
                },
                session,
            }),
        );
        Ok(())
    }

    /// UAS: refuses the call (486, 503 + Retry-After, 603, 404, 480).
    pub fn reject(
        &mut self,
        now: Instant,
        call: CallHandle,
        rejection: Rejection,
    ) -> Result<(), Error> {
        let now = self.input_time(now);
        let (response, key) = self.final_response(call, "reject", rejection)?;
        self.respond(now, &key, response);
        self.remove_call(call);
        Ok(())
    }

    /// Refuses an incoming call from a source we do not talk to (outside the allow-list): the
    /// final response is sent once, never retransmitted, and nothing of the call is kept. A
    /// forged source address then gets one datagram, not eleven. `None` sends nothing (a
    /// source refused too often already).
    pub fn refuse(
        &mut self,
        now: Instant,
        call: CallHandle,
        rejection: Option<Rejection>,
    ) -> Result<(), Error> {
        let now = self.input_time(now);
        let (response, key) = match rejection {
            Some(r) => {
                let (response, key) = self.final_response(call, "refuse", r)?;
                (Some(response), key)
            }
            None => (None, self.incoming(call, "refuse")?.key.clone()),
        };
        self.respond_once(now, &key, response);
        self.remove_call(call);
        Ok(())
    }

    /// The final response that refuses the incoming `call` with `rejection`, and the key of
    /// its INVITE's server transaction.
    fn final_response(
        &mut self,
        call: CallHandle,
        op: &'static str,
        rejection: Rejection,
    ) -> Result<(Response, ServerKey), Error> {
        let incoming = self.incoming(call, op)?;
        let (invite, key, tag) = (
            incoming.invite.clone(),
            incoming.key.clone(),
            incoming.dialog.local_tag.clone(),
        );
        let (status, reason) = rejection.status();
        let mut response = self.response(&invite, status, reason, Some(&tag));
        if let Rejection::Unavailable {
            retry_after: Some(seconds),
        } = rejection
        {
            response
                .headers
                .push(Header::new("Retry-After", seconds.to_string()));
        }
        Ok((response, key))
    }

    /// The incoming (unanswered) call `call`, or why `op` cannot apply to it.
    fn incoming(&self, call: CallHandle, op: &'static str) -> Result<&Incoming, Error> {
        match self.calls.get(&call) {
            Some(CallState::Incoming(i)) => Ok(i),
            Some(other) => Err(invalid(call, op, other)),
            None => Err(Error::UnknownCall(call)),
        }
    }

    /// Ends the call: BYE when a dialog exists, CANCEL for our unanswered
    /// INVITE (sent once a provisional arrived, §9.1), 480 for an
    /// unanswered inbound call. `CallEnded` follows (at once for BYE).
    pub fn hangup(&mut self, now: Instant, call: CallHandle) -> Result<(), Error> {
        let now = self.input_time(now);
        match self.calls.get_mut(&call) {
            None => Err(Error::UnknownCall(call)),
            Some(CallState::Incoming(_)) => {
                self.reject(now, call, Rejection::TemporarilyUnavailable)
            }
            Some(CallState::Outgoing(o)) => {
                match (o.cancel, o.provisional_seen) {
                    (Cancel::NotRequested, true) => self.send_cancel(now, call),
                    (Cancel::NotRequested, false) => o.cancel = Cancel::Pending,
                    _ => {}
                }
                Ok(())
            }
            Some(CallState::Accepting(_) | CallState::Established(_)) => {
                self.send_bye(now, call);
                self.events.push_back(crate::event::Event::CallEnded {
                    call,
                    by_peer: false,
                    reason: crate::event::EndReason::Bye,
                });
                self.remove_call(call);
                Ok(())
            }
        }
    }

    /// Sends a re-INVITE with a new offer (hold: `a=sendonly`; unhold:
    /// `a=sendrecv`). Outcome: `ReofferAnswered` or `ReofferFailed`.
    pub fn reoffer(&mut self, now: Instant, call: CallHandle, sdp: Vec<u8>) -> Result<(), Error> {
        let now = self.input_time(now);
        let busy = match self.calls.get(&call) {
            None => return Err(Error::UnknownCall(call)),
            Some(CallState::Established(e)) => e.reoffer_out.is_some() || e.reoffer_in.is_some(),
            Some(other) => return Err(invalid(call, "re-INVITE", other)),
        };
        if busy {
            return Err(Error::InvalidState {
                call,
                command: "re-INVITE",
                state: "an offer is outstanding",
            });
        }
        let contact = self.contact(self.dialog_transport(call));
        let timer_headers = self.refresh_headers(call);
        let (key, request, peer) = self.in_dialog_request(call, Method::Invite, |h| {
            h.push(contact);
            h.push(Header::new("Content-Type", "application/sdp"));
            if let Some((interval, min_se, refresher)) = timer_headers {
                // RFC 4028 §10: every re-INVITE refreshes the session.
                session_timer::add_request_headers(h, interval, min_se, Some(refresher));
            }
        })?;
        let mut request = request;
        request.body = sdp.clone();
        if let Some(CallState::Established(e)) = self.calls.get_mut(&call) {
            e.reoffer_out = Some(key.clone());
            e.session.pending_offer = Some(sdp);
        }
        self.start_client(now, key, request, peer, Some((call, Purpose::Reinvite)));
        Ok(())
    }

    /// Answers the peer's re-INVITE or UPDATE (`Reoffer`) with our SDP.
    pub fn answer_reoffer(
        &mut self,
        now: Instant,
        call: CallHandle,
        sdp: Vec<u8>,
    ) -> Result<(), Error> {
        let now = self.input_time(now);
        let (pending, tag) = self.take_reoffer(call, "answer a re-offer")?;
        let mut response = self.response(&pending.request, 200, "OK", tag.as_deref());
        if let Some(agreed) = pending.agreed {
            session_timer::add_response_headers(&mut response.headers, agreed);
        }
        if let Some(CallState::Established(e)) = self.calls.get_mut(&call) {
            e.session.local_sdp = sdp.clone();
            if !pending.request.body.is_empty() {
                e.session.remote_sdp = pending.request.body.clone();
            }
            restart_timer(
                &mut e.session,
                now,
                pending.agreed.map(|a| (a, Refresher::Uas)),
            );
        }
        self.add_answer_headers(&mut response, &pending.request, sdp);
        let bytes = Message::Response(response.clone()).to_bytes();
        self.respond(now, &pending.key, response);
        if pending.request.method == Method::Invite {
            let t1 = self.config.timers.t1;
            let give_up = now + self.config.timers.timeout();
            let cseq = pending.request.headers.cseq().map(|c| c.seq).unwrap_or(0);
            if let Some(CallState::Established(e)) = self.calls.get_mut(&call) {
                e.reoffer_ok = Some(Retransmit2xx {
                    bytes,
                    cseq,
                    interval: t1,
                    next: now + t1,
                    give_up,
                });
            }
        }
        Ok(())
    }

    /// Refuses the peer's re-INVITE or UPDATE (`Reoffer`) with 488 Not Acceptable Here
    /// (§14.2: an offer we cannot accept leaves the session as it was).
    pub fn refuse_reoffer(&mut self, now: Instant, call: CallHandle) -> Result<(), Error> {
        let now = self.input_time(now);
        let (pending, tag) = self.take_reoffer(call, "refuse a re-offer")?;
        let mut response =
            self.response(&pending.request, 488, "Not Acceptable Here", tag.as_deref());
        // §20.43: why, for the peer's log.
        response.headers.push(Header::new(
            "Warning",
            "399 - \"the offer is not acceptable; the session stays as it was\"",
        ));
        self.respond(now, &pending.key, response);
        Ok(())
    }

    /// The peer's re-offer waiting on `call`, taken for `command`, with our dialog tag.
    fn take_reoffer(
        &mut self,
        call: CallHandle,
        command: &'static str,
    ) -> Result<(crate::call::ReofferIn, Option<String>), Error> {
        let pending = match self.calls.get_mut(&call) {
            None => return Err(Error::UnknownCall(call)),
            Some(CallState::Established(e)) => e.reoffer_in.take(),
            Some(other) => return Err(invalid(call, command, other)),
        };
        let Some(pending) = pending else {
            return Err(Error::InvalidState {
                call,
                command,
                state: "no re-offer is pending",
            });
        };
        let tag = self
            .calls
            .get(&call)
            .and_then(|s| s.dialog())
            .map(|d| d.local_tag.clone());
        Ok((pending, tag))
    }

    /// RFC 3515 blind transfer: REFER the peer to `target`. Outcome:
    /// `TransferAccepted`, `TransferProgress`*, then `TransferSucceeded` or
    /// `TransferFailed`.
    pub fn refer(&mut self, now: Instant, call: CallHandle, target: Uri) -> Result<(), Error> {
        let now = self.input_time(now);
        match self.calls.get(&call) {
            None => return Err(Error::UnknownCall(call)),
            Some(CallState::Established(_)) => {}
            Some(other) => return Err(invalid(call, "REFER", other)),
        }
        let contact = self.contact(self.dialog_transport(call));
        let local = self
            .calls
            .get(&call)
            .and_then(|s| s.dialog())
            .map(|d| d.local.to_string());
        let (key, request, peer) = self.in_dialog_request(call, Method::Refer, |h| {
            h.push(Header::new("Refer-To", format!("<{target}>")));
            if let Some(local) = local {
                h.push(Header::new("Referred-By", local));
            }
            h.push(contact);
        })?;
        self.keep_challengeable(call, &key, &request, peer, Some((call, Purpose::Refer)));
        self.start_client(now, key, request, peer, Some((call, Purpose::Refer)));
        Ok(())
    }

    /// Transferee side of RFC 3515: reports the transfer's progress to the
    /// referrer in a NOTIFY (`status` of the call to the target; a final
    /// status ends the subscription).
    pub fn transfer_progress(
        &mut self,
        now: Instant,
        call: CallHandle,
        status: u16,
    ) -> Result<(), Error> {
        let now = self.input_time(now);
        match self.calls.get(&call) {
            Some(CallState::Established(e)) if e.transferee.is_some() => {}
            Some(other) => return Err(invalid(call, "NOTIFY a transfer", other)),
            None => return Err(Error::UnknownCall(call)),
        }
        let state = if status >= 200 {
            "terminated;reason=noresource".to_owned()
        } else {
            format!("active;expires={}", 60)
        };
        let reason = reason_phrase(status);
        let (key, mut request, peer) = self.in_dialog_request(call, Method::Notify, |h| {
            h.push(Header::new("Event", "refer"));
            h.push(Header::new("Subscription-State", state));
            h.push(Header::new("Content-Type", "message/sipfrag;version=2.0"));
        })?;
        request.body = format!("SIP/2.0 {status} {reason}\r\n").into_bytes();
        if status >= 200 {
            if let Some(CallState::Established(e)) = self.calls.get_mut(&call) {
                e.transferee = None;
            }
        }
        self.start_client(now, key, request, peer, Some((call, Purpose::Notify)));
        Ok(())
    }

    /// Sends a DTMF digit as SIP INFO (application/dtmf-relay).
    pub fn send_dtmf(
        &mut self,
        now: Instant,
        call: CallHandle,
        digit: char,
        duration_ms: u32,
    ) -> Result<(), Error> {
        let now = self.input_time(now);
        match self.calls.get(&call) {
            None => return Err(Error::UnknownCall(call)),
            Some(CallState::Established(_)) => {}
            Some(other) => return Err(invalid(call, "send INFO", other)),
        }
        let (key, mut request, peer) = self.in_dialog_request(call, Method::Info, |h| {
            h.push(Header::new("Content-Type", "application/dtmf-relay"));
        })?;
        request.body = format!("Signal={digit}\r\nDuration={duration_ms}\r\n").into_bytes();
        self.start_client(now, key, request, peer, Some((call, Purpose::Info)));
        Ok(())
    }
}

// Helpers shared by commands and the UA core.
impl Endpoint {
    /// Commands are inputs too: the clock never runs backwards.
    pub(crate) fn input_time(&mut self, now: Instant) -> Instant {
        match self.now {
            Some(prev) if prev > now => prev,
            _ => {
                self.now = Some(now);
                now
            }
        }
    }

    pub(crate) fn dialog_transport(&self, call: CallHandle) -> crate::TransportKind {
        self.calls
            .get(&call)
            .and_then(|s| s.dialog())
            .map_or(self.config.default_transport, |d| d.peer.transport)
    }

    /// A new request in `call`'s dialog with a fresh branch and CSeq;
    /// `extra` adds method-specific headers.
    pub(crate) fn in_dialog_request(
        &mut self,
        call: CallHandle,
        method: Method,
        extra: impl FnOnce(&mut sip_message::Headers),
    ) -> Result<
        (
            crate::transaction::ClientKey,
            Request,
            crate::transaction::Peer,
        ),
        Error,
    > {
        let transport = self.dialog_transport(call);
        let (via, key) = self.new_via(transport, &method);
        let user_agent = self.config.user_agent.clone();
        let dialog = match self.calls.get_mut(&call) {
            Some(CallState::Established(e)) => &mut e.dialog,
            Some(CallState::Accepting(a)) => &mut a.dialog,
            Some(other) => return Err(invalid(call, "send an in-dialog request", other)),
            None => return Err(Error::UnknownCall(call)),
        };
        let mut request = dialog.request(method, via);
        extra(&mut request.headers);
        if let Some(ua) = user_agent {
            request.headers.push(Header::new("User-Agent", ua));
        }
        Ok((key, request, dialog.peer))
    }

    /// Keeps an in-dialog request of `call` that may be challenged (§22.2)
    /// until its final response, with the call's credentials when it goes
    /// to the host they were given for; without those it is not kept.
    pub(crate) fn keep_challengeable(
        &mut self,
        call: CallHandle,
        key: &crate::transaction::ClientKey,
        request: &Request,
        peer: crate::transaction::Peer,
        owner: Option<(CallHandle, Purpose)>,
    ) {
        let credentials = match self.calls.get(&call) {
            Some(CallState::Established(e)) => e.credentials.as_ref(),
            _ => None,
        };
        if let Some(credentials) = credentials.and_then(|c| c.for_peer(peer)) {
            let kept = Challengeable {
                request: request.clone(),
                peer,
                owner,
                credentials: credentials.clone(),
            };
            self.challengeable.insert(key.clone(), kept);
        }
    }

    pub(crate) fn send_bye(&mut self, now: Instant, call: CallHandle) {
        if let Ok((key, request, peer)) = self.in_dialog_request(call, Method::Bye, |_| {}) {
            // Kept past the call's end: the BYE may be challenged (§22.2).
            self.keep_challengeable(call, &key, &request, peer, None);
            self.start_client(now, key, request, peer, Some((call, Purpose::Bye)));
        }
    }

    /// §9.1: CANCEL copies the INVITE's Request-URI, Call-ID, To, From,
    /// CSeq number, Route and top Via (same branch).
    pub(crate) fn send_cancel(&mut self, now: Instant, call: CallHandle) {
        let Some(CallState::Outgoing(o)) = self.calls.get_mut(&call) else {
            return;
        };
        o.cancel = Cancel::Sent;
        let invite = &o.invite;
        let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
        for name in ["Via", "Max-Forwards", "From", "To", "Call-ID"] {
            if let Some(h) = invite.headers.get(name) {
                cancel.headers.push(h.clone());
            }
        }
        let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
        cancel
            .headers
            .push(Header::new("CSeq", format!("{seq} CANCEL")));
        for route in invite.headers.get_all("Route") {
            cancel.headers.push(route.clone());
        }
        let key = crate::transaction::ClientKey {
            branch: o.key.branch.clone(),
            method: Method::Cancel,
        };
        let peer = o.peer;
        self.start_client(now, key, cancel, peer, Some((call, Purpose::Cancel)));
    }

    /// Contact, Allow and the SDP body of a 2xx to an offer.
    fn add_answer_headers(&self, response: &mut Response, request: &Request, sdp: Vec<u8>) {
        response.headers.push(self.contact(key_transport(request)));
        response.headers.push(Header::new("Allow", ALLOW));
        if !sdp.is_empty() {
            response
                .headers
                .push(Header::new("Content-Type", "application/sdp"));
        }
        response.body = sdp;
    }
}

// RFC 4028 helpers shared with the UA core.
impl Endpoint {
    /// (interval, Min-SE, refresher as UAC of a new request) for a request
    /// that refreshes `call`'s session; `None` when no timer runs.
    pub(crate) fn refresh_headers(&self, call: CallHandle) -> Option<(u32, u32, Refresher)> {
        let config = self.config.session_timer?;
        let Some(CallState::Established(e)) = self.calls.get(&call) else {
            return None;
        };
        let timer = e.session.timer?;
        let refresher = if timer.we_refresh {
            Refresher::Uac
        } else {
            Refresher::Uas
        };
        Some((timer.interval, config.min_se, refresher))
    }
}

/// RFC 4028 §10: a 2xx to a refresh restarts the timer. `agreed` names the
/// refresher relative to the transaction, with our role in it (`Uac` when
/// we sent the request); without one the old roles and interval stay.
pub(crate) fn restart_timer(
    session: &mut Session,
    now: Instant,
    agreed: Option<(Agreed, Refresher)>,
) {
    let next = match (agreed, session.timer) {
        (Some((a, our_role)), _) => Some((a.interval, a.refresher == our_role)),
        (None, Some(t)) => Some((t.interval, t.we_refresh)),
        (None, None) => None,
    };
    session.timer = next.map(|(interval, we)| SessionTimer::start(now, interval, we));
}

fn invalid(call: CallHandle, command: &'static str, state: &CallState) -> Error {
    Error::InvalidState {
        call,
        command,
        state: state.name(),
    }
}

/// The transport named in the request's top Via.
fn key_transport(request: &Request) -> crate::TransportKind {
    match request.headers.top_via().map(|v| v.transport) {
        Ok(sip_message::Transport::Tcp) => crate::TransportKind::Tcp,
        Ok(sip_message::Transport::Tls) => crate::TransportKind::Tls,
        _ => crate::TransportKind::Udp,
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        487 => "Request Terminated",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Status",
    }
}
