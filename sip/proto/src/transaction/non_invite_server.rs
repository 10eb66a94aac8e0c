//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
//!
//! Trying → Proceeding → Completed → Terminated.

use std::time::Instant;

use sip_message::{Message, Response};

use super::{Ctx, Peer, RespondError};
use crate::timer::{Timer, Timers};

pub(crate) struct NonInviteServer {
    peer: Peer,
    timers: Timers,
    state: State,
}

enum State {
    /// Nothing sent; retransmissions are absorbed.
    Trying,
    /// A provisional was sent; it is resent on retransmissions.
    Proceeding {
        last: Vec<u8>,
    },
    /// A final was sent; resent on retransmissions until Timer J.
    Completed {
        last: Vec<u8>,
    },
    Terminated,
}

impl NonInviteServer {
    pub(crate) fn start(peer: Peer) -> NonInviteServer {
        NonInviteServer {
            peer,
            timers: Timers::default(),
            state: State::Trying,
        }
    }

    /// A retransmitted request.
    pub(crate) fn on_request(&mut self, ctx: &mut Ctx<'_>) {
        if let State::Proceeding { last } | State::Completed { last } = &self.state {
            ctx.send(self.peer, last.clone());
            ctx.out.retransmissions += 1;
        }
    }

    pub(crate) fn respond(
        &mut self,
        ctx: &mut Ctx<'_>,
        response: Response,
    ) -> Result<(), RespondError> {
        if matches!(self.state, State::Completed { .. } | State::Terminated) {
            return Err(RespondError::AlreadyFinal);
        }
        let status = response.status;
        let bytes = Message::Response(response).to_bytes();
        ctx.send(self.peer, bytes.clone());
        self.state = if status < 200 {
            State::Proceeding { last: bytes }
        } else {
            // §17.2.2: Timer J, 64*T1 on UDP, zero on reliable transports.
            let wait = ctx.timers.j(self.peer.transport.is_reliable());
            if wait.is_zero() {
                State::Terminated
            } else {
                self.timers.set(Timer::J, ctx.now + wait);
                State::Completed { last: bytes }
            }
        };
        Ok(())
    }

    pub(crate) fn on_timeout(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(timer) = self.timers.pop_expired(ctx.now) {
            if timer == Timer::J {
                self.state = State::Terminated;
            }
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
