//! Arbitrary bytes as an uploaded Markdown document: the ingester returns blocks or an error, and
//! what it returns chunks, never panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("upload.md");
    if let Ok(blocks) = kb::ingest::parse(path, kb::Format::Markdown, data) {
        let _ = kb::chunking::chunk(&blocks);
    }
});
