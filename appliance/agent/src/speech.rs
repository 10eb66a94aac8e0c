//! Cutting a streamed reply into speakable chunks for text-to-speech.
//!
//! TTS needs whole words and, for natural prosody, whole phrases; the caller needs the first audio
//! soon. So the first chunk ends at the first clause boundary (a comma after at least
//! [`FIRST_CHUNK_MIN_WORDS`] words), the first phrase boundary (before "for", "from", "and" …
//! after at least [`FIRST_PHRASE_MIN_WORDS`] words; before the figure that "is" or "costs" names,
//! after at least [`FIRST_FIGURE_MIN_WORDS`]) or sentence end, whichever comes first; later
//! chunks are whole sentences. A chunk ends after the boundary's punctuation and the one
//! whitespace character that follows it (or just before the word that opens the next phrase), so
//! the chunks concatenate back to exactly the streamed text.

/// Words the first chunk needs before a comma may end it ("Sure, …" alone sounds clipped).
pub const FIRST_CHUNK_MIN_WORDS: usize = 4;

/// Words the first chunk needs before it may end without punctuation, at a phrase boundary: a
/// one-sentence reply at ~20 tokens a second would otherwise keep the caller waiting for all of
/// it before the first sound.
pub const FIRST_PHRASE_MIN_WORDS: usize = 5;

/// Words the first chunk needs before it may end ahead of a figure ("A cleaning costs | $95.").
pub const FIRST_FIGURE_MIN_WORDS: usize = 3;

/// Verbs after which a figure (a price, a time, a count) may start a chunk of its own: the
/// answer's figure is said with a slight pause before it, as people read prices out. Never after
/// a preposition or "to"/"and", which would break "from 8 to 5".
pub const FIGURE_AFTER: &[&str] = &["is", "are", "was", "were", "costs", "cost", "charges"];

/// Words that open a phrase, before which the first chunk may end ("We offer whitening | for
/// $350."). Never after a number: "$4 | to $5" would break the amount. Not "to", "and" or "or":
/// they join the two ends of a range or a list ("Monday to Thursday", "Cigna and Aetna").
pub const PHRASE_STARTS: &[&str] = &[
    "but", "so", "because", "which", "who", "where", "when", "while", "if", "for", "from", "at",
    "on", "in", "with", "by", "until", "between", "after", "before", "during",
];

/// Abbreviations whose period does not end a sentence ("Dr. Lopez").
const ABBREVIATIONS: &[&str] = &[
    "dr", "mr", "mrs", "ms", "st", "prof", "jr", "sr", "no", "vs", "etc", "approx", "e.g", "i.e",
];

/// Accumulates streamed text and yields speakable chunks.
#[derive(Debug, Default)]
pub struct SpeechChunker {
    pending: String,
    chunks_out: usize,
}

impl SpeechChunker {
    /// A chunker for one reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds streamed text; returns the chunks that became complete, in order.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.pending.push_str(text);
        let mut out = Vec::new();
        while let Some(end) = self.boundary() {
            let rest = self.pending.split_off(end);
            out.push(std::mem::replace(&mut self.pending, rest));
            self.chunks_out += 1;
        }
        out
    }

    /// The rest of the reply (the model stopped mid-sentence or without final punctuation).
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        self.chunks_out += 1;
        Some(std::mem::take(&mut self.pending))
    }

    /// Byte offset just after the first boundary in `pending`, if one is complete: the
    /// punctuation must be followed by a whitespace character, which is included.
    fn boundary(&self) -> Option<usize> {
        let punctuation = self.punctuation_boundary();
        if self.chunks_out > 0 {
            return punctuation;
        }
        match (punctuation, phrase_boundary(&self.pending)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn punctuation_boundary(&self) -> Option<usize> {
        let text = &self.pending;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let &(j, next) = chars.peek()?;
            if !next.is_whitespace() {
                continue;
            }
            let end = j + next.len_utf8();
            let sentence_end = matches!(c, '.' | '!' | '?' | ';' | ':' | '…')
                && !(c == '.' && ends_with_abbreviation(&text[..i]));
            if sentence_end {
                return Some(end);
            }
            if c == ',' && self.chunks_out == 0 && words(&text[..i]) >= FIRST_CHUNK_MIN_WORDS {
                return Some(end);
            }
        }
        None
    }
}

/// Byte offset of the first word (complete: followed by whitespace) that opens a phrase after at
/// least [`FIRST_PHRASE_MIN_WORDS`] words ending in a letter.
fn phrase_boundary(text: &str) -> Option<usize> {
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    // A word still streaming counts for a figure, whose first character is all the rule needs.
    let complete = words.len();
    if let Some(s) = start {
        words.push((s, text.len()));
    }
    words.windows(2).enumerate().find_map(|(k, pair)| {
        let (prev, next) = (&text[pair[0].0..pair[0].1], &text[pair[1].0..pair[1].1]);
        let opens = k + 1 < complete && PHRASE_STARTS.contains(&next.to_lowercase().as_str());
        let after_word = prev.chars().last().is_some_and(char::is_alphabetic)
            && !prev.chars().any(|c| c.is_ascii_digit());
        let figure = next.starts_with(|c: char| c == '$' || c.is_ascii_digit())
            && FIGURE_AFTER.contains(&prev.to_lowercase().as_str());
        let phrase = k + 1 >= FIRST_PHRASE_MIN_WORDS && opens && after_word;
        (phrase || (k + 1 >= FIRST_FIGURE_MIN_WORDS && figure)).then_some(pair[1].0)
    })
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

fn ends_with_abbreviation(before_period: &str) -> bool {
    let word = before_period
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("");
    // A single capital ("J. Smith") is an initial.
    (word.len() == 1 && word.chars().all(|c| c.is_ascii_uppercase()))
        || ABBREVIATIONS.contains(&word.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(pieces: &[&str]) -> Vec<String> {
        let mut c = SpeechChunker::new();
        let mut out: Vec<String> = pieces.iter().flat_map(|p| c.push(p)).collect();
        out.extend(c.finish());
        out
    }

    #[test]
    fn first_chunk_ends_at_a_clause_later_ones_at_sentences() {
        let text = "Yes, we are open on Saturdays, from 9 am to 1 pm. Check-ups cost $65, \
                    cleanings $95. Anything else?";
        // Token-sized pieces, as the model streams them.
        let pieces: Vec<String> = text
            .split_inclusive(' ')
            .flat_map(|w| {
                let (a, b) = w.split_at(w.len() / 2);
                [a.to_owned(), b.to_owned()]
            })
            .collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let chunks = chunk(&refs);
        assert_eq!(
            chunks,
            [
                "Yes, we are open on Saturdays, ",
                "from 9 am to 1 pm. ",
                "Check-ups cost $65, cleanings $95. ",
                "Anything else?"
            ]
        );
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn no_cut_inside_numbers_abbreviations_or_words() {
        let chunks = chunk(&["Dr. Lopez bills $4.50 for it. St. Mary's is next door."]);
        assert_eq!(
            chunks,
            ["Dr. Lopez bills $4.50 for it. ", "St. Mary's is next door."]
        );
        // A short opener is not cut at its comma.
        assert_eq!(chunk(&["Sure, ", "it is."]), ["Sure, it is."]);
        // Without final punctuation the rest still comes out.
        assert_eq!(chunk(&["We open at 8"]), ["We open at 8"]);
        assert!(chunk(&[]).is_empty());
    }

    #[test]
    fn a_long_first_sentence_is_cut_before_a_phrase() {
        let pieces = [
            "Yes", ",", " we", " offer", " teeth", " whit", "ening", " for", " $", "350", ".",
        ];
        assert_eq!(
            chunk(&pieces),
            ["Yes, we offer teeth whitening ", "for $350."]
        );
        assert_eq!(
            chunk(&["We are open Monday to Friday from 8 to 5. Call us at 555."]),
            [
                "We are open Monday to Friday ",
                "from 8 to 5. ",
                "Call us at 555."
            ]
        );
        // Not inside a range or list, not after a number, not before five words, and only the
        // first chunk.
        assert_eq!(
            chunk(&["Our opening hours are Monday to Thursday, 8 to 6."]),
            ["Our opening hours are Monday to Thursday, ", "8 to 6."]
        );
        assert_eq!(
            chunk(&["It costs between 100 and 200 dollars."]),
            ["It costs between 100 and 200 dollars."]
        );
        assert_eq!(chunk(&["Call us at noon."]), ["Call us at noon."]);
        assert_eq!(
            chunk(&["Sure. We can book you in for a cleaning on Monday."]),
            ["Sure. ", "We can book you in for a cleaning on Monday."]
        );
        // A figure after "is"/"costs" starts its own chunk, given three words before it.
        assert_eq!(
            chunk(&["A check-up and cleaning costs $95."]),
            ["A check-up and cleaning costs ", "$95."]
        );
        assert_eq!(
            chunk(&["The opening hours on Saturday are 9:00 am to 1:00 pm."]),
            ["The opening hours on Saturday are ", "9:00 am to 1:00 pm."]
        );
        assert_eq!(
            chunk(&["Teeth whitening costs $350."]),
            ["Teeth whitening costs ", "$350."]
        );
        assert_eq!(chunk(&["Whitening costs $350."]), ["Whitening costs $350."]);
        assert_eq!(
            chunk(&["Our Friday hours run from 8 to 5."]),
            ["Our Friday hours run from 8 to 5."]
        );
        // "whitening" is not known complete until the next piece starts with a space.
        let mut c = SpeechChunker::new();
        assert!(c.push("We offer teeth whitening kits for").is_empty());
        assert_eq!(c.push(" $350."), ["We offer teeth whitening kits "]);
    }

    #[test]
    fn a_sentence_end_waits_for_the_following_space() {
        let mut c = SpeechChunker::new();
        assert!(c.push("It costs $4.").is_empty(), "could be $4.50");
        assert_eq!(c.push("50. Ok"), ["It costs $4.50. "]);
        assert_eq!(c.finish().as_deref(), Some("Ok"));
    }
}
