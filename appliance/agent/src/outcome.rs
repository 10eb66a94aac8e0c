//! The end-of-call record the model extracts, constrained by a grammar to exactly this shape.

use models_api::Constraint;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// What a call came to, for the call record and the caller's memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// One sentence: what the caller wanted and what was agreed.
    pub summary: String,
    /// The caller's reason for calling, in a few words.
    pub intent: String,
    /// The caller asked to be called back.
    pub callback_requested: bool,
    /// `resolved`, `transferred`, `callback` or `unresolved`.
    pub disposition: String,
    /// The name the caller gave, if any.
    pub caller_name: Option<String>,
}

/// The dispositions the grammar allows.
pub const DISPOSITIONS: &[&str] = &["resolved", "transferred", "callback", "unresolved"];

/// Keys in a fixed order, bounded strings (an unbounded one lets a small model ramble until
/// the token limit and leave the object unclosed).
fn grammar() -> String {
    let dispositions = DISPOSITIONS
        .iter()
        .map(|d| format!("\"\\\"{d}\\\"\""))
        .collect::<Vec<_>>()
        .join(" | ");
    format!(
        r#"root ::= "{{" ws "\"summary\":" ws text "," ws "\"intent\":" ws short "," ws "\"callback_requested\":" ws bool "," ws "\"disposition\":" ws disposition "," ws "\"caller_name\":" ws name ws "}}"
text ::= "\"" char{{1,300}} "\""
short ::= "\"" char{{1,60}} "\""
name ::= "null" | "\"" char{{1,60}} "\""
char ::= [^"\\\x7F\x00-\x1F]
bool ::= "true" | "false"
disposition ::= {dispositions}
ws ::= [ \n]{{0,2}}
"#
    )
}

pub(crate) fn constraint() -> Constraint {
    Constraint::Gbnf {
        grammar: grammar(),
        root: "root".into(),
    }
}

pub(crate) fn parse(text: &str) -> Result<Outcome, Error> {
    let mut outcome: Outcome = serde_json::from_str(text.trim()).map_err(|e| Error::Outcome {
        reason: e.to_string(),
        text: text.to_owned(),
    })?;
    outcome.summary = outcome.summary.trim().to_owned();
    outcome.intent = outcome.intent.trim().to_owned();
    outcome.caller_name = outcome
        .caller_name
        .map(|n| n.trim().to_owned())
        .filter(|n| {
            !n.is_empty() && !n.eq_ignore_ascii_case("null") && !n.eq_ignore_ascii_case("unknown")
        });
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_grammar_shape_and_rejects_others() {
        let o = parse(r#"{"summary": "Asked about prices.", "intent": "prices", "callback_requested": false, "disposition": "resolved", "caller_name": " Ann "}"#).unwrap();
        assert_eq!(o.caller_name.as_deref(), Some("Ann"));
        assert!(!o.callback_requested);
        let o = parse(r#"{"summary":"x","intent":"y","callback_requested":true,"disposition":"callback","caller_name":null}"#).unwrap();
        assert_eq!(o.caller_name, None);
        assert!(matches!(
            parse(r#"{"summary": "cut"#),
            Err(Error::Outcome { .. })
        ));
    }

    #[test]
    fn grammar_lists_every_disposition() {
        let g = grammar();
        for d in DISPOSITIONS {
            assert!(g.contains(&format!("\"\\\"{d}\\\"\"")), "{g}");
        }
    }
}
