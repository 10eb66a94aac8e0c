//! Plain text (and the text layer of PDFs).
//!
//! Paragraphs are split at blank lines. A paragraph that is a single short line without closing
//! punctuation ("Opening hours", "PARKING") is taken as a top-level heading: plain text has no
//! markup, and business documents written in an editor look like this.

use super::{Block, SectionBuilder};

const MAX_HEADING_CHARS: usize = 60;

pub(super) fn parse(text: &str) -> Vec<Block> {
    let mut builder = SectionBuilder::default();
    let text = text.replace("\r\n", "\n");
    for paragraph in text.split("\n\n") {
        let trimmed = paragraph.trim();
        if looks_like_heading(trimmed) {
            builder.heading(1, trimmed.trim_end_matches(':'));
            continue;
        }
        for line in trimmed.lines() {
            builder.line(line);
        }
        builder.end_paragraph();
    }
    builder.finish()
}

fn looks_like_heading(paragraph: &str) -> bool {
    !paragraph.is_empty()
        && !paragraph.contains('\n')
        && paragraph.chars().count() <= MAX_HEADING_CHARS
        && !paragraph.ends_with(['.', '!', '?', ',', ';'])
        && !paragraph.starts_with(['-', '*', '•'])
        && paragraph.chars().any(char::is_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_unpunctuated_lines_are_headings() {
        let blocks = parse(
            "Opening hours\n\nWe open at 8.\nWe close at 6.\n\nParking:\n\nBehind the building.",
        );
        assert_eq!(
            blocks,
            vec![
                Block::Section {
                    heading_path: vec!["Opening hours".into()],
                    paragraphs: vec!["We open at 8.\nWe close at 6.".into()]
                },
                Block::Section {
                    heading_path: vec!["Parking".into()],
                    paragraphs: vec!["Behind the building.".into()]
                },
            ]
        );
    }
}
