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

use crate::config::{Config, TrunkConfig};

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
        let address =
            resolve(&target.host, target.port)
                .await
                .map_err(|reason| TrunkError::Resolve {
                    trunk: trunk.name.clone(),
                    host: target.host.clone(),
                    reason,
                })?;
        if target.transport == crate::config::TrunkTransport::Tls {
            // bind_sip does not configure TLS yet; the driver refuses TLS targets.
            tracing::warn!(trunk = %trunk.name, "SIP over TLS is not configured on this box: the trunk will be reported down");
        }
        let sip_error = |source| TrunkError::Sip {
            trunk: trunk.name.clone(),
            source,
        };
        if trunk.options_interval > 0 {
            let uri = Uri::parse(&target.uri).map_err(|reason| TrunkError::Resolve {
                trunk: trunk.name.clone(),
                host: target.uri.clone(),
                reason: reason.to_string(),
            })?;
            let interval = Duration::from_secs(u64::from(trunk.options_interval));
            let handle = sip
                .keepalive(uri, Some(address), interval)
                .await
                .map_err(sip_error)?;
            self.keepalives.insert(handle, trunk.name.clone());
            tracing::info!(trunk = %trunk.name, %address, ?interval, "trunk keep-alive started");
        }
        if trunk.register {
            // Checked at load: a registering trunk has a username.
            let Some(user) = &trunk.username else {
                return Ok(());
            };
            // The core does no DNS: the registrar is addressed by what the name resolved to;
            // the address-of-record keeps the name the PBX knows itself by.
            let transport = match target.transport {
                crate::config::TrunkTransport::Udp => "",
                crate::config::TrunkTransport::Tcp => ";transport=tcp",
                crate::config::TrunkTransport::Tls => ";transport=tls",
            };
            let host = match address {
                SocketAddr::V4(a) => a.to_string(),
                SocketAddr::V6(a) => a.to_string(),
            };
            let parse = |s: String| {
                Uri::parse(&s).map_err(|reason| TrunkError::Resolve {
                    trunk: trunk.name.clone(),
                    host: s.clone(),
                    reason: reason.to_string(),
                })
            };
            let registrar = parse(format!("sip:{host}{transport}"))?;
            let aor = parse(format!("sip:{user}@{}", target.host))?;
            let handle = sip
                .register(registrar, aor, trunk.register_expires)
                .await
                .map_err(sip_error)?;
            self.registrations.insert(handle, trunk.name.clone());
            tracing::info!(trunk = %trunk.name, %address, "registering");
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
                    tracing::warn!(trunk = %name, status, "trunk down: no answer to OPTIONS");
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

fn gauge(trunk: &str, up: bool) {
    metrics::gauge!("switchboard_trunk_up", "trunk" => trunk.to_owned()).set(if up {
        1.0
    } else {
        0.0
    });
}

/// The first address `host:port` resolves to (an IP literal resolves to itself).
async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let mut addresses = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| e.to_string())?;
    addresses
        .next()
        .ok_or_else(|| "no address for the name".to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // reason: test code

    use super::*;
    use crate::config::TrunkConfig;
    use std::net::{IpAddr, Ipv4Addr};

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

    /// PBX-extension mode end to end: the trunk's credentials reach the SIP endpoint through
    /// `bind_sip`, the registration starts from `Trunks::start`, and sipp acting as a digest
    /// registrar (user alice, password s3cret) accepts it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_registering_trunk_registers_with_its_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let port = switchboard_e2e::free_port();
        let args: Vec<String> = [
            "-sf",
            &switchboard_e2e::scenario("registrar_digest.xml")
                .display()
                .to_string(),
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
        let Some(_sipp) = switchboard_e2e::Peer::spawn("sipp", &args, dir.path()) else {
            return;
        };
        let config = Config {
            trunks: vec![TrunkConfig {
                username: Some("alice".into()),
                password: Some("s3cret".into()),
                register: true,
                options_interval: 0,
                ..trunk("pbx", format!("sip:127.0.0.1:{port}"))
            }],
            ..Config::default()
        };
        let sip = crate::bind_sip(&config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let trunks = Trunks::start(&config, &sip.handle).await;
        let mut events = trunks.tap(sip.events);
        let event = tokio::time::timeout(switchboard_e2e::DEADLINE, events.recv())
            .await
            .expect("an answer from the registrar")
            .unwrap();
        // The registrar grants 4 s after checking the digest (403 otherwise).
        assert!(
            matches!(event, Event::Registered { expires: 4, .. }),
            "{event:?}"
        );
    }
}
