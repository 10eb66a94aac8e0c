//! Trunks at run time: each `[[trunks]]` entry's proxy is resolved, watched with OPTIONS
//! keep-alives and, in PBX-extension mode, registered at; its state is the Prometheus gauge
//! `switchboard_trunk_up{trunk}` (1 answering, 0 not, absent before the first answer).
//!
//! The SIP crates report `PeerUp`/`PeerDown` per keep-alive handle and know nothing of trunk
//! names or metrics; [`Trunks::tap`] sits between the SIP driver's events and the call runtime,
//! maps those events to names and the gauge, and passes every other event through unchanged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use sip_message::Uri;
use sip_net::{Event, KeepaliveHandle, RegistrationHandle, SipHandle};
use tokio::sync::mpsc;

use crate::config::{Config, TrunkConfig, TrunkTransport};

/// The trunks being watched, by the handles the SIP endpoint reports them under.
#[derive(Debug, Default)]
pub struct Trunks {
    keepalives: HashMap<KeepaliveHandle, String>,
    registrations: HashMap<RegistrationHandle, String>,
}

/// Why a trunk could not be started. Logged; the daemon runs on without that trunk.
#[derive(Debug, thiserror::Error)]
pub enum TrunkError {
    #[error("trunk {trunk}: cannot resolve {host}: {reason}")]
    Resolve {
        trunk: String,
        host: String,
        reason: String,
    },
    #[error("trunk {trunk}: cannot read password_file: {source}")]
    Password {
        trunk: String,
        source: std::io::Error,
    },
    #[error("trunk {trunk}: {source}")]
    Sip {
        trunk: String,
        source: sip_net::Error,
    },
}

impl Trunks {
    /// Starts keep-alives and registrations for every configured trunk. A trunk that cannot be
    /// started (its name does not resolve) is logged and reported down; the others go on.
    pub async fn start(config: &Config, sip: &SipHandle) -> Trunks {
        metrics::describe_gauge!(
            "switchboard_trunk_up",
            "1 while the trunk answers OPTIONS keep-alives, 0 while it does not"
        );
        let mut trunks = Trunks::default();
        for trunk in &config.trunks {
            if let Err(error) = trunks.start_one(trunk, sip).await {
                tracing::error!("{error}");
                gauge(&trunk.name, false);
            }
        }
        trunks
    }

    async fn start_one(&mut self, trunk: &TrunkConfig, sip: &SipHandle) -> Result<(), TrunkError> {
        // Checked when the configuration was loaded.
        let target = trunk.target().map_err(|reason| TrunkError::Resolve {
            trunk: trunk.name.clone(),
            host: trunk.proxy.clone(),
            reason,
        })?;
        let addresses =
            resolve(&target.host, target.port)
                .await
                .map_err(|reason| TrunkError::Resolve {
                    trunk: trunk.name.clone(),
                    host: target.host.clone(),
                    reason,
                })?;
        let sip_error = |source| TrunkError::Sip {
            trunk: trunk.name.clone(),
            source,
        };
        if target.transport == TrunkTransport::Tls {
            // RFC 5922 §7: the certificate must name the host written in `proxy`, which is
            // also the SNI; the address it resolved to proves nothing.
            let roots = trunk
                .ca_file
                .clone()
                .map_or(sip_net::TlsRoots::System, sip_net::TlsRoots::CaFile);
            let peer = sip_net::TlsPeer {
                server_name: target.host.clone(),
                roots,
            };
            for address in &addresses {
                sip.tls_peer(*address, peer.clone())
                    .await
                    .map_err(sip_error)?;
            }
        }
        // Every address the name has, in the resolver's order: the SIP endpoint moves on to
        // the next after a timeout, a refused connection or a 503 (RFC 3263 §4.3).
        let route = sip_net::Trunk {
            destinations: addresses
                .iter()
                .map(|address| sip_net::Destination {
                    transport: transport_kind(target.transport),
                    address: *address,
                })
                .collect(),
            credentials: credentials(trunk)?,
        };
        let parse = |s: &str| {
            Uri::parse(s).map_err(|reason| TrunkError::Resolve {
                trunk: trunk.name.clone(),
                host: s.to_owned(),
                reason: reason.to_string(),
            })
        };
        // Request-URIs name the trunk as configured (its domain, for a carrier that tells its
        // customers apart by it); the requests go to the resolved address.
        let uri = parse(&target.uri)?;
        if trunk.options_interval > 0 {
            let interval = Duration::from_secs(u64::from(trunk.options_interval));
            let handle = sip
                .keepalive(route.clone(), uri.clone(), interval)
                .await
                .map_err(sip_error)?;
            self.keepalives.insert(handle, trunk.name.clone());
            tracing::info!(trunk = %trunk.name, ?addresses, ?interval, "trunk keep-alive started");
        }
        if trunk.register {
            // Checked at load: a registering trunk has a username.
            let Some(user) = &trunk.username else {
                return Ok(());
            };
            let aor = parse(&format!("sip:{user}@{}", target.host))?;
            let handle = sip
                .register(route, uri, aor, trunk.register_expires)
                .await
                .map_err(sip_error)?;
            self.registrations.insert(handle, trunk.name.clone());
            tracing::info!(trunk = %trunk.name, ?addresses, "registering");
        }
        Ok(())
    }

    /// Handles trunk events; returns the event when it is not one.
    pub fn on_event(&self, event: Event) -> Option<Event> {
        match &event {
            Event::PeerUp { keepalive, status } => {
                if let Some(name) = self.keepalives.get(keepalive) {
                    tracing::info!(trunk = %name, status, "trunk up");
                    gauge(name, true);
                }
                None
            }
            Event::PeerDown { keepalive, status } => {
                if let Some(name) = self.keepalives.get(keepalive) {
                    // 408 is Timer F; 503 a transport error, whose cause the SIP driver logged.
                    let why = match status {
                        408 => "no answer to OPTIONS",
                        _ => "cannot reach it (connection refused, or TLS failed: see the TLS warning)",
                    };
                    tracing::warn!(trunk = %name, status, "trunk down: {why}");
                    gauge(name, false);
                }
                None
            }
            Event::Registered {
                registration,
                expires,
            } => {
                if let Some(name) = self.registrations.get(registration) {
                    tracing::info!(trunk = %name, expires, "registered");
                }
                Some(event)
            }
            Event::RegistrationFailed {
                registration,
                status,
                retry_in,
            } => {
                if let Some(name) = self.registrations.get(registration) {
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
                if let Some(event) = self.on_event(event) {
                    if tx.send(event).is_err() {
                        break;
                    }
                }
            }
        });
        rx
    }
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

fn transport_kind(transport: TrunkTransport) -> sip_net::TransportKind {
    match transport {
        TrunkTransport::Udp => sip_net::TransportKind::Udp,
        TrunkTransport::Tcp => sip_net::TransportKind::Tcp,
        TrunkTransport::Tls => sip_net::TransportKind::Tls,
    }
}

fn gauge(trunk: &str, up: bool) {
    metrics::gauge!("switchboard_trunk_up", "trunk" => trunk.to_owned()).set(if up {
        1.0
    } else {
        0.0
    });
}

/// The addresses `host:port` resolves to (A/AAAA, in the system resolver's order; an IP
/// literal resolves to itself).
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let mut addresses: Vec<SocketAddr> = Vec::new();
    for address in tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| e.to_string())?
    {
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    if addresses.is_empty() {
        return Err("no address for the name".to_string());
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // reason: test code

    use super::*;
    use crate::config::TrunkConfig;
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::PathBuf;

    fn trunk(name: &str, proxy: String) -> TrunkConfig {
        TrunkConfig {
            name: name.into(),
            proxy,
            username: None,
            password: None,
            password_file: None,
            register: false,
            register_expires: 3600,
            allow: Vec::new(),
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
        let metrics = crate::telemetry::metrics();
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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = metrics.render();
            if text.contains("switchboard_trunk_up{trunk=\"gauge-up\"} 1")
                && text.contains("switchboard_trunk_up{trunk=\"gauge-down\"} 0")
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gauges never settled:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Trunk events are taken out of the stream the call runtime reads.
        assert!(passed.try_recv().is_err());
        drop(peer);
    }

    /// sipp as a digest registrar on a free loopback port, running `scenario`.
    fn registrar(scenario: &str, dir: &std::path::Path) -> Option<(switchboard_e2e::Peer, u16)> {
        let port = switchboard_e2e::free_port();
        let args: Vec<String> = [
            "-sf",
            &switchboard_e2e::scenario(scenario).display().to_string(),
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            "1",
            "-nostdin",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        switchboard_e2e::Peer::spawn("sipp", &args, dir).map(|peer| (peer, port))
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
        let names = trunks.registrations.clone();
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
                    granted.insert(names[&registration].clone(), expires);
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
        let metrics = crate::telemetry::metrics();
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = test_pki(dir.path(), "localhost");
        let (other_ca, _, _) = test_pki(dir.path(), "other.test");
        // The server listens where "localhost" resolves first, as the trunk will.
        let loopback = resolve("localhost", 0).await.unwrap()[0];
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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = metrics.render();
            if text.contains("switchboard_trunk_up{trunk=\"tls-trusted\"} 1")
                && text.contains("switchboard_trunk_up{trunk=\"tls-untrusted\"} 0")
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gauges never settled:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(
            logs.contains("TLS handshake failed: certificate not trusted"),
            "{logs}"
        );
        assert!(logs.contains("trunk down"), "{logs}");
        drop((server, other_server));
    }
}
