//! Dialog state (RFC 3261 §12): identifiers, sequence numbers, route set,
//! remote target, and building requests inside the dialog (§12.2.1.1).

use sip_message::{Header, Method, NameAddr, Request, Response, Uri};

use crate::transaction::Peer;

/// §12: a dialog is identified by Call-ID, local tag and remote tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Our From (UAC) or To (UAS) address, without tag.
    pub local: NameAddr,
    /// The peer's address, without tag.
    pub remote: NameAddr,
    /// Last CSeq number we used (§12.2.1.1: incremented per request).
    pub local_seq: u32,
    /// Highest CSeq number received (§12.2.2).
    pub remote_seq: Option<u32>,
    /// The peer's Contact URI (§12.1.1, §12.1.2; refreshed by target refresh requests).
    pub remote_target: Uri,
    /// Route set, in the order our requests carry it.
    pub route_set: Vec<String>,
    /// Where in-dialog requests go: the first route or the remote target
    /// when it is an IP literal, else where the peer's messages came from.
    pub peer: Peer,
}

impl Dialog {
    pub(crate) fn id(&self) -> DialogId {
        DialogId {
            call_id: self.call_id.clone(),
            local_tag: self.local_tag.clone(),
            remote_tag: self.remote_tag.clone(),
        }
    }

    /// §12.1.2: the UAC's view, from the INVITE it sent and the 2xx (or 1xx with tag).
    pub(crate) fn as_uac(invite: &Request, response: &Response, peer: Peer) -> Option<Dialog> {
        let from = invite.headers.from().ok()?;
        let to = response.headers.to().ok()?;
        let mut route_set: Vec<String> = response
            .headers
            .values("Record-Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        route_set.reverse();
        let remote_target = contact_uri(&response.headers).unwrap_or_else(|| invite.uri.clone());
        Some(Dialog {
            call_id: invite.headers.call_id().ok()?.to_string(),
            local_tag: from.tag()?.to_string(),
            remote_tag: to.tag().map(|t| t.to_string()).unwrap_or_default(),
            local: without_tag(from),
            remote: without_tag(to),
            local_seq: invite.headers.cseq().ok()?.seq,
            remote_seq: None,
            remote_target,
            route_set,
            peer,
        })
    }

    /// §12.1.1: the UAS's view, from the INVITE it received and the tag it chose.
    pub(crate) fn as_uas(invite: &Request, local_tag: String, peer: Peer) -> Option<Dialog> {
        let from = invite.headers.from().ok()?;
        let to = invite.headers.to().ok()?;
        let route_set = invite
            .headers
            .values("Record-Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        let remote_target = contact_uri(&invite.headers).unwrap_or_else(|| from.uri.clone());
        Some(Dialog {
            call_id: invite.headers.call_id().ok()?.to_string(),
            local_tag,
            // An RFC 2543 peer may send no From tag; the empty tag still matches it.
            remote_tag: from.tag().map(|t| t.to_string()).unwrap_or_default(),
            local: without_tag(to),
            remote: without_tag(from),
            local_seq: 0,
            remote_seq: Some(invite.headers.cseq().ok()?.seq),
            remote_target,
            route_set,
            peer,
        })
    }

    /// §12.2.1.1: a new request inside the dialog, with the next CSeq.
    /// The caller adds Via (the transaction's branch) first.
    pub(crate) fn request(&mut self, method: Method, via: Header) -> Request {
        self.local_seq = self.local_seq.wrapping_add(1) & 0x7fff_ffff;
        let seq = self.local_seq;
        self.request_with_seq(method, via, seq)
    }

    /// A request with a given CSeq number (the ACK for a 2xx reuses the INVITE's, §13.2.2.4).
    pub(crate) fn request_with_seq(&self, method: Method, via: Header, seq: u32) -> Request {
        // §12.2.1.1: loose routing; the Request-URI is the remote target and
        // the route set becomes Route. (A strict-routing first hop is not
        // supported: peers we meet all set `lr`.)
        let mut request = Request::new(method.clone(), self.remote_target.clone());
        let h = &mut request.headers;
        h.push(via);
        h.push(Header::new("Max-Forwards", "70"));
        h.push(Header::new("From", tagged(&self.local, &self.local_tag)));
        h.push(Header::new("To", tagged(&self.remote, &self.remote_tag)));
        h.push(Header::new("Call-ID", self.call_id.clone()));
        h.push(Header::new("CSeq", format!("{seq} {method}")));
        for route in &self.route_set {
            h.push(Header::new("Route", route.clone()));
        }
        request
    }
}

/// The first Contact's URI.
pub(crate) fn contact_uri(headers: &sip_message::Headers) -> Option<Uri> {
    match headers.contacts().ok()?.into_iter().next()? {
        sip_message::Contact::Address(a) => Some(a.uri),
        sip_message::Contact::Wildcard(_) => None,
    }
}

fn without_tag(mut address: NameAddr) -> NameAddr {
    address
        .params
        .0
        .retain(|p| !p.name.eq_ignore_ascii_case("tag"));
    address
}

/// `address;tag=tag`, or the address alone for an empty tag.
pub(crate) fn tagged(address: &NameAddr, tag: &str) -> String {
    if tag.is_empty() {
        address.to_string()
    } else {
        format!("{address};tag={tag}")
    }
}
