//! Splitting [`Block`]s into facts: the units the knowledge is indexed, retrieved and grounded by.
//!
//! A caller's question is answered by one fact (a price, an opening time, a rule), so the
//! retrieval unit is a fact, not a page: a question's note in the prompt is tens of tokens, the
//! relevance of a hit is judged on the fact itself, and the grounding check knows which fact a
//! figure came from. Rules, in order:
//! - a fact never spans two sections: headings are hard boundaries, and every fact carries its
//!   section's heading path;
//! - a list item is one fact; a table row is one fact, its cells named by the header row
//!   (`Room: Deluxe; Weekday: $189`); a line ending in `:` that introduces a list is repeated
//!   before each of its items (`Prices for members: Adult: $20`), marked as not fresh after the
//!   first so the whole knowledge can be reassembled without repeats;
//! - prose is split at sentence ends and whole sentences are grouped up to [`FACT_CHARS`]; a
//!   sentence longer than [`MAX_CHARS`] is split at whitespace;
//! - an FAQ row is exactly one fact (question and answer together).

use crate::ingest::Block;

/// Prose sentences are grouped into one fact up to this many characters (≈ 70 tokens).
pub const FACT_CHARS: usize = 280;
/// Longest piece kept whole; a longer sentence is split at whitespace.
pub const MAX_CHARS: usize = 600;

/// A fact before it has an id: what [`chunk`] produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// `"Prices > Cleaning"`; empty before the first heading. `"FAQ"` for FAQ rows.
    pub heading_path: String,
    /// The fact's text (for an FAQ row: `"Q: …\nA: …"`).
    pub text: String,
    /// Byte offset in `text` where content not already in the previous piece begins: after a
    /// repeated list lead-in, else 0. Lets the whole knowledge be reassembled without repeats.
    pub fresh_from: usize,
}

/// Splits parsed blocks into facts, in document order.
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
            } => Section::new(&heading_path.join(" > "), &mut pieces).split(paragraphs),
        }
    }
    pieces
}

/// One section's lines on their way to facts. A list or table may span paragraphs (HTML makes
/// each `<li>` and `<tr>` one); prose does not.
struct Section<'a> {
    heading_path: &'a str,
    out: &'a mut Vec<Piece>,
    /// Consecutive prose lines (a hard-wrapped paragraph), not yet split into sentences.
    prose: Vec<&'a str>,
    /// The line that introduced the current list, and whether it was already said once.
    lead_in: Option<(String, bool)>,
    /// The current list's marker kind (`-`, `*`, `1.`…): a list of another kind is another list.
    marker: Option<char>,
    /// The current table's header cells.
    header: Option<Vec<String>>,
}

impl<'a> Section<'a> {
    fn new(heading_path: &'a str, out: &'a mut Vec<Piece>) -> Self {
        Section {
            heading_path,
            out,
            prose: Vec::new(),
            lead_in: None,
            marker: None,
            header: None,
        }
    }

    fn split(mut self, paragraphs: &'a [String]) {
        // `None` marks a paragraph break.
        let lines: Vec<Option<&str>> = paragraphs
            .iter()
            .flat_map(|p| {
                p.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(Some)
                    .chain([None])
            })
            .collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(line) = *line else {
                self.flush_prose();
                continue;
            };
            let next_is_item = lines[i + 1..]
                .iter()
                .flatten()
                .next()
                .is_some_and(|n| list_item(n).is_some() || n.starts_with('|'));
            if line.starts_with('|') {
                self.flush_prose();
                self.table_row(line);
            } else if let Some(item) = list_item(line) {
                self.flush_prose();
                self.header = None;
                let marker = line
                    .chars()
                    .next()
                    .map(|c| if c.is_ascii_digit() { '1' } else { c });
                if self.marker.is_some() && self.marker != marker {
                    self.lead_in = None;
                }
                self.marker = marker;
                self.item(item);
            } else if line.ends_with(':') && next_is_item {
                self.flush_prose();
                self.header = None;
                self.lead_in = Some((line.to_string(), false));
                self.marker = None;
            } else {
                self.header = None;
                self.lead_in = None;
                self.prose.push(line);
            }
        }
        self.flush_prose();
    }

    fn table_row(&mut self, line: &str) {
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        let separator = cells
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|x| matches!(x, '-' | ':' | ' ')));
        if separator {
            return;
        }
        let Some(header) = &self.header else {
            self.header = Some(cells);
            return;
        };
        let named: Vec<String> = cells
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.is_empty())
            .map(|(i, c)| match header.get(i).filter(|h| !h.is_empty()) {
                Some(h) => format!("{h}: {c}"),
                None => c.clone(),
            })
            .collect();
        if !named.is_empty() {
            self.item(&named.join("; "));
        }
    }

    /// A list item or table row: one fact (or a few, if very long), after the list's lead-in.
    fn item(&mut self, text: &str) {
        for group in group_sentences(text) {
            let (text, fresh_from) = match &mut self.lead_in {
                Some((lead, said)) => {
                    let fresh_from = if *said { lead.len() + 1 } else { 0 };
                    *said = true;
                    (format!("{lead} {group}"), fresh_from)
                }
                None => (group.to_string(), 0),
            };
            self.push(text, fresh_from);
        }
    }

    fn flush_prose(&mut self) {
        if self.prose.is_empty() {
            return;
        }
        // A line break ends a sentence unless the next line goes on in lower case (hard wrap).
        let text = std::mem::take(&mut self.prose).join("\n");
        for group in group_sentences(&text) {
            self.push(group.to_string(), 0);
        }
    }

    fn push(&mut self, text: String, fresh_from: usize) {
        self.out.push(Piece {
            heading_path: self.heading_path.to_owned(),
            text,
            fresh_from,
        });
    }
}

/// The text of a list item line (`- x`, `* x`, `+ x`, `1. x`, `1) x`), without its marker.
fn list_item(line: &str) -> Option<&str> {
    if let Some(rest) = line
        .strip_prefix("- ")
        .or_else(|| line.strip_prefix("* "))
        .or_else(|| line.strip_prefix("+ "))
        .or_else(|| line.strip_prefix("• "))
    {
        return Some(rest.trim());
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    let rest = &line[digits..];
    (digits > 0 && digits <= 3)
        .then(|| rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")))
        .flatten()
        .map(str::trim)
}

/// Whole sentences of `text` grouped up to [`FACT_CHARS`]; a sentence over [`MAX_CHARS`] is split
/// at whitespace.
fn group_sentences(text: &str) -> Vec<String> {
    let mut groups = Vec::new();
    let mut current = String::new();
    for sentence in sentences(text) {
        for piece in split_long(sentence.trim()) {
            if !current.is_empty() && current.len() + 1 + piece.len() > FACT_CHARS {
                groups.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(piece);
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// `sentence` in pieces of at most [`MAX_CHARS`], cut at whitespace where possible.
fn split_long(sentence: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = sentence;
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
    pieces
}
/// Sentences of `text` as subslices (terminator and following whitespace included). A full stop
/// or line break followed by a lower-case word ("9 a.m. to 5") does not end a sentence.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at_end = c == '\n'
            || (matches!(c, '.' | '!' | '?')
                && chars.peek().is_none_or(|&(_, next)| next.is_whitespace()));
        if at_end {
            let mut end = i + c.len_utf8();
            while let Some(&(j, w)) = chars.peek() {
                if !w.is_whitespace() {
                    break;
                }
                end = j + w.len_utf8();
                chars.next();
            }
            let continues = text[end..].chars().next().is_some_and(char::is_lowercase);
            if !continues {
                out.push(&text[start..end]);
                start = end;
            }
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

    fn section(paragraphs: &[&str]) -> Block {
        Block::Section {
            heading_path: vec!["Prices".into(), "Cleaning".into()],
            paragraphs: paragraphs.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn texts(pieces: &[Piece]) -> Vec<&str> {
        pieces.iter().map(|p| p.text.as_str()).collect()
    }

    #[test]
    fn list_items_are_facts_under_their_lead_in() {
        let pieces = chunk(&[section(&[
            "We open at 9 a.m. on weekdays.",
            "Prices for members:\n- Adult: $20\n- Child: $10",
            "1. Call us.\n2) Bring ID.",
        ])]);
        assert_eq!(
            texts(&pieces),
            [
                "We open at 9 a.m. on weekdays.",
                "Prices for members: Adult: $20",
                "Prices for members: Child: $10",
                "Call us.",
                "Bring ID."
            ]
        );
        assert!(pieces.iter().all(|p| p.heading_path == "Prices > Cleaning"));
        // The lead-in is fresh once: reassembled, it is said once.
        assert_eq!(pieces[1].fresh_from, 0);
        assert_eq!(&pieces[2].text[pieces[2].fresh_from..], "Child: $10");
    }

    #[test]
    fn table_rows_name_their_cells() {
        let pieces = chunk(&[section(&[
            "| Room | Weekday | Weekend |\n|---|:---:|---|\n| Deluxe | $189 | $219 |\n| Suite |  | $299 |",
        ])]);
        assert_eq!(
            texts(&pieces),
            [
                "Room: Deluxe; Weekday: $189; Weekend: $219",
                "Room: Suite; Weekend: $299"
            ]
        );
    }

    #[test]
    fn prose_is_grouped_in_whole_sentences() {
        let paragraph: String = (0..20)
            .map(|s| format!("Sentence {s} says something useful about the business."))
            .collect::<Vec<_>>()
            .join(" ");
        let pieces = chunk(&[section(&[&paragraph])]);
        assert!(pieces.len() > 3);
        for piece in &pieces {
            assert!(piece.text.len() <= FACT_CHARS, "{}", piece.text.len());
            assert!(piece.text.starts_with("Sentence") && piece.text.ends_with('.'));
        }
        assert_eq!(texts(&pieces).join(" "), paragraph);
    }

    #[test]
    fn over_long_sentence_is_split_even_without_full_stops() {
        let word_salad = "word ".repeat(1000);
        let pieces = chunk(&[section(&[&word_salad])]);
        assert!(pieces.len() >= 8);
        assert!(pieces.iter().all(|p| p.text.len() <= MAX_CHARS));
        let multibyte = "é".repeat(3000);
        assert!(!chunk(&[section(&[&multibyte])]).is_empty());
    }

    #[test]
    fn faq_rows_are_one_fact_each() {
        let pieces = chunk(&[Block::Faq {
            question: "Q1?".into(),
            answer: "A1.".into(),
        }]);
        assert_eq!(pieces[0].text, "Q: Q1?\nA: A1.");
    }
}
