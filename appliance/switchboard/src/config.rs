//! The configuration: one TOML file, overridable by `SWITCHBOARD_*` environment variables, checked
//! completely before anything starts.
//!
//! Errors name the place: `FILE:LINE: field.path: what is wrong` for the file, and
//! `env SWITCHBOARD_…: field.path: what is wrong` for an override.

use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
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
];

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Database, recordings and indexes live here.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub sip: SipConfig,
    pub calls: CallsConfig,
    pub models: ModelsConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    /// Agents declared as code: created or updated in the database at start.
    pub agents: Vec<AgentConfig>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Admin UI, API, `/healthz`, `/readyz` and `/metrics`.
    pub listen: SocketAddr,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// SIP over UDP and TCP, both on this address.
    pub listen: SocketAddr,
    /// The public IP peers must use to reach us (behind NAT): written into Via, Contact and SDP.
    pub external_address: Option<std::net::IpAddr>,
    /// Trunk mode: only these sources (CIDR blocks or addresses, e.g. a carrier's SBCs) may send
    /// INVITEs; others get 403. Empty: anyone may call.
    pub allow: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// Calls this box carries at once; more are answered 503 with Retry-After rather than
    /// slowing every call down. Size it from `switchboard bench models`.
    pub max_concurrent: u32,
    /// UDP ports for RTP, as "FIRST-LAST" (even ports are used, RTCP on the next odd one).
    pub rtp_ports: String,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            max_concurrent: 2,
            rtp_ports: "10000-20000".into(),
        }
    }
}

impl CallsConfig {
    /// The RTP port range; checked at load, so well-formed here.
    pub fn rtp_range(&self) -> Option<(u16, u16)> {
        let (a, b) = self.rtp_ports.split_once('-')?;
        let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        (a < b && a >= 1024).then_some((a, b))
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
            http: HttpConfig::default(),
            sip: SipConfig::default(),
            calls: CallsConfig::default(),
            models: ModelsConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            agents: Vec::new(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            external_address: None,
            allow: Vec::new(),
        }
    }
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
    /// The system prompt, read from `prompt_file` when that is how it is given.
    pub fn prompt_text(&self) -> std::io::Result<String> {
        match (&self.prompt, &self.prompt_file) {
            (Some(p), _) => Ok(p.clone()),
            (None, Some(f)) => std::fs::read_to_string(f),
            (None, None) => Ok(String::new()),
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
    for (i, block) in c.sip.allow.iter().enumerate() {
        if let Err(e) = block.parse::<sip_net::Cidr>() {
            return Err((
                format!("sip.allow[{i}]"),
                format!("{block:?} is not an address or CIDR block: {e}"),
            ));
        }
    }
    if c.calls.rtp_range().is_none() {
        return Err((
            "calls.rtp_ports".into(),
            format!(
                "{:?} is not a port range FIRST-LAST above 1023",
                c.calls.rtp_ports
            ),
        ));
    }
    if c.calls.max_concurrent == 0 {
        return Err(("calls.max_concurrent".into(), "must be at least 1".into()));
    }
    validate_agents(&c.agents)
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
