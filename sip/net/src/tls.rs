//! SIP over TLS (RFC 3261 §26.2, RFC 5630): loading the certificate, key
//! and trust anchors into rustls configurations.
//!
//! Trust is explicit: the system store (`/etc/ssl/certs` through
//! `rustls-native-certs`) or a CA file, never a bundled web PKI list, since
//! an on-prem PBX usually presents a certificate from the company's own CA.
//!
//! An outbound connection verifies the peer's certificate against the name
//! registered for its address with [`crate::SipHandle::tls_peer`] (a
//! trunk's host name, sent as SNI), else against the IP address it connects
//! to (the certificate then needs an IP subjectAltName).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::Error;

/// TLS for the driver: a listener (optional) and whom outbound
/// connections trust.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Accept SIP over TLS; `None` makes TLS outbound-only.
    pub listener: Option<TlsListenerConfig>,
    /// Trust anchors for the certificates of peers we connect to.
    pub roots: TlsRoots,
}

/// Where the TLS listener binds and what it presents.
#[derive(Debug, Clone)]
pub struct TlsListenerConfig {
    /// The address to bind (RFC 3261 §26.2: SIP over TLS defaults to port
    /// 5061); port 0 picks a free one. The endpoint advertises the bound
    /// port in TLS Via and Contact headers.
    pub addr: std::net::SocketAddr,
    /// PEM file with our certificate first, then its intermediates.
    pub certificate_chain: PathBuf,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
}

/// Whom outbound TLS connections trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsRoots {
    /// The operating system's store (`/etc/ssl/certs` on Debian).
    System,
    /// Only the certificates in this PEM file (the company CA, or a peer's
    /// self-signed certificate).
    CaFile(PathBuf),
}

/// Who a TLS peer we connect to must prove to be: a trunk's host name from
/// its proxy URI (RFC 5922 §7.1: the domain, also when SRV named another
/// target) and the roots that vouch for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPeer {
    /// Sent as SNI and checked against the certificate's subjectAltNames;
    /// a name or an IP address.
    pub server_name: String,
    pub roots: TlsRoots,
}

/// What an outbound TLS connection uses: the connector (roots) and the
/// name the certificate must carry.
#[derive(Clone)]
pub(crate) struct OutboundTls {
    pub connector: TlsConnector,
    pub name: ServerName<'static>,
}

impl std::fmt::Debug for OutboundTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundTls")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl OutboundTls {
    /// Loads `peer`'s roots (file reads: call off the driver's loop).
    pub(crate) fn load(peer: &TlsPeer) -> Result<OutboundTls, Error> {
        let name =
            ServerName::try_from(peer.server_name.clone()).map_err(|_| Error::TlsServerName {
                name: peer.server_name.clone(),
            })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(Error::Tls)?
            .with_root_certificates(root_store(&peer.roots)?)
            .with_no_client_auth();
        Ok(OutboundTls {
            connector: TlsConnector::from(Arc::new(client)),
            name,
        })
    }
}

/// Why a handshake failed, in the words an administrator acts on: an
/// untrusted or misnamed certificate says which, with the roots to check.
pub(crate) fn describe_handshake_error(error: &std::io::Error, name: &ServerName<'_>) -> String {
    use rustls::CertificateError as C;
    let tls = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    let name = name.to_str();
    match tls {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            C::UnknownIssuer | C::BadSignature => format!(
                "certificate not trusted: its issuer is not among the trusted roots (the trunk's ca_file, else the system store); expected {name}"
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("certificate not valid for {name}")
            }
            C::Expired | C::ExpiredContext { .. } => {
                format!("certificate of {name} has expired")
            }
            other => format!("certificate of {name} refused: {other:?}"),
        },
        Some(other) => format!("TLS handshake with {name} failed: {other}"),
        None => format!("TLS handshake with {name} failed: {error}"),
    }
}

/// The rustls side of a [`TlsConfig`], built once at bind.
#[derive(Clone)]
pub(crate) struct Tls {
    pub connector: TlsConnector,
    pub acceptor: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("listener", &self.acceptor.is_some())
            .finish_non_exhaustive()
    }
}

impl Tls {
    pub(crate) fn load(config: &TlsConfig) -> Result<Tls, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = root_store(&config.roots)?;
        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(Error::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let acceptor = match &config.listener {
            None => None,
            Some(listener) => {
                let chain = certificates(&listener.certificate_chain)?;
                let key =
                    PrivateKeyDer::from_pem_file(&listener.private_key).map_err(|source| {
                        Error::TlsFile {
                            path: listener.private_key.clone(),
                            source,
                        }
                    })?;
                let server = ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(Error::Tls)?
                    .with_no_client_auth()
                    .with_single_cert(chain, key)
                    .map_err(Error::Tls)?;
                Some(TlsAcceptor::from(Arc::new(server)))
            }
        };
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(client)),
            acceptor,
        })
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let file_error = |source| Error::TlsFile {
        path: path.to_owned(),
        source,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(file_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(file_error)?;
    if certificates.is_empty() {
        return Err(Error::NoCertificates {
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

fn root_store(roots: &TlsRoots) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    match roots {
        TlsRoots::CaFile(path) => {
            let (added, _) = store.add_parsable_certificates(certificates(path)?);
            if added == 0 {
                return Err(Error::NoCertificates { path: path.clone() });
            }
        }
        TlsRoots::System => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "skipping part of the system certificate store");
            }
            let (added, ignored) = store.add_parsable_certificates(found.certs);
            if ignored > 0 {
                tracing::warn!(ignored, "unparsable certificates in the system store");
            }
            if added == 0 {
                return Err(Error::NoSystemRoots);
            }
        }
    }
    Ok(store)
}
