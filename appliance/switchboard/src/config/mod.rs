//! The configuration: one TOML file, overridable by `SWITCHBOARD_*` environment variables, checked
//! completely before anything starts.
//!
//! Errors name the place: `FILE:LINE: field.path: what is wrong` for the file, and
//! `env SWITCHBOARD_…: field.path: what is wrong` for an override.

use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

mod agents;
mod calls;
mod http;
mod models;
mod retention;
mod sip;
#[cfg(test)]
mod tests;
mod trunks;

use agents::validate_agents;
pub use agents::{AgentConfig, AnswersConfig, ConsentSetting};
pub use calls::{CallsConfig, PortRange, PortRangeError};
pub use http::{HttpConfig, TlsMode};
pub use models::{LlmBackend, ModelsConfig, OpenAiBackend, Profile};
pub use retention::{Retention, RetentionConfig};
use sip::dns_server;
pub use sip::{Block, BlockError, SipConfig, SrtpMode};
use trunks::validate_trunks;
pub use trunks::{ProxyError, TrunkConfig, TrunkTarget, TrunkTransport};

/// Where an installed appliance keeps its configuration.
pub const INSTALLED_PATH: &str = "/etc/switchboard/switchboard.toml";

/// Where a development checkout keeps it.
pub const LOCAL_PATH: &str = "switchboard.toml";

const ENV_PREFIX: &str = "SWITCHBOARD_";

/// The tables an environment variable can address; `SWITCHBOARD_SIP_EXTERNAL_ADDRESS` is
/// `sip.external_address`, `SWITCHBOARD_DATA_DIR` (no table named `data`) is `data_dir`.
const SECTIONS: &[&str] = &[
    "http",
    "sip",
    "calls",
    "models",
    "database",
    "log",
    "retention",
];

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
    /// How long calls' recordings, words and records are kept (`[retention]`; each agent may
    /// override it).
    pub retention: RetentionConfig,
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
            retention: RetentionConfig::default(),
            agents: Vec::new(),
            trunks: Vec::new(),
            program: None,
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
    /// registered). `None` with `sip.allow_any`: anyone may call.
    pub fn inbound_allow(&self) -> Option<Vec<sip_net::Cidr>> {
        if self.sip.allow_any {
            return None;
        }
        let mut blocks: Vec<sip_net::Cidr> = self
            .sip
            .allow
            .iter()
            .chain(self.trunks.iter().flat_map(|t| &t.allow))
            .map(|b| b.0)
            .collect();
        for t in self.trunks.iter().filter(|t| t.register) {
            let ip = t.proxy.host.parse::<std::net::IpAddr>().ok();
            if let Some(block) = ip.and_then(|ip| ip.to_string().parse().ok()) {
                blocks.push(block);
            }
        }
        Some(blocks)
    }

    /// Who besides this box may read `/metrics` and `/readyz`'s reasons.
    pub fn monitoring_allow(&self) -> sip_net::AllowList {
        sip_net::AllowList::only(self.http.monitoring_allow.iter().map(|b| b.0))
    }

    /// The sources whose caller ID is believed: `sip.trust_caller_id_from` joined with the
    /// `allow` of each trunk with `trust_caller_id`.
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
            .map(|b| b.0);
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
        match self.embedded_database() {
            Some(file) => format!("sqlite://{}?mode=rwc", file.display()),
            None => self.database.url.clone(),
        }
    }

    /// The embedded database's file, when no database URL is configured.
    pub fn embedded_database(&self) -> Option<PathBuf> {
        self.database
            .url
            .is_empty()
            .then(|| self.data_dir.join("switchboard.db"))
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
    // A list entry's error spans the whole list; the entry's own line is the one to name.
    let line = field
        .ends_with(']')
        .then(|| line_of(text, &field))
        .flatten()
        .or_else(|| e.span().map(|s| line_at(text, s.start)));
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
/// The host of a PostgreSQL URL that leaves this box with no `sslmode` said: the driver would
/// then try TLS without checking the server, and fall back to clear text. Loopback and Unix
/// sockets need no choice.
fn remote_database_without_tls_choice(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    if query.split('&').any(|p| p.starts_with("sslmode=")) {
        return None;
    }
    let host = url_host(rest);
    (!host.is_empty() && !is_local_host(host)).then_some(host)
}

/// The host of a URL's part after `scheme://` (user info, port, path and brackets dropped).
fn url_host(rest: &str) -> &str {
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    }
}

/// This box itself.
fn is_local_host(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

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
    if let Some(host) = remote_database_without_tls_choice(url) {
        return Err((
            "database.url".into(),
            format!(
                "PostgreSQL on {host} is reached over the network: add \
                 sslmode=verify-full&sslrootcert=/etc/switchboard/database-ca.pem to the URL (or \
                 sslmode=disable to accept a connection in clear)"
            ),
        ));
    }
    if let LlmBackend::OpenAi(o) = &c.models.llm {
        let (https, rest) = match (
            o.url.strip_prefix("https://"),
            o.url.strip_prefix("http://"),
        ) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => (false, ""),
        };
        let host = url_host(rest);
        if host.is_empty() {
            return Err((
                "models.llm.openai.url".into(),
                format!(
                    "{:?} is not an https:// URL (e.g. https://llm.example.internal/v1)",
                    o.url
                ),
            ));
        }
        if !https && !is_local_host(host) && !o.allow_plain_http {
            return Err((
                "models.llm.openai.url".into(),
                format!(
                    "{:?} would send every caller's words in clear to {host}: use https:// (with \
                     ca_file for your own CA), or set allow_plain_http = true",
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
