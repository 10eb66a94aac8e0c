//! One conversation: its history, its llama.cpp context, and the exact tokens in its KV cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use models_api::{
    CancelToken, ChatMessage, Constraint, Flow, GenerateOptions, Generation, LlmSession, Sampling,
    StopReason,
};

use crate::text::TextStream;
use crate::{AgentPrefix, Error, Llama, JSON_OBJECT_GBNF};

/// The one sequence id a session's context uses.
pub(crate) const SEQ: i32 = 0;

/// A conversation with its own KV cache. See the crate docs.
pub struct LlamaSession {
    // Field order matters: `context` borrows the model `llama.model` keeps alive, and fields drop
    // in declaration order.
    context: LlamaContext<'static>,
    llama: Arc<LlamaShared>,
    history: Vec<ChatMessage>,
    /// Exactly the tokens in the KV cache, in position order.
    cached: Vec<LlamaToken>,
    /// Whether the context's last logits belong to the last token of `cached` (so sampling can
    /// start without decoding anything).
    logits_fresh: bool,
    batch: LlamaBatch<'static>,
}

/// What a session needs of its [`Llama`], so the session does not borrow it.
pub(crate) struct LlamaShared {
    model: Arc<LlamaModel>,
    /// On the CPU, each decode step waits for its turn ([`models_api::compute`]).
    cpu: bool,
    template: LlamaChatTemplate,
    n_ctx: u32,
    n_batch: u32,
}

// SAFETY: a llama.cpp context has no thread affinity; it must not be used from two threads at
// once, which `&mut self` on every method that touches it guarantees. The batch is plain memory.
#[allow(unsafe_code)]
unsafe impl Send for LlamaSession {}

impl std::fmt::Debug for LlamaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaSession")
            .field("messages", &self.history.len())
            .field("cached_tokens", &self.cached.len())
            .finish_non_exhaustive()
    }
}

impl LlamaSession {
    pub(crate) fn new(llama: &Llama, prefix: Option<&AgentPrefix>) -> Result<Self, Error> {
        let context = llama.new_context()?;
        let shared = Arc::new(LlamaShared {
            model: Arc::clone(&llama.model),
            cpu: llama.config.gpu_layers == 0 || !cfg!(feature = "cuda"),
            template: llama.template.clone(),
            n_ctx: llama.config.n_ctx,
            n_batch: llama.config.n_batch.max(1),
        });
        let mut session = LlamaSession {
            context,
            batch: LlamaBatch::new(shared.n_batch as usize, 1),
            llama: shared,
            history: Vec::new(),
            cached: Vec::new(),
            logits_fresh: false,
        };
        if let Some(prefix) = prefix {
            session
                .context
                .state_seq_set(&prefix.state, SEQ)
                .map_err(|e| Error::State(e.to_string()))?;
            session.cached = prefix.tokens.clone();
            session
                .history
                .push(ChatMessage::system(prefix.system.clone()));
        }
        Ok(session)
    }

    pub(crate) fn context(&self) -> &LlamaContext<'static> {
        &self.context
    }

    /// The tokens currently in the KV cache.
    pub fn cached_tokens(&self) -> usize {
        self.cached.len()
    }

    /// The context window size.
    pub fn n_ctx(&self) -> u32 {
        self.llama.n_ctx
    }

    /// Renders the history and brings the cache in line with it: keeps the longest common token
    /// prefix, drops the rest, decodes the remainder. Returns (cached, decoded, decode time), or
    /// `None` if cancelled (the cache then holds a consistent prefix of the prompt).
    fn sync(
        &mut self,
        add_assistant: bool,
        cancel: &CancelToken,
    ) -> Result<Option<(usize, usize, Duration)>, Error> {
        let prompt = crate::render_with(
            &self.llama.model,
            &self.llama.template,
            &self.history,
            add_assistant,
        )?;
        let target = self
            .llama
            .model
            .vocab()
            .tokenize(prompt.as_bytes(), true, true);
        if target.len() >= self.llama.n_ctx as usize {
            return Err(Error::PromptTooLong {
                tokens: target.len(),
                n_ctx: self.llama.n_ctx,
            });
        }
        let mut common = self
            .cached
            .iter()
            .zip(&target)
            .take_while(|(a, b)| a == b)
            .count();
        if common == target.len() && !(common == self.cached.len() && self.logits_fresh) {
            // Everything is cached but the last token's logits are gone: decode it again.
            common = common.saturating_sub(1);
        }
        self.truncate_cache(common)?;
        let started = Instant::now();
        let decoded = target.len() - common;
        if !self.decode_tokens(&target[common..], cancel)? {
            return Ok(None);
        }
        Ok(Some((common, decoded, started.elapsed())))
    }

    /// Drops cached tokens from position `keep` on.
    fn truncate_cache(&mut self, keep: usize) -> Result<(), Error> {
        if keep >= self.cached.len() {
            return Ok(());
        }
        let p0 = u32::try_from(keep).map_err(|_| Error::State("position overflow".into()))?;
        self.context
            .clear_kv_cache_seq(Some(SEQ as u32), Some(p0), None)
            .map_err(|e| Error::State(e.to_string()))?
            .then_some(())
            .ok_or_else(|| Error::State(format!("llama.cpp refused to drop positions {keep}..")))?;
        self.cached.truncate(keep);
        self.logits_fresh = false;
        Ok(())
    }

    /// Decodes `tokens` after the cache in batches, logits for the last one only. Returns false
    /// if cancelled between batches; `cached` always lists what was decoded.
    pub(crate) fn decode_tokens(
        &mut self,
        tokens: &[LlamaToken],
        cancel: &CancelToken,
    ) -> Result<bool, Error> {
        let n_batch = self.llama.n_batch as usize;
        let chunks = tokens.chunks(n_batch);
        let n_chunks = chunks.len();
        for (i, chunk) in chunks.enumerate() {
            if cancel.is_cancelled() {
                return Ok(false);
            }
            let last_chunk = i + 1 == n_chunks;
            self.batch.clear();
            for (j, &token) in chunk.iter().enumerate() {
                let pos = i32::try_from(self.cached.len() + j)
                    .map_err(|_| Error::State("position overflow".into()))?;
                let logits = last_chunk && j + 1 == chunk.len();
                self.batch
                    .add(token, pos, &[SEQ], logits)
                    .map_err(|e| Error::Decode(e.to_string()))?;
            }
            self.logits_fresh = false;
            {
                let _turn = self.llama.cpu.then(models_api::compute::cpu_turn);
                self.context
                    .decode(&mut self.batch)
                    .map_err(|e| Error::Decode(e.to_string()))?;
            }
            self.cached.extend_from_slice(chunk);
            self.logits_fresh = last_chunk;
        }
        Ok(true)
    }

    fn sampler(&self, options: &GenerateOptions) -> Result<LlamaSampler, Error> {
        let mut chain = Vec::new();
        match &options.constraint {
            Constraint::None => {}
            Constraint::JsonObject => chain.push(self.grammar(JSON_OBJECT_GBNF, "root")?),
            Constraint::Gbnf { grammar, root } => chain.push(self.grammar(grammar, root)?),
        }
        match options.sampling {
            Sampling::Greedy => chain.push(LlamaSampler::greedy()),
            Sampling::Seeded {
                seed,
                temperature,
                top_k,
                top_p,
            } => {
                if top_k > 0 {
                    chain.push(LlamaSampler::top_k(
                        i32::try_from(top_k).unwrap_or(i32::MAX),
                    ));
                }
                if top_p < 1.0 {
                    chain.push(LlamaSampler::top_p(top_p, 1));
                }
                chain.push(LlamaSampler::temp(temperature));
                chain.push(LlamaSampler::dist(seed));
            }
        }
        Ok(LlamaSampler::chain_simple(chain))
    }

    fn grammar(&self, grammar: &str, root: &str) -> Result<LlamaSampler, Error> {
        LlamaSampler::grammar(&self.llama.model, grammar, root)
            .map_err(|e| Error::Grammar(e.to_string()))
    }
}

impl LlmSession for LlamaSession {
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

    fn prefill(&mut self, cancel: &CancelToken) -> Result<u32, Error> {
        Ok(self
            .sync(true, cancel)?
            .map_or(0, |(_, decoded, _)| decoded as u32))
    }

    fn generate(
        &mut self,
        options: &GenerateOptions,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<Generation, Error> {
        let started = Instant::now();
        let mut sampler = self.sampler(options)?;
        let (cached, prefilled, prefill) = match self.sync(true, cancel)? {
            Some(s) => s,
            None => {
                return Ok(Generation {
                    text: String::new(),
                    stop: StopReason::Cancelled,
                    generated_tokens: 0,
                    prefilled_tokens: 0,
                    cached_tokens: 0,
                    prefill: started.elapsed(),
                    first_token: None,
                    elapsed: started.elapsed(),
                })
            }
        };
        let mut stream = TextStream::new(&options.stop);
        let mut first_token = None;
        let mut generated = 0u32;
        let mut piece = Vec::with_capacity(16);
        let stop = loop {
            if cancel.is_cancelled() {
                break StopReason::Cancelled;
            }
            if generated >= options.max_tokens {
                break StopReason::MaxTokens;
            }
            if self.cached.len() >= self.llama.n_ctx as usize {
                break StopReason::ContextFull;
            }
            let token = sampler.sample(&self.context, -1);
            let vocab = self.llama.model.vocab();
            if vocab.is_eog(token) {
                break StopReason::EndOfTurn;
            }
            generated += 1;
            piece.clear();
            vocab.token_to_piece_into(token, &mut piece, false, None);
            let pushed = stream.push(&piece);
            if !pushed.text.is_empty() {
                first_token.get_or_insert_with(|| started.elapsed());
                if on_text(&pushed.text) == Flow::Stop {
                    break StopReason::Callback;
                }
            }
            if pushed.stopped {
                break StopReason::StopSequence;
            }
            // Decode the token so the next one can be sampled; the cache then holds it.
            if !self.decode_tokens(&[token], &CancelToken::new())? {
                break StopReason::Cancelled;
            }
        };
        if matches!(
            stop,
            StopReason::EndOfTurn | StopReason::MaxTokens | StopReason::ContextFull
        ) {
            let rest = stream.finish();
            if !rest.text.is_empty() {
                first_token.get_or_insert_with(|| started.elapsed());
                on_text(&rest.text);
            }
        }
        // What the caller received is the reply; the cache holds what was decoded, and the next
        // sync reconciles the two.
        let text = stream.released().to_owned();
        self.history.push(ChatMessage::assistant(text.clone()));
        Ok(Generation {
            text,
            stop,
            generated_tokens: generated,
            prefilled_tokens: prefilled as u32,
            cached_tokens: cached as u32,
            prefill,
            first_token,
            elapsed: started.elapsed(),
        })
    }
}
