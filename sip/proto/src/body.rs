//! The small bodies the UA reads itself: DTMF by INFO and message/sipfrag
//! in REFER NOTIFYs. SDP is never read here.

/// A DTMF digit from an INFO body: `application/dtmf-relay`
/// (`Signal=5\r\nDuration=160`) or `application/dtmf` (`5`).
pub(crate) fn dtmf(content_type: &str, body: &[u8]) -> Option<(char, Option<u32>)> {
    let text = std::str::from_utf8(body).ok()?;
    if content_type.eq_ignore_ascii_case("application/dtmf-relay") {
        let mut digit = None;
        let mut duration = None;
        for line in text.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "signal" => digit = dtmf_digit(value),
                "duration" => duration = value.parse().ok(),
                _ => {}
            }
        }
        Some((digit?, duration))
    } else if content_type.eq_ignore_ascii_case("application/dtmf") {
        Some((dtmf_digit(text.trim())?, None))
    } else {
        None
    }
}

/// 0–9, *, #, A–D; RFC 4733 event codes 10 and 11 as * and #.
fn dtmf_digit(s: &str) -> Option<char> {
    match s {
        "10" => return Some('*'),
        "11" => return Some('#'),
        _ => {}
    }
    let mut chars = s.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')).then_some(c)
}

/// The status code in a message/sipfrag body (RFC 3420, RFC 3515 §2.4.5):
/// its first line is a SIP status line.
pub(crate) fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?;
    let mut parts = line.split_ascii_whitespace();
    if parts.next()? != "SIP/2.0" {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..700).contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_bodies() {
        assert_eq!(
            dtmf("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', Some(160)))
        );
        assert_eq!(
            dtmf("application/dtmf-relay", b"Signal= #\r\n"),
            Some(('#', None))
        );
        assert_eq!(dtmf("application/dtmf", b"11"), Some(('#', None)));
        assert_eq!(dtmf("application/dtmf", b"x"), None);
        assert_eq!(dtmf("text/plain", b"5"), None);
    }

    #[test]
    fn sipfrag() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying"), Some(100));
        assert_eq!(sipfrag_status(b"SIP/2.0 2000 OK"), None);
        assert_eq!(sipfrag_status(b"garbage"), None);
    }
}
