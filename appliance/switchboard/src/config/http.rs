//! `[http]`: the admin API's listener and its TLS.

use super::*;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Admin UI, API, `/healthz`, `/readyz` and `/metrics`.
    pub listen: SocketAddr,
    /// Sources (CIDR blocks or addresses: a Prometheus server) that may read `/metrics` and
    /// the reasons behind `/readyz`, besides this box itself. Others get 403 from `/metrics`
    /// and only the verdict from `/readyz`: error texts can name paths and hosts.
    pub monitoring_allow: Vec<Block>,
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
