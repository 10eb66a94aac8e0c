//! OPTIONS keep-alives to a trunk or PBX (RFC 3261 §11): is the peer
//! answering?
//!
//! One keep-alive is one state machine with a single deadline: `Waiting`
//! (the next OPTIONS is due at `send_at`) → `Probing` (an OPTIONS in
//! flight). Any final response, whatever its status (a 401 or 404 still
//! proves the peer is there), means up; Timer F (408) or a transport error
//! (503) means down. Only changes are reported (`PeerUp`, `PeerDown`); the
//! first outcome is always a change.
//!
//! The next OPTIONS is due `interval` after the previous one was sent, but
//! never while one is in flight: a dead peer is probed once per Timer F
//! (64*T1) when that is longer than the interval.

use std::time::{Duration, Instant};

use sip_message::{Header, Method, Request, Uri};

use crate::endpoint::{Endpoint, ALLOW};
use crate::error::Error;
use crate::event::Event;
use crate::transaction::{ClientKey, Peer};
use crate::trunk::Trunk;
use crate::KeepaliveHandle;

impl Endpoint {
    /// Sends OPTIONS to `target` now and then every `interval`, reporting
    /// `PeerUp` / `PeerDown` when the peer's state changes. The Request-URI
    /// is `target`; the request goes to `trunk`'s destinations, else where
    /// `target` routes (an IP literal or the outbound proxy). Challenges
    /// are not answered: any final response means up. `interval` is at
    /// least one second.
    pub fn keepalive(
        &mut self,
        now: Instant,
        trunk: &Trunk,
        target: Uri,
        interval: Duration,
    ) -> Result<KeepaliveHandle, Error> {
        let now = self.input_time(now);
        let destinations = self.trunk_peers(trunk, &target)?;
        let handle = KeepaliveHandle(self.next_keepalive);
        self.next_keepalive += 1;
        self.keepalives.insert(
            handle,
            Keepalive {
                target,
                destinations,
                current: 0,
                failed: 0,
                interval: interval.max(Duration::from_secs(1)),
                up: None,
                state: State::Waiting { send_at: now },
            },
        );
        self.send_options(now, handle);
        Ok(handle)
    }

    /// Stops a keep-alive; an OPTIONS in flight is left to finish unheard.
    pub fn stop_keepalive(&mut self, keepalive: KeepaliveHandle) -> Result<(), Error> {
        match self.keepalives.remove(&keepalive) {
            Some(k) => {
                if let State::Probing { key, .. } = k.state {
                    self.keepalive_owners.remove(&key);
                }
                Ok(())
            }
            None => Err(Error::UnknownKeepalive(keepalive)),
        }
    }

    /// Replaces where the OPTIONS go (a trunk re-resolved after its DNS
    /// records expired): `trunk`'s destinations, else where the target
    /// routes. The destination in use stays in use when it is still listed;
    /// an OPTIONS in flight finishes where it went.
    pub fn retarget_keepalive(
        &mut self,
        keepalive: KeepaliveHandle,
        trunk: &Trunk,
    ) -> Result<(), Error> {
        let Some(target) = self.keepalives.get(&keepalive).map(|k| k.target.clone()) else {
            return Err(Error::UnknownKeepalive(keepalive));
        };
        let destinations = self.trunk_peers(trunk, &target)?;
        if let Some(k) = self.keepalives.get_mut(&keepalive) {
            let current = k.destinations[k.current % k.destinations.len()];
            k.current = destinations.iter().position(|d| *d == current).unwrap_or(0);
            k.failed = 0;
            k.destinations = destinations;
        }
        Ok(())
    }

    /// Whether the peer answered the last OPTIONS; `None` before the first outcome.
    pub fn keepalive_up(&self, keepalive: KeepaliveHandle) -> Option<bool> {
        self.keepalives.get(&keepalive).and_then(|k| k.up)
    }
}

/// What the endpoint keeps per keep-alive.
pub(crate) struct Keepalive {
    target: Uri,
    /// Where OPTIONS may go, best first (RFC 3263 §4.3); never empty.
    destinations: Vec<Peer>,
    /// The destination in use: the last that answered.
    current: usize,
    /// Destinations that failed since the last answer, this round.
    failed: usize,
    interval: Duration,
    /// The last outcome; `None` until the first.
    up: Option<bool>,
    state: State,
}

enum State {
    Waiting { send_at: Instant },
    Probing { key: ClientKey, sent_at: Instant },
}

impl Keepalive {
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { send_at } => Some(send_at),
            // The transaction's Timer F bounds the probe.
            State::Probing { .. } => None,
        }
    }
}

impl Endpoint {
    fn send_options(&mut self, now: Instant, handle: KeepaliveHandle) {
        let Some((target, peer)) = self.keepalives.get(&handle).map(|k| {
            (
                k.target.clone(),
                k.destinations[k.current % k.destinations.len()],
            )
        }) else {
            return;
        };
        let (via, key) = self.new_via(peer.transport, &Method::Options);
        let mut request = Request::new(Method::Options, target.clone());
        let h = &mut request.headers;
        h.push(via);
        h.push(Header::new("Max-Forwards", "70"));
        h.push(Header::new(
            "From",
            format!(
                "<sip:{}@{}>;tag={}",
                self.config.contact_user,
                self.config.advertised_addr_for(peer.transport),
                self.rng.tag()
            ),
        ));
        h.push(Header::new("To", format!("<{target}>")));
        h.push(Header::new("Call-ID", self.rng.call_id().to_string()));
        h.push(Header::new("CSeq", "1 OPTIONS"));
        h.push(self.contact_for(peer.transport, &target));
        h.push(Header::new("Accept", "application/sdp"));
        h.push(Header::new("Allow", ALLOW));
        if let Some(ua) = &self.config.user_agent {
            h.push(Header::new("User-Agent", ua.clone()));
        }
        if let Some(k) = self.keepalives.get_mut(&handle) {
            k.state = State::Probing {
                key: key.clone(),
                sent_at: now,
            };
        }
        self.keepalive_owners.insert(key.clone(), handle);
        self.with_transactions(now, |t, ctx| t.start_client(ctx, key, request, peer));
    }

    /// The outcome of one OPTIONS: a final `status` (`up`), or 408/503 (down).
    pub(crate) fn on_keepalive_outcome(
        &mut self,
        now: Instant,
        handle: KeepaliveHandle,
        up: bool,
        status: u16,
    ) {
        let Some(k) = self.keepalives.get_mut(&handle) else {
            return;
        };
        let State::Probing { sent_at, .. } = k.state else {
            return;
        };
        // RFC 3263 §4.3: a timeout or transport error moves on to the next
        // destination at once; the peer is down only when none answers.
        if !up && k.failed + 1 < k.destinations.len() {
            k.failed += 1;
            k.current = (k.current + 1) % k.destinations.len();
            k.state = State::Waiting { send_at: now };
            return self.send_options(now, handle);
        }
        if !up {
            k.current = 0; // the next round starts with the best again
        }
        k.failed = 0;
        k.state = State::Waiting {
            send_at: (sent_at + k.interval).max(now),
        };
        if k.up == Some(up) {
            return;
        }
        k.up = Some(up);
        self.events.push_back(if up {
            Event::PeerUp {
                keepalive: handle,
                status,
            }
        } else {
            Event::PeerDown {
                keepalive: handle,
                status,
            }
        });
    }

    /// OPTIONS that are due.
    pub(crate) fn keepalive_timeouts(&mut self, now: Instant) {
        let due: Vec<KeepaliveHandle> = self
            .keepalives
            .iter()
            .filter(|(_, k)| k.next_timeout().is_some_and(|t| t <= now))
            .map(|(h, _)| *h)
            .collect();
        for handle in due {
            self.send_options(now, handle);
        }
    }
}
