//! A tiny authoritative DNS server for tests: UDP on 127.0.0.1, a random
//! port, answering from a zone the test sets (and may change while it
//! runs). Names it does not hold get NXDOMAIN; a name it holds without the
//! type asked gets an empty NOERROR (NODATA). Messages are encoded and
//! parsed with hickory-proto, the resolver's own codec.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, NAPTR, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// The zone's TTL unless a test sets another on a record.
pub const TTL: u32 = 60;

/// A running server; stops when dropped.
pub struct DnsServer {
    /// Where it listens (UDP).
    pub addr: SocketAddr,
    zone: Arc<Mutex<Vec<Record>>>,
    queries: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl DnsServer {
    /// Serves `zone` on 127.0.0.1 at a free port.
    pub async fn start(zone: Vec<Record>) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind DNS");
        let addr = socket.local_addr().expect("DNS addr");
        let zone = Arc::new(Mutex::new(zone));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve(socket, zone.clone(), queries.clone()));
        DnsServer {
            addr,
            zone,
            queries,
            task,
        }
    }

    /// Replaces the zone (a carrier renumbering).
    pub fn set_zone(&self, zone: Vec<Record>) {
        *self.zone.lock().expect("zone") = zone;
    }

    /// The questions asked so far, as "TYPE name", oldest first.
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().expect("queries").clone()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(socket: UdpSocket, zone: Arc<Mutex<Vec<Record>>>, queries: Arc<Mutex<Vec<String>>>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let Ok(query) = Message::from_vec(&buf[..len]) else {
            continue;
        };
        let mut response = Message::response(query.metadata.id, query.metadata.op_code);
        response.metadata.message_type = MessageType::Response;
        response.metadata.authoritative = true;
        response.metadata.recursion_desired = query.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        {
            let zone = zone.lock().expect("zone");
            for question in &query.queries {
                queries.lock().expect("queries").push(format!(
                    "{} {}",
                    question.query_type(),
                    question.name()
                ));
                let held: Vec<&Record> =
                    zone.iter().filter(|r| r.name == *question.name()).collect();
                if held.is_empty() {
                    response.metadata.response_code = ResponseCode::NXDomain;
                }
                response.add_answers(
                    held.into_iter()
                        .filter(|r| r.record_type() == question.query_type())
                        .cloned(),
                );
            }
        }
        response.add_queries(query.queries.clone());
        if let Ok(bytes) = response.to_vec() {
            let _ = socket.send_to(&bytes, from).await;
        }
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.'))).expect("a DNS name")
}

/// `name IN NAPTR order 50 "s" service "" replacement`.
pub fn naptr(owner: &str, order: u16, service: &str, replacement: &str) -> Record {
    Record::from_rdata(
        name(owner),
        TTL,
        RData::NAPTR(NAPTR::new(
            order,
            50,
            b"s".to_vec().into_boxed_slice(),
            service.as_bytes().to_vec().into_boxed_slice(),
            Vec::new().into_boxed_slice(),
            name(replacement),
        )),
    )
}

/// `name IN SRV priority weight port target`.
pub fn srv(owner: &str, priority: u16, weight: u16, port: u16, target: &str) -> Record {
    Record::from_rdata(
        name(owner),
        TTL,
        RData::SRV(SRV::new(priority, weight, port, name(target))),
    )
}

/// `name IN A ip`.
pub fn a(owner: &str, ip: Ipv4Addr) -> Record {
    Record::from_rdata(name(owner), TTL, RData::A(A(ip)))
}
