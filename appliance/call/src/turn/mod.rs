//! Turn-taking: when the caller's turn is over, and when they are talking over the agent.

pub mod barge_in;
pub mod echo_guard;
pub mod endpointing;
