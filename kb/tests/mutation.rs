//! Every ingester (text, Markdown, HTML, CSV, PDF) on thousands of mutated documents: it returns
//! blocks or an error, never panics. A seeded, stable-Rust stand-in for a fuzzer, run on every
//! test run; the corpus is the evaluation businesses' documents, one or more of each format.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::path::{Path, PathBuf};

use fastrand::Rng;
use kb::ingest::parse;
use kb::Format;

/// A number below `n` (0 when `n` is 0), from the seeded generator: a failure reproduces.
fn below(rng: &mut Rng, n: usize) -> usize {
    rng.usize(..n.max(1))
}

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/eval");
    let mut files = Vec::new();
    for business in std::fs::read_dir(&root).unwrap().flatten() {
        let docs = business.path().join("docs");
        let Ok(entries) = std::fs::read_dir(&docs) else {
            continue;
        };
        for file in entries.flatten() {
            let path = file.path();
            if Format::of(&path).is_ok() {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

/// Bytes that mean something to one of the formats.
const INTERESTING: &[&[u8]] = &[
    b"<",
    b">",
    b"&",
    b"&#",
    b"&amp",
    b";",
    b"\"",
    b",",
    b"\n",
    b"\r\n",
    b"#",
    b"##### ",
    b"---\n",
    b"===\n",
    b"*",
    b"|",
    b"<script>",
    b"</",
    b"<!--",
    b"]]>",
    b"\xE4\xBD\xA0",
    b"\xFF",
    b"\x00",
    b"obj",
    b"endobj",
    b"stream\n",
    b"endstream",
    b"/Length 999999",
    b"/FlateDecode",
    b"<<",
    b">>",
    b"[",
    b"]",
    b"(",
    b")",
    b"\\",
    b"trailer",
    b"xref",
];

fn mutate(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let mut m = original.to_vec();
    for _ in 0..1 + below(rng, 6) {
        let at = below(rng, m.len() + 1).min(m.len());
        match below(rng, 6) {
            0 if at < m.len() => m[at] = rng.u8(..),
            1 => {
                let token = INTERESTING[below(rng, INTERESTING.len())];
                m.splice(at..at, token.iter().copied());
            }
            2 if at < m.len() => {
                let end = (at + 1 + below(rng, 64)).min(m.len());
                m.drain(at..end);
            }
            3 if at < m.len() => {
                // A run copied elsewhere: repeated structure (nested tags, repeated objects).
                let end = (at + 1 + below(rng, 256)).min(m.len());
                let run: Vec<u8> = m[at..end].to_vec();
                let to = below(rng, m.len() + 1).min(m.len());
                m.splice(to..to, run);
            }
            _ => m.truncate(at),
        }
    }
    m
}

#[test]
fn mutated_documents_never_panic_an_ingester() {
    let corpus = corpus();
    let formats: std::collections::BTreeSet<&str> = corpus
        .iter()
        .map(|(p, _)| Format::of(p).unwrap().name())
        .collect();
    assert_eq!(
        formats.into_iter().collect::<Vec<_>>(),
        ["csv", "html", "markdown", "pdf", "text"],
        "every format has a seed document"
    );
    let mut rng = Rng::with_seed(0x1A6E_57ED_0C5E_ED01);
    for (path, original) in &corpus {
        // PDFs cost more to parse: fewer of them, still a thousand and more.
        let rounds = if path.extension().is_some_and(|e| e == "pdf") {
            1500
        } else {
            4000
        };
        let format = Format::of(path).unwrap();
        for round in 0..rounds {
            let mutated = mutate(&mut rng, original);
            let parsed = std::panic::catch_unwind(|| parse(path, format, &mutated));
            assert!(
                parsed.is_ok(),
                "{} panicked on mutation {round} ({} bytes)",
                path.display(),
                mutated.len()
            );
        }
    }
}
