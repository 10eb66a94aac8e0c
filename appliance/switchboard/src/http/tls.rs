//! HTTPS for the admin UI and API: the operator's certificate, or a self-signed one made on first
//! start and kept in the data directory, so that passwords and transcripts never cross the LAN in
//! clear. Plain HTTP only on loopback (`http.tls = "auto"`) or when the operator says so (`off`:
//! behind a TLS-terminating proxy).
//!
//! Handshakes run in their own tasks with a deadline, so a client that stalls its handshake holds
//! no other client back; at most [`HANDSHAKES`] run at once.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::{HttpConfig, TlsMode};
use crate::Error;

/// Handshakes in progress at once; more connections wait in the kernel's backlog.
pub const HANDSHAKES: usize = 64;
/// How long a client may take to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The admin listener's certificate, ready to accept with.
pub struct AdminTls {
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the certificate, `AB:CD:…`: what an operator compares in the browser.
    pub fingerprint: String,
    /// Where the certificate came from.
    pub certificate: PathBuf,
    /// Made by this start (first start of a box without an operator certificate).
    pub created: bool,
}

/// Whether the admin listener on `listen` speaks TLS.
pub fn enabled(mode: TlsMode, listen: SocketAddr) -> bool {
    match mode {
        TlsMode::On => true,
        TlsMode::Off => false,
        TlsMode::Auto => !listen.ip().is_loopback(),
    }
}

/// The certificate for the admin listener: `http.cert`/`http.key` when set, else the
/// self-signed pair in `data_dir/tls/`, made now if absent, for the names in `hosts`.
pub fn load(config: &HttpConfig, data_dir: &Path, hosts: &[String]) -> Result<AdminTls, Error> {
    let (cert_path, key_path, created) = match (&config.cert, &config.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), false),
        _ => {
            let dir = data_dir.join("tls");
            let (cert, key) = (dir.join("admin.crt"), dir.join("admin.key"));
            let created = !cert.exists() || !key.exists();
            if created {
                self_signed(&dir, &cert, &key, hosts)?;
            }
            (cert, key, created)
        }
    };
    let tls_error = |path: &Path, reason: String| Error::Tls {
        path: path.to_owned(),
        reason,
    };
    let chain = read_chain(&cert_path)?;
    let fingerprint = fingerprint(&chain[0]);
    let key =
        PrivateKeyDer::from_pem_file(&key_path).map_err(|e| tls_error(&key_path, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| tls_error(&cert_path, e.to_string()))?;
    Ok(AdminTls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        fingerprint,
        certificate: cert_path,
        created,
    })
}

/// How the admin listener will be served, for `check-config`: an operator's certificate that
/// cannot be read is an error there, before any start.
pub fn describe(http: &HttpConfig, data_dir: &Path) -> Result<String, Error> {
    let listen = http.listen;
    if !enabled(http.tls, listen) {
        return Ok(format!("admin API: plain HTTP on {listen}"));
    }
    let cert = http
        .cert
        .clone()
        .unwrap_or_else(|| data_dir.join("tls/admin.crt"));
    match read_chain(&cert) {
        Ok(chain) => Ok(format!(
            "admin API: HTTPS on {listen}, certificate {} (sha256 {})",
            cert.display(),
            fingerprint(&chain[0])
        )),
        Err(_) if http.cert.is_none() && !cert.exists() => Ok(format!(
            "admin API: HTTPS on {listen}, with a self-signed certificate made on first start \
             in {}",
            cert.display()
        )),
        Err(e) => Err(e),
    }
}

/// The certificates of a PEM file, at least one.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Tls {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(Error::Tls {
            path: path.to_owned(),
            reason: "no certificate in the file".into(),
        });
    }
    Ok(chain)
}

/// SHA-256 of a certificate as browsers show it.
pub fn fingerprint(cert: &[u8]) -> String {
    let digest = Sha256::digest(cert);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// Makes a self-signed certificate for `hosts` (names and addresses): the key readable by the
/// daemon's user only, never replaced once made (its fingerprint is what operators trust).
fn self_signed(dir: &Path, cert: &Path, key: &Path, hosts: &[String]) -> Result<(), Error> {
    let tls_error = |path: &Path, reason: String| Error::Tls {
        path: path.to_owned(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| tls_error(dir, e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec()).map_err(|e| {
        tls_error(
            cert,
            format!("cannot make a certificate for {hosts:?}: {e}"),
        )
    })?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Switchboard admin");
    let pair = rcgen::KeyPair::generate().map_err(|e| tls_error(key, e.to_string()))?;
    let made = params
        .self_signed(&pair)
        .map_err(|e| tls_error(cert, e.to_string()))?;
    write_new(key, pair.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert, made.pem().as_bytes(), 0o644)
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(contents).and_then(|()| f.sync_all()))
        .map_err(|e| Error::Tls {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// TCP connections that finished their TLS handshake, for `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` and shakes hands in the background until this listener is dropped.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(HANDSHAKES);
        tokio::spawn(accept_loop(tcp, acceptor, tx));
        Ok(TlsListener { ready, local })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            () = ready.closed() => return,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::warn!("admin HTTPS accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "admin TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "admin TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop ends only when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
