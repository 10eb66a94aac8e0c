//! Bounds on what the parser accepts, so a peer cannot make it allocate or
//! scan without end.

/// Size limits applied while parsing. [`Limits::default`] suits a UDP/TCP
/// user agent; a proxy handling large multipart bodies may raise them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole message (header section and body), in bytes.
    pub max_message_size: usize,
    /// Number of header fields (folded continuations do not count).
    pub max_headers: usize,
    /// Length of one header field after unfolding, name included.
    pub max_header_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // A UDP datagram cannot be larger; TCP messages that are, are abuse.
            max_message_size: 65_535,
            max_headers: 256,
            max_header_line: 8_192,
        }
    }
}
