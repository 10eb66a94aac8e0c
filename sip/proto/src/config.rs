//! Endpoint configuration.

use std::net::SocketAddr;

use sip_message::Limits;

use crate::authenticator::InboundAuth;
use crate::registration::RegistrationConfig;
use crate::session_timer::SessionTimerConfig;
use crate::timer::TimerConfig;
use crate::transport::TransportKind;

/// What an [`crate::Endpoint`] needs to know about itself. Build with
/// [`Config::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address the driver's sockets are bound to.
    pub local_addr: SocketAddr,
    /// The address peers must use to reach us (behind NAT or a port
    /// forward); written into Via sent-by and Contact instead of `local_addr`.
    pub external_addr: Option<SocketAddr>,
    /// The port of the driver's TLS listener, when it has one (TLS cannot
    /// share the TCP port). Via sent-by and Contact of TLS messages carry
    /// it instead of `local_addr`'s port, so peers open TLS connections to
    /// the listener (RFC 3261 §18.2.1, §26.2: default 5061).
    pub tls_port: Option<u16>,
    /// RFC 3261 T1/T2/T4.
    pub timers: TimerConfig,
    /// Transport for requests whose URI names none (`;transport=tcp`).
    pub default_transport: TransportKind,
    /// Where every out-of-dialog request goes (a trunk's SBC). Without one,
    /// a target's host must be an IP literal: the core does no DNS.
    pub outbound_proxy: Option<SocketAddr>,
    /// User part of our Contact URI.
    pub contact_user: String,
    /// `User-Agent` / `Server` header value; none when `None`.
    pub user_agent: Option<String>,
    /// Trunk mode: challenge out-of-dialog requests (OPTIONS excepted)
    /// from sources outside its allow-list; `None` accepts everyone.
    pub inbound_auth: Option<InboundAuth>,
    /// RFC 4028 session timers (on by default: 30 min, Min-SE 90 s);
    /// `None` neither asks for nor refreshes sessions.
    pub session_timer: Option<SessionTimerConfig>,
    /// Parser size limits.
    pub limits: Limits,
    /// Back-off of failed registrations.
    pub registration: RegistrationConfig,
    /// Accept a REFER from the peer of a call (202, then [`crate::Event::TransferRequested`]).
    /// Off: 403. A caller who may make us call a number of their choosing is a toll-fraud
    /// risk, and an endpoint that does not act on REFER must not answer 202 (RFC 3515 §2.4.2).
    pub accept_refer: bool,
}

impl Config {
    pub fn new(local_addr: SocketAddr) -> Config {
        Config {
            local_addr,
            external_addr: None,
            tls_port: None,
            timers: TimerConfig::default(),
            default_transport: TransportKind::Udp,
            outbound_proxy: None,
            contact_user: "switchboard".to_owned(),
            user_agent: Some("switchboard".to_owned()),
            inbound_auth: None,
            session_timer: Some(SessionTimerConfig::default()),
            limits: Limits::default(),
            registration: RegistrationConfig::default(),
            accept_refer: false,
        }
    }

    /// The address we advertise in Via and Contact.
    pub fn advertised_addr(&self) -> SocketAddr {
        self.external_addr.unwrap_or(self.local_addr)
    }

    /// The address we advertise for `transport`: for TLS, the advertised
    /// address with the TLS listener's port.
    pub fn advertised_addr_for(&self, transport: TransportKind) -> SocketAddr {
        let mut addr = self.advertised_addr();
        if let (TransportKind::Tls, Some(port)) = (transport, self.tls_port) {
            addr.set_port(port);
        }
        addr
    }
}
