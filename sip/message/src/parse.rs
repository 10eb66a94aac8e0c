//! From bytes to a [`Message`]: start line, header section, body.
//!
//! The header section is split on CRLF; a line starting with SP or HTAB
//! continues the previous field (RFC 3261 §7.3.1). Bare CR or LF inside the
//! header section is rejected: RFC 3261 §7 requires CRLF, and accepting
//! both is how two parsers come to disagree about where a header ends.

use crate::error::ParseError;
use crate::header::{Header, Headers};
use crate::limits::Limits;
use crate::message::{Message, Request, Response};
use crate::method::Method;
use crate::scalar::parse_content_length;
use crate::syntax::{is_token_char, is_ws};
use crate::uri::Uri;

/// Where the header section ends: the index just past its empty line.
pub(crate) fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Parses a start line and header section (`head` ends with CRLFCRLF).
pub(crate) fn parse_head(head: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    let head = head
        .strip_suffix(b"\r\n\r\n")
        .ok_or(ParseError::MissingEmptyLine)?;
    let lines = split_crlf(head);
    let start = lines.first().copied().unwrap_or_default();
    let mut message = parse_start_line(start)?;
    *message.headers_mut() = parse_header_lines(lines.into_iter().skip(1), limits)?;
    Ok(message)
}

/// Splits on CRLF only; a bare CR or LF stays inside a line to be refused.
fn split_crlf(s: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < s.len() {
        if s[i] == b'\r' && s[i + 1] == b'\n' {
            out.push(&s[start..i]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    out.push(&s[start.min(s.len())..]);
    out
}

fn parse_start_line(line: &[u8]) -> Result<Message, ParseError> {
    if line.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Err(ParseError::BadStartLine {
            reason: "bare CR or LF",
        });
    }
    let line = std::str::from_utf8(line).map_err(|_| ParseError::BadStartLine {
        reason: "not UTF-8",
    })?;
    if let Some(rest) = line.strip_prefix("SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let (version, rest) = rest.split_once(' ').ok_or(ParseError::BadStartLine {
            reason: "no status code",
        })?;
        if version != "2.0" {
            return Err(ParseError::VersionNotSupported {
                version: format!("SIP/{version}"),
            });
        }
        let (code, reason) = rest.split_once(' ').ok_or(ParseError::BadStartLine {
            reason: "no SP after status code",
        })?;
        // Status-Code = 3DIGIT (RFC 3261 §7.2); RFC 4475 §3.1.2.19 sends ten.
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadStartLine {
                reason: "status code is not three digits",
            });
        }
        let status: u16 = code.parse().map_err(|_| ParseError::BadStartLine {
            reason: "status code is not three digits",
        })?;
        if !(100..700).contains(&status) {
            return Err(ParseError::BadStartLine {
                reason: "status code outside 100-699",
            });
        }
        if reason.bytes().any(|b| b < 0x20 && b != b'\t') {
            return Err(ParseError::BadStartLine {
                reason: "control character in reason phrase",
            });
        }
        return Ok(Message::Response(Response::new(status, reason)));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly two single
    // spaces (RFC 4475 §3.1.2.8-10 put LWS in the URI, doubled SP, trailing SP).
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadStartLine {
            reason: "request line is not `method SP uri SP version`",
        });
    };
    let method = Method::parse(method).ok_or(ParseError::BadStartLine {
        reason: "method is not a token",
    })?;
    if version != "SIP/2.0" {
        if version.starts_with("SIP/") {
            return Err(ParseError::VersionNotSupported {
                version: version.to_owned(),
            });
        }
        return Err(ParseError::BadStartLine {
            reason: "no SIP version",
        });
    }
    let uri = Uri::parse(uri).map_err(|reason| ParseError::BadRequestUri { reason })?;
    Ok(Message::Request(Request::new(method, uri)))
}

fn parse_header_lines<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
    limits: &Limits,
) -> Result<Headers, ParseError> {
    let mut headers = Headers::new();
    let mut current: Option<(String, Vec<u8>)> = None;
    for (index, raw) in lines.enumerate() {
        let line_no = index + 2;
        let line = raw;
        if line.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(ParseError::BadHeaderLine {
                line: line_no,
                reason: "bare CR or LF",
            });
        }
        if line.first().is_some_and(|&b| is_ws(b)) {
            // Continuation: RFC 3261 §7.3.1 lets the fold become one SP.
            let Some((name, value)) = current.as_mut() else {
                return Err(ParseError::BadHeaderLine {
                    line: line_no,
                    reason: "continuation before any header",
                });
            };
            let rest = trim_ws(line);
            if !rest.is_empty() {
                if !value.is_empty() {
                    value.push(b' ');
                }
                value.extend_from_slice(rest);
            }
            if name.len() + value.len() + 2 > limits.max_header_line {
                return Err(ParseError::HeaderTooLong {
                    name: name.clone(),
                    limit: limits.max_header_line,
                });
            }
            continue;
        }
        if let Some((name, value)) = current.take() {
            headers.push(Header::new(name, value));
        }
        if line.len() > limits.max_header_line {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            return Err(ParseError::HeaderTooLong {
                name: String::from_utf8_lossy(name).into_owned(),
                limit: limits.max_header_line,
            });
        }
        if headers.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::BadHeaderLine {
                line: line_no,
                reason: "no colon",
            })?;
        // HCOLON = *( SP / HTAB ) ":" SWS: whitespace before the colon is
        // allowed (RFC 4475 §3.1.1.1, §3.1.1.7).
        let name = trim_ws(&line[..colon]);
        if name.is_empty() || !name.iter().all(|&b| is_token_char(b)) {
            return Err(ParseError::BadHeaderLine {
                line: line_no,
                reason: "header name is not a token",
            });
        }
        // A token is ASCII, so this cannot fail.
        let name = String::from_utf8_lossy(name).into_owned();
        current = Some((name, trim_ws(&line[colon + 1..]).to_vec()));
    }
    if let Some((name, value)) = current {
        headers.push(Header::new(name, value));
    }
    Ok(headers)
}

fn trim_ws(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_ws(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_ws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// The Content-Length a message declares: `None` if absent; an error if
/// present more than once with different values (RFC 4475 §3.3.9) or if
/// not a number (§3.1.2.3).
pub(crate) fn declared_content_length(headers: &Headers) -> Result<Option<usize>, ParseError> {
    let mut found: Option<usize> = None;
    for header in headers.get_all("Content-Length") {
        let value = header.value_str().ok_or(ParseError::BadHeader {
            name: "Content-Length",
            reason: "not UTF-8",
        })?;
        let n = parse_content_length(value).map_err(|reason| ParseError::BadHeader {
            name: "Content-Length",
            reason,
        })?;
        if found.is_some_and(|f| f != n) {
            return Err(ParseError::DuplicateHeader("Content-Length"));
        }
        found = Some(n);
    }
    Ok(found)
}

/// Parses one message from a datagram (RFC 3261 §18.3): the body is
/// Content-Length bytes if given, else the rest; octets past the body are
/// ignored (RFC 4475 §3.1.1.8).
pub fn parse_datagram(buf: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    if buf.len() > limits.max_message_size {
        return Err(ParseError::MessageTooLarge {
            limit: limits.max_message_size,
        });
    }
    // RFC 3261 §7.5: ignore CRLFs before the start line.
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(ParseError::Empty)?;
    let buf = &buf[start..];
    let head_end = find_head_end(buf).ok_or(ParseError::MissingEmptyLine)?;
    let mut message = parse_head(&buf[..head_end], limits)?;
    let available = buf.len() - head_end;
    let body_len = match declared_content_length(message.headers())? {
        Some(declared) if declared > available => {
            return Err(ParseError::ContentLengthMismatch {
                declared,
                available,
            })
        }
        Some(declared) => declared,
        None => available,
    };
    *message.body_mut() = buf[head_end..head_end + body_len].to_vec();
    Ok(message)
}
