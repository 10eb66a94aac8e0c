//! Uploaded documents are parsed first in a child process under limits (`documents.rs`): the
//! real parser in the built binary against its memory limit, and stand-in programs for a parser
//! that hangs or crashes.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use switchboard::documents::{vet, ParseLimits};

fn program() -> PathBuf {
    env!("CARGO_BIN_EXE_switchboard").into()
}

/// An executable shell script in `dir`.
fn script(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("parser.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_document_needing_more_memory_than_allowed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("hours.md");
    std::fs::write(&small, "# Hours\n\nOpen 9 to 5.\n").unwrap();
    let big = dir.path().join("big.txt");
    std::fs::write(&big, "word ".repeat(2_000_000)).unwrap();
    let tight = ParseLimits {
        memory_mb: 48,
        ..ParseLimits::default()
    };
    vet(&program(), &small, tight).unwrap();
    let refused = vet(&program(), &big, tight).unwrap_err().to_string();
    assert!(refused.contains("out of memory"), "{refused}");
    vet(&program(), &big, ParseLimits::default()).unwrap();
    // A document the parser refuses cleanly is the daemon's to name: the child lets it through.
    let empty = dir.path().join("empty.md");
    std::fs::write(&empty, "   \n").unwrap();
    vet(&program(), &empty, tight).unwrap();
}

#[test]
fn a_parser_that_hangs_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let hangs = script(dir.path(), "exec sleep 30");
    let limits = ParseLimits {
        wall: Duration::from_secs(1),
        ..ParseLimits::default()
    };
    let started = Instant::now();
    let refused = vet(&hangs, &dir.path().join("any.pdf"), limits)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("longer than 1 s"), "{refused}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_parser_that_crashes_refuses_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let crashes = script(dir.path(), "kill -SEGV $$");
    let refused = vet(
        &crashes,
        &dir.path().join("any.pdf"),
        ParseLimits::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(refused.contains("signal 11"), "{refused}");
    let missing = vet(
        &dir.path().join("no-such-program"),
        &dir.path().join("any.pdf"),
        ParseLimits::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        missing.starts_with("cannot start the document parser"),
        "{missing}"
    );
}
