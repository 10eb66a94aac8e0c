//! Turning generated token bytes into streamed text: UTF-8 reassembly across tokens and stop
//! strings that must not leak to the caller even when they arrive split over several tokens.

/// Accumulates token bytes and releases text that is complete UTF-8 and cannot be the start of a
/// stop string.
#[derive(Debug, Default)]
pub(crate) struct TextStream {
    bytes: Vec<u8>,
    /// Decoded text not yet released (may hold a stop string's prefix).
    held: String,
    stops: Vec<String>,
    /// Everything released so far.
    released: String,
}

/// What pushing a token's bytes produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// Text safe to stream now (possibly empty).
    pub text: String,
    /// A stop string was found; nothing after it will be released.
    pub stopped: bool,
}

impl TextStream {
    pub(crate) fn new(stops: &[String]) -> Self {
        TextStream {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            ..Self::default()
        }
    }

    pub(crate) fn push(&mut self, piece: &[u8]) -> Pushed {
        self.bytes.extend_from_slice(piece);
        let valid = match std::str::from_utf8(&self.bytes) {
            Ok(s) => s.len(),
            // An invalid sequence (not just an incomplete tail) will never become valid.
            Err(e) if e.error_len().is_some() => {
                let text = String::from_utf8_lossy(&self.bytes).into_owned();
                self.bytes.clear();
                self.held.push_str(&text);
                return self.release(false);
            }
            Err(e) => e.valid_up_to(),
        };
        let rest = self.bytes.split_off(valid);
        let done = std::mem::replace(&mut self.bytes, rest);
        // `done` is valid UTF-8 by construction of `valid`.
        self.held.push_str(&String::from_utf8_lossy(&done));
        self.release(false)
    }

    /// Releases everything still held (end of generation); incomplete UTF-8 becomes U+FFFD.
    pub(crate) fn finish(&mut self) -> Pushed {
        let tail = String::from_utf8_lossy(&std::mem::take(&mut self.bytes)).into_owned();
        self.held.push_str(&tail);
        self.release(true)
    }

    pub(crate) fn released(&self) -> &str {
        &self.released
    }

    fn release(&mut self, all: bool) -> Pushed {
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            self.held.truncate(at);
            let text = std::mem::take(&mut self.held);
            self.released.push_str(&text);
            return Pushed {
                text,
                stopped: true,
            };
        }
        // Hold back the longest suffix that is a proper prefix of some stop string.
        let keep = if all {
            0
        } else {
            self.stops
                .iter()
                .map(|s| {
                    (1..s.len())
                        .rev()
                        .find(|&n| s.is_char_boundary(n) && self.held.ends_with(&s[..n]))
                        .unwrap_or(0)
                })
                .max()
                .unwrap_or(0)
        };
        let cut = self.held.len() - keep;
        let text: String = self.held.drain(..cut).collect();
        self.released.push_str(&text);
        Pushed {
            text,
            stopped: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_utf8_split_across_tokens() {
        let mut s = TextStream::new(&[]);
        let euro = "€".as_bytes();
        assert_eq!(s.push(&euro[..1]).text, "");
        assert_eq!(s.push(&euro[1..]).text, "€");
        assert_eq!(s.released(), "€");
    }

    #[test]
    fn stop_string_split_over_tokens_is_not_leaked() {
        let mut s = TextStream::new(&["\nUser:".to_owned()]);
        assert_eq!(s.push(b"Hello").text, "Hello");
        assert_eq!(s.push(b"\nUs").text, "");
        let p = s.push(b"er: hi");
        assert_eq!(
            p,
            Pushed {
                text: String::new(),
                stopped: true
            }
        );
        assert_eq!(s.released(), "Hello");
    }

    #[test]
    fn held_prefix_is_released_when_it_diverges_or_ends() {
        let mut s = TextStream::new(&["###".to_owned()]);
        assert_eq!(s.push(b"a #").text, "a ");
        assert_eq!(s.push(b"1").text, "#1");
        assert_eq!(s.push(b" ##").text, " ");
        assert_eq!(s.finish().text, "##");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut s = TextStream::new(&[]);
        assert_eq!(s.push(&[0xff, b'a']).text, "\u{fffd}a");
    }
}
