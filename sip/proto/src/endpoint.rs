//! The endpoint: the five verbs, inbound routing to transactions and the
//! UA, and the helpers that compose our messages.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use sip_message::{Header, Headers, Message, Method, Request, Response, Rport, Uri, Via};

use crate::authenticator::Nonces;
use crate::call::{CallState, Purpose};
use crate::config::Config;
use crate::dialog::DialogId;
use crate::error::Error;
use crate::event::Event;
use crate::keepalive::Keepalive;
use crate::registration::Registration;
use crate::rng::IdRng;
use crate::transaction::{ClientKey, Ctx, Outbox, Peer, ServerKey, Transactions};
use crate::transport::{Transmit, TransportKind};
use crate::{CallHandle, KeepaliveHandle, RegistrationHandle};

/// Methods we accept (RFC 3261 §20.5 Allow).
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY";

/// Counters for what the endpoint dropped or repeated; exported by the
/// appliance as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams that did not parse, or failed validation with no way to answer.
    pub malformed_dropped: u64,
    /// Requests that failed validation and were answered 4xx/5xx.
    pub malformed_answered: u64,
    /// Requests answered 401 (trunk mode: no or stale credentials).
    pub auth_challenged: u64,
    /// Requests answered 403 (trunk mode: wrong credentials).
    pub auth_rejected: u64,
    /// Responses matching no transaction and no dialog (§18.1.2).
    pub stray_responses: u64,
    /// ACKs matching nothing.
    pub stray_acks: u64,
    /// Requests and responses sent again (transaction and 2xx retransmissions).
    pub retransmissions: u64,
}

/// A sans-IO SIP user agent: transactions, dialogs and calls. See the
/// crate documentation for the contract and a run loop.
pub struct Endpoint {
    pub(crate) config: Config,
    pub(crate) rng: IdRng,
    pub(crate) now: Option<Instant>,
    pub(crate) transactions: Transactions,
    pub(crate) outbox: Outbox,
    pub(crate) events: VecDeque<Event>,
    pub(crate) calls: HashMap<CallHandle, CallState>,
    pub(crate) dialogs: HashMap<DialogId, CallHandle>,
    /// Which call and purpose each client transaction serves.
    pub(crate) client_owners: HashMap<ClientKey, (CallHandle, Purpose)>,
    /// Initial INVITE server transactions, to find the call a CANCEL targets.
    pub(crate) incoming_invites: HashMap<ServerKey, CallHandle>,
    pub(crate) next_call: u64,
    pub(crate) registrations: HashMap<RegistrationHandle, Registration>,
    /// Which registration each REGISTER client transaction serves.
    pub(crate) registration_owners: HashMap<ClientKey, RegistrationHandle>,
    pub(crate) next_registration: u64,
    /// OPTIONS keep-alives to trunks.
    pub(crate) keepalives: HashMap<KeepaliveHandle, Keepalive>,
    /// Which keep-alive each OPTIONS client transaction serves.
    pub(crate) keepalive_owners: HashMap<ClientKey, KeepaliveHandle>,
    pub(crate) next_keepalive: u64,
    /// In-dialog requests (BYE, REFER) that may be answered 401/407 and
    /// resent once with credentials (§22.2), with their owner.
    pub(crate) challengeable: HashMap<ClientKey, Challengeable>,
    /// Nonces we issued in 401s (trunk mode).
    pub(crate) nonces: Nonces,
    pub(crate) stats: Stats,
}

/// An in-dialog request kept until its final response, for §22.2, with the
/// credentials that may answer a challenge to it.
pub(crate) struct Challengeable {
    pub request: Request,
    pub peer: Peer,
    pub owner: Option<(CallHandle, Purpose)>,
    pub credentials: crate::digest::Credentials,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("calls", &self.calls.len())
            .field("transactions", &self.transactions.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Endpoint {
    /// A new endpoint. `seed` drives every tag, branch, Call-ID and cnonce.
    pub fn new(config: Config, seed: u64) -> Endpoint {
        Endpoint {
            config,
            rng: IdRng::new(seed),
            now: None,
            transactions: Transactions::default(),
            outbox: Outbox::default(),
            events: VecDeque::new(),
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            client_owners: HashMap::new(),
            incoming_invites: HashMap::new(),
            next_call: 1,
            registrations: HashMap::new(),
            registration_owners: HashMap::new(),
            next_registration: 1,
            keepalives: HashMap::new(),
            keepalive_owners: HashMap::new(),
            next_keepalive: 1,
            challengeable: HashMap::new(),
            nonces: Nonces::default(),
            stats: Stats::default(),
        }
    }

    /// Input from the network: one UDP datagram, or one message framed off
    /// a TCP/TLS stream with [`sip_message::frame_stream`]. `from` is the
    /// peer's address (the source of the datagram, the remote end of the
    /// connection).
    ///
    /// A malformed request is answered with the status and a reason phrase
    /// naming the problem ([`sip_message::ParseError::status`]) when a
    /// response can be formed, otherwise dropped and counted; either way an
    /// [`Error::Malformed`] says what happened. Never panics.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        transport: TransportKind,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Result<(), Error> {
        let now = self.advance(now);
        // RFC 5626 §3.5.1 keep-alives and stray line ends.
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let message = match Message::parse_with(bytes, &self.config.limits) {
            Ok(m) => m,
            Err(error) => {
                self.stats.malformed_dropped += 1;
                return Err(Error::Malformed {
                    from,
                    error,
                    answered: false,
                });
            }
        };
        if let Err(error) = message.validate() {
            let answered = match &message {
                Message::Request(r) if r.method != Method::Ack && r.can_respond() => {
                    let (status, reason) = error.status();
                    let mut request = r.clone();
                    let peer = self.fix_via(&mut request, transport, from);
                    let response = self.response(&request, status, &reason, None);
                    self.outbox.transmits.push_back(Transmit {
                        transport: peer.transport,
                        destination: peer.address,
                        bytes: Message::Response(response).to_bytes(),
                    });
                    true
                }
                _ => false,
            };
            if answered {
                self.stats.malformed_answered += 1;
            } else {
                self.stats.malformed_dropped += 1;
            }
            return Err(Error::Malformed {
                from,
                error,
                answered,
            });
        }
        match message {
            Message::Request(request) => self.on_request(now, transport, from, request),
            Message::Response(response) => self.on_response(now, response),
        }
        self.dispatch(now);
        Ok(())
    }

    /// Input from the clock: fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        self.with_transactions(now, |t, ctx| t.handle_timeout(ctx));
        self.dispatch(now);
        self.call_timeouts(now);
        self.dispatch(now);
        self.registration_timeouts(now);
        self.dispatch(now);
        self.keepalive_timeouts(now);
        self.dispatch(now);
    }

    /// The driver could not send to `destination` (ICMP unreachable, TCP
    /// connect refused or reset): transactions to it fail as RFC 3261
    /// §17.1.4 and §8.1.3.1 say (503 to the TU).
    pub fn handle_transport_error(
        &mut self,
        now: Instant,
        transport: TransportKind,
        destination: SocketAddr,
    ) {
        let now = self.advance(now);
        let peer = Peer {
            transport,
            address: destination,
        };
        self.with_transactions(now, |t, ctx| t.transport_error(ctx, peer));
        self.dispatch(now);
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let transmit = self.outbox.transmits.pop_front();
        self.stats.retransmissions += std::mem::take(&mut self.outbox.retransmissions);
        transmit
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Endpoint::handle_timeout`] next; `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().filter_map(CallState::next_timeout);
        let registrations = self
            .registrations
            .values()
            .filter_map(Registration::next_timeout);
        let keepalives = self.keepalives.values().filter_map(Keepalive::next_timeout);
        calls
            .chain(registrations)
            .chain(keepalives)
            .chain(self.transactions.next_timeout())
            .min()
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.stats;
        stats.retransmissions += self.outbox.retransmissions;
        stats
    }

    /// Calls alive, for admission control.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// (client, server) transactions alive.
    pub fn transaction_count(&self) -> (usize, usize) {
        self.transactions.len()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

// Internals: routing and composition.
impl Endpoint {
    /// Time never runs backwards inside the endpoint, whatever the caller passes.
    fn advance(&mut self, now: Instant) -> Instant {
        let now = match self.now {
            Some(prev) if prev > now => prev,
            _ => now,
        };
        self.now = Some(now);
        now
    }

    pub(crate) fn with_transactions<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut Transactions, &mut Ctx<'_>) -> R,
    ) -> R {
        let mut ctx = Ctx {
            now,
            timers: &self.config.timers,
            out: &mut self.outbox,
        };
        f(&mut self.transactions, &mut ctx)
    }

    fn on_request(
        &mut self,
        now: Instant,
        transport: TransportKind,
        from: SocketAddr,
        mut request: Request,
    ) {
        let peer = self.fix_via(&mut request, transport, from);
        let Some(key) = ServerKey::of_request(&request) else {
            return;
        };
        let matched = self.with_transactions(now, |t, ctx| t.server_request(ctx, &key, &request));
        if matched {
            return;
        }
        if request.method == Method::Ack {
            // §17.2.3: an ACK for a 2xx has its own branch; the dialog takes it.
            self.on_ack(now, &request);
            return;
        }
        self.with_transactions(now, |t, ctx| {
            t.start_server(ctx, key.clone(), &request, peer)
        });
        self.on_new_request(now, key, request, peer, from);
    }

    fn on_response(&mut self, now: Instant, response: Response) {
        let Some(key) = ClientKey::of_response(&response) else {
            self.stats.stray_responses += 1;
            return;
        };
        let stray =
            !self.with_transactions(now, |t, ctx| t.client_response(ctx, &key, response.clone()));
        if stray && !self.on_stray_response(&response) {
            self.stats.stray_responses += 1;
        }
    }

    /// Hands transaction outcomes to the UA until none are left.
    fn dispatch(&mut self, now: Instant) {
        while let Some(event) = self.outbox.tu.pop_front() {
            self.on_tu_event(now, event);
        }
    }

    /// RFC 3261 §18.2.1 and RFC 3581 §4: note where the request came from
    /// in its top Via (`received`, `rport`), and decide where responses go.
    pub(crate) fn fix_via(
        &self,
        request: &mut Request,
        transport: TransportKind,
        from: SocketAddr,
    ) -> Peer {
        let source = Peer {
            transport,
            address: from,
        };
        let Ok(mut via) = request.headers.top_via() else {
            return source;
        };
        let sent_by_ip: Option<IpAddr> = match &via.host {
            sip_message::Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            sip_message::Host::Ipv6(a) => Some(IpAddr::V6(*a)),
            sip_message::Host::Domain(_) => None,
        };
        let rport = via.rport.is_some();
        let add_received = rport || sent_by_ip != Some(from.ip());
        via.params.0.retain(|p| {
            !(p.name.eq_ignore_ascii_case("received")
                || (rport && p.name.eq_ignore_ascii_case("rport")))
        });
        if add_received {
            via.params.push("received", Some(from.ip().to_string()));
        }
        if rport {
            via.params.push("rport", Some(from.port().to_string()));
            via.rport = Some(Rport::Port(from.port()));
        }
        replace_top_via(&mut request.headers, &via);
        if transport.is_reliable() || rport {
            // §18.2.2: reliable → the connection it came on; RFC 3581 §4:
            // rport → the source address and port.
            return source;
        }
        // §18.2.2: the `received` address (the source IP) and sent-by port.
        let port = via.port.unwrap_or(5060);
        Peer {
            transport,
            address: SocketAddr::new(from.ip(), port),
        }
    }

    /// A response to `request` with our Server header (§8.2.6).
    /// §8.2.6.2: every response but 100 carries a To tag; one is made up
    /// when the request had none and the caller gave none.
    pub(crate) fn response(
        &mut self,
        request: &Request,
        status: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Response {
        let tag = match to_tag.and_then(sip_message::Tag::new) {
            Some(tag) => Some(tag),
            None if status > 100 => Some(self.rng.tag()),
            None => None,
        };
        let mut response = request.response(status, reason, tag.as_ref());
        if let Some(ua) = &self.config.user_agent {
            response.headers.push(Header::new("Server", ua.clone()));
        }
        response
    }

    /// A Via for a new client transaction, and the transaction key.
    pub(crate) fn new_via(
        &mut self,
        transport: TransportKind,
        method: &Method,
    ) -> (Header, ClientKey) {
        let branch = self.rng.branch();
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            transport.via_token(),
            self.config.advertised_addr_for(transport)
        );
        let method = match method {
            Method::Ack => Method::Invite,
            m => m.clone(),
        };
        let key = ClientKey {
            branch: branch.to_string(),
            method,
        };
        (Header::new("Via", via), key)
    }

    /// Our Contact in a request to `uri`: RFC 3261 §8.1.1.8, a SIPS
    /// Request-URI needs a SIPS Contact (RFC 5630 §3.1.3: and then no
    /// `transport=tls`, which `sips:` implies).
    pub(crate) fn contact_for(&self, transport: TransportKind, uri: &Uri) -> Header {
        if !uri.as_sip().is_some_and(|s| s.secure) {
            return self.contact(transport);
        }
        Header::new(
            "Contact",
            format!(
                "<sips:{}@{}>",
                self.config.contact_user,
                self.config.advertised_addr_for(TransportKind::Tls)
            ),
        )
    }

    /// Our Contact (RFC 3261 §8.1.1.8).
    pub(crate) fn contact(&self, transport: TransportKind) -> Header {
        let param = match transport {
            TransportKind::Udp => "",
            TransportKind::Tcp => ";transport=tcp",
            TransportKind::Tls => ";transport=tls",
        };
        Header::new(
            "Contact",
            format!(
                "<sip:{}@{}{param}>",
                self.config.contact_user,
                self.config.advertised_addr_for(transport)
            ),
        )
    }

    /// Where a request for `uri` goes: the outbound proxy, or the URI's
    /// host when it is an IP literal (the core does no DNS).
    pub(crate) fn route_to(&self, uri: &Uri) -> Result<Peer, Error> {
        let unroutable = || Error::Unroutable {
            uri: uri.to_string(),
        };
        let sip = uri.as_sip().ok_or_else(unroutable)?;
        let transport = self.route_transport(uri);
        if let Some(proxy) = self.config.outbound_proxy {
            return Ok(Peer {
                transport,
                address: proxy,
            });
        }
        let ip = match &sip.host {
            sip_message::Host::Ipv4(a) => IpAddr::V4(*a),
            sip_message::Host::Ipv6(a) => IpAddr::V6(*a),
            sip_message::Host::Domain(_) => return Err(unroutable()),
        };
        let default_port = if transport == TransportKind::Tls {
            5061
        } else {
            5060
        };
        Ok(Peer {
            transport,
            address: SocketAddr::new(ip, sip.port.unwrap_or(default_port)),
        })
    }

    /// Where requests to `trunk` for `uri` may go, best first: its
    /// destinations, else where `uri` routes. Never empty.
    pub(crate) fn trunk_peers(&self, trunk: &crate::Trunk, uri: &Uri) -> Result<Vec<Peer>, Error> {
        if trunk.destinations.is_empty() {
            return Ok(vec![self.route_to(uri)?]);
        }
        Ok(trunk.destinations.iter().map(|d| Peer::from(*d)).collect())
    }

    /// The transport `uri` asks for (§19.1.1 `transport`, `sips:`), else the default.
    pub(crate) fn route_transport(&self, uri: &Uri) -> TransportKind {
        let Some(sip) = uri.as_sip() else {
            return self.config.default_transport;
        };
        match sip.params.get("transport").flatten() {
            Some(t) if t.eq_ignore_ascii_case("tcp") => TransportKind::Tcp,
            Some(t) if t.eq_ignore_ascii_case("tls") => TransportKind::Tls,
            Some(t) if t.eq_ignore_ascii_case("udp") => TransportKind::Udp,
            _ if sip.secure => TransportKind::Tls,
            _ => self.config.default_transport,
        }
    }

    /// Where to send to `uri` directly: its host when an IP literal.
    pub(crate) fn route_to_direct(&self, uri: &Uri) -> Option<Peer> {
        let sip = uri.as_sip()?;
        if matches!(sip.host, sip_message::Host::Domain(_)) {
            return None;
        }
        let mut peer = self.route_to(uri).ok()?;
        if self.config.outbound_proxy.is_some() {
            let ip = match sip.host {
                sip_message::Host::Ipv4(a) => IpAddr::V4(a),
                sip_message::Host::Ipv6(a) => IpAddr::V6(a),
                sip_message::Host::Domain(_) => return None,
            };
            let default_port = if peer.transport == TransportKind::Tls {
                5061
            } else {
                5060
            };
            peer.address = SocketAddr::new(ip, sip.port.unwrap_or(default_port));
        }
        Some(peer)
    }

    /// §12.2.1.1: in-dialog requests go to the first route, else the remote
    /// target; when neither is an IP literal, or it names an address the peer
    /// may not aim us at ([`may_aim_at`]), to `fallback` (where the peer's
    /// messages came from).
    pub(crate) fn dialog_peer(&self, route_set: &[String], target: &Uri, fallback: Peer) -> Peer {
        let first_route = route_set
            .first()
            .and_then(|r| sip_message::NameAddr::parse(r).ok())
            .map(|a| a.uri);
        first_route
            .as_ref()
            .map_or_else(|| self.route_to_direct(target), |r| self.route_to_direct(r))
            .filter(|p| may_aim_at(p.address.ip(), fallback.address.ip()))
            .unwrap_or(fallback)
    }

    /// Starts a client transaction owned by `call`.
    pub(crate) fn start_client(
        &mut self,
        now: Instant,
        key: ClientKey,
        request: Request,
        peer: Peer,
        owner: Option<(CallHandle, Purpose)>,
    ) {
        if let Some(owner) = owner {
            self.client_owners.insert(key.clone(), owner);
        }
        self.with_transactions(now, |t, ctx| t.start_client(ctx, key, request, peer));
    }

    /// Sends through the server transaction `key`; a transaction already
    /// gone (timed out, transport error) is not an error for the UA.
    pub(crate) fn respond(&mut self, now: Instant, key: &ServerKey, response: Response) {
        let _ = self.with_transactions(now, |t, ctx| t.respond(ctx, key, response));
    }

    /// Sends `response` once and drops its server transaction (see `Transactions::respond_once`).
    pub(crate) fn respond_once(
        &mut self,
        now: Instant,
        key: &ServerKey,
        response: Option<Response>,
    ) {
        self.with_transactions(now, |t, ctx| t.respond_once(ctx, key, response));
    }

    /// Sends outside any transaction (ACK for 2xx, 2xx retransmissions).
    pub(crate) fn send_direct(&mut self, peer: Peer, bytes: Vec<u8>) {
        self.outbox.transmits.push_back(Transmit {
            transport: peer.transport,
            destination: peer.address,
            bytes,
        });
    }

    pub(crate) fn new_call_handle(&mut self) -> CallHandle {
        let handle = CallHandle(self.next_call);
        self.next_call += 1;
        handle
    }

    /// Forgets a call and everything that points at it.
    pub(crate) fn remove_call(&mut self, call: CallHandle) {
        if let Some(state) = self.calls.remove(&call) {
            if let Some(dialog) = state.dialog() {
                self.dialogs.remove(&dialog.id());
            }
        }
        self.incoming_invites.retain(|_, c| *c != call);
        // Client transactions still running (a BYE) finish on their own;
        // their outcomes find no owner and are dropped.
        self.client_owners.retain(|_, (c, _)| *c != call);
    }
}

/// Rewrites the first Via value, keeping the rest in order.
fn replace_top_via(headers: &mut Headers, via: &Via) {
    let mut rebuilt = Headers::new();
    let mut done = false;
    for header in headers.iter() {
        if header.canonical_name() != "Via" {
            rebuilt.push(header.clone());
            continue;
        }
        if done {
            rebuilt.push(header.clone());
            continue;
        }
        done = true;
        rebuilt.push(Header::new(header.name.clone(), via.to_string()));
        // One row may hold several Via values; split it the parser's way.
        let mut row = Headers::new();
        row.push(header.clone());
        let values: Vec<String> = row.values("Via").into_iter().map(str::to_owned).collect();
        for rest in values.into_iter().skip(1) {
            rebuilt.push(Header::new(header.name.clone(), rest));
        }
    }
    *headers = rebuilt;
}

/// Whether a peer signalling from `source` may name `destination` for our
/// in-dialog requests (its Contact or Record-Route): never a multicast,
/// broadcast or unspecified address, and a loopback or link-local one only
/// when the peer is itself there. Otherwise a caller's Contact could aim the
/// box's BYEs and re-INVITEs at services on the box itself or on its segment
/// (the media layer applies the same rule to SDP).
fn may_aim_at(destination: IpAddr, source: IpAddr) -> bool {
    let (destination, source) = (destination.to_canonical(), source.to_canonical());
    let link_local = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    };
    let broadcast = matches!(destination, IpAddr::V4(v4) if v4.is_broadcast());
    if destination.is_unspecified() || destination.is_multicast() || broadcast {
        return false;
    }
    if destination.is_loopback() {
        return source.is_loopback();
    }
    !link_local(destination) || link_local(source)
}
