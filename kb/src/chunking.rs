//! Splitting [`Block`]s into retrieval-sized chunks.
//!
//! Rules, in order:
//! - a chunk never spans two sections: headings are hard boundaries, and every chunk carries its
//!   section's heading path;
//! - paragraphs are packed whole up to [`TARGET_CHARS`] (≈ 250 tokens); a paragraph longer than
//!   [`MAX_CHARS`] is split at sentence ends, a sentence longer than that at whitespace;
//! - consecutive chunks of one section overlap by up to [`OVERLAP_CHARS`] (≈ 15 %), whole
//!   sentences where they fit, so a fact cut at a boundary is still whole in one chunk;
//! - an FAQ row is exactly one chunk (question and answer together).

use crate::ingest::Block;

/// Preferred chunk length in characters (≈ 4 characters per token).
pub const TARGET_CHARS: usize = 1000;
/// Longest piece packed whole; longer paragraphs and sentences are split.
pub const MAX_CHARS: usize = 1200;
/// Most characters repeated from the previous chunk of the same section.
pub const OVERLAP_CHARS: usize = 150;

/// A chunk before it has an id: what [`chunk`] produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// `"Prices > Cleaning"`; empty before the first heading. `"FAQ"` for FAQ rows.
    pub heading_path: String,
    /// The chunk's text (for an FAQ row: `"Q: …\nA: …"`).
    pub text: String,
    /// Byte offset in `text` where content not already in the previous chunk begins (0 for the
    /// first chunk of a section). Lets the whole knowledge be reassembled without repeats.
    pub fresh_from: usize,
}

/// Splits parsed blocks into pieces, in document order.
pub fn chunk(blocks: &[Block]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    for block in blocks {
        match block {
            Block::Faq { question, answer } => pieces.push(Piece {
                heading_path: "FAQ".into(),
                text: format!("Q: {question}\nA: {answer}"),
                fresh_from: 0,
            }),
            Block::Section {
                heading_path,
                paragraphs,
            } => {
                let heading_path = heading_path.join(" > ");
                pack(&heading_path, paragraphs, &mut pieces);
            }
        }
    }
    pieces
}

/// Packs one section's paragraphs into pieces.
fn pack(heading_path: &str, paragraphs: &[String], out: &mut Vec<Piece>) {
    // Units are paragraphs, or sentences of an over-long paragraph; `joiner` is what precedes them.
    let mut units: Vec<(&str, &str)> = Vec::new();
    for paragraph in paragraphs {
        if paragraph.len() <= MAX_CHARS {
            units.push(("\n\n", paragraph));
        } else {
            for (i, piece) in split_long(paragraph).into_iter().enumerate() {
                units.push((if i == 0 { "\n\n" } else { " " }, piece));
            }
        }
    }
    let mut text = String::new();
    let mut fresh_from = 0;
    let mut in_chunk: Vec<&str> = Vec::new(); // the units of the open chunk, for the overlap
    for (joiner, unit) in units {
        let fresh_len = text.len() - fresh_from;
        if fresh_len > 0 && text.len() + joiner.len() + unit.len() > TARGET_CHARS {
            out.push(Piece {
                heading_path: heading_path.to_owned(),
                text: text.clone(),
                fresh_from,
            });
            text = overlap(&in_chunk);
            in_chunk.clear();
            fresh_from = text.len();
            if !text.is_empty() {
                text.push(' ');
                fresh_from += 1;
            }
        }
        if text.len() > fresh_from || (fresh_from == 0 && !text.is_empty()) {
            text.push_str(joiner);
        }
        text.push_str(unit);
        in_chunk.push(unit);
    }
    if text.len() > fresh_from {
        out.push(Piece {
            heading_path: heading_path.to_owned(),
            text,
            fresh_from,
        });
    }
}

/// The tail of the closed chunk to repeat: trailing whole sentences up to [`OVERLAP_CHARS`], or
/// nothing when even the last sentence is longer (repeating half a sentence helps no one).
fn overlap(units: &[&str]) -> String {
    let Some(last) = units.last() else {
        return String::new();
    };
    let sentences = sentences(last);
    let mut taken = 0;
    let mut start = last.len();
    for s in sentences.iter().rev() {
        if taken + s.len() > OVERLAP_CHARS {
            break;
        }
        taken += s.len();
        start = s.as_ptr() as usize - last.as_ptr() as usize;
    }
    last[start..].trim().to_owned()
}

/// Splits an over-long paragraph into pieces of at most [`MAX_CHARS`], at sentence ends where
/// possible.
fn split_long(paragraph: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    for sentence in sentences(paragraph) {
        let mut rest = sentence.trim();
        while rest.len() > MAX_CHARS {
            let mut cut = floor_char_boundary(rest, MAX_CHARS);
            if let Some(space) = rest[..cut].rfind(char::is_whitespace) {
                if space > 0 {
                    cut = space;
                }
            }
            pieces.push(rest[..cut].trim());
            rest = rest[cut..].trim_start();
        }
        if !rest.is_empty() {
            pieces.push(rest);
        }
    }
    pieces
}

/// Sentences of `text` as subslices (terminator and following whitespace included).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at_end = matches!(c, '.' | '!' | '?' | '\n')
            && chars.peek().is_none_or(|&(_, next)| next.is_whitespace());
        if at_end {
            let mut end = i + c.len_utf8();
            while let Some(&(j, w)) = chars.peek() {
                if !w.is_whitespace() {
                    break;
                }
                end = j + w.len_utf8();
                chars.next();
            }
            out.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(paragraphs: Vec<String>) -> Block {
        Block::Section {
            heading_path: vec!["Prices".into(), "Cleaning".into()],
            paragraphs,
        }
    }

    #[test]
    fn small_section_is_one_chunk() {
        let pieces = chunk(&[section(vec!["One.".into(), "Two.".into()])]);
        assert_eq!(
            pieces,
            vec![Piece {
                heading_path: "Prices > Cleaning".into(),
                text: "One.\n\nTwo.".into(),
                fresh_from: 0
            }]
        );
    }

    #[test]
    fn long_sections_split_with_sentence_overlap_and_reassemble() {
        let paragraphs: Vec<String> = (0..30)
            .map(|p| {
                (0..4)
                    .map(|s| format!("Paragraph {p} sentence {s} says something useful."))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let pieces = chunk(&[section(paragraphs.clone())]);
        assert!(pieces.len() > 3);
        for (i, piece) in pieces.iter().enumerate() {
            assert!(
                piece.text.len() <= MAX_CHARS + OVERLAP_CHARS + 1,
                "{}",
                piece.text.len()
            );
            if i > 0 {
                assert!(piece.fresh_from > 0 && piece.fresh_from <= OVERLAP_CHARS + 1);
                let repeated = piece.text[..piece.fresh_from].trim();
                assert!(pieces[i - 1].text.ends_with(repeated), "{repeated:?}");
            }
        }
        let fresh: String = pieces
            .iter()
            .map(|p| p.text[p.fresh_from..].to_owned())
            .collect::<Vec<_>>()
            .join("\n\n");
        assert_eq!(fresh, paragraphs.join("\n\n"));
    }

    #[test]
    fn over_long_paragraph_is_split_even_without_sentences() {
        let word_salad = "word ".repeat(1000);
        let pieces = chunk(&[section(vec![word_salad])]);
        assert!(pieces.len() >= 4);
        assert!(pieces
            .iter()
            .all(|p| p.text.len() <= MAX_CHARS + OVERLAP_CHARS + 1));
        let multibyte = "é".repeat(3000);
        assert!(!chunk(&[section(vec![multibyte])]).is_empty());
    }

    #[test]
    fn faq_rows_are_one_chunk_each() {
        let pieces = chunk(&[Block::Faq {
            question: "Q1?".into(),
            answer: "A1.".into(),
        }]);
        assert_eq!(pieces[0].text, "Q: Q1?\nA: A1.");
    }
}
