//! Attended transfer (RFC 3891 `Replaces`, RFC 5589 §7): the header that
//! names a dialog to take over, carried in the Refer-To URI of a REFER
//! (`?Replaces=` escaped, RFC 3261 §19.1.5) and then in the transferee's
//! INVITE.
//!
//! The tags are from the point of view of the UA that receives the INVITE:
//! `to-tag` is its local tag, `from-tag` its remote tag (§3). The
//! transferor, which sits in the middle of that dialog, therefore writes its
//! remote tag as `to-tag` and its local tag as `from-tag`.

use std::time::Instant;

use sip_message::{Header, Request, Uri};

use crate::call::{CallState, Incoming};
use crate::dialog::{Dialog, DialogId};
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::event::Event;
use crate::session_timer::Agreed;
use crate::transaction::ServerKey;
use crate::CallHandle;

/// A parsed `Replaces` value (RFC 3891 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
    /// `early-only`: replace only a dialog that is not yet confirmed.
    pub early_only: bool,
}

impl Replaces {
    /// `callid *(SEMI replaces-param)`; both tags are mandatory.
    pub(crate) fn parse(value: &str) -> Option<Replaces> {
        let mut parts = value.split(';');
        let call_id = parts.next()?.trim();
        if call_id.is_empty() {
            return None;
        }
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for part in parts {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (part.trim(), None),
            };
            if name.eq_ignore_ascii_case("to-tag") {
                to_tag = value.map(str::to_owned);
            } else if name.eq_ignore_ascii_case("from-tag") {
                from_tag = value.map(str::to_owned);
            } else if name.eq_ignore_ascii_case("early-only") {
                early_only = true;
            }
        }
        Some(Replaces {
            call_id: call_id.to_owned(),
            to_tag: to_tag?,
            from_tag: from_tag?,
            early_only,
        })
    }

    /// The value the transferor writes for one of its own dialogs.
    pub(crate) fn for_dialog_seen_by_peer(dialog: &Dialog) -> Replaces {
        Replaces {
            call_id: dialog.call_id.clone(),
            to_tag: dialog.remote_tag.clone(),
            from_tag: dialog.local_tag.clone(),
            early_only: false,
        }
    }

    /// The dialog this names, as the receiving UA keys it.
    pub(crate) fn dialog_id(&self) -> DialogId {
        DialogId {
            call_id: self.call_id.clone(),
            local_tag: self.to_tag.clone(),
            remote_tag: self.from_tag.clone(),
        }
    }

    pub(crate) fn value(&self) -> String {
        let mut value = format!(
            "{};to-tag={};from-tag={}",
            self.call_id, self.to_tag, self.from_tag
        );
        if self.early_only {
            value.push_str(";early-only");
        }
        value
    }
}

impl Endpoint {
    /// RFC 5589 §7 attended transfer: REFERs the peer of `call` to the
    /// peer of `target_call`, asking it to replace our dialog with that
    /// peer (Refer-To: `<remote target?Replaces=…>`). Both calls must be
    /// established. Outcome as for [`Endpoint::refer`]; when the transfer
    /// succeeds the target's UA ends `target_call` with a BYE.
    pub fn refer_attended(
        &mut self,
        now: Instant,
        call: CallHandle,
        target_call: CallHandle,
    ) -> Result<(), Error> {
        let target = match self.calls.get(&target_call) {
            None => return Err(Error::UnknownCall(target_call)),
            Some(CallState::Established(e)) => &e.dialog,
            Some(other) => {
                return Err(Error::InvalidState {
                    call: target_call,
                    command: "refer_attended",
                    state: other.name(),
                })
            }
        };
        let replaces = Replaces::for_dialog_seen_by_peer(target);
        let mut uri = target.remote_target.clone();
        if let Uri::Sip(sip) = &mut uri {
            sip.headers = vec![("Replaces".to_owned(), escape(&replaces.value()))];
        }
        self.refer(now, call, uri)
    }

    /// An INVITE carrying `Replaces` (RFC 3891 §3): a match with an
    /// established call is answered at once with that call's local SDP,
    /// the old call gets a BYE, and `CallReplaced` tells the application;
    /// no match is 481, a confirmed dialog under `early-only` 486.
    pub(crate) fn on_replacing_invite(
        &mut self,
        now: Instant,
        key: ServerKey,
        invite: Request,
        dialog: Dialog,
        agreed: Option<Agreed>,
        value: &str,
    ) {
        let Some(replaces) = Replaces::parse(value) else {
            let response = self.response(&invite, 400, "Bad Replaces Header", None);
            self.respond(now, &key, response);
            return;
        };
        let old = self.dialogs.get(&replaces.dialog_id()).copied();
        // Only an established call is replaced; a dialog still awaiting
        // its ACK, or one we are still calling, is refused as unknown.
        let local_sdp = match old.and_then(|c| self.calls.get(&c)) {
            Some(CallState::Established(e)) => e.session.local_sdp.clone(),
            _ => {
                let response = self.response(&invite, 481, "Call/Transaction Does Not Exist", None);
                self.respond(now, &key, response);
                return;
            }
        };
        let Some(old) = old else { return };
        if replaces.early_only {
            // §3: early-only and the dialog is confirmed.
            let response = self.response(&invite, 486, "Busy Here", None);
            self.respond(now, &key, response);
            return;
        }
        let offer = invite.body.clone();
        let new = self.new_call_handle();
        self.incoming_invites.insert(key.clone(), new);
        self.calls.insert(
            new,
            CallState::Incoming(Incoming {
                invite,
                key,
                dialog,
                agreed,
            }),
        );
        if self.answer(now, new, local_sdp).is_err() {
            return; // not reachable: `new` is Incoming
        }
        self.send_bye(now, old);
        self.remove_call(old);
        self.events
            .push_back(Event::CallReplaced { old, new, offer });
    }
}

/// Moves a `?Replaces=` URI header (RFC 3261 §19.1.5) out of `target`
/// into a header of the request built from it. Other URI headers are
/// dropped: we honour none of them.
pub(crate) fn take_uri_headers(target: &mut Uri) -> Option<Header> {
    let Uri::Sip(sip) = target else { return None };
    let headers = std::mem::take(&mut sip.headers);
    headers
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("Replaces"))
        .map(|(_, value)| Header::new("Replaces", unescape(&value)))
}

/// RFC 3261 §19.1.5 / §25.1 `hvalue`: everything but unreserved characters
/// is %-escaped (Call-IDs may hold `@`, the value holds `;` and `=`).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 2);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc_3891_examples() {
        let r = Replaces::parse("98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff").unwrap();
        assert_eq!(r.call_id, "98732@sip.example.com");
        assert_eq!(
            (r.to_tag.as_str(), r.from_tag.as_str()),
            ("ff87ff", "r33th4x0r")
        );
        assert!(!r.early_only);
        let r = Replaces::parse(
            "12345600@atlanta.example.com;from-tag=1234567;to-tag=12345;early-only",
        )
        .unwrap();
        assert!(r.early_only);
        assert_eq!(
            Replaces::parse("abc;to-tag=1"),
            None,
            "from-tag is mandatory"
        );
        assert_eq!(Replaces::parse(";to-tag=1;from-tag=2"), None);
    }

    #[test]
    fn escapes_round_trip_through_a_uri() {
        let value = "a84b4c76e66710@pc33.atlanta.com;to-tag=314159;from-tag=9fxced76sl";
        let escaped = escape(value);
        assert!(!escaped.contains([';', '=', '@']), "{escaped}");
        let mut uri = Uri::parse(&format!("sip:bob@10.0.0.2:5060?Replaces={escaped}")).unwrap();
        let header = take_uri_headers(&mut uri).unwrap();
        assert_eq!(header.value_str(), Some(value));
        assert_eq!(uri.to_string(), "sip:bob@10.0.0.2:5060");
        assert_eq!(unescape("50%"), "50%", "a stray % stays");
    }
}
