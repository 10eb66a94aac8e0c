//! `[[trunks]]`: SIP trunks and PBXs: where they are, their credentials, who may call through them.

use super::*;

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
    pub allow: Vec<Block>,
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

pub(super) fn validate_trunks(
    trunks: &[TrunkConfig],
    agents: &[AgentConfig],
) -> Result<(), (String, String)> {
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
