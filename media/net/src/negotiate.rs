//! SDP offer/answer glue: from bytes and our capabilities to the SDP to
//! send and the [`RtpConfig`] to run (RFC 3264 via `media_rtp::sdp`).

use std::net::IpAddr;

use media_audio::g711::Law;
use media_rtp::sdp::{
    self, Codec, Direction, LocalCapabilities, NegotiatedMedia, SessionDescription,
};
use media_rtp::PayloadType;

use crate::{Error, RtpConfig, RtpSockets};

/// Our usual capabilities for a call on `sockets`: PCMU then PCMA,
/// telephone-event 101, 20 ms, sendrecv, plain RTP (set `srtp` for SRTP). `address` is what peers must
/// send to (the NAT's external address when there is one).
pub fn local_capabilities(
    address: IpAddr,
    sockets: &RtpSockets,
    session_id: u64,
) -> LocalCapabilities {
    LocalCapabilities {
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        telephone_event: PayloadType::new(101).ok(),
        address,
        port: sockets.port(),
        // RFC 3605 a=rtcp only when RTCP is not on port + 1.
        rtcp_port: (sockets.rtcp_port() != sockets.port() + 1).then(|| sockets.rtcp_port()),
        ptime_ms: 20,
        direction: Direction::SendRecv,
        username: "switchboard".to_owned(),
        session_id,
        session_version: 1,
        srtp: sdp::SrtpPolicy::Off,
    }
}

/// Our offer's bytes.
pub fn offer(caps: &LocalCapabilities) -> Vec<u8> {
    sdp::offer(caps).to_bytes()
}

/// Answers the peer's offer (initial INVITE or re-INVITE): the SDP to send
/// and the session configuration it agrees. For a re-offer, bump
/// `caps.session_version` and pass the result to
/// [`crate::RtpSessionHandle::update`].
pub fn answer_offer(
    offer: &[u8],
    caps: &LocalCapabilities,
    seed: u64,
) -> Result<(Vec<u8>, RtpConfig), Error> {
    let offer = SessionDescription::parse(offer)?;
    let answer = sdp::answer(&offer, caps)?;
    Ok((answer.sdp.to_bytes(), session_config(&answer.media, seed)))
}

/// Whether media may be sent to `destination`, which the SDP of a peer signalling from `peer`
/// names. Never to a multicast or broadcast address; to a loopback or link-local address only
/// when the peer is itself there. Otherwise a caller's SDP could aim the box's RTP at services
/// on the box itself, or at hosts on its own segment. The unspecified address (hold) sends
/// nothing and is allowed.
pub fn media_destination_allowed(destination: IpAddr, peer: IpAddr) -> bool {
    let (destination, peer) = (destination.to_canonical(), peer.to_canonical());
    let link_local = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    };
    let broadcast = matches!(destination, IpAddr::V4(v4) if v4.is_broadcast());
    if destination.is_unspecified() {
        return true;
    }
    if destination.is_multicast() || broadcast {
        return false;
    }
    if destination.is_loopback() {
        return peer.is_loopback();
    }
    if link_local(destination) {
        return link_local(peer);
    }
    true
}

/// Reads the peer's answer to our offer.
pub fn accept_answer(our_offer: &[u8], answer: &[u8], seed: u64) -> Result<RtpConfig, Error> {
    let offer = SessionDescription::parse(our_offer)?;
    let answer = SessionDescription::parse(answer)?;
    let media = sdp::negotiate_answer(&offer, &answer)?;
    Ok(session_config(&media, seed))
}

/// The session configuration for a negotiated stream.
pub fn session_config(media: &NegotiatedMedia, seed: u64) -> RtpConfig {
    let law = match media.codec {
        Codec::Pcmu => Law::Mu,
        Codec::Pcma => Law::A,
    };
    let mut config = RtpConfig::new(law, media.remote_rtp, seed);
    config.payload_type = media.payload_type;
    config.telephone_event = media.telephone_event;
    config.remote_rtcp = media.remote_rtcp;
    config.direction = media.direction;
    config.ptime_ms = media.ptime_ms;
    config.srtp = media.srtp.clone();
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_goes_only_where_a_caller_of_that_kind_may_aim_it() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("address");
        let lan_caller = ip("192.0.2.10");
        assert!(media_destination_allowed(ip("192.0.2.10"), lan_caller));
        assert!(
            media_destination_allowed(ip("203.0.113.5"), lan_caller),
            "a NAT'd phone"
        );
        assert!(media_destination_allowed(ip("0.0.0.0"), lan_caller), "hold");
        for forbidden in [
            "127.0.0.1",
            "169.254.1.1",
            "224.0.0.251",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(
                !media_destination_allowed(ip(forbidden), lan_caller),
                "{forbidden}"
            );
        }
        // A softphone on the box itself, or a link-local PBX, may name its own kind.
        assert!(media_destination_allowed(ip("127.0.0.1"), ip("127.0.0.1")));
        assert!(media_destination_allowed(
            ip("::ffff:127.0.0.1"),
            ip("127.0.0.1")
        ));
        assert!(media_destination_allowed(
            ip("169.254.1.1"),
            ip("169.254.1.2")
        ));
    }
    use crate::PortPool;

    const SIPP_OFFER: &[u8] = b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendonly\r\n";

    #[tokio::test]
    async fn a_sendonly_offer_is_answered_recvonly() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 47100, 47199, false).unwrap();
        let sockets = pool.allocate().unwrap();
        let caps = local_capabilities("127.0.0.1".parse().unwrap(), &sockets, 7);
        let (answer, config) = answer_offer(SIPP_OFFER, &caps, 1).unwrap();
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.contains("a=recvonly"), "{answer}");
        assert!(
            answer.contains(&format!("m=audio {} RTP/AVP 8 101", sockets.port())),
            "{answer}"
        );
        assert_eq!(config.law, Law::A);
        assert_eq!(config.direction, Direction::RecvOnly);
        assert_eq!(config.remote_rtp, Some("127.0.0.1:6000".parse().unwrap()));
        assert_eq!(config.telephone_event, PayloadType::new(101).ok());
    }

    #[tokio::test]
    async fn an_offered_ptime_is_answered_and_used() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 47300, 47399, false).unwrap();
        let sockets = pool.allocate().unwrap();
        let caps = local_capabilities("127.0.0.1".parse().unwrap(), &sockets, 7);
        let offer = String::from_utf8(SIPP_OFFER.to_vec())
            .unwrap()
            .replace("a=sendonly", "a=ptime:30\r\na=sendrecv");
        let (answer, config) = answer_offer(offer.as_bytes(), &caps, 1).unwrap();
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.contains("a=ptime:30\r\n"), "{answer}");
        assert_eq!(config.ptime_ms, 30);
        let (answer, config) = answer_offer(SIPP_OFFER, &caps, 1).unwrap();
        assert!(String::from_utf8(answer)
            .unwrap()
            .contains("a=ptime:20\r\n"));
        assert_eq!(config.ptime_ms, 20);
    }

    #[tokio::test]
    async fn our_offer_and_their_answer_agree() {
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), 47200, 47299, true).unwrap();
        let sockets = pool.allocate().unwrap();
        let caps = local_capabilities("127.0.0.1".parse().unwrap(), &sockets, 7);
        let ours = offer(&caps);
        let theirs = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        let config = accept_answer(&ours, theirs, 2).unwrap();
        assert_eq!(config.law, Law::Mu);
        assert_eq!(config.telephone_event, None);
        assert_eq!(config.remote_rtp, Some("127.0.0.1:7000".parse().unwrap()));
        assert!(accept_answer(&ours, b"garbage", 2).is_err());
    }
}
