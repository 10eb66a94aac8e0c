//! Turning a file into [`Block`]s: headed runs of paragraphs, or FAQ question/answer pairs.
//!
//! Parsers never panic on bad input; a file that cannot be parsed yields an [`Error`] naming it.

mod csv_faq;
mod html;
mod markdown;
mod pdf;
mod text;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The formats `kb` reads, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `.txt`, `.text`: paragraphs split at blank lines; short unpunctuated lines are headings.
    Text,
    /// `.md`, `.markdown`: ATX (`#`) and setext headings.
    Markdown,
    /// `.html`, `.htm`: tags stripped, `<script>`/`<style>` dropped, `<h1>`–`<h6>` kept as headings.
    Html,
    /// `.pdf`: the text layer (no OCR).
    Pdf,
    /// `.csv`: an FAQ with `question` and `answer` columns; one chunk per row.
    Csv,
}

impl Format {
    /// The format for `path`'s extension.
    pub fn of(path: &Path) -> Result<Self> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match extension.as_str() {
            "txt" | "text" => Ok(Format::Text),
            "md" | "markdown" => Ok(Format::Markdown),
            "html" | "htm" => Ok(Format::Html),
            "pdf" => Ok(Format::Pdf),
            "csv" => Ok(Format::Csv),
            _ => Err(Error::UnsupportedFormat {
                path: path.to_owned(),
                extension,
            }),
        }
    }

    /// Lower-case name, as in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Csv => "csv",
        }
    }
}

/// A unit of parsed content.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Paragraphs under one heading path (outermost heading first; empty before any heading).
    Section {
        /// Headings enclosing the paragraphs, e.g. `["Prices", "Cleaning"]`.
        heading_path: Vec<String>,
        /// Non-empty paragraphs, whitespace-trimmed.
        paragraphs: Vec<String>,
    },
    /// One FAQ row.
    Faq {
        /// The question.
        question: String,
        /// The answer.
        answer: String,
    },
}

/// Parses `bytes` read from `path` as `format`. `path` is only used in errors.
pub fn parse(path: &Path, format: Format, bytes: &[u8]) -> Result<Vec<Block>> {
    let utf8 = || {
        std::str::from_utf8(bytes).map_err(|e| Error::Unreadable {
            path: path.to_owned(),
            format: format.name(),
            reason: format!("not UTF-8 ({e})"),
        })
    };
    let blocks = match format {
        Format::Text => text::parse(utf8()?),
        Format::Markdown => markdown::parse(utf8()?),
        Format::Html => html::parse(&String::from_utf8_lossy(bytes)),
        Format::Pdf => text::parse(&pdf::extract_text(path, bytes)?),
        Format::Csv => csv_faq::parse(path, bytes)?,
    };
    let has_text = blocks.iter().any(|b| match b {
        Block::Section { paragraphs, .. } => !paragraphs.is_empty(),
        Block::Faq { .. } => true,
    });
    if has_text {
        Ok(blocks)
    } else {
        Err(Error::NoText {
            path: path.to_owned(),
        })
    }
}

/// Collects paragraphs into sections as headings appear; shared by the prose parsers.
#[derive(Debug, Default)]
struct SectionBuilder {
    headings: Vec<(usize, String)>,
    paragraphs: Vec<String>,
    current: String,
    blocks: Vec<Block>,
}

impl SectionBuilder {
    /// Starts a heading of `level` (1 = outermost): closes the open section and pops deeper headings.
    fn heading(&mut self, level: usize, title: &str) {
        let title = collapse_whitespace(title);
        if title.is_empty() {
            return;
        }
        self.flush_section();
        self.headings.retain(|(l, _)| *l < level);
        self.headings.push((level, title));
    }

    /// Appends a line of text to the open paragraph.
    fn line(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return self.end_paragraph();
        }
        if !self.current.is_empty() {
            self.current.push('\n');
        }
        self.current.push_str(line);
    }

    fn end_paragraph(&mut self) {
        let paragraph = std::mem::take(&mut self.current);
        let paragraph = paragraph.trim();
        if !paragraph.is_empty() {
            self.paragraphs.push(paragraph.to_owned());
        }
    }

    fn flush_section(&mut self) {
        self.end_paragraph();
        if !self.paragraphs.is_empty() {
            self.blocks.push(Block::Section {
                heading_path: self.headings.iter().map(|(_, t)| t.clone()).collect(),
                paragraphs: std::mem::take(&mut self.paragraphs),
            });
        }
    }

    fn finish(mut self) -> Vec<Block> {
        self.flush_section();
        self.blocks
    }
}

/// Runs of whitespace become one space; ends trimmed.
pub(crate) fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
