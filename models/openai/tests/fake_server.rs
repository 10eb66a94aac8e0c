#![allow(clippy::unwrap_used)] // reason: test helpers, where a panic is the failure report
//! The client against a fake server on 127.0.0.1 that answers in OpenAI's published streaming
//! format byte for byte (`data: {chunk}\n\n` … `data: [DONE]\n\n`, chunked transfer encoding),
//! over plain HTTP and over TLS with a certificate from a private CA.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use models_api::{
    CancelToken, ChatMessage, Flow, GenerateOptions, Llm, LlmSession, Role, StopReason,
};
use models_openai::{Error, OpenAi, OpenAiConfig, Roots};

/// What the server saw of one request, and whether the client hung up mid-stream.
#[derive(Debug)]
struct Seen {
    head: String,
    body: serde_json::Value,
    client_closed: bool,
}

/// One scripted response per connection: status line + headers, then the events (each sent as
/// one chunk, `pause` apart).
struct Reply {
    status: &'static str,
    events: Vec<String>,
    pause: Duration,
}

fn serve(replies: Vec<Reply>) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for reply in replies {
            let (stream, _) = listener.accept().unwrap();
            let seen = answer(stream, &reply);
            tx.send(seen).unwrap();
        }
    });
    (url, rx)
}

/// The same over TLS: the server's certificate for 127.0.0.1 is signed by a CA made here, whose
/// certificate is written to `ca_file` for the client to trust.
fn serve_tls(replies: Vec<Reply>, ca_file: &std::path::Path) -> (String, mpsc::Receiver<Seen>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(ca_file, ca.pem()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/v1", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for reply in replies {
            let (stream, _) = listener.accept().unwrap();
            let tls = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let seen = answer(rustls::StreamOwned::new(tls, stream), &reply);
            tx.send(seen).unwrap();
        }
    });
    (url, rx)
}

fn answer(stream: impl Read + Write, reply: &Reply) -> Seen {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let body = serde_json::from_slice(&body).unwrap();
    let stream = reader.get_mut();
    let mut client_closed = false;
    if reply.status.starts_with("200") {
        write!(
            stream,
            "HTTP/1.1 {}\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n",
            reply.status
        )
        .unwrap();
        for event in &reply.events {
            let frame = format!("{:x}\r\n{event}\r\n", event.len());
            if stream
                .write_all(frame.as_bytes())
                .and_then(|()| stream.flush())
                .is_err()
            {
                client_closed = true;
                break;
            }
            thread::sleep(reply.pause);
        }
        let _ = stream.write_all(b"0\r\n\r\n");
    } else {
        let body =
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#;
        write!(
            stream,
            "HTTP/1.1 {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            reply.status,
            body.len()
        )
        .unwrap();
    }
    Seen {
        head,
        body,
        client_closed,
    }
}

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"qwen\",\"system_fingerprint\":\"fp_1\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n"
    )
}

fn content(text: &str) -> String {
    chunk(
        &format!("{{\"content\":{}}}", serde_json::json!(text)),
        "null",
    )
}

fn completion(pieces: &[&str], finish: &str) -> Vec<String> {
    let mut events = vec![chunk(r#"{"role":"assistant","content":""}"#, "null")];
    events.extend(pieces.iter().map(|p| content(p)));
    events.push(chunk("{}", &format!("\"{finish}\"")));
    events.push(
        "data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"qwen\",\"choices\":[],\"usage\":{\"prompt_tokens\":41,\"completion_tokens\":3,\"total_tokens\":44,\"prompt_tokens_details\":{\"cached_tokens\":32}}}\n\n".into(),
    );
    events.push("data: [DONE]\n\n".into());
    events
}

fn ok(events: Vec<String>) -> Reply {
    Reply {
        status: "200 OK",
        events,
        pause: Duration::ZERO,
    }
}

#[test]
fn streams_a_reply_and_keeps_the_conversation() {
    let (url, seen) = serve(vec![
        ok(completion(&["We open", " at nine", "."], "stop")),
        ok(completion(&["Yes", "."], "length")),
    ]);
    let mut config = OpenAiConfig::new(url, "qwen");
    config.api_key = Some("sk-test".into());
    let llm = OpenAi::new(config).unwrap();
    let prefix = llm.prefix("You are a receptionist.").unwrap();
    let mut s = llm.session(Some(&prefix)).unwrap();
    s.push(ChatMessage::user("When do you open?"));
    let mut pieces = Vec::new();
    let g = s
        .generate(&GenerateOptions::default(), &CancelToken::new(), &mut |t| {
            pieces.push(t.to_owned());
            Flow::Continue
        })
        .unwrap();
    assert_eq!(pieces, ["We open", " at nine", "."]);
    assert_eq!(g.text, "We open at nine.");
    assert_eq!(g.stop, StopReason::EndOfTurn);
    assert_eq!(
        (g.generated_tokens, g.prefilled_tokens, g.cached_tokens),
        (3, 9, 32)
    );
    assert!(g.first_token.is_some());

    let req = seen.recv().unwrap();
    assert!(
        req.head
            .starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{}",
        req.head
    );
    assert!(
        req.head.contains("Authorization: Bearer sk-test\r\n"),
        "{}",
        req.head
    );
    assert_eq!(req.body["model"], "qwen");
    assert_eq!(req.body["stream"], true);
    assert_eq!(req.body["temperature"], 0.0);
    assert_eq!(
        req.body["messages"],
        serde_json::json!([
            {"role": "system", "content": "You are a receptionist."},
            {"role": "user", "content": "When do you open?"}
        ])
    );

    // The next turn carries the whole history, the reply included.
    s.push(ChatMessage::user("Saturdays too?"));
    let options = GenerateOptions {
        max_tokens: 2,
        ..GenerateOptions::default()
    };
    let g = s
        .generate(&options, &CancelToken::new(), &mut |_| Flow::Continue)
        .unwrap();
    assert_eq!((g.text.as_str(), g.stop), ("Yes.", StopReason::MaxTokens));
    let req = seen.recv().unwrap();
    assert_eq!(req.body["max_tokens"], 2);
    let roles: Vec<&str> = req.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(req.body["messages"][2]["content"], "We open at nine.");
    assert_eq!(s.history().len(), 5);
    assert_eq!(s.history()[4].role, Role::Assistant);
}

#[test]
fn cancelling_closes_the_stream_and_leaves_the_session_usable() {
    let slow: Vec<&str> = vec!["word "; 200];
    let mut events = completion(&slow, "stop");
    events.truncate(events.len() - 3); // never finishes on its own
    let (url, seen) = serve(vec![
        Reply {
            status: "200 OK",
            events,
            pause: Duration::from_millis(10),
        },
        ok(completion(&["Sure."], "stop")),
    ]);
    let llm = OpenAi::new(OpenAiConfig::new(url, "qwen")).unwrap();
    let mut s = llm.session(None).unwrap();
    s.push(ChatMessage::user("Tell me a long story."));
    let cancel = CancelToken::new();
    let mut n = 0;
    let g = s
        .generate(&GenerateOptions::default(), &cancel, &mut |_| {
            n += 1;
            if n == 3 {
                cancel.cancel(); // barge-in
            }
            Flow::Continue
        })
        .unwrap();
    assert_eq!(g.stop, StopReason::Cancelled);
    assert_eq!(g.text, "word word word ");
    let first = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(first.client_closed, "the server kept streaming to nobody");

    s.truncate_reply("word word");
    s.push(ChatMessage::user("Never mind."));
    let g = s
        .generate(
            &GenerateOptions::default(),
            &CancelToken::new(),
            &mut |_| Flow::Continue,
        )
        .unwrap();
    assert_eq!(g.text, "Sure.");
    let second = seen.recv().unwrap();
    assert_eq!(second.body["messages"][1]["content"], "word word");
}

/// An https:// endpoint with the site's own CA: the conversation goes over TLS, and a server
/// whose certificate another CA signed is refused before anything is sent.
#[test]
fn https_endpoints_are_checked_against_the_sites_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("site-ca.pem");
    let (url, seen) = serve_tls(vec![ok(completion(&["Over", " TLS."], "stop"))], &ca);
    let mut config = OpenAiConfig::new(url, "qwen");
    config.roots = Roots::CaFile(ca);
    let llm = OpenAi::new(config).unwrap();
    let mut s = llm.session(None).unwrap();
    s.push(ChatMessage::user("Hi"));
    let g = s
        .generate(
            &GenerateOptions::default(),
            &CancelToken::new(),
            &mut |_| Flow::Continue,
        )
        .unwrap();
    assert_eq!(g.text, "Over TLS.");
    assert_eq!(seen.recv().unwrap().body["messages"][0]["content"], "Hi");

    // The same kind of server, its certificate from a CA the client was not given.
    let other = dir.path().join("other-ca.pem");
    let (url, _seen) = serve_tls(vec![ok(Vec::new())], &other);
    let mut config = OpenAiConfig::new(url, "qwen");
    config.roots = Roots::CaFile(dir.path().join("site-ca.pem"));
    let mut s = OpenAi::new(config).unwrap().session(None).unwrap();
    s.push(ChatMessage::user("Hi"));
    let e = s
        .generate(
            &GenerateOptions::default(),
            &CancelToken::new(),
            &mut |_| Flow::Continue,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");

    let mut config = OpenAiConfig::new("https://127.0.0.1:1/v1", "qwen");
    config.roots = Roots::CaFile(dir.path().join("missing.pem"));
    assert!(matches!(OpenAi::new(config), Err(Error::Roots { .. })));
}

#[test]
fn errors_name_the_endpoint_and_the_reason() {
    let (url, _seen) = serve(vec![Reply {
        status: "401 Unauthorized",
        events: Vec::new(),
        pause: Duration::ZERO,
    }]);
    let llm = OpenAi::new(OpenAiConfig::new(url.clone(), "qwen")).unwrap();
    let mut s = llm.session(None).unwrap();
    s.push(ChatMessage::user("Hi"));
    let e = s
        .generate(
            &GenerateOptions::default(),
            &CancelToken::new(),
            &mut |_| Flow::Continue,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Status { status: 401, .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains(&url) && e.contains("Incorrect API key provided"),
        "{e}"
    );

    // Nothing listens here any more.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let llm = OpenAi::new(OpenAiConfig::new(format!("http://{addr}/v1"), "qwen")).unwrap();
    let mut s = llm.session(None).unwrap();
    s.push(ChatMessage::user("Hi"));
    let e = s
        .generate(
            &GenerateOptions::default(),
            &CancelToken::new(),
            &mut |_| Flow::Continue,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e}");
}
