//! RFC 3264 offer/answer for one G.711 audio stream plus RFC 4733 telephone-event, in RTP or,
//! keyed in the SDP (SDES, RFC 4568), in SRTP.

use std::net::{IpAddr, SocketAddr};

use super::{Address, Attribute, Connection, Direction, MediaDescription, SessionDescription};
use crate::srtp::{Crypto, Keying, MasterKey, Suite};
use crate::{AnswerMismatch, Error, PayloadType};

const RTP_AVP: &str = "RTP/AVP";
const RTP_SAVP: &str = "RTP/SAVP";

/// Whether a call's media may or must be SRTP, and our master key for it (a fresh random one per
/// call: SDES keys travel in the SDP, so they are only as secret as the signalling).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SrtpPolicy {
    /// RTP only: an offer of RTP/SAVP alone is refused.
    #[default]
    Off,
    /// SRTP when the offer asks for it (RTP/SAVP with a crypto line we support), RTP otherwise;
    /// our own offers are RTP.
    Accept(MasterKey),
    /// SRTP only: our offers are RTP/SAVP, and an offer of RTP is refused.
    Require(MasterKey),
}

impl SrtpPolicy {
    fn key(&self) -> Option<&MasterKey> {
        match self {
            SrtpPolicy::Off => None,
            SrtpPolicy::Accept(key) | SrtpPolicy::Require(key) => Some(key),
        }
    }
}

/// Packet times we send, in ms: whole multiples of 10 ms up to 40 (the sizes G.711 peers use;
/// RFC 3551 §4.5 packs G.711 in any multiple of a sample, but 10 ms frames are the common unit).
pub const PTIMES_MS: [u32; 4] = [10, 20, 30, 40];

/// Audio codecs we negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

impl Codec {
    /// The rtpmap encoding name.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The RFC 3551 static payload type.
    pub fn static_payload_type(self) -> PayloadType {
        match self {
            Codec::Pcmu => PayloadType::PCMU,
            Codec::Pcma => PayloadType::PCMA,
        }
    }

    /// Clock rate.
    pub fn clock_rate(self) -> u32 {
        8000
    }
}

/// What we can do and where we listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCapabilities {
    /// Codecs in our order of preference; the answer picks the first the offer contains.
    pub codecs: Vec<Codec>,
    /// Payload type we offer for telephone-event (101 is customary); `None` disables RFC 4733.
    /// Answers reuse the offerer's number.
    pub telephone_event: Option<PayloadType>,
    /// Address written in `o=` and `c=`: our public (NAT external) address.
    pub address: IpAddr,
    /// Our RTP port.
    pub port: u16,
    /// Our RTCP port, advertised with `a=rtcp` (RFC 3605) when not `port + 1`.
    pub rtcp_port: Option<u16>,
    /// Packet time we offer and send when the peer states none, in ms (one of [`PTIMES_MS`]).
    pub ptime_ms: u32,
    /// The direction we want (sendrecv normally; sendonly/inactive to put the peer on hold).
    pub direction: Direction,
    /// `o=` username.
    pub username: String,
    /// `o=` session id (random, an input).
    pub session_id: u64,
    /// `o=` session version; increment for each new offer or answer in a dialog.
    pub session_version: u64,
    /// SRTP (SDES).
    pub srtp: SrtpPolicy,
}

/// The outcome of a negotiation: what the RTP session needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Index of the audio m-line.
    pub media_index: usize,
    /// The codec.
    pub codec: Codec,
    /// Its payload type number on this call.
    pub payload_type: PayloadType,
    /// Telephone-event payload type, if both sides support it.
    pub telephone_event: Option<PayloadType>,
    /// Where to send RTP; `None` when the peer is on hold via `c=0.0.0.0`, gave an FQDN, or
    /// does not receive.
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP (`a=rtcp`, else RTP port + 1).
    pub remote_rtcp: Option<SocketAddr>,
    /// Our direction: whether we send and/or receive.
    pub direction: Direction,
    /// The peer's `a=ptime`, if given.
    pub remote_ptime_ms: Option<u32>,
    /// The packet time we send (one of [`PTIMES_MS`]): the peer's `a=ptime` when we support
    /// it, else the largest we do that is not above its `a=ptime` or `a=maxptime`, else ours.
    /// What we receive may be any size.
    pub ptime_ms: u32,
    /// The SRTP keys, when the stream is RTP/SAVP.
    pub srtp: Option<Keying>,
}

/// An answer and what it agreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The SDP to send.
    pub sdp: SessionDescription,
    /// The negotiated stream.
    pub media: NegotiatedMedia,
}

/// Builds an offer with one audio stream.
pub fn offer(caps: &LocalCapabilities) -> SessionDescription {
    let mut session = base_session(caps);
    let mut media = MediaDescription {
        media: "audio".to_owned(),
        port: caps.port,
        port_count: None,
        protocol: RTP_AVP.to_owned(),
        formats: Vec::new(),
        connection: None,
        other: Vec::new(),
        attributes: Vec::new(),
    };
    if let SrtpPolicy::Require(key) = &caps.srtp {
        media.protocol = RTP_SAVP.to_owned();
        for (tag, suite) in (1..).zip(Suite::ALL) {
            let key = key.clone();
            add_crypto(&mut media, &Crypto { tag, suite, key });
        }
    }
    for codec in &caps.codecs {
        add_codec(&mut media, *codec, codec.static_payload_type());
    }
    if let Some(te) = caps.telephone_event {
        add_telephone_event(&mut media, te);
    }
    add_common(&mut media, caps, caps.direction, caps.ptime_ms);
    session.media.push(media);
    session
}

/// Answers an offer (RFC 3264 §6): accepts the first audio stream that shares a codec and that
/// the SRTP policy allows (RTP/AVP, or RTP/SAVP with a crypto line of a suite we support), using
/// the offerer's payload type numbers, and rejects every other m-line with port 0.
pub fn answer(offer: &SessionDescription, caps: &LocalCapabilities) -> Result<Answer, Error> {
    let mut session = base_session(caps);
    let mut negotiated = None;
    for (index, m) in offer.media.iter().enumerate() {
        let security = if negotiated.is_none() && m.media == "audio" && m.port != 0 {
            security(m, &caps.srtp)
        } else {
            None
        };
        let choice = security.and_then(|keying| Some((choose_codec(m, &caps.codecs)?, keying)));
        let Some(((codec, payload_type), srtp)) = choice else {
            session.media.push(rejected(m));
            continue;
        };
        let telephone_event = caps.telephone_event.and_then(|_| find_telephone_event(m));
        let offered = effective_direction(offer, index);
        let direction = offered.answer_to(caps.direction);
        let mut media = MediaDescription {
            media: m.media.clone(),
            port: caps.port,
            port_count: None,
            protocol: m.protocol.clone(),
            formats: Vec::new(),
            connection: None,
            other: Vec::new(),
            attributes: Vec::new(),
        };
        if let Some((tag, keying)) = &srtp {
            let crypto = Crypto {
                tag: *tag,
                suite: keying.suite,
                key: keying.ours.clone(),
            };
            add_crypto(&mut media, &crypto);
        }
        add_codec(&mut media, codec, payload_type);
        if let Some(te) = telephone_event {
            add_telephone_event(&mut media, te);
        }
        // RFC 3264 §6.1: the answer states the packet time we will send.
        let ptime_ms = choose_ptime(m, caps.ptime_ms);
        add_common(&mut media, caps, direction, ptime_ms);
        session.media.push(media);
        negotiated = Some(NegotiatedMedia {
            srtp: srtp.map(|(_, keying)| keying),
            ..negotiated_media(
                offer,
                index,
                codec,
                payload_type,
                telephone_event,
                direction,
                ptime_ms,
            )
        });
    }
    let media = negotiated.ok_or(Error::NoAcceptableMedia)?;
    Ok(Answer {
        sdp: session,
        media,
    })
}

/// Reads the peer's answer to our `offer` (RFC 3264 §7).
pub fn negotiate_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<NegotiatedMedia, Error> {
    if offer.media.len() != answer.media.len() {
        return Err(Error::AnswerMismatch(AnswerMismatch::MediaCount));
    }
    let (index, m) = answer
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| m.port != 0 && m.media == "audio")
        .ok_or(Error::NoAcceptableMedia)?;
    let offered: Vec<Codec> = [Codec::Pcmu, Codec::Pcma]
        .into_iter()
        .filter(|c| choose_codec(&offer.media[index], &[*c]).is_some())
        .collect();
    // The answerer's preferred codec is its first listed format that we offered.
    let (codec, payload_type) = m
        .payload_types()
        .find_map(|pt| {
            offered
                .iter()
                .copied()
                .find(|c| payload_matches(m, pt, *c))
                .map(|c| (c, pt))
        })
        .ok_or(Error::AnswerMismatch(AnswerMismatch::UnknownCodec))?;
    let telephone_event =
        find_telephone_event(&offer.media[index]).and_then(|_| find_telephone_event(m));
    let direction = effective_direction(answer, index).answer_to(Direction::SendRecv);
    if answer.media_connection(index).is_none() {
        return Err(Error::AnswerMismatch(AnswerMismatch::NoConnection));
    }
    let ours = offer.media[index].ptime().unwrap_or(20);
    let ptime_ms = choose_ptime(m, ours);
    let srtp = answered_keys(&offer.media[index], m)?;
    Ok(NegotiatedMedia {
        srtp,
        ..negotiated_media(
            answer,
            index,
            codec,
            payload_type,
            telephone_event,
            direction,
            ptime_ms,
        )
    })
}

/// Whether a stream of the offer is one the policy takes: `Some(None)` for RTP, `Some(Some)` with
/// the offer's crypto tag and the keys for SRTP, `None` when it may not be accepted.
fn security(m: &MediaDescription, policy: &SrtpPolicy) -> Option<Option<(u32, Keying)>> {
    match (m.protocol.as_str(), policy) {
        (RTP_AVP, SrtpPolicy::Require(_)) => None,
        (RTP_AVP, _) => Some(None),
        (RTP_SAVP, _) => {
            let ours = policy.key()?;
            // The offerer lists its crypto lines in its order of preference (RFC 4568 §7.1.1).
            let theirs = cryptos(m).next()?;
            let keying = Keying {
                suite: theirs.suite,
                ours: ours.clone(),
                theirs: theirs.key,
            };
            Some(Some((theirs.tag, keying)))
        }
        _ => None,
    }
}

/// The keys of an RTP/SAVP answer to our RTP/SAVP offer: its one crypto line must take up one of
/// ours, by tag and suite (RFC 4568 §7.1.2).
fn answered_keys(
    offered: &MediaDescription,
    answered: &MediaDescription,
) -> Result<Option<Keying>, Error> {
    if offered.protocol != RTP_SAVP {
        return Ok(None);
    }
    let mismatch = Error::AnswerMismatch(AnswerMismatch::NoCrypto);
    let theirs = cryptos(answered).next().ok_or(mismatch.clone())?;
    let ours = cryptos(offered)
        .find(|c| c.tag == theirs.tag && c.suite == theirs.suite)
        .ok_or(mismatch)?;
    Ok(Some(Keying {
        suite: theirs.suite,
        ours: ours.key,
        theirs: theirs.key,
    }))
}

/// The stream's crypto lines we could use, in its order.
fn cryptos(m: &MediaDescription) -> impl Iterator<Item = Crypto> + '_ {
    m.attributes
        .iter()
        .filter(|a| a.name == "crypto")
        .filter_map(|a| Crypto::parse(a.value.as_deref()?))
}

/// The packet time to send to a peer whose media description is `m`: its `a=ptime` (else
/// `ours`), capped by its `a=maxptime`, rounded down to one we send (RFC 4566 §6: ptime is a
/// preference, maxptime a limit).
pub fn choose_ptime(m: &MediaDescription, ours: u32) -> u32 {
    let limit = m.maxptime().unwrap_or(u32::MAX);
    let wanted = m.ptime().unwrap_or(ours).min(limit);
    PTIMES_MS
        .iter()
        .rev()
        .copied()
        .find(|&p| p <= wanted)
        .unwrap_or(PTIMES_MS[0])
}

fn base_session(caps: &LocalCapabilities) -> SessionDescription {
    SessionDescription {
        origin: super::Origin {
            username: if caps.username.is_empty() {
                "-".to_owned()
            } else {
                caps.username.clone()
            },
            session_id: caps.session_id.to_string(),
            session_version: caps.session_version,
            address: Address::from_ip(caps.address),
        },
        session_name: "-".to_owned(),
        connection: Some(Connection::new(caps.address)),
        other: vec![super::Line {
            kind: 't',
            value: "0 0".to_owned(),
        }],
        attributes: Vec::new(),
        media: Vec::new(),
    }
}

fn payload_matches(m: &MediaDescription, pt: PayloadType, codec: Codec) -> bool {
    match m.rtpmaps().find(|r| r.payload_type == pt) {
        Some(map) => {
            map.encoding.eq_ignore_ascii_case(codec.encoding_name())
                && map.clock_rate == codec.clock_rate()
                && map.channels.unwrap_or(1) == 1
        }
        // RFC 3551 static types need no rtpmap.
        None => pt == codec.static_payload_type(),
    }
}

fn choose_codec(m: &MediaDescription, preference: &[Codec]) -> Option<(Codec, PayloadType)> {
    preference.iter().find_map(|&codec| {
        m.payload_types()
            .find(|&pt| payload_matches(m, pt, codec))
            .map(|pt| (codec, pt))
    })
}

fn find_telephone_event(m: &MediaDescription) -> Option<PayloadType> {
    let listed: Vec<PayloadType> = m.payload_types().collect();
    m.rtpmaps()
        .find(|r| {
            r.encoding.eq_ignore_ascii_case("telephone-event")
                && r.clock_rate == 8000
                && listed.contains(&r.payload_type)
        })
        .map(|r| r.payload_type)
}

/// The peer's direction, with RFC 2543 legacy hold (`c=0.0.0.0`) meaning "do not send to me".
fn effective_direction(sdp: &SessionDescription, index: usize) -> Direction {
    let direction = sdp.media_direction(index);
    if sdp.media_connection(index).is_some_and(Connection::is_hold) {
        Direction::from_flags(direction.sends(), false)
    } else {
        direction
    }
}

fn negotiated_media(
    remote: &SessionDescription,
    index: usize,
    codec: Codec,
    payload_type: PayloadType,
    telephone_event: Option<PayloadType>,
    direction: Direction,
    ptime_ms: u32,
) -> NegotiatedMedia {
    let m = &remote.media[index];
    let ip = remote
        .media_connection(index)
        .and_then(Connection::ip)
        .filter(|ip| !ip.is_unspecified());
    let remote_rtp = ip.map(|ip| SocketAddr::new(ip, m.port));
    let remote_rtcp = match m.rtcp() {
        Some(rtcp) => rtcp
            .connection
            .and_then(|c| c.ip())
            .or(ip)
            .map(|ip| SocketAddr::new(ip, rtcp.port)),
        None => ip.map(|ip| SocketAddr::new(ip, m.port.wrapping_add(1))),
    };
    NegotiatedMedia {
        media_index: index,
        codec,
        payload_type,
        telephone_event,
        remote_rtp,
        remote_rtcp,
        direction,
        remote_ptime_ms: m.ptime(),
        ptime_ms,
        srtp: None,
    }
}

fn rejected(m: &MediaDescription) -> MediaDescription {
    // RFC 3264 §6: a rejected stream keeps its media and proto, port 0, and at least one format.
    MediaDescription {
        media: m.media.clone(),
        port: 0,
        port_count: None,
        protocol: m.protocol.clone(),
        formats: vec![m.formats.first().cloned().unwrap_or_else(|| "0".to_owned())],
        connection: None,
        other: Vec::new(),
        attributes: Vec::new(),
    }
}

fn add_codec(media: &mut MediaDescription, codec: Codec, pt: PayloadType) {
    media.formats.push(pt.to_string());
    media.attributes.push(Attribute::value(
        "rtpmap",
        format!("{pt} {}/{}", codec.encoding_name(), codec.clock_rate()),
    ));
}

fn add_crypto(media: &mut MediaDescription, crypto: &Crypto) {
    media
        .attributes
        .push(Attribute::value("crypto", crypto.to_value()));
}

fn add_telephone_event(media: &mut MediaDescription, pt: PayloadType) {
    media.formats.push(pt.to_string());
    media.attributes.push(Attribute::value(
        "rtpmap",
        format!("{pt} telephone-event/8000"),
    ));
    media
        .attributes
        .push(Attribute::value("fmtp", format!("{pt} 0-15")));
}

fn add_common(
    media: &mut MediaDescription,
    caps: &LocalCapabilities,
    direction: Direction,
    ptime_ms: u32,
) {
    media
        .attributes
        .push(Attribute::value("ptime", ptime_ms.to_string()));
    if let Some(rtcp) = caps.rtcp_port {
        if rtcp != caps.port.wrapping_add(1) {
            media
                .attributes
                .push(Attribute::value("rtcp", rtcp.to_string()));
        }
    }
    media.attributes.push(Attribute::flag(direction.as_str()));
}
