//! The service manager's side of the daemon (systemd's `sd_notify` protocol): `READY=1` once the
//! box answers calls and its API, a watchdog keep-alive from the async runtime, `STOPPING=1` at
//! shutdown. Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op.
//!
//! The protocol is one datagram of `KEY=VALUE` lines to the socket systemd names, a path or an
//! abstract name (`@…`); a lost datagram is harmless, so sends are fire-and-forget.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd gives a `Type=notify` service. The variables are removed so
    /// that no child (the document parser) speaks for the daemon.
    pub fn from_env() -> Self {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let watchdog = watchdog_for_us(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
        );
        std::env::remove_var("NOTIFY_SOCKET");
        std::env::remove_var("WATCHDOG_USEC");
        std::env::remove_var("WATCHDOG_PID");
        Notifier::new(socket.as_deref().and_then(|s| s.to_str()), watchdog)
    }

    /// To the socket `address` names (`None`: nowhere), with a keep-alive due every `watchdog`.
    pub fn new(address: Option<&str>, watchdog: Option<Duration>) -> Self {
        let socket = address.and_then(|a| match (UnixDatagram::unbound(), socket_address(a)) {
            (Ok(s), Ok(addr)) => Some((s, addr)),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(socket = a, "cannot reach the service manager: {e}");
                None
            }
        });
        Notifier { socket, watchdog }
    }

    /// The box is up: its listeners are bound and it has loaded what it could.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping: draining calls");
    }

    /// How often to send [`Notifier::keep_alive`]: half the watchdog's timeout, as systemd
    /// advises, so one late tick is not a restart.
    pub fn keep_alive_every(&self) -> Option<Duration> {
        self.socket.as_ref().and(self.watchdog).map(|w| w / 2)
    }

    pub fn keep_alive(&self) {
        self.send("WATCHDOG=1");
    }

    fn send(&self, message: &str) {
        if let Some((socket, addr)) = &self.socket {
            if let Err(e) = socket.send_to_addr(message.as_bytes(), addr) {
                tracing::warn!("cannot notify the service manager: {e}");
            }
        }
    }
}

/// The watchdog timeout, when it is meant for this process (`WATCHDOG_PID` unset or ours).
fn watchdog_for_us(usec: Option<&str>, pid: Option<&str>) -> Option<Duration> {
    let ours = pid.is_none_or(|p| p.parse::<u32>().ok() == Some(std::process::id()));
    let usec = usec?.parse::<u64>().ok().filter(|&u| u > 0)?;
    ours.then(|| Duration::from_micros(usec))
}

fn socket_address(address: &str) -> std::io::Result<SocketAddr> {
    match address.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())
        }
        None => SocketAddr::from_pathname(address),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report
    use super::*;
    use std::os::linux::net::SocketAddrExt;

    fn received(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn readiness_keep_alives_and_stopping_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path.to_str(), Some(Duration::from_secs(30)));
        n.ready("2 agents");
        assert_eq!(received(&manager), "READY=1\nSTATUS=2 agents");
        assert_eq!(n.keep_alive_every(), Some(Duration::from_secs(15)));
        n.keep_alive();
        assert_eq!(received(&manager), "WATCHDOG=1");
        n.stopping();
        assert!(received(&manager).starts_with("STOPPING=1\n"));
    }

    #[test]
    fn an_abstract_socket_is_reached_too() {
        let name = format!("switchboard-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let manager = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::new(Some(&format!("@{name}")), None).ready("up");
        assert_eq!(received(&manager), "READY=1\nSTATUS=up");
    }

    #[test]
    fn outside_systemd_nothing_is_sent_and_no_keep_alive_is_due() {
        let n = Notifier::new(None, Some(Duration::from_secs(30)));
        n.ready("up");
        assert_eq!(n.keep_alive_every(), None);
    }

    #[test]
    fn a_watchdog_meant_for_another_process_is_not_ours() {
        let us = std::process::id().to_string();
        assert_eq!(
            watchdog_for_us(Some("30000000"), Some(&us)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(watchdog_for_us(Some("30000000"), Some("1")), None);
        assert_eq!(
            watchdog_for_us(Some("30000000"), None),
            Some(Duration::from_secs(30))
        );
        assert_eq!(watchdog_for_us(Some("0"), None), None);
        assert_eq!(watchdog_for_us(None, None), None);
    }
}
