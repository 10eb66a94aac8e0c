//! SIP messages: bytes ⇄ requests and responses (RFC 3261 §7, §18.3, §20,
//! §25), with typed header fields computed on demand.
//!
//! This crate is the leaf under the SIP stack: it owns no socket, task or
//! clock, and knows nothing of transactions or dialogs. It reads what a
//! peer sent, says precisely what is wrong with it, and writes messages.
//!
//! # Contract
//! - Nothing a peer sends can panic or hang the parser; sizes are bounded
//!   by [`Limits`]. Every error is a [`ParseError`] that maps onto a status
//!   code and reason phrase ([`ParseError::status`]).
//! - Parsing keeps header fields raw and in order (name as received, value
//!   unfolded). Unknown headers are never touched, so a proxy forwards them
//!   unchanged; known ones are typed when asked ([`Headers::vias`],
//!   [`Headers::cseq`], …).
//! - [`Message::parse`] reads a datagram and only rejects what prevents
//!   reading the message (start line, header syntax, Content-Length).
//!   [`Message::validate`] is the second step a transaction layer calls:
//!   mandatory headers, duplicates, CSeq method, Request-URI scheme.
//! - [`frame_stream`] frames TCP/TLS streams, skipping keep-alive CRLFs.
//!
//! ```
//! use sip_message::{Message, Tag};
//!
//! let bytes = b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
//!     Via: SIP/2.0/UDP pc.example.com;branch=z9hG4bK776;rport\r\n\
//!     From: <sip:alice@example.com>;tag=1\r\n\
//!     To: <sip:bob@example.com>\r\n\
//!     Call-ID: a84b4c76e66710\r\n\
//!     CSeq: 1 OPTIONS\r\n\
//!     Content-Length: 0\r\n\r\n";
//! let message = Message::parse(bytes)?;
//! message.validate()?;
//! let request = message.as_request().expect("a request");
//! let answer = request.response(200, "OK", Tag::new("xyz").as_ref());
//! let wire = sip_message::Message::Response(answer).to_bytes();
//! assert!(wire.starts_with(b"SIP/2.0 200 OK\r\n"));
//! # Ok::<(), sip_message::ParseError>(())
//! ```
//!
//! # Layout (read top-down)
//! - [`message`]: `Message`/`Request`/`Response`, typed header accessors,
//!   `validate`, serialisation, the §8.2.6 response builder.
//! - [`parse`]: datagram parsing (start line, header lines, folding, body).
//! - [`framing`]: stream framing.
//! - [`header`]: raw header fields, compact forms, comma splitting.
//! - [`uri`], [`params`]: URIs (sip, sips, tel, other) and parameter lists.
//! - [`via`], [`name_addr`], [`scalar`], [`extension`]: typed header values
//!   (the last for RFC 4028 session timers, RFC 3891 Replaces, option tags).
//! - [`method`], [`error`], [`limits`]; `syntax` holds RFC 3261 §25.1
//!   character classes.

#![forbid(unsafe_code)]

pub mod error;
pub mod extension;
pub mod framing;
pub mod header;
pub mod limits;
pub mod message;
pub mod method;
pub mod name_addr;
pub mod params;
pub mod parse;
pub mod scalar;
mod syntax;
pub mod uri;
pub mod via;

pub use error::ParseError;
pub use extension::{Refresher, Replaces, SessionExpires};
pub use framing::{frame_stream, leading_crlf, StreamFramer};
pub use header::{Header, Headers};
pub use limits::Limits;
pub use message::{Message, Request, Response};
pub use method::Method;
pub use name_addr::{Contact, NameAddr, QValue, Tag};
pub use params::{Param, Params};
pub use scalar::{CSeq, CallId, ContentType};
pub use uri::{AbsoluteUri, Host, SipUri, TelUri, Uri};
pub use via::{Branch, Rport, Transport, Via};
