//! RFC 3261 §17 transactions: four state machines, their keys, and the
//! table that matches messages to them (§17.1.3, §17.2.3).
//!
//! A transaction owns retransmission and its timers; it hands responses (or
//! requests) up to the transaction user through [`TuEvent`]s in an
//! [`Outbox`] and never sees a dialog.

pub(crate) mod invite_client;
pub(crate) mod invite_server;
pub(crate) mod non_invite_client;
pub(crate) mod non_invite_server;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use sip_message::{Message, Method, Request, Response, Via};

use crate::timer::TimerConfig;
use crate::transport::{Transmit, TransportKind};

pub(crate) use invite_client::InviteClient;
pub(crate) use invite_server::InviteServer;
pub(crate) use non_invite_client::NonInviteClient;
pub(crate) use non_invite_server::NonInviteServer;

/// §17.1.3: a response matches a client transaction by the top Via branch
/// and the CSeq method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    pub branch: String,
    pub method: Method,
}

impl ClientKey {
    pub(crate) fn of_response(response: &Response) -> Option<ClientKey> {
        let via = response.headers.top_via().ok()?;
        let cseq = response.headers.cseq().ok()?;
        Some(ClientKey {
            branch: via.branch?.as_str().to_owned(),
            method: cseq.method,
        })
    }
}

/// §17.2.3: a request matches a server transaction by the top Via branch,
/// sent-by and method, where ACK matches INVITE. Requests from RFC 2543
/// peers (no magic cookie) are keyed by what §17.2.3 lists for them, less
/// the Request-URI and To tag: Call-ID, From tag, CSeq number and Via.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ServerKey {
    pub branch: String,
    pub sent_by: String,
    pub method: Method,
}

impl ServerKey {
    pub(crate) fn of_request(request: &Request) -> Option<ServerKey> {
        let via = request.headers.top_via().ok()?;
        let method = match request.method {
            Method::Ack => Method::Invite,
            ref m => m.clone(),
        };
        ServerKey::with_method(request, &via, method)
    }

    /// The key of the INVITE a CANCEL targets (§9.2: same branch and sent-by).
    pub(crate) fn cancelled_invite(cancel: &Request) -> Option<ServerKey> {
        let via = cancel.headers.top_via().ok()?;
        ServerKey::with_method(cancel, &via, Method::Invite)
    }

    fn with_method(request: &Request, via: &Via, method: Method) -> Option<ServerKey> {
        let sent_by = match via.port {
            Some(p) => format!("{}:{p}", via.host),
            None => via.host.to_string(),
        };
        let branch = match &via.branch {
            Some(b) if b.is_rfc3261() => b.as_str().to_owned(),
            _ => {
                let h = &request.headers;
                let tag = h.from().ok().and_then(|f| f.tag());
                format!(
                    "rfc2543:{}:{}:{}",
                    h.call_id().ok()?,
                    tag.map(|t| t.to_string()).unwrap_or_default(),
                    h.cseq().ok()?.seq
                )
            }
        };
        Some(ServerKey {
            branch,
            sent_by,
            method,
        })
    }
}

/// What a transaction tells its user (RFC 3261 §17: "passed up to the TU").
#[derive(Debug)]
pub(crate) enum TuEvent {
    /// A response for a client transaction (1xx, 2xx, or the first final).
    Response { key: ClientKey, response: Response },
    /// Timer B or F fired: the TU treats it as 408 (§8.1.3.1).
    Timeout { key: ClientKey },
    /// The driver reported the destination unreachable (§17.1.4, §8.1.3.1: 503).
    TransportError { key: ClientKey },
    /// Timer H fired without an ACK (§17.2.1).
    NoAck,
}

/// Output of the transaction layer for one input.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub transmits: VecDeque<Transmit>,
    pub tu: VecDeque<TuEvent>,
    /// Retransmissions sent (requests and responses), for stats.
    pub retransmissions: u64,
}

/// Inputs every handler needs.
pub(crate) struct Ctx<'a> {
    pub now: Instant,
    pub timers: &'a TimerConfig,
    pub out: &'a mut Outbox,
}

/// Where a transaction's messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub transport: TransportKind,
    pub address: SocketAddr,
}

impl Ctx<'_> {
    pub(crate) fn send(&mut self, peer: Peer, bytes: Vec<u8>) {
        self.out.transmits.push_back(Transmit {
            transport: peer.transport,
            destination: peer.address,
            bytes,
        });
    }
}

pub(crate) enum Client {
    Invite(InviteClient),
    NonInvite(NonInviteClient),
}

pub(crate) enum Server {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

/// Why the TU could not respond through a server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RespondError {
    /// No such transaction (terminated, or never existed).
    Gone,
    /// A final response was already sent.
    AlreadyFinal,
}

/// Every live transaction, by key.
#[derive(Default)]
pub(crate) struct Transactions {
    clients: HashMap<ClientKey, Client>,
    servers: HashMap<ServerKey, Server>,
}

impl Transactions {
    /// Starts a client transaction for `request`; the key is its branch and method.
    pub(crate) fn start_client(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: ClientKey,
        request: Request,
        peer: Peer,
    ) {
        let client = if request.method == Method::Invite {
            Client::Invite(InviteClient::start(ctx, request, peer))
        } else {
            Client::NonInvite(NonInviteClient::start(ctx, key.clone(), request, peer))
        };
        self.clients.insert(key, client);
    }

    /// Feeds a response to its client transaction; false if none matched
    /// (a stray response, §18.1.2, which the core may still use).
    pub(crate) fn client_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &ClientKey,
        response: Response,
    ) -> bool {
        let Some(client) = self.clients.get_mut(key) else {
            return false;
        };
        match client {
            Client::Invite(t) => t.on_response(ctx, key, response),
            Client::NonInvite(t) => t.on_response(ctx, response),
        }
        self.reap_client(key);
        true
    }

    /// Whether the INVITE server transaction at `key` has not yet sent a final response.
    pub(crate) fn invite_server_pending(&self, key: &ServerKey) -> bool {
        matches!(self.servers.get(key), Some(Server::Invite(t)) if t.is_proceeding())
    }

    /// Feeds a retransmitted request (or an ACK) to its server
    /// transaction; false if none matched.
    pub(crate) fn server_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &ServerKey,
        request: &Request,
    ) -> bool {
        let Some(server) = self.servers.get_mut(key) else {
            return false;
        };
        match server {
            Server::Invite(t) => t.on_request(ctx, request),
            Server::NonInvite(t) => t.on_request(ctx),
        }
        self.reap_server(key);
        true
    }

    /// Creates the server transaction for a new request (not ACK).
    pub(crate) fn start_server(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: ServerKey,
        request: &Request,
        peer: Peer,
    ) {
        let server = if request.method == Method::Invite {
            Server::Invite(InviteServer::start(ctx, key.clone(), peer, request))
        } else {
            Server::NonInvite(NonInviteServer::start(peer))
        };
        self.servers.insert(key, server);
    }

    /// The TU sends a response through the server transaction.
    pub(crate) fn respond(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &ServerKey,
        response: Response,
    ) -> Result<(), RespondError> {
        let server = self.servers.get_mut(key).ok_or(RespondError::Gone)?;
        let result = match server {
            Server::Invite(t) => t.respond(ctx, response),
            Server::NonInvite(t) => t.respond(ctx, response),
        };
        self.reap_server(key);
        result
    }

    /// Sends `response` once and forgets the server transaction: no retransmission, no state.
    /// For refusing a source we do not talk to, whose address may be forged (a retransmitted
    /// 403 would reflect traffic at the victim; its ACK or retransmitted request finds nothing).
    /// `None`: nothing is sent (a flood past its rate).
    pub(crate) fn respond_once(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &ServerKey,
        response: Option<Response>,
    ) {
        if let (Some(server), Some(response)) = (self.servers.remove(key), response) {
            ctx.send(server.peer(), Message::Response(response).to_bytes());
        }
    }

    /// The driver could not reach `peer`: every transaction sending there ends (§17.1.4, §17.2.4).
    pub(crate) fn transport_error(&mut self, ctx: &mut Ctx<'_>, peer: Peer) {
        let failed: Vec<ClientKey> = self
            .clients
            .iter()
            .filter(|(_, c)| c.peer() == peer)
            .map(|(k, _)| k.clone())
            .collect();
        for key in failed {
            self.clients.remove(&key);
            ctx.out.tu.push_back(TuEvent::TransportError { key });
        }
        self.servers.retain(|_, s| s.peer() != peer);
    }

    /// Fires every timer due at `ctx.now`.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let due: Vec<ClientKey> = self
            .clients
            .iter()
            .filter(|(_, c)| c.next_timeout().is_some_and(|t| t <= ctx.now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(client) = self.clients.get_mut(&key) {
                match client {
                    Client::Invite(t) => t.on_timeout(ctx, &key),
                    Client::NonInvite(t) => t.on_timeout(ctx),
                }
            }
            self.reap_client(&key);
        }
        let due: Vec<ServerKey> = self
            .servers
            .iter()
            .filter(|(_, s)| s.next_timeout().is_some_and(|t| t <= ctx.now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(server) = self.servers.get_mut(&key) {
                match server {
                    Server::Invite(t) => t.on_timeout(ctx),
                    Server::NonInvite(t) => t.on_timeout(ctx),
                }
            }
            self.reap_server(&key);
        }
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        let clients = self.clients.values().filter_map(Client::next_timeout);
        let servers = self.servers.values().filter_map(Server::next_timeout);
        clients.chain(servers).min()
    }

    pub(crate) fn len(&self) -> (usize, usize) {
        (self.clients.len(), self.servers.len())
    }

    fn reap_client(&mut self, key: &ClientKey) {
        if self.clients.get(key).is_some_and(Client::is_terminated) {
            self.clients.remove(key);
        }
    }

    fn reap_server(&mut self, key: &ServerKey) {
        if self.servers.get(key).is_some_and(Server::is_terminated) {
            self.servers.remove(key);
        }
    }
}

impl Client {
    fn next_timeout(&self) -> Option<Instant> {
        match self {
            Client::Invite(t) => t.next_timeout(),
            Client::NonInvite(t) => t.next_timeout(),
        }
    }
    fn is_terminated(&self) -> bool {
        match self {
            Client::Invite(t) => t.is_terminated(),
            Client::NonInvite(t) => t.is_terminated(),
        }
    }
    fn peer(&self) -> Peer {
        match self {
            Client::Invite(t) => t.peer(),
            Client::NonInvite(t) => t.peer(),
        }
    }
}

impl Server {
    fn next_timeout(&self) -> Option<Instant> {
        match self {
            Server::Invite(t) => t.next_timeout(),
            Server::NonInvite(t) => t.next_timeout(),
        }
    }
    fn is_terminated(&self) -> bool {
        match self {
            Server::Invite(t) => t.is_terminated(),
            Server::NonInvite(t) => t.is_terminated(),
        }
    }
    fn peer(&self) -> Peer {
        match self {
            Server::Invite(t) => t.peer(),
            Server::NonInvite(t) => t.peer(),
        }
    }
}
