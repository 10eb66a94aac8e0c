//! The dialog of a Switchboard agent: what the model is told, what it may answer from, and
//! how its reply reaches text-to-speech.
//!
//! # What it does
//! - **Prompt assembly.** The agent's instructions plus phone rules (one or two short spoken
//!   sentences, no markdown, only the business's facts, "I don't know" and an offer of a
//!   colleague instead of a guess) form the system prompt, prefilled once per agent
//!   ([`Dialog::load`]) and copied into every call's KV cache.
//! - **Knowledge, cached or retrieved.** The agent's `kb` collection is ingested at load. When
//!   all of it fits [`DialogOptions::cache_budget_tokens`] it goes into the prefix
//!   ([`KnowledgeMode::Cached`]: no per-turn retrieval or facts prefill); otherwise each turn
//!   retrieves snippets under a token budget into a note placed *after* the cached prefix, so the
//!   prefix's cache stays valid ([`KnowledgeMode::Retrieval`]). When no snippet is relevant
//!   (cosine similarity gate), the note says so and the rules make the model decline.
//! - **Grounding.** Every figure, day and name of a reply is checked against the facts that
//!   passed the relevance gate for this question before it is spoken; a reply that states
//!   something else is stopped and the don't-know line said instead ([`grounding`]).
//! - **Speakable streaming.** [`Conversation::reply`] cuts the token stream into chunks for TTS:
//!   the first at a clause boundary, then whole sentences ([`speech`]).
//! - **Barge-in and speculation.** [`Conversation::heard`] rewrites the last reply to what was
//!   played; [`Conversation::prefill_partial`] prefills a stable partial transcript.
//! - **Memory and outcome.** A summary of earlier calls enters as a note
//!   ([`Dialog::conversation`]); [`Conversation::outcome`] extracts an [`Outcome`] under a JSON
//!   grammar at the end of the call.
//!
//! # What it does not do
//! No threads, no async, no clock but `Instant` for the stats it reports, no concrete engines:
//! `L: Llm` and `E: Embedder` are injected. Every call blocks for model work: run it on an engine
//! thread, never on an async worker. Storage of memory and outcomes is the store's job.
//!
//! # Example
//! ```ignore
//! let dialog = Dialog::load(llm, embedder, &spec, &data_dir)?;       // once, at daemon start
//! let mut call = dialog.conversation(memory.as_deref())?;           // per call
//! let reply = call.reply("Are you open on Saturday?", &cancel, &mut |chunk| {
//!     tts.say(chunk); Flow::Continue
//! })?;
//! if barged_in { call.heard(&played_so_far); }
//! let outcome = call.outcome(&CancelToken::new())?;               // at hang-up
//! ```

#![warn(missing_docs)]

mod conversation;
mod dialog;
mod error;
pub mod grounding;
mod outcome;
mod prompt;
pub mod speech;

pub use conversation::{Conversation, Reply};
pub use dialog::{AgentSpec, Dialog, DialogOptions, KnowledgeMode};
pub use error::Error;
pub use outcome::{Outcome, DISPOSITIONS};
