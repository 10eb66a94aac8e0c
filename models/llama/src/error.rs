//! This crate's error enum.

use std::path::PathBuf;

/// Errors of the llama.cpp engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The GGUF file does not exist or cannot be read.
    #[error("LLM model {path}: {source}")]
    ModelUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a GGUF model llama.cpp can load.
    #[error("LLM model {path}: not a usable GGUF model: {reason}")]
    ModelCorrupt {
        /// The file.
        path: PathBuf,
        /// What llama.cpp or the magic check said.
        reason: String,
    },
    /// The GGUF has no chat template (a base model, not an instruct one).
    #[error(
        "LLM model {path}: no chat template ({reason}); an instruction-tuned model is required"
    )]
    NoChatTemplate {
        /// The file.
        path: PathBuf,
        /// llama.cpp's answer.
        reason: String,
    },
    /// A configuration value is unusable.
    #[error("LLM config: {0}")]
    Config(&'static str),
    /// llama.cpp's backend failed to initialise.
    #[error("llama.cpp backend: {0}")]
    Backend(String),
    /// A context (KV cache) could not be created, usually for lack of memory.
    #[error("llama.cpp context: {0}")]
    Context(String),
    /// The chat template could not render the history.
    #[error("chat template: {0}")]
    Template(String),
    /// The rendered prompt does not fit the context window.
    #[error("prompt of {tokens} tokens does not fit the {n_ctx}-token context")]
    PromptTooLong {
        /// Prompt tokens.
        tokens: usize,
        /// Context size.
        n_ctx: u32,
    },
    /// llama.cpp failed to decode a batch.
    #[error("llama.cpp decode: {0}")]
    Decode(String),
    /// The KV cache could not be truncated or restored.
    #[error("llama.cpp KV state: {0}")]
    State(String),
    /// A GBNF grammar was rejected.
    #[error("grammar: {0}")]
    Grammar(String),
}
