//! Helpers for tests and benches that need what a developer's machine may lack: the real model
//! files, a PostgreSQL server, the third-party SIP peers.
//!
//! A test that finds one missing calls [`skip`]: it is skipped with a message, unless that
//! dependency's `SWITCHBOARD_REQUIRE_*` flag is `1` (as `tests/run` sets all three), where it
//! fails. Model files are found under `$SWITCHBOARD_MODELS_DIR` (default
//! `~/.cache/switchboard/models`), in the layout of MODELS.md.

use std::io::Write;
use std::path::PathBuf;

/// What a test may find missing from its environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dependency {
    /// The model set (`switchboard models install`).
    Models,
    /// A PostgreSQL server (`SWITCHBOARD_TEST_POSTGRES_URL`).
    Postgres,
    /// The third-party peers on PATH: `sipp`, `baresip`, `espeak-ng`.
    Peers,
}

impl Dependency {
    /// Every dependency, for the check that CI requires them all.
    pub const ALL: [Dependency; 3] = [Dependency::Models, Dependency::Postgres, Dependency::Peers];

    /// The environment variable that, set to `1`, makes this dependency's absence a failure.
    pub fn flag(self) -> &'static str {
        match self {
            Dependency::Models => "SWITCHBOARD_REQUIRE_MODELS",
            Dependency::Postgres => "SWITCHBOARD_REQUIRE_POSTGRES",
            Dependency::Peers => "SWITCHBOARD_REQUIRE_E2E",
        }
    }

    /// Whether a test missing this dependency must fail rather than skip.
    pub fn required(self) -> bool {
        std::env::var(self.flag()).is_ok_and(|v| v == "1")
    }
}

/// Called by a test that found `dependency` missing (`why` says what), before it returns
/// without testing: panics when the dependency is required. Otherwise the skip is printed, and
/// appended with the test's name to the file `$SWITCHBOARD_SKIPPED` names, which `tests/run`
/// summarises after the tests (cargo shows a passing test's output only with `--nocapture`).
pub fn skip(dependency: Dependency, why: &str) {
    assert!(
        !dependency.required(),
        "{why}, and {}=1 requires it",
        dependency.flag()
    );
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os("SWITCHBOARD_SKIPPED") {
        let line = format!("{test}: {why}\n");
        // One write per line, in append mode: tests skipping in parallel do not interleave.
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(error) = appended {
            eprintln!("cannot record the skip in $SWITCHBOARD_SKIPPED: {error}");
        }
    }
}

/// The model directory.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/switchboard/models")
}

/// `models_dir()/relative` if it exists; otherwise `None` after [`skip`].
pub fn model_file(relative: &str) -> Option<PathBuf> {
    let path = models_dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    skip(
        Dependency::Models,
        &format!(
            "model file {} missing (set SWITCHBOARD_MODELS_DIR)",
            path.display()
        ),
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

    /// CI runs the whole suite: a missing model, server or peer must fail it, never skip.
    #[test]
    fn ci_requires_every_dependency() {
        if std::env::var("CI").as_deref() != Ok("true") {
            return;
        }
        for dependency in Dependency::ALL {
            assert!(
                dependency.required(),
                "CI=true but {}=1 is not set: tests missing it would pass by skipping",
                dependency.flag()
            );
        }
    }

    #[test]
    fn wer_counts_word_edits() {
        assert_eq!(word_error_rate("Hello, World.", "hello world"), 0.0);
        assert_eq!(word_error_rate("a b c d", "a x c"), 0.5);
        assert_eq!(word_error_rate("", ""), 0.0);
    }
}
