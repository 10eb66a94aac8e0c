//! Trunks at run time: each `[[trunks]]` entry's proxy is located (RFC 3263: NAPTR, SRV,
//! A/AAAA for a name without a port), watched with OPTIONS keep-alives and, in PBX-extension
//! mode, registered at; its state is the Prometheus gauge `switchboard_trunk_up{trunk}` (1
//! answering, 0 not, absent before the first answer).
//!
//! Each trunk runs in its own task: a trunk whose name cannot be located (DNS unreachable, no
//! records) is logged and reported down and tries again later, without holding up the others
//! or the daemon. Once located, the keep-alive and registration start; when the DNS records
//! expire the name is located again and, if its addresses changed, they are handed to the SIP
//! endpoint, which uses them from the next request on.
//!
//! The SIP crates report `PeerUp`/`PeerDown` per keep-alive handle and know nothing of trunk
//! names or metrics; [`Trunks::tap`] sits between the SIP driver's events and the call runtime,
//! maps those events to names and the gauge, and passes every other event through unchanged.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sip_message::Uri;
use sip_net::{Event, KeepaliveHandle, Located, RegistrationHandle, SipHandle};
use tokio::sync::{mpsc, Mutex};

use crate::config::{Config, TrunkConfig};

/// The trunks being watched, by the handles the SIP endpoint reports them under. Clones share
/// the table, which the trunk tasks fill as their trunks start.
#[derive(Debug, Clone, Default)]
pub struct Trunks {
    names: Arc<Mutex<Names>>,
}

#[derive(Debug, Default)]
struct Names {
    keepalives: HashMap<KeepaliveHandle, String>,
    registrations: HashMap<RegistrationHandle, String>,
    /// Where each located trunk's requests go, for the calls placed through it.
    routes: HashMap<String, sip_net::Trunk>,
}

/// How trunks find their servers.
#[derive(Debug, Clone)]
pub struct Locating {
    pub resolver: sip_net::Resolver,
    /// A trunk whose name could not be located tries again after this long.
    pub retry: Duration,
    /// Records are looked up again when they expire, but never sooner than this after the
    /// last lookup (a TTL of 0 must not become a query loop).
    pub min_refresh: Duration,
}

impl Locating {
    /// `sip.dns_servers`, else the system's nameservers; retry after 30 s.
    pub fn new(config: &Config) -> Locating {
        let dns = sip_net::DnsConfig {
            nameservers: config.sip.dns_servers(),
            ..sip_net::DnsConfig::system()
        };
        Locating {
            resolver: sip_net::Resolver::new(&dns),
            retry: Duration::from_secs(30),
            min_refresh: Duration::from_secs(30),
        }
    }
}

/// Why a trunk could not be started. Logged; the daemon runs on without that trunk.
#[derive(Debug, thiserror::Error)]
pub enum TrunkError {
    #[error("trunk {trunk}: {proxy:?}: {reason}")]
    Proxy {
        trunk: String,
        proxy: String,
        reason: String,
    },
    #[error("trunk {trunk}: cannot locate {proxy}: {source}")]
    Locate {
        trunk: String,
        proxy: String,
        source: Box<sip_net::Error>,
    },
    #[error("trunk {trunk}: cannot read password_file: {source}")]
    Password {
        trunk: String,
        source: std::io::Error,
    },
    #[error("trunk {trunk}: {source}")]
    Sip {
        trunk: String,
        source: Box<sip_net::Error>,
    },
}

impl Trunks {
    /// Starts every configured trunk, locating names through `sip.dns_servers` or the system's
    /// nameservers.
    pub async fn start(config: &Config, sip: &SipHandle) -> Trunks {
        Trunks::start_with(config, sip, Locating::new(config)).await
    }

    /// Starts a task per configured trunk that locates it, then starts its keep-alive and
    /// registration; returns at once. A trunk that cannot be started is logged and reported
    /// down; the others go on.
    pub async fn start_with(config: &Config, sip: &SipHandle, locating: Locating) -> Trunks {
        metrics::describe_gauge!(
            "switchboard_trunk_up",
            "1 while the trunk answers OPTIONS keep-alives, 0 while it does not"
        );
        let trunks = Trunks::default();
        for trunk in &config.trunks {
            match Runner::new(trunk, sip, &locating, &trunks) {
                Ok(runner) => {
                    tokio::spawn(runner.run());
                }
                Err(error) => {
                    tracing::error!("{error}");
                    gauge(&trunk.name, false);
                }
            }
        }
        trunks
    }

    /// The trunk a registration belongs to, once its task has started it.
    pub async fn registration_trunk(&self, registration: RegistrationHandle) -> Option<String> {
        self.names
            .lock()
            .await
            .registrations
            .get(&registration)
            .cloned()
    }

    /// Where calls through `trunk` go, once it has been located (`None` before, or for a name
    /// no `[[trunks]]` entry has).
    pub async fn route(&self, trunk: &str) -> Option<sip_net::Trunk> {
        self.names.lock().await.routes.get(trunk).cloned()
    }

    /// Handles trunk events; returns the event when it is not one.
    pub async fn on_event(&self, event: Event) -> Option<Event> {
        let names = self.names.lock().await;
        match &event {
            Event::PeerUp { keepalive, status } => {
                if let Some(name) = names.keepalives.get(keepalive) {
                    tracing::info!(trunk = %name, status, "trunk up");
                    gauge(name, true);
                }
                None
            }
            Event::PeerDown { keepalive, status } => {
                if let Some(name) = names.keepalives.get(keepalive) {
                    tracing::warn!(trunk = %name, status, "trunk down: {}", down(*status));
                    gauge(name, false);
                }
                None
            }
            Event::Registered {
                registration,
                expires,
            } => {
                if let Some(name) = names.registrations.get(registration) {
                    tracing::info!(trunk = %name, expires, "registered");
                }
                Some(event)
            }
            Event::RegistrationFailed {
                registration,
                status,
                retry_in,
            } => {
                if let Some(name) = names.registrations.get(registration) {
                    tracing::warn!(trunk = %name, status, ?retry_in, "registration failed");
                }
                Some(event)
            }
            _ => Some(event),
        }
    }

    /// Puts the trunks between the SIP driver's events and their consumer: returns the stream
    /// the call runtime reads, with trunk events taken out.
    pub fn tap(self, mut events: mpsc::UnboundedReceiver<Event>) -> mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let Some(event) = self.on_event(event).await {
                    if tx.send(event).is_err() {
                        break;
                    }
                }
            }
        });
        rx
    }
}

/// What one OPTIONS to a trunk found ([`probe`]).
#[derive(Debug)]
pub struct Probe {
    pub trunk: String,
    /// The status it answered with, or why it did not.
    pub outcome: Result<u16, String>,
}

/// Asks each configured trunk once, as `switchboard doctor` does: locates it as the daemon
/// would, sends one OPTIONS from `sip` (TLS checked against `ca_file` and the proxy's name),
/// and waits up to `wait` for the answers. Registers nowhere: a probe must not take over the
/// running daemon's binding.
pub async fn probe(
    config: &Config,
    sip: sip_net::SipNet,
    locating: Locating,
    wait: Duration,
) -> Vec<Probe> {
    let trunks = Trunks::default();
    let mut probes = Vec::new();
    let mut waiting = HashMap::new();
    for trunk in &config.trunks {
        let once = TrunkConfig {
            register: false,
            // One OPTIONS now; the next would be due long after the probe has ended.
            options_interval: 3600,
            ..trunk.clone()
        };
        let started = async {
            let mut runner = Runner::new(&once, &sip.handle, &locating, &trunks)?;
            let located = runner.locate().await?;
            runner.begin(&located).await?;
            Ok::<_, TrunkError>(runner.keepalive)
        };
        let outcome = match started.await {
            Ok(Some(keepalive)) => {
                waiting.insert(keepalive, probes.len());
                Err(format!("no answer to OPTIONS within {} s", wait.as_secs()))
            }
            Ok(None) => Err("not started".into()),
            // Reported under the trunk's name already.
            Err(error) => {
                Err(error
                    .to_string()
                    .replacen(&format!("trunk {}: ", trunk.name), "", 1))
            }
        };
        probes.push(Probe {
            trunk: trunk.name.clone(),
            outcome,
        });
    }
    let mut events = sip.events;
    let deadline = tokio::time::Instant::now() + wait;
    while !waiting.is_empty() {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await else {
            break;
        };
        let (keepalive, outcome) = match event {
            Event::PeerUp { keepalive, status } => (keepalive, Ok(status)),
            Event::PeerDown { keepalive, status } => (keepalive, Err(down(status).to_owned())),
            _ => continue,
        };
        if let Some(i) = waiting.remove(&keepalive) {
            probes[i].outcome = outcome;
        }
    }
    probes
}

/// Why a keep-alive's peer is down, from the status the SIP driver reported: 408 is Timer F,
/// 503 a transport error (whose cause the driver logged).
fn down(status: u16) -> &'static str {
    match status {
        408 => "no answer to OPTIONS",
        _ => "cannot reach it (connection refused, or the TLS handshake failed)",
    }
}

/// One trunk's task: locate, start, keep the addresses current.
struct Runner {
    trunk: TrunkConfig,
    sip: SipHandle,
    locating: Locating,
    trunks: Trunks,
    /// `proxy`, parsed: what is located, and the Request-URI of OPTIONS and REGISTER (the
    /// trunk's domain, for a carrier that tells its customers apart by it).
    uri: Uri,
    /// The host written in `proxy`: the TLS server name and the domain of our AOR.
    host: String,
    credentials: Option<sip_net::Credentials>,
    keepalive: Option<KeepaliveHandle>,
    registration: Option<RegistrationHandle>,
}

impl Runner {
    fn new(
        trunk: &TrunkConfig,
        sip: &SipHandle,
        locating: &Locating,
        trunks: &Trunks,
    ) -> Result<Runner, TrunkError> {
        // Parsed when the configuration was loaded.
        let target = trunk.proxy.clone();
        let uri = Uri::parse(&target.uri).map_err(|e| TrunkError::Proxy {
            trunk: trunk.name.clone(),
            proxy: target.uri.clone(),
            reason: e.to_string(),
        })?;
        Ok(Runner {
            trunk: trunk.clone(),
            sip: sip.clone(),
            locating: locating.clone(),
            trunks: trunks.clone(),
            uri,
            host: target.host,
            credentials: credentials(trunk)?,
            keepalive: None,
            registration: None,
        })
    }

    async fn run(mut self) {
        let name = self.trunk.name.clone();
        let retry = self.locating.retry;
        let mut located = loop {
            match self.locate().await {
                Ok(located) => break located,
                Err(error) => {
                    tracing::error!("{error}; the trunk is down, retrying in {retry:?}");
                    gauge(&name, false);
                    tokio::time::sleep(retry).await;
                }
            }
        };
        if let Err(error) = self.begin(&located).await {
            tracing::error!("{error}");
            gauge(&name, false);
            return;
        }
        // Records with a TTL are looked up again when they expire (RFC 3263 §4.3's list is only
        // as good as the records it came from).
        while let Some(expires) = located.expires {
            let due = tokio::time::Instant::from_std(expires)
                .max(tokio::time::Instant::now() + self.locating.min_refresh);
            tokio::time::sleep_until(due).await;
            match self.locate().await {
                Ok(fresh) => {
                    if addresses(&fresh) != addresses(&located) {
                        tracing::info!(trunk = %name, destinations = ?fresh.destinations, "trunk addresses changed");
                        if let Err(error) = self.retarget(&fresh).await {
                            tracing::error!("{error}");
                            return;
                        }
                        located = fresh;
                    } else {
                        // Same servers: keep the order in use; only the deadline moves.
                        located.expires = fresh.expires;
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        "{error}; keeping the {} addresses found before, retrying in {retry:?}",
                        located.destinations.len()
                    );
                    located.expires = Some(std::time::Instant::now() + retry);
                }
            }
        }
    }

    async fn locate(&self) -> Result<Located, TrunkError> {
        self.locating
            .resolver
            .locate(&self.uri, random)
            .await
            .map_err(|source| TrunkError::Locate {
                trunk: self.trunk.name.clone(),
                proxy: self.trunk.proxy.uri.clone(),
                source: Box::new(source),
            })
    }

    /// Starts the keep-alive and the registration towards `located`.
    async fn begin(&mut self, located: &Located) -> Result<(), TrunkError> {
        self.tls_peers(located).await?;
        let route = self.route(located);
        let sip_error = |source| TrunkError::Sip {
            trunk: self.trunk.name.clone(),
            source: Box::new(source),
        };
        let destinations = &located.destinations;
        // Held while starting, so an answer cannot be tapped before its handle is known.
        let mut names = self.trunks.names.lock().await;
        names.routes.insert(self.trunk.name.clone(), route.clone());
        if self.trunk.options_interval > 0 {
            let interval = Duration::from_secs(u64::from(self.trunk.options_interval));
            let handle = self
                .sip
                .keepalive(route.clone(), self.uri.clone(), interval)
                .await
                .map_err(sip_error)?;
            names.keepalives.insert(handle, self.trunk.name.clone());
            self.keepalive = Some(handle);
            tracing::info!(trunk = %self.trunk.name, ?destinations, ?interval, "trunk keep-alive started");
        }
        if self.trunk.register {
            // Checked at load: a registering trunk has a username.
            let Some(user) = &self.trunk.username else {
                return Ok(());
            };
            let aor = Uri::parse(&format!("sip:{user}@{}", self.host)).map_err(|e| {
                TrunkError::Proxy {
                    trunk: self.trunk.name.clone(),
                    proxy: self.trunk.proxy.uri.clone(),
                    reason: format!("no AOR from username {user:?}: {e}"),
                }
            })?;
            let handle = self
                .sip
                .register(route, self.uri.clone(), aor, self.trunk.register_expires)
                .await
                .map_err(sip_error)?;
            names.registrations.insert(handle, self.trunk.name.clone());
            self.registration = Some(handle);
            tracing::info!(trunk = %self.trunk.name, ?destinations, "registering");
        }
        Ok(())
    }

    /// Hands new addresses to the keep-alive and the registration.
    async fn retarget(&self, located: &Located) -> Result<(), TrunkError> {
        self.tls_peers(located).await?;
        let route = self.route(located);
        let sip_error = |source| TrunkError::Sip {
            trunk: self.trunk.name.clone(),
            source: Box::new(source),
        };
        self.trunks
            .names
            .lock()
            .await
            .routes
            .insert(self.trunk.name.clone(), route.clone());
        if let Some(keepalive) = self.keepalive {
            self.sip
                .retarget_keepalive(keepalive, route.clone())
                .await
                .map_err(sip_error)?;
        }
        if let Some(registration) = self.registration {
            self.sip
                .retarget_registration(registration, route)
                .await
                .map_err(sip_error)?;
        }
        Ok(())
    }

    /// Every address in order: the SIP endpoint moves on to the next after a timeout, a
    /// refused connection or a 503 (RFC 3263 §4.3).
    fn route(&self, located: &Located) -> sip_net::Trunk {
        sip_net::Trunk {
            destinations: located.destinations.clone(),
            credentials: self.credentials.clone(),
        }
    }

    /// TLS destinations check the certificate against the host written in `proxy`, which is
    /// also the SNI (RFC 5922 §4: the address, or an SRV target, proves nothing).
    async fn tls_peers(&self, located: &Located) -> Result<(), TrunkError> {
        let roots = self
            .trunk
            .ca_file
            .clone()
            .map_or(sip_net::TlsRoots::System, sip_net::TlsRoots::CaFile);
        let peer = sip_net::TlsPeer {
            server_name: self.host.clone(),
            roots,
        };
        for destination in &located.destinations {
            if destination.transport == sip_net::TransportKind::Tls {
                self.sip
                    .tls_peer(destination.address, peer.clone())
                    .await
                    .map_err(|source| TrunkError::Sip {
                        trunk: self.trunk.name.clone(),
                        source: Box::new(source),
                    })?;
            }
        }
        Ok(())
    }
}

/// The servers, whatever their order (SRV weights reshuffle equal-priority ones per lookup).
fn addresses(located: &Located) -> HashSet<(sip_net::TransportKind, std::net::SocketAddr)> {
    located
        .destinations
        .iter()
        .map(|d| (d.transport, d.address))
        .collect()
}

/// RFC 2782's weighted draw, uniform in `0..=max`, from the OS's RNG (a failing RNG draws 0,
/// which still yields a valid order).
fn random(max: u32) -> u32 {
    getrandom::u64().map_or(0, |r| (r % (u64::from(max) + 1)) as u32)
}

/// The trunk's digest credentials: they answer its challenges and nobody else's.
fn credentials(trunk: &TrunkConfig) -> Result<Option<sip_net::Credentials>, TrunkError> {
    let Some(username) = &trunk.username else {
        return Ok(None);
    };
    let password = trunk
        .password_text()
        .map_err(|source| TrunkError::Password {
            trunk: trunk.name.clone(),
            source,
        })?
        .unwrap_or_default();
    Ok(Some(sip_net::Credentials::new(username.clone(), password)))
}

fn gauge(trunk: &str, up: bool) {
    metrics::gauge!("switchboard_trunk_up", "trunk" => trunk.to_owned()).set(if up {
        1.0
    } else {
        0.0
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // reason: test code

    use super::*;
    use crate::config::TrunkConfig;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::path::PathBuf;
    use switchboard_e2e::dns;

    fn trunk(name: &str, proxy: String) -> TrunkConfig {
        TrunkConfig {
            name: name.into(),
            proxy: proxy.parse().unwrap(),
            username: None,
            password: None,
            password_file: None,
            register: false,
            register_expires: 3600,
            allow: Vec::new(),
            trust_caller_id: false,
            from_user: None,
            options_interval: 1,
            agents: Vec::new(),
            ca_file: None,
        }
    }

    async fn sip(t1: Duration) -> sip_net::SipNet {
        let mut config =
            sip_net::SipConfig::new(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        config.endpoint.timers.t1 = t1;
        sip_net::SipNet::bind(config).await.unwrap()
    }

    /// A real peer (another SIP endpoint on loopback, which answers OPTIONS with 200) makes the
    /// gauge 1; a port nobody listens on makes it 0 after Timer F.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keepalive_outcomes_drive_the_trunk_gauge() {
        let peer = sip(Duration::from_millis(500)).await;
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        drop(silent);
        let config = Config {
            trunks: vec![
                trunk(
                    "gauge-up",
                    format!("sip:127.0.0.1:{}", peer.local_addr.port()),
                ),
                trunk("gauge-down", format!("sip:127.0.0.1:{silent_port}")),
            ],
            ..Config::default()
        };
        // T1 = 20 ms: Timer F is 1.28 s.
        let ours = sip(Duration::from_millis(20)).await;
        let trunks = Trunks::start(&config, &ours.handle).await;
        let mut passed = trunks.tap(ours.events);
        gauges_settle(&[("gauge-up", 1), ("gauge-down", 0)]).await;
        // Trunk events are taken out of the stream the call runtime reads.
        assert!(passed.try_recv().is_err());
        drop(peer);
    }

    /// sipp as a digest registrar on a free loopback port, running `scenario`.
    fn registrar(scenario: &str, dir: &std::path::Path) -> Option<(switchboard_e2e::Peer, u16)> {
        switchboard_e2e::sipp_server(scenario, 1, &[], dir)
    }

    /// PBX-extension mode end to end, two trunks on one box: a PBX (sipp as a digest registrar
    /// for alice / s3cret) and a carrier (another sipp for acme / carrier-pw, another realm).
    /// Each registrar checks the digest with its own account and answers 403 to anything else,
    /// so both registering means each got its own trunk's username and a correct response.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_registering_trunk_answers_with_its_own_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let Some((_pbx, pbx_port)) = registrar("registrar_digest.xml", dir.path()) else {
            return;
        };
        let Some((_carrier, carrier_port)) = registrar("registrar_digest_carrier.xml", dir.path())
        else {
            return;
        };
        let config = Config {
            trunks: vec![
                TrunkConfig {
                    username: Some("alice".into()),
                    password: Some("s3cret".into()),
                    register: true,
                    options_interval: 0,
                    ..trunk("pbx", format!("sip:127.0.0.1:{pbx_port}"))
                },
                TrunkConfig {
                    username: Some("acme".into()),
                    password: Some("carrier-pw".into()),
                    register: true,
                    options_interval: 0,
                    ..trunk("carrier", format!("sip:127.0.0.1:{carrier_port}"))
                },
            ],
            ..Config::default()
        };
        let sip = crate::bind_sip(&config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let trunks = Trunks::start(&config, &sip.handle).await;
        let names = trunks.clone();
        let mut events = trunks.tap(sip.events);
        let mut granted = HashMap::new();
        while granted.len() < 2 {
            let event = tokio::time::timeout(switchboard_e2e::DEADLINE, events.recv())
                .await
                .expect("answers from both registrars")
                .unwrap();
            match event {
                // The PBX grants 4 s, the carrier 300 s, after checking the digest.
                Event::Registered {
                    registration,
                    expires,
                } => {
                    let name = names.registration_trunk(registration).await.unwrap();
                    granted.insert(name, expires);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(granted["pbx"], 4);
        assert_eq!(granted["carrier"], 300);
    }

    /// Writes a test CA and a certificate it signs for `name`; returns (ca, cert, key) paths.
    fn test_pki(dir: &std::path::Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let paths = (
            dir.join(format!("{name}-ca.pem")),
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&paths.0, ca.pem()).unwrap();
        std::fs::write(&paths.1, cert.pem()).unwrap();
        std::fs::write(&paths.2, key.serialize_pem()).unwrap();
        paths
    }

    /// Log lines, captured for one test (the runtime is the test's thread).
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// SIP over TLS to a trunk: a TLS SIP server on loopback presents a certificate for
    /// "localhost" from a test CA. The trunk trusting that CA (its `ca_file`) connects with
    /// "localhost" as SNI, its OPTIONS go over TLS and it is up; a trunk trusting another CA is
    /// down, and the log says the certificate is not trusted.
    #[tokio::test]
    async fn a_tls_trunk_is_up_when_its_certificate_is_trusted() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _logs = tracing::subscriber::set_default(subscriber);
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = test_pki(dir.path(), "localhost");
        let (other_ca, _, _) = test_pki(dir.path(), "other.test");
        // The server listens where "localhost" resolves first, as the trunk will.
        let loopback = tokio::net::lookup_host(("localhost", 0))
            .await
            .unwrap()
            .next()
            .unwrap();
        // Two servers: TLS connections are pooled per address, so trunks that share one would
        // share its connection too.
        let listen = || {
            let mut server = sip_net::SipConfig::new(SocketAddr::new(loopback.ip(), 0));
            server.tls = Some(sip_net::TlsConfig {
                listener: Some(sip_net::TlsListenerConfig {
                    addr: SocketAddr::new(loopback.ip(), 0),
                    certificate_chain: cert.clone(),
                    private_key: key.clone(),
                }),
                roots: sip_net::TlsRoots::CaFile(ca.clone()),
            });
            sip_net::SipNet::bind(server)
        };
        let (server, other_server) = (listen().await.unwrap(), listen().await.unwrap());
        let port = server.tls_addr.unwrap().port();
        let other_port = other_server.tls_addr.unwrap().port();
        let config = Config {
            trunks: vec![
                TrunkConfig {
                    ca_file: Some(ca),
                    ..trunk("tls-trusted", format!("sips:localhost:{port}"))
                },
                TrunkConfig {
                    ca_file: Some(other_ca),
                    ..trunk(
                        "tls-untrusted",
                        format!("sip:localhost:{other_port};transport=tls"),
                    )
                },
            ],
            ..Config::default()
        };
        let ours = sip(Duration::from_millis(500)).await;
        let trunks = Trunks::start(&config, &ours.handle).await;
        let _passed = trunks.tap(ours.events);
        gauges_settle(&[("tls-trusted", 1), ("tls-untrusted", 0)]).await;
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(
            logs.contains("TLS handshake failed: certificate not trusted"),
            "{logs}"
        );
        assert!(logs.contains("trunk down"), "{logs}");
        drop((server, other_server));
    }

    /// Waits until the gauge reads `want` for each named trunk.
    async fn gauges_settle(want: &[(&str, u8)]) {
        let metrics = crate::telemetry::metrics();
        let deadline = tokio::time::Instant::now() + switchboard_e2e::DEADLINE;
        loop {
            let text = metrics.render();
            if want.iter().all(|(name, value)| {
                text.contains(&format!(
                    "switchboard_trunk_up{{trunk=\"{name}\"}} {value}\n"
                ))
            }) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gauges never settled at {want:?}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// sipp answering `probes` OPTIONS with 200 on a free loopback port.
    fn options_server(dir: &std::path::Path, probes: u32) -> Option<(switchboard_e2e::Peer, u16)> {
        switchboard_e2e::sipp_server("uas_options.xml", probes, &[], dir)
    }

    fn locating(dns: SocketAddr) -> Locating {
        let config = sip_net::DnsConfig {
            nameservers: vec![dns],
            timeout: Some(Duration::from_millis(300)),
            attempts: Some(1),
        };
        Locating {
            resolver: sip_net::Resolver::new(&config),
            retry: Duration::from_millis(500),
            min_refresh: Duration::from_millis(200),
        }
    }

    /// RFC 3263 end to end over real sockets: a DNS server on loopback publishes two carriers
    /// by name only. "naptr.test" has NAPTR → `_sip._udp` SRV → an A record → sipp answering
    /// OPTIONS; "failover.test" has no NAPTR and two SRV records, the preferred one a dead port.
    /// Both trunks come up: the second after its keep-alive moved on to the backup.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn trunks_named_without_a_port_are_located_by_naptr_and_srv() {
        let dir = tempfile::tempdir().unwrap();
        // Enough probes for both trunks for the whole test.
        let Some((_sipp, port)) = options_server(dir.path(), 1000) else {
            return;
        };
        let dead = switchboard_e2e::free_port();
        let server = dns::DnsServer::start(vec![
            dns::naptr("naptr.test", 10, "SIP+D2U", "_sip._udp.naptr.test"),
            dns::srv("_sip._udp.naptr.test", 0, 0, port, "sbc.naptr.test"),
            dns::a("sbc.naptr.test", Ipv4Addr::LOCALHOST),
            dns::srv("_sip._udp.failover.test", 10, 0, dead, "dead.failover.test"),
            dns::srv(
                "_sip._udp.failover.test",
                20,
                0,
                port,
                "backup.failover.test",
            ),
            dns::a("dead.failover.test", Ipv4Addr::LOCALHOST),
            dns::a("backup.failover.test", Ipv4Addr::LOCALHOST),
        ])
        .await;
        let config = Config {
            trunks: vec![
                trunk("dns-naptr", "sip:naptr.test".into()),
                trunk("dns-failover", "sip:failover.test".into()),
            ],
            ..Config::default()
        };
        // T1 = 20 ms: the dead server's Timer F is 1.28 s.
        let ours = sip(Duration::from_millis(20)).await;
        let trunks = Trunks::start_with(&config, &ours.handle, locating(server.addr)).await;
        let _passed = trunks.tap(ours.events);
        gauges_settle(&[("dns-naptr", 1), ("dns-failover", 1)]).await;
        let asked = server.queries();
        for query in [
            "NAPTR naptr.test.",
            "SRV _sip._udp.naptr.test.",
            "A sbc.naptr.test.",
            "NAPTR failover.test.",
            "SRV _sip._udp.failover.test.",
            "A dead.failover.test.",
            "A backup.failover.test.",
        ] {
            assert!(asked.iter().any(|q| q == query), "{query} not in {asked:?}");
        }
    }

    /// A carrier renumbers: its SRV record (TTL 1 s) first names a dead port, so the trunk goes
    /// down; once the record names a live server, the trunk locates it again when the record
    /// expires, the keep-alive follows, and the trunk is up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trunk_follows_its_records_when_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let Some((_sipp, port)) = options_server(dir.path(), 1000) else {
            return;
        };
        let dead = switchboard_e2e::free_port();
        let zone = |port| {
            let mut records = vec![
                dns::srv("_sip._udp.moving.test", 0, 0, port, "sbc.moving.test"),
                dns::a("sbc.moving.test", Ipv4Addr::LOCALHOST),
            ];
            for record in &mut records {
                record.ttl = 1;
            }
            records
        };
        let server = dns::DnsServer::start(zone(dead)).await;
        let config = Config {
            trunks: vec![trunk("dns-moving", "sip:moving.test".into())],
            ..Config::default()
        };
        let ours = sip(Duration::from_millis(20)).await;
        let trunks = Trunks::start_with(&config, &ours.handle, locating(server.addr)).await;
        let _passed = trunks.tap(ours.events);
        gauges_settle(&[("dns-moving", 0)]).await;
        server.set_zone(zone(port));
        gauges_settle(&[("dns-moving", 1)]).await;
    }

    /// DNS that never answers: the trunk needing it is reported down with the DNS error in the
    /// log (and keeps trying); a trunk given by address starts regardless. (One thread, so
    /// the trunk tasks log to this test's subscriber.)
    #[tokio::test]
    async fn a_trunk_whose_dns_does_not_answer_is_down() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _logs = tracing::subscriber::set_default(subscriber);
        // A nameserver that reads queries and never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = sip(Duration::from_millis(500)).await;
        let config = Config {
            trunks: vec![
                trunk("dns-silent", "sip:silent.test".into()),
                trunk(
                    "dns-literal",
                    format!("sip:127.0.0.1:{}", peer.local_addr.port()),
                ),
            ],
            ..Config::default()
        };
        let ours = sip(Duration::from_millis(500)).await;
        let trunks = Trunks::start_with(
            &config,
            &ours.handle,
            locating(silent.local_addr().unwrap()),
        )
        .await;
        let _passed = trunks.tap(ours.events);
        gauges_settle(&[("dns-silent", 0), ("dns-literal", 1)]).await;
        let deadline = tokio::time::Instant::now() + switchboard_e2e::DEADLINE;
        loop {
            let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
            if logs.contains(
                "trunk dns-silent: cannot locate sip:silent.test: DNS NAPTR query for silent.test failed",
            ) && logs.contains("the trunk is down, retrying in")
            {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{logs}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop((peer, silent));
    }
}
