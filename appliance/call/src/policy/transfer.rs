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
    mentions(transcript, PHRASES)
}

/// Whether the transcript holds one of `phrases` as whole words ("bill" is not in "billing").
pub fn mentions<S: AsRef<str>>(transcript: &str, phrases: &[S]) -> bool {
    let text = format!(" {} ", words(transcript).join(" "));
    phrases.iter().any(|p| {
        let phrase = words(p.as_ref()).join(" ");
        !phrase.is_empty() && text.contains(&format!(" {phrase} "))
    })
}

/// A short yes ("yes please", "sure"): the answer to "shall I transfer you?", not a new question
/// that happens to start with "yes".
pub fn accepts(transcript: &str) -> bool {
    words(transcript).len() <= 4
        && super::consent::classify(transcript) == super::consent::Answer::Yes
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

    #[test]
    fn topics_match_whole_words_and_offers_are_accepted_by_a_short_yes() {
        let topics = ["billing dispute", "complaint"];
        assert!(super::mentions("I have a Billing dispute.", &topics));
        assert!(super::mentions("I'd like to make a complaint", &topics));
        assert!(!super::mentions("I have complaints about nothing", &topics));
        assert!(!super::mentions("When are you open?", &topics));
        assert!(super::accepts("Yes, please."));
        assert!(super::accepts("Sure."));
        assert!(!super::accepts("Yes, how much is a filling then?"));
        assert!(!super::accepts("No thanks."));
    }
}
