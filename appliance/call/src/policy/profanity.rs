//! Abusive-language detection: a maintained word list, matched on word boundaries so that
//! "Scunthorpe" or "class" never trip it, plus per-agent extra words.

/// Words that end a call. Lower case; matched as whole words (and simple plural/-ing forms).
const BUILTIN: &[&str] = &[
    "fuck",
    "fucking",
    "fucker",
    "motherfucker",
    "shit",
    "bullshit",
    "bitch",
    "bastard",
    "asshole",
    "dickhead",
    "cunt",
    "twat",
    "wanker",
    "prick",
    "slut",
    "whore",
    "retard",
    "faggot",
    "nigger",
];

#[derive(Clone, Debug)]
pub struct ProfanityFilter {
    words: Vec<String>,
}

impl Default for ProfanityFilter {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl ProfanityFilter {
    /// The built-in list plus an agent's `extra` words.
    pub fn new(extra: &[String]) -> Self {
        let mut words: Vec<String> = BUILTIN.iter().map(|w| w.to_string()).collect();
        words.extend(
            extra
                .iter()
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty()),
        );
        ProfanityFilter { words }
    }

    /// The first listed word found in `text`, if any; [`MASKED`] for a word the transcriber
    /// itself masked.
    pub fn find<'a>(&'a self, text: &str) -> Option<&'a str> {
        let tokens = words(text);
        self.words
            .iter()
            .find(|w| {
                let parts: Vec<&str> = w.split_whitespace().collect();
                tokens.windows(parts.len()).any(|win| {
                    win.iter()
                        .zip(&parts)
                        .all(|(t, p)| t == p || t.strip_suffix('s') == Some(p))
                })
            })
            .map(String::as_str)
            .or_else(|| masked(text).then_some(MASKED))
    }
}

/// What [`ProfanityFilter::find`] names a masked word.
pub const MASKED: &str = "a word the transcriber masked";

/// Whether `text` holds a word spelled with asterisks for letters ("f***ing", "bulls**t",
/// "s***"): Whisper writes a profanity it heard that way, so the mask itself says what was said.
fn masked(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || ",.!?;:\"()".contains(c))
        .any(|w| {
            w.chars().any(char::is_alphabetic)
                && w.chars().filter(|&c| c == '*').count() >= 2
                && w.chars()
                    .all(|c| c.is_alphabetic() || c == '*' || c == '\'')
        })
}

/// Lower-cased words: letters, digits and apostrophes; everything else separates.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only() {
        let f = ProfanityFilter::default();
        assert_eq!(f.find("This is fucking useless."), Some("fucking"));
        assert_eq!(f.find("You BASTARDS!"), Some("bastard"));
        assert_eq!(
            f.find("I live in Scunthorpe, near the class shitake farm"),
            None
        );
        assert_eq!(f.find("Could I book a cleaning?"), None);
    }

    #[test]
    fn a_word_the_transcriber_masked_is_one_it_heard_as_abuse() {
        let f = ProfanityFilter::default();
        for said in [
            "This is bulls**t.",
            "You f***ing idiot",
            "S***, I missed it",
            "f***",
        ] {
            assert_eq!(f.find(said), Some(MASKED), "{said}");
        }
        // Asterisks that spell no word: a price read out, a footnote, a rating.
        for fine in ["It costs $5 * 3", "Read the note*", "A **** rating", "2**8"] {
            assert_eq!(f.find(fine), None, "{fine}");
        }
    }

    #[test]
    fn agent_words_are_added() {
        let f = ProfanityFilter::new(&["Muppet".into(), "rip off".into()]);
        assert_eq!(f.find("you muppet"), Some("muppet"));
        assert_eq!(f.find("this is a rip off"), Some("rip off"));
        assert_eq!(f.find("a ripe offer"), None);
    }
}
