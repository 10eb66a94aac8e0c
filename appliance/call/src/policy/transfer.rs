//! Recognising a caller who asks for a human. Decided here, not by the LLM: a request for a person
//! is always honoured.

use super::profanity::words;

const PHRASES: &[&str] = &[
    "speak to a person",
    "speak to a human",
    "talk to a person",
    "talk to a human",
    "speak to someone",
    "talk to someone",
    "real person",
    "human being",
    "speak to an agent",
    "talk to an agent",
    "speak to a representative",
    "talk to a representative",
    "operator",
    "representative",
    "customer service",
    "live agent",
    "transfer me",
    "put me through",
];

pub fn wants_human(transcript: &str) -> bool {
    let text = format!(" {} ", words(transcript).join(" "));
    PHRASES.iter().any(|p| text.contains(&format!(" {p} ")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn requests_for_a_person() {
        assert!(super::wants_human("Can I speak to a person please?"));
        assert!(super::wants_human("Operator!"));
        assert!(super::wants_human("I want a real person."));
        assert!(!super::wants_human("When are you open?"));
        assert!(!super::wants_human("I personally prefer mornings"));
    }
}
