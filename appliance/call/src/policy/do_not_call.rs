//! Recognising a person who asks not to be called again. Decided here, not by the LLM: the
//! request is a legal one in most markets (do-not-call rules), so it is honoured every time it
//! is heard, and the number goes on the DND list that every campaign checks before dialling.

use super::transfer::mentions;

/// Requests in the forms people use, matched as whole words: "stop calling me" is found in
/// "please stop calling me now", but "stop calling" alone could be about anything.
const PHRASES: &[&str] = &[
    "don't call me again",
    "do not call me again",
    "don't call me anymore",
    "do not call me anymore",
    "don't call this number",
    "do not call this number",
    "never call me again",
    "don't ever call me",
    "stop calling me",
    "stop calling this number",
    "take me off your list",
    "take me off your calling list",
    "take me off the list",
    "take my number off",
    "remove me from your list",
    "remove me from your calling list",
    "remove me from the list",
    "remove my number",
    "do not call list",
    "don't call list",
];

pub fn asks(transcript: &str) -> bool {
    // Whisper writes curly apostrophes as often as straight ones.
    mentions(&transcript.replace('\u{2019}', "'"), PHRASES)
}

#[cfg(test)]
mod tests {
    use super::asks;

    #[test]
    fn requests_not_to_be_called() {
        for yes in [
            "Please don't call me again.",
            "Don\u{2019}t call me again!",
            "Can you take me off your list?",
            "I want to be on your do not call list",
            "Stop calling me, thanks.",
            "remove my number please",
        ] {
            assert!(asks(yes), "{yes}");
        }
        for no in [
            "Can you call me again tomorrow?",
            "Call me back later please.",
            "Is my number on your list?",
            "I'll stop calling the other office then.",
            "Don't call me Shirley.",
        ] {
            assert!(!asks(no), "{no}");
        }
    }
}
