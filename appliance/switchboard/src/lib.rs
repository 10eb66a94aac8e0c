//! The `switchboard` appliance: configuration, the service skeleton and its wiring.
//!
//! [`run`] is the whole daemon, given its configuration, its already-bound listener and a shutdown
//! signal, so tests start it on `127.0.0.1:0` exactly as `switchboard serve` does on its ports.

pub mod auth;
pub mod campaigns;
pub mod capacity;
pub mod cli;
pub mod config;
pub mod dialer;
pub mod documents;
pub mod engines;
pub mod firewall;
pub mod http;
pub mod keys;
pub mod knowledge;
pub mod language_model;
pub mod pii;
pub mod retention;
pub mod runtime;
pub mod service;
pub mod telemetry;
pub mod telephony;
pub mod trunks;

use config::Config;
use engines::EngineError;
use service::Notifier;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use switchboard_store::{Store, StoreError};
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("agent {agent}: cannot read prompt_file: {source}")]
    AgentPrompt {
        agent: String,
        source: std::io::Error,
    },
    #[error("SIP: {0}")]
    Sip(sip_net::Error),
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error("admin HTTPS: {path}: {reason}")]
    Tls {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("{0:?} is not a phone number or SIP user")]
    NotANumber(String),
    #[error(
        "cannot remove the recording {path} (the log says why): the caller's records are kept \
         until it is gone; run the erasure again"
    )]
    Recording { path: String },
    #[error(
        "recordings of this caller are on {0}: run the erasure there, then here again (this \
         box's recordings of them are removed; their records are kept until then)"
    )]
    RecordingsElsewhere(String),
    #[error(
        "{0} is in use by a running switchboard (its lock file switchboard.lock is held): stop \
         the service first"
    )]
    DataDirInUse(std::path::PathBuf),
    #[error("cannot lock the data directory {path}: {source}")]
    Lock {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Locks the data directory for as long as the file returned is open. The daemon holds it while
/// it runs, so a second daemon, or a command that must run alone (a key rotation), on the same
/// directory is refused rather than racing it.
pub fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, Error> {
    let path = dir.join("switchboard.lock");
    let lock = |source| Error::Lock {
        path: path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::DataDirInUse(dir.to_owned())),
        Err(std::fs::TryLockError::Error(source)) => Err(lock(source)),
    }
}

/// Sockets bound before [`run`], so the caller picks the ports (tests bind port 0).
pub struct Listeners {
    pub http: TcpListener,
    /// SIP over UDP and TCP on one address, its driver already running.
    pub sip: sip_net::SipNet,
}

impl Listeners {
    /// Binds what the configuration names.
    pub async fn bind(config: &Config) -> Result<Self, Error> {
        let addr = config.http.listen;
        let http = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                what: "HTTP",
                addr,
                source,
            })?;
        let sip = bind_sip(config, config.sip.listen).await?;
        Ok(Listeners { http, sip })
    }
}

/// Starts the SIP driver on `addr` (port 0: any free port) with the configured NAT address.
pub async fn bind_sip(
    config: &Config,
    addr: std::net::SocketAddr,
) -> Result<sip_net::SipNet, Error> {
    let mut sip = sip_net::SipConfig::new(addr);
    sip.endpoint.external_addr = config
        .sip
        .external_address
        .map(|ip| std::net::SocketAddr::new(ip, addr.port()));
    sip.endpoint.user_agent = Some(format!("Switchboard/{}", env!("CARGO_PKG_VERSION")));
    sip.max_connections_per_source = config.sip.max_connections_per_source as usize;
    sip.max_connections = config.sip.max_connections as usize;
    match config.inbound_allow() {
        Some(blocks) if blocks.is_empty() => {
            tracing::warn!(
                "no SIP source may call: sip.allow and every trunk's allow are empty \
                 (list the PBX or trunk there, or set sip.allow_any = true to accept anyone)"
            );
            sip.allow_list = sip_net::AllowList::only(blocks);
        }
        Some(blocks) => sip.allow_list = sip_net::AllowList::only(blocks),
        None => tracing::warn!("sip.allow_any: INVITEs are accepted from any source"),
    }
    sip_net::SipNet::bind(sip).await.map_err(|e| match e {
        sip_net::Error::Bind { source, .. } => Error::Bind {
            what: "SIP",
            addr,
            source,
        },
        other => Error::Sip(other),
    })
}

/// The admin listener's TLS, unless `http.tls` leaves it plain; a certificate made now is
/// announced with its fingerprint, which operators compare with what their browser shows.
fn admin_tls(
    config: &Config,
    http_addr: std::net::SocketAddr,
) -> Result<Option<http::tls::AdminTls>, Error> {
    if !http::tls::enabled(config.http.tls, http_addr) {
        if !http_addr.ip().is_loopback() {
            tracing::warn!(%http_addr, "http.tls = off: the admin API is plain HTTP on the network");
        }
        return Ok(None);
    }
    let mut hosts = vec!["localhost".to_owned(), config.node_name()];
    let host = dialable_host(config.sip.external_address, http_addr.ip());
    if !host.is_unspecified() {
        hosts.push(host.to_string());
    }
    hosts.dedup();
    let tls = http::tls::load(&config.http, &config.data_dir, &hosts)?;
    let made = if tls.created {
        "made a self-signed"
    } else {
        "using the"
    };
    tracing::info!(
        certificate = %tls.certificate.display(),
        sha256 = %tls.fingerprint,
        "admin HTTPS: {made} certificate"
    );
    Ok(Some(tls))
}

/// Runs the daemon until `shutdown` resolves.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    run_as_service(
        config,
        listeners,
        shutdown,
        Arc::new(Notifier::new(None, None)),
    )
    .await
}

/// [`run`], telling the service manager when the box is ready, that it is alive, and when it
/// stops.
pub async fn run_as_service(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
    notifier: Arc<Notifier>,
) -> Result<(), Error> {
    // The recorder first, so that nothing counted while starting is lost.
    telemetry::metrics();
    std::fs::create_dir_all(&config.data_dir).map_err(|source| {
        Error::Store(StoreError::BadUrl {
            url: config.data_dir.display().to_string(),
            reason: format!("cannot create the data directory: {source}"),
        })
    })?;
    let _lock = lock_data_dir(&config.data_dir)?;
    let store = open_store(&config).await?;
    let schema = store.schema_versions().await?;
    tracing::info!(database = %switchboard_store::redact(&config.database_url()), ?schema, "database ready");
    seed_agents(&config, &store).await?;
    close_interrupted_calls(&config, &store).await?;
    let retention = tokio::spawn(retention::run(config.clone(), store.clone()));
    let models = check_models(&config);
    if let Err(why) = &models {
        tracing::error!(dir = %config.models.dir.display(), "models not usable: {why}; /readyz stays not ready");
    }
    let engines = match &models {
        Ok(()) => load_engines(&config).await,
        Err(why) => Err(Arc::clone(why)),
    };
    let knowledge = open_knowledge(&config, &engines).await;
    if let Err(why) = &knowledge {
        tracing::error!("knowledge cannot be managed over the API: {why}");
    }
    let capacity = capacity::Capacity::new(
        config.calls.max_concurrent as usize,
        config.calls.latency_target(),
    );
    let runtime = match engines {
        Ok(engines) => {
            let sip = listeners.sip.handle.clone();
            start_runtime(&config, &store, sip, engines, capacity.clone()).await
        }
        Err(_) => None,
    };
    let models_usable = models.is_ok();
    let state = http::AppState::new(store.clone(), models, knowledge)
        .with_runtime(runtime.clone())
        .with_monitoring(config.monitoring_allow())
        .with_node(config.node_name())
        .with_recordings(
            runtime::recording::Vault::open(&config.data_dir)
                .inspect_err(|e| tracing::error!("recordings cannot be served: {e}"))
                .ok(),
        );
    let sip_addr = listeners.sip.local_addr;
    let admission = telephony::Admission::new(
        store.clone(),
        capacity.clone(),
        &config.node_name(),
        config.trusted_callers(),
    );
    let mut sip = listeners.sip;
    let trunks = trunks::Trunks::start(&config, &sip.handle).await;
    sip.events = trunks.clone().tap(sip.events);
    let calls = admission.clone();
    let (lines, dials) = telephony::Lines::new();
    let host = dialable_host(config.sip.external_address, sip_addr.ip());
    let dialer = runtime.clone().map(|runtime| {
        let local = std::net::SocketAddr::new(host, sip_addr.port()).to_string();
        let dialer = dialer::Dialer::new(
            &config,
            store.clone(),
            runtime,
            lines,
            trunks,
            capacity,
            local,
        );
        tokio::spawn(dialer.run())
    });
    let sip_task = tokio::spawn(telephony::serve(
        sip,
        admission,
        store.clone(),
        runtime,
        dials,
    ));
    for a in &config.agents {
        if let Some(n) = a.numbers.first() {
            tracing::info!(agent = %a.name, "call sip:{n}@{host}:{}", sip_addr.port());
        }
    }
    let http_addr = listeners.http.local_addr().map_err(Error::Http)?;
    let tls = admin_tls(&config, http_addr)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%http_addr, "{scheme}://{}:{}/ listening (admin UI and API, /healthz, /readyz, /metrics)", dialable_host(config.sip.external_address, http_addr.ip()), http_addr.port());
    let state = state.with_https(tls.is_some());
    notifier.ready(&if models_usable {
        format!("{} agent(s); SIP on {sip_addr}", config.agents.len())
    } else {
        "up, not ready: the models are not usable (see the log)".into()
    });
    let watchdog = notifier.keep_alive_every().map(|every| {
        let notifier = Arc::clone(&notifier);
        tokio::spawn(async move {
            // From the runtime itself: a wedged runtime misses them, and systemd restarts it.
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                notifier.keep_alive();
            }
        })
    });
    http::serve(listeners.http, tls.map(|t| t.acceptor), state, shutdown)
        .await
        .map_err(Error::Http)?;
    notifier.stopping();
    if let Some(dialer) = dialer {
        dialer.abort();
    }
    sip_task.abort();
    retention.abort();
    // Calls still up are hung up by their tasks (the SIP event stream just closed); their
    // records are closed before the database is.
    if !calls.drain(std::time::Duration::from_secs(20)).await {
        tracing::warn!("calls still running at shutdown; their records stay open");
    }
    store.close().await;
    if let Some(w) = watchdog {
        w.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// The database, personal data in it sealed with this box's data key ([`keys::data_key`]).
pub async fn open_store(config: &Config) -> Result<Store, Error> {
    let key = keys::data_key(&config.data_dir)?;
    Ok(Store::open(&config.database_url(), key).await?)
}

/// [`open_store`] for what only looks: `None` before the embedded database exists, and a
/// missing data key is an error, not a new key. Neither a database nor a key is made.
pub async fn open_existing_store(config: &Config) -> Result<Option<Store>, Error> {
    if config
        .embedded_database()
        .is_some_and(|file| !file.exists())
    {
        return Ok(None);
    }
    let key = switchboard_store::DataKey::new(&keys::load_existing(&config.data_dir, keys::DATA)?);
    Ok(Some(Store::open(&config.database_url(), key).await?))
}

/// Creates or updates the agents declared in the configuration.
async fn seed_agents(config: &Config, store: &Store) -> Result<(), Error> {
    for a in &config.agents {
        let prompt = a.prompt_text().map_err(|source| Error::AgentPrompt {
            agent: a.name.clone(),
            source,
        })?;
        let agent = switchboard_store::Agent {
            id: switchboard_store::AgentId::new(),
            name: a.name.clone(),
            numbers: a.numbers.clone(),
            greeting: a.greeting.clone(),
            prompt,
            consent: match a.consent {
                config::ConsentSetting::Required => switchboard_store::Consent::Required,
                config::ConsentSetting::Off => switchboard_store::Consent::Off,
            },
            transfer_to: a.transfer_to.clone(),
            language: a.language.clone(),
            voice: a.voice.clone(),
        };
        store.upsert_agent(&agent).await?;
        tracing::info!(agent = %a.name, numbers = ?a.numbers, "agent ready");
    }
    Ok(())
}

/// Loads the engines; a failure is logged precisely and leaves the daemon up (health, admin)
/// while calls are turned away with 480.
async fn load_engines(config: &Config) -> Result<Arc<engines::Engines>, Arc<EngineError>> {
    let dir = config.models.dir.clone();
    let profile = config.models.profile.into();
    let backend = config.models.llm.clone();
    let calls = config.calls.max_concurrent;
    let loaded =
        tokio::task::spawn_blocking(move || engines::Engines::load(&dir, profile, &backend, calls))
            .await;
    match loaded {
        Ok(Ok(e)) => Ok(Arc::new(e)),
        Ok(Err(e)) => {
            tracing::error!("engines not loaded, calls will be turned away: {e}");
            Err(Arc::new(e))
        }
        Err(e) => {
            tracing::error!("engine loading crashed, calls will be turned away: {e}");
            Err(Arc::new(EngineError::Crashed("engine")))
        }
    }
}

/// The agents' knowledge for the API, sharing the engines' embedder; without engines, the
/// embedder alone may still load (a broken LLM should not stop knowledge management).
async fn open_knowledge(
    config: &Config,
    engines: &Result<Arc<engines::Engines>, Arc<EngineError>>,
) -> Result<Arc<knowledge::Knowledge>, Arc<EngineError>> {
    // Uploads are parsed first by this program in a child process (`documents`).
    let program = config
        .program
        .clone()
        .or_else(|| std::env::current_exe().ok())
        .unwrap_or_else(|| "switchboard".into());
    let isolate = move |k: knowledge::Knowledge| {
        k.with_isolated_parsing(program, documents::ParseLimits::default())
    };
    if let Ok(e) = engines {
        let embedder = Arc::clone(&e.embedder);
        return Ok(Arc::new(isolate(knowledge::Knowledge::new(
            &config.data_dir,
            embedder,
        ))));
    }
    let (data, models) = (config.data_dir.clone(), config.models.dir.clone());
    tokio::task::spawn_blocking(move || knowledge::Knowledge::load(&data, &models))
        .await
        .map_err(|_| Arc::new(EngineError::Crashed("embedder")))?
        .map(|k| Arc::new(isolate(k)))
        .map_err(Arc::new)
}

/// Closes the calls this box left open when it last stopped without ending them (a crash, a
/// power cut), attaching what their recordings hold up to the cut.
async fn close_interrupted_calls(config: &Config, store: &Store) -> Result<(), Error> {
    for id in store.close_interrupted_calls(&config.node_name()).await? {
        let path = runtime::recording::path_in(&config.data_dir, id.as_str());
        let recording = path.exists().then(|| path.display().to_string());
        tracing::warn!(call = %id, recorded = recording.is_some(), "call cut off when the daemon last stopped; closed as interrupted");
        let end = switchboard_store::EndOfCall {
            recording_path: recording,
            ..switchboard_store::EndOfCall::new(switchboard_store::EndReason::Interrupted)
        };
        store
            .finish_call(&id, switchboard_store::UnixMillis::now(), &end)
            .await?;
    }
    Ok(())
}

/// Prepares every agent on the loaded engines. A failure is logged precisely and leaves the
/// daemon up (health endpoints, admin) while calls are turned away with 480.
async fn start_runtime(
    config: &Config,
    store: &Store,
    sip: sip_net::SipHandle,
    engines: Arc<engines::Engines>,
    capacity: Arc<capacity::Capacity>,
) -> Option<Arc<runtime::Runtime>> {
    match runtime::Runtime::start(config, store.clone(), sip, engines, capacity).await {
        Ok(r) => Some(Arc::new(r)),
        Err(e) => {
            tracing::error!("call runtime not started, calls will be turned away: {e}");
            None
        }
    }
}

/// Whether the configured model set is installed.
fn check_models(config: &Config) -> Result<(), Arc<EngineError>> {
    let dir = &config.models.dir;
    if !dir.is_dir() {
        return Err(Arc::new(EngineError::NotInstalled(dir.clone())));
    }
    Ok(())
}

/// The host a softphone should dial: the external address when configured, the listener's
/// address when it is one, else (listening on every interface) this box's first address that is
/// not loopback, as the kernel lists them (`/proc/net/fib_trie`: no packet sent, no lookup).
fn dialable_host(external: Option<IpAddr>, listening: IpAddr) -> IpAddr {
    if let Some(ip) = external {
        return ip;
    }
    if !listening.is_unspecified() {
        return listening;
    }
    let table = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    local_addresses(&table)
        .into_iter()
        .find(|ip| !ip.is_loopback())
        .map_or(listening, IpAddr::V4)
}

/// The addresses the kernel's routing table marks as this host's own (`/32 host LOCAL`, listed
/// under the line that names the address).
fn local_addresses(fib_trie: &str) -> Vec<std::net::Ipv4Addr> {
    let mut found = Vec::new();
    let mut previous = "";
    for line in fib_trie.lines() {
        if line.trim() == "/32 host LOCAL" {
            let named = previous.trim().trim_start_matches(['|', '+', '-', ' ']);
            if let Ok(ip) = named.parse() {
                if !found.contains(&ip) {
                    found.push(ip);
                }
            }
        }
        previous = line;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_listening_everywhere_logs_an_address_a_phone_can_dial() {
        let table =
            "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     \
            +-- 127.0.0.0/8 2 0 2\n        |-- 127.0.0.1\n           /32 host LOCAL\n     \
            |-- 192.0.2.5\n        /32 host LOCAL\n     |-- 192.0.2.255\n        \
            /32 link BROADCAST\nLocal:\n        |-- 192.0.2.5\n           /32 host LOCAL\n";
        let ips = local_addresses(table);
        assert_eq!(
            ips,
            [
                "127.0.0.1".parse::<std::net::Ipv4Addr>().unwrap(),
                "192.0.2.5".parse().unwrap()
            ]
        );
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let external: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(dialable_host(Some(external), any), external);
        let bound: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(dialable_host(None, bound), bound);
    }
}
