//! One ggml computation at a time on the CPU.
//!
//! whisper.cpp and llama.cpp each run a computation on several threads that spin at barriers
//! between steps. Two computations at once on the same cores (two calls transcribing, or one
//! transcribing while another's reply decodes) slow each other down many times over: on 2
//! cores, two concurrent calls' transcripts took 5–8 s instead of 0.1–0.4 s. So the CPU
//! engines take turns, step by step (a transcription, a prefill batch, one generated token),
//! each step on every thread it was given. A GPU build does not need this.

use std::sync::{Mutex, MutexGuard, PoisonError};

static TURN: Mutex<()> = Mutex::new(());

/// Waits until no other CPU engine step runs; the step runs while the guard lives.
pub fn cpu_turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}
