//! Call policy decided by code, never left to the LLM: consent, abuse, requests for a human.

pub mod consent;
pub mod profanity;
pub mod transfer;
