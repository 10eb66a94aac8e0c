//! The UA core for responses to our requests and for call-level timers
//! (RFC 3261 §8.1.3, §13.2.2, §13.3.1.4, §22.2; RFC 3515 §2.4.2).

use std::time::Instant;

use sip_message::{Header, Message, Method, Request, Response};

use sip_message::Refresher;

use crate::call::{CallState, Cancel, Established, Outgoing, Purpose, Session};
use crate::commands::restart_timer;
use crate::dialog::{Dialog, DialogId};
use crate::digest::{Challenge, Credentials};
use crate::endpoint::Challengeable;
use crate::endpoint::Endpoint;
use crate::event::{EndReason, Event};
use crate::session_timer::{agreed_by_response, SessionTimer};
use crate::transaction::{ClientKey, TuEvent};
use crate::trunk::HostCredentials;
use crate::CallHandle;

impl Endpoint {
    pub(crate) fn on_tu_event(&mut self, now: Instant, event: TuEvent) {
        match event {
            TuEvent::Response { key, response } => {
                if let Some(&handle) = self.keepalive_owners.get(&key) {
                    if response.status >= 200 {
                        self.keepalive_owners.remove(&key);
                        self.on_keepalive_outcome(now, handle, true, response.status);
                    }
                    return;
                }
                if let Some(&handle) = self.registration_owners.get(&key) {
                    if response.status >= 200 {
                        self.registration_owners.remove(&key);
                    }
                    self.on_register_response(now, handle, response);
                    return;
                }
                if response.status >= 200 {
                    if let Some(kept) = self.challengeable.remove(&key) {
                        if matches!(response.status, 401 | 407)
                            && self.retry_in_dialog(now, kept, &response)
                        {
                            self.client_owners.remove(&key);
                            return;
                        }
                    }
                }
                let Some(&(call, purpose)) = self.client_owners.get(&key) else {
                    return;
                };
                if response.status >= 200 {
                    self.client_owners.remove(&key);
                }
                self.on_owned_response(now, call, purpose, response);
            }
            TuEvent::Timeout { key } => {
                self.challengeable.remove(&key);
                if let Some(handle) = self.keepalive_owners.remove(&key) {
                    return self.on_keepalive_outcome(now, handle, false, 408);
                }
                if let Some(handle) = self.registration_owners.remove(&key) {
                    return self.on_register_failure(now, handle, 408);
                }
                self.on_client_failure(now, &key, 408, "Request Timeout", false)
            }
            TuEvent::TransportError { key } => {
                self.challengeable.remove(&key);
                if let Some(handle) = self.keepalive_owners.remove(&key) {
                    return self.on_keepalive_outcome(now, handle, false, 503);
                }
                if let Some(handle) = self.registration_owners.remove(&key) {
                    return self.on_register_failure(now, handle, 503);
                }
                // §8.1.3.1: a transport error is treated as 503.
                self.on_client_failure(
                    now,
                    &key,
                    503,
                    "Service Unavailable (transport error)",
                    true,
                )
            }
            // §17.2.1: no ACK for our 3xx–6xx; nothing more to do for the UA.
            TuEvent::NoAck => {}
        }
    }

    fn on_client_failure(
        &mut self,
        now: Instant,
        key: &ClientKey,
        status: u16,
        reason: &str,
        transport: bool,
    ) {
        let Some((call, purpose)) = self.client_owners.remove(key) else {
            return;
        };
        match purpose {
            Purpose::Invite if self.invite_elsewhere(now, call) => {}
            Purpose::Invite => {
                let cancelled = matches!(self.calls.get(&call), Some(CallState::Outgoing(o)) if o.cancel != Cancel::NotRequested);
                self.events
                    .push_back(unanswered_invite_ended(call, cancelled, status, reason));
                self.remove_call(call);
            }
            Purpose::Reinvite => {
                if let Some(CallState::Established(e)) = self.calls.get_mut(&call) {
                    e.reoffer_out = None;
                }
                self.events.push_back(Event::ReofferFailed { call, status });
                // §12.2.1.2: 408 or a transport failure ends the dialog.
                self.end_by_failure(now, call, transport);
            }
            Purpose::Refer => self
                .events
                .push_back(Event::TransferFailed { call, status }),
            Purpose::SessionRefresh => {
                if let Some(CallState::Established(e)) = self.calls.get_mut(&call) {
                    e.reoffer_out = None;
                }
                // §12.2.1.2: 408 or a transport failure ends the dialog.
                self.end_by_failure(now, call, transport);
            }
            Purpose::Bye | Purpose::Cancel | Purpose::Notify | Purpose::Info => {}
        }
    }

    /// §12.2.1.2: an in-dialog request that timed out ends the call.
    fn end_by_failure(&mut self, now: Instant, call: CallHandle, transport: bool) {
        if !self.calls.contains_key(&call) {
            return;
        }
        if !transport {
            self.send_bye(now, call);
        }
        self.events.push_back(Event::CallEnded {
            call,
            by_peer: false,
            reason: if transport {
                EndReason::TransportError
            } else {
                EndReason::Bye
            },
        });
        self.remove_call(call);
    }

    fn on_owned_response(
        &mut self,
        now: Instant,
        call: CallHandle,
        purpose: Purpose,
        response: Response,
    ) {
        match purpose {
            Purpose::Invite => self.on_invite_response(now, call, response),
            Purpose::Reinvite => self.on_reinvite_response(now, call, response),
            Purpose::Refer => match response.status {
                100..=199 => {}
                200..=299 => self.events.push_back(Event::TransferAccepted { call }),
                status => self
                    .events
                    .push_back(Event::TransferFailed { call, status }),
            },
            Purpose::SessionRefresh => self.on_refresh_response(now, call, response),
            Purpose::Bye | Purpose::Cancel | Purpose::Notify | Purpose::Info => {
                if matches!(response.status, 408 | 481) && purpose == Purpose::Info {
                    // §12.2.1.2: the dialog is gone at the peer.
                    self.end_by_failure(now, call, false);
                }
            }
        }
    }

    fn on_invite_response(&mut self, now: Instant, call: CallHandle, response: Response) {
        let Some(CallState::Outgoing(outgoing)) = self.calls.get_mut(&call) else {
            return;
        };
        let status = response.status;
        if status < 200 {
            // §9.1: any provisional, 100 included, allows a CANCEL.
            outgoing.provisional_seen = true;
            if outgoing.cancel == Cancel::Pending {
                self.send_cancel(now, call);
            }
            if status > 100 {
                let sdp = (!response.body.is_empty()).then(|| response.body.clone());
                self.events
                    .push_back(Event::Provisional { call, status, sdp });
            }
            return;
        }
        if status < 300 {
            self.on_invite_2xx(now, call, response);
            return;
        }
        let cancelled = outgoing.cancel != Cancel::NotRequested;
        let auth_attempted = outgoing.auth_attempted;
        // RFC 4028 §7.4: retry once with the UAS's Min-SE.
        if status == 422 && !outgoing.interval_retried && !cancelled {
            if let Some(min_se) = response.headers.min_se().ok().flatten() {
                let mut invite = outgoing.invite.clone();
                let peer = outgoing.peer;
                let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
                invite
                    .headers
                    .set("CSeq", format!("{} INVITE", seq.wrapping_add(1)));
                let mine = invite.headers.session_expires().ok().flatten();
                let interval = mine.map_or(min_se, |se| se.delta.max(min_se));
                invite.headers.set("Session-Expires", interval.to_string());
                invite.headers.set("Min-SE", min_se.to_string());
                let (via, new_key) = self.new_via(peer.transport, &Method::Invite);
                set_via(&mut invite, via);
                if let Some(CallState::Outgoing(o)) = self.calls.get_mut(&call) {
                    o.invite = invite.clone();
                    o.key = new_key.clone();
                    o.interval_retried = true;
                }
                self.start_client(now, new_key, invite, peer, Some((call, Purpose::Invite)));
                return;
            }
        }
        // RFC 3263 §4.3: a 503 sends the INVITE to the trunk's next destination.
        if status == 503 && self.invite_elsewhere(now, call) {
            return;
        }
        // §22.2: answer one challenge per request with credentials.
        if matches!(status, 401 | 407) && !auth_attempted && !cancelled {
            if let Some(retry) = self.authenticated_retry(call, &response) {
                let (invite, peer) = retry;
                let (via, new_key) = self.new_via(peer.transport, &Method::Invite);
                let mut invite = invite;
                set_via(&mut invite, via);
                if let Some(CallState::Outgoing(o)) = self.calls.get_mut(&call) {
                    o.invite = invite.clone();
                    o.key = new_key.clone();
                    o.auth_attempted = true;
                }
                self.start_client(now, new_key, invite, peer, Some((call, Purpose::Invite)));
                return;
            }
        }
        self.events.push_back(unanswered_invite_ended(
            call,
            cancelled,
            status,
            &response.reason,
        ));
        self.remove_call(call);
    }

    /// RFC 3263 §4.3: resends our unanswered INVITE to the trunk's next
    /// destination in a new transaction (CSeq+1, a fresh challenge round);
    /// false when none is left or the call is being cancelled.
    fn invite_elsewhere(&mut self, now: Instant, call: CallHandle) -> bool {
        let Some(CallState::Outgoing(o)) = self.calls.get_mut(&call) else {
            return false;
        };
        if o.cancel != Cancel::NotRequested || o.alternatives.is_empty() {
            return false;
        }
        let peer = o.alternatives.remove(0);
        let mut invite = o.invite.clone();
        let seq = invite.headers.cseq().map_or(1, |c| c.seq.wrapping_add(1));
        invite.headers.set("CSeq", format!("{seq} INVITE"));
        // Another server's nonce means nothing to this one.
        invite.headers.remove_all("Authorization");
        invite.headers.remove_all("Proxy-Authorization");
        let contact = self.contact_for(peer.transport, &invite.uri);
        invite.headers.set("Contact", contact.value);
        let (via, key) = self.new_via(peer.transport, &Method::Invite);
        set_via(&mut invite, via);
        if let Some(CallState::Outgoing(o)) = self.calls.get_mut(&call) {
            o.invite = invite.clone();
            o.key = key.clone();
            o.peer = peer;
            o.auth_attempted = false;
            o.provisional_seen = false;
        }
        self.start_client(now, key, invite, peer, Some((call, Purpose::Invite)));
        true
    }

    /// The INVITE with CSeq+1 and an Authorization (401) or
    /// Proxy-Authorization (407) header (§22.2, RFC 7616 §3.4).
    fn authenticated_retry(
        &mut self,
        call: CallHandle,
        response: &Response,
    ) -> Option<(Request, crate::transaction::Peer)> {
        let Some(CallState::Outgoing(outgoing)) = self.calls.get(&call) else {
            return None;
        };
        let credentials = outgoing.credentials.clone()?;
        let mut invite = outgoing.invite.clone();
        let peer = outgoing.peer;
        let seq = invite.headers.cseq().ok()?.seq.wrapping_add(1);
        invite.headers.set("CSeq", format!("{seq} INVITE"));
        self.authorize(&mut invite, response, &credentials)?;
        Some((invite, peer))
    }

    /// §22.2: resends a challenged in-dialog request (BYE, REFER) once with
    /// credentials, a new branch and CSeq+1 (the dialog's CSeq follows).
    fn retry_in_dialog(&mut self, now: Instant, kept: Challengeable, response: &Response) -> bool {
        let Challengeable {
            mut request,
            peer,
            owner,
            credentials,
        } = kept;
        let Ok(cseq) = request.headers.cseq() else {
            return false;
        };
        let seq = cseq.seq.wrapping_add(1) & 0x7fff_ffff;
        request
            .headers
            .set("CSeq", format!("{seq} {}", request.method));
        if self
            .authorize(&mut request, response, &credentials)
            .is_none()
        {
            return false;
        }
        if let Some((call, _)) = owner {
            if let Some(CallState::Established(e)) = self.calls.get_mut(&call) {
                e.dialog.local_seq = e.dialog.local_seq.max(seq);
            }
        }
        let (via, key) = self.new_via(peer.transport, &request.method);
        set_via(&mut request, via);
        self.start_client(now, key, request, peer, owner);
        true
    }

    /// Adds an Authorization (401) or Proxy-Authorization (407) header to
    /// `request` answering `response`'s challenge (§22.2, RFC 7616 §3.4),
    /// preferring SHA-256 when offered (RFC 8760 §2.4). `None` without a
    /// usable challenge; else whether it was `stale`. The caller picks
    /// `credentials` by where the request went, never by the realm.
    pub(crate) fn authorize(
        &mut self,
        request: &mut Request,
        response: &Response,
        credentials: &Credentials,
    ) -> Option<bool> {
        let (challenge_name, answer_name) = if response.status == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let mut challenges: Vec<Challenge> = response
            .headers
            .get_all(challenge_name)
            .filter_map(|h| h.value_str())
            .filter_map(|v| Challenge::parse(v).ok())
            .collect();
        challenges.sort_by_key(|c| c.algorithm != crate::digest::Algorithm::Sha256);
        let challenge = challenges.into_iter().next()?;
        let cnonce = self.rng.hex(8);
        let uri = request.uri.to_string();
        let method = request.method.to_string();
        let value = challenge.authorization(credentials, &method, &uri, 1, &cnonce);
        request.headers.remove_all(answer_name);
        request.headers.push(Header::new(answer_name, value));
        Some(challenge.stale)
    }

    /// §13.2.2.4: the UA ACKs every 2xx itself.
    fn on_invite_2xx(&mut self, now: Instant, call: CallHandle, response: Response) {
        let Some(CallState::Outgoing(outgoing)) = self.calls.remove(&call) else {
            return;
        };
        let Outgoing {
            invite,
            peer,
            cancel,
            credentials,
            ..
        } = outgoing;
        let Some(mut dialog) = Dialog::as_uac(&invite, &response, peer) else {
            // A 2xx without a To tag cannot make a dialog; give up on the call.
            self.events.push_back(Event::Failed {
                call,
                status: 500,
                reason: "2xx without To tag".to_owned(),
            });
            self.remove_call(call);
            return;
        };
        dialog.peer = self.dialog_peer(&dialog.route_set, &dialog.remote_target, peer);
        let seq = dialog.local_seq;
        let ack = self.ack_2xx(&dialog, seq);
        self.send_direct(dialog.peer, ack.clone());
        self.dialogs.insert(dialog.id(), call);
        // RFC 4028 §7.2: the 2xx says whether a timer runs and who refreshes.
        let agreed = self
            .config
            .session_timer
            .and_then(|_| agreed_by_response(&response.headers));
        let session = Session {
            local_sdp: invite.body.clone(),
            remote_sdp: response.body.clone(),
            peer_allows_update: response.headers.lists("Allow", "UPDATE"),
            timer: agreed
                .map(|a| SessionTimer::start(now, a.interval, a.refresher == Refresher::Uac)),
            pending_offer: None,
        };
        let mut established = Established::new(dialog, session);
        established.ack = Some((seq, ack));
        established.credentials = credentials.map(|c| HostCredentials::new(c, peer));
        self.calls.insert(call, CallState::Established(established));
        if cancel != Cancel::NotRequested {
            // §15: a 2xx that crossed our CANCEL: ACK, then BYE.
            self.send_bye(now, call);
            self.events.push_back(Event::CallEnded {
                call,
                by_peer: false,
                reason: EndReason::Cancelled,
            });
            self.remove_call(call);
            return;
        }
        self.events.push_back(Event::Answered {
            call,
            sdp: response.body,
        });
    }

    fn on_reinvite_response(&mut self, now: Instant, call: CallHandle, response: Response) {
        let status = response.status;
        if status < 200 {
            return;
        }
        let Some(CallState::Established(e)) = self.calls.get_mut(&call) else {
            return;
        };
        e.reoffer_out = None;
        if status >= 300 {
            e.session.pending_offer = None;
            self.events.push_back(Event::ReofferFailed { call, status });
            if status == 481 || status == 408 {
                self.end_by_failure(now, call, false);
            }
            return;
        }
        if let Some(target) = crate::dialog::contact_uri(&response.headers) {
            e.dialog.remote_target = target; // §12.2.1.2 target refresh
        }
        if let Some(offer) = e.session.pending_offer.take() {
            e.session.local_sdp = offer;
        }
        e.session.remote_sdp = response.body.clone();
        let agreed = agreed_by_response(&response.headers);
        restart_timer(&mut e.session, now, agreed.map(|a| (a, Refresher::Uac)));
        let seq = response
            .headers
            .cseq()
            .map(|c| c.seq)
            .unwrap_or(e.dialog.local_seq);
        let dialog = e.dialog.clone();
        let ack = self.ack_2xx(&dialog, seq);
        self.send_direct(dialog.peer, ack.clone());
        if let Some(CallState::Established(e)) = self.calls.get_mut(&call) {
            e.ack = Some((seq, ack));
        }
        self.events.push_back(Event::ReofferAnswered {
            call,
            sdp: response.body,
        });
    }

    /// A response no transaction took: a retransmitted 2xx to an INVITE
    /// gets its ACK again (§13.2.2.4). True if it was used.
    pub(crate) fn on_stray_response(&mut self, response: &Response) -> bool {
        let h = &response.headers;
        let (Ok(cseq), Ok(call_id), Ok(from), Ok(to)) = (h.cseq(), h.call_id(), h.from(), h.to())
        else {
            return false;
        };
        if cseq.method != Method::Invite || !(200..300).contains(&response.status) {
            return false;
        }
        let id = DialogId {
            call_id: call_id.to_string(),
            local_tag: from.tag().map(|t| t.to_string()).unwrap_or_default(),
            remote_tag: to.tag().map(|t| t.to_string()).unwrap_or_default(),
        };
        let Some(call) = self.dialogs.get(&id).copied() else {
            return false;
        };
        let Some(CallState::Established(e)) = self.calls.get(&call) else {
            return false;
        };
        let Some((seq, ack)) = e.ack.clone() else {
            return false;
        };
        if seq != cseq.seq {
            return false;
        }
        let peer = e.dialog.peer;
        self.send_direct(peer, ack);
        self.outbox.retransmissions += 1;
        true
    }

    /// §13.3.1.4: 2xx retransmission and the 64*T1 give-up.
    pub(crate) fn call_timeouts(&mut self, now: Instant) {
        let due: Vec<CallHandle> = self
            .calls
            .iter()
            .filter(|(_, s)| s.next_timeout().is_some_and(|t| t <= now))
            .map(|(c, _)| *c)
            .collect();
        let timers = self.config.timers;
        for call in due {
            let mut give_up = false;
            let mut resend = None;
            let (mut expired, mut refresh) = (false, false);
            if let Some(CallState::Established(e)) = self.calls.get(&call) {
                if let Some(t) = e.session.timer {
                    expired = t.expire_at <= now;
                    refresh = t.refresh_at.is_some_and(|r| r <= now);
                }
            }
            match self.calls.get_mut(&call) {
                Some(CallState::Accepting(a)) => {
                    if now >= a.ok.give_up {
                        give_up = true;
                    } else {
                        resend = Some((a.dialog.peer, a.ok.bytes.clone()));
                        a.ok.interval = timers.backoff(a.ok.interval);
                        a.ok.next = (now + a.ok.interval).min(a.ok.give_up);
                    }
                }
                Some(CallState::Established(e)) => {
                    let peer = e.dialog.peer;
                    if let Some(ok) = &mut e.reoffer_ok {
                        if now >= ok.give_up {
                            // §14.2: no ACK for the re-INVITE's 2xx; the RFC
                            // lets the UAS end the dialog, we keep the call
                            // and stop retransmitting.
                            e.reoffer_ok = None;
                        } else {
                            resend = Some((peer, ok.bytes.clone()));
                            ok.interval = timers.backoff(ok.interval);
                            ok.next = (now + ok.interval).min(ok.give_up);
                        }
                    }
                }
                _ => {}
            }
            if let Some((peer, bytes)) = resend {
                if !peer.transport.is_reliable() {
                    self.send_direct(peer, bytes);
                    self.outbox.retransmissions += 1;
                }
            }
            if expired {
                // RFC 4028 §10: no refresh arrived in time.
                self.send_bye(now, call);
                self.events.push_back(Event::CallEnded {
                    call,
                    by_peer: false,
                    reason: EndReason::SessionExpired,
                });
                self.remove_call(call);
                continue;
            }
            if refresh {
                self.send_session_refresh(now, call);
            }
            if give_up {
                // §13.3.1.4: no ACK within 64*T1: confirm and send BYE.
                if let Some(CallState::Accepting(a)) = self.calls.remove(&call) {
                    self.calls.insert(
                        call,
                        CallState::Established(Established::new(a.dialog, a.session)),
                    );
                }
                self.send_bye(now, call);
                self.events.push_back(Event::CallEnded {
                    call,
                    by_peer: false,
                    reason: EndReason::NoAck,
                });
                self.remove_call(call);
            }
        }
    }

    /// RFC 4028 §10: we are the refresher and half the interval has
    /// passed: UPDATE without SDP when the peer allows it, else re-INVITE
    /// with our current SDP. While an offer is outstanding the refresh waits.
    fn send_session_refresh(&mut self, now: Instant, call: CallHandle) {
        let method = self.config.session_timer.map(|c| c.refresh_method);
        let Some(CallState::Established(e)) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(timer) = e.session.timer.as_mut() else {
            return;
        };
        if e.reoffer_out.is_some() || e.reoffer_in.is_some() || e.reoffer_ok.is_some() {
            // §14.2 glare avoidance: try again shortly, well before expiry.
            timer.refresh_at = Some(now + REFRESH_RETRY);
            return;
        }
        timer.refresh_at = None;
        let use_update = e.session.peer_allows_update
            && method == Some(crate::session_timer::RefreshMethod::UpdateWhenAllowed);
        let sdp = e.session.local_sdp.clone();
        let Some((interval, min_se, refresher)) = self.refresh_headers(call) else {
            return;
        };
        let contact = self.contact(self.dialog_transport(call));
        let method = if use_update {
            Method::Update
        } else {
            Method::Invite
        };
        let Ok((key, mut request, peer)) = self.in_dialog_request(call, method, |h| {
            h.push(contact);
            crate::session_timer::add_request_headers(h, interval, min_se, Some(refresher));
            if !use_update {
                h.push(Header::new("Content-Type", "application/sdp"));
            }
        }) else {
            return;
        };
        if !use_update {
            request.body = sdp;
            if let Some(CallState::Established(e)) = self.calls.get_mut(&call) {
                e.reoffer_out = Some(key.clone());
            }
        }
        self.start_client(
            now,
            key,
            request,
            peer,
            Some((call, Purpose::SessionRefresh)),
        );
    }

    /// The outcome of our session refresh.
    fn on_refresh_response(&mut self, now: Instant, call: CallHandle, response: Response) {
        let status = response.status;
        if status < 200 {
            return;
        }
        let is_invite = response
            .headers
            .cseq()
            .is_ok_and(|c| c.method == Method::Invite);
        let Some(CallState::Established(e)) = self.calls.get_mut(&call) else {
            return;
        };
        if is_invite {
            e.reoffer_out = None;
        }
        match status {
            200..=299 => {
                let agreed = agreed_by_response(&response.headers);
                restart_timer(&mut e.session, now, agreed.map(|a| (a, Refresher::Uac)));
                if is_invite {
                    e.session.remote_sdp = response.body.clone();
                    let seq = response
                        .headers
                        .cseq()
                        .map(|c| c.seq)
                        .unwrap_or(e.dialog.local_seq);
                    let dialog = e.dialog.clone();
                    let ack = self.ack_2xx(&dialog, seq);
                    self.send_direct(dialog.peer, ack.clone());
                    if let Some(CallState::Established(e)) = self.calls.get_mut(&call) {
                        e.ack = Some((seq, ack));
                    }
                }
            }
            // §12.2.1.2: the dialog is gone at the peer.
            408 | 481 => self.end_by_failure(now, call, false),
            _ => {
                if let Some(timer) = e.session.timer.as_mut() {
                    // RFC 4028 §7.4 / §10: 422 raises the interval; other
                    // refusals (491 glare, 5xx) are retried shortly.
                    if status == 422 {
                        if let Some(min_se) = response.headers.min_se().ok().flatten() {
                            timer.interval = timer.interval.max(min_se);
                        }
                        self.send_session_refresh(now, call);
                    } else {
                        timer.refresh_at = Some(now + REFRESH_RETRY);
                    }
                }
            }
        }
    }

    /// §13.2.2.4: the ACK for a 2xx is built by the UA: a new branch, the
    /// INVITE's CSeq number, the dialog's route set.
    pub(crate) fn ack_2xx(&mut self, dialog: &Dialog, seq: u32) -> Vec<u8> {
        let (via, _) = self.new_via(dialog.peer.transport, &Method::Ack);
        let ack = dialog.request_with_seq(Method::Ack, via, seq);
        Message::Request(ack).to_bytes()
    }
}

/// How long a refresh waits behind an outstanding offer or after a refusal.
const REFRESH_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Replaces every Via with `via` (a request we originate has one).
pub(crate) fn set_via(request: &mut Request, via: Header) {
    request.headers.set("Via", via.value);
}

/// What the app hears when our INVITE ends without a 2xx: a cancel we asked for ends the call;
/// anything else is a failure with the peer's status.
fn unanswered_invite_ended(
    call: crate::CallHandle,
    cancelled: bool,
    status: u16,
    reason: &str,
) -> Event {
    if cancelled {
        Event::CallEnded {
            call,
            by_peer: false,
            reason: EndReason::Cancelled,
        }
    } else {
        Event::Failed {
            call,
            status,
            reason: reason.to_owned(),
        }
    }
}
