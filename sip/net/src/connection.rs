//! One task per TCP or TLS connection: frames inbound bytes into messages
//! (RFC 3261 §18.3), writes outbound ones, answers RFC 5626 keep-alive
//! pings, and closes after an idle period. TLS handshakes run in the
//! connection's task, never on the driver's loop.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::ServerName;
use sip_message::{leading_crlf, Limits, StreamFramer};
use sip_proto::TransportKind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::tls::{describe_handshake_error, OutboundTls, Tls};

/// What a connection task tells the driver.
#[derive(Debug)]
pub(crate) enum StreamInput {
    /// One framed message.
    Message {
        transport: TransportKind,
        peer: SocketAddr,
        bytes: Vec<u8>,
    },
    /// The connection ended cleanly (EOF, idle close).
    Closed {
        transport: TransportKind,
        peer: SocketAddr,
        id: u64,
    },
    /// Connect, handshake, read or write failed: the endpoint must hear of it.
    Failed {
        transport: TransportKind,
        peer: SocketAddr,
        id: u64,
    },
}

/// The driver's side of a connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub id: u64,
    pub outbound: mpsc::UnboundedSender<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub idle: Duration,
    pub limits: Limits,
    /// Bounds the TCP connect and the TLS handshake, each.
    pub connect_timeout: Duration,
    pub tls: Option<Tls>,
}

/// Who a connection task is, for its reports.
#[derive(Debug, Clone, Copy)]
struct Link {
    transport: TransportKind,
    peer: SocketAddr,
    id: u64,
}

impl Link {
    fn closed(self) -> StreamInput {
        StreamInput::Closed {
            transport: self.transport,
            peer: self.peer,
            id: self.id,
        }
    }

    fn failed(self) -> StreamInput {
        StreamInput::Failed {
            transport: self.transport,
            peer: self.peer,
            id: self.id,
        }
    }
}

/// Serves an accepted connection: plain TCP, or TLS when `transport` is
/// TLS (the handshake runs first, bounded by the connect timeout).
pub(crate) fn spawn_accepted(
    stream: TcpStream,
    transport: TransportKind,
    peer: SocketAddr,
    id: u64,
    settings: Settings,
    inputs: mpsc::Sender<StreamInput>,
) -> Connection {
    let (outbound, rx) = mpsc::unbounded_channel();
    let link = Link {
        transport,
        peer,
        id,
    };
    tokio::spawn(async move {
        let _ = stream.set_nodelay(true);
        if transport != TransportKind::Tls {
            return run(stream, link, rx, settings, inputs).await;
        }
        let Some(acceptor) = settings.tls.as_ref().and_then(|t| t.acceptor.clone()) else {
            return;
        };
        let handshake = acceptor.accept(stream);
        run_after_handshake(handshake, None, link, rx, settings, inputs).await;
    });
    Connection { id, outbound }
}

/// Opens a TCP (or, with `tls`, TLS over TCP) connection to `peer`;
/// messages queued meanwhile are written once it is up. A TLS peer must
/// present a certificate for `tls.name` that `tls.connector`'s roots trust.
pub(crate) fn spawn_outgoing(
    transport: TransportKind,
    peer: SocketAddr,
    id: u64,
    settings: Settings,
    tls: Option<OutboundTls>,
    inputs: mpsc::Sender<StreamInput>,
) -> Connection {
    let (outbound, rx) = mpsc::unbounded_channel();
    let link = Link {
        transport,
        peer,
        id,
    };
    tokio::spawn(async move {
        let stream =
            match tokio::time::timeout(settings.connect_timeout, TcpStream::connect(peer)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::warn!(%peer, %transport, %error, "connect failed");
                    let _ = inputs.send(link.failed()).await;
                    return;
                }
                Err(_) => {
                    tracing::warn!(%peer, %transport, "connect timed out");
                    let _ = inputs.send(link.failed()).await;
                    return;
                }
            };
        let _ = stream.set_nodelay(true);
        tracing::debug!(%peer, %transport, "connected");
        if transport != TransportKind::Tls {
            return run(stream, link, rx, settings, inputs).await;
        }
        let Some(OutboundTls { connector, name }) = tls else {
            let _ = inputs.send(link.failed()).await;
            return;
        };
        let handshake = connector.connect(name.clone(), stream);
        run_after_handshake(handshake, Some(name), link, rx, settings, inputs).await;
    });
    Connection { id, outbound }
}

/// Serves the stream a TLS handshake yields; a handshake that fails or outlasts
/// `connect_timeout` marks the link failed instead. `server` is the name we
/// expect when we connected, `None` when we accepted.
async fn run_after_handshake<S>(
    handshake: impl std::future::Future<Output = std::io::Result<S>>,
    server: Option<ServerName<'static>>,
    link: Link,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    settings: Settings,
    inputs: mpsc::Sender<StreamInput>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let peer = link.peer;
    let side = if server.is_some() {
        "connected"
    } else {
        "accepted"
    };
    match tokio::time::timeout(settings.connect_timeout, handshake).await {
        Ok(Ok(tls)) => {
            tracing::debug!(%peer, side, "TLS established");
            run(tls, link, rx, settings, inputs).await;
        }
        Ok(Err(error)) => {
            match &server {
                Some(name) => {
                    let cause = describe_handshake_error(&error, name);
                    tracing::warn!(%peer, side, "TLS handshake failed: {cause}");
                }
                None => tracing::warn!(%peer, %error, side, "TLS handshake failed"),
            }
            let _ = inputs.send(link.failed()).await;
        }
        Err(_) => {
            tracing::warn!(%peer, side, "TLS handshake timed out");
            let _ = inputs.send(link.failed()).await;
        }
    }
}

async fn run<S>(
    stream: S,
    link: Link,
    mut outbound: mpsc::UnboundedReceiver<Vec<u8>>,
    settings: Settings,
    inputs: mpsc::Sender<StreamInput>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Link {
        transport, peer, ..
    } = link;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut framer = StreamFramer::default();
    let mut deadline = Instant::now() + settings.idle;
    let end = loop {
        tokio::select! {
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) => break link.closed(),
                    Err(error) => {
                        tracing::debug!(%peer, %transport, %error, "read failed");
                        break link.failed();
                    }
                    Ok(_) => {}
                }
                deadline = Instant::now() + settings.idle;
                match drain_messages(&mut buf, &mut framer, &settings.limits) {
                    Ok(Framed { messages, ping }) => {
                        if ping && write(&mut writer, b"\r\n").await.is_err() {
                            break link.failed();
                        }
                        for bytes in messages {
                            let message = StreamInput::Message { transport, peer, bytes };
                            if inputs.send(message).await.is_err() {
                                return; // the driver is gone
                            }
                        }
                    }
                    Err(error) => {
                        // RFC 3261 §18.3: a stream that cannot be framed is closed.
                        tracing::warn!(%peer, %transport, %error, "closing unframeable stream");
                        break link.closed();
                    }
                }
            }
            message = outbound.recv() => {
                let Some(bytes) = message else { break link.closed() };
                if let Err(error) = write(&mut writer, &bytes).await {
                    tracing::warn!(%peer, %transport, %error, "write failed");
                    break link.failed();
                }
                deadline = Instant::now() + settings.idle;
            }
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(%peer, %transport, "closing idle connection");
                break link.closed();
            }
        }
    };
    // TLS: close_notify; bounded, since a peer that stopped reading must not hold the task.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer.shutdown()).await;
    let _ = inputs.send(end).await;
}

/// Writes and flushes (a TLS stream buffers records until flushed).
async fn write<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

struct Framed {
    messages: Vec<Vec<u8>>,
    /// A RFC 5626 §3.5.1 double-CRLF ping was seen: answer one CRLF.
    ping: bool,
}

fn drain_messages(
    buf: &mut Vec<u8>,
    framer: &mut StreamFramer,
    limits: &Limits,
) -> Result<Framed, sip_message::ParseError> {
    let mut framed = Framed {
        messages: Vec::new(),
        ping: false,
    };
    loop {
        let skip = leading_crlf(buf);
        if skip >= 4 {
            framed.ping = true;
        }
        if skip == buf.len() {
            buf.clear();
            return Ok(framed);
        }
        match framer.next(buf, limits)? {
            None => return Ok(framed),
            Some((_, consumed)) => {
                framed.messages.push(buf[skip..consumed].to_vec());
                buf.drain(..consumed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 4\r\n\r\nabcd";

    #[test]
    fn frames_split_and_joined_messages() {
        let limits = Limits::default();
        let mut framer = StreamFramer::default();
        let mut buf = b"\r\n\r\n".to_vec();
        buf.extend_from_slice(OPTIONS);
        buf.extend_from_slice(&OPTIONS[..20]);
        let framed = drain_messages(&mut buf, &mut framer, &limits).unwrap();
        assert!(framed.ping);
        assert_eq!(framed.messages, vec![OPTIONS.to_vec()]);
        assert_eq!(buf, OPTIONS[..20].to_vec());
        buf.extend_from_slice(&OPTIONS[20..]);
        let framed = drain_messages(&mut buf, &mut framer, &limits).unwrap();
        assert!(!framed.ping);
        assert_eq!(framed.messages, vec![OPTIONS.to_vec()]);
        assert!(buf.is_empty());
    }

    #[test]
    fn missing_content_length_is_unframeable() {
        let mut buf = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nCall-ID: x\r\n\r\n".to_vec();
        let mut framer = StreamFramer::default();
        assert!(drain_messages(&mut buf, &mut framer, &Limits::default()).is_err());
    }
}
