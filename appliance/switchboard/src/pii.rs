//! Personal data in logs: phone numbers and transcripts are wrapped in [`Pii`], which always
//! prints redacted. The call record and its transcript (behind the API's roles) are where an
//! operator reads them; a log line is read by whoever reads the journal.

use std::fmt;

/// A value that is personal data: `Display`/`Debug` print a redacted form.
#[derive(Clone, PartialEq, Eq)]
pub struct Pii<T>(pub T);

impl<T: AsRef<str>> fmt::Display for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_ref();
        // Keep the last two digits of a number so operators can tell calls apart; hide text.
        let digits: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
        let number_like = s
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
        if number_like && digits.len() >= 6 {
            write!(
                f,
                "…{}{}",
                digits[digits.len() - 2],
                digits[digits.len() - 1]
            )
        } else {
            write!(f, "[redacted {} chars]", s.chars().count())
        }
    }
}

impl<T: AsRef<str>> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Pii;

    #[test]
    fn numbers_and_text_are_redacted() {
        assert_eq!(Pii("+1 555 0100 1234").to_string(), "…34");
        assert_eq!(Pii("my card is 4111").to_string(), "[redacted 15 chars]");
        assert!(!format!("{:?}", Pii("+15550100")).contains("555"));
    }
}
