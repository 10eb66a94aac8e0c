//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5).
//!
//! Calling → Proceeding → Completed → Terminated. A 2xx ends the
//! transaction at once and goes up: the ACK for a 2xx is the UA's job
//! (§13.2.2.4); the ACK for a 3xx–6xx is built here (§17.1.1.3).

use std::time::{Duration, Instant};

use sip_message::{Header, Message, Method, Request, Response};

use super::{ClientKey, Ctx, Peer, TuEvent};
use crate::timer::{Timer, Timers};

pub(crate) struct InviteClient {
    request: Request,
    bytes: Vec<u8>,
    peer: Peer,
    timers: Timers,
    state: State,
}

enum State {
    /// INVITE sent; Timer A retransmits at `interval` on UDP.
    Calling {
        interval: Duration,
    },
    /// A provisional response arrived; no more retransmissions.
    Proceeding,
    /// A 3xx–6xx arrived and was ACKed; Timer D absorbs its retransmissions.
    Completed {
        ack: Vec<u8>,
    },
    Terminated,
}

impl InviteClient {
    pub(crate) fn start(ctx: &mut Ctx<'_>, request: Request, peer: Peer) -> InviteClient {
        let bytes = Message::Request(request.clone()).to_bytes();
        ctx.send(peer, bytes.clone());
        let mut timers = Timers::default();
        let t1 = ctx.timers.t1;
        if !peer.transport.is_reliable() {
            // §17.1.1.2: Timer A starts at T1, on unreliable transports only.
            timers.set(Timer::A, ctx.now + t1);
        }
        // §17.1.1.2: Timer B, 64*T1, on every transport.
        timers.set(Timer::B, ctx.now + ctx.timers.timeout());
        InviteClient {
            request,
            bytes,
            peer,
            timers,
            state: State::Calling { interval: t1 },
        }
    }

    pub(crate) fn on_response(&mut self, ctx: &mut Ctx<'_>, key: &ClientKey, response: Response) {
        let state = std::mem::replace(&mut self.state, State::Terminated);
        self.state = match state {
            State::Calling { .. } | State::Proceeding => self.on_response_live(ctx, key, response),
            State::Completed { ack } => {
                // §17.1.1.2: retransmitted final responses get the ACK again.
                if response.status >= 300 {
                    ctx.send(self.peer, ack.clone());
                    ctx.out.retransmissions += 1;
                }
                State::Completed { ack }
            }
            State::Terminated => State::Terminated,
        };
    }

    fn on_response_live(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &ClientKey,
        response: Response,
    ) -> State {
        let status = response.status;
        if status < 200 {
            // §17.1.1.2: Proceeding stops retransmissions, and Timer B
            // no longer applies: how long to ring is the TU's call
            // (`Endpoint::hangup` sends CANCEL).
            self.timers.clear(Timer::A);
            self.timers.clear(Timer::B);
            ctx.out.tu.push_back(TuEvent::Response {
                key: key.clone(),
                response,
            });
            return State::Proceeding;
        }
        self.timers.clear_all();
        if status < 300 {
            // §17.1.1.2: a 2xx terminates the transaction and goes to the TU.
            ctx.out.tu.push_back(TuEvent::Response {
                key: key.clone(),
                response,
            });
            return State::Terminated;
        }
        let ack = Message::Request(ack_for(&self.request, &response)).to_bytes();
        ctx.send(self.peer, ack.clone());
        ctx.out.tu.push_back(TuEvent::Response {
            key: key.clone(),
            response,
        });
        let wait = ctx.timers.d(self.peer.transport.is_reliable());
        if wait.is_zero() {
            return State::Terminated;
        }
        self.timers.set(Timer::D, ctx.now + wait);
        State::Completed { ack }
    }

    pub(crate) fn on_timeout(&mut self, ctx: &mut Ctx<'_>, key: &ClientKey) {
        while let Some(timer) = self.timers.pop_expired(ctx.now) {
            let state = std::mem::replace(&mut self.state, State::Terminated);
            self.state = match (state, timer) {
                (State::Calling { interval }, Timer::A) => {
                    // §17.1.1.2: retransmit and double Timer A.
                    ctx.send(self.peer, self.bytes.clone());
                    ctx.out.retransmissions += 1;
                    let interval = interval.saturating_mul(2);
                    self.timers.set(Timer::A, ctx.now + interval);
                    State::Calling { interval }
                }
                (State::Calling { .. }, Timer::B) => {
                    // §17.1.1.2: Timer B informs the TU of a timeout.
                    self.timers.clear_all();
                    ctx.out.tu.push_back(TuEvent::Timeout { key: key.clone() });
                    State::Terminated
                }
                (State::Completed { .. }, Timer::D) => State::Terminated,
                (state, _) => state,
            };
        }
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub(crate) fn is_terminated(&self) -> bool {
        matches!(self.state, State::Terminated)
    }

    pub(crate) fn peer(&self) -> Peer {
        self.peer
    }
}

/// §17.1.1.3: the ACK for a non-2xx final response: the INVITE's
/// Request-URI, Call-ID, From, CSeq number, top Via and Route; the
/// response's To (with its tag).
pub(crate) fn ack_for(invite: &Request, response: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    let h = &invite.headers;
    if let Some(via) = h.values("Via").first() {
        ack.headers.push(Header::new("Via", *via));
    }
    ack.headers.push(Header::new("Max-Forwards", "70"));
    for name in ["From", "Call-ID"] {
        if let Some(field) = h.get(name) {
            ack.headers.push(field.clone());
        }
    }
    if let Some(to) = response.headers.get("To") {
        ack.headers.push(to.clone());
    }
    if let Ok(cseq) = h.cseq() {
        ack.headers
            .push(Header::new("CSeq", format!("{} ACK", cseq.seq)));
    }
    for route in h.get_all("Route") {
        ack.headers.push(route.clone());
    }
    ack
}
