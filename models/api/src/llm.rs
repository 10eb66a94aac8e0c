//! The language model: chat messages in, a streamed reply out, with the conversation's KV cache
//! kept per session so a turn only prefills its new tokens.

use std::time::Duration;

use crate::CancelToken;

/// A loaded language model.
///
/// Threading: `Send + Sync`; share it behind an `Arc`. Each [`LlmSession`] has its own KV cache
/// and is driven by one thread at a time; sessions driven at the same time by different threads
/// may be decoded together (one batch carrying each one's next tokens), which changes nothing in
/// what each one generates.
pub trait Llm: Send + Sync {
    /// The engine's error type.
    type Error: std::error::Error + Send + Sync + 'static;
    /// An agent prefix (system prompt) prefilled once, shared by every session of that agent.
    type Prefix: Send + Sync;
    /// A conversation with its KV cache.
    type Session: LlmSession<Error = Self::Error>;

    /// Prefills `system_prompt` once. Blocks for the prefill (seconds for a long prompt on a
    /// 2-core box): do it at agent load, not per call.
    fn prefix(&self, system_prompt: &str) -> Result<Self::Prefix, Self::Error>;

    /// A new conversation. With a prefix its KV cache starts as a copy of the prefix's and its
    /// history starts with the system message, so the first turn prefills only the user's words.
    fn session(&self, prefix: Option<&Self::Prefix>) -> Result<Self::Session, Self::Error>;
}

/// One conversation and its KV cache.
///
/// The history is the source of truth; the cache mirrors the tokens actually decoded. Before each
/// prefill or generation the session renders the history with the model's chat template and
/// reuses the cache up to the first differing token, dropping the rest. So editing the history
/// (a barge-in truncating the last reply, a partial transcript replaced by the final one) costs
/// only the tokens after the edit.
pub trait LlmSession: Send {
    /// The engine's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The conversation so far.
    fn history(&self) -> &[ChatMessage];

    /// Appends a message (typically the caller's transcribed turn).
    fn push(&mut self, message: ChatMessage);

    /// Removes and returns the last message (e.g. a speculative partial transcript).
    fn pop(&mut self) -> Option<ChatMessage>;

    /// Replaces the text of the last assistant message with what the caller actually heard
    /// before a barge-in. Returns false if the last message is not the assistant's.
    fn truncate_reply(&mut self, heard: &str) -> bool;

    /// Prefills the history (plus the assistant header) without generating, e.g. on a stable
    /// partial transcript while the caller is still speaking. Returns the tokens decoded.
    /// Cancellation stops between batches and leaves the cache consistent.
    fn prefill(&mut self, cancel: &CancelToken) -> Result<u32, Self::Error>;

    /// Generates the assistant's reply to the history, streaming each piece of text to `on_text`
    /// as soon as it is complete UTF-8. The reply actually produced (cut at a stop, a
    /// cancellation or [`Flow::Stop`]) is appended to the history as an assistant message.
    fn generate(
        &mut self,
        options: &GenerateOptions,
        cancel: &CancelToken,
        on_text: &mut dyn FnMut(&str) -> Flow,
    ) -> Result<Generation, Self::Error>;
}

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The agent's instructions.
    System,
    /// The caller.
    User,
    /// The agent.
    Assistant,
}

impl Role {
    /// The role's name in chat templates.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// A chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

/// [`LlmSession::truncate_reply`] over a plain history: the last message, if it is the
/// assistant's, becomes `heard`.
pub fn truncate_last_reply(history: &mut [ChatMessage], heard: &str) -> bool {
    match history.last_mut() {
        Some(m) if m.role == Role::Assistant => {
            m.content = heard.to_owned();
            true
        }
        _ => false,
    }
}

impl ChatMessage {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::System,
            content: content.into(),
        }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::User,
            content: content.into(),
        }
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// What the streaming callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Stop here; what was streamed so far is the reply.
    Stop,
}

/// Token selection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// Always the most likely token: deterministic, what tests and extraction use.
    Greedy,
    /// Temperature + top-k + top-p sampling from a seeded RNG (reproducible for a given seed).
    Seeded {
        /// RNG seed.
        seed: u32,
        /// Softmax temperature (> 0).
        temperature: f32,
        /// Keep the k most likely tokens (0 = all).
        top_k: u32,
        /// Nucleus threshold (1.0 = off).
        top_p: f32,
    },
}

/// Constrains what the model may emit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// Free text.
    None,
    /// Any JSON object (a built-in GBNF grammar).
    JsonObject,
    /// A GBNF grammar (llama.cpp's grammar format) with its root rule.
    Gbnf {
        /// Grammar text.
        grammar: String,
        /// Start rule, usually `"root"`.
        root: String,
    },
}

/// Options for one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Token selection.
    pub sampling: Sampling,
    /// Output constraint.
    pub constraint: Constraint,
    /// Stop when the reply contains one of these; the stop string is not part of the reply.
    pub stop: Vec<String>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampling: Sampling::Greedy,
            constraint: Constraint::None,
            stop: Vec::new(),
        }
    }
}

/// Why generation ended. All are normal outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model ended its turn (end-of-generation token).
    EndOfTurn,
    /// [`GenerateOptions::max_tokens`] reached.
    MaxTokens,
    /// A [`GenerateOptions::stop`] string appeared.
    StopSequence,
    /// The [`CancelToken`] fired.
    Cancelled,
    /// The callback returned [`Flow::Stop`].
    Callback,
    /// The context window is full.
    ContextFull,
}

/// The result and timings of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The reply as appended to the history.
    pub text: String,
    /// Why it ended.
    pub stop: StopReason,
    /// Tokens generated.
    pub generated_tokens: u32,
    /// Prompt tokens decoded for this turn (not found in the cache).
    pub prefilled_tokens: u32,
    /// Prompt tokens reused from the cache.
    pub cached_tokens: u32,
    /// Time to decode the new prompt tokens.
    pub prefill: Duration,
    /// From the call to the first streamed text.
    pub first_token: Option<Duration>,
    /// Wall time of the call.
    pub elapsed: Duration,
}
