//! PDF text layer with `lopdf` (pure Rust; no poppler on the appliance). Scanned PDFs without a
//! text layer yield [`Error::NoText`](crate::Error::NoText) upstream; OCR is out of scope.
//!
//! `lopdf`'s own `extract_text` drops line breaks, which glues headings to paragraphs, so the
//! content stream is walked here: text-positioning operators (`Td`, `TD`, `T*`, `'`, `"`, `Tm`,
//! `ET`) end a line, and lines set in a larger font than the page's body text are headings.

use std::collections::BTreeMap;
use std::path::Path;

use lopdf::content::Content;
use lopdf::{Document, Encoding, LoadOptions, Object};

use crate::error::{Error, Result};

/// The most bytes one compressed stream may inflate to. A business document's page content is
/// tens of kilobytes; a decompression bomb (a few kilobytes that inflate to gigabytes) stops
/// here with an error instead of taking the daemon's memory.
const MAX_STREAM_BYTES: usize = 32 << 20;
/// How deeply text arrays may nest in a content stream (a real `TJ` array nests once).
const MAX_TEXT_NESTING: usize = 8;

pub(super) fn extract_text(path: &Path, bytes: &[u8]) -> Result<String> {
    let unreadable = |reason: String| Error::Unreadable {
        path: path.to_owned(),
        format: "pdf",
        reason,
    };
    // lopdf ≥ 0.42 bounds object nesting (RUSTSEC-2026-0187: a deeply nested array overflowed
    // the stack and aborted the process); the stream bound is ours.
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_STREAM_BYTES),
        ..LoadOptions::default()
    };
    let document =
        Document::load_mem_with_options(bytes, options).map_err(|e| unreadable(e.to_string()))?;
    if document.is_encrypted() {
        return Err(unreadable("encrypted".into()));
    }
    let mut out = String::new();
    // Not `get_pages()`: it sizes its map from the page tree's /Count, which a document may set
    // to trillions, and the allocation aborts the process (found by the kb_pdf fuzz target).
    for (index, page_id) in document.page_iter().enumerate() {
        let number = index + 1;
        let lines = page_lines(&document, page_id)
            .map_err(|e| unreadable(format!("page {number}: {e}")))?;
        out.push_str(&layout(&lines));
        out.push_str("\n\n");
    }
    Ok(out)
}

/// A line of text and the font size it was set in.
struct Line {
    text: String,
    size: f32,
}

fn page_lines(document: &Document, page_id: lopdf::ObjectId) -> lopdf::Result<Vec<Line>> {
    let encodings: BTreeMap<Vec<u8>, Encoding> = document
        .get_page_fonts(page_id)?
        .into_iter()
        .filter_map(|(name, font)| font.get_font_encoding(document).ok().map(|e| (name, e)))
        .collect();
    let content =
        Content::decode(&document.get_page_content_with_limit(page_id, MAX_STREAM_BYTES)?)?;
    let mut lines = Vec::new();
    let mut current = Line {
        text: String::new(),
        size: 0.0,
    };
    let mut encoding = None;
    let mut size = 0.0f32;
    let mut end_line = |current: &mut Line, size: f32| {
        let text = current.text.trim().to_owned();
        if !text.is_empty() {
            lines.push(Line {
                text,
                size: current.size.max(size),
            });
        }
        current.text.clear();
        current.size = 0.0;
    };
    for operation in &content.operations {
        match operation.operator.as_str() {
            "Tf" => {
                encoding = operation
                    .operands
                    .first()
                    .and_then(|o| o.as_name().ok())
                    .and_then(|n| encodings.get(n));
                size = operation
                    .operands
                    .get(1)
                    .and_then(|o| o.as_float().ok())
                    .unwrap_or(size);
            }
            "Td" | "TD" | "T*" | "Tm" | "ET" => end_line(&mut current, size),
            "Tj" | "TJ" | "'" | "\"" => {
                if matches!(operation.operator.as_str(), "'" | "\"") {
                    end_line(&mut current, size);
                }
                if let Some(encoding) = encoding {
                    collect(&mut current.text, encoding, &operation.operands, 0);
                    current.size = current.size.max(size);
                }
            }
            _ => {}
        }
    }
    end_line(&mut current, size);
    Ok(lines)
}

fn collect(text: &mut String, encoding: &Encoding, operands: &[Object], depth: usize) {
    if depth > MAX_TEXT_NESTING {
        return;
    }
    for operand in operands {
        match operand {
            Object::String(bytes, _) => {
                if let Ok(s) = Document::decode_text(encoding, bytes) {
                    text.push_str(&s);
                }
            }
            Object::Array(items) => collect(text, encoding, items, depth + 1),
            // A large negative kerning in a TJ array is a word space.
            Object::Integer(i) if *i < -100 => text.push(' '),
            Object::Real(r) if *r < -100.0 => text.push(' '),
            _ => {}
        }
    }
}

/// Lines to the plain-text layout `text::parse` reads: headings (larger than the most common
/// size) as their own paragraphs, wrapped body lines joined.
fn layout(lines: &[Line]) -> String {
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for line in lines {
        *counts.entry((line.size * 10.0) as u32).or_default() += line.text.len();
    }
    let body = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map_or(0.0, |(size, _)| *size as f32 / 10.0);
    let mut out = String::new();
    for line in lines {
        if line.size > body + 0.5 {
            out.push_str("\n\n");
            out.push_str(&line.text);
            out.push_str("\n\n");
        } else {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push(' ');
            }
            out.push_str(&line.text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-page PDF whose catalog carries `extra`, with a correct cross-reference table.
    fn pdf(extra: &str) -> Vec<u8> {
        let objects = [
            format!("<< /Type /Catalog /Pages 2 0 R {extra} >>"),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>".to_owned(),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
        );
        for offset in offsets {
            out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    #[test]
    fn a_deeply_nested_pdf_is_an_error_not_a_crash() {
        let path = Path::new("nested.pdf");
        // The well-formed document loads (no text: an empty page).
        assert!(extract_text(path, &pdf("")).is_ok());
        // RUSTSEC-2026-0187: ten thousand nested arrays overflowed lopdf's parser stack and
        // aborted the whole process before 0.42.
        let nested = format!("/X {}{}", "[".repeat(10_380), "]".repeat(10_380));
        match extract_text(path, &pdf(&nested)) {
            Err(Error::Unreadable { .. }) | Ok(_) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
}
