//! Logs (`tracing`) and metrics (Prometheus).

use crate::config::{LogConfig, LogFormat};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

/// Installs the global log subscriber. JSON under systemd (`JOURNAL_STREAM` is set for units whose
/// output goes to the journal) or when not on a terminal; human-readable otherwise.
pub fn init_logging(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match config.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => {
            std::env::var_os("JOURNAL_STREAM").is_some() || !std::io::stderr().is_terminal()
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// The process-wide Prometheus recorder; installed once, rendered by `GET /metrics`.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; ours then still renders (empty).
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_gauge!(
        "switchboard_build_info",
        "Build version, as a label; always 1"
    );
    metrics::describe_gauge!(
        "switchboard_ready",
        "1 when the database and models are usable"
    );
    metrics::describe_counter!(
        "switchboard_http_requests_total",
        "HTTP requests served, by route and status"
    );
    metrics::describe_counter!(
        "switchboard_rtp_packets_refused_total",
        "RTP/RTCP packets dropped for not coming from the call's media source (injection, a stale stream)"
    );
    metrics::describe_counter!(
        "switchboard_rtp_packets_unauthenticated_total",
        "SRTP/SRTCP packets dropped for failing authentication or replaying an earlier one"
    );
    metrics::describe_counter!(
        "switchboard_rtp_frames_concealed_total",
        "Inbound 20 ms frames lost on the network and concealed"
    );
    metrics::gauge!("switchboard_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}
