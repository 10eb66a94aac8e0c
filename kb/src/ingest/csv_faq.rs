//! CSV FAQ: a header row naming a question and an answer column (`question`/`q`/`frage`,
//! `answer`/`a`/`antwort`, case-insensitive); without recognisable headers, the first two columns.
//! Every row becomes one [`Block::Faq`]; rows with an empty question or answer are skipped.

use std::path::Path;

use super::{collapse_whitespace, Block};
use crate::error::{Error, Result};

pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<Block>> {
    let unreadable = |reason: String| Error::Unreadable {
        path: path.to_owned(),
        format: "csv",
        reason,
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| unreadable(e.to_string()))?
        .clone();
    let find = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.contains(&h.trim().to_lowercase().as_str()))
    };
    let (q, a, skip_header) = match (
        find(&["question", "q", "frage"]),
        find(&["answer", "a", "antwort"]),
    ) {
        (Some(q), Some(a)) => (q, a, true),
        _ if headers.len() >= 2 => (0, 1, false),
        _ => return Err(unreadable("needs a question and an answer column".into())),
    };
    let mut blocks = Vec::new();
    if !skip_header {
        push(&mut blocks, headers.get(q), headers.get(a));
    }
    for (row, record) in reader.records().enumerate() {
        // +2: 1-based, after the header line.
        let record = record.map_err(|e| unreadable(format!("row {}: {e}", row + 2)))?;
        push(&mut blocks, record.get(q), record.get(a));
    }
    Ok(blocks)
}

fn push(blocks: &mut Vec<Block>, question: Option<&str>, answer: Option<&str>) {
    let question = collapse_whitespace(question.unwrap_or(""));
    let answer = answer.unwrap_or("").trim().to_owned();
    if !question.is_empty() && !answer.is_empty() {
        blocks.push(Block::Faq { question, answer });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_columns_in_any_order() {
        let csv = "Answer,Question\n\"Yes, we do.\",Do you take cards?\n,empty answer\n";
        assert_eq!(
            parse(Path::new("faq.csv"), csv.as_bytes()).unwrap(),
            vec![Block::Faq {
                question: "Do you take cards?".into(),
                answer: "Yes, we do.".into()
            }]
        );
    }
}
