//! The configuration: one TOML file, overridable by `SWITCHBOARD_*` environment variables, checked
//! completely before anything starts.
//!
//! Errors name the place: `FILE:LINE: field.path: what is wrong` for the file, and
//! `env SWITCHBOARD_…: field.path: what is wrong` for an override.

use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Where an installed appliance keeps its configuration.
pub const INSTALLED_PATH: &str = "/etc/switchboard/switchboard.toml";
/// Where a development checkout keeps it.
pub const LOCAL_PATH: &str = "switchboard.toml";
const ENV_PREFIX: &str = "SWITCHBOARD_";
/// The tables an environment variable can address; `SWITCHBOARD_SIP_EXTERNAL_ADDRESS` is
/// `sip.external_address`, `SWITCHBOARD_DATA_DIR` (no table named `data`) is `data_dir`.
const SECTIONS: &[&str] = &["http", "sip", "calls", "models", "database", "log"];
/// Variables with this prefix that are not configuration (the CLI's own, the tests').
const NOT_CONFIG: &[&str] = &[
    "SWITCHBOARD_CONFIG",
    "SWITCHBOARD_TEST_",
    "SWITCHBOARD_REQUIRE_",
    "SWITCHBOARD_SKIPPED",
];

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Database, recordings and indexes live here.
    pub data_dir: PathBuf,
    /// This box's name in call records; boxes sharing one database need different names.
    /// Default: the host name.
    pub node: Option<String>,
    pub http: HttpConfig,
    pub sip: SipConfig,
    pub calls: CallsConfig,
    pub models: ModelsConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    /// Agents declared as code: created or updated in the database at start.
    pub agents: Vec<AgentConfig>,
    /// SIP trunks and PBXs this box talks to (see `docs/trunks.md`).
    pub trunks: Vec<TrunkConfig>,
    /// This program's executable, run as a child to parse uploaded documents (`documents`).
    /// Not a setting: `None` is the running executable; tests that run the daemon inside their
    /// own binary name the built `switchboard`.
    #[serde(skip)]
    pub program: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Admin UI, API, `/healthz`, `/readyz` and `/metrics`.
    pub listen: SocketAddr,
    /// Sources (CIDR blocks or addresses: a Prometheus server) that may read `/metrics` and
    /// the reasons behind `/readyz`, besides this box itself. Others get 403 from `/metrics`
    /// and only the verdict from `/readyz`: error texts can name paths and hosts.
    pub monitoring_allow: Vec<String>,
    /// HTTPS on `listen`: `auto` (HTTPS unless `listen` is a loopback address), `on`, or `off`
    /// (plain HTTP on any address: only behind a TLS-terminating proxy on this box).
    pub tls: TlsMode,
    /// The operator's certificate chain and its private key (PEM files). Unset: a self-signed
    /// certificate made on first start in `data_dir/tls/`, its fingerprint logged.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// See [`HttpConfig::tls`].
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    #[default]
    Auto,
    On,
    Off,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// SIP over UDP and TCP, both on this address.
    pub listen: SocketAddr,
    /// The public IP peers must use to reach us (behind NAT): written into Via, Contact and SDP.
    pub external_address: Option<std::net::IpAddr>,
    /// Only these sources (CIDR blocks or addresses: the PBX, a carrier's SBCs) may send
    /// INVITEs; others get 403. Joined with every trunk's `allow` (see
    /// [`Config::inbound_allow`]). When all are empty, nobody may call unless `allow_any`.
    pub allow: Vec<String>,
    /// Accept INVITEs from any source (a demo, a lab). Off by default: an appliance answers its
    /// PBX and trunks, not whoever finds its port.
    pub allow_any: bool,
    /// Sources whose caller ID is believed (the RFC 3325 trust domain: the PBX or carrier SBCs
    /// that assert it): the number in P-Asserted-Identity, else in From. Joined with the `allow`
    /// of trunks that set `trust_caller_id`. Caller memory and the blacklist use only such
    /// numbers; anyone else's From is a claim, and the call is treated as anonymous.
    pub trust_caller_id_from: Vec<String>,
    /// Nameservers that locate trunks (NAPTR, SRV, A/AAAA), as "IP" or "IP:PORT" (port 53
    /// unless given), asked in this order. Empty: the system's, from `/etc/resolv.conf`.
    pub dns_servers: Vec<String>,
    /// SIP over TCP and TLS connections at once from one address, and in all: more are closed
    /// unread (a PBX needs a handful; raise for one that opens a connection per line).
    pub max_connections_per_source: u32,
    pub max_connections: u32,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// The most calls this box carries at once; more are answered 503 with Retry-After rather
    /// than slowing every call down. Below it the box learns its own limit (`target_p95_ms`).
    pub max_concurrent: u32,
    /// Voice-to-voice latency (end of the caller's speech to the first sound of the reply) that
    /// 95 % of turns should beat: turns answered at the current call limit that miss it lower
    /// the limit by one call, turns well under it raise it again, up to `max_concurrent`.
    /// 0 turns the learning off (`max_concurrent` is then the limit).
    pub target_p95_ms: u32,
    /// UDP ports for RTP, as "FIRST-LAST" (even ports are used, RTCP on the next odd one).
    pub rtp_ports: PortRange,
    /// A model that has not answered (transcript, first words of a reply) within this many
    /// milliseconds has failed: the caller hears the fallback line instead of dead air.
    pub engine_timeout_ms: u32,
    /// Calls are ended politely after this many minutes.
    pub max_duration_min: u32,
    /// Seconds of caller silence before "are you still there?".
    pub silence_timeout_s: u32,
    /// Hours a verified caller's number is blocked after abusive language; each repeat offence
    /// blocks four times as long (at most 90 days). An operator lifts a block with
    /// `switchboard blacklist remove` or the API.
    pub abuse_block_hours: u32,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            max_concurrent: 2,
            target_p95_ms: 1200,
            rtp_ports: PortRange {
                first: 10000,
                last: 20000,
            },
            engine_timeout_ms: 8000,
            max_duration_min: 30,
            silence_timeout_s: 8,
            abuse_block_hours: 24,
        }
    }
}

impl CallsConfig {
    /// The latency target the call limit is learnt from, if learning is on.
    pub fn latency_target(&self) -> Option<std::time::Duration> {
        (self.target_p95_ms > 0)
            .then(|| std::time::Duration::from_millis(self.target_p95_ms.into()))
    }
}

/// A range of UDP ports above the privileged ones, written "FIRST-LAST".
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// A port range that is not one.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a port range FIRST-LAST above 1023")]
pub struct PortRangeError(String);

impl std::str::FromStr for PortRange {
    type Err = PortRangeError;

    fn from_str(text: &str) -> Result<Self, PortRangeError> {
        let bad = || PortRangeError(text.to_owned());
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let (first, last) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        (first < last && first >= 1024)
            .then_some(PortRange { first, last })
            .ok_or_else(bad)
    }
}

impl TryFrom<String> for PortRange {
    type Error = PortRangeError;

    fn try_from(text: String) -> Result<Self, PortRangeError> {
        text.parse()
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// The installed model set (see `switchboard models install`).
    pub dir: PathBuf,
    pub profile: Profile,
    /// Where the language model runs: `"local"` (the profile's GGUF on this box) or
    /// `{ openai = { url, model, api_key_file } }`, an OpenAI-compatible server (e.g. vLLM on
    /// the LAN).
    pub llm: LlmBackend,
}

/// `models.llm`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LlmBackend {
    #[default]
    Local,
    OpenAi(OpenAiBackend),
}

/// `models.llm.openai`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OpenAiBackend {
    /// Base URL up to and including `/v1`, e.g. `http://10.0.0.5:8000/v1` (plain HTTP: the
    /// client is built without TLS).
    pub url: String,
    /// The served model's name.
    pub model: String,
    /// A file holding the API key, so the key stays out of this file; none for a server
    /// without authentication.
    pub api_key_file: Option<PathBuf>,
}

/// Which model set to run: `small` for 2–4 cores (and the tests), `standard` for 8+ cores or a GPU.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Small,
    Standard,
}

impl From<Profile> for models_bundle::Profile {
    fn from(p: Profile) -> Self {
        match p {
            Profile::Small => models_bundle::Profile::Small,
            Profile::Standard => models_bundle::Profile::Standard,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Empty: SQLite at `<data_dir>/switchboard.db`. Else `sqlite://PATH` or `postgres://…`.
    pub url: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `info,switchboard=debug`. `RUST_LOG` wins if set.
    pub filter: String,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON under systemd (journald), human-readable on a terminal.
    Auto,
    Pretty,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("var"),
            node: None,
            http: HttpConfig::default(),
            sip: SipConfig::default(),
            calls: CallsConfig::default(),
            models: ModelsConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            agents: Vec::new(),
            trunks: Vec::new(),
            program: None,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            monitoring_allow: Vec::new(),
            tls: TlsMode::Auto,
            cert: None,
            key: None,
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            external_address: None,
            allow: Vec::new(),
            allow_any: false,
            trust_caller_id_from: Vec::new(),
            dns_servers: Vec::new(),
            max_connections_per_source: 32,
            max_connections: 1024,
        }
    }
}

impl SipConfig {
    /// `dns_servers` as socket addresses (checked at load; an unparsable entry is skipped).
    pub fn dns_servers(&self) -> Vec<SocketAddr> {
        self.dns_servers
            .iter()
            .filter_map(|s| dns_server(s))
            .collect()
    }
}

/// "IP" (port 53) or "IP:PORT" ("[IPv6]:PORT").
fn dns_server(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            dir: PathBuf::from("var/models"),
            profile: Profile::Small,
            llm: LlmBackend::Local,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Auto,
            filter: "info".into(),
        }
    }
}

impl Config {
    /// This box's name in call records: `node`, else the host name.
    pub fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "switchboard".into())
        })
    }

    /// Who may send INVITEs: `sip.allow` joined with every trunk's `allow`, plus the address of
    /// each registering trunk whose proxy is an IP literal (the PBX calls us where we
    /// registered). `None` with `sip.allow_any`: anyone may call. Entries were checked at load.
    pub fn inbound_allow(&self) -> Option<Vec<sip_net::Cidr>> {
        if self.sip.allow_any {
            return None;
        }
        let mut blocks: Vec<sip_net::Cidr> = self
            .sip
            .allow
            .iter()
            .chain(self.trunks.iter().flat_map(|t| &t.allow))
            .filter_map(|b| b.parse().ok())
            .collect();
        for t in self.trunks.iter().filter(|t| t.register) {
            let ip = t.proxy.host.parse::<std::net::IpAddr>().ok();
            if let Some(block) = ip.and_then(|ip| ip.to_string().parse().ok()) {
                blocks.push(block);
            }
        }
        Some(blocks)
    }

    /// Who besides this box may read `/metrics` and `/readyz`'s reasons. Entries were checked
    /// at load.
    pub fn monitoring_allow(&self) -> sip_net::AllowList {
        sip_net::AllowList::only(
            self.http
                .monitoring_allow
                .iter()
                .filter_map(|b| b.parse().ok()),
        )
    }

    /// The sources whose caller ID is believed: `sip.trust_caller_id_from` joined with the
    /// `allow` of each trunk with `trust_caller_id`. Entries were checked at load.
    pub fn trusted_callers(&self) -> sip_net::AllowList {
        let blocks = self
            .sip
            .trust_caller_id_from
            .iter()
            .chain(
                self.trunks
                    .iter()
                    .filter(|t| t.trust_caller_id)
                    .flat_map(|t| &t.allow),
            )
            .filter_map(|b| b.parse().ok());
        sip_net::AllowList::only(blocks)
    }

    /// The trunk an agent's outbound calls use: the one listing it in `agents`, else the first.
    pub fn outbound_trunk(&self, agent: &str) -> Option<&TrunkConfig> {
        self.trunks
            .iter()
            .find(|t| t.agents.iter().any(|a| a == agent))
            .or_else(|| self.trunks.first())
    }

    /// The database URL, with the embedded default filled in.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("switchboard.db").display()
            )
        } else {
            self.database.url.clone()
        }
    }
}

/// One agent, as declared in `[[agents]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub name: String,
    /// Called user parts or DIDs routed to this agent (`sip:demo@host` → `demo`).
    pub numbers: Vec<String>,
    /// The first thing a caller hears.
    pub greeting: String,
    /// The system prompt, inline…
    pub prompt: Option<String>,
    /// …or from a file (relative to the working directory).
    pub prompt_file: Option<PathBuf>,
    /// Files or folders ingested into this agent's knowledge collection.
    #[serde(default)]
    pub knowledge: Vec<PathBuf>,
    #[serde(default = "consent_off")]
    pub consent: ConsentSetting,
    /// Where a human takes over (`sip:…` or `sips:…`); no transfer when absent.
    pub transfer_to: Option<String>,
    #[serde(default = "english")]
    pub language: String,
    #[serde(default = "joe")]
    pub voice: String,
    /// Words that end a call, in addition to the built-in list.
    #[serde(default)]
    pub profanity_extra: Vec<String>,
    /// Topics (words or phrases, matched as whole words) that go straight to `transfer_to`,
    /// e.g. `["billing dispute", "complaint"]`.
    #[serde(default)]
    pub transfer_topics: Vec<String>,
    /// How the agent decides what it can answer (`[agents.answers]`).
    #[serde(default)]
    pub answers: AnswersConfig,
}

/// The answer-quality knobs of one agent. Every field is optional; the defaults were calibrated
/// on the evaluation businesses in `tests/eval/` (their tuning halves) and suit the small and
/// standard profiles. `docs/answers.md` says when to move each.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AnswersConfig {
    /// Knowledge up to this many tokens is cached in the prompt; larger knowledge is retrieved
    /// per question.
    pub cache_budget_tokens: Option<usize>,
    /// Facts retrieved per question (retrieval mode).
    pub facts_per_question: Option<usize>,
    /// A fact is relevant to a question when their embeddings' cosine similarity reaches this…
    pub min_similarity: Option<f32>,
    /// …or, when they share a word, this lower bar.
    pub keyword_similarity: Option<f32>,
    /// Check every reply's figures, days and names against the facts before it is spoken
    /// (default true; turn off only to measure what the model says unchecked).
    pub grounding: Option<bool>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConsentSetting {
    /// Ask before recording; record only after a logged yes.
    Required,
    /// Never record, never ask.
    Off,
}

fn consent_off() -> ConsentSetting {
    ConsentSetting::Off
}
fn english() -> String {
    "en".into()
}
fn joe() -> String {
    "en_US-joe-medium".into()
}

impl AgentConfig {
    /// The dialog brain's options: the defaults, with this agent's `[agents.answers]` on top.
    pub fn brain_options(&self) -> switchboard_agent::BrainOptions {
        let mut o = switchboard_agent::BrainOptions::default();
        let a = &self.answers;
        o.cache_budget_tokens = a.cache_budget_tokens.unwrap_or(o.cache_budget_tokens);
        o.snippets = a.facts_per_question.unwrap_or(o.snippets);
        o.min_similarity = a.min_similarity.unwrap_or(o.min_similarity);
        o.keyword_similarity = a.keyword_similarity.unwrap_or(o.keyword_similarity);
        o.grounding = a.grounding.unwrap_or(o.grounding);
        o
    }

    /// The system prompt, read from `prompt_file` when that is how it is given.
    pub fn prompt_text(&self) -> std::io::Result<String> {
        match (&self.prompt, &self.prompt_file) {
            (Some(p), _) => Ok(p.clone()),
            (None, Some(f)) => std::fs::read_to_string(f),
            (None, None) => Ok(String::new()),
        }
    }
}

/// One SIP trunk or PBX, as declared in `[[trunks]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// A one-word name, used in logs and as the `trunk` label of `switchboard_trunk_up`.
    pub name: String,
    /// Where requests to this trunk go: `sip:HOST[:PORT][;transport=udp|tcp|tls]` (`sips:` means
    /// TLS). HOST may be a name (resolved at start to all its addresses, tried in turn) or an
    /// address. Parsed at load.
    pub proxy: TrunkTarget,
    /// Digest username for outbound INVITEs and REGISTER (a Twilio credential list entry, the
    /// PBX extension). Each trunk has its own; they answer only this trunk's challenges.
    pub username: Option<String>,
    /// The digest password, inline…
    pub password: Option<String>,
    /// …or from a file (first line; keep it readable by the service only).
    pub password_file: Option<PathBuf>,
    /// PBX-extension mode: REGISTER at `proxy` as `username` and keep the binding refreshed.
    #[serde(default)]
    pub register: bool,
    /// The binding lifetime asked for when registering, in seconds.
    #[serde(default = "register_expires")]
    pub register_expires: u32,
    /// Sources (CIDR blocks or addresses) that may send INVITEs through this trunk: the
    /// carrier's signalling ranges. Joined with `sip.allow`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// The sources in `allow` assert the caller's number (P-Asserted-Identity, else From): it is
    /// believed for caller memory and the blacklist (see `sip.trust_caller_id_from`).
    #[serde(default)]
    pub trust_caller_id: bool,
    /// The user part of our From on outbound calls (caller id, e.g. `+15551230000`); the
    /// username when absent.
    pub from_user: Option<String>,
    /// Seconds between OPTIONS keep-alives to `proxy`; 0 turns them off.
    #[serde(default = "options_interval")]
    pub options_interval: u32,
    /// TLS trunks: the PEM file of the CA (or the self-signed certificate) that vouches for the
    /// trunk's certificate, which must name the host in `proxy`; the system store when absent.
    pub ca_file: Option<PathBuf>,
    /// Agents whose outbound calls use this trunk (names from `[[agents]]`); informational for
    /// inbound calls, which are routed by dialled number.
    #[serde(default)]
    pub agents: Vec<String>,
}

/// The transport a trunk is reached over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrunkTransport {
    Udp,
    Tcp,
    Tls,
}

/// A trunk's `proxy`, parsed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TrunkTarget {
    /// The name or address to resolve.
    pub host: String,
    pub port: u16,
    pub transport: TrunkTransport,
    /// The URI as written, for Request-URIs (REGISTER, OPTIONS).
    pub uri: String,
}

/// Why a trunk's `proxy` is not one (shown after the field's name).
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{proxy:?} is not a SIP URI: {reason}")]
    NotAUri { proxy: String, reason: &'static str },
    #[error("{0:?} is not a sip: or sips: URI")]
    Scheme(String),
    #[error("{proxy:?}: transport {transport:?} is not udp, tcp or tls{}", if *.secure { " (sips: means tls)" } else { "" })]
    Transport {
        proxy: String,
        transport: String,
        secure: bool,
    },
    #[error("{proxy:?}: parameter {parameter:?} is not supported (only transport)")]
    Parameter { proxy: String, parameter: String },
}

impl std::str::FromStr for TrunkTarget {
    type Err = ProxyError;

    fn from_str(proxy: &str) -> Result<Self, ProxyError> {
        TrunkTarget::try_from(proxy.to_owned())
    }
}

impl TryFrom<String> for TrunkTarget {
    type Error = ProxyError;

    fn try_from(proxy: String) -> Result<Self, ProxyError> {
        let uri = sip_message::Uri::parse(&proxy).map_err(|reason| ProxyError::NotAUri {
            proxy: proxy.clone(),
            reason,
        })?;
        let Some(sip) = uri.as_sip() else {
            return Err(ProxyError::Scheme(proxy));
        };
        let transport = match sip.params.get("transport") {
            None => {
                if sip.secure {
                    TrunkTransport::Tls
                } else {
                    TrunkTransport::Udp
                }
            }
            Some(Some(t)) if t.eq_ignore_ascii_case("udp") && !sip.secure => TrunkTransport::Udp,
            Some(Some(t)) if t.eq_ignore_ascii_case("tcp") && !sip.secure => TrunkTransport::Tcp,
            Some(Some(t)) if t.eq_ignore_ascii_case("tls") => TrunkTransport::Tls,
            Some(t) => {
                return Err(ProxyError::Transport {
                    transport: t.unwrap_or("").to_owned(),
                    secure: sip.secure,
                    proxy,
                })
            }
        };
        if let Some(other) = sip
            .params
            .iter()
            .find(|p| !p.name.eq_ignore_ascii_case("transport"))
        {
            return Err(ProxyError::Parameter {
                parameter: other.name.to_string(),
                proxy,
            });
        }
        let host = match &sip.host {
            sip_message::Host::Domain(d) => d.clone(),
            sip_message::Host::Ipv4(a) => a.to_string(),
            sip_message::Host::Ipv6(a) => a.to_string(),
        };
        let default_port = if transport == TrunkTransport::Tls {
            5061
        } else {
            5060
        };
        Ok(TrunkTarget {
            host,
            port: sip.port.unwrap_or(default_port),
            transport,
            uri: proxy,
        })
    }
}

fn register_expires() -> u32 {
    3600
}
fn options_interval() -> u32 {
    30
}

impl TrunkConfig {
    /// The user part of our From on outbound calls: `from_user`, else the username.
    pub fn caller_id(&self) -> Option<&str> {
        self.from_user.as_deref().or(self.username.as_deref())
    }

    /// The digest password, read from `password_file` when that is how it is given.
    pub fn password_text(&self) -> std::io::Result<Option<String>> {
        match (&self.password, &self.password_file) {
            (Some(p), _) => Ok(Some(p.clone())),
            (None, Some(f)) => {
                let text = std::fs::read_to_string(f)?;
                Ok(Some(text.lines().next().unwrap_or_default().to_string()))
            }
            (None, None) => Ok(None),
        }
    }
}

/// Where a configuration problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, line: Option<usize> },
    Env { var: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {field}{message}")]
    Invalid {
        origin: Origin,
        field: Field,
        message: String,
    },
}

/// A dotted field path, printed as `path: ` (nothing when the problem is not in one field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field(pub String);

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Env { var } => write!(f, "env {var}"),
        }
    }
}

/// The file to read when none is named: the installed one, else the local one, else none.
pub fn default_path() -> Option<PathBuf> {
    [INSTALLED_PATH, LOCAL_PATH]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Loads `path` (or the built-in defaults when `None`), then applies the environment's overrides.
pub fn load(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let (mut table, from_file) = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let config = parse_file(path, &text)?;
            validate(&config).map_err(|(field, message)| ConfigError::Invalid {
                origin: Origin::File {
                    path: path.to_path_buf(),
                    line: line_of(&text, &field),
                },
                field: Field(field),
                message,
            })?;
            // The same text as a plain table, to merge overrides into; it parsed above.
            let table: toml::Table =
                toml::from_str(&text).map_err(|e| file_error(path, &text, &e, String::new()))?;
            (table, Some(config))
        }
        None => (toml::Table::new(), None),
    };
    let source = path;
    let overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !NOT_CONFIG.iter().any(|p| k.starts_with(p)))
        .collect();
    if overrides.is_empty() {
        return Ok(from_file.unwrap_or_default());
    }
    for (var, value) in &overrides {
        let (section, key) = env_key(var);
        let target = match &section {
            Some(s) => table
                .entry(s.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| ConfigError::Invalid {
                    origin: Origin::Env { var: var.clone() },
                    field: Field(s.clone()),
                    message: "is not a table in the file".into(),
                })?,
            None => &mut table,
        };
        target.insert(key, env_value(value));
    }
    let config: Config =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let field = e.path().to_string();
            let var = overrides
                .iter()
                .map(|(k, _)| k)
                .find(|k| env_field(k) == field)
                .or_else(|| overrides.first().map(|(k, _)| k))
                .cloned()
                .unwrap_or_default();
            ConfigError::Invalid {
                origin: Origin::Env { var },
                field: Field(field),
                message: e.into_inner().message().to_string(),
            }
        })?;
    validate(&config).map_err(|(field, message)| {
        let origin = match overrides.iter().find(|(k, _)| env_field(k) == field) {
            Some((var, _)) => Origin::Env { var: var.clone() },
            None => Origin::File {
                path: source.map(Path::to_path_buf).unwrap_or_default(),
                line: None,
            },
        };
        ConfigError::Invalid {
            origin,
            field: Field(field),
            message,
        }
    })?;
    Ok(config)
}

/// Parses the file's text, turning serde's complaint into `file:line: field: message`.
fn parse_file(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        file_error(path, text, e.inner(), field)
    })
}

fn file_error(path: &Path, text: &str, e: &toml::de::Error, field: String) -> ConfigError {
    let line = e.span().map(|s| line_at(text, s.start));
    ConfigError::Invalid {
        origin: Origin::File {
            path: path.to_path_buf(),
            line,
        },
        field: Field(field),
        message: e.message().trim().to_string(),
    }
}

/// Checks what types alone cannot say. Returns the field path and the problem.
fn validate(c: &Config) -> Result<(), (String, String)> {
    if c.data_dir.as_os_str().is_empty() {
        return Err(("data_dir".into(), "must not be empty".into()));
    }
    let url = &c.database.url;
    if !(url.is_empty()
        || url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        return Err((
            "database.url".into(),
            format!(
                "{:?} is not a database URL: use sqlite://PATH, postgres://… or leave it empty",
                switchboard_store::redact(url)
            ),
        ));
    }
    if let LlmBackend::OpenAi(o) = &c.models.llm {
        let host = o.url.strip_prefix("http://").unwrap_or_default();
        if host.is_empty() || host.starts_with('/') {
            return Err((
                "models.llm.openai.url".into(),
                format!(
                    "{:?} is not an http:// URL (e.g. http://10.0.0.5:8000/v1; no TLS in this \
                     client)",
                    o.url
                ),
            ));
        }
        if o.model.trim().is_empty() {
            return Err(("models.llm.openai.model".into(), "must not be empty".into()));
        }
    }
    if c.http.cert.is_some() != c.http.key.is_some() {
        return Err((
            "http.cert".into(),
            "http.cert and http.key go together: set both, or neither for a self-signed \
             certificate"
                .into(),
        ));
    }
    if c.http.listen == c.sip.listen {
        return Err((
            "sip.listen".into(),
            format!("{} is already http.listen", c.sip.listen),
        ));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&c.log.filter) {
        return Err((
            "log.filter".into(),
            format!("{:?} is not a log filter: {e}", c.log.filter),
        ));
    }
    for (field, blocks) in [
        ("http.monitoring_allow", &c.http.monitoring_allow),
        ("sip.allow", &c.sip.allow),
        ("sip.trust_caller_id_from", &c.sip.trust_caller_id_from),
    ] {
        for (i, block) in blocks.iter().enumerate() {
            if let Err(e) = block.parse::<sip_net::Cidr>() {
                return Err((
                    format!("{field}[{i}]"),
                    format!("{block:?} is not an address or CIDR block: {e}"),
                ));
            }
        }
    }
    for (i, server) in c.sip.dns_servers.iter().enumerate() {
        if dns_server(server).is_none() {
            return Err((
                format!("sip.dns_servers[{i}]"),
                format!("{server:?} is not an address or address:port (e.g. \"10.0.0.53\")"),
            ));
        }
    }
    if c.calls.max_concurrent == 0 {
        return Err(("calls.max_concurrent".into(), "must be at least 1".into()));
    }
    validate_agents(&c.agents)?;
    validate_trunks(&c.trunks, &c.agents)
}

fn validate_trunks(trunks: &[TrunkConfig], agents: &[AgentConfig]) -> Result<(), (String, String)> {
    for (i, t) in trunks.iter().enumerate() {
        let at = |field: &str| format!("trunks[{i}].{field}");
        if t.name.trim().is_empty()
            || !t
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            return Err((
                at("name"),
                format!("{:?} is not a trunk name (letters, digits, - _ .)", t.name),
            ));
        }
        if trunks[..i].iter().any(|u| u.name == t.name) {
            return Err((at("name"), format!("trunk {:?} is declared twice", t.name)));
        }
        match (&t.password, &t.password_file) {
            (Some(_), Some(_)) => {
                return Err((
                    at("password_file"),
                    "give password or password_file, not both".into(),
                ))
            }
            (None, Some(f)) if !f.is_file() => {
                return Err((
                    at("password_file"),
                    format!("{} is not a readable file", f.display()),
                ))
            }
            _ => {}
        }
        let has_password = t.password.is_some() || t.password_file.is_some();
        match (&t.username, has_password) {
            (Some(u), _) if u.is_empty() || u.contains(char::is_whitespace) => {
                return Err((at("username"), format!("{u:?} is not a username")))
            }
            (Some(_), false) => {
                return Err((
                    at("username"),
                    "a username needs password or password_file".into(),
                ))
            }
            (None, true) => {
                let field = if t.password.is_some() {
                    "password"
                } else {
                    "password_file"
                };
                return Err((at(field), "a password needs a username".into()));
            }
            _ => {}
        }
        if let Some(f) = &t.ca_file {
            if t.proxy.transport != TrunkTransport::Tls {
                return Err((
                    at("ca_file"),
                    "applies to TLS trunks only (sips: or transport=tls in proxy)".into(),
                ));
            }
            if !f.is_file() {
                return Err((
                    at("ca_file"),
                    format!("{} is not a readable file", f.display()),
                ));
            }
        }
        if t.register && t.username.is_none() {
            return Err((
                at("register"),
                "registering needs username and password (the extension's credentials)".into(),
            ));
        }
        if t.register && t.register_expires < 60 {
            return Err((
                at("register_expires"),
                format!("{} s is too short: at least 60", t.register_expires),
            ));
        }
        for (j, block) in t.allow.iter().enumerate() {
            if let Err(e) = block.parse::<sip_net::Cidr>() {
                return Err((
                    format!("trunks[{i}].allow[{j}]"),
                    format!("{block:?} is not an address or CIDR block: {e}"),
                ));
            }
        }
        if t.trust_caller_id && t.allow.is_empty() {
            return Err((
                at("trust_caller_id"),
                "needs the trunk's allow list: the sources that assert the caller's number".into(),
            ));
        }
        if let Some(u) = &t.from_user {
            if u.is_empty() || u.contains(|ch: char| ch.is_whitespace() || "@:;<>\"".contains(ch)) {
                return Err((
                    at("from_user"),
                    format!("{u:?} is not a user part or number"),
                ));
            }
        }
        if t.options_interval > 3600 {
            return Err((
                at("options_interval"),
                format!(
                    "{} s is too long: at most 3600 (0 turns keep-alives off)",
                    t.options_interval
                ),
            ));
        }
        for name in &t.agents {
            if !agents.iter().any(|a| &a.name == name) {
                return Err((at("agents"), format!("no agent is named {name:?}")));
            }
        }
    }
    Ok(())
}

fn validate_agents(agents: &[AgentConfig]) -> Result<(), (String, String)> {
    let mut numbers = std::collections::HashMap::new();
    for (i, a) in agents.iter().enumerate() {
        let at = |field: &str| format!("agents[{i}].{field}");
        if a.name.trim().is_empty() || a.name.contains(char::is_whitespace) {
            return Err((
                at("name"),
                format!("{:?} is not an agent name (one word)", a.name),
            ));
        }
        if agents[..i].iter().any(|b| b.name == a.name) {
            return Err((at("name"), format!("agent {:?} is declared twice", a.name)));
        }
        match (&a.prompt, &a.prompt_file) {
            (Some(_), Some(_)) => {
                return Err((
                    at("prompt_file"),
                    "give prompt or prompt_file, not both".into(),
                ))
            }
            (None, None) => {
                return Err((at("prompt"), "an agent needs prompt or prompt_file".into()))
            }
            (None, Some(f)) if !f.is_file() => {
                return Err((
                    at("prompt_file"),
                    format!("{} is not a readable file", f.display()),
                ))
            }
            _ => {}
        }
        for (field, value) in [
            ("min_similarity", a.answers.min_similarity),
            ("keyword_similarity", a.answers.keyword_similarity),
        ] {
            if value.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                return Err((
                    at(&format!("answers.{field}")),
                    "a cosine similarity between 0 and 1".into(),
                ));
            }
        }
        if a.answers.facts_per_question == Some(0) {
            return Err((
                at("answers.facts_per_question"),
                "at least 1 (a question needs a fact to be answered)".into(),
            ));
        }
        for n in &a.numbers {
            if n.is_empty() || n.contains(|ch: char| ch.is_whitespace() || ch == '@' || ch == ':') {
                return Err((at("numbers"), format!("{n:?} is not a user part or number")));
            }
            if let Some(other) = numbers.insert(n.clone(), a.name.clone()) {
                return Err((
                    at("numbers"),
                    format!("{n:?} already routes to agent {other:?}"),
                ));
            }
        }
        if let Some(t) = &a.transfer_to {
            if !(t.starts_with("sip:") || t.starts_with("sips:")) || t.contains(char::is_whitespace)
            {
                return Err((
                    at("transfer_to"),
                    format!("{t:?} is not a sip: or sips: URI"),
                ));
            }
        }
        if a.language.len() != 2 || !a.language.chars().all(|ch| ch.is_ascii_lowercase()) {
            return Err((
                at("language"),
                format!("{:?} is not a two-letter language code", a.language),
            ));
        }
    }
    Ok(())
}

/// `SWITCHBOARD_SIP_EXTERNAL_ADDRESS` → (`Some("sip")`, `"external_address"`).
fn env_key(var: &str) -> (Option<String>, String) {
    let rest = var[ENV_PREFIX.len()..].to_ascii_lowercase();
    for s in SECTIONS {
        if let Some(key) = rest.strip_prefix(&format!("{s}_")) {
            return (Some(s.to_string()), key.to_string());
        }
    }
    (None, rest)
}

fn env_field(var: &str) -> String {
    match env_key(var) {
        (Some(s), k) => format!("{s}.{k}"),
        (None, k) => k,
    }
}

/// An override is read as a TOML value when it is one (`8`, `true`), else as a string.
fn env_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) if !matches!(t.get("v"), Some(toml::Value::Table(_))) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        _ => toml::Value::String(raw.to_string()),
    }
}

/// The 1-based line of byte offset `at`.
fn line_at(text: &str, at: usize) -> usize {
    text[..at.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The line where a dotted field's value is written, if it is in the file.
fn line_of(text: &str, field: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = doc.as_item();
    // `agents[1].name`: a key, then an index into an array (of tables).
    for part in field.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        item = item.get(key)?;
        if let Some(i) = index {
            item = item.get(i)?;
        }
    }
    item.span().map(|s| line_at(text, s.start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn error(text: &str) -> String {
        let f = file(text);
        let e = load(Some(f.path()), []).unwrap_err().to_string();
        e.strip_prefix(&f.path().display().to_string())
            .map(str::to_string)
            .unwrap_or(e)
    }

    #[test]
    fn the_example_config_loads_and_is_the_defaults_plus_documentation() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/switchboard.example.toml");
        let c = load(Some(&path), []).unwrap();
        assert_eq!(c.http.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.sip.listen, "0.0.0.0:5060".parse().unwrap());
        assert_eq!(c.models.profile, Profile::Small);
        assert_eq!(c.database.url, "");
        assert_eq!(c.agents[0].numbers, ["demo", "1000"]);
        assert!(c.agents[0].prompt_text().unwrap().contains("Acme Dental"));
    }

    #[test]
    fn the_example_trunk_block_loads_when_uncommented() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/switchboard.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let block: String = text
            .lines()
            .skip_while(|l| *l != "# [[trunks]]")
            .take_while(|l| l.starts_with("# "))
            .map(|l| format!("{}\n", &l[2..]))
            .collect();
        assert!(block.contains("proxy"), "no trunk block in the example");
        // `agents` names the example's agent; the block goes after it.
        let agents = &text[text.find("[[agents]]").unwrap()..];
        let f = file(&format!("{agents}\n{block}"));
        let c = load(Some(f.path()), []).unwrap();
        let t = &c.trunks[0];
        assert_eq!(t.proxy.transport, TrunkTransport::Udp);
        assert_eq!((t.options_interval, t.register), (30, false));
        assert_eq!(t.caller_id(), Some("+15551230000"));
        assert_eq!(c.outbound_trunk("demo").unwrap().name, "carrier");
        assert_eq!(c.outbound_trunk("demo"), c.trunks.first());
    }

    #[test]
    fn no_file_means_defaults() {
        assert_eq!(load(None, []).unwrap(), Config::default());
        assert!(Config::default()
            .database_url()
            .ends_with("var/switchboard.db?mode=rwc"));
    }

    #[test]
    fn wrong_type_names_line_and_field() {
        let e = error("data_dir = \"/tmp/sb\"\n\n[http]\nlisten = 8080\n");
        assert!(e.starts_with(":4: http.listen: "), "{e}");
        assert!(e.contains("invalid"), "{e}");
    }

    #[test]
    fn unknown_field_and_bad_enum_are_rejected_with_line() {
        let e = error("[sip]\nlisten = \"0.0.0.0:5070\"\nlisen = \"x\"\n");
        assert!(e.starts_with(":3: sip"), "{e}");
        assert!(e.contains("unknown field `lisen`"), "{e}");
        let e = error("[models]\nprofile = \"huge\"\n");
        assert!(e.starts_with(":2: models.profile: "), "{e}");
        assert!(e.contains("small") && e.contains("standard"), "{e}");
    }

    #[test]
    fn llm_is_local_or_an_openai_endpoint() {
        assert_eq!(Config::default().models.llm, LlmBackend::Local);
        let f = file("[models]\nllm = \"local\"\n");
        assert_eq!(
            load(Some(f.path()), []).unwrap().models.llm,
            LlmBackend::Local
        );
        let f = file(
            "[models]\nllm = { openai = { url = \"http://10.0.0.5:8000/v1\", model = \"qwen\", \
             api_key_file = \"/etc/switchboard/openai.key\" } }\n",
        );
        assert_eq!(
            load(Some(f.path()), []).unwrap().models.llm,
            LlmBackend::OpenAi(OpenAiBackend {
                url: "http://10.0.0.5:8000/v1".into(),
                model: "qwen".into(),
                api_key_file: Some("/etc/switchboard/openai.key".into()),
            })
        );
        let e = error("[models]\nllm = \"remote\"\n");
        assert!(e.starts_with(":2: models.llm: "), "{e}");
        assert!(e.contains("local") && e.contains("openai"), "{e}");
        let e = error(
            "[models]\nllm = { openai = { url = \"http://h/v1\", model = \"m\", key = \"x\" } }\n",
        );
        assert!(e.starts_with(":2: models.llm"), "{e}");
        assert!(e.contains("unknown field `key`"), "{e}");
        let e = error("[models.llm.openai]\nmodel = \"m\"\nurl = \"https://api.example.com/v1\"\n");
        assert!(
            e.starts_with(
                ":3: models.llm.openai.url: \"https://api.example.com/v1\" is not an http:// URL"
            ),
            "{e}"
        );
    }

    #[test]
    fn admin_tls_takes_a_mode_and_a_certificate_with_its_key() {
        let c = load(Some(file("[http]\ntls = \"on\"\n").path()), []).unwrap();
        assert_eq!(c.http.tls, TlsMode::On);
        let e = error("[http]\ncert = \"/etc/switchboard/admin.crt\"\n");
        assert!(e.starts_with(":2: http.cert: "), "{e}");
        let e = error("[http]\ntls = \"maybe\"\n");
        assert!(e.starts_with(":2: http.tls"), "{e}");
    }

    #[test]
    fn syntax_error_names_line() {
        let e = error("[http]\nlisten = \"127.0.0.1:80\n");
        assert!(e.starts_with(":2"), "{e}");
    }

    #[test]
    fn semantic_error_names_line() {
        let e = error("[http]\nlisten = \"127.0.0.1:9000\"\n[database]\nurl = \"mysql://x\"\n");
        assert!(e.starts_with(":4: database.url: "), "{e}");
        let e = error("[http]\nlisten = \"0.0.0.0:5060\"\n");
        assert!(
            e.starts_with(": sip.listen: ") || e.contains("sip.listen"),
            "{e}"
        );
    }

    #[test]
    fn agents_are_checked_where_they_are_written() {
        let agent = |name: &str, number: &str| {
            format!("[[agents]]\nname = \"{name}\"\nnumbers = [\"{number}\"]\ngreeting = \"Hi\"\nprompt = \"Be nice\"\n")
        };
        let ok = format!("{}{}", agent("a", "1000"), agent("b", "2000"));
        let f = file(&ok);
        let c = load(Some(f.path()), []).unwrap();
        assert_eq!(c.agents.len(), 2);
        assert_eq!(c.agents[1].consent, ConsentSetting::Off);
        assert_eq!(c.agents[1].voice, "en_US-joe-medium");

        let e = error(&format!("{}{}", agent("a", "1000"), agent("b", "1000")));
        assert!(
            e.starts_with(":8: agents[1].numbers: \"1000\" already routes to agent \"a\""),
            "{e}"
        );
        let e = error(&format!(
            "{}transfer_to = \"frontdesk\"\n",
            agent("a", "1000")
        ));
        assert!(e.starts_with(":6: agents[0].transfer_to: "), "{e}");
        let e = error("[[agents]]\nname = \"a\"\nnumbers = []\ngreeting = \"Hi\"\n");
        assert!(
            e.contains("agents[0].prompt: an agent needs prompt or prompt_file"),
            "{e}"
        );
        let e = error(&format!("{}consent = \"maybe\"\n", agent("a", "1000")));
        assert!(e.starts_with(":6: agents[0].consent: "), "{e}");
    }

    #[test]
    fn trunk_allow_list_entries_are_checked() {
        let f = file("[sip]\nallow = [\"203.0.113.0/24\", \"2001:db8::1\"]\n");
        assert_eq!(load(Some(f.path()), []).unwrap().sip.allow.len(), 2);
        let e = error("[sip]\nallow = [\"203.0.113.0/24\",\n  \"carrier.example\"]\n");
        assert!(
            e.starts_with(":3: sip.allow[1]: \"carrier.example\" is not"),
            "{e}"
        );
    }

    #[test]
    fn dns_servers_are_addresses_with_an_optional_port() {
        let f = file(
            "[sip]\ndns_servers = [\"10.0.0.53\", \"10.0.0.54:5353\", \"[2001:db8::53]:53\"]\n",
        );
        let sip = load(Some(f.path()), []).unwrap().sip;
        assert_eq!(
            sip.dns_servers(),
            [
                "10.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "10.0.0.54:5353".parse().unwrap(),
                "[2001:db8::53]:53".parse().unwrap(),
            ]
        );
        let e = error("[sip]\ndns_servers = [\"10.0.0.53\",\n  \"ns1.example.com\"]\n");
        assert!(
            e.starts_with(":3: sip.dns_servers[1]: \"ns1.example.com\" is not an address"),
            "{e}"
        );
    }

    fn trunk(extra: &str) -> String {
        format!("[[trunks]]\nname = \"carrier\"\nproxy = \"sip:203.0.113.5\"\n{extra}")
    }

    #[test]
    fn trunks_load_with_defaults_and_parsed_targets() {
        let f = file(&format!(
            "{}{}",
            trunk("allow = [\"203.0.113.0/24\"]\n"),
            "[[trunks]]\nname = \"pbx\"\nproxy = \"sip:pbx.example.internal:5070;transport=tcp\"\nusername = \"2001\"\npassword = \"s3cret\"\nregister = true\noptions_interval = 0\n"
        ));
        let c = load(Some(f.path()), []).unwrap();
        assert_eq!(c.trunks.len(), 2);
        let carrier = &c.trunks[0];
        assert_eq!(carrier.options_interval, 30);
        assert!(!carrier.register);
        assert_eq!(
            carrier.proxy.clone(),
            TrunkTarget {
                host: "203.0.113.5".into(),
                port: 5060,
                transport: TrunkTransport::Udp,
                uri: "sip:203.0.113.5".into(),
            }
        );
        assert_eq!(carrier.caller_id(), None);
        assert_eq!(c.trunks[1].caller_id(), Some("2001"));
        assert_eq!(c.outbound_trunk("anyone").unwrap().name, "carrier");
        let pbx = c.trunks[1].proxy.clone();
        assert_eq!(
            (pbx.host.as_str(), pbx.port),
            ("pbx.example.internal", 5070)
        );
        assert_eq!(pbx.transport, TrunkTransport::Tcp);
        assert_eq!(
            c.trunks[1].password_text().unwrap().as_deref(),
            Some("s3cret")
        );
        let tls: TrunkTarget = "sips:trunk.example.net".parse().unwrap();
        assert_eq!((tls.port, tls.transport), (5061, TrunkTransport::Tls));
    }

    #[test]
    fn trunk_mistakes_are_named_where_they_are_written() {
        let e = error(&trunk("").replace("sip:203.0.113.5", "sip:203.0.113.5;transport=sctp"));
        assert!(
            e.starts_with(":3: trunks[0].proxy: \"sip:203.0.113.5;transport=sctp\": transport \"sctp\" is not udp, tcp or tls"),
            "{e}"
        );
        let e = error(&trunk("").replace("sip:203.0.113.5", "http://example.com"));
        assert!(e.starts_with(":3: trunks[0].proxy: "), "{e}");
        let e = error(&trunk("allow = [\"203.0.113.0/24\",\n  \"10.0.0.0/33\"]\n"));
        assert!(
            e.starts_with(
                ":5: trunks[0].allow[1]: \"10.0.0.0/33\" is not an address or CIDR block"
            ),
            "{e}"
        );
        let e = error(&trunk("register = true\n"));
        assert!(
            e.starts_with(":4: trunks[0].register: registering needs username and password"),
            "{e}"
        );
        let e = error(&trunk("username = \"acme\"\n"));
        assert!(
            e.starts_with(":4: trunks[0].username: a username needs password or password_file"),
            "{e}"
        );
        let e = error(&trunk("password = \"x\"\n"));
        assert!(
            e.starts_with(":4: trunks[0].password: a password needs a username"),
            "{e}"
        );
        let e = error(&trunk(
            "username = \"a\"\npassword_file = \"/nonexistent/trunk.pw\"\n",
        ));
        assert!(
            e.starts_with(
                ":5: trunks[0].password_file: /nonexistent/trunk.pw is not a readable file"
            ),
            "{e}"
        );
        let e = error(&trunk("agents = [\"nobody\"]\n"));
        assert!(
            e.starts_with(":4: trunks[0].agents: no agent is named \"nobody\""),
            "{e}"
        );
        let e = error(&trunk("options_intervall = 10\n"));
        assert!(e.contains("unknown field `options_intervall`"), "{e}");
        let e = error(&trunk("ca_file = \"/etc/ssl/certs/ca.pem\"\n"));
        assert!(
            e.starts_with(":4: trunks[0].ca_file: applies to TLS trunks only"),
            "{e}"
        );
        let e = error(
            &trunk("ca_file = \"/nonexistent/ca.pem\"\n")
                .replace("sip:203.0.113.5", "sips:sbc.example"),
        );
        assert!(
            e.starts_with(":4: trunks[0].ca_file: /nonexistent/ca.pem is not a readable file"),
            "{e}"
        );
        let e = error(&format!("{}{}", trunk(""), trunk("")));
        assert!(
            e.starts_with(":5: trunks[1].name: trunk \"carrier\" is declared twice"),
            "{e}"
        );
    }

    #[test]
    fn trunks_authenticate_each_with_its_own_credentials() {
        let f = file(&format!(
            "{}{}",
            trunk("username = \"acme\"\npassword = \"x\"\n"),
            trunk("username = \"2001\"\npassword = \"y\"\nregister = true\n")
                .replace("carrier", "pbx")
        ));
        let c = load(Some(f.path()), []).unwrap();
        assert_eq!(c.trunks[0].username.as_deref(), Some("acme"));
        assert_eq!(c.trunks[1].password_text().unwrap().as_deref(), Some("y"));
    }

    #[test]
    fn trunk_password_comes_from_its_file() {
        let pw = file("hunter2\n");
        let f = file(&trunk(&format!(
            "username = \"acme\"\npassword_file = \"{}\"\n",
            pw.path().display()
        )));
        let c = load(Some(f.path()), []).unwrap();
        assert_eq!(
            c.trunks[0].password_text().unwrap().as_deref(),
            Some("hunter2")
        );
    }

    #[test]
    fn inbound_allow_is_the_union_of_sip_and_trunk_lists() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let allows = |c: &Config, s: &str| {
            c.inbound_allow()
                .is_some_and(|blocks| blocks.iter().any(|b| b.contains(ip(s))))
        };
        // Nothing anywhere: nobody may call, unless the operator says anyone may.
        let c = load(Some(file(&trunk("")).path()), []).unwrap();
        assert_eq!(c.inbound_allow(), Some(Vec::new()));
        let c = load(Some(file("[sip]\nallow_any = true\n").path()), []).unwrap();
        assert_eq!(c.inbound_allow(), None);
        // sip.allow alone still works.
        let c = load(Some(file("[sip]\nallow = [\"198.51.100.7\"]\n").path()), []).unwrap();
        assert!(allows(&c, "198.51.100.7") && !allows(&c, "203.0.113.9"));
        // Union; a registering trunk's literal address joins once a list exists.
        let text = format!(
            "[sip]\nallow = [\"198.51.100.7\"]\n{}[[trunks]]\nname = \"pbx\"\nproxy = \"sip:192.0.2.20\"\nusername = \"2001\"\npassword = \"x\"\nregister = true\n",
            trunk("allow = [\"203.0.113.0/24\"]\n")
        );
        let c = load(Some(file(&text).path()), []).unwrap();
        for yes in ["198.51.100.7", "203.0.113.9", "192.0.2.20"] {
            assert!(allows(&c, yes), "{yes}");
        }
        assert!(!allows(&c, "192.0.2.21"));
    }

    #[test]
    fn caller_id_is_trusted_only_from_listed_sources() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let c = load(
            Some(file(&trunk("allow = [\"203.0.113.0/24\"]\n")).path()),
            [],
        )
        .unwrap();
        assert!(
            !c.trusted_callers().allows(ip("203.0.113.9")),
            "allowed is not trusted"
        );
        let text = format!(
            "[sip]\ntrust_caller_id_from = [\"10.0.0.5\"]\n{}",
            trunk("allow = [\"203.0.113.0/24\"]\ntrust_caller_id = true\n")
        );
        let c = load(Some(file(&text).path()), []).unwrap();
        for yes in ["10.0.0.5", "203.0.113.9"] {
            assert!(c.trusted_callers().allows(ip(yes)), "{yes}");
        }
        assert!(!c.trusted_callers().allows(ip("10.0.0.6")));
        let e = error(&trunk("trust_caller_id = true\n"));
        assert!(
            e.contains("trust_caller_id: needs the trunk's allow list"),
            "{e}"
        );
        let e = error("[sip]\ntrust_caller_id_from = [\"pbx.example\"]\n");
        assert!(e.contains("sip.trust_caller_id_from[0]"), "{e}");
    }

    #[test]
    fn environment_overrides_file() {
        let f = file(
            "[http]\nlisten = \"127.0.0.1:9000\"\n[sip]\nexternal_address = \"198.51.100.7\"\n",
        );
        let env = [
            (
                "SWITCHBOARD_HTTP_LISTEN".to_string(),
                "127.0.0.1:9100".to_string(),
            ),
            ("SWITCHBOARD_DATA_DIR".to_string(), "/srv/sb".to_string()),
            ("SWITCHBOARD_CONFIG".to_string(), "ignored".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let c = load(Some(f.path()), env).unwrap();
        assert_eq!(c.http.listen, "127.0.0.1:9100".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("/srv/sb"));
        assert_eq!(
            c.sip.external_address,
            Some("198.51.100.7".parse().unwrap())
        );
    }

    #[test]
    fn bad_environment_override_names_the_variable() {
        let env = [("SWITCHBOARD_MODELS_PROFILE".to_string(), "tiny".to_string())];
        let e = load(None, env).unwrap_err().to_string();
        assert!(
            e.starts_with("env SWITCHBOARD_MODELS_PROFILE: models.profile: "),
            "{e}"
        );
        let env = [(
            "SWITCHBOARD_DATABASE_URL".to_string(),
            "oracle://db".to_string(),
        )];
        let e = load(None, env).unwrap_err().to_string();
        assert!(
            e.starts_with("env SWITCHBOARD_DATABASE_URL: database.url: "),
            "{e}"
        );
        let env = [("SWITCHBOARD_SIP_PORT".to_string(), "5060".to_string())];
        let e = load(None, env).unwrap_err().to_string();
        assert!(e.contains("unknown field `port`"), "{e}");
    }
}
