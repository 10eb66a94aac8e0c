//! Locating a trunk's servers over DNS (RFC 3263 §4): the driver half of
//! [`sip_proto::locate`]. [`Resolver::locate`] asks what
//! [`sip_proto::locate::plan`] says to ask — NAPTR, then SRV, then A/AAAA
//! of each SRV target — and orders the answers with
//! [`sip_proto::locate::naptr_services`] and
//! [`sip_proto::locate::order_srv`] into the destinations a
//! [`crate::Trunk`] fails over along (§4.3).
//!
//! The stub resolver is hickory's, reading `/etc/resolv.conf` (nameservers,
//! search, ndots, timeout, attempts) and `/etc/hosts`, or talking only to
//! the nameservers given in [`DnsConfig::nameservers`]. Queries go over
//! UDP and are retried over TCP when an answer is truncated. Nothing here
//! needs the Internet: an air-gapped site's own nameserver is enough.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use sip_message::Uri;
use sip_proto::locate::{self, Naptr, Plan, Srv};

use crate::{Destination, Error, TransportKind};

/// Where DNS questions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Ask only these nameservers (an appliance's own resolver, a test's).
    /// Empty: the system's, from `/etc/resolv.conf`.
    pub nameservers: Vec<SocketAddr>,
    /// How long to wait for one answer; `None` keeps resolv.conf's (5 s).
    pub timeout: Option<Duration>,
    /// Tries per query and nameserver; `None` keeps resolv.conf's (2).
    pub attempts: Option<usize>,
}

impl DnsConfig {
    /// The system's nameservers with the system's timeouts.
    pub fn system() -> DnsConfig {
        DnsConfig {
            nameservers: Vec::new(),
            timeout: None,
            attempts: None,
        }
    }
}

/// Where a URI's requests go, and until when that holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Located {
    /// Best first (RFC 3263 §4.3); never empty.
    pub destinations: Vec<Destination>,
    /// When the shortest-lived record used expires and the name should be
    /// located again; `None` when no DNS record was used (an IP literal, or
    /// a host the system resolver answered for, which gives no TTL).
    pub expires: Option<Instant>,
}

/// A DNS stub resolver that locates SIP servers. Clone freely: clones
/// share one cache and one set of connections.
#[derive(Clone)]
pub struct Resolver {
    dns: Result<TokioResolver, Arc<NetError>>,
    /// With the system configuration, a host with an explicit port goes to
    /// the system resolver (nsswitch, `/etc/hosts`) as it always has.
    system: bool,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver for `config`; reads `/etc/resolv.conf` unless nameservers
    /// are given. Never fails: a system configuration that cannot be read
    /// is each DNS query's error ([`Error::DnsConfig`]), so trunks given by
    /// address still start. Call inside a tokio runtime.
    pub fn new(config: &DnsConfig) -> Resolver {
        let system = config.nameservers.is_empty();
        Resolver {
            dns: build(config).map_err(Arc::new),
            system,
        }
    }

    /// Where requests to `uri` go (RFC 3263 §4): an IP literal as it is;
    /// a host with a port by its A/AAAA records; otherwise NAPTR (unless
    /// the URI names a transport), SRV and the SRV targets' A/AAAA, falling
    /// back to the domain's A/AAAA on the default port when no NAPTR or
    /// SRV record exists (§4.2). `random(max)` draws uniformly from
    /// `0..=max` for RFC 2782's weighted order.
    ///
    /// A query that fails before any was answered (no nameserver answers)
    /// ends the search with its error; once DNS has answered, a failed
    /// query loses only its own records and the first such error is
    /// returned only if nothing at all was found.
    pub async fn locate(
        &self,
        uri: &Uri,
        mut random: impl FnMut(u32) -> u32,
    ) -> Result<Located, Error> {
        let plan = locate::plan(uri).ok_or_else(|| Error::NotSip {
            uri: uri.to_string(),
        })?;
        let mut search = Search::default();
        match plan {
            Plan::Address {
                transport,
                ip,
                port,
            } => search.push(transport, SocketAddr::new(ip, port)),
            // A host with a port, with the system configuration: the
            // system resolver (nsswitch, /etc/hosts, search domains), as
            // before DNS location existed; it tells no TTL.
            Plan::Host {
                transport,
                host,
                port,
            } if self.system => {
                let addresses = tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|source| Error::Resolve {
                        host: host.clone(),
                        source,
                    })?;
                for address in addresses {
                    search.push(transport, address);
                }
            }
            Plan::Host {
                transport,
                host,
                port,
            } => {
                let found = self.addresses(&mut search, transport, &host, port).await;
                search.settle(found)?;
            }
            Plan::Srv { transport, domain } => {
                let name = locate::srv_name(transport, &domain);
                self.srv(&mut search, transport, &name, &mut random).await?;
                if search.located.destinations.is_empty() {
                    let port = locate::default_port(transport);
                    let found = self.addresses(&mut search, transport, &domain, port).await;
                    search.settle(found)?;
                }
            }
            Plan::Naptr { domain, secure } => {
                let naptr = self.naptr(&mut search, &domain).await?;
                // Every service the domain offers, best first: the first
                // transport's servers, then the next transport's, so the
                // trunk fails over across transports too.
                for (transport, name) in locate::naptr_services(&naptr, &domain, secure) {
                    self.srv(&mut search, transport, &name, &mut random).await?;
                }
                if search.located.destinations.is_empty() {
                    // §4.2: no NAPTR or SRV: A/AAAA, UDP (TLS for sips:).
                    let transport = if secure {
                        TransportKind::Tls
                    } else {
                        TransportKind::Udp
                    };
                    let port = locate::default_port(transport);
                    let found = self.addresses(&mut search, transport, &domain, port).await;
                    search.settle(found)?;
                }
            }
        }
        if search.located.destinations.is_empty() {
            return Err(search.error.unwrap_or_else(|| Error::NoAddress {
                uri: uri.to_string(),
            }));
        }
        Ok(search.located)
    }

    fn dns(&self) -> Result<&TokioResolver, Error> {
        self.dns
            .as_ref()
            .map_err(|e| Error::DnsConfig(Box::new(NetError::clone(e))))
    }

    /// The NAPTR records of `domain`; none when it has none.
    async fn naptr(&self, search: &mut Search, domain: &str) -> Result<Vec<Naptr>, Error> {
        let found = self.query(search, domain, RecordType::NAPTR).await;
        let Some(lookup) = search.settle(found)?.flatten() else {
            return Ok(Vec::new());
        };
        search.located.expire(lookup.valid_until());
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::NAPTR(r) => Some(Naptr {
                    order: r.order,
                    preference: r.preference,
                    flags: String::from_utf8_lossy(&r.flags).into_owned(),
                    service: String::from_utf8_lossy(&r.services).into_owned(),
                    replacement: r.replacement.to_ascii(),
                }),
                _ => None,
            })
            .collect())
    }

    /// Adds the servers of the SRV name `name`, in RFC 2782 order, each at
    /// its target's addresses.
    async fn srv(
        &self,
        search: &mut Search,
        transport: TransportKind,
        name: &str,
        random: &mut impl FnMut(u32) -> u32,
    ) -> Result<(), Error> {
        let found = self.query(search, name, RecordType::SRV).await;
        let Some(lookup) = search.settle(found)?.flatten() else {
            return Ok(());
        };
        search.located.expire(lookup.valid_until());
        let records: Vec<Srv> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(r) => Some(Srv {
                    priority: r.priority,
                    weight: r.weight,
                    port: r.port,
                    target: r.target.to_ascii(),
                }),
                _ => None,
            })
            .collect();
        for server in locate::order_srv(&records, random) {
            let target = server.target.trim_end_matches('.');
            // A target without addresses is skipped: the others may answer (§4.3).
            let found = self.addresses(search, transport, target, server.port).await;
            search.settle(found)?;
        }
        Ok(())
    }

    /// Adds the A/AAAA addresses of `host`, all at `port`.
    async fn addresses(
        &self,
        search: &mut Search,
        transport: TransportKind,
        host: &str,
        port: u16,
    ) -> Result<(), Error> {
        let no_address = || Error::NoAddress {
            uri: host.to_owned(),
        };
        let lookup = match self.dns()?.lookup_ip(fqdn(host)).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_no_records_found() => {
                search.answered = true;
                return Err(no_address());
            }
            Err(source) => {
                return Err(Error::Dns {
                    name: host.to_owned(),
                    query: "A/AAAA",
                    source: Box::new(source),
                })
            }
        };
        search.answered = true;
        search.located.expire(lookup.valid_until());
        let before = search.located.destinations.len();
        for ip in lookup.iter() {
            search.push(transport, SocketAddr::new(ip, port));
        }
        if search.located.destinations.len() == before {
            return Err(no_address());
        }
        Ok(())
    }

    /// One query; `None` when the name or the record type does not exist.
    async fn query(
        &self,
        search: &mut Search,
        name: &str,
        record_type: RecordType,
    ) -> Result<Option<hickory_resolver::lookup::Lookup>, Error> {
        let result = self.dns()?.lookup(fqdn(name), record_type).await;
        match result {
            Ok(lookup) => {
                search.answered = true;
                Ok((!lookup.answers().is_empty()).then_some(lookup))
            }
            // NXDOMAIN and NODATA alike: not published, so RFC 3263 goes
            // on to its next step.
            Err(e) if e.is_no_records_found() => {
                search.answered = true;
                Ok(None)
            }
            Err(source) => Err(Error::Dns {
                name: name.to_owned(),
                query: query_name(record_type),
                source: Box::new(source),
            }),
        }
    }
}

/// A search in progress: what was found, and how DNS has behaved.
#[derive(Default)]
struct Search {
    located: Located,
    /// Some nameserver answered some question (if only "no such name").
    answered: bool,
    /// The first failed query after that.
    error: Option<Error>,
}

impl Search {
    fn push(&mut self, transport: TransportKind, address: SocketAddr) {
        let destination = Destination { transport, address };
        if !self.located.destinations.contains(&destination) {
            self.located.destinations.push(destination);
        }
    }

    /// Passes on a step's outcome: `None` for a name with no records or a
    /// query that failed after DNS had answered (remembered); the error
    /// itself while DNS has never answered or cannot be configured.
    fn settle<T>(&mut self, result: Result<T, Error>) -> Result<Option<T>, Error> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(Error::NoAddress { .. }) => Ok(None),
            Err(error @ Error::Dns { .. }) if self.answered => {
                tracing::warn!(%error, "skipping these records");
                self.error.get_or_insert(error);
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

fn build(config: &DnsConfig) -> Result<TokioResolver, NetError> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = if config.nameservers.is_empty() {
        TokioResolver::builder(provider)?
    } else {
        let servers = config
            .nameservers
            .iter()
            .map(|server| {
                let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut ns.connections {
                    connection.port = server.port();
                }
                ns
            })
            .collect();
        TokioResolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
    };
    let options = builder.options_mut();
    if let Some(timeout) = config.timeout {
        options.timeout = timeout;
    }
    if let Some(attempts) = config.attempts {
        options.attempts = attempts;
    }
    // A carrier's IPv6 addresses are fail-over targets too.
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    // Nameservers one at a time, in the order given: the first is the site's own.
    options.num_concurrent_reqs = 1;
    builder.build()
}

impl Located {
    fn expire(&mut self, at: Instant) {
        self.expires = Some(self.expires.map_or(at, |e| e.min(at)));
    }
}

/// The names in a SIP URI and in NAPTR/SRV records are absolute: no search
/// domains (RFC 3263 §4 resolves them as given).
fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

fn query_name(record_type: RecordType) -> &'static str {
    match record_type {
        RecordType::NAPTR => "NAPTR",
        RecordType::SRV => "SRV",
        _ => "A/AAAA",
    }
}
