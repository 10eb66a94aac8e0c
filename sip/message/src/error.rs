//! The crate's one error type, and how each error maps onto a SIP answer.

use thiserror::Error;

/// Why bytes could not be read as a SIP message, or why a parsed message
/// fails the checks a transaction layer needs (`Message::validate`).
///
/// Every variant carries what the caller needs to answer the peer:
/// [`ParseError::status`] turns it into a status code and a reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Nothing but whitespace was received.
    #[error("empty message")]
    Empty,
    /// The message (or, on a stream, its header section) exceeds the limit.
    #[error("message larger than {limit} bytes")]
    MessageTooLarge { limit: usize },
    /// More header fields than the limit allows.
    #[error("more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    /// One header field (after unfolding) is longer than the limit.
    #[error("header field {name} longer than {limit} bytes")]
    HeaderTooLong { name: String, limit: usize },
    /// The header section does not end with an empty line (RFC 3261 §7).
    #[error("header section not terminated by an empty line")]
    MissingEmptyLine,
    /// The request line or status line is malformed (RFC 3261 §7.1, §7.2).
    #[error("bad start line: {reason}")]
    BadStartLine { reason: &'static str },
    /// A protocol version other than SIP/2.0.
    #[error("unsupported SIP version {version:?}")]
    VersionNotSupported { version: String },
    /// The Request-URI is not an absolute URI or breaks RFC 3261 §19.1.1.
    #[error("bad Request-URI: {reason}")]
    BadRequestUri { reason: &'static str },
    /// The Request-URI's scheme is neither sip, sips nor tel (RFC 3261 §8.2.2.1).
    #[error("unsupported URI scheme {scheme:?}")]
    UnsupportedUriScheme { scheme: String },
    /// A header line that is not `name: value` (RFC 3261 §7.3).
    #[error("bad header line {line}: {reason}")]
    BadHeaderLine { line: usize, reason: &'static str },
    /// A header field required here is absent.
    #[error("missing {0} header field")]
    MissingHeader(&'static str),
    /// A header field that may appear once appears with several values.
    #[error("more than one {0} header field")]
    DuplicateHeader(&'static str),
    /// A known header field whose value does not parse.
    #[error("bad {name} header field: {reason}")]
    BadHeader {
        name: &'static str,
        reason: &'static str,
    },
    /// Content-Length promises more body than was received (RFC 3261 §18.3).
    #[error("Content-Length {declared} but {available} body bytes")]
    ContentLengthMismatch { declared: usize, available: usize },
    /// The CSeq method differs from the request method (RFC 3261 §8.1.1.5).
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMethodMismatch { method: String, cseq: String },
}

impl ParseError {
    /// The status code and reason phrase to answer a request that failed
    /// with this error (RFC 3261 §8.2, §21.4).
    ///
    /// The reason phrase names the problem, so a peer's log says what was
    /// wrong. Whether an answer can be built at all is
    /// [`crate::Request::can_respond`]'s call.
    pub fn status(&self) -> (u16, String) {
        match self {
            // RFC 3261 §21.5.7: 513 Message Too Large (413 is about bodies).
            ParseError::MessageTooLarge { .. } => (513, "Message Too Large".to_owned()),
            // §21.5.6: 505 Version Not Supported.
            ParseError::VersionNotSupported { .. } => (505, "Version Not Supported".to_owned()),
            // §21.4.14 and §8.2.2.1: 416 Unsupported URI Scheme.
            ParseError::UnsupportedUriScheme { .. } => (416, "Unsupported URI Scheme".to_owned()),
            // Everything else is a malformed request: 400 naming the cause.
            other => (400, format!("Bad Request ({other})")),
        }
    }
}
