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
/// Content-Length is required on streams (RFC 3261 §18.3, §20.14). Each call starts afresh; a
/// connection reading a stream keeps a [`StreamFramer`] instead.
pub fn frame_stream(buf: &[u8], limits: &Limits) -> Result<Option<(Message, usize)>, ParseError> {
    StreamFramer::default().next(buf, limits)
}

/// [`frame_stream`] with memory between reads of one stream: the search for the end of the
/// header section resumes where it stopped, and a parsed header section waits for its body
/// without being parsed again. A peer that sends a 64 KiB message a byte at a time then costs
/// linear work, not a rescan and a re-parse per byte.
#[derive(Debug, Default)]
pub struct StreamFramer {
    /// How much of the message (after the leading CRLFs) was searched for the empty line.
    searched: usize,
    /// The message's parsed head, where its header section ends and where the message ends.
    head: Option<(Message, usize, usize)>,
}

impl StreamFramer {
    /// As [`frame_stream`], for `buf` holding the stream's unconsumed bytes: the same bytes as
    /// at the last call plus what arrived since, less what the caller drained after a message.
    pub fn next(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<(Message, usize)>, ParseError> {
        let skip = leading_crlf(buf);
        let rest = &buf[skip..];
        if self.head.is_none() {
            // The empty line may straddle the end of the last search.
            let from = self.searched.saturating_sub(3).min(rest.len());
            let Some(end) = find_head_end(&rest[from..]) else {
                self.searched = rest.len();
                if rest.len() > limits.max_message_size {
                    return Err(ParseError::MessageTooLarge {
                        limit: limits.max_message_size,
                    });
                }
                return Ok(None);
            };
            let head_end = from + end;
            if head_end > limits.max_message_size {
                return Err(ParseError::MessageTooLarge {
                    limit: limits.max_message_size,
                });
            }
            let message = parse_head(&rest[..head_end], limits)?;
            let body_len = declared_content_length(message.headers())?
                .ok_or(ParseError::MissingHeader("Content-Length"))?;
            let total = head_end
                .checked_add(body_len)
                .filter(|&t| t <= limits.max_message_size)
                .ok_or(ParseError::MessageTooLarge {
                    limit: limits.max_message_size,
                })?;
            self.head = Some((message, head_end, total));
        }
        match self.head.take() {
            Some((mut message, head_end, total)) if rest.len() >= total => {
                self.searched = 0;
                *message.body_mut() = rest[head_end..total].to_vec();
                Ok(Some((message, skip + total)))
            }
            waiting => {
                self.head = waiting;
                Ok(None)
            }
        }
    }
}
