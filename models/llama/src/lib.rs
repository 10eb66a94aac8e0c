//! The language model on llama.cpp (through `llama-cpp-2`, linked as shared libraries), behind
//! [`models_api::Llm`].
//!
//! - Prompts are rendered with the GGUF's own chat template (llama.cpp's
//!   `llama_chat_apply_template`), never a hand-written one.
//! - Each [`LlamaSession`] owns a sequence of a llama.cpp context shared with other sessions
//!   (`group.rs`), whose KV cache mirrors exactly the tokens it has decoded
//!   ([`LlamaSession::cached_tokens`]). Sessions decoding at the same time share each step: the
//!   next tokens of several replies, and a new prompt in chunks, go through the model in one
//!   batch, which costs far less than a step each. Before a turn, the rendered history is
//!   compared with the cache and only the tokens after the first difference are decoded; so a
//!   turn costs its new tokens, and an edited history (barge-in truncation, a partial transcript
//!   replaced) costs only what follows the edit.
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
//! prefill batch and each generated token. On the CPU, each step (every session's next tokens at
//! once) takes its turn with whisper and Piper ([`models_api::compute`]).
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
mod group;
mod session;
mod text;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use models_api::{ChatMessage, Llm};

pub use error::Error;
pub use models_api::{Constraint, Flow, GenerateOptions, Generation, Sampling, StopReason};
pub use session::LlamaSession;

use group::{Counters, Group};
use session::LlamaShared;

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
    /// Sessions that share one context and are decoded together, each with up to `n_ctx` tokens
    /// of KV cache. The first context's whole cache is allocated with the first session and kept;
    /// more sessions than this open another context, freed when its last session ends.
    pub sequences: u32,
}

impl LlamaConfig {
    /// Defaults for `model`: 4096-token sessions, 512-token batches, threads = cores for both
    /// generation and prefill, and all layers on the GPU when built with `cuda`; 4 sessions per
    /// context on the CPU, 32 on the GPU.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
        LlamaConfig {
            model: model.into(),
            n_ctx: 4096,
            n_batch: 512,
            threads: cores,
            batch_threads: cores,
            gpu_layers: if cfg!(feature = "cuda") { 999 } else { 0 },
            sequences: if cfg!(feature = "cuda") { 32 } else { 4 },
        }
    }
}

/// A model's contexts: the first, kept for the model's life (creating a context with its whole
/// KV cache takes 150 ms with 8 sequences on 2 cores, and the first call needs it anyway), and
/// those opened when it was full, each freed when its last session ends.
#[derive(Default)]
struct Groups {
    first: Option<Arc<Group>>,
    overflow: Vec<Weak<Group>>,
}

/// Decode steps run by a [`Llama`]'s contexts, and the tokens they carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Batches decoded.
    pub steps: u64,
    /// Tokens decoded (prompt and generated).
    pub tokens: u64,
    /// Tokens of steps that carried more than one session's work.
    pub shared_tokens: u64,
}

/// A loaded GGUF model with its chat template. See the crate docs for the threading contract.
pub struct Llama {
    model: Arc<LlamaModel>,
    config: LlamaConfig,
    shared: Arc<LlamaShared>,
    /// The contexts sessions live in. The lock also keeps contexts to one creation at a time:
    /// llama.cpp's context constructor mutates the model in some cases (see llama-cpp-2's
    /// `new_context`).
    groups: Mutex<Groups>,
    counters: Arc<Counters>,
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
            shared: Arc::new(LlamaShared {
                template,
                n_ctx: config.n_ctx,
                n_batch: config.n_batch.max(1),
            }),
            config: config.clone(),
            groups: Mutex::new(Groups::default()),
            counters: Arc::default(),
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
        render_with(&self.model, &self.shared.template, history, add_assistant)
    }

    /// Tokenizes a rendered prompt the way llama.cpp's server does: the vocabulary's BOS if it
    /// wants one, and special tokens (`<|im_start|>`) parsed as such.
    fn tokenize_prompt(&self, prompt: &str) -> Vec<LlamaToken> {
        self.model.vocab().tokenize(prompt.as_bytes(), true, true)
    }

    /// What every context of this model has decoded so far.
    pub fn decoded(&self) -> Decoded {
        let c = &self.counters;
        Decoded {
            steps: c.steps.load(Ordering::Relaxed),
            tokens: c.tokens.load(Ordering::Relaxed),
            shared_tokens: c.shared_tokens.load(Ordering::Relaxed),
        }
    }

    /// A free sequence in a context with room, or in a new context.
    fn place(&self) -> Result<(Arc<Group>, i32), Error> {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        groups.overflow.retain(|g| g.strong_count() > 0);
        let open = groups.first.iter().cloned();
        for group in open.chain(groups.overflow.iter().filter_map(Weak::upgrade)) {
            if let Some(seq) = group.join() {
                return Ok((group, seq));
            }
        }
        let group = Arc::new(self.new_group()?);
        let seq = group.join().ok_or(Error::Config("sequences must be > 0"))?;
        if groups.first.is_none() {
            groups.first = Some(Arc::clone(&group));
        } else {
            groups.overflow.push(Arc::downgrade(&group));
        }
        Ok((group, seq))
    }

    /// A context for `sequences` sessions of up to `n_ctx` tokens each, in one unified KV cache
    /// (the sessions keep to their `n_ctx`, so the cache never fills). Measured with `bench
    /// models` on 2 cores, 4 replies at once: 77 tokens/s with a unified cache, 44 with one
    /// stream per sequence (llama.cpp then splits each step by sequence); one reply alone, 33.
    fn new_group(&self) -> Result<Group, Error> {
        let config = &self.config;
        let sequences = config.sequences.max(1);
        let n_ctx = config
            .n_ctx
            .checked_mul(sequences)
            .and_then(NonZeroU32::new)
            .ok_or(Error::Config(
                "n_ctx × sequences must be > 0 and fit in 32 bits",
            ))?;
        let threads = i32::try_from(config.threads.max(1)).unwrap_or(1);
        let batch_threads = i32::try_from(config.batch_threads.max(1)).unwrap_or(1);
        let params = LlamaContextParams::default()
            .with_n_ctx(Some(n_ctx))
            .with_n_batch(config.n_batch.max(1))
            .with_n_ubatch(config.n_batch.max(1))
            .with_n_seq_max(sequences)
            .with_kv_unified(true)
            .with_n_threads(threads)
            .with_n_threads_batch(batch_threads);
        let context = self
            .model
            .new_context(backend()?, params)
            .map_err(|e| Error::Context(e.to_string()))?;
        // SAFETY: the context borrows the model. The group that holds this 'static context also
        // holds an `Arc` of the model, declared after the context so it is dropped after it: the
        // model outlives the context.
        #[allow(unsafe_code)]
        let context =
            unsafe { std::mem::transmute::<LlamaContext<'_>, LlamaContext<'static>>(context) };
        let cpu = config.gpu_layers == 0 || !cfg!(feature = "cuda");
        Ok(Group::new(
            context,
            Arc::clone(&self.model),
            sequences,
            config.n_batch,
            cpu,
            Arc::clone(&self.counters),
        ))
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
        let state = session.snapshot()?;
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
