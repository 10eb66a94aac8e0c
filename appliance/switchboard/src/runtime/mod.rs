//! The call runtime: where the telephony stack and the local engines meet.
//!
//! At start each configured agent gets its [`AgentRuntime`]: the dialog (prompt prefix
//! prefilled once, knowledge ingested), its voice and its fixed prompts rendered to 8 kHz.
//! [`Runtime::answer`] takes an admitted INVITE: RTP ports, SDP answer, 200 OK, and a task per
//! call (`call::run`) that lives until the call ends and its record is closed.
//!
//! When an agent's knowledge changes over the API, [`Runtime::knowledge_changed`] has its dialog
//! loaded again in the background (one agent at a time, changes in a burst coalesced); new calls
//! get the new dialog, calls already running keep theirs.

mod call;
mod dial;
mod playback;
pub mod prompts;
pub mod recording;
mod tts;
mod vad;

pub use call::to_16k;
pub use dial::{Dialled, OutboundCall};

use crate::capacity::Capacity;
use crate::config::{AgentConfig, CallsConfig, Config, ConsentSetting};
use crate::engines::{Engines, Models};
use crate::telephony::CallerId;
use media_net::PortPool;
use prompts::Prompts;
use recording::Vault;
use sip_message::Uri;
use sip_net::{IncomingCall, SipHandle};
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use switchboard_agent::{AgentSpec, Dialog, KnowledgeMode};
use switchboard_call::policy::profanity::ProfanityFilter;
use switchboard_call::{CallConfig, ConsentMode};
use switchboard_store::{AgentId, CallRecordId, CallerMemory, Store, UnixMillis};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tracing::Instrument;

pub type Conversation<M> =
    switchboard_agent::Conversation<<M as Models>::Llm, <M as Models>::Embedder>;
pub type AgentDialog<M> = Dialog<<M as Models>::Llm, <M as Models>::Embedder>;

/// Why the runtime could not start, load an agent, answer a call, or get an engine's result.
/// Each reaches the log with its cause; a call that could not be answered gets
/// [`RuntimeError::rejection`], the end reason is chosen in `call::finish`.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("agent {agent}: {source}")]
    Agent {
        agent: String,
        #[source]
        source: Box<RuntimeError>,
    },
    #[error("not in the database (seeding failed)")]
    NotSeeded,
    #[error("agent {0} is not loaded (declare it in the config)")]
    NotLoaded(String),
    #[error("prompt_file: {0}")]
    PromptFile(#[source] std::io::Error),
    /// The caller's SDP names a destination they may not aim media at
    /// ([`media_net::media_destination_allowed`]).
    #[error("the offer sends media to {0}, where a caller may not aim it")]
    MediaDestination(std::net::SocketAddr),
    #[error("the operating system's random source failed")]
    Randomness,
    #[error("transfer_to {target:?}: {reason}")]
    TransferTarget {
        target: String,
        reason: &'static str,
    },
    #[error(transparent)]
    Engine(#[from] crate::engines::EngineError),
    /// A model engine's own error (whisper, Piper), kept with what was asked of it.
    #[error("{what}: {source}")]
    Model {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("resampling: {0}")]
    Resample(#[from] media_audio::Error),
    #[error("unsupported sample rate {0} Hz")]
    SampleRate(u32),
    #[error(transparent)]
    Dialog(#[from] switchboard_agent::Error),
    #[error("RTP ports: {0}")]
    Ports(#[source] media_net::Error),
    #[error("SDP: {0}")]
    Sdp(#[source] media_net::Error),
    #[error("SIP: {0}")]
    Sip(#[from] sip_net::Error),
    /// An outbound call's trunk has no address yet and its target names no host to send to.
    #[error("no route to the trunk (not located yet)")]
    NoRoute,
    /// A blocking task panicked (a bug in an engine or in us); the call carries on without it.
    #[error("the {0} task crashed")]
    Crashed(&'static str),
    #[error("recordings: {0}")]
    Recording(#[from] recording::RecordingError),
}

impl RuntimeError {
    /// The SIP answer to a call this error kept from being answered: 488 when its offer has no
    /// media we may take (RFC 3261 §21.4.26), else 480 (the box, not the caller, failed).
    pub fn rejection(&self) -> sip_net::Rejection {
        match self {
            RuntimeError::Sdp(_) | RuntimeError::MediaDestination(_) => {
                sip_net::Rejection::NotAcceptableHere
            }
            _ => sip_net::Rejection::TemporarilyUnavailable,
        }
    }

    /// A model engine's error, with what was asked of it.
    pub fn model(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        RuntimeError::Model {
            what: what.into(),
            source: Box::new(source),
        }
    }
}

/// What the SIP side reports about a call: ours while it rings, then the running call's.
#[derive(Debug)]
pub enum SipSignal {
    /// Our INVITE: a provisional answer (180 Ringing, 183 Session Progress).
    Progress(u16),
    /// Our INVITE was answered (200 OK, ACKed); the peer's SDP answer.
    Answered(Vec<u8>),
    /// Our INVITE failed with this final status (408 on timeout, 487 after our CANCEL).
    Failed(u16),
    Ended {
        by_peer: bool,
    },
    Dtmf(char),
    Reoffer(Vec<u8>),
    TransferSucceeded,
    TransferFailed(u16),
}

/// One agent, ready to take calls.
pub struct AgentRuntime<M: Models = Engines> {
    /// The agent's id in the store (caller memory is kept per agent).
    pub id: AgentId,
    pub name: String,
    pub language: String,
    /// Replaced when the agent's knowledge changes; a call keeps the one it started with.
    dialog: RwLock<AgentDialog<M>>,
    pub voice: Arc<M::Voice>,
    pub prompts: Prompts,
    pub call_config: CallConfig,
    pub transfer_to: Option<Uri>,
}

impl<M: Models> AgentRuntime<M> {
    /// The dialog new calls start from.
    pub fn dialog(&self) -> AgentDialog<M> {
        self.dialog
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_dialog(&self, dialog: AgentDialog<M>) {
        *self.dialog.write().unwrap_or_else(PoisonError::into_inner) = dialog;
    }
}

/// Where an agent's loaded knowledge stands, as the admin API shows it.
#[derive(Clone, Debug)]
pub struct AgentStatus {
    pub knowledge: KnowledgeMode,
    /// When the dialog new calls use was loaded.
    pub loaded_at: UnixMillis,
    /// A knowledge change is waiting for, or in, a reload.
    pub reloading: bool,
    /// Why the last reload failed (calls then keep the dialog loaded before).
    pub reload_error: Option<String>,
}

/// Reload requests and what became of them, per agent.
type Reloads = HashMap<String, ReloadState>;

#[derive(Default)]
struct ReloadState {
    requested: u64,
    applied: u64,
    loaded_at: Option<UnixMillis>,
    error: Option<String>,
}

/// What every call shares.
pub struct Shared<M: Models = Engines> {
    pub store: Store,
    pub sip: SipHandle,
    pub engines: Arc<M>,
    pub vault: Option<Vault>,
    /// Told each turn's voice-to-voice latency, from which the call limit is learnt.
    pub capacity: Arc<Capacity>,
    pub engine_timeout: Duration,
    /// How long a first offence of abuse blocks the caller's number.
    pub abuse_block: Duration,
}

impl<M: Models> Shared<M> {
    /// The summary of this caller's earlier calls to this agent, if any.
    /// Only for a number a trusted source asserted: anyone can claim anyone's number.
    async fn memory_of(&self, agent: &AgentRuntime<M>, caller: &CallerId) -> Option<String> {
        if !caller.verified {
            return None;
        }
        match self.store.caller_memory(&agent.id, &caller.number).await {
            Ok(m) => m.map(|m| m.summary),
            Err(e) => {
                tracing::warn!("caller memory unavailable: {e}");
                None
            }
        }
    }

    /// Keeps what this call was about for the caller's next call.
    async fn remember(
        &self,
        agent: &AgentRuntime<M>,
        caller: &CallerId,
        call: &CallRecordId,
        outcome: &switchboard_agent::Outcome,
    ) {
        if !caller.verified || outcome.summary.trim().is_empty() {
            return;
        }
        let memory = CallerMemory {
            agent_id: agent.id.clone(),
            caller_number: caller.number.clone(),
            summary: outcome.summary.clone(),
            updated_at: UnixMillis::now(),
            last_call_id: Some(call.clone()),
        };
        if let Err(e) = self.store.remember_caller(&memory).await {
            tracing::error!("cannot store the caller's memory: {e}");
        }
    }
}

/// The call runtime on the engines `M` (the daemon's: the loaded [`Engines`]).
pub struct Runtime<M: Models = Engines> {
    shared: Arc<Shared<M>>,
    agents: Arc<HashMap<String, Arc<AgentRuntime<M>>>>,
    reloads: Arc<Mutex<Reloads>>,
    /// Names of agents to load again, to [`reload_dialogs`].
    reload_tx: mpsc::UnboundedSender<String>,
    ports: PortPool,
    /// The address written into our SDP; `None`: the local address facing each caller.
    media_address: Option<IpAddr>,
    srtp: crate::config::SrtpMode,
    /// When the agents were first loaded.
    started: UnixMillis,
}

impl<M: Models> Runtime<M> {
    /// Prepares every configured agent (seconds per agent: prefix prefill, prompt rendering).
    pub async fn start(
        config: &Config,
        store: Store,
        sip: SipHandle,
        engines: Arc<M>,
        capacity: Arc<Capacity>,
    ) -> Result<Runtime<M>, RuntimeError> {
        let vault = Vault::open(&config.data_dir)?;
        let mut agents = HashMap::new();
        for agent in &config.agents {
            let id = store
                .agent_by_name(&agent.name)
                .await
                .ok()
                .flatten()
                .map(|a| a.id)
                .ok_or_else(|| RuntimeError::Agent {
                    agent: agent.name.clone(),
                    source: Box::new(RuntimeError::NotSeeded),
                })?;
            let loaded = {
                let (engines, agent, calls, data_dir) = (
                    Arc::clone(&engines),
                    agent.clone(),
                    config.calls.clone(),
                    config.data_dir.clone(),
                );
                tokio::task::spawn_blocking(move || {
                    load_agent(id, engines.as_ref(), &agent, &calls, &data_dir)
                })
                .await
            };
            let loaded = loaded
                .map_err(|_| RuntimeError::Crashed("agent loading"))
                .and_then(|r| r)
                .map_err(|source| RuntimeError::Agent {
                    agent: agent.name.clone(),
                    source: Box::new(source),
                })?;
            agents.insert(agent.name.clone(), Arc::new(loaded));
        }
        let listen = config.sip.listen.ip();
        let range = config.calls.rtp_ports;
        let ports =
            PortPool::new(listen, range.first, range.last, false).map_err(RuntimeError::Ports)?;
        let media_address = config
            .sip
            .external_address
            .or((!listen.is_unspecified()).then_some(listen));
        let agents = Arc::new(agents);
        let reloads = Arc::new(Mutex::new(Reloads::default()));
        let (reload_tx, reload_rx) = mpsc::unbounded_channel();
        tokio::spawn(reload_dialogs(
            Arc::clone(&agents),
            Arc::clone(&reloads),
            reload_rx,
        ));
        let started = UnixMillis::now();
        Ok(Runtime {
            shared: Arc::new(Shared {
                store,
                sip,
                engines,
                vault: Some(vault),
                capacity,
                engine_timeout: Duration::from_millis(config.calls.engine_timeout_ms.into()),
                abuse_block: Duration::from_secs(u64::from(config.calls.abuse_block_hours) * 3600),
            }),
            agents,
            reloads,
            reload_tx,
            ports,
            media_address,
            srtp: config.sip.srtp,
            started,
        })
    }

    /// The agent's stored knowledge changed (a document uploaded or removed): its dialog is loaded
    /// again in the background for the calls that start afterwards. Unknown agents are ignored
    /// (an agent in the database but not in the config takes no calls).
    pub fn knowledge_changed(&self, agent: &str) {
        if !self.agents.contains_key(agent) {
            return;
        }
        lock(&self.reloads)
            .entry(agent.to_owned())
            .or_default()
            .requested += 1;
        // The reload task ends only with the runtime, which owns this sender.
        let _ = self.reload_tx.send(agent.to_owned());
    }

    /// The loaded agent's knowledge, or `None` when the agent takes no calls here.
    pub fn agent_status(&self, agent: &str) -> Option<AgentStatus> {
        let runtime = self.agents.get(agent)?;
        let reloads = lock(&self.reloads);
        let state = reloads.get(agent);
        Some(AgentStatus {
            knowledge: runtime.dialog().knowledge_mode(),
            loaded_at: state.and_then(|s| s.loaded_at).unwrap_or(self.started),
            reloading: state.is_some_and(|s| s.requested > s.applied),
            reload_error: state.and_then(|s| s.error.clone()),
        })
    }

    /// Answers an admitted call and starts its task, which holds `slot` until the call's record
    /// is closed. Returns where to send the call's SIP events.
    pub async fn answer(
        &self,
        incoming: &IncomingCall,
        agent: &str,
        id: CallRecordId,
        caller: CallerId,
        slot: OwnedSemaphorePermit,
    ) -> Result<mpsc::UnboundedSender<SipSignal>, RuntimeError> {
        let agent = self.agent(agent)?;
        let (sockets, caps) = self.media_towards(incoming.source)?;
        let (answer, media_config) =
            media_net::answer_offer(&incoming.offer, &caps, call::rand_seed())
                .map_err(RuntimeError::Sdp)?;
        let media_config = accept_media(media_config, incoming.source.ip())?;
        let media = media_net::RtpSession::spawn(sockets, media_config, 250);
        self.shared.sip.answer(incoming.call, answer).await?;
        let (signals_tx, signals) = mpsc::unbounded_channel();
        let task = call::CallTask {
            id,
            caller,
            call: incoming.call,
            agent,
            shared: Arc::clone(&self.shared),
            media,
            caps,
            peer: incoming.source.ip(),
            signals,
        };
        spawn_call(task, slot);
        Ok(signals_tx)
    }

    fn agent(&self, name: &str) -> Result<Arc<AgentRuntime<M>>, RuntimeError> {
        self.agents
            .get(name)
            .cloned()
            .ok_or_else(|| RuntimeError::NotLoaded(name.to_owned()))
    }

    /// RTP ports for a call with `peer`, and what we offer or answer with on them.
    fn media_towards(
        &self,
        peer: SocketAddr,
    ) -> Result<(media_net::RtpSockets, media_net::LocalCapabilities), RuntimeError> {
        let sockets = self.ports.allocate().map_err(RuntimeError::Ports)?;
        let address = self
            .media_address
            .unwrap_or_else(|| local_address_towards(peer));
        let mut caps = media_net::local_capabilities(address, &sockets, call::rand_seed() >> 1);
        caps.srtp = srtp_policy(self.srtp)?;
        Ok((sockets, caps))
    }
}

/// The negotiated session, if the peer signalling from `peer` may aim our media where its SDP
/// says; media is then accepted from the SDP's address, or latched from that host (a NAT).
fn accept_media(
    mut config: media_net::RtpConfig,
    peer: IpAddr,
) -> Result<media_net::RtpConfig, RuntimeError> {
    if let Some(remote) = config.remote_rtp {
        if !media_net::media_destination_allowed(remote.ip(), peer) {
            return Err(RuntimeError::MediaDestination(remote));
        }
    }
    config.signalling_peer = Some(peer);
    if let Some(keying) = &config.srtp {
        tracing::info!(suite = keying.suite.name(), "media is SRTP");
    }
    Ok(config)
}

/// Runs the call's task in its `call` span; `slot` is released, and the returned receiver fires,
/// once the call's record is closed.
fn spawn_call<M: Models>(
    task: call::CallTask<M>,
    slot: OwnedSemaphorePermit,
) -> tokio::sync::oneshot::Receiver<()> {
    let (done, ended) = tokio::sync::oneshot::channel();
    let span = tracing::info_span!("call", call = %task.id);
    let active = ActiveCall::counted();
    tokio::spawn(
        async move {
            call::run(task).await;
            drop((active, slot));
            let _ = done.send(());
        }
        .instrument(span),
    );
    ended
}

/// The call's SRTP policy, with a master key of its own (SDES keys are never reused: RFC 4568
/// §6.1).
fn srtp_policy(mode: crate::config::SrtpMode) -> Result<media_net::SrtpPolicy, RuntimeError> {
    use crate::config::SrtpMode;
    let key = || -> Result<media_net::MasterKey, RuntimeError> {
        let mut bytes = [0u8; 30];
        getrandom::fill(&mut bytes).map_err(|_| RuntimeError::Randomness)?;
        Ok(media_net::MasterKey::new(bytes))
    };
    Ok(match mode {
        SrtpMode::Off => media_net::SrtpPolicy::Off,
        SrtpMode::Accept => media_net::SrtpPolicy::Accept(key()?),
        SrtpMode::Require => media_net::SrtpPolicy::Require(key()?),
    })
}

/// One call in `switchboard_calls_active`, for as long as its task lives: a task dropped
/// unfinished (a runtime shut down under it) is uncounted too.
struct ActiveCall;

impl ActiveCall {
    fn counted() -> ActiveCall {
        metrics::gauge!("switchboard_calls_active").increment(1.0);
        ActiveCall
    }
}

impl Drop for ActiveCall {
    fn drop(&mut self) {
        metrics::gauge!("switchboard_calls_active").decrement(1.0);
    }
}

/// Loads dialogs again as [`Runtime::knowledge_changed`] asks, one at a time off the async
/// workers. Requests that arrive during a reload are taken together afterwards, so a burst of
/// uploads costs one or two reloads, not one each.
async fn reload_dialogs<M: Models>(
    agents: Arc<HashMap<String, Arc<AgentRuntime<M>>>>,
    reloads: Arc<Mutex<Reloads>>,
    mut requests: mpsc::UnboundedReceiver<String>,
) {
    while let Some(first) = requests.recv().await {
        let mut names = BTreeSet::from([first]);
        while let Ok(name) = requests.try_recv() {
            names.insert(name);
        }
        for name in names {
            let Some(agent) = agents.get(&name) else {
                continue;
            };
            let wanted = lock(&reloads).get(&name).map_or(0, |s| s.requested);
            let started = std::time::Instant::now();
            let dialog = agent.dialog();
            let reloaded = tokio::task::spawn_blocking(move || dialog.reload())
                .await
                .map_err(|_| RuntimeError::Crashed("knowledge reload"))
                .and_then(|r| r.map_err(RuntimeError::from));
            let mut reloads = lock(&reloads);
            let state = reloads.entry(name.clone()).or_default();
            state.applied = state.applied.max(wanted);
            match reloaded {
                Ok(dialog) => {
                    tracing::info!(
                        agent = %name,
                        knowledge = ?dialog.knowledge_mode(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "knowledge reloaded; new calls use it"
                    );
                    agent.set_dialog(dialog);
                    state.loaded_at = Some(UnixMillis::now());
                    state.error = None;
                }
                Err(e) => {
                    tracing::error!(agent = %name, "knowledge reload failed, calls keep the knowledge loaded before: {e}");
                    state.error = Some(e.to_string());
                }
            }
        }
    }
}

/// The call's clock: tokio's, so the runtime's tests run calls in virtual time
/// (`tokio::time::pause`); in the daemon it is the system's monotonic clock.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn load_agent<M: Models>(
    id: AgentId,
    engines: &M,
    agent: &AgentConfig,
    calls: &CallsConfig,
    data_dir: &Path,
) -> Result<AgentRuntime<M>, RuntimeError> {
    let started = std::time::Instant::now();
    let prompt = agent.prompt_text().map_err(RuntimeError::PromptFile)?;
    let transfer_to = agent
        .transfer_to
        .as_deref()
        .map(|t| {
            Uri::parse(t).map_err(|reason| RuntimeError::TransferTarget {
                target: t.to_owned(),
                reason,
            })
        })
        .transpose()?;
    let voice = engines.voice(&agent.voice)?;
    let prompts = Prompts::render(voice.as_ref(), &agent.greeting)?;
    let spec = AgentSpec {
        name: agent.name.clone(),
        prompt,
        greeting: agent.greeting.clone(),
        knowledge: agent.knowledge.clone(),
        language: agent.language.clone(),
        can_transfer: transfer_to.is_some(),
    };
    let dialog = Dialog::load_with(
        engines.llm(),
        engines.embedder(),
        &spec,
        data_dir,
        agent.dialog_options(),
    )?;
    let call_config = CallConfig {
        consent: match agent.consent {
            ConsentSetting::Required => ConsentMode::Required,
            ConsentSetting::Off => ConsentMode::Off,
        },
        can_transfer: transfer_to.is_some(),
        transfer_topics: agent.transfer_topics.clone(),
        profanity: ProfanityFilter::new(&agent.profanity_extra),
        silence_timeout: Duration::from_secs(calls.silence_timeout_s.into()),
        max_call: Duration::from_secs(u64::from(calls.max_duration_min) * 60),
        ..CallConfig::default()
    };
    tracing::info!(
        agent = %agent.name,
        knowledge = ?dialog.knowledge_mode(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "agent loaded"
    );
    Ok(AgentRuntime {
        id,
        name: agent.name.clone(),
        language: agent.language.clone(),
        dialog: RwLock::new(dialog),
        voice,
        prompts,
        call_config,
        transfer_to,
    })
}

/// The local address the kernel would use to reach `peer` (no packet is sent).
fn local_address_towards(peer: SocketAddr) -> IpAddr {
    let any: SocketAddr = if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    std::net::UdpSocket::bind(any)
        .and_then(|s| s.connect(peer).and_then(|()| s.local_addr()))
        .map_or(any.ip(), |a| a.ip())
}
