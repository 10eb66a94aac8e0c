//! Helpers for tests and benches that need the real model files.
//!
//! Model files are found under `$SWITCHBOARD_MODELS_DIR` (default `~/.cache/switchboard/models`),
//! in the layout of MODELS.md. A test whose file is missing is skipped with a message, unless
//! `SWITCHBOARD_REQUIRE_MODELS=1` (CI with the model bundle installed), where it fails.

use std::path::PathBuf;

/// A realistic agent prompt of about 210 tokens, the prefix the LLM benches prefill and cache.
pub const BENCH_AGENT_PROMPT: &str = "You are the phone receptionist of Acme Dental, a family \
dental practice. Speak briefly and politely; one or two short sentences per answer, no lists, no \
markdown. Facts: we are open Monday to Friday from 9 am to 5 pm and Saturday from 9 am to noon; \
closed on public holidays. Our address is 12 Main Street, second floor, above the pharmacy; \
parking is behind the building. A cleaning costs 80 dollars, a check-up 60 dollars, whitening 250 \
dollars. We accept Delta Dental, Cigna and Aetna insurance. Dr. Smith and Dr. Patel are the \
dentists; Dr. Patel sees children. Emergencies during opening hours are seen the same day. To \
book, collect the caller's name, phone number, preferred day and time. If the caller asks for a \
person, offer to transfer. Never give medical advice beyond saying a dentist will check. If you \
do not know, say so and offer a call back.";

/// The model directory.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/switchboard/models")
}

/// `models_dir()/relative` if it exists; otherwise `None` after printing why the caller skips,
/// or a panic when models are required.
pub fn model_file(relative: &str) -> Option<PathBuf> {
    let path = models_dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    let required = std::env::var("SWITCHBOARD_REQUIRE_MODELS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "model file {} missing and SWITCHBOARD_REQUIRE_MODELS=1",
        path.display()
    );
    eprintln!(
        "SKIPPED: model file {} missing (set SWITCHBOARD_MODELS_DIR)",
        path.display()
    );
    None
}

/// Word error rate of `hypothesis` against `reference`: word-level edit distance over the
/// reference's length, ignoring case and punctuation.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let words = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .map(|w| {
                w.chars()
                    .filter(|c| c.is_alphanumeric())
                    .flat_map(char::to_lowercase)
                    .collect::<String>()
            })
            .filter(|w| !w.is_empty())
            .collect()
    };
    let (r, h) = (words(reference), words(hypothesis));
    if r.is_empty() {
        return if h.is_empty() { 0.0 } else { 1.0 };
    }
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let sub = prev[j] + usize::from(rw != hw);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f64 / r.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wer_counts_word_edits() {
        assert_eq!(word_error_rate("Hello, World.", "hello world"), 0.0);
        assert_eq!(word_error_rate("a b c d", "a x c"), 0.5);
        assert_eq!(word_error_rate("", ""), 0.0);
    }
}
