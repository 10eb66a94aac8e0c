//! Splitting reply text into sentences (the unit of synthesis and streaming) and sentences into
//! clauses (the unit espeak-ng phonemizes, each ending in the punctuation Piper was trained on).

/// Words after which a period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "vs", "etc", "e.g", "i.e", "no", "ave",
    "apt",
];

/// Splits `text` into trimmed, non-empty sentences, each keeping its terminator (`.`, `?`, `!`).
/// A terminator ends a sentence only when followed by whitespace or the end, and a period not
/// after a known abbreviation or a single capital letter (an initial).
pub(crate) fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        if !matches!(c, '.' | '?' | '!') {
            continue;
        }
        let next = chars.get(i + 1).map(|&(_, n)| n);
        if next.is_some_and(|n| !n.is_whitespace()) {
            continue; // "3.5", "e.g.", "?!" runs
        }
        if c == '.' {
            let word = text[start..at].split_whitespace().last().unwrap_or("");
            let lower = word.to_lowercase();
            let initial = word.len() == 1 && word.chars().all(|w| w.is_uppercase());
            if ABBREVIATIONS.contains(&lower.as_str()) || initial {
                continue;
            }
        }
        let end = at + c.len_utf8();
        push_trimmed(&mut out, &text[start..end]);
        start = end;
    }
    push_trimmed(&mut out, &text[start..]);
    out
}

fn push_trimmed(out: &mut Vec<String>, s: &str) {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().any(char::is_alphanumeric) {
        out.push(s);
    }
}

/// A clause and the punctuation that ended it (kept in the phoneme string, as Piper does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clause {
    pub text: String,
    pub terminator: Option<char>,
}

/// Splits a sentence at `,`, `;`, `:`, `.`, `?`, `!` followed by whitespace or the end.
pub(crate) fn clauses(sentence: &str) -> Vec<Clause> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = sentence.chars().peekable();
    while let Some(c) = chars.next() {
        let boundary = matches!(c, ',' | ';' | ':' | '.' | '?' | '!')
            && chars.peek().is_none_or(|n| n.is_whitespace());
        if boundary {
            if current.chars().any(char::is_alphanumeric) {
                out.push(Clause {
                    text: current.trim().to_owned(),
                    terminator: Some(c),
                });
            }
            current.clear();
        } else {
            current.push(c);
        }
    }
    if current.chars().any(char::is_alphanumeric) {
        out.push(Clause {
            text: current.trim().to_owned(),
            terminator: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sentences_but_not_numbers_or_abbreviations() {
        assert_eq!(
            sentences("Sure. Dr. Smith is in at 3.30 today! Is that OK?  Bye"),
            vec![
                "Sure.",
                "Dr. Smith is in at 3.30 today!",
                "Is that OK?",
                "Bye"
            ]
        );
        assert_eq!(sentences("  "), Vec::<String>::new());
        assert_eq!(
            sentences("J. R. Smith called."),
            vec!["J. R. Smith called."]
        );
    }

    #[test]
    fn clauses_keep_their_punctuation() {
        let c = clauses("Hello, thank you for calling: it's 3:30.");
        assert_eq!(
            c,
            vec![
                Clause {
                    text: "Hello".into(),
                    terminator: Some(',')
                },
                Clause {
                    text: "thank you for calling".into(),
                    terminator: Some(':')
                },
                Clause {
                    text: "it's 3:30".into(),
                    terminator: Some('.')
                },
            ]
        );
        assert_eq!(clauses("no stop")[0].terminator, None);
    }
}
