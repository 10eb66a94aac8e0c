//! The REGISTER client (RFC 3261 §10.2): binds our Contact to an
//! address-of-record at a registrar, so a PBX routes the extension's calls
//! to us, and keeps the binding alive.
//!
//! One registration is one state machine with a single deadline:
//! `Requesting` (a REGISTER in flight) → `Registered` (refresh due at 50–80 %
//! of the granted lifetime) or `BackingOff` (retry due after an exponential
//! back-off). Call-ID and From tag are fixed for the registration's life and
//! CSeq grows with every REGISTER (§10.2.4, §8.1.1.5).

use std::time::{Duration, Instant};

use sip_message::{Contact, Header, Method, Request, Response, Uri};

use crate::digest::Credentials;
use crate::endpoint::{Endpoint, ALLOW};
use crate::error::Error;
use crate::event::Event;
use crate::transaction::{ClientKey, Peer};
use crate::trunk::Trunk;
use crate::RegistrationHandle;

/// How registrations retry and refresh. Defaults suit a PBX extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// The first back-off after a failure; doubled per consecutive failure.
    pub retry_base: Duration,
    /// The back-off never exceeds this.
    pub retry_max: Duration,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(30 * 60),
        }
    }
}

impl Endpoint {
    /// Registers our Contact for `aor` at `registrar` (the Request-URI)
    /// through `trunk` (its destinations, else where `registrar` routes: an
    /// IP literal, or any host with an outbound proxy), asking for a
    /// binding of `expires` seconds and answering challenges with the
    /// trunk's credentials. Outcome: `Registered` (again at every refresh)
    /// or `RegistrationFailed` (retried with back-off).
    pub fn register(
        &mut self,
        now: Instant,
        trunk: &Trunk,
        registrar: Uri,
        aor: Uri,
        expires: u32,
    ) -> Result<RegistrationHandle, Error> {
        let now = self.input_time(now);
        let destinations = self.trunk_peers(trunk, &registrar)?;
        let peer = destinations[0];
        let handle = RegistrationHandle(self.next_registration);
        self.next_registration += 1;
        let registration = Registration {
            registrar,
            aor,
            peer,
            destinations,
            failed: 0,
            credentials: trunk.credentials.clone(),
            call_id: self.rng.call_id().to_string(),
            from_tag: self.rng.tag().to_string(),
            cseq: 0,
            expires,
            failures: 0,
            state: State::BackingOff { retry_at: now },
        };
        self.registrations.insert(handle, registration);
        self.send_register(now, handle, Attempt::default());
        Ok(handle)
    }

    /// Removes the binding (REGISTER with Expires: 0, §10.2.2); then
    /// `Unregistered`, whatever the registrar answers.
    pub fn unregister(
        &mut self,
        now: Instant,
        registration: RegistrationHandle,
    ) -> Result<(), Error> {
        let now = self.input_time(now);
        let Some(r) = self.registrations.get_mut(&registration) else {
            return Err(Error::UnknownRegistration(registration));
        };
        if let State::Requesting(req) = &r.state {
            // The REGISTER in flight is overtaken; its outcome is ignored.
            self.registration_owners.remove(&req.key);
        }
        let attempt = Attempt {
            unregister: true,
            ..Attempt::default()
        };
        self.send_register(now, registration, attempt);
        Ok(())
    }

    /// Replaces where REGISTERs go (a registrar re-resolved after its DNS
    /// records expired): `trunk`'s destinations, else where the registrar
    /// routes. The destination in use stays in use when it is still listed;
    /// a REGISTER in flight finishes where it went.
    pub fn retarget_registration(
        &mut self,
        registration: RegistrationHandle,
        trunk: &Trunk,
    ) -> Result<(), Error> {
        let Some(registrar) = self
            .registrations
            .get(&registration)
            .map(|r| r.registrar.clone())
        else {
            return Err(Error::UnknownRegistration(registration));
        };
        let destinations = self.trunk_peers(trunk, &registrar)?;
        if let Some(r) = self.registrations.get_mut(&registration) {
            if !destinations.contains(&r.peer) {
                r.peer = destinations[0];
            }
            r.failed = 0;
            r.destinations = destinations;
        }
        Ok(())
    }

    /// Registrations alive.
    pub fn registration_count(&self) -> usize {
        self.registrations.len()
    }
}

/// What the endpoint keeps per registration.
pub(crate) struct Registration {
    registrar: Uri,
    aor: Uri,
    /// The destination in use (the last that answered).
    peer: Peer,
    /// Where REGISTERs may go, best first (RFC 3263 §4.3); never empty.
    destinations: Vec<Peer>,
    /// Destinations that failed in a row, this round.
    failed: usize,
    /// The trunk's; a REGISTER goes only to the trunk, so any challenge to
    /// it is the trunk's.
    credentials: Option<Credentials>,
    call_id: String,
    from_tag: String,
    /// The last CSeq number used (§10.2.4: incremented per REGISTER).
    cseq: u32,
    /// The lifetime we ask for; raised by a 423's Min-Expires (§10.2.8).
    expires: u32,
    /// Consecutive failures, for the back-off.
    failures: u32,
    state: State,
}

#[allow(clippy::large_enum_variant)] // reason: one per registration; boxing buys nothing
enum State {
    Requesting(Requesting),
    /// The registrar granted a binding; `refresh_at` is the deadline.
    Registered {
        refresh_at: Instant,
    },
    /// Failed; `retry_at` is the deadline.
    BackingOff {
        retry_at: Instant,
    },
}

/// A REGISTER in flight.
struct Requesting {
    key: ClientKey,
    request: Request,
    attempt: Attempt,
}

/// What this round of REGISTERs has already tried.
#[derive(Debug, Clone, Copy, Default)]
struct Attempt {
    unregister: bool,
    /// Challenges answered (a second only when the first was stale).
    auth: u8,
    /// 423 retries.
    interval: u8,
}

impl Registration {
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Requesting(_) => None,
            State::Registered { refresh_at } => Some(refresh_at),
            State::BackingOff { retry_at } => Some(retry_at),
        }
    }
}

// The state machine.
impl Endpoint {
    fn send_register(&mut self, now: Instant, handle: RegistrationHandle, attempt: Attempt) {
        let Some(contact) = self
            .registrations
            .get(&handle)
            .map(|r| self.contact_for(r.peer.transport, &r.registrar))
        else {
            return;
        };
        let user_agent = self.config.user_agent.clone();
        let Some(r) = self.registrations.get_mut(&handle) else {
            return;
        };
        r.cseq = r.cseq.wrapping_add(1) & 0x7fff_ffff;
        let expires = if attempt.unregister { 0 } else { r.expires };
        let mut request = Request::new(Method::Register, r.registrar.clone());
        let h = &mut request.headers;
        h.push(Header::new("Max-Forwards", "70"));
        h.push(Header::new(
            "From",
            format!("<{}>;tag={}", r.aor, r.from_tag),
        ));
        h.push(Header::new("To", format!("<{}>", r.aor)));
        h.push(Header::new("Call-ID", r.call_id.clone()));
        h.push(Header::new("CSeq", format!("{} REGISTER", r.cseq)));
        let contact_value = contact.value_str().unwrap_or_default().to_owned();
        h.push(Header::new(
            "Contact",
            format!("{contact_value};expires={expires}"),
        ));
        h.push(Header::new("Expires", expires.to_string()));
        h.push(Header::new("Allow", ALLOW));
        if let Some(ua) = user_agent {
            h.push(Header::new("User-Agent", ua));
        }
        self.start_register(now, handle, request, attempt);
    }

    /// Sends `request` (a REGISTER without Via) in a new transaction.
    fn start_register(
        &mut self,
        now: Instant,
        handle: RegistrationHandle,
        mut request: Request,
        attempt: Attempt,
    ) {
        let Some(peer) = self.registrations.get(&handle).map(|r| r.peer) else {
            return;
        };
        let (via, key) = self.new_via(peer.transport, &Method::Register);
        request.headers.remove_all("Via");
        // Via goes first, as in every request we originate.
        let mut headers = sip_message::Headers::new();
        headers.push(via);
        for h in request.headers.iter() {
            headers.push(h.clone());
        }
        request.headers = headers;
        if let Some(r) = self.registrations.get_mut(&handle) {
            r.state = State::Requesting(Requesting {
                key: key.clone(),
                request: request.clone(),
                attempt,
            });
        }
        self.registration_owners.insert(key.clone(), handle);
        self.with_transactions(now, |t, ctx| t.start_client(ctx, key, request, peer));
    }

    /// A response to a REGISTER (§10.2.4 – §10.2.8).
    pub(crate) fn on_register_response(
        &mut self,
        now: Instant,
        handle: RegistrationHandle,
        response: Response,
    ) {
        let status = response.status;
        if status < 200 {
            return;
        }
        let Some(r) = self.registrations.get_mut(&handle) else {
            return;
        };
        let State::Requesting(req) = &r.state else {
            return;
        };
        let (mut request, attempt, asked) = (req.request.clone(), req.attempt, r.expires);
        if attempt.unregister {
            if matches!(status, 401 | 407)
                && self.retry_authorized(now, handle, &mut request, &response, attempt)
            {
                return;
            }
            self.registrations.remove(&handle);
            self.events.push_back(Event::Unregistered {
                registration: handle,
            });
            return;
        }
        match status {
            200..=299 => {
                let granted = self.granted_expires(handle, &response);
                self.on_registered(now, handle, granted);
            }
            401 | 407 => {
                if !self.retry_authorized(now, handle, &mut request, &response, attempt) {
                    self.registration_failed(now, handle, status, None);
                }
            }
            // §10.2.8: the interval was too brief; ask again with Min-Expires.
            423 => {
                let min = response.headers.min_expires().ok().flatten();
                let raised = match min {
                    Some(min) if min > asked && attempt.interval < 2 => Some(min),
                    _ => None,
                };
                if let Some(min) = raised {
                    if let Some(r) = self.registrations.get_mut(&handle) {
                        r.expires = min;
                    }
                    // A new request: it may be challenged afresh.
                    let next = Attempt {
                        interval: attempt.interval + 1,
                        auth: 0,
                        ..attempt
                    };
                    self.send_register(now, handle, next);
                } else {
                    self.registration_failed(now, handle, status, None);
                }
            }
            _ => {
                let retry_after = response.headers.retry_after().ok().flatten();
                self.registration_failed(now, handle, status, retry_after);
            }
        }
    }

    /// Resends `request` with credentials and CSeq+1; false when the
    /// challenge cannot be answered again (§22.2: once per request, again
    /// only when the nonce was stale, RFC 7616 §3.3).
    fn retry_authorized(
        &mut self,
        now: Instant,
        handle: RegistrationHandle,
        request: &mut Request,
        response: &Response,
        attempt: Attempt,
    ) -> bool {
        if attempt.auth >= 2 {
            return false;
        }
        let Some(credentials) = self
            .registrations
            .get(&handle)
            .and_then(|r| r.credentials.clone())
        else {
            return false;
        };
        let Some(stale) = self.authorize(request, response, &credentials) else {
            return false;
        };
        if attempt.auth == 1 && !stale {
            return false;
        }
        let Some(r) = self.registrations.get_mut(&handle) else {
            return false;
        };
        r.cseq = r.cseq.wrapping_add(1) & 0x7fff_ffff;
        request.headers.set("CSeq", format!("{} REGISTER", r.cseq));
        let next = Attempt {
            auth: attempt.auth + 1,
            ..attempt
        };
        self.start_register(now, handle, request.clone(), next);
        true
    }

    /// §10.2.4: the lifetime is our Contact's `expires` in the 2xx, else
    /// the Expires header, else what we asked for.
    fn granted_expires(&self, handle: RegistrationHandle, response: &Response) -> u32 {
        let Some(r) = self.registrations.get(&handle) else {
            return 0;
        };
        let ours = self.contact_for(r.peer.transport, &r.registrar);
        let ours = ours
            .value_str()
            .and_then(|v| sip_message::NameAddr::parse(v).ok())
            .map(|a| a.uri);
        let contacts = response.headers.contacts().unwrap_or_default();
        let mine = contacts.iter().find_map(|c| match c {
            Contact::Address(a) if ours.as_ref().is_some_and(|o| same_binding(o, &a.uri)) => {
                c.expires().and_then(Result::ok)
            }
            _ => None,
        });
        mine.or_else(|| response.headers.expires().ok().flatten())
            .unwrap_or(r.expires)
    }

    fn on_registered(&mut self, now: Instant, handle: RegistrationHandle, granted: u32) {
        if granted == 0 {
            // A 2xx that bound nothing: treat as a failure and retry.
            self.registration_failed(now, handle, 500, None);
            return;
        }
        // Refresh at 50–80 % of the lifetime, spread by the seeded RNG so
        // a rack of boxes does not refresh in lockstep.
        let fraction = 0.5 + 0.3 * self.rng.unit();
        let refresh_in = Duration::from_secs(u64::from(granted))
            .mul_f64(fraction)
            .max(Duration::from_secs(1));
        let Some(r) = self.registrations.get_mut(&handle) else {
            return;
        };
        r.failures = 0;
        r.failed = 0;
        r.state = State::Registered {
            refresh_at: now + refresh_in,
        };
        self.events.push_back(Event::Registered {
            registration: handle,
            expires: granted,
        });
    }

    /// Backs off exponentially from `retry_base` up to `retry_max`, or for
    /// the registrar's Retry-After (§20.33) when it gave one.
    pub(crate) fn registration_failed(
        &mut self,
        now: Instant,
        handle: RegistrationHandle,
        status: u16,
        retry_after: Option<u32>,
    ) {
        let config = self.config.registration;
        let Some(r) = self.registrations.get_mut(&handle) else {
            return;
        };
        let unregister = matches!(&r.state, State::Requesting(req) if req.attempt.unregister);
        // RFC 3263 §4.3: a timeout, transport error or 503 moves on to the
        // next destination at once, with a new transaction.
        if matches!(status, 408 | 503) && r.failed + 1 < r.destinations.len() {
            r.failed += 1;
            let next = r
                .destinations
                .iter()
                .position(|d| *d == r.peer)
                .map_or(0, |i| (i + 1) % r.destinations.len());
            r.peer = r.destinations[next];
            let attempt = Attempt {
                unregister,
                ..Attempt::default()
            };
            return self.send_register(now, handle, attempt);
        }
        r.failed = 0;
        r.peer = r.destinations[0]; // the next round starts with the best again
        if unregister {
            self.registrations.remove(&handle);
            self.events.push_back(Event::Unregistered {
                registration: handle,
            });
            return;
        }
        let doubling = 2u32.saturating_pow(r.failures.min(20));
        r.failures = r.failures.saturating_add(1);
        let retry_in = match retry_after {
            Some(seconds) => Duration::from_secs(u64::from(seconds)),
            None => config.retry_base.saturating_mul(doubling),
        }
        .min(config.retry_max)
        .max(Duration::from_secs(1));
        r.state = State::BackingOff {
            retry_at: now + retry_in,
        };
        self.events.push_back(Event::RegistrationFailed {
            registration: handle,
            status,
            retry_in,
        });
    }

    /// Refreshes and retries that are due.
    pub(crate) fn registration_timeouts(&mut self, now: Instant) {
        let due: Vec<RegistrationHandle> = self
            .registrations
            .iter()
            .filter(|(_, r)| r.next_timeout().is_some_and(|t| t <= now))
            .map(|(h, _)| *h)
            .collect();
        for handle in due {
            self.send_register(now, handle, Attempt::default());
        }
    }

    /// A client transaction of a registration failed without a response
    /// (Timer F: 408; transport error: 503, §8.1.3.1).
    pub(crate) fn on_register_failure(
        &mut self,
        now: Instant,
        handle: RegistrationHandle,
        status: u16,
    ) {
        self.registration_failed(now, handle, status, None);
    }
}

/// §10.3 step 7 compares Contact URIs; registrars rewrite parameters, so
/// user, host and port decide.
fn same_binding(ours: &Uri, theirs: &Uri) -> bool {
    match (ours.as_sip(), theirs.as_sip()) {
        (Some(a), Some(b)) => a.user == b.user && a.host == b.host && a.port == b.port,
        _ => false,
    }
}
