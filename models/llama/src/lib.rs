//! The language model on llama.cpp (through `llama-cpp-2`, linked as shared libraries), behind
//! [`models_api::Llm`].
//!
//! - Prompts are rendered with the GGUF's own chat template (llama.cpp's
//!   `llama_chat_apply_template`), never a hand-written one.
//! - Each [`LlamaSession`] owns a llama.cpp context whose KV cache mirrors exactly the tokens it has
//!   decoded ([`LlamaSession::cached_tokens`]). Before a turn, the rendered history is compared with
//!   the cache and only the tokens after the first difference are decoded; so a turn costs its
//!   new tokens, and an edited history (barge-in truncation, a partial transcript replaced) costs
//!   only what follows the edit.
//! - An agent's system prompt is prefilled once into an [`AgentPrefix`] (a llama.cpp sequence
//!   state snapshot) and copied into every new session of that agent.
//! - Generation streams text through a callback, and stops on end-of-turn, `max_tokens`, a stop
//!   string, [`Flow::Stop`] or cancellation; whatever was produced becomes the assistant message,
//!   and the cache keeps only what was decoded, so the session stays usable.
//! - [`Constraint`]s become a GBNF grammar sampler (JSON extraction).
//!
//! Threading: [`Llama`] is `Send + Sync` (share it in an `Arc`); a [`LlamaSession`] is `Send`, driven
//! by one thread at a time (`&mut self`). Every call blocks for its decode: run sessions on
//! dedicated threads, never on an async runtime's workers. Cancellation is checked before each
//! prefill batch and each generated token. On the CPU, sessions decode one step at a time (a
//! token or a prefill batch), taking turns with each other and with whisper
//! ([`models_api::compute`]).
//!
//! Linking: llama.cpp and its ggml are shared libraries next to the binary (whisper.cpp brings
//! its own, older ggml statically); see `models/README.md`.
//!
//! ```no_run
//! use models_api::{ChatMessage, CancelToken, Flow, GenerateOptions, Llm, LlmSession};
//! use models_llama::{Llama, LlamaConfig};
//! let llm = Llama::load(&LlamaConfig::new("qwen2.5-coder-0.5b-instruct-q4_0.gguf"))?;
//! let prefix = llm.prefix("You are the receptionist of Acme Dental.")?;  // once per agent
//! let mut call = llm.session(Some(&prefix))?;                           // once per call
//! call.push(ChatMessage::user("When are you open?"));
//! let reply = call.generate(&GenerateOptions::default(), &CancelToken::new(), &mut |t| {
//!     print!("{t}");
//!     Flow::Continue
//! })?;
//! # Ok::<(), models_llama::Error>(())
//! ```

mod error;
mod session;
mod text;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::session::LlamaStateSeqFlags;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use models_api::{ChatMessage, Llm};

pub use error::Error;
pub use models_api::{Constraint, Flow, GenerateOptions, Generation, Sampling, StopReason};
pub use session::LlamaSession;

/// A GBNF grammar for one JSON object with bounded whitespace (unbounded whitespace lets a small
/// model loop on newlines).
pub const JSON_OBJECT_GBNF: &str = r#"root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null")
object ::= "{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}"
array  ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) )* "\""
number ::= "-"? ([0-9] | [1-9] [0-9]{0,15}) ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?
ws     ::= [ \t\n]{0,8}
"#;

/// How to load the model and size its contexts.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// The GGUF file.
    pub model: PathBuf,
    /// Context window per session, in tokens (KV memory grows linearly with it: Qwen2.5-0.5B
    /// takes 12 KiB per token).
    pub n_ctx: u32,
    /// Tokens decoded per batch during prefill.
    pub n_batch: u32,
    /// CPU threads for decoding one token at a time (generation).
    pub threads: u32,
    /// CPU threads for multi-token batches (prefill): generation may leave a core to another
    /// engine, while a prompt's prefill is on the critical path with nothing else running.
    pub batch_threads: u32,
    /// Layers offloaded to the GPU (with the `cuda` feature); 0 = CPU only.
    pub gpu_layers: u32,
}

impl LlamaConfig {
    /// Defaults for `model`: 4096-token sessions, 512-token batches, threads = cores for both
    /// generation and prefill, and all layers on the GPU when built with `cuda`.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
        LlamaConfig {
            model: model.into(),
            n_ctx: 4096,
            n_batch: 512,
            threads: cores,
            batch_threads: cores,
            gpu_layers: if cfg!(feature = "cuda") { 999 } else { 0 },
        }
    }
}

/// A loaded GGUF model with its chat template. See the crate docs for the threading contract.
pub struct Llama {
    model: Arc<LlamaModel>,
    template: LlamaChatTemplate,
    config: LlamaConfig,
    /// llama.cpp's context constructor mutates the model in some cases, so contexts are
    /// created one at a time (see llama-cpp-2's `new_context`).
    new_context: Mutex<()>,
}

impl std::fmt::Debug for Llama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llama")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An agent's system prompt, prefilled once and copied into each new [`LlamaSession`].
#[derive(Clone)]
pub struct AgentPrefix {
    system: String,
    tokens: Vec<LlamaToken>,
    state: llama_cpp_2::context::session::SeqState,
}

impl std::fmt::Debug for AgentPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentPrefix")
            .field("tokens", &self.tokens.len())
            .field("state_bytes", &self.state.byte_len())
            .finish()
    }
}

impl AgentPrefix {
    /// Prompt tokens held in the snapshot.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }
}

pub(crate) fn render_with(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    history: &[ChatMessage],
    add_assistant: bool,
) -> Result<String, Error> {
    let chat = history
        .iter()
        .map(|m| {
            // NUL cannot cross into C; it has no business in a chat message anyway.
            LlamaChatMessage::new(m.role.as_str().to_owned(), m.content.replace('\0', ""))
                .map_err(|e| Error::Template(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    model
        .apply_chat_template(template, &chat, add_assistant)
        .map_err(|e| Error::Template(e.to_string()))
}

fn backend() -> Result<&'static LlamaBackend, Error> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // Route llama.cpp's logs to `tracing` instead of stderr.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Backend(e.clone()))
}

/// GGUF files start with these four bytes.
const GGUF_MAGIC: &[u8; 4] = b"GGUF";

impl Llama {
    /// Loads the GGUF and its chat template. The file is checked first so a wrong or truncated
    /// file is reported by name.
    pub fn load(config: &LlamaConfig) -> Result<Self, Error> {
        use std::io::Read;
        let path = &config.model;
        let mut magic = [0u8; 4];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .map_err(|source| Error::ModelUnreadable {
                path: path.clone(),
                source,
            })?;
        if &magic != GGUF_MAGIC {
            return Err(Error::ModelCorrupt {
                path: path.clone(),
                reason: format!("magic {magic:02x?}, expected \"GGUF\""),
            });
        }
        let backend = backend()?;
        let params = LlamaModelParams::default().with_n_gpu_layers(config.gpu_layers);
        let model = LlamaModel::load_from_file(backend, path, &params).map_err(|e| {
            Error::ModelCorrupt {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        let template = model
            .chat_template(None)
            .map_err(|e| Error::NoChatTemplate {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(Llama {
            model: Arc::new(model),
            template,
            config: config.clone(),
            new_context: Mutex::new(()),
        })
    }

    /// The configuration it was loaded with.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Number of tokens `text` encodes to (no special tokens added), for prompt budgeting.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .len()
    }

    /// Renders `history` with the model's chat template; `add_assistant` leaves the prompt open
    /// for the assistant's reply.
    pub fn render(&self, history: &[ChatMessage], add_assistant: bool) -> Result<String, Error> {
        render_with(&self.model, &self.template, history, add_assistant)
    }

    /// Tokenizes a rendered prompt the way llama.cpp's server does: the vocabulary's BOS if it
    /// wants one, and special tokens (`<|im_start|>`) parsed as such.
    fn tokenize_prompt(&self, prompt: &str) -> Vec<LlamaToken> {
        self.model.vocab().tokenize(prompt.as_bytes(), true, true)
    }

    fn new_context(&self) -> Result<LlamaContext<'static>, Error> {
        let n_ctx = NonZeroU32::new(self.config.n_ctx).ok_or(Error::Config("n_ctx must be > 0"))?;
        let threads = i32::try_from(self.config.threads.max(1)).unwrap_or(1);
        let batch_threads = i32::try_from(self.config.batch_threads.max(1)).unwrap_or(1);
        let params = LlamaContextParams::default()
            .with_n_ctx(Some(n_ctx))
            .with_n_batch(self.config.n_batch.max(1))
            .with_n_ubatch(self.config.n_batch.max(1))
            .with_n_seq_max(1)
            .with_n_threads(threads)
            .with_n_threads_batch(batch_threads);
        let _one_at_a_time = self
            .new_context
            .lock()
            .map_err(|_| Error::Backend("context lock poisoned".into()))?;
        let context = self
            .model
            .new_context(backend()?, params)
            .map_err(|e| Error::Context(e.to_string()))?;
        // SAFETY: the context borrows the model. Every holder of this 'static context (a
        // `LlamaSession`, or `prefix` below) also holds an `Arc` of the model, declared after the
        // context field so it is dropped after it: the model outlives the context.
        #[allow(unsafe_code)]
        let context =
            unsafe { std::mem::transmute::<LlamaContext<'_>, LlamaContext<'static>>(context) };
        Ok(context)
    }
}

impl Llm for Llama {
    type Error = Error;
    type Prefix = AgentPrefix;
    type Session = LlamaSession;

    fn prefix(&self, system_prompt: &str) -> Result<AgentPrefix, Error> {
        let system = vec![ChatMessage::system(system_prompt)];
        let tokens = self.tokenize_prompt(&self.render(&system, false)?);
        let mut session = LlamaSession::new(self, None)?;
        session.decode_tokens(&tokens, &models_api::CancelToken::new())?;
        let state = session
            .context()
            .state_seq_get(session::SEQ, LlamaStateSeqFlags::empty())
            .map_err(|e| Error::State(e.to_string()))?;
        Ok(AgentPrefix {
            system: system_prompt.to_owned(),
            tokens,
            state,
        })
    }

    fn session(&self, prefix: Option<&AgentPrefix>) -> Result<LlamaSession, Error> {
        LlamaSession::new(self, prefix)
    }
}
