//! The crate's one error type. Hot-path conditions (late, duplicate, lost packets; a packet during
//! source probation) are values returned by the state machines, never errors.

use std::fmt;

/// Everything that can fail in `media-rtp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Input ended before a structure was complete.
    #[error("{what}: need {needed} bytes, have {available}")]
    Truncated {
        /// What was being parsed.
        what: &'static str,
        /// Bytes required.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The version field is not 2 (RFC 3550 §5.1).
    #[error("unsupported RTP/RTCP version {0}")]
    UnsupportedVersion(u8),
    /// The padding count is zero or longer than the bytes after the header (RFC 3550 §5.1).
    #[error("invalid padding length {padding} with {available} bytes after the header")]
    InvalidPadding {
        /// Padding count from the last octet.
        padding: usize,
        /// Bytes available for payload and padding.
        available: usize,
    },
    /// A payload type outside 0..=127.
    #[error("payload type {0} is outside 0..=127")]
    InvalidPayloadType(u8),
    /// An RTCP packet in a compound other than the last has the padding bit set (RFC 3550 §6.4.1).
    #[error("RTCP padding bit set on a packet that is not last in the compound")]
    RtcpPaddingNotLast,
    /// An RTCP packet's report/chunk/source count does not fit in its length.
    #[error("RTCP packet type {packet_type}: count {count} does not fit its length")]
    RtcpCountMismatch {
        /// RTCP packet type (200 SR, 201 RR, 202 SDES, 203 BYE).
        packet_type: u8,
        /// The count field.
        count: u8,
    },
    /// An SDES chunk is not terminated by a null item within the packet.
    #[error("RTCP SDES chunk is malformed")]
    RtcpBadSdes,
    /// An empty RTCP compound packet.
    #[error("empty RTCP compound packet")]
    RtcpEmpty,
    /// Serialisation: more items than the 5-bit count field holds, or a value too long.
    #[error("{what}: {count} exceeds the maximum of {max}")]
    TooMany {
        /// What overflowed.
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Serialisation into a caller buffer that is too small.
    #[error("output buffer too small: need {needed}, have {available}")]
    BufferTooSmall {
        /// Bytes required.
        needed: usize,
        /// Bytes provided.
        available: usize,
    },
    /// An SRTP or SRTCP packet whose authentication tag does not verify (forged, altered, or
    /// under another key).
    #[error("SRTP authentication failed")]
    SrtpAuthentication,
    /// An SRTP or SRTCP packet already received, or too old to tell (RFC 3711 §3.3.2).
    #[error("SRTP replay")]
    SrtpReplay,
    /// An `inline:` key that is not 30 bytes of base64 key and salt.
    #[error("SRTP key: {0}")]
    SrtpKey(&'static str),
    /// A digit to send that RFC 4733 has no event for.
    #[error("{0:?} is not an RFC 4733 digit (0-9, *, #, A-D)")]
    NotADigit(char),
    /// A digit to send on a session whose peer did not negotiate telephone-event.
    #[error("the peer did not negotiate telephone-event; digits cannot be sent")]
    NoTelephoneEvent,
    /// A telephone-event payload shorter than 4 bytes (RFC 4733 §2.3).
    #[error("telephone-event payload too short: {0} bytes")]
    TelephoneEventTooShort(usize),
    /// An SDP line that could not be parsed. `line` is 1-based.
    #[error("SDP line {line}: {kind}")]
    Sdp {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        kind: SdpErrorKind,
    },
    /// Offer/answer: no m-line of the offer could be accepted (SIP maps this to 488).
    #[error("no acceptable audio stream in the offer")]
    NoAcceptableMedia,
    /// Offer/answer: the answer does not match our offer (RFC 3264 §6).
    #[error("answer does not match the offer: {0}")]
    AnswerMismatch(AnswerMismatch),
}

/// What was wrong with an SDP line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpErrorKind {
    /// The line is not `<type>=<value>` with a single lowercase letter type.
    MalformedLine,
    /// The first line is not `v=0`.
    BadVersion,
    /// A required line (`o=`, `s=`) is missing.
    Missing(char),
    /// A field of a known line could not be parsed.
    BadField {
        /// Line type letter.
        line_type: char,
        /// Field name.
        field: &'static str,
    },
    /// The description is larger than we accept.
    TooLarge,
    /// The input is not UTF-8.
    NotUtf8,
}

impl fmt::Display for SdpErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SdpErrorKind::MalformedLine => f.write_str("malformed line"),
            SdpErrorKind::BadVersion => f.write_str("first line must be v=0"),
            SdpErrorKind::Missing(c) => write!(f, "missing {c}= line"),
            SdpErrorKind::BadField { line_type, field } => {
                write!(f, "bad {field} in {line_type}= line")
            }
            SdpErrorKind::TooLarge => f.write_str("description too large"),
            SdpErrorKind::NotUtf8 => f.write_str("not UTF-8"),
        }
    }
}

/// How an answer failed to match our offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMismatch {
    /// The answer has a different number of m-lines.
    MediaCount,
    /// The accepted audio stream names no codec we offered.
    UnknownCodec,
    /// The answer has no usable connection address.
    NoConnection,
    /// Our offer was RTP/SAVP and the answer takes up none of its crypto lines.
    NoCrypto,
}

impl fmt::Display for AnswerMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnswerMismatch::MediaCount => "different number of m-lines",
            AnswerMismatch::UnknownCodec => "no offered codec accepted",
            AnswerMismatch::NoConnection => "no connection address",
            AnswerMismatch::NoCrypto => "no offered SRTP key taken up",
        })
    }
}
