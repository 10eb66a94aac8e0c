//! Which datagrams may speak into a call.
//!
//! RTP carries no authentication (without SRTP), so the address is the only proof of who sent a
//! packet. Accepting media from anyone lets a host on the LAN or the Internet speak into a live
//! call (a false "yes" to the recording question, abuse, a transfer request) or, by moving the
//! symmetric-RTP latch, take the agent's audio. The rules:
//!
//! - Media is accepted from the address and port the SDP names.
//! - Symmetric RTP (a caller behind NAT sends from another port, or from its NAT's public
//!   address): during the first seconds of the session (and of each renegotiation) media is also
//!   accepted from any port of the SDP's host or of the SIP peer's host, never from another host.
//! - The first accepted source locks the session: from then on only that address is accepted,
//!   until a renegotiation names a new one.
//! - Once a stream is established, a packet with another SSRC is dropped, unless the established
//!   stream has been silent for [`SSRC_TAKEOVER`] (a PBX that re-bridges the call starts a new
//!   stream from the same address).
//!
//! Sans-IO: time is an argument; the tokio session in `media/net` drives it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::Ssrc;

/// How long an established stream must have been silent before another SSRC may replace it.
pub const SSRC_TAKEOVER: Duration = Duration::from_secs(1);

/// The verdict on one inbound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// From the locked source: play it.
    Accept,
    /// The first packet of the session (or since a renegotiation), from a source other than
    /// the SDP's address: play it, and send to this address from now on (symmetric RTP).
    Latched(SocketAddr),
    /// From an address the session does not accept.
    ForeignAddress,
    /// From the locked address but another SSRC while the established stream is live.
    ForeignSsrc,
}

impl Admission {
    /// Whether the packet may be played.
    pub fn accepted(self) -> bool {
        matches!(self, Admission::Accept | Admission::Latched(_))
    }
}

/// The session's media source rule; see the module docs.
#[derive(Debug, Clone)]
pub struct SourceFilter {
    /// The address and port the SDP names.
    sdp: Option<SocketAddr>,
    /// The host of the SIP peer the call's signalling comes from.
    peer: Option<IpAddr>,
    /// Whether to accept other ports of those hosts during the latch window.
    latch: bool,
    latch_window: Duration,
    /// Until when a source other than the SDP's address may be locked.
    latch_until: Instant,
    locked: Option<SocketAddr>,
    /// The established stream and when it was last heard.
    stream: Option<(Ssrc, Instant)>,
}

impl SourceFilter {
    /// A session starting at `now` whose SDP names `sdp`, with signalling from `peer`.
    /// `latch_window` is how long other ports of those hosts may be latched (0 or `latch`
    /// false: the SDP address only).
    pub fn new(
        now: Instant,
        sdp: Option<SocketAddr>,
        peer: Option<IpAddr>,
        latch: bool,
        latch_window: Duration,
    ) -> SourceFilter {
        SourceFilter {
            sdp: sdp.filter(|a| !a.ip().is_unspecified()),
            peer,
            latch,
            latch_window,
            latch_until: now + latch_window,
            locked: None,
            stream: None,
        }
    }

    /// The verdict on an RTP packet from `from` with `ssrc`; an accepted one locks the source
    /// and refreshes the stream.
    pub fn admit(&mut self, now: Instant, from: SocketAddr, ssrc: Ssrc) -> Admission {
        let admission = match self.locked {
            Some(locked) if locked == from => Admission::Accept,
            Some(_) => return Admission::ForeignAddress,
            None if Some(from) == self.sdp => Admission::Accept,
            None if self.may_latch(now, from.ip()) => Admission::Latched(from),
            None => return Admission::ForeignAddress,
        };
        match self.stream {
            Some((established, heard))
                if established != ssrc && now.saturating_duration_since(heard) < SSRC_TAKEOVER =>
            {
                return Admission::ForeignSsrc;
            }
            _ => self.stream = Some((ssrc, now)),
        }
        self.locked = Some(from);
        admission
    }

    /// Whether RTCP from `from` belongs to the session: from the locked host, or before any
    /// media, from a host that could be locked.
    pub fn admits_control(&self, now: Instant, from: SocketAddr) -> bool {
        match self.locked {
            Some(locked) => locked.ip() == from.ip(),
            None => self.sdp.map(|a| a.ip()) == Some(from.ip()) || self.may_latch(now, from.ip()),
        }
    }

    /// A renegotiation (re-INVITE) named `sdp`: a new address unlocks the session and opens a
    /// new latch window; the same address changes nothing.
    pub fn renegotiated(&mut self, now: Instant, sdp: Option<SocketAddr>) {
        let sdp = sdp.filter(|a| !a.ip().is_unspecified());
        if sdp == self.sdp {
            return;
        }
        self.sdp = sdp;
        self.locked = None;
        self.stream = None;
        self.latch_until = now + self.latch_window;
    }

    /// The address media is accepted from, once one has been.
    pub fn locked(&self) -> Option<SocketAddr> {
        self.locked
    }

    fn may_latch(&self, now: Instant, host: IpAddr) -> bool {
        let known = self.sdp.map(|a| a.ip()) == Some(host) || self.peer == Some(host);
        self.latch && known && now < self.latch_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    fn filter(now: Instant) -> SourceFilter {
        SourceFilter::new(
            now,
            Some(addr("192.0.2.10:4000")),
            Some("198.51.100.1".parse().expect("ip")),
            true,
            WINDOW,
        )
    }

    #[test]
    fn the_sdp_address_is_accepted_and_locks_out_everyone_else() {
        let t0 = Instant::now();
        let mut f = filter(t0);
        assert_eq!(
            f.admit(t0, addr("192.0.2.10:4000"), Ssrc(1)),
            Admission::Accept
        );
        // Another port of the same host, even inside the window: the session is locked.
        let other_port = f.admit(t0, addr("192.0.2.10:4002"), Ssrc(1));
        assert_eq!(other_port, Admission::ForeignAddress);
        assert_eq!(f.locked(), Some(addr("192.0.2.10:4000")));
    }

    #[test]
    fn another_host_is_never_accepted() {
        let t0 = Instant::now();
        let mut f = filter(t0);
        let injector = addr("203.0.113.66:4000");
        assert_eq!(f.admit(t0, injector, Ssrc(9)), Admission::ForeignAddress);
        assert_eq!(f.locked(), None, "a refused packet locks nothing");
        assert!(!f.admits_control(t0, injector));
    }

    #[test]
    fn a_nat_port_of_the_peer_latches_only_in_the_first_seconds() {
        let t0 = Instant::now();
        let nat = addr("198.51.100.1:61000");
        let mut early = filter(t0);
        let latched = early.admit(t0 + Duration::from_secs(2), nat, Ssrc(1));
        assert_eq!(latched, Admission::Latched(nat));
        assert_eq!(
            early.admit(t0 + WINDOW * 3, nat, Ssrc(1)),
            Admission::Accept
        );

        let mut late = filter(t0);
        assert_eq!(
            late.admit(t0 + WINDOW, nat, Ssrc(1)),
            Admission::ForeignAddress
        );
        // The SDP address itself stays acceptable after the window.
        let sdp = late.admit(t0 + WINDOW, addr("192.0.2.10:4000"), Ssrc(1));
        assert_eq!(sdp, Admission::Accept);
    }

    #[test]
    fn without_latching_only_the_sdp_address_is_accepted() {
        let t0 = Instant::now();
        let mut f = SourceFilter::new(t0, Some(addr("192.0.2.10:4000")), None, false, WINDOW);
        let nat = f.admit(t0, addr("192.0.2.10:4002"), Ssrc(1));
        assert_eq!(nat, Admission::ForeignAddress);
    }

    #[test]
    fn a_second_ssrc_is_dropped_while_the_stream_is_live_and_replaces_it_after_silence() {
        let t0 = Instant::now();
        let mut f = filter(t0);
        let from = addr("192.0.2.10:4000");
        assert!(f.admit(t0, from, Ssrc(1)).accepted());
        let t = t0 + Duration::from_millis(20);
        assert_eq!(f.admit(t, from, Ssrc(2)), Admission::ForeignSsrc);
        assert!(f.admit(t, from, Ssrc(1)).accepted());
        // The first stream stops (a PBX re-bridged the call): a new one takes over.
        let later = t + SSRC_TAKEOVER;
        assert_eq!(f.admit(later, from, Ssrc(2)), Admission::Accept);
        assert_eq!(
            f.admit(later + Duration::from_millis(20), from, Ssrc(1)),
            Admission::ForeignSsrc
        );
    }

    #[test]
    fn a_renegotiated_address_unlocks_and_opens_a_new_window() {
        let t0 = Instant::now();
        let mut f = filter(t0);
        assert!(f.admit(t0, addr("192.0.2.10:4000"), Ssrc(1)).accepted());
        let moved = t0 + WINDOW * 2;
        f.renegotiated(moved, Some(addr("192.0.2.20:5000")));
        let old = f.admit(moved, addr("192.0.2.10:4000"), Ssrc(1));
        assert_eq!(old, Admission::ForeignAddress);
        let new = f.admit(moved, addr("192.0.2.20:5000"), Ssrc(7));
        assert_eq!(new, Admission::Accept);
        // The same address again (a session refresh) keeps the lock.
        f.renegotiated(moved, Some(addr("192.0.2.20:5000")));
        assert_eq!(f.locked(), Some(addr("192.0.2.20:5000")));
    }

    #[test]
    fn rtcp_comes_from_the_locked_host() {
        let t0 = Instant::now();
        let mut f = filter(t0);
        assert!(f.admits_control(t0, addr("192.0.2.10:4001")));
        assert!(f.admit(t0, addr("198.51.100.1:61000"), Ssrc(1)).accepted());
        assert!(f.admits_control(t0, addr("198.51.100.1:61001")));
        assert!(!f.admits_control(t0, addr("192.0.2.10:4001")));
    }
}
