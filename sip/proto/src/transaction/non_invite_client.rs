//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).
//!
//! Trying → Proceeding → Completed → Terminated.

use std::time::{Duration, Instant};

use sip_message::{Message, Request, Response};

use super::{ClientKey, Ctx, Peer, TuEvent};
use crate::timer::{Timer, Timers};

pub(crate) struct NonInviteClient {
    key: ClientKey,
    bytes: Vec<u8>,
    peer: Peer,
    timers: Timers,
    state: State,
}

enum State {
    /// Request sent; Timer E retransmits at `interval` on UDP.
    Trying {
        interval: Duration,
    },
    /// A provisional arrived; Timer E continues at T2.
    Proceeding,
    /// A final arrived; Timer K absorbs its retransmissions.
    Completed,
    Terminated,
}

impl NonInviteClient {
    pub(crate) fn start(
        ctx: &mut Ctx<'_>,
        key: ClientKey,
        request: Request,
        peer: Peer,
    ) -> NonInviteClient {
        let bytes = Message::Request(request).to_bytes();
        ctx.send(peer, bytes.clone());
        let mut timers = Timers::default();
        let t1 = ctx.timers.t1;
        if !peer.transport.is_reliable() {
            // §17.1.2.2: Timer E starts at T1 (unreliable only).
            timers.set(Timer::E, ctx.now + t1);
        }
        // §17.1.2.2: Timer F, 64*T1.
        timers.set(Timer::F, ctx.now + ctx.timers.timeout());
        NonInviteClient {
            key,
            bytes,
            peer,
            timers,
            state: State::Trying { interval: t1 },
        }
    }

    pub(crate) fn on_response(&mut self, ctx: &mut Ctx<'_>, response: Response) {
        let state = std::mem::replace(&mut self.state, State::Terminated);
        self.state = match state {
            State::Trying { .. } | State::Proceeding if response.status < 200 => {
                ctx.out.tu.push_back(TuEvent::Response {
                    key: self.key.clone(),
                    response,
                });
                State::Proceeding
            }
            State::Trying { .. } | State::Proceeding => {
                ctx.out.tu.push_back(TuEvent::Response {
                    key: self.key.clone(),
                    response,
                });
                self.timers.clear_all();
                // §17.1.2.2: Timer K, T4 on UDP, zero on reliable transports.
                let wait = ctx.timers.t4_or_zero(self.peer.transport.is_reliable());
                if wait.is_zero() {
                    State::Terminated
                } else {
                    self.timers.set(Timer::K, ctx.now + wait);
                    State::Completed
                }
            }
            // Retransmitted responses are absorbed.
            State::Completed => State::Completed,
            State::Terminated => State::Terminated,
        };
    }

    pub(crate) fn on_timeout(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(timer) = self.timers.pop_expired(ctx.now) {
            let state = std::mem::replace(&mut self.state, State::Terminated);
            self.state = match (state, timer) {
                (State::Trying { interval }, Timer::E) => {
                    // §17.1.2.2: retransmit, MIN(2*interval, T2).
                    self.retransmit(ctx);
                    let interval = ctx.timers.backoff(interval);
                    self.timers.set(Timer::E, ctx.now + interval);
                    State::Trying { interval }
                }
                (State::Proceeding, Timer::E) => {
                    // §17.1.2.2: in Proceeding, retransmit every T2.
                    self.retransmit(ctx);
                    self.timers.set(Timer::E, ctx.now + ctx.timers.t2);
                    State::Proceeding
                }
                (State::Trying { .. } | State::Proceeding, Timer::F) => {
                    self.timers.clear_all();
                    ctx.out.tu.push_back(TuEvent::Timeout {
                        key: self.key.clone(),
                    });
                    State::Terminated
                }
                (State::Completed, Timer::K) => State::Terminated,
                (state, _) => state,
            };
        }
    }

    fn retransmit(&self, ctx: &mut Ctx<'_>) {
        ctx.send(self.peer, self.bytes.clone());
        ctx.out.retransmissions += 1;
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
