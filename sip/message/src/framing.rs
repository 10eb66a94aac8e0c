//! Stream framing for TCP/TLS (RFC 3261 §18.3): where one message ends.

use crate::error::ParseError;
use crate::limits::Limits;
use crate::message::Message;
use crate::parse::{declared_content_length, find_head_end, parse_head};

/// The number of CR/LF octets at the start of `buf`: keep-alives (RFC 5626
/// §3.5.1 double-CRLF ping, answered with a single CRLF pong) or stray line
/// ends before a start line (RFC 3261 §7.5).
pub fn leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// Tries to take one message off the front of a stream buffer.
///
/// - `Ok(None)`: need more bytes (nothing is consumed; call again with more).
/// - `Ok(Some((message, consumed)))`: drain `consumed` bytes (leading
///   keep-alive CRLFs included) and call again for the next message.
/// - `Err(_)`: the stream cannot be framed; RFC 3261 §18.3 says close it.
///
/// Content-Length is required on streams (RFC 3261 §18.3, §20.14).
pub fn frame_stream(buf: &[u8], limits: &Limits) -> Result<Option<(Message, usize)>, ParseError> {
    let skip = leading_crlf(buf);
    let rest = &buf[skip..];
    let Some(head_end) = find_head_end(rest) else {
        if rest.len() > limits.max_message_size {
            return Err(ParseError::MessageTooLarge {
                limit: limits.max_message_size,
            });
        }
        return Ok(None);
    };
    if head_end > limits.max_message_size {
        return Err(ParseError::MessageTooLarge {
            limit: limits.max_message_size,
        });
    }
    let mut message = parse_head(&rest[..head_end], limits)?;
    let body_len = declared_content_length(message.headers())?
        .ok_or(ParseError::MissingHeader("Content-Length"))?;
    let total = head_end
        .checked_add(body_len)
        .filter(|&t| t <= limits.max_message_size)
        .ok_or(ParseError::MessageTooLarge {
            limit: limits.max_message_size,
        })?;
    if rest.len() < total {
        return Ok(None);
    }
    *message.body_mut() = rest[head_end..total].to_vec();
    Ok(Some((message, skip + total)))
}
