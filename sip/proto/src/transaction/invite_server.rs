//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7, with the
//! RFC 6026 Accepted state).
//!
//! Proceeding → Completed → Confirmed → Terminated for 3xx–6xx;
//! Proceeding → Accepted → Terminated for 2xx. The 2xx itself is
//! retransmitted by the UA (§13.3.1.4), not here.

use std::time::{Duration, Instant};

use sip_message::{Header, Message, Method, Request, Response};

use super::{Ctx, Peer, RespondError, ServerKey, TuEvent};
use crate::timer::{Timer, Timers, TRYING_DELAY};

pub(crate) struct InviteServer {
    peer: Peer,
    timers: Timers,
    state: State,
}

enum State {
    /// No final response yet; `last` is the last provisional sent, resent
    /// when the INVITE is retransmitted (§17.2.1).
    Proceeding {
        last: Option<Vec<u8>>,
        trying: Option<Vec<u8>>,
    },
    /// RFC 6026 §7.1: a 2xx was sent; INVITE retransmissions are absorbed
    /// until Timer L.
    Accepted,
    /// A 3xx–6xx was sent; Timer G retransmits it until the ACK (Timer H).
    Completed {
        last: Vec<u8>,
        interval: Duration,
    },
    /// The ACK arrived; Timer I absorbs ACK retransmissions.
    Confirmed,
    Terminated,
}

impl InviteServer {
    /// §17.2.1: the transaction is created in Proceeding. We do not send
    /// 100 at once: Timer Trying sends it after 200 ms unless the TU has
    /// answered by then.
    pub(crate) fn start(
        ctx: &mut Ctx<'_>,
        key: ServerKey,
        peer: Peer,
        invite: &Request,
    ) -> InviteServer {
        let mut timers = Timers::default();
        timers.set(Timer::Trying, ctx.now + TRYING_DELAY);
        let mut trying = invite.response(100, "Trying", None);
        // §8.2.6.1: a 100 carries no To tag; Timestamp is copied.
        if let Some(ts) = invite.headers.get("Timestamp") {
            trying
                .headers
                .push(Header::new("Timestamp", ts.value.clone()));
        }
        let _ = key;
        InviteServer {
            peer,
            timers,
            state: State::Proceeding {
                last: None,
                trying: Some(Message::Response(trying).to_bytes()),
            },
        }
    }

    pub(crate) fn is_proceeding(&self) -> bool {
        matches!(self.state, State::Proceeding { .. })
    }

    /// A retransmitted INVITE or an ACK.
    pub(crate) fn on_request(&mut self, ctx: &mut Ctx<'_>, request: &Request) {
        let is_ack = request.method == Method::Ack;
        let state = std::mem::replace(&mut self.state, State::Terminated);
        self.state = match state {
            State::Proceeding { last, trying } => {
                if !is_ack {
                    // §17.2.1: resend the most recent provisional.
                    if let Some(bytes) = last.as_ref().or(trying.as_ref()) {
                        ctx.send(self.peer, bytes.clone());
                        ctx.out.retransmissions += 1;
                    }
                }
                State::Proceeding { last, trying }
            }
            State::Completed { last, interval } if !is_ack => {
                // §17.2.1: a retransmitted INVITE gets the final response again.
                ctx.send(self.peer, last.clone());
                ctx.out.retransmissions += 1;
                State::Completed { last, interval }
            }
            State::Completed { .. } => {
                self.timers.clear(Timer::G);
                self.timers.clear(Timer::H);
                // §17.2.1: Timer I, T4 on UDP, zero on reliable transports.
                let wait = ctx.timers.t4_or_zero(self.peer.transport.is_reliable());
                if wait.is_zero() {
                    State::Terminated
                } else {
                    self.timers.set(Timer::I, ctx.now + wait);
                    State::Confirmed
                }
            }
            other => other,
        };
    }

    /// The TU sends a response.
    pub(crate) fn respond(
        &mut self,
        ctx: &mut Ctx<'_>,
        response: Response,
    ) -> Result<(), RespondError> {
        if !self.is_proceeding() {
            return Err(RespondError::AlreadyFinal);
        }
        let status = response.status;
        let bytes = Message::Response(response).to_bytes();
        ctx.send(self.peer, bytes.clone());
        self.timers.clear(Timer::Trying);
        self.state = if status < 200 {
            State::Proceeding {
                last: Some(bytes),
                trying: None,
            }
        } else if status < 300 {
            // RFC 6026 §7.1: Accepted, Timer L.
            self.timers.set(Timer::L, ctx.now + ctx.timers.timeout());
            State::Accepted
        } else {
            let interval = ctx.timers.t1;
            if !self.peer.transport.is_reliable() {
                // §17.2.1: Timer G on unreliable transports.
                self.timers.set(Timer::G, ctx.now + interval);
            }
            self.timers.set(Timer::H, ctx.now + ctx.timers.timeout());
            State::Completed {
                last: bytes,
                interval,
            }
        };
        Ok(())
    }

    pub(crate) fn on_timeout(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(timer) = self.timers.pop_expired(ctx.now) {
            let state = std::mem::replace(&mut self.state, State::Terminated);
            self.state = match (state, timer) {
                (
                    State::Proceeding {
                        last: None,
                        trying: Some(bytes),
                    },
                    Timer::Trying,
                ) => {
                    ctx.send(self.peer, bytes.clone());
                    State::Proceeding {
                        last: Some(bytes),
                        trying: None,
                    }
                }
                (State::Completed { last, interval }, Timer::G) => {
                    // §17.2.1: retransmit, MIN(2*interval, T2).
                    ctx.send(self.peer, last.clone());
                    ctx.out.retransmissions += 1;
                    let interval = ctx.timers.backoff(interval);
                    self.timers.set(Timer::G, ctx.now + interval);
                    State::Completed { last, interval }
                }
                (State::Completed { .. }, Timer::H) => {
                    // §17.2.1: no ACK; tell the TU.
                    self.timers.clear_all();
                    ctx.out.tu.push_back(TuEvent::NoAck);
                    State::Terminated
                }
                (State::Confirmed, Timer::I) | (State::Accepted, Timer::L) => State::Terminated,
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
