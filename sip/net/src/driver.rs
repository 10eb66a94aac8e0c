//! The task that owns the endpoint: the run loop of the sans-IO contract.

use crate::now;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use sip_message::Message;
use sip_proto::{CallHandle, Endpoint, Event, Rejection, Transmit, TransportKind};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, info, info_span, trace, warn, Span};

use crate::allow_list::{Refusal, Refusals};
use crate::connection::{self, Connection, Settings, StreamInput};
use crate::handle::{CallOp, Command};
use crate::tls::OutboundTls;
use crate::{AllowList, SipConfig};

pub(crate) struct Driver {
    endpoint: Endpoint,
    udp: UdpSocket,
    listener: TcpListener,
    /// The TLS listener, when TLS is configured with one.
    tls_listener: Option<TcpListener>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<Event>,
    stream_inputs_tx: mpsc::Sender<StreamInput>,
    stream_inputs: mpsc::Receiver<StreamInput>,
    /// TCP and TLS connections, one per transport and peer address, reused
    /// for every message to that peer.
    connections: HashMap<(TransportKind, SocketAddr), Connection>,
    next_connection: u64,
    streams: Settings,
    allow_list: AllowList,
    refusals: Refusals,
    /// [`SipConfig::max_connections_per_source`] and [`SipConfig::max_connections`].
    connection_caps: (usize, usize),
    /// When a connection over the caps was last logged: a flood logs once a minute.
    last_cap_warning: Option<Instant>,
    /// One `call` span per live call, carrying our handle and the Call-ID.
    spans: HashMap<CallHandle, Span>,
    /// Transmits taken from the endpoint early (to read an INVITE's Call-ID).
    pending: VecDeque<Transmit>,
    /// Outbound TLS by destination: the name and roots a trunk's
    /// certificate is checked against.
    tls_peers: HashMap<SocketAddr, OutboundTls>,
}

impl Driver {
    pub(crate) fn new(
        config: SipConfig,
        sockets: Sockets,
        commands: mpsc::Receiver<Command>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Driver {
        let (stream_inputs_tx, stream_inputs) = mpsc::channel(1024);
        let streams = Settings {
            idle: config.tcp_idle_timeout,
            limits: config.endpoint.limits,
            // Well inside Timer B/F (64*T1) so the transaction hears of it.
            connect_timeout: Duration::from_secs(10),
            tls: sockets.tls,
        };
        Driver {
            endpoint: Endpoint::new(config.endpoint, config.seed),
            udp: sockets.udp,
            listener: sockets.tcp,
            tls_listener: sockets.tls_listener,
            commands,
            events,
            stream_inputs_tx,
            stream_inputs,
            connections: HashMap::new(),
            next_connection: 1,
            streams,
            allow_list: config.allow_list,
            refusals: Refusals::default(),
            connection_caps: (config.max_connections_per_source, config.max_connections),
            last_cap_warning: None,
            spans: HashMap::new(),
            pending: VecDeque::new(),
            tls_peers: HashMap::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        let mut buf = vec![0u8; 65_535];
        loop {
            let timeout = self.endpoint.poll_timeout();
            let wake = timeout.map_or_else(
                || tokio::time::Instant::now() + Duration::from_secs(3600),
                tokio::time::Instant::from_std,
            );
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                received = self.udp.recv_from(&mut buf) => match received {
                    Ok((len, from)) => self.input(TransportKind::Udp, from, &buf[..len]),
                    // Linux reports an ICMP port unreachable for an earlier
                    // send as an error on the next receive; the transaction's
                    // own timers cover the loss.
                    Err(error) => debug!(%error, "UDP receive error"),
                },
                Some(input) = self.stream_inputs.recv() => self.stream_input(input),
                accepted = self.listener.accept() => {
                    self.accepted(TransportKind::Tcp, accepted);
                }
                accepted = accept(self.tls_listener.as_ref()) => {
                    self.accepted(TransportKind::Tls, accepted);
                }
                () = tokio::time::sleep_until(wake), if timeout.is_some() => {
                    self.endpoint.handle_timeout(now());
                }
            }
            self.flush().await;
        }
        debug!("SIP driver stopped: every handle was dropped");
    }

    fn input(&mut self, transport: TransportKind, from: SocketAddr, bytes: &[u8]) {
        trace!(%transport, %from, message = %String::from_utf8_lossy(bytes), "SIP in");
        if let Err(error) = self.endpoint.handle_datagram(now(), transport, from, bytes) {
            debug!(%transport, %from, %error, "SIP input refused");
        }
    }

    fn accepted(
        &mut self,
        transport: TransportKind,
        accepted: std::io::Result<(tokio::net::TcpStream, SocketAddr)>,
    ) {
        match accepted {
            Ok((stream, peer)) if !self.room_for_connection(peer) => {
                // Dropping the stream closes it before any byte is read.
                drop(stream);
                let now = now();
                if self
                    .last_cap_warning
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
                {
                    self.last_cap_warning = Some(now);
                    warn!(%peer, %transport, "connection refused: over the connection caps");
                }
            }
            Ok((stream, peer)) => {
                debug!(%peer, %transport, "accepted");
                let id = self.connection_id();
                let connection = connection::spawn_accepted(
                    stream,
                    transport,
                    peer,
                    id,
                    self.streams.clone(),
                    self.stream_inputs_tx.clone(),
                );
                self.connections.insert((transport, peer), connection);
            }
            Err(error) => warn!(%transport, %error, "accept failed"),
        }
    }

    /// Whether a connection from `peer` stays within the caps.
    fn room_for_connection(&self, peer: SocketAddr) -> bool {
        let (per_source, total) = self.connection_caps;
        let from_peer = self
            .connections
            .keys()
            .filter(|(_, a)| a.ip() == peer.ip())
            .count();
        from_peer < per_source && self.connections.len() < total
    }

    fn stream_input(&mut self, input: StreamInput) {
        match input {
            StreamInput::Message {
                transport,
                peer,
                bytes,
            } => self.input(transport, peer, &bytes),
            StreamInput::Closed {
                transport,
                peer,
                id,
            } => {
                self.forget_connection(transport, peer, id);
            }
            StreamInput::Failed {
                transport,
                peer,
                id,
            } => {
                if self.forget_connection(transport, peer, id) {
                    self.endpoint.handle_transport_error(now(), transport, peer);
                }
            }
        }
    }

    /// Removes the connection if it is still the current one for `peer`.
    fn forget_connection(&mut self, transport: TransportKind, peer: SocketAddr, id: u64) -> bool {
        let key = (transport, peer);
        if self.connections.get(&key).is_some_and(|c| c.id == id) {
            self.connections.remove(&key);
            true
        } else {
            false
        }
    }

    fn connection_id(&mut self) -> u64 {
        let id = self.next_connection;
        self.next_connection += 1;
        id
    }

    fn command(&mut self, command: Command) {
        let now = now();
        match command {
            Command::Invite {
                trunk,
                target,
                from,
                offer,
                reply,
            } => {
                let result = self.endpoint.invite_via(now, &trunk, target, from, offer);
                if let Ok(call) = result {
                    while let Some(t) = self.endpoint.poll_transmit() {
                        self.pending.push_back(t);
                    }
                    let call_id = self
                        .pending
                        .iter()
                        .find_map(|t| Message::parse(&t.bytes).ok()?.headers().call_id().ok())
                        .map(|c| c.to_string())
                        .unwrap_or_default();
                    let span = info_span!("call", %call, %call_id);
                    span.in_scope(|| info!("outbound INVITE"));
                    self.spans.insert(call, span);
                }
                let _ = reply.send(result);
            }
            Command::Call { call, op, reply } => {
                let span = self.span(call);
                let _entered = span.enter();
                debug!(command = op.name());
                let name = op.name();
                let e = &mut self.endpoint;
                let result = match op {
                    CallOp::Ringing => e.ringing(now, call),
                    CallOp::Answer(sdp) => e.answer(now, call, sdp),
                    CallOp::Reject(rejection) => e.reject(now, call, rejection),
                    CallOp::Hangup => e.hangup(now, call),
                    CallOp::Reoffer(sdp) => e.reoffer(now, call, sdp),
                    CallOp::AnswerReoffer(sdp) => e.answer_reoffer(now, call, sdp),
                    CallOp::RefuseReoffer => e.refuse_reoffer(now, call),
                    CallOp::Refer(target) => e.refer(now, call, target),
                    CallOp::ReferAttended(target_call) => e.refer_attended(now, call, target_call),
                    CallOp::TransferProgress(status) => e.transfer_progress(now, call, status),
                    CallOp::Dtmf { digit, duration_ms } => {
                        e.send_dtmf(now, call, digit, duration_ms)
                    }
                };
                if let Err(error) = &result {
                    warn!(command = name, %error, "command refused");
                }
                let _ = reply.send(result);
            }
            Command::Register {
                trunk,
                registrar,
                aor,
                expires,
                reply,
            } => {
                let result = self.endpoint.register(now, &trunk, registrar, aor, expires);
                match &result {
                    Ok(registration) => info!(%registration, "REGISTER"),
                    Err(error) => warn!(%error, "register refused"),
                }
                let _ = reply.send(result);
            }
            Command::Unregister {
                registration,
                reply,
            } => {
                let result = self.endpoint.unregister(now, registration);
                if let Err(error) = &result {
                    warn!(%registration, %error, "unregister refused");
                }
                let _ = reply.send(result);
            }
            Command::Keepalive {
                trunk,
                target,
                interval,
                reply,
            } => {
                let result = self
                    .endpoint
                    .keepalive(now, &trunk, target.clone(), interval);
                match &result {
                    Ok(keepalive) => info!(%keepalive, %target, ?interval, "OPTIONS keep-alive"),
                    Err(error) => warn!(%target, %error, "keep-alive refused"),
                }
                let _ = reply.send(result);
            }
            Command::StopKeepalive { keepalive, reply } => {
                let _ = reply.send(self.endpoint.stop_keepalive(keepalive));
            }
            Command::RetargetKeepalive {
                keepalive,
                trunk,
                reply,
            } => {
                let result = self.endpoint.retarget_keepalive(keepalive, &trunk);
                if result.is_ok() {
                    info!(%keepalive, destinations = ?trunk.destinations, "keep-alive retargeted");
                }
                let _ = reply.send(result);
            }
            Command::RetargetRegistration {
                registration,
                trunk,
                reply,
            } => {
                let result = self.endpoint.retarget_registration(registration, &trunk);
                if result.is_ok() {
                    info!(%registration, destinations = ?trunk.destinations, "registration retargeted");
                }
                let _ = reply.send(result);
            }
            Command::TlsPeer {
                address,
                tls,
                reply,
            } => {
                info!(%address, name = %tls.name.to_str(), "TLS peer");
                self.tls_peers.insert(address, tls);
                let _ = reply.send(());
            }
            Command::Stats { reply } => {
                let _ = reply.send((self.endpoint.stats(), self.endpoint.call_count()));
            }
        }
    }

    /// Drains the endpoint: sends every transmit, forwards every event,
    /// until both queues are empty (an event may queue more transmits).
    async fn flush(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(t) = self
                .pending
                .pop_front()
                .or_else(|| self.endpoint.poll_transmit())
            {
                progressed = true;
                self.transmit(t).await;
            }
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                self.event(event);
            }
            if !progressed {
                break;
            }
        }
    }

    async fn transmit(&mut self, t: Transmit) {
        trace!(transport = %t.transport, to = %t.destination,
            message = %String::from_utf8_lossy(&t.bytes), "SIP out");
        match t.transport {
            TransportKind::Udp => {
                if let Err(error) = self.udp.send_to(&t.bytes, t.destination).await {
                    warn!(to = %t.destination, %error, "UDP send failed");
                    self.endpoint
                        .handle_transport_error(now(), TransportKind::Udp, t.destination);
                }
            }
            TransportKind::Tcp | TransportKind::Tls => {
                let key = (t.transport, t.destination);
                if !self.connections.contains_key(&key) {
                    let tls = match t.transport {
                        TransportKind::Tls => match self.outbound_tls(t.destination) {
                            Some(tls) => Some(tls),
                            None => {
                                warn!(to = %t.destination, "TLS target, but TLS is not configured");
                                self.endpoint.handle_transport_error(
                                    now(),
                                    t.transport,
                                    t.destination,
                                );
                                return;
                            }
                        },
                        _ => None,
                    };
                    let id = self.connection_id();
                    let connection = connection::spawn_outgoing(
                        t.transport,
                        t.destination,
                        id,
                        self.streams.clone(),
                        tls,
                        self.stream_inputs_tx.clone(),
                    );
                    self.connections.insert(key, connection);
                }
                let sent = self
                    .connections
                    .get(&key)
                    .is_some_and(|c| c.outbound.send(t.bytes).is_ok());
                if !sent {
                    self.connections.remove(&key);
                    self.endpoint
                        .handle_transport_error(now(), t.transport, t.destination);
                }
            }
        }
    }

    /// How a TLS connection to `destination` is made: as registered for it
    /// (a trunk's name and roots), else with the driver's roots against the
    /// IP address; `None` when neither exists.
    fn outbound_tls(&self, destination: SocketAddr) -> Option<OutboundTls> {
        if let Some(tls) = self.tls_peers.get(&destination) {
            return Some(tls.clone());
        }
        self.streams.tls.as_ref().map(|t| OutboundTls {
            connector: t.connector.clone(),
            name: ServerName::IpAddress(destination.ip().into()),
        })
    }

    fn event(&mut self, event: Event) {
        if let Event::CallReplaced { old, new, .. } = &event {
            // The call carries on under the new handle: so does its span.
            if let Some(span) = self.spans.remove(old) {
                span.in_scope(|| info!(%new, "replaced"));
                self.spans.insert(*new, span);
            }
        }
        if let Event::IncomingCall(incoming) = &event {
            let span = info_span!("call", call = %incoming.call, call_id = %incoming.call_id);
            if !self.allow_list.allows(incoming.source.ip()) {
                let now = now();
                let (refusal, dropped) = self.refusals.refuse(now, incoming.source.ip());
                if let Some(dropped) = dropped {
                    warn!(
                        dropped,
                        "INVITEs from outside the allow-list dropped unanswered (rate)"
                    );
                }
                let answer = match refusal {
                    Refusal::Answer { first } => {
                        if first {
                            span.in_scope(|| {
                                warn!(source = %incoming.source, "INVITE from outside the allow-list: 403")
                            });
                        }
                        Some(Rejection::Forbidden)
                    }
                    Refusal::Drop => None,
                };
                if let Err(error) = self.endpoint.refuse(now, incoming.call, answer) {
                    span.in_scope(|| warn!(%error, "could not refuse the call"));
                }
                return;
            }
            self.spans.insert(incoming.call, span);
        }
        match call_of(&event) {
            Some(call) => {
                let span = self.span(call);
                span.in_scope(|| info!(event = name_of(&event)));
                if matches!(
                    event,
                    Event::CallEnded { .. } | Event::Failed { .. } | Event::CallCancelled { .. }
                ) {
                    self.spans.remove(&call);
                }
            }
            None => info!(event = name_of(&event)),
        }
        // The application may have stopped listening; the endpoint keeps
        // answering the network regardless.
        let _ = self.events.send(event);
    }

    fn span(&self, call: CallHandle) -> Span {
        self.spans
            .get(&call)
            .cloned()
            .unwrap_or_else(|| info_span!("call", %call))
    }
}

/// The driver's sockets, bound by [`crate::SipNet::bind`].
pub(crate) struct Sockets {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    pub tls_listener: Option<TcpListener>,
    pub tls: Option<crate::tls::Tls>,
}

/// Accepts on `listener`, or never when there is none.
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// The call an event belongs to; registration and keep-alive events belong to none.
fn call_of(event: &Event) -> Option<CallHandle> {
    match event {
        Event::IncomingCall(i) => Some(i.call),
        Event::Provisional { call, .. }
        | Event::Answered { call, .. }
        | Event::Failed { call, .. }
        | Event::CallCancelled { call }
        | Event::CallEnded { call, .. }
        | Event::Reoffer { call, .. }
        | Event::ReofferAnswered { call, .. }
        | Event::ReofferFailed { call, .. }
        | Event::Dtmf { call, .. }
        | Event::TransferRequested { call, .. }
        | Event::TransferAccepted { call }
        | Event::TransferProgress { call, .. }
        | Event::TransferSucceeded { call }
        | Event::TransferFailed { call, .. } => Some(*call),
        Event::CallReplaced { new, .. } => Some(*new),
        Event::Registered { .. }
        | Event::RegistrationFailed { .. }
        | Event::Unregistered { .. }
        | Event::PeerUp { .. }
        | Event::PeerDown { .. } => None,
    }
}

fn name_of(event: &Event) -> &'static str {
    match event {
        Event::IncomingCall(_) => "incoming_call",
        Event::Provisional { .. } => "provisional",
        Event::Answered { .. } => "answered",
        Event::Failed { .. } => "failed",
        Event::CallCancelled { .. } => "call_cancelled",
        Event::CallEnded { .. } => "call_ended",
        Event::Reoffer { .. } => "reoffer",
        Event::ReofferAnswered { .. } => "reoffer_answered",
        Event::ReofferFailed { .. } => "reoffer_failed",
        Event::Dtmf { .. } => "dtmf",
        Event::TransferRequested { .. } => "transfer_requested",
        Event::TransferAccepted { .. } => "transfer_accepted",
        Event::TransferProgress { .. } => "transfer_progress",
        Event::TransferSucceeded { .. } => "transfer_succeeded",
        Event::TransferFailed { .. } => "transfer_failed",
        Event::CallReplaced { .. } => "call_replaced",
        Event::Registered { .. } => "registered",
        Event::RegistrationFailed { .. } => "registration_failed",
        Event::Unregistered { .. } => "unregistered",
        Event::PeerUp { .. } => "peer_up",
        Event::PeerDown { .. } => "peer_down",
    }
}
