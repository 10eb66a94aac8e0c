//! One conversation: its history, its sequence in a shared llama.cpp context, and the exact
//! tokens in its KV cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use llama_cpp_2::model::LlamaChatTemplate;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use models_api::{
    CancelToken, ChatMessage, Constraint, Flow, GenerateOptions, Generation, LlmSession, Sampling,
    StopReason,
};

use crate::group::Group;
use crate::text::TextStream;
use crate::{AgentPrefix, Error, Llama, JSON_OBJECT_GBNF};

/// A conversation with its own KV cache: a sequence of a context it shares with other sessions
/// (`group.rs`). See the crate docs.
pub struct LlamaSession {
    group: Arc<Group>,
    seq: i32,
    shared: Arc<LlamaShared>,
    history: Vec<ChatMessage>,
    /// Exactly the tokens in the KV cache, in position order.
    cached: Vec<LlamaToken>,
    /// The logits of the last token of `cached`, when `logits_fresh` (so sampling can start
    /// without decoding anything).
    logits: Vec<f32>,
    logits_fresh: bool,
    /// Reused for every sampling (one entry per vocabulary token).
    candidates: Vec<LlamaTokenData>,
}

/// What a session needs of its [`Llama`], so the session does not borrow it.
pub(crate) struct LlamaShared {
    pub(crate) template: LlamaChatTemplate,
    pub(crate) n_ctx: u32,
    pub(crate) n_batch: u32,
}

impl std::fmt::Debug for LlamaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaSession")
            .field("sequence", &self.seq)
            .field("messages", &self.history.len())
            .field("cached_tokens", &self.cached.len())
            .finish_non_exhaustive()
    }
}

impl Drop for LlamaSession {
    fn drop(&mut self) {
        self.group.leave(self.seq);
    }
}

impl LlamaSession {
    pub(crate) fn new(llama: &Llama, prefix: Option<&AgentPrefix>) -> Result<Self, Error> {
        let (group, seq) = llama.place()?;
        let mut session = LlamaSession {
            group,
            seq,
            shared: Arc::clone(&llama.shared),
            history: Vec::new(),
            cached: Vec::new(),
            logits: Vec::new(),
            logits_fresh: false,
            candidates: Vec::new(),
        };
        if let Some(prefix) = prefix {
            session
                .group
                .with_context(|c| c.state_seq_set(&prefix.state, seq))
                .map_err(|e| Error::State(e.to_string()))?;
            session.cached = prefix.tokens.clone();
            session
                .history
                .push(ChatMessage::system(prefix.system.clone()));
        }
        Ok(session)
    }

    /// A snapshot of this session's KV cache.
    pub(crate) fn snapshot(&self) -> Result<llama_cpp_2::context::session::SeqState, Error> {
        let flags = llama_cpp_2::context::session::LlamaStateSeqFlags::empty();
        self.group
            .with_context(|c| c.state_seq_get(self.seq, flags))
            .map_err(|e| Error::State(e.to_string()))
    }

    /// The tokens currently in the KV cache.
    pub fn cached_tokens(&self) -> usize {
        self.cached.len()
    }

    /// The context window size.
    pub fn n_ctx(&self) -> u32 {
        self.shared.n_ctx
    }

    /// Renders the history and brings the cache in line with it: keeps the longest common token
    /// prefix, drops the rest, decodes the remainder. Returns (cached, decoded, decode time), or
    /// `None` if cancelled (the cache then holds a consistent prefix of the prompt).
    fn sync(
        &mut self,
        add_assistant: bool,
        cancel: &CancelToken,
    ) -> Result<Option<(usize, usize, Duration)>, Error> {
        let model = self.group.model();
        let prompt =
            crate::render_with(model, &self.shared.template, &self.history, add_assistant)?;
        let target = model.vocab().tokenize(prompt.as_bytes(), true, true);
        if target.len() >= self.shared.n_ctx as usize {
            return Err(Error::PromptTooLong {
                tokens: target.len(),
                n_ctx: self.shared.n_ctx,
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
        let seq = self.seq as u32;
        self.group
            .with_context(|c| c.clear_kv_cache_seq(Some(seq), Some(p0), None))
            .map_err(|e| Error::State(e.to_string()))?
            .then_some(())
            .ok_or_else(|| Error::State(format!("llama.cpp refused to drop positions {keep}..")))?;
        self.cached.truncate(keep);
        self.logits_fresh = false;
        Ok(())
    }

    /// Decodes `tokens` after the cache in batches, beside other sessions' work, keeping the
    /// last one's logits. Returns false if cancelled between batches; `cached` always lists what
    /// was decoded.
    pub(crate) fn decode_tokens(
        &mut self,
        tokens: &[LlamaToken],
        cancel: &CancelToken,
    ) -> Result<bool, Error> {
        let chunks = tokens.chunks(self.shared.n_batch.max(1) as usize);
        let n_chunks = chunks.len();
        for (i, chunk) in chunks.enumerate() {
            if cancel.is_cancelled() {
                return Ok(false);
            }
            let last_chunk = i + 1 == n_chunks;
            self.logits_fresh = false;
            let buffer = last_chunk.then(|| std::mem::take(&mut self.logits));
            let logits = self
                .group
                .decode(self.seq, self.cached.len(), chunk, buffer)?;
            self.cached.extend_from_slice(chunk);
            if let Some(logits) = logits {
                self.logits = logits;
                self.logits_fresh = true;
            }
        }
        Ok(true)
    }

    /// Samples the next token from the last token's logits, as llama.cpp's
    /// `llama_sampler_sample` does from a context: every token a candidate, then accepted.
    fn sample(&mut self, sampler: &mut LlamaSampler) -> Result<LlamaToken, Error> {
        let mut data = std::mem::take(&mut self.candidates);
        data.clear();
        data.extend(self.logits.iter().enumerate().map(|(id, &logit)| {
            LlamaTokenData::new(
                LlamaToken(i32::try_from(id).unwrap_or(i32::MAX)),
                logit,
                0.0,
            )
        }));
        let mut candidates = LlamaTokenDataArray::new(data, false);
        candidates.apply_sampler(sampler);
        let token = candidates.selected_token();
        self.candidates = candidates.data;
        let token = token.ok_or_else(|| Error::Decode("the sampler chose no token".into()))?;
        sampler.accept(token);
        Ok(token)
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
        LlamaSampler::grammar(self.group.model(), grammar, root)
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
        let synced = self.sync(true, cancel);
        self.group.rest(self.seq);
        Ok(synced?.map_or(0, |(_, decoded, _)| decoded as u32))
    }

    fn generate(
        &mut self,
        options: &GenerateOptions,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<Generation, Error> {
        let generation = self.generate_turn(options, cancel, on_text);
        self.group.rest(self.seq);
        generation
    }
}

impl LlamaSession {
    /// [`LlmSession::generate`], before the session tells its group it has stopped generating.
    fn generate_turn(
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
            if self.cached.len() >= self.shared.n_ctx as usize {
                break StopReason::ContextFull;
            }
            let token = self.sample(&mut sampler)?;
            let vocab = self.group.model().vocab();
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
