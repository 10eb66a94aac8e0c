//! The crate's one error type.

/// Why the dialog could not load or a turn could not run. Cancellation is not an error
/// ([`crate::Reply::cancelled`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The agent's knowledge collection could not be opened, ingested or searched.
    #[error("knowledge of agent {agent:?}: {source}")]
    Knowledge {
        /// The agent.
        agent: String,
        /// What the knowledge base reported (boxed: it is large and errors are rare).
        #[source]
        source: Box<kb::Error>,
    },
    /// The language model failed (not a cancellation).
    #[error("language model: {0}")]
    Llm(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The end-of-call extraction produced something that is not the outcome object, even
    /// under the grammar (e.g. cut by the token limit).
    #[error("outcome extraction produced no valid JSON ({reason}): {text:?}")]
    Outcome {
        /// The parser's complaint.
        reason: String,
        /// What the model produced.
        text: String,
    },
}

pub(crate) fn llm<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
    Error::Llm(Box::new(e))
}
