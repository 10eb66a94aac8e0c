//! The UA core for requests we receive (RFC 3261 §8.2, §12.2.2, §13.3,
//! §15.1.2; RFC 3515; RFC 6086 INFO).

use std::net::SocketAddr;
use std::time::Instant;

use sip_message::{Header, Method, NameAddr, Request};

use crate::authenticator::Verdict;
use crate::body;
use crate::call::{CallState, Incoming, ReofferIn};
use crate::commands::restart_timer;
use crate::dialog::{Dialog, DialogId};
use crate::endpoint::{Endpoint, ALLOW};
use crate::event::{EndReason, Event, IncomingCall};
use crate::session_timer::{add_response_headers, negotiate_as_uas, Agreed, UasNegotiation};
use crate::transaction::{Peer, ServerKey};
use crate::CallHandle;
use sip_message::Refresher;

impl Endpoint {
    /// A request that started a new server transaction.
    pub(crate) fn on_new_request(
        &mut self,
        now: Instant,
        key: ServerKey,
        request: Request,
        peer: Peer,
        from: SocketAddr,
    ) {
        if request.method == Method::Cancel {
            self.on_cancel(now, &key, &request);
            return;
        }
        // RFC 3261 §8.2.2.3: a request that requires an extension we do not implement is
        // refused with 420 naming it, rather than handled as if we did (CANCEL and ACK excepted).
        let unsupported = unsupported_extensions(&request);
        if !unsupported.is_empty() {
            let mut response = self.response(&request, 420, "Bad Extension", None);
            response
                .headers
                .push(Header::new("Unsupported", unsupported.join(", ")));
            self.respond(now, &key, response);
            return;
        }
        let to_tag = request.headers.to().ok().and_then(|t| t.tag());
        if to_tag.is_some() {
            self.on_in_dialog(now, key, request);
            return;
        }
        let mut user = None;
        if request.method != Method::Options {
            match self.authenticate(now, &key, &request, from) {
                Some(u) => user = u,
                None => return,
            }
        }
        match request.method {
            Method::Invite => self.on_invite(now, key, request, peer, from, user),
            Method::Options => {
                let response = self.options_response(&request, None);
                self.respond(now, &key, response);
            }
            Method::Bye
            | Method::Info
            | Method::Update
            | Method::Refer
            | Method::Notify
            | Method::Prack => {
                // §12.2.2: a mid-dialog method outside a dialog we know.
                let response =
                    self.response(&request, 481, "Call/Transaction Does Not Exist", None);
                self.respond(now, &key, response);
            }
            _ => {
                // §8.2.1: 405 with Allow.
                let mut response = self.response(&request, 405, "Method Not Allowed", None);
                response.headers.push(Header::new("Allow", ALLOW));
                self.respond(now, &key, response);
            }
        }
    }

    /// Trunk mode (RFC 3261 §22.1): `Some(user)` when the request may
    /// proceed; otherwise it was answered 401 or 403.
    fn authenticate(
        &mut self,
        now: Instant,
        key: &ServerKey,
        request: &Request,
        from: SocketAddr,
    ) -> Option<Option<String>> {
        let Some(config) = &self.config.inbound_auth else {
            return Some(None);
        };
        let response = match self.nonces.check(config, now, request, from) {
            Verdict::Accept { user } => return Some(user),
            Verdict::Challenge { stale } => {
                let random = self.rng.hex(16);
                let headers = self.nonces.challenges(config, now, random, stale);
                let mut response = self.response(request, 401, "Unauthorized", None);
                for h in headers {
                    response.headers.push(h);
                }
                self.stats.auth_challenged += 1;
                response
            }
            Verdict::Forbidden => {
                self.stats.auth_rejected += 1;
                self.response(request, 403, "Forbidden", None)
            }
        };
        self.respond(now, key, response);
        None
    }

    fn on_invite(
        &mut self,
        now: Instant,
        key: ServerKey,
        invite: Request,
        peer: Peer,
        from: SocketAddr,
        authenticated_user: Option<String>,
    ) {
        let (Ok(from_addr), Ok(to), Ok(call_id)) = (
            invite.headers.from(),
            invite.headers.to(),
            invite.headers.call_id(),
        ) else {
            return; // validate() already checked these
        };
        let agreed = match negotiate_as_uas(self.config.session_timer.as_ref(), &invite) {
            UasNegotiation::TooSmall { min_se } => {
                self.reject_interval(now, &key, &invite, min_se, None);
                return;
            }
            UasNegotiation::Agreed(a) => Some(a),
            UasNegotiation::None => None,
        };
        let local_tag = self.rng.tag().to_string();
        // In-dialog requests go to the Contact when it is an IP literal,
        // else back where the INVITE came from.
        let Some(mut dialog) = Dialog::as_uas(&invite, local_tag, peer) else {
            return;
        };
        dialog.peer = self.dialog_peer(&dialog.route_set, &dialog.remote_target, peer);
        if let Some(replaces) = invite.headers.get("Replaces").and_then(|h| h.value_str()) {
            let replaces = replaces.to_owned();
            self.on_replacing_invite(now, key, invite, dialog, agreed, &replaces);
            return;
        }
        let call = self.new_call_handle();
        self.events.push_back(Event::IncomingCall(IncomingCall {
            call,
            call_id,
            from: from_addr,
            to,
            request_uri: invite.uri.clone(),
            source: from,
            offer: invite.body.clone(),
            authenticated_user,
            asserted_identity: invite
                .headers
                .values("P-Asserted-Identity")
                .into_iter()
                .filter_map(|v| NameAddr::parse(v).ok())
                .collect(),
        }));
        self.incoming_invites.insert(key.clone(), call);
        self.calls.insert(
            call,
            CallState::Incoming(Incoming {
                invite,
                key,
                dialog,
                agreed,
            }),
        );
        let _ = now;
    }

    /// §9.2: CANCEL matches the INVITE server transaction by branch and sent-by.
    fn on_cancel(&mut self, now: Instant, key: &ServerKey, cancel: &Request) {
        let invite_key = ServerKey::cancelled_invite(cancel);
        let pending = invite_key
            .as_ref()
            .is_some_and(|k| self.transactions.invite_server_pending(k));
        if !pending {
            let response = self.response(cancel, 481, "Call/Transaction Does Not Exist", None);
            self.respond(now, key, response);
            return;
        }
        let ok = self.response(cancel, 200, "OK", None);
        self.respond(now, key, ok);
        let Some(invite_key) = invite_key else { return };
        let Some(&call) = self.incoming_invites.get(&invite_key) else {
            return;
        };
        if let Some(CallState::Incoming(incoming)) = self.calls.get(&call) {
            // §9.2: the INVITE is answered 487.
            let tag = incoming.dialog.local_tag.clone();
            let invite = incoming.invite.clone();
            let response = self.response(&invite, 487, "Request Terminated", Some(&tag));
            self.respond(now, &invite_key, response);
            self.events.push_back(Event::CallCancelled { call });
            self.remove_call(call);
        }
    }

    /// An ACK outside any server transaction: the ACK for our 2xx (§13.3.1.4).
    pub(crate) fn on_ack(&mut self, _now: Instant, ack: &Request) {
        let Some(call) = self.dialog_of_request(ack) else {
            self.stats.stray_acks += 1;
            return;
        };
        let seq = ack.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(state) = self.calls.remove(&call) else {
            return;
        };
        let state = match state {
            CallState::Accepting(a) if a.ok.cseq == seq => {
                CallState::Established(crate::call::Established::new(a.dialog, a.session))
            }
            CallState::Established(mut e) => {
                if e.reoffer_ok.as_ref().is_some_and(|r| r.cseq == seq) {
                    e.reoffer_ok = None;
                }
                CallState::Established(e)
            }
            other => other,
        };
        self.calls.insert(call, state);
    }

    fn dialog_of_request(&self, request: &Request) -> Option<CallHandle> {
        let h = &request.headers;
        let id = DialogId {
            call_id: h.call_id().ok()?.to_string(),
            local_tag: h.to().ok()?.tag()?.to_string(),
            remote_tag: h
                .from()
                .ok()?
                .tag()
                .map(|t| t.to_string())
                .unwrap_or_default(),
        };
        self.dialogs.get(&id).copied()
    }

    /// §12.2.2: requests within a dialog.
    fn on_in_dialog(&mut self, now: Instant, key: ServerKey, request: Request) {
        let Some(call) = self.dialog_of_request(&request) else {
            let response = self.response(&request, 481, "Call/Transaction Does Not Exist", None);
            self.respond(now, &key, response);
            return;
        };
        let seq = request.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let local_tag;
        {
            let Some(state) = self.calls.get_mut(&call) else {
                return;
            };
            let dialog = match state {
                CallState::Accepting(a) => &mut a.dialog,
                CallState::Established(e) => &mut e.dialog,
                _ => return,
            };
            local_tag = dialog.local_tag.clone();
            // §12.2.2: a lower CSeq than the last is out of order: 500.
            if dialog.remote_seq.is_some_and(|last| seq < last) {
                let response = self.response(
                    &request,
                    500,
                    "Server Internal Error (CSeq out of order)",
                    Some(&local_tag),
                );
                self.respond(now, &key, response);
                return;
            }
            dialog.remote_seq = Some(seq);
        }
        let tag = Some(local_tag.as_str());
        match request.method {
            Method::Bye => {
                let response = self.response(&request, 200, "OK", tag);
                self.respond(now, &key, response);
                self.events.push_back(Event::CallEnded {
                    call,
                    by_peer: true,
                    reason: EndReason::Bye,
                });
                self.remove_call(call);
            }
            Method::Invite | Method::Update => self.on_reoffer(now, call, key, request),
            Method::Options => {
                let response = self.options_response(&request, tag);
                self.respond(now, &key, response);
            }
            Method::Info => {
                let content_type = request
                    .headers
                    .content_type()
                    .ok()
                    .flatten()
                    .map(|c| c.essence())
                    .unwrap_or_default();
                if let Some((digit, duration_ms)) = body::dtmf(&content_type, &request.body) {
                    self.events.push_back(Event::Dtmf {
                        call,
                        digit,
                        duration_ms,
                    });
                }
                // RFC 6086: an INFO package we do not read is still accepted;
                // the DTMF ones are the only ones peers send us.
                let response = self.response(&request, 200, "OK", tag);
                self.respond(now, &key, response);
            }
            Method::Refer => self.on_refer(now, call, key, request),
            Method::Notify => self.on_notify(now, call, key, request),
            _ => {
                let mut response = self.response(&request, 405, "Method Not Allowed", tag);
                response.headers.push(Header::new("Allow", ALLOW));
                self.respond(now, &key, response);
            }
        }
    }

    /// A re-INVITE or UPDATE: a new offer for the app (hold, unhold).
    fn on_reoffer(&mut self, now: Instant, call: CallHandle, key: ServerKey, request: Request) {
        let new_target = crate::dialog::contact_uri(&request.headers);
        let Some(CallState::Established(e)) = self.calls.get_mut(&call) else {
            // §14.2: a re-INVITE before the ACK of the first: 491 is what
            // peers retry on (the RFC suggests 500 with Retry-After).
            let response = self.response(&request, 491, "Request Pending", None);
            self.respond(now, &key, response);
            return;
        };
        let tag = e.dialog.local_tag.clone();
        if e.reoffer_in.is_some() || e.reoffer_out.is_some() || e.reoffer_ok.is_some() {
            // §14.2: an offer while one is outstanding: 491.
            let response = self.response(&request, 491, "Request Pending", Some(&tag));
            self.respond(now, &key, response);
            return;
        }
        if let Some(target) = new_target {
            // §12.2.2: target refresh.
            e.dialog.remote_target = target;
        }
        let agreed = match negotiate_as_uas(self.config.session_timer.as_ref(), &request) {
            UasNegotiation::TooSmall { min_se } => {
                self.reject_interval(now, &key, &request, min_se, Some(&tag));
                return;
            }
            UasNegotiation::Agreed(a) => Some(a),
            UasNegotiation::None => None,
        };
        // RFC 4028 §10: a refresh carries no new offer: an UPDATE without
        // SDP, or a re-INVITE without SDP or repeating the last one. We
        // answer it ourselves; anything else is the application's.
        let same_offer = request.body.is_empty() || request.body == e.session.remote_sdp;
        let is_refresh = match request.method {
            Method::Update => request.body.is_empty(),
            _ => same_offer,
        };
        if !is_refresh {
            let sdp = request.body.clone();
            e.reoffer_in = Some(ReofferIn {
                key,
                request,
                agreed,
            });
            self.events.push_back(Event::Reoffer { call, sdp });
            return;
        }
        self.answer_refresh(now, call, key, request, agreed);
    }

    /// 200 to a session refresh, with our current SDP for a re-INVITE
    /// (RFC 4028 §9), and the timer restarted (§10).
    fn answer_refresh(
        &mut self,
        now: Instant,
        call: CallHandle,
        key: ServerKey,
        request: Request,
        agreed: Option<Agreed>,
    ) {
        let Some(CallState::Established(e)) = self.calls.get(&call) else {
            return;
        };
        let tag = e.dialog.local_tag.clone();
        let local_sdp = e.session.local_sdp.clone();
        let transport = e.dialog.peer.transport;
        let mut response = self.response(&request, 200, "OK", Some(&tag));
        if let Some(agreed) = agreed {
            add_response_headers(&mut response.headers, agreed);
        }
        response.headers.push(self.contact(transport));
        response.headers.push(Header::new("Allow", ALLOW));
        if request.method == Method::Invite {
            response
                .headers
                .push(Header::new("Content-Type", "application/sdp"));
            response.body = local_sdp;
        }
        let bytes = sip_message::Message::Response(response.clone()).to_bytes();
        self.respond(now, &key, response);
        let t1 = self.config.timers.t1;
        let give_up = now + self.config.timers.timeout();
        let Some(CallState::Established(e)) = self.calls.get_mut(&call) else {
            return;
        };
        restart_timer(&mut e.session, now, agreed.map(|a| (a, Refresher::Uas)));
        if request.method == Method::Invite {
            let cseq = request.headers.cseq().map(|c| c.seq).unwrap_or(0);
            e.reoffer_ok = Some(crate::call::Retransmit2xx {
                bytes,
                cseq,
                interval: t1,
                next: now + t1,
                give_up,
            });
        }
    }

    /// RFC 4028 §8.1: 422 Session Interval Too Small, with our Min-SE.
    fn reject_interval(
        &mut self,
        now: Instant,
        key: &ServerKey,
        request: &Request,
        min_se: u32,
        tag: Option<&str>,
    ) {
        let mut response = self.response(request, 422, "Session Interval Too Small", tag);
        response
            .headers
            .push(Header::new("Min-SE", min_se.to_string()));
        self.respond(now, key, response);
    }

    /// RFC 3515 §2.4.2: accept with 202; the app reports progress.
    fn on_refer(&mut self, now: Instant, call: CallHandle, key: ServerKey, request: Request) {
        let target = request
            .headers
            .get("Refer-To")
            .and_then(|h| h.value_str())
            .and_then(|v| sip_message::NameAddr::parse(v).ok())
            .map(|a| a.uri);
        let accept = self.config.accept_refer;
        let Some(CallState::Established(e)) = self.calls.get_mut(&call) else {
            return;
        };
        let tag = e.dialog.local_tag.clone();
        if !accept {
            let response = self.response(&request, 403, "Forbidden (no transfers)", Some(&tag));
            self.respond(now, &key, response);
            return;
        }
        let Some(target) = target else {
            let response = self.response(
                &request,
                400,
                "Bad Request (missing or bad Refer-To)",
                Some(&tag),
            );
            self.respond(now, &key, response);
            return;
        };
        e.transferee = Some(target.clone());
        let response = self.response(&request, 202, "Accepted", Some(&tag));
        self.respond(now, &key, response);
        self.events
            .push_back(Event::TransferRequested { call, target });
        // RFC 3515 §2.4.4: an immediate NOTIFY with the state so far.
        let _ = self.transfer_progress(now, call, 100);
    }

    /// RFC 3515 §2.4.5: NOTIFYs of the `refer` event carry message/sipfrag.
    fn on_notify(&mut self, now: Instant, call: CallHandle, key: ServerKey, request: Request) {
        let tag = self
            .calls
            .get(&call)
            .and_then(|s| s.dialog())
            .map(|d| d.local_tag.clone());
        let event = request
            .headers
            .get("Event")
            .and_then(|h| h.value_str())
            .unwrap_or_default();
        let is_refer = event
            .split(';')
            .next()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("refer"));
        if !is_refer {
            let response = self.response(&request, 489, "Bad Event", tag.as_deref());
            self.respond(now, &key, response);
            return;
        }
        let response = self.response(&request, 200, "OK", tag.as_deref());
        self.respond(now, &key, response);
        let Some(status) = body::sipfrag_status(&request.body) else {
            return;
        };
        self.events.push_back(match status {
            100..=199 => Event::TransferProgress { call, status },
            200..=299 => Event::TransferSucceeded { call },
            _ => Event::TransferFailed { call, status },
        });
    }

    fn options_response(&mut self, request: &Request, tag: Option<&str>) -> sip_message::Response {
        // §11.2: 200 with Allow, Accept and Supported.
        let mut response = self.response(request, 200, "OK", tag);
        response.headers.push(Header::new("Allow", ALLOW));
        response
            .headers
            .push(Header::new("Accept", "application/sdp"));
        response
            .headers
            .push(Header::new("Supported", SUPPORTED_EXTENSIONS.join(", ")));
        response
    }
}

/// Option tags a request may require of us: session timers (RFC 4028) and Replaces (RFC 3891).
pub(crate) const SUPPORTED_EXTENSIONS: [&str; 2] = ["timer", "replaces"];

/// The option tags in `request`'s Require that we do not implement.
fn unsupported_extensions(request: &Request) -> Vec<String> {
    request
        .headers
        .values("Require")
        .into_iter()
        .filter(|tag| !tag.is_empty())
        .filter(|tag| {
            !SUPPORTED_EXTENSIONS
                .iter()
                .any(|s| s.eq_ignore_ascii_case(tag))
        })
        .map(str::to_owned)
        .collect()
}
