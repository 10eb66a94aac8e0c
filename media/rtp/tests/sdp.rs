//! SDP parse/serialise (RFC 8866/4566 examples) and offer/answer (RFC 3264 §10 examples, hold).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use media_rtp::sdp::{
    answer, negotiate_answer, offer, AddressFamily, Codec, Direction, LocalCapabilities,
    SessionDescription, SrtpPolicy,
};
use media_rtp::srtp::{MasterKey, Suite};
use media_rtp::{AnswerMismatch, Error, PayloadType, SdpErrorKind};

const RFC4566_EXAMPLE: &str = "v=0\r\n\
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n\
s=SDP Seminar\r\n\
i=A Seminar on the session description protocol\r\n\
u=http://www.example.com/seminars/sdp.pdf\r\n\
e=j.doe@example.com (Jane Doe)\r\n\
c=IN IP4 224.2.17.12/127\r\n\
t=2873397496 2873404696\r\n\
a=recvonly\r\n\
m=audio 49170 RTP/AVP 0\r\n\
m=video 51372 RTP/AVP 99\r\n\
a=rtpmap:99 h263-1998/90000\r\n";

const RFC3264_OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 host.anywhere.com\r\n\
s=\r\n\
c=IN IP4 host.anywhere.com\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n\
m=video 51372 RTP/AVP 31\r\n\
a=rtpmap:31 H261/90000\r\n\
m=video 53000 RTP/AVP 32\r\n\
a=rtpmap:32 MPV/90000\r\n";

fn carrier_offer(extra_media_attrs: &str, connection: &str) -> String {
    format!(
        "v=0\r\no=- 123 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 {connection}\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 8 0 18 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:18 G729/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\n\
a=ptime:20\r\na=rtcp:30001\r\n{extra_media_attrs}"
    )
}

fn caps(codecs: Vec<Codec>) -> LocalCapabilities {
    LocalCapabilities {
        codecs,
        telephone_event: Some(PayloadType::new(101).expect("dynamic payload type")),
        address: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
        port: 40000,
        rtcp_port: None,
        ptime_ms: 20,
        direction: Direction::SendRecv,
        username: "switchboard".to_owned(),
        session_id: 42,
        session_version: 1,
        srtp: Default::default(),
    }
}

#[test]
fn parses_rfc4566_example() {
    let sdp = SessionDescription::parse(RFC4566_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(sdp.origin.username, "jdoe");
    assert_eq!(sdp.origin.session_id, "2890844526");
    assert_eq!(sdp.origin.session_version, 2890842807);
    assert_eq!(sdp.origin.address.family, AddressFamily::Ip4);
    assert_eq!(sdp.session_name, "SDP Seminar");
    let c = sdp.connection.as_ref().unwrap();
    assert_eq!(c.address.host, "224.2.17.12/127");
    assert_eq!(c.ip(), Some("224.2.17.12".parse().unwrap()));
    assert_eq!(sdp.direction(), Some(Direction::RecvOnly));
    assert_eq!(sdp.media.len(), 2);
    assert_eq!(sdp.media[0].media, "audio");
    assert_eq!(sdp.media[0].port, 49170);
    assert_eq!(sdp.media[0].formats, vec!["0"]);
    // Session-level direction applies to media without their own.
    assert_eq!(sdp.media_direction(0), Direction::RecvOnly);
    let map = sdp.media[1].rtpmaps().next().unwrap();
    assert_eq!(
        (
            map.payload_type.get(),
            map.encoding.as_str(),
            map.clock_rate
        ),
        (99, "h263-1998", 90000)
    );
    // Serialises back byte for byte.
    assert_eq!(sdp.to_string(), RFC4566_EXAMPLE);
}

#[test]
fn bare_lf_and_typed_attributes() {
    let text = carrier_offer("a=sendonly\r\n", "203.0.113.5").replace("\r\n", "\n");
    let sdp = SessionDescription::parse(text.as_bytes()).unwrap();
    let m = &sdp.media[0];
    assert_eq!(m.ptime(), Some(20));
    assert_eq!(m.direction(), Some(Direction::SendOnly));
    assert_eq!(m.fmtp(PayloadType::new(96).unwrap()), Some("0-16"));
    assert_eq!(m.rtcp().unwrap().port, 30001);
    assert_eq!(
        m.payload_types().map(|p| p.get()).collect::<Vec<_>>(),
        vec![8, 0, 18, 96]
    );
}

#[test]
fn parse_errors_name_the_line() {
    let err = |s: &str| SessionDescription::parse(s.as_bytes()).unwrap_err();
    assert_eq!(
        err("o=x\r\n"),
        Error::Sdp {
            line: 1,
            kind: SdpErrorKind::BadVersion
        }
    );
    assert_eq!(
        err("v=0\r\nbogus\r\n"),
        Error::Sdp {
            line: 2,
            kind: SdpErrorKind::MalformedLine
        }
    );
    assert_eq!(
        err("v=0\r\no=a 1 x IN IP4 h\r\n"),
        Error::Sdp {
            line: 2,
            kind: SdpErrorKind::BadField {
                line_type: 'o',
                field: "sess-version"
            }
        }
    );
    assert_eq!(
        err("v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nc=IN IPX 1.2.3.4\r\n"),
        Error::Sdp {
            line: 4,
            kind: SdpErrorKind::BadField {
                line_type: 'c',
                field: "addrtype"
            }
        }
    );
    assert_eq!(
        err("v=0\r\no=a 1 1 IN IP4 h\r\ns=-\r\nm=audio 99999 RTP/AVP 0\r\n"),
        Error::Sdp {
            line: 4,
            kind: SdpErrorKind::BadField {
                line_type: 'm',
                field: "port"
            }
        }
    );
    assert_eq!(
        err("v=0\r\ns=-\r\n"),
        Error::Sdp {
            line: 0,
            kind: SdpErrorKind::Missing('o')
        }
    );
    assert_eq!(
        err(""),
        Error::Sdp {
            line: 1,
            kind: SdpErrorKind::BadVersion
        }
    );
    assert_eq!(
        SessionDescription::parse(&[b'v', b'=', 0xFF]).unwrap_err(),
        Error::Sdp {
            line: 0,
            kind: SdpErrorKind::NotUtf8
        }
    );
}

#[test]
fn rfc3264_section_10_1_answer_rejects_video() {
    let offer_sdp = SessionDescription::parse(RFC3264_OFFER.as_bytes()).unwrap();
    let a = answer(&offer_sdp, &caps(vec![Codec::Pcmu, Codec::Pcma])).unwrap();
    assert_eq!(a.sdp.media.len(), 3);
    assert_eq!(a.sdp.media[0].port, 40000);
    assert_eq!(a.sdp.media[0].formats, vec!["0"]);
    assert_eq!(
        (a.sdp.media[1].port, a.sdp.media[1].formats.clone()),
        (0, vec!["31".to_owned()])
    );
    assert_eq!(
        (a.sdp.media[2].port, a.sdp.media[2].media.as_str()),
        (0, "video")
    );
    assert_eq!(a.media.codec, Codec::Pcmu);
    assert_eq!(a.media.telephone_event, None, "not offered");
    // The offer's connection is an FQDN: nothing to send to until resolved elsewhere.
    assert_eq!(a.media.remote_rtp, None);
    // The answer re-parses.
    let text = a.sdp.to_string();
    assert_eq!(SessionDescription::parse(text.as_bytes()).unwrap(), a.sdp);
}

#[test]
fn answer_uses_local_preference_and_offerer_numbers() {
    let offer_sdp = SessionDescription::parse(carrier_offer("", "203.0.113.5").as_bytes()).unwrap();
    let a = answer(&offer_sdp, &caps(vec![Codec::Pcmu, Codec::Pcma])).unwrap();
    assert_eq!(a.media.codec, Codec::Pcmu);
    assert_eq!(a.media.payload_type, PayloadType::PCMU);
    assert_eq!(
        a.media.telephone_event,
        PayloadType::new(96).ok(),
        "offerer's number, not 101"
    );
    assert_eq!(
        a.media.remote_rtp,
        Some(SocketAddr::from(([203, 0, 113, 5], 30000)))
    );
    assert_eq!(
        a.media.remote_rtcp,
        Some(SocketAddr::from(([203, 0, 113, 5], 30001)))
    );
    assert_eq!(a.media.direction, Direction::SendRecv);
    assert_eq!(a.media.remote_ptime_ms, Some(20));
    let m = &a.sdp.media[0];
    assert_eq!(m.formats, vec!["0", "96"]);
    assert!(m
        .rtpmaps()
        .any(|r| r.encoding == "telephone-event" && r.payload_type.get() == 96));
    assert_eq!(m.direction(), Some(Direction::SendRecv));

    let a = answer(&offer_sdp, &caps(vec![Codec::Pcma, Codec::Pcmu])).unwrap();
    assert_eq!(
        (a.media.codec, a.media.payload_type),
        (Codec::Pcma, PayloadType::PCMA)
    );
    let text = a.sdp.to_string();
    assert!(text.contains("c=IN IP4 198.51.100.7\r\n"), "{text}");
    assert!(text.contains("m=audio 40000 RTP/AVP 8 96\r\n"), "{text}");
}

#[test]
fn answer_mirrors_hold_directions() {
    let cases = [
        ("a=sendonly\r\n", "203.0.113.5", Direction::RecvOnly),
        ("a=recvonly\r\n", "203.0.113.5", Direction::SendOnly),
        ("a=inactive\r\n", "203.0.113.5", Direction::Inactive),
        ("a=sendrecv\r\n", "203.0.113.5", Direction::SendRecv),
        // RFC 2543 legacy hold: sendrecv with c=0.0.0.0 means "do not send to me".
        ("a=sendrecv\r\n", "0.0.0.0", Direction::RecvOnly),
        ("", "0.0.0.0", Direction::RecvOnly),
        ("a=recvonly\r\n", "0.0.0.0", Direction::Inactive),
    ];
    for (attr, conn, expected) in cases {
        let o = SessionDescription::parse(carrier_offer(attr, conn).as_bytes()).unwrap();
        let a = answer(&o, &caps(vec![Codec::Pcmu])).unwrap();
        assert_eq!(a.media.direction, expected, "{attr:?} {conn}");
        assert_eq!(a.sdp.media[0].direction(), Some(expected));
        if conn == "0.0.0.0" {
            assert_eq!(a.media.remote_rtp, None);
        }
    }
    // Session-level direction applies too.
    let text = carrier_offer("", "203.0.113.5").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    let o = SessionDescription::parse(text.as_bytes()).unwrap();
    assert_eq!(
        answer(&o, &caps(vec![Codec::Pcmu]))
            .unwrap()
            .media
            .direction,
        Direction::RecvOnly
    );
}

#[test]
fn unsupported_offers() {
    // Only G.729: nothing acceptable, which SIP turns into 488.
    let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 5000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let o = SessionDescription::parse(text.as_bytes()).unwrap();
    assert_eq!(
        answer(&o, &caps(vec![Codec::Pcmu, Codec::Pcma])),
        Err(Error::NoAcceptableMedia)
    );
    // SRTP profile is rejected with port 0 while a later RTP/AVP audio line is accepted.
    let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 5000 RTP/SAVP 0\r\nm=audio 5002 RTP/AVP 0\r\n";
    let o = SessionDescription::parse(text.as_bytes()).unwrap();
    let a = answer(&o, &caps(vec![Codec::Pcmu])).unwrap();
    assert_eq!(
        (a.sdp.media[0].port, a.sdp.media[0].protocol.as_str()),
        (0, "RTP/SAVP")
    );
    assert_eq!(a.sdp.media[1].port, 40000);
    assert_eq!(a.media.media_index, 1);
    assert_eq!(
        a.media.remote_rtp,
        Some(SocketAddr::from(([192, 0, 2, 1], 5002)))
    );
    // Dynamic type for PCMU by name is honoured; static 0 with a different rtpmap is not PCMU.
    let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 5000 RTP/AVP 0 97\r\na=rtpmap:0 opus/48000/2\r\na=rtpmap:97 pcmu/8000\r\n";
    let o = SessionDescription::parse(text.as_bytes()).unwrap();
    let a = answer(&o, &caps(vec![Codec::Pcmu])).unwrap();
    assert_eq!(a.media.payload_type.get(), 97);
}

#[test]
fn offer_and_negotiate_answer_round_trip() {
    let mut local = caps(vec![Codec::Pcma, Codec::Pcmu]);
    local.rtcp_port = Some(40005);
    let o = offer(&local);
    let text = o.to_string();
    assert!(text.contains("m=audio 40000 RTP/AVP 8 0 101\r\n"), "{text}");
    assert!(
        text.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"),
        "{text}"
    );
    assert!(
        text.contains("a=ptime:20\r\na=rtcp:40005\r\na=sendrecv\r\n"),
        "{text}"
    );
    let parsed = SessionDescription::parse(text.as_bytes()).unwrap();
    assert_eq!(parsed, o);

    // The peer answers with our own answer function, preferring PCMU.
    let mut peer = caps(vec![Codec::Pcmu]);
    peer.address = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
    peer.port = 6000;
    peer.direction = Direction::SendOnly;
    let a = answer(&parsed, &peer).unwrap();
    let n = negotiate_answer(&o, &a.sdp).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, PayloadType::PCMU));
    assert_eq!(n.telephone_event, PayloadType::new(101).ok());
    assert_eq!(n.remote_rtp, Some(SocketAddr::from(([192, 0, 2, 9], 6000))));
    assert_eq!(n.direction, Direction::RecvOnly, "peer only sends");

    let mut wrong = a.sdp.clone();
    wrong.media.push(wrong.media[0].clone());
    assert_eq!(
        negotiate_answer(&o, &wrong),
        Err(Error::AnswerMismatch(AnswerMismatch::MediaCount))
    );
}

#[test]
fn nat_external_address_rewrite() {
    let mut o = offer(&caps(vec![Codec::Pcmu]));
    o.media[0].connection = o.connection.clone();
    o.set_connection_address("203.0.113.200".parse().unwrap());
    let text = o.to_string();
    assert!(text.contains("o=switchboard 42 1 IN IP4 203.0.113.200\r\n"));
    assert_eq!(text.matches("c=IN IP4 203.0.113.200\r\n").count(), 2);
    o.set_connection_address("2001:db8::1".parse().unwrap());
    assert!(o.to_string().contains("c=IN IP6 2001:db8::1\r\n"));
}

/// The offer's `a=ptime` line replaced by `attrs` (none when empty).
fn offer_with_ptime(attrs: &str) -> SessionDescription {
    let text = carrier_offer("", "203.0.113.5").replace("a=ptime:20\r\n", attrs);
    SessionDescription::parse(text.as_bytes()).expect("valid offer")
}

#[test]
fn answer_honours_offered_ptime_and_maxptime() {
    let ours = caps(vec![Codec::Pcmu]);
    // (offered attributes, ptime we send and state in the answer)
    let cases = [
        ("a=ptime:10\r\n", 10),
        ("a=ptime:20\r\n", 20),
        ("a=ptime:30\r\n", 30),
        ("a=ptime:40\r\n", 40),
        // Above what we send: the largest we do.
        ("a=ptime:60\r\n", 40),
        // Not a multiple of 10: round down.
        ("a=ptime:25\r\n", 20),
        // Below 10 ms: our smallest.
        ("a=ptime:5\r\n", 10),
        // No ptime: ours (20), unless maxptime forbids it.
        ("", 20),
        ("a=maxptime:10\r\n", 10),
        ("a=maxptime:40\r\n", 20),
        ("a=ptime:40\r\na=maxptime:30\r\n", 30),
        ("a=ptime:junk\r\n", 20),
    ];
    for (attrs, expected) in cases {
        let a = answer(&offer_with_ptime(attrs), &ours).unwrap();
        assert_eq!(a.media.ptime_ms, expected, "offer {attrs:?}");
        let m = &a.sdp.media[0];
        assert_eq!(
            m.ptime(),
            Some(expected),
            "answer states it, offer {attrs:?}"
        );
        let text = String::from_utf8(a.sdp.to_bytes()).unwrap();
        assert_eq!(text.matches("a=ptime:").count(), 1, "{text}");
    }
}

#[test]
fn our_offer_then_the_answer_ptime_decides_what_we_send() {
    let mut ours = caps(vec![Codec::Pcmu]);
    ours.ptime_ms = 30;
    let o = offer(&ours);
    assert_eq!(o.media[0].ptime(), Some(30));
    let answer_text = |attrs: &str| {
        format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
m=audio 5004 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n{attrs}"
        )
    };
    let negotiated = |attrs: &str| {
        let a = SessionDescription::parse(answer_text(attrs).as_bytes()).unwrap();
        negotiate_answer(&o, &a).unwrap().ptime_ms
    };
    assert_eq!(negotiated("a=ptime:20\r\n"), 20);
    assert_eq!(
        negotiated(""),
        30,
        "no ptime in the answer: what we offered"
    );
    assert_eq!(negotiated("a=maxptime:20\r\n"), 20);
}

/// A carrier's SRTP offer (RFC 4568 §8.1's shape): RTP/SAVP with two crypto lines, the
/// stronger tag first.
fn srtp_offer(protocol: &str) -> String {
    carrier_offer(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20\r\n\
         a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n",
        "203.0.113.5",
    )
    .replace("RTP/AVP", protocol)
}

fn key(byte: u8) -> MasterKey {
    MasterKey::new([byte; 30])
}

#[test]
fn an_srtp_offer_is_answered_with_our_key_for_its_first_suite() {
    let offer = SessionDescription::parse(srtp_offer("RTP/SAVP").as_bytes()).unwrap();
    let mut ours = caps(vec![Codec::Pcmu, Codec::Pcma]);
    ours.srtp = SrtpPolicy::Accept(key(7));
    let answered = answer(&offer, &ours).unwrap();
    let m = &answered.sdp.media[0];
    assert_eq!(m.protocol, "RTP/SAVP");
    let line = m.attribute("crypto").unwrap();
    assert_eq!(
        line,
        format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", key(7).inline())
    );
    let keying = answered.media.srtp.unwrap();
    assert_eq!(keying.suite, Suite::AesCm128HmacSha1_80);
    assert_eq!(keying.ours, key(7));
    assert_eq!(
        keying.theirs,
        MasterKey::from_inline("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz").unwrap()
    );
    // A plain offer gets a plain answer under the same policy.
    let plain = SessionDescription::parse(carrier_offer("", "203.0.113.5").as_bytes()).unwrap();
    let answered = answer(&plain, &ours).unwrap();
    assert_eq!(answered.sdp.media[0].protocol, "RTP/AVP");
    assert!(answered.sdp.media[0].attribute("crypto").is_none());
    assert_eq!(answered.media.srtp, None);
}

#[test]
fn the_srtp_policy_refuses_what_it_cannot_do() {
    let savp = SessionDescription::parse(srtp_offer("RTP/SAVP").as_bytes()).unwrap();
    let plain = SessionDescription::parse(carrier_offer("", "203.0.113.5").as_bytes()).unwrap();
    let mut ours = caps(vec![Codec::Pcmu, Codec::Pcma]);
    assert_eq!(
        answer(&savp, &ours).unwrap_err(),
        Error::NoAcceptableMedia,
        "SRTP off"
    );
    ours.srtp = SrtpPolicy::Require(key(7));
    assert_eq!(
        answer(&plain, &ours).unwrap_err(),
        Error::NoAcceptableMedia,
        "SRTP required"
    );
    // SRTP offered only with suites we do not have.
    ours.srtp = SrtpPolicy::Accept(key(7));
    let text = srtp_offer("RTP/SAVP").replace("AES_CM_128_HMAC_SHA1", "AES_256_CM_HMAC_SHA1");
    let strong = SessionDescription::parse(text.as_bytes()).unwrap();
    assert_eq!(
        answer(&strong, &ours).unwrap_err(),
        Error::NoAcceptableMedia
    );
}

#[test]
fn our_srtp_offer_and_the_peers_answer_agree_on_keys() {
    let mut ours = caps(vec![Codec::Pcmu]);
    ours.srtp = SrtpPolicy::Require(key(1));
    let our_offer = offer(&ours);
    assert_eq!(our_offer.media[0].protocol, "RTP/SAVP");
    let mut peer = caps(vec![Codec::Pcmu]);
    peer.srtp = SrtpPolicy::Accept(key(2));
    let their_answer = answer(&our_offer, &peer).unwrap();
    let theirs = their_answer.media.srtp.clone().unwrap();
    let agreed = negotiate_answer(&our_offer, &their_answer.sdp).unwrap();
    let keying = agreed.srtp.unwrap();
    assert_eq!((keying.ours, keying.theirs), (key(1), key(2)));
    assert_eq!((theirs.ours, theirs.theirs), (key(2), key(1)));
    // An answer that takes up none of our crypto lines is refused.
    let mut stripped = their_answer.sdp.clone();
    stripped.media[0].attributes.retain(|a| a.name != "crypto");
    assert_eq!(
        negotiate_answer(&our_offer, &stripped).unwrap_err(),
        Error::AnswerMismatch(AnswerMismatch::NoCrypto)
    );
}
