//! The seams between Switchboard and its model engines: speech-to-text ([`Stt`]), the language
//! model ([`Llm`]), text-to-speech ([`Tts`]) and sentence embeddings ([`Embedder`]), plus the
//! plain data they exchange.
//!
//! This crate has no heavy dependencies and knows nothing of telephony: the engines live in
//! `models-whisper`, `models-llama`, `models-piper` and `models-embed`, and the appliance injects
//! them. `kb` depends on this crate only.
//!
//! # Threading contract (all engines)
//! - Every engine call **blocks** the calling thread for the length of the inference. Call engines
//!   from blocking threads (the appliance uses tokio's `spawn_blocking`), never from an async
//!   runtime's worker threads. Engines take turns on the CPU through [`compute`].
//! - A loaded model (`Stt`, `Llm`, `Tts`, `Embedder` implementors) is `Send + Sync` and may be
//!   shared behind an `Arc`; per-conversation state (an [`LlmSession`], a partial transcriber) is
//!   `Send` but used by one thread at a time (`&mut self`).
//! - Cancellation is cooperative through a [`CancelToken`]: engines check it between decode steps
//!   (per generated token, per whisper decoder step, per TTS sentence). A cancelled call returns
//!   normally with what it had (an expected outcome, not an error): see each trait.

#![warn(missing_docs)]

pub mod bench;
mod cancel;
pub mod compute;
mod embed;
mod llm;
mod stt;
pub mod testing;
mod tts;

pub use cancel::CancelToken;
pub use embed::{cosine, Embedder, Embedding};
pub use llm::{
    truncate_last_reply, ChatMessage, Constraint, Flow, GenerateOptions, Generation, Llm,
    LlmSession, Role, Sampling, StopReason,
};
pub use stt::{
    audio_ctx_for, i16_to_f32, AudioContext, Partial, PartialTranscriber, Stt, SttOptions,
    Transcript, TranscriptSegment, FULL_AUDIO_CTX,
};
pub use tts::{Speech, Tts, TtsOptions};

/// Sample rate of every audio buffer given to [`Stt`]: 16 kHz mono.
pub const STT_SAMPLE_RATE: u32 = 16_000;
