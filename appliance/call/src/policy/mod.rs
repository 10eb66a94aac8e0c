//! Call policy decided by code, never left to the LLM: consent, abuse, requests for a human,
//! requests not to be called again.

pub mod consent;
pub mod do_not_call;
pub mod profanity;
pub mod transfer;
