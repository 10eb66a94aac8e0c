//! Character classes and small lexing helpers from RFC 3261 §25.1.

/// `token` characters: alphanumerics and `-.!%*_+`'~`.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// `word` characters (Call-ID): token plus `()<>:\"/[]?{}`.
pub(crate) fn is_word_char(b: u8) -> bool {
    is_token_char(b) || b"()<>:\\\"/[]?{}".contains(&b)
}

pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits `s` on `sep` outside double quotes and angle brackets. Used for
/// comma-separated header values and `;`-separated parameters.
pub(crate) fn split_top_level(s: &str, sep: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            if b == b'\\' {
                i += 1; // quoted-pair: skip the escaped octet
            } else if b == b'"' {
                in_quotes = false;
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b'<' {
            in_angle = true;
        } else if b == b'>' {
            in_angle = false;
        } else if b == sep && !in_angle {
            // `sep` is ASCII, so `i` is a char boundary.
            parts.push(&s[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    parts.push(&s[start.min(s.len())..]);
    parts
}

/// Reads a quoted-string at the start of `s` (which must begin with `"`).
/// Returns the unescaped content and the rest after the closing quote.
pub(crate) fn quoted_string(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.strip_prefix('"')?.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 2..])),
            '\\' => out.push(chars.next()?.1),
            '\r' | '\n' => return None,
            c => out.push(c),
        }
    }
    None
}
