//! Inputs the fuzz targets (`fuzz/`) found to break an ingester, each kept as a file under
//! `tests/data/fuzz/`: every one must now parse or fail with an error, and the process live on.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use std::path::Path;

use kb::ingest::parse;
use kb::Format;

fn found(name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(name);
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// A page tree whose /Count claims 7,777,777,777,773 pages: lopdf's `get_pages` sized a map from
/// it and the allocation aborted the process (kb_pdf, 6.2 million executions in).
#[test]
fn a_pdf_claiming_trillions_of_pages_is_read_as_what_it_holds() {
    let (path, bytes) = found("page-count-bomb.pdf");
    match parse(&path, Format::Pdf, &bytes) {
        Ok(blocks) => assert!(blocks.len() < 100, "{} blocks", blocks.len()),
        Err(e) => assert!(e.to_string().contains("page-count-bomb.pdf"), "{e}"),
    }
}
