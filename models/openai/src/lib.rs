//! The language model on a remote OpenAI-compatible endpoint (`POST {url}/chat/completions` with
//! `"stream": true`: vLLM, llama.cpp's server, …), behind [`models_api::Llm`].
//!
//! The alternative to the local `models-llama` where a GPU server on the LAN does the inference.
//! What differs from the local engine:
//! - The agent prefix is only the system message: nothing is prefilled here. Servers with prefix
//!   caching (vLLM's automatic prefix caching) reuse it across calls on their side.
//! - [`LlmSession::prefill`] does nothing and returns 0.
//! - Cancellation is checked between streamed events; cancelling drops the response, which
//!   closes the connection, which is how these servers learn to stop generating.
//! - Stop strings are sent to the server (`stop`), which applies them.
//! - [`Constraint::JsonObject`] is `response_format: json_object`; GBNF grammars are not part of
//!   the API and are refused.
//!
//! Threading: [`OpenAi`] is `Send + Sync`; calls block (run them on a blocking thread).
//!
//! ```no_run
//! use models_api::{CancelToken, ChatMessage, Flow, GenerateOptions, Llm, LlmSession};
//! let llm = models_openai::OpenAi::new(models_openai::OpenAiConfig::new(
//!     "https://llm.example.internal/v1",
//!     "Qwen/Qwen2.5-7B-Instruct",
//! ))?;
//! let prefix = llm.prefix("You are a receptionist.")?;
//! let mut s = llm.session(Some(&prefix))?;
//! s.push(ChatMessage::user("When are you open?"));
//! let g = s.generate(&GenerateOptions::default(), &CancelToken::new(), &mut |t| {
//!     print!("{t}");
//!     Flow::Continue
//! })?;
//! # Ok::<(), models_openai::Error>(())
//! ```

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use models_api::{
    CancelToken, ChatMessage, Constraint, Flow, GenerateOptions, Generation, Llm, LlmSession,
    Sampling, StopReason,
};
use serde_json::{json, Value};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API key file could not be read.
    #[error("openai: cannot read the API key file {path}: {source}")]
    ApiKeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No HTTP exchange: connection refused, DNS, timeout.
    #[error("openai: {url}: {reason}")]
    Transport {
        /// The endpoint.
        url: String,
        /// ureq's description.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("openai: {url} answered {status}: {body}")]
    Status {
        /// The endpoint.
        url: String,
        /// HTTP status.
        status: u16,
        /// The start of the response body (the server's explanation).
        body: String,
    },
    /// Reading the event stream failed.
    #[error("openai: reading the stream from {url}: {source}")]
    Read {
        /// The endpoint.
        url: String,
        /// Why.
        source: std::io::Error,
    },
    /// An event that is not a chat completion chunk.
    #[error("openai: malformed event from {url}: {reason}: {event:?}")]
    BadEvent {
        /// The endpoint.
        url: String,
        /// The event's data, cut to 200 bytes.
        event: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server reported an error inside the stream.
    #[error("openai: the server reported: {message}")]
    Server {
        /// Its message.
        message: String,
    },
    /// The CAs to check an `https://` server against could not be loaded.
    #[error("openai: certificate authorities {source_name}: {reason}")]
    Roots {
        /// The CA file, or "of the system".
        source_name: String,
        /// Why.
        reason: String,
    },
    /// An option the OpenAI chat API cannot express.
    #[error("openai: {0} is not supported by the chat completions API")]
    Unsupported(&'static str),
}

/// Where the endpoint is and how to talk to it.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenAiConfig {
    /// Base URL up to and including `/v1`, e.g. `http://10.0.0.5:8000/v1`.
    pub url: String,
    /// The served model name.
    pub model: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<String>,
    /// Connecting to the server.
    pub connect_timeout: Duration,
    /// Longest silence between two streamed events.
    pub read_timeout: Duration,
    /// What an `https://` server's certificate is checked against.
    pub roots: Roots,
}

/// The certificate authorities an `https://` endpoint is checked against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Roots {
    /// The system's store (`/etc/ssl/certs`).
    #[default]
    System,
    /// The site's own CA, in a PEM file.
    CaFile(PathBuf),
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("OpenAiConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "…"))
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl OpenAiConfig {
    /// No key, 5 s to connect, 30 s between events.
    pub fn new(url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            url: url.into(),
            model: model.into(),
            api_key: None,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            roots: Roots::System,
        }
    }

    /// Reads the API key from `path` (surrounding whitespace trimmed), so it stays out of the
    /// configuration file.
    pub fn with_api_key_file(mut self, path: &Path) -> Result<Self, Error> {
        let key = std::fs::read_to_string(path).map_err(|source| Error::ApiKeyFile {
            path: path.to_owned(),
            source,
        })?;
        self.api_key = Some(key.trim().to_owned());
        Ok(self)
    }

    fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.url.trim_end_matches('/'))
    }
}

/// A remote model. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OpenAi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: OpenAiConfig,
    agent: ureq::Agent,
}

/// An agent's system prompt; the server caches it, if it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    system: String,
}

/// One conversation: its history, sent whole with each request.
#[derive(Debug)]
pub struct OpenAiSession {
    inner: Arc<Inner>,
    history: Vec<ChatMessage>,
}

impl OpenAi {
    /// A client for `config`'s endpoint. Nothing is contacted until the first generation; the
    /// CAs are loaded now, so a bad CA file fails here.
    pub fn new(config: OpenAiConfig) -> Result<Self, Error> {
        let mut agent = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            .timeout_read(config.read_timeout);
        // CAs only matter to an https:// endpoint; a box without a system store may still talk
        // to a server on its own loopback.
        if config.url.starts_with("https://") {
            agent = agent.tls_config(Arc::new(tls_config(&config.roots)?));
        }
        let agent = agent.build();
        Ok(OpenAi {
            inner: Arc::new(Inner { config, agent }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiConfig {
        &self.inner.config
    }
}

/// rustls for `https://` endpoints, checking the server against `roots`.
fn tls_config(roots: &Roots) -> Result<rustls::ClientConfig, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut store = rustls::RootCertStore::empty();
    let (name, certificates) = match roots {
        Roots::CaFile(path) => {
            let fail = |reason: String| Error::Roots {
                source_name: path.display().to_string(),
                reason,
            };
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|e| fail(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(e.to_string()))?;
            (path.display().to_string(), certificates)
        }
        Roots::System => (
            "of the system".to_owned(),
            rustls_native_certs::load_native_certs().certs,
        ),
    };
    let (added, _) = store.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(Error::Roots {
            source_name: name,
            reason: "no usable certificate".into(),
        });
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Roots {
        source_name: name,
        reason: e.to_string(),
    })?
    .with_root_certificates(store)
    .with_no_client_auth())
}

impl Llm for OpenAi {
    type Error = Error;
    type Prefix = Prefix;
    type Session = OpenAiSession;

    fn prefix(&self, system_prompt: &str) -> Result<Prefix, Error> {
        Ok(Prefix {
            system: system_prompt.to_owned(),
        })
    }

    fn session(&self, prefix: Option<&Prefix>) -> Result<OpenAiSession, Error> {
        Ok(OpenAiSession {
            inner: Arc::clone(&self.inner),
            history: prefix
                .map(|p| vec![ChatMessage::system(p.system.clone())])
                .unwrap_or_default(),
        })
    }
}

impl LlmSession for OpenAiSession {
    type Error = Error;

    fn history(&self) -> &[ChatMessage] {
        &self.history
    }

    fn push(&mut self, message: ChatMessage) {
        self.history.push(message);
    }

    fn pop(&mut self) -> Option<ChatMessage> {
        self.history.pop()
    }

    fn truncate_reply(&mut self, heard: &str) -> bool {
        models_api::truncate_last_reply(&mut self.history, heard)
    }

    fn prefill(&mut self, _cancel: &CancelToken) -> Result<u32, Error> {
        Ok(0)
    }

    fn generate(
        &mut self,
        options: &GenerateOptions,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<Generation, Error> {
        let started = Instant::now();
        let body = request_body(&self.inner.config, &self.history, options)?;
        let url = self.inner.config.endpoint();
        let mut request = self
            .inner
            .agent
            .post(&url)
            .set("Content-Type", "application/json")
            .set("Accept", "text/event-stream");
        if let Some(key) = &self.inner.config.api_key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        let response = match request.send_string(&body.to_string()) {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let mut body = r.into_string().unwrap_or_default();
                body.truncate(floor_char_boundary(&body, 500));
                return Err(Error::Status { url, status, body });
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(Error::Transport {
                    url,
                    reason: t.to_string(),
                })
            }
        };
        let mut stream = Events::new(BufReader::new(response.into_reader()));
        let mut reply = String::new();
        let mut g = Generation {
            text: String::new(),
            stop: StopReason::EndOfTurn,
            generated_tokens: 0,
            prefilled_tokens: 0,
            cached_tokens: 0,
            prefill: Duration::ZERO,
            first_token: None,
            elapsed: Duration::ZERO,
        };
        let mut pieces = 0u32;
        let mut usage_tokens = None;
        let stop = loop {
            if cancel.is_cancelled() {
                break StopReason::Cancelled;
            }
            let Some(data) = stream.next_data().map_err(|source| Error::Read {
                url: url.clone(),
                source,
            })?
            else {
                // The stream ended without [DONE]: the server went away mid-reply.
                return Err(Error::Read {
                    url,
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                });
            };
            if data == "[DONE]" {
                break g.stop;
            }
            let chunk = parse_chunk(&data).map_err(|reason| Error::BadEvent {
                url: url.clone(),
                event: data.chars().take(200).collect(),
                reason,
            })?;
            if let Some(message) = chunk.error {
                return Err(Error::Server { message });
            }
            if let Some((prompt, completion, cached)) = chunk.usage {
                g.prefilled_tokens = prompt.saturating_sub(cached);
                g.cached_tokens = cached;
                usage_tokens = Some(completion);
            }
            if let Some(reason) = chunk.finish_reason {
                g.stop = reason;
            }
            if let Some(text) = chunk.content.filter(|t| !t.is_empty()) {
                pieces += 1;
                if g.first_token.is_none() {
                    // The server's prefill is most of the time to the first token.
                    let first = started.elapsed();
                    g.first_token = Some(first);
                    g.prefill = first;
                }
                reply.push_str(&text);
                if on_text(&text) == Flow::Stop {
                    break StopReason::Callback;
                }
            }
        };
        // Dropping the stream here closes the connection: the server stops generating.
        drop(stream);
        g.stop = stop;
        g.generated_tokens = usage_tokens.unwrap_or(pieces);
        g.text = reply.clone();
        g.elapsed = started.elapsed();
        self.history.push(ChatMessage::assistant(reply));
        Ok(g)
    }
}

/// The JSON request for `history`.
fn request_body(
    config: &OpenAiConfig,
    history: &[ChatMessage],
    options: &GenerateOptions,
) -> Result<Value, Error> {
    let messages: Vec<Value> = history
        .iter()
        .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
        .collect();
    let mut body = json!({
        "model": config.model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
        "max_tokens": options.max_tokens,
    });
    match options.sampling {
        Sampling::Greedy => body["temperature"] = json!(0.0),
        Sampling::Seeded {
            seed,
            temperature,
            top_p,
            // top_k is not in the OpenAI API; strict servers reject unknown fields.
            top_k: _,
        } => {
            body["seed"] = json!(seed);
            body["temperature"] = json!(temperature);
            body["top_p"] = json!(top_p);
        }
    }
    if !options.stop.is_empty() {
        body["stop"] = json!(options.stop);
    }
    match &options.constraint {
        Constraint::None => {}
        Constraint::JsonObject => body["response_format"] = json!({ "type": "json_object" }),
        Constraint::Gbnf { .. } => return Err(Error::Unsupported("a GBNF grammar")),
    }
    Ok(body)
}

/// What one `chat.completion.chunk` carries for us.
#[derive(Debug, Default, PartialEq)]
struct Chunk {
    content: Option<String>,
    finish_reason: Option<StopReason>,
    /// prompt, completion and cached prompt tokens.
    usage: Option<(u32, u32, u32)>,
    error: Option<String>,
}

fn parse_chunk(data: &str) -> Result<Chunk, String> {
    let v: Value = serde_json::from_str(data).map_err(|e| format!("not JSON ({e})"))?;
    if let Some(e) = v.get("error") {
        let message = e
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| e.to_string(), str::to_owned);
        return Ok(Chunk {
            error: Some(message),
            ..Chunk::default()
        });
    }
    let choices = v
        .get("choices")
        .and_then(Value::as_array)
        .ok_or("no choices array")?;
    let mut chunk = Chunk::default();
    if let Some(choice) = choices.first() {
        chunk.content = choice
            .pointer("/delta/content")
            .and_then(Value::as_str)
            .map(str::to_owned);
        chunk.finish_reason = match choice.get("finish_reason").and_then(Value::as_str) {
            None => None,
            Some("stop") => Some(StopReason::EndOfTurn),
            Some("length") => Some(StopReason::MaxTokens),
            // content_filter, tool_calls, …: the turn is over either way.
            Some(_) => Some(StopReason::EndOfTurn),
        };
    }
    if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
        let n = |p: &str| {
            u.pointer(p)
                .and_then(Value::as_u64)
                .map_or(0, |x| u32::try_from(x).unwrap_or(u32::MAX))
        };
        chunk.usage = Some((
            n("/prompt_tokens"),
            n("/completion_tokens"),
            n("/prompt_tokens_details/cached_tokens"),
        ));
    }
    Ok(chunk)
}

/// Server-sent events (WHATWG HTML §9.2): `data:` lines joined by `\n` until a blank line;
/// comments (`:` lines) and other fields ignored.
struct Events<R> {
    reader: R,
    line: String,
}

impl<R: BufRead> Events<R> {
    fn new(reader: R) -> Self {
        Events {
            reader,
            line: String::new(),
        }
    }

    /// The next event's data; `None` at the end of the stream.
    fn next_data(&mut self) -> std::io::Result<Option<String>> {
        let mut data: Option<String> = None;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                return Ok(data);
            }
            let line = self.line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if data.is_some() {
                    return Ok(data);
                }
                continue;
            }
            if let Some(value) = line.strip_prefix("data:") {
                // One leading space is part of the field separator.
                let value = value.strip_prefix(' ').unwrap_or(value);
                match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(value.to_owned()),
                }
            }
        }
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    (0..=max.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_join_data_lines_and_skip_comments() {
        let text = ": keep-alive\n\ndata: {\"a\":\ndata:1}\n\nevent: x\ndata: [DONE]\r\n\r\n";
        let mut e = Events::new(text.as_bytes());
        assert_eq!(e.next_data().unwrap().as_deref(), Some("{\"a\":\n1}"));
        assert_eq!(e.next_data().unwrap().as_deref(), Some("[DONE]"));
        assert_eq!(e.next_data().unwrap(), None);
    }

    #[test]
    fn chunks_map_finish_reasons_and_usage() {
        let c = parse_chunk(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#)
            .unwrap();
        assert_eq!(c.finish_reason, Some(StopReason::MaxTokens));
        let c = parse_chunk(
            r#"{"choices":[],"usage":{"prompt_tokens":50,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":32}}}"#,
        )
        .unwrap();
        assert_eq!(c.usage, Some((50, 7, 32)));
        assert!(parse_chunk(r#"{"object":"x"}"#).is_err());
        assert!(parse_chunk("nope").is_err());
    }

    #[test]
    fn requests_say_greedy_json_and_refuse_grammars() {
        let config = OpenAiConfig::new("http://h/v1/", "m");
        assert_eq!(config.endpoint(), "http://h/v1/chat/completions");
        let history = [ChatMessage::system("s"), ChatMessage::user("u")];
        let options = GenerateOptions {
            constraint: Constraint::JsonObject,
            stop: vec!["\n\n".into()],
            ..GenerateOptions::default()
        };
        let b = request_body(&config, &history, &options).unwrap();
        assert_eq!(b["temperature"], 0.0);
        assert_eq!(b["response_format"]["type"], "json_object");
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["stop"][0], "\n\n");
        let options = GenerateOptions {
            constraint: Constraint::Gbnf {
                grammar: "root ::= \"x\"".into(),
                root: "root".into(),
            },
            ..GenerateOptions::default()
        };
        assert!(matches!(
            request_body(&config, &history, &options),
            Err(Error::Unsupported(_))
        ));
    }
}
