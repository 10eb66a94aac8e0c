//! Requests and responses: parsed structure, typed header views, checks a
//! transaction layer needs, serialisation, and building a response.

use crate::error::ParseError;
use crate::extension::{parse_min_se, Replaces, SessionExpires};
use crate::header::{Header, Headers};
use crate::limits::Limits;
use crate::method::Method;
use crate::name_addr::{Contact, NameAddr, Tag};
use crate::parse::{declared_content_length, parse_datagram};
use crate::scalar::{check_date, parse_expires, parse_max_forwards, CSeq, CallId, ContentType};
use crate::uri::Uri;
use crate::via::Via;

/// A SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// A request: method, Request-URI, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A response: status code, reason phrase, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// 100 to 699.
    pub status: u16,
    /// As received; may be empty (RFC 4475 §3.1.1.13) or UTF-8 (§3.1.1.12).
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Message {
    /// Parses a whole datagram with the default [`Limits`].
    pub fn parse(buf: &[u8]) -> Result<Message, ParseError> {
        parse_datagram(buf, &Limits::default())
    }

    /// Parses a whole datagram with explicit limits.
    pub fn parse_with(buf: &[u8], limits: &Limits) -> Result<Message, ParseError> {
        parse_datagram(buf, limits)
    }

    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    pub fn body_mut(&mut self) -> &mut Vec<u8> {
        match self {
            Message::Request(r) => &mut r.body,
            Message::Response(r) => &mut r.body,
        }
    }

    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }

    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        }
    }

    /// The checks a transaction layer needs before acting on a message:
    /// the mandatory header fields are present once each and parse (RFC 3261
    /// §8.1.1, §8.2.2), every known header field present parses, the CSeq
    /// method matches (§8.1.1.5), and a request's URI scheme is supported
    /// (§8.2.2.1) with no headers in it (§19.1.1).
    pub fn validate(&self) -> Result<(), ParseError> {
        let h = self.headers();
        // Order: what identifies the transaction first, so the error names
        // the most useful problem.
        h.vias()?;
        h.from()?;
        h.to()?;
        h.call_id()?;
        let cseq = h.cseq()?;
        h.max_forwards()?;
        h.content_type()?;
        h.expires()?;
        h.contacts()?;
        for name in ["Route", "Record-Route"] {
            h.name_addrs(name)?;
        }
        if let Some(date) = h.get("Date") {
            check_date(date.value_str().unwrap_or_default()).map_err(|reason| {
                ParseError::BadHeader {
                    name: "Date",
                    reason,
                }
            })?;
        }
        if let Message::Request(req) = self {
            if cseq.method != req.method {
                return Err(ParseError::CSeqMethodMismatch {
                    method: req.method.to_string(),
                    cseq: cseq.method.to_string(),
                });
            }
            match &req.uri {
                Uri::Sip(sip) if !sip.headers.is_empty() => {
                    return Err(ParseError::BadRequestUri {
                        reason: "headers are not allowed in a Request-URI",
                    })
                }
                Uri::Sip(_) | Uri::Tel(_) => {}
                Uri::Other(other) => {
                    return Err(ParseError::UnsupportedUriScheme {
                        scheme: other.scheme.clone(),
                    })
                }
            }
        }
        Ok(())
    }

    /// Serialises with CRLF line ends and a Content-Length equal to the
    /// body's length (replacing any received value, added if absent).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body().len());
        match self {
            Message::Request(r) => {
                out.extend_from_slice(format!("{} {} SIP/2.0\r\n", r.method, r.uri).as_bytes())
            }
            Message::Response(r) => out
                .extend_from_slice(format!("SIP/2.0 {:03} {}\r\n", r.status, r.reason).as_bytes()),
        }
        let body_len = self.body().len().to_string();
        let mut wrote_length = false;
        for header in self.headers().iter() {
            let is_length = header.canonical_name() == "Content-Length";
            if is_length && wrote_length {
                continue; // one Content-Length only, the true one
            }
            out.extend_from_slice(header.name.as_bytes());
            out.extend_from_slice(b": ");
            if is_length {
                out.extend_from_slice(body_len.as_bytes());
                wrote_length = true;
            } else {
                out.extend_from_slice(&header.value);
            }
            out.extend_from_slice(b"\r\n");
        }
        if !wrote_length {
            out.extend_from_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body());
        out
    }
}

impl Request {
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Whether a response can be built for this request at all: RFC 3261
    /// §8.2.6.2 copies Via, From, To, Call-ID and CSeq, so each must be
    /// there and readable. When false (RFC 4475 §3.3.1) the request is
    /// dropped.
    pub fn can_respond(&self) -> bool {
        let h = &self.headers;
        h.vias().is_ok_and(|v| !v.is_empty())
            && h.from().is_ok()
            && h.to().is_ok()
            && h.call_id().is_ok()
            && h.cseq().is_ok()
    }

    /// Builds a response per RFC 3261 §8.2.6: Via rows, From, To, Call-ID
    /// and CSeq copied as received, a To tag added when given and the To
    /// has none, and Content-Length 0.
    pub fn response(&self, status: u16, reason: &str, to_tag: Option<&Tag>) -> Response {
        let mut response = Response::new(status, reason);
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for header in self.headers.get_all(name) {
                let mut header = header.clone();
                if name == "To" {
                    if let Some(tag) = to_tag {
                        let has_tag = self.headers.to().ok().and_then(|t| t.tag()).is_some();
                        if !has_tag {
                            header
                                .value
                                .extend_from_slice(format!(";tag={tag}").as_bytes());
                        }
                    }
                }
                response.headers.push(header);
            }
        }
        response.headers.push(Header::new("Content-Length", "0"));
        response
    }
}

impl Response {
    pub fn new(status: u16, reason: &str) -> Response {
        Response {
            status,
            reason: reason.to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }
}

fn bad(name: &'static str) -> impl Fn(&'static str) -> ParseError {
    move |reason| ParseError::BadHeader { name, reason }
}

impl Headers {
    /// The one value of a single-valued header: missing, duplicated (RFC
    /// 4475 §3.3.8) or non-UTF-8 is an error.
    fn single(&self, name: &'static str) -> Result<Option<&str>, ParseError> {
        let mut all = self.get_all(name);
        let Some(first) = all.next() else {
            return Ok(None);
        };
        if all.next().is_some() {
            return Err(ParseError::DuplicateHeader(name));
        }
        first.value_str().map(Some).ok_or(ParseError::BadHeader {
            name,
            reason: "not UTF-8",
        })
    }

    fn required(&self, name: &'static str) -> Result<&str, ParseError> {
        self.single(name)?.ok_or(ParseError::MissingHeader(name))
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        let vias = self
            .values("Via")
            .into_iter()
            .map(|v| Via::parse(v).map_err(bad("Via")))
            .collect::<Result<Vec<_>, _>>()?;
        if vias.is_empty() {
            return Err(ParseError::MissingHeader("Via"));
        }
        Ok(vias)
    }

    /// The topmost Via (RFC 3261 §17.2.3 matches on it).
    pub fn top_via(&self) -> Result<Via, ParseError> {
        let first = self.values("Via").into_iter().next();
        let first = first.ok_or(ParseError::MissingHeader("Via"))?;
        Via::parse(first).map_err(bad("Via"))
    }

    pub fn from(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.required("From")?).map_err(bad("From"))
    }

    pub fn to(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.required("To")?).map_err(bad("To"))
    }

    pub fn call_id(&self) -> Result<CallId, ParseError> {
        CallId::parse(self.required("Call-ID")?).map_err(bad("Call-ID"))
    }

    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(self.required("CSeq")?).map_err(bad("CSeq"))
    }

    /// Max-Forwards, if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        self.single("Max-Forwards")?
            .map(|v| parse_max_forwards(v).map_err(bad("Max-Forwards")))
            .transpose()
    }

    /// Content-Length, if present (all copies must agree).
    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        declared_content_length(self)
    }

    pub fn content_type(&self) -> Result<Option<ContentType>, ParseError> {
        self.single("Content-Type")?
            .map(|v| ContentType::parse(v).map_err(bad("Content-Type")))
            .transpose()
    }

    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        self.single("Expires")?
            .map(|v| parse_expires(v).map_err(bad("Expires")))
            .transpose()
    }

    /// Every Contact value; `*` only alone (RFC 3261 §10.3 step 6).
    pub fn contacts(&self) -> Result<Vec<Contact>, ParseError> {
        let contacts = self
            .values("Contact")
            .into_iter()
            .map(|v| Contact::parse(v).map_err(bad("Contact")))
            .collect::<Result<Vec<_>, _>>()?;
        for contact in &contacts {
            if let Some(Err(reason)) = contact.expires() {
                return Err(ParseError::BadHeader {
                    name: "Contact",
                    reason,
                });
            }
            if let Some(Err(reason)) = contact.q() {
                return Err(ParseError::BadHeader {
                    name: "Contact",
                    reason,
                });
            }
        }
        if contacts.len() > 1 && contacts.iter().any(|c| matches!(c, Contact::Wildcard(_))) {
            return Err(ParseError::BadHeader {
                name: "Contact",
                reason: "* with other contacts",
            });
        }
        Ok(contacts)
    }

    /// Min-Expires (RFC 3261 §20.23), if present.
    pub fn min_expires(&self) -> Result<Option<u32>, ParseError> {
        self.single("Min-Expires")?
            .map(|v| parse_expires(v).map_err(bad("Min-Expires")))
            .transpose()
    }

    /// The delta-seconds of Retry-After (RFC 3261 §20.33), comment and
    /// parameters ignored.
    pub fn retry_after(&self) -> Result<Option<u32>, ParseError> {
        self.single("Retry-After")?
            .map(|v| {
                let delta = v.split(['(', ';']).next().unwrap_or(v);
                parse_expires(delta).map_err(bad("Retry-After"))
            })
            .transpose()
    }

    /// Session-Expires (RFC 4028 §4), if present.
    pub fn session_expires(&self) -> Result<Option<SessionExpires>, ParseError> {
        self.single("Session-Expires")?
            .map(|v| SessionExpires::parse(v).map_err(bad("Session-Expires")))
            .transpose()
    }

    /// Min-SE (RFC 4028 §5), if present.
    pub fn min_se(&self) -> Result<Option<u32>, ParseError> {
        self.single("Min-SE")?
            .map(|v| parse_min_se(v).map_err(bad("Min-SE")))
            .transpose()
    }

    /// Replaces (RFC 3891 §6.1), if present.
    pub fn replaces(&self) -> Result<Option<Replaces>, ParseError> {
        self.single("Replaces")?
            .map(|v| Replaces::parse(v).map_err(bad("Replaces")))
            .transpose()
    }

    /// Whether the list header `name` (Supported, Require, Allow, …)
    /// names `option`, compared case-insensitively.
    pub fn lists(&self, name: &str, option: &str) -> bool {
        self.values(name)
            .iter()
            .any(|v| v.eq_ignore_ascii_case(option))
    }

    /// name-addr values of a list header such as Route or Record-Route.
    pub fn name_addrs(&self, name: &'static str) -> Result<Vec<NameAddr>, ParseError> {
        self.values(name)
            .into_iter()
            .map(|v| NameAddr::parse(v).map_err(bad(name)))
            .collect()
    }
}
