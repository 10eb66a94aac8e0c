//! The tokio driver for [`sip_proto::Endpoint`]: UDP and TCP sockets on one
//! address, the timer, and a cheap handle for the application.
//!
//! # What it does
//! [`SipNet::bind`] binds UDP and TCP on the same address and spawns one
//! task that owns the endpoint. That task is the run loop of the sans-IO
//! contract: each input — a datagram, a message framed off a TCP stream
//! ([`sip_message::frame_stream`]), the timer
//! (`sleep_until(poll_timeout)`), a command from a [`SipHandle`] — is
//! followed by draining `poll_transmit` (sent on the socket or connection)
//! and `poll_event` (forwarded on [`SipNet::events`]).
//!
//! TCP: accepted connections and connections we open are kept per peer
//! address and reused for every message to that peer (responses and new
//! requests alike); one task per connection frames inbound bytes and writes
//! outbound ones, and closes the connection after
//! [`SipConfig::tcp_idle_timeout`] without traffic. A failed connect or
//! write is reported to the endpoint with `handle_transport_error`.
//!
//! Trunks: [`SipHandle::register`] binds us at a registrar (a PBX
//! extension) and [`SipHandle::invite_via`] calls out through a carrier,
//! each answering digest challenges with the credentials of the
//! [`Trunk`] it names (one set per trunk, never another trunk's); the
//! endpoint refreshes bindings and reports `Registered` /
//! `RegistrationFailed` / `Unregistered`.
//!
//! Keep-alives: [`SipHandle::keepalive`] sends OPTIONS to a trunk every
//! interval; the endpoint reports `PeerUp` / `PeerDown` when it starts or
//! stops answering.
//!
//! Inbound INVITEs from sources outside [`SipConfig::allow_list`] are
//! answered `403 Forbidden` here and never reach the application (see
//! [`allow_list`] for why the driver owns this).
//!
//! TLS ([`SipConfig::tls`], rustls): an optional listener on its own port
//! (RFC 3261 §26.2 default 5061) presenting a configured certificate chain,
//! and outbound connections for `sips:` and `;transport=tls` targets that
//! trust the system store or a configured CA file ([`TlsRoots`]). A trunk
//! reached over TLS is registered with [`SipHandle::tls_peer`]: connections
//! to its addresses send its host name as SNI and check the certificate
//! against that name and the trunk's own roots (this works without
//! [`SipConfig::tls`]). TLS connections are kept and reused per peer like
//! TCP ones; a failed handshake is a transport error (the call fails with
//! 503, the keep-alive reports the peer down) logged with its cause
//! ("certificate not trusted", "not valid for NAME"), never a hang.
//!
//! Server location ([`Resolver`], [`locate`]): RFC 3263 §4 over DNS —
//! NAPTR, SRV (RFC 2782 order), A/AAAA — for a trunk's URI, giving the
//! destinations of a [`Trunk`] and when its records expire. The endpoint
//! never resolves: the application locates a trunk and hands the core its
//! addresses ([`SipHandle::retarget_keepalive`] and
//! [`SipHandle::retarget_registration`] when they change).
//!
//! # What it does not do
//! DNS for in-dialog or Request-URI hosts (those are IP literals or go to
//! the outbound proxy), client certificates (mutual TLS),
//! RFC 5626/5923 connection reuse for requests towards us, and anything
//! about SDP or media.
//!
//! # Observability
//! Every event and command of a call is logged inside a `call` span carrying
//! our handle and the SIP Call-ID.
//!
//! # Example
//! ```no_run
//! # async fn run() -> Result<(), sip_net::Error> {
//! use sip_net::{SipConfig, SipNet};
//! use sip_proto::Event;
//! let mut sip = SipNet::bind(SipConfig::new("127.0.0.1:5060".parse().unwrap())).await?;
//! while let Some(event) = sip.events.recv().await {
//!     if let Event::IncomingCall(call) = event {
//!         sip.handle.answer(call.call, b"v=0\r\n".to_vec()).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod allow_list;
mod connection;
mod driver;
mod handle;
pub mod locate;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use allow_list::{AllowList, Cidr, CidrError};
pub use handle::SipHandle;
pub use locate::{DnsConfig, Located, Resolver};
pub use sip_proto::{
    CallHandle, Credentials, Destination, EndReason, Event, IncomingCall, KeepaliveHandle,
    RegistrationHandle, Rejection, Stats, TransportKind, Trunk,
};
pub use tls::{TlsConfig, TlsListenerConfig, TlsPeer, TlsRoots};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The driver's configuration.
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// The endpoint's configuration. `endpoint.local_addr` is the address
    /// to bind; port 0 picks a free port (UDP and TCP get the same one) and
    /// the endpoint is told the real one.
    pub endpoint: sip_proto::Config,
    /// Seed for tags, branches, Call-IDs and digest nonces: from the operating system's random
    /// source, since a predictable one lets an attacker guess the next dialog's identifiers
    /// (tests pass their own).
    pub seed: u64,
    /// Who may send us INVITEs; others get 403.
    pub allow_list: AllowList,
    /// A TCP or TLS connection with no traffic for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// TCP and TLS connections at once: from one source address, and in all. A connection
    /// beyond either is closed as soon as it is accepted, so one host cannot take every
    /// descriptor and task from the PBX and the trunks.
    pub max_connections_per_source: usize,
    pub max_connections: usize,
    /// SIP over TLS; `None` refuses TLS targets with a transport error.
    pub tls: Option<TlsConfig>,
}

impl SipConfig {
    /// Defaults: everyone allowed, TCP idle close after 5 minutes, 32 connections per source
    /// and 1,024 in all, a seed
    /// from the operating system's random source.
    pub fn new(local_addr: SocketAddr) -> SipConfig {
        let mut random = [0u8; 8];
        if let Err(error) = getrandom::fill(&mut random) {
            // Linux's getrandom(2) does not fail once the pool is initialised; if it ever did,
            // the clock is a poor but working substitute, and the log says so.
            tracing::error!(%error, "no OS randomness for SIP identifiers; seeding from the clock");
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            random = nanos.to_le_bytes();
        }
        let seed = u64::from_le_bytes(random);
        SipConfig {
            endpoint: sip_proto::Config::new(local_addr),
            seed,
            allow_list: AllowList::any(),
            tcp_idle_timeout: Duration::from_secs(300),
            max_connections_per_source: 32,
            max_connections: 1024,
            tls: None,
        }
    }
}

/// Why the driver could not start or a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {transport} on {addr}: {source}")]
    Bind {
        transport: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    /// A certificate or key file could not be read or parsed.
    #[error("TLS file {path}: {source}")]
    TlsFile {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    /// A PEM file held no certificate.
    #[error("TLS file {path}: no certificate in it")]
    NoCertificates { path: PathBuf },
    /// `TlsRoots::System` found no usable certificate in the system store.
    #[error("no trusted certificates in the system store (install ca-certificates or configure a CA file)")]
    NoSystemRoots,
    /// A TLS peer's name is neither a DNS name nor an IP address.
    #[error("{name:?} is not a DNS name or IP address to check a TLS certificate against")]
    TlsServerName { name: String },
    /// rustls refused the configuration (a key that does not match the
    /// certificate, an unsupported key type).
    #[error("TLS configuration: {0}")]
    Tls(rustls::Error),
    /// The system DNS configuration (`/etc/resolv.conf`) could not be read.
    #[error("cannot read the DNS configuration (/etc/resolv.conf): {0}")]
    DnsConfig(Box<hickory_resolver::net::NetError>),
    /// A DNS query found no answer: no nameserver answered in time, one
    /// answered SERVFAIL or REFUSED, or its answer was malformed.
    #[error("DNS {query} query for {name} failed: {source}")]
    Dns {
        name: String,
        query: &'static str,
        source: Box<hickory_resolver::net::NetError>,
    },
    /// The system resolver (`getaddrinfo`) could not resolve a host.
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    /// DNS answered, but published no address for the name (no NAPTR, SRV,
    /// A or AAAA record that leads to one).
    #[error("{uri}: no address (no usable NAPTR, SRV, A or AAAA record)")]
    NoAddress { uri: String },
    /// Only `sip:` and `sips:` URIs can be located.
    #[error("{uri} is not a sip: or sips: URI")]
    NotSip { uri: String },
    /// The endpoint refused the command (unknown call, wrong state, unroutable).
    #[error(transparent)]
    Proto(#[from] sip_proto::Error),
    /// The driver task has stopped.
    #[error("the SIP driver has stopped")]
    Closed,
}

/// A running driver: its handle, its events, and where it listens.
#[derive(Debug)]
pub struct SipNet {
    /// Clone freely; the driver stops when every handle is dropped.
    pub handle: SipHandle,
    /// Everything the endpoint reports, in order.
    pub events: mpsc::UnboundedReceiver<Event>,
    /// The bound address (UDP and TCP).
    pub local_addr: SocketAddr,
    /// The bound TLS listener's address, when there is one.
    pub tls_addr: Option<SocketAddr>,
    /// The driver task; it ends when every handle is dropped.
    pub task: JoinHandle<()>,
}

impl SipNet {
    /// Binds the sockets and starts the driver task on the current runtime.
    pub async fn bind(mut config: SipConfig) -> Result<SipNet, Error> {
        let requested = config.endpoint.local_addr;
        let (udp, listener) = bind_pair(requested).await?;
        let local_addr = udp.local_addr().map_err(|source| Error::Bind {
            transport: "UDP",
            addr: requested,
            source,
        })?;
        config.endpoint.local_addr = local_addr;
        let tls = config.tls.as_ref().map(tls::Tls::load).transpose()?;
        let (tls_listener, tls_addr) = match config.tls.as_ref().and_then(|t| t.listener.as_ref()) {
            Some(listener) => {
                let bind_error = |source| Error::Bind {
                    transport: "TLS",
                    addr: listener.addr,
                    source,
                };
                let socket = TcpListener::bind(listener.addr).await.map_err(bind_error)?;
                let addr = socket.local_addr().map_err(bind_error)?;
                config.endpoint.tls_port = Some(addr.port());
                tracing::info!(%addr, "SIP listening on TLS");
                (Some(socket), Some(addr))
            }
            None => (None, None),
        };
        let (commands_tx, commands_rx) = mpsc::channel(256);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let sockets = driver::Sockets {
            udp,
            tcp: listener,
            tls_listener,
            tls,
        };
        let driver = driver::Driver::new(config, sockets, commands_rx, events_tx);
        let task = tokio::spawn(driver.run());
        tracing::info!(%local_addr, "SIP listening on UDP and TCP");
        Ok(SipNet {
            handle: SipHandle::new(commands_tx),
            events: events_rx,
            local_addr,
            tls_addr,
            task,
        })
    }
}

/// UDP and TCP on the same port. With port 0 the UDP port is picked first
/// and TCP follows it; if that TCP port is taken, try again.
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), Error> {
    let attempts = if addr.port() == 0 { 16 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr).await.map_err(|source| Error::Bind {
            transport: "UDP",
            addr,
            source,
        })?;
        let bound = udp.local_addr().map_err(|source| Error::Bind {
            transport: "UDP",
            addr,
            source,
        })?;
        match TcpListener::bind(bound).await {
            Ok(listener) => return Ok((udp, listener)),
            Err(source) => {
                last = Some(Error::Bind {
                    transport: "TCP",
                    addr: bound,
                    source,
                })
            }
        }
    }
    Err(last.unwrap_or(Error::Closed))
}

/// The driver's clock: tokio's, so a test can run it in virtual time (`tokio::time::pause`);
/// otherwise the system's monotonic clock.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
