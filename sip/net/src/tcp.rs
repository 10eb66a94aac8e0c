//! One task per TCP connection: frames inbound bytes into messages
//! (RFC 3261 §18.3), writes outbound ones, answers RFC 5626 keep-alive
//! pings, and closes after an idle period.

use std::net::SocketAddr;
use std::time::Duration;

use sip_message::{frame_stream, leading_crlf, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What a connection task tells the driver.
#[derive(Debug)]
pub(crate) enum TcpInput {
    /// One framed message.
    Message { peer: SocketAddr, bytes: Vec<u8> },
    /// The connection ended cleanly (EOF, idle close).
    Closed { peer: SocketAddr, id: u64 },
    /// Connect, read or write failed: the endpoint must hear of it.
    Failed { peer: SocketAddr, id: u64 },
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
    pub connect_timeout: Duration,
}

pub(crate) fn spawn_accepted(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    settings: Settings,
    inputs: mpsc::Sender<TcpInput>,
) -> Connection {
    let (outbound, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(stream, peer, id, rx, settings, inputs));
    Connection { id, outbound }
}

/// Opens a connection to `peer`; messages queued meanwhile are written once
/// it is up.
pub(crate) fn spawn_outgoing(
    peer: SocketAddr,
    id: u64,
    settings: Settings,
    inputs: mpsc::Sender<TcpInput>,
) -> Connection {
    let (outbound, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        match tokio::time::timeout(settings.connect_timeout, TcpStream::connect(peer)).await {
            Ok(Ok(stream)) => {
                tracing::debug!(%peer, "TCP connected");
                run(stream, peer, id, rx, settings, inputs).await;
            }
            Ok(Err(error)) => {
                tracing::warn!(%peer, %error, "TCP connect failed");
                let _ = inputs.send(TcpInput::Failed { peer, id }).await;
            }
            Err(_) => {
                tracing::warn!(%peer, "TCP connect timed out");
                let _ = inputs.send(TcpInput::Failed { peer, id }).await;
            }
        }
    });
    Connection { id, outbound }
}

async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    mut outbound: mpsc::UnboundedReceiver<Vec<u8>>,
    settings: Settings,
    inputs: mpsc::Sender<TcpInput>,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut deadline = Instant::now() + settings.idle;
    let end = loop {
        tokio::select! {
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) => break TcpInput::Closed { peer, id },
                    Err(error) => {
                        tracing::debug!(%peer, %error, "TCP read failed");
                        break TcpInput::Failed { peer, id };
                    }
                    Ok(_) => {}
                }
                deadline = Instant::now() + settings.idle;
                match drain_messages(&mut buf, &settings.limits) {
                    Ok(Framed { messages, ping }) => {
                        if ping && writer.write_all(b"\r\n").await.is_err() {
                            break TcpInput::Failed { peer, id };
                        }
                        for bytes in messages {
                            if inputs.send(TcpInput::Message { peer, bytes }).await.is_err() {
                                return; // the driver is gone
                            }
                        }
                    }
                    Err(error) => {
                        // RFC 3261 §18.3: a stream that cannot be framed is closed.
                        tracing::warn!(%peer, %error, "closing unframeable TCP stream");
                        break TcpInput::Closed { peer, id };
                    }
                }
            }
            message = outbound.recv() => {
                let Some(bytes) = message else { break TcpInput::Closed { peer, id } };
                if let Err(error) = writer.write_all(&bytes).await {
                    tracing::warn!(%peer, %error, "TCP write failed");
                    break TcpInput::Failed { peer, id };
                }
                deadline = Instant::now() + settings.idle;
            }
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(%peer, "closing idle TCP connection");
                break TcpInput::Closed { peer, id };
            }
        }
    };
    let _ = inputs.send(end).await;
}

struct Framed {
    messages: Vec<Vec<u8>>,
    /// A RFC 5626 §3.5.1 double-CRLF ping was seen: answer one CRLF.
    ping: bool,
}

fn drain_messages(buf: &mut Vec<u8>, limits: &Limits) -> Result<Framed, sip_message::ParseError> {
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
        match frame_stream(buf, limits)? {
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
        let mut buf = b"\r\n\r\n".to_vec();
        buf.extend_from_slice(OPTIONS);
        buf.extend_from_slice(&OPTIONS[..20]);
        let framed = drain_messages(&mut buf, &limits).unwrap();
        assert!(framed.ping);
        assert_eq!(framed.messages, vec![OPTIONS.to_vec()]);
        assert_eq!(buf, OPTIONS[..20].to_vec());
        buf.extend_from_slice(&OPTIONS[20..]);
        let framed = drain_messages(&mut buf, &limits).unwrap();
        assert!(!framed.ping);
        assert_eq!(framed.messages, vec![OPTIONS.to_vec()]);
        assert!(buf.is_empty());
    }

    #[test]
    fn missing_content_length_is_unframeable() {
        let mut buf = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nCall-ID: x\r\n\r\n".to_vec();
        assert!(drain_messages(&mut buf, &Limits::default()).is_err());
    }
}
