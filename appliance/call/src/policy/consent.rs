//! Reading the caller's answer to "may we record this call?". Deliberately conservative: only a
//! clear yes counts as consent; anything ambiguous is asked once more, then treated as no.

use super::profanity::words;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    Unclear,
}

const YES: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "sure",
    "ok",
    "okay",
    "fine",
    "agree",
    "consent",
    "go ahead",
    "of course",
    "certainly",
    "absolutely",
    "please do",
    "that's fine",
    "no problem",
];
const NO: &[&str] = &[
    "no",
    "nope",
    "nah",
    "don't",
    "do not",
    "dont",
    "not",
    "disagree",
    "decline",
    "rather not",
    "refuse",
    "never",
];

/// Classifies a transcript. A negation anywhere wins over a yes ("yes, I mean no" is no), except
/// in the few phrases where a negative word means yes ("no problem", "I don't mind").
pub fn classify(transcript: &str) -> Answer {
    let tokens = words(transcript);
    let text = tokens.join(" ");
    let has = |list: &[&str]| {
        list.iter().any(|p| {
            let parts: Vec<&str> = p.split(' ').collect();
            tokens
                .windows(parts.len())
                .any(|w| w.iter().zip(&parts).all(|(t, q)| t == q))
        })
    };
    // Phrases that contain a negative word but mean yes.
    let yes_despite_negation = ["no problem", "don't mind", "do not mind", "not a problem"]
        .iter()
        .any(|p| text.contains(p));
    let yes = has(YES) || yes_despite_negation;
    let no = has(NO) && !yes_despite_negation;
    match (yes, no) {
        (true, false) => Answer::Yes,
        (_, true) => Answer::No,
        (false, false) => Answer::Unclear,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        for t in [
            "Yes.",
            "Yeah sure",
            "OK",
            "That's fine.",
            "Go ahead",
            "No problem",
            "I don't mind",
        ] {
            assert_eq!(classify(t), Answer::Yes, "{t}");
        }
        for t in [
            "No.",
            "No thanks",
            "I'd rather not",
            "Please don't",
            "Yes, I mean no",
        ] {
            assert_eq!(classify(t), Answer::No, "{t}");
        }
        for t in [
            "",
            "What?",
            "Can you repeat that",
            "I want to book a cleaning",
        ] {
            assert_eq!(classify(t), Answer::Unclear, "{t}");
        }
    }
}
