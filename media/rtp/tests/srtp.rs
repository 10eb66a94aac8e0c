//! SRTP and SRTCP against the reference implementation's vectors (libsrtp's test key, which is
//! RFC 3711 B.3's), and what an attacker on the path can and cannot do.
#![allow(clippy::unwrap_used)] // reason: test code, where a panic is the failure report

use media_rtp::srtp::{Crypto, Inbound, MasterKey, Outbound, Suite};
use media_rtp::{Error, PayloadType, RtpPacket, RtpSender, SenderConfig, Ssrc};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn seal_rtp(out: &mut Outbound, packet: &[u8]) -> Result<Vec<u8>, Error> {
    let mut sealed = packet.to_vec();
    out.protect_rtp(&mut sealed).map(|()| sealed)
}

fn seal_rtcp(out: &mut Outbound, packet: &[u8]) -> Result<Vec<u8>, Error> {
    let mut sealed = packet.to_vec();
    out.protect_rtcp(&mut sealed).map(|()| sealed)
}

fn open_rtp(inbound: &mut Inbound, packet: &[u8]) -> Result<Vec<u8>, Error> {
    let mut opened = vec![0xEE; 3]; // whatever a reused buffer held before
    inbound.unprotect_rtp(packet, &mut opened).map(|()| opened)
}

fn open_rtcp(inbound: &mut Inbound, packet: &[u8]) -> Result<Vec<u8>, Error> {
    let mut opened = vec![0xEE; 3];
    inbound.unprotect_rtcp(packet, &mut opened).map(|()| opened)
}

fn key() -> MasterKey {
    MasterKey::new(
        hex("E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6")
            .try_into()
            .unwrap(),
    )
}

const RTP: &str = "800f1234 decafbad cafebabe abababab abababab abababab abababab";
const SRTP_80: &str = "800f1234 decafbad cafebabe 4e55dc4c e79978d8 8ca4d215 949d2402 \
                       b78d6acc 99ea179b 8dbb";
const RTCP: &str = "81c8000b cafebabe abababab abababab abababab abababab";
const SRTCP: &str = "81c8000b cafebabe 7128035b e487b9bd bef89041 f977a5a8 80000001 \
                     993e08cd 54d6c123 0798";

#[test]
fn protected_packets_are_the_reference_implementations_bytes() {
    let mut out = Outbound::new(Suite::AesCm128HmacSha1_80, &key());
    assert_eq!(seal_rtp(&mut out, &hex(RTP)).unwrap(), hex(SRTP_80));
    assert_eq!(seal_rtcp(&mut out, &hex(RTCP)).unwrap(), hex(SRTCP));
    let mut short = Outbound::new(Suite::AesCm128HmacSha1_32, &key());
    let srtp_32 = &hex(SRTP_80)[..32];
    assert_eq!(seal_rtp(&mut short, &hex(RTP)).unwrap(), srtp_32);

    let mut inbound = Inbound::new(Suite::AesCm128HmacSha1_80, &key());
    assert_eq!(open_rtp(&mut inbound, &hex(SRTP_80)).unwrap(), hex(RTP));
    assert_eq!(open_rtcp(&mut inbound, &hex(SRTCP)).unwrap(), hex(RTCP));
    let mut inbound = Inbound::new(Suite::AesCm128HmacSha1_32, &key());
    assert_eq!(open_rtp(&mut inbound, srtp_32).unwrap(), hex(RTP));
}

#[test]
fn forged_altered_and_replayed_packets_are_refused() {
    let mut inbound = Inbound::new(Suite::AesCm128HmacSha1_80, &key());
    let good = hex(SRTP_80);
    for at in [1, 6, 12, 20, good.len() - 1] {
        let mut altered = good.clone();
        altered[at] ^= 0x01;
        assert_eq!(
            open_rtp(&mut inbound, &altered),
            Err(Error::SrtpAuthentication),
            "byte {at} flipped"
        );
    }
    // Plain RTP injected into an SRTP call does not authenticate either.
    assert_eq!(
        open_rtp(&mut inbound, &hex(RTP)),
        Err(Error::SrtpAuthentication)
    );
    assert!(open_rtp(&mut inbound, &good).is_ok());
    assert_eq!(open_rtp(&mut inbound, &good), Err(Error::SrtpReplay));
    let srtcp = hex(SRTCP);
    assert!(open_rtcp(&mut inbound, &srtcp).is_ok());
    assert_eq!(open_rtcp(&mut inbound, &srtcp), Err(Error::SrtpReplay));
    let mut other = Inbound::new(Suite::AesCm128HmacSha1_80, &MasterKey::new([7; 30]));
    assert_eq!(
        open_rtp(&mut other, &good),
        Err(Error::SrtpAuthentication),
        "another call's key"
    );
    assert!(matches!(
        open_rtp(&mut inbound, &good[..11]),
        Err(Error::Truncated { .. })
    ));
}

/// A whole stream across a sequence-number wrap, some packets reordered: every one opens, in
/// any order, exactly once.
#[test]
fn a_stream_survives_the_sequence_wrap_and_reordering() {
    let mut sender = RtpSender::new(SenderConfig {
        ssrc: Ssrc(0x5151),
        payload_type: PayloadType::PCMU,
        clock_rate: 8000,
        ptime_ms: 20,
        initial_sequence: 65_500,
        initial_timestamp: 0,
    });
    let mut out = Outbound::new(Suite::AesCm128HmacSha1_80, &key());
    let mut inbound = Inbound::new(Suite::AesCm128HmacSha1_80, &key());
    let plain: Vec<Vec<u8>> = (0..100u8)
        .map(|i| sender.next_packet(&[i; 160]).to_vec())
        .collect();
    let mut sealed: Vec<Vec<u8>> = plain
        .iter()
        .map(|p| seal_rtp(&mut out, p).unwrap())
        .collect();
    for pair in sealed.chunks_mut(2) {
        pair.reverse();
    }
    let mut opened: Vec<Vec<u8>> = sealed
        .iter()
        .map(|s| open_rtp(&mut inbound, s).unwrap())
        .collect();
    for pair in opened.chunks_mut(2) {
        pair.reverse();
    }
    assert_eq!(opened, plain);
    let last = RtpPacket::parse(&opened[99]).unwrap();
    assert_eq!(last.payload, &[99u8; 160][..]);
    assert!(sealed
        .iter()
        .all(|s| open_rtp(&mut inbound, s) == Err(Error::SrtpReplay)));
}

#[test]
fn crypto_lines_parse_as_rfc_4568_writes_them() {
    let line = "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20";
    let crypto = Crypto::parse(line).unwrap();
    assert_eq!((crypto.tag, crypto.suite), (1, Suite::AesCm128HmacSha1_80));
    assert_eq!(
        crypto.to_value(),
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
    );
    let key = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
    for unsupported in [
        format!("1 AES_256_CM_HMAC_SHA1_80 {key}"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {key}|2^20|1:4"), // an MKI
        format!("1 AES_CM_128_HMAC_SHA1_80 {key} UNENCRYPTED_SRTP"),
        "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=".to_owned(), // not 30 bytes
        "x AES_CM_128_HMAC_SHA1_80 inline:".to_owned(),
    ] {
        assert_eq!(Crypto::parse(&unsupported), None, "{unsupported}");
    }
}
