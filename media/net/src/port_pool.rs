//! The RTP port pool: even ports from a configured range (RFC 3550 §11:
//! RTP on an even port, RTCP on the next odd one), or a single port per
//! call with rtcp-mux (RFC 5761). Each call's port is drawn at random from
//! the free ones: ports handed out in sequence would tell anyone who sees
//! one call's SDP where the next call's media goes.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::UdpSocket;

use crate::Error;

/// Hands out RTP (and RTCP) sockets; a port goes back to the pool when its
/// [`RtpSockets`] are dropped. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    ip: IpAddr,
    first: u16,
    last: u16,
    rtcp_mux: bool,
    in_use: HashSet<u16>,
}

impl PortPool {
    /// Even ports in `first..=last` on `ip`; with `rtcp_mux` false each call
    /// also takes the odd port above its RTP port.
    pub fn new(ip: IpAddr, first: u16, last: u16, rtcp_mux: bool) -> Result<PortPool, Error> {
        let even_first = first.saturating_add(first % 2);
        let top = if rtcp_mux {
            even_first
        } else {
            even_first.saturating_add(1)
        };
        if first == 0 || even_first > last || top > last {
            return Err(Error::EmptyRange { first, last });
        }
        Ok(PortPool {
            inner: Arc::new(Mutex::new(Inner {
                ip,
                first: even_first,
                last,
                rtcp_mux,
                in_use: HashSet::new(),
            })),
        })
    }

    /// Binds a free even port drawn at random (and its RTCP port). Ports
    /// another process holds are skipped. Call inside a tokio runtime.
    pub fn allocate(&self) -> Result<RtpSockets, Error> {
        // A poisoned lock only means another thread panicked mid-allocation;
        // the set is still a valid set of ports.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let span = if inner.rtcp_mux { 1 } else { 2 };
        let slots = (inner.last - inner.first) as usize / 2 + 1;
        // A random slot, then the following ones in turn: every free slot is tried once.
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| Error::Random(e.to_string()))?;
        let start = (u64::from_le_bytes(random) % slots as u64) as usize;
        for slot in (0..slots).map(|i| (start + i) % slots) {
            let port = inner.first + 2 * slot as u16;
            if port as u32 + span - 1 > inner.last as u32 || inner.in_use.contains(&port) {
                continue;
            }
            let Ok(rtp) = std::net::UdpSocket::bind(SocketAddr::new(inner.ip, port)) else {
                continue;
            };
            let rtcp = if inner.rtcp_mux {
                None
            } else {
                match std::net::UdpSocket::bind(SocketAddr::new(inner.ip, port + 1)) {
                    Ok(s) => Some(s),
                    Err(_) => continue,
                }
            };
            let rtp = into_tokio(rtp, port)?;
            let rtcp = rtcp.map(|s| into_tokio(s, port + 1)).transpose()?;
            inner.in_use.insert(port);
            return Ok(RtpSockets {
                rtp,
                rtcp,
                port,
                lease: Lease {
                    pool: Arc::clone(&self.inner),
                    port,
                },
            });
        }
        Err(Error::PoolExhausted {
            first: inner.first,
            last: inner.last,
            in_use: inner.in_use.len(),
        })
    }

    /// Ports held by live calls.
    pub fn in_use(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_use
            .len()
    }
}

fn into_tokio(socket: std::net::UdpSocket, port: u16) -> Result<UdpSocket, Error> {
    socket
        .set_nonblocking(true)
        .and_then(|()| UdpSocket::from_std(socket))
        .map_err(|source| Error::Socket { port, source })
}

/// One call's sockets. Dropping them returns the port to the pool.
#[derive(Debug)]
pub struct RtpSockets {
    pub(crate) rtp: UdpSocket,
    /// `None` with rtcp-mux: RTCP shares the RTP socket.
    pub(crate) rtcp: Option<UdpSocket>,
    port: u16,
    #[allow(dead_code)] // reason: held for its Drop
    lease: Lease,
}

impl RtpSockets {
    /// The RTP port (for the SDP `m=` line).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The RTCP port: `port + 1`, or `port` with rtcp-mux.
    pub fn rtcp_port(&self) -> u16 {
        if self.rtcp.is_some() {
            self.port + 1
        } else {
            self.port
        }
    }
}

#[derive(Debug)]
struct Lease {
    pool: Arc<Mutex<Inner>>,
    port: u16,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_use
            .remove(&self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn empty_ranges_are_refused() {
        assert!(PortPool::new(LOCAL, 20001, 20001, false).is_err());
        assert!(PortPool::new(LOCAL, 20000, 20000, false).is_err());
        assert!(PortPool::new(LOCAL, 20000, 20000, true).is_ok());
    }

    #[tokio::test]
    async fn even_ports_are_leased_and_returned() {
        // A range in the middle of nowhere; ports another process holds are skipped.
        let pool = PortPool::new(LOCAL, 47001, 47010, false).unwrap();
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!(a.port() % 2, 0);
        assert_eq!(b.port() % 2, 0);
        assert_ne!(a.port(), b.port());
        assert_eq!(a.rtcp_port(), a.port() + 1);
        assert!((47002..=47009).contains(&a.port()));
        assert_eq!(pool.in_use(), 2);
        drop(a);
        assert_eq!(pool.in_use(), 1);
        let mut held = vec![b];
        while let Ok(s) = pool.allocate() {
            held.push(s);
        }
        assert!(held.len() <= 4);
        assert!(matches!(pool.allocate(), Err(Error::PoolExhausted { .. })));
        held.pop();
        assert!(pool.allocate().is_ok());
    }

    #[tokio::test]
    async fn ports_are_not_handed_out_in_sequence() {
        let pool = PortPool::new(LOCAL, 47100, 47899, true).unwrap();
        let ports: Vec<u16> = (0..8).map(|_| pool.allocate().unwrap().port()).collect();
        // Each lease is dropped at once, so a sequential pool would repeat one port or count up
        // by two (eight ports within 16). Random draws from 400 slots spread wide; a port
        // another process holds moves a draw to the next slot, so adjacent draws may occur.
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        let spread = ports.iter().max().unwrap() - ports.iter().min().unwrap();
        assert!(distinct.len() > 4 && spread > 64, "{ports:?}");
    }
}
