//! models-bundle (stub, being written)
pub mod ct2_ggml;
pub mod digest;
pub mod error;
pub mod manifest;
pub mod progress;
