//! RTP/RTCP wire format (RFC 3550 §5.1, §6.4–6.6): hand-assembled vectors, round trips and
//! adversarial inputs.

use media_rtp::rtcp::{
    self, Goodbye, ReceiverReport, ReportBlock, RtcpPacket, SdesChunk, SdesItem,
};
use media_rtp::rtcp::{SenderInfo, SenderReport, SourceDescription};
use media_rtp::{
    classify, Csrcs, Error, HeaderExtension, PacketKind, PayloadType, RtpPacket, Ssrc,
};

#[test]
fn minimal_pcmu_packet() {
    // V=2 P=0 X=0 CC=0 | M=1 PT=0 | seq 0x1234 | ts 0x000000A0 | SSRC 0xDEADBEEF | 4 bytes payload
    let wire = [
        0x80, 0x80, 0x12, 0x34, 0x00, 0x00, 0x00, 0xA0, 0xDE, 0xAD, 0xBE, 0xEF, 0xFF, 0xFF, 0x7F,
        0x7F,
    ];
    let p = RtpPacket::parse(&wire).unwrap();
    assert!(p.marker);
    assert_eq!(p.payload_type, PayloadType::PCMU);
    assert_eq!(p.sequence, 0x1234);
    assert_eq!(p.timestamp, 160);
    assert_eq!(p.ssrc, Ssrc(0xDEAD_BEEF));
    assert!(p.csrcs.is_empty());
    assert_eq!(p.extension, None);
    assert_eq!(p.payload, &[0xFF, 0xFF, 0x7F, 0x7F]);
    assert_eq!(p.padding, 0);
    assert_eq!(p.to_vec(), wire);
}

#[test]
fn csrc_extension_and_padding() {
    let mut wire = vec![
        0xB2, 0x08, 0x00, 0x07, 0x00, 0x01, 0x00, 0x00, 0x11, 0x22, 0x33,
        0x44, // X, P, CC=2, PCMA
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // CSRCs 1, 2
        0xBE, 0xDE, 0x00, 0x01, 0x10, 0xAA, 0x00, 0x00, // one-word extension
        0xD5, 0xD5, 0xD5, // payload
    ];
    wire.extend_from_slice(&[0, 0, 3]); // 3 padding octets
    let p = RtpPacket::parse(&wire).unwrap();
    assert!(!p.marker);
    assert_eq!(p.payload_type, PayloadType::PCMA);
    assert_eq!(p.csrcs.iter().collect::<Vec<_>>(), vec![Ssrc(1), Ssrc(2)]);
    assert_eq!(
        p.extension,
        Some(HeaderExtension {
            profile: 0xBEDE,
            data: &[0x10, 0xAA, 0, 0]
        })
    );
    assert_eq!(p.payload, &[0xD5; 3]);
    assert_eq!(p.padding, 3);
    assert_eq!(p.serialized_len(), wire.len());
    assert_eq!(p.to_vec(), wire);
}

#[test]
fn build_with_csrcs_round_trips() {
    let csrc_bytes = [0, 0, 0, 9];
    let mut p = RtpPacket::new(
        PayloadType::new(101).unwrap(),
        65535,
        u32::MAX,
        Ssrc(7),
        b"abc",
    );
    p.csrcs = Csrcs::from_bytes(&csrc_bytes).unwrap();
    p.padding = 1;
    let wire = p.to_vec();
    assert_eq!(RtpPacket::parse(&wire).unwrap(), p);
    let mut small = [0u8; 10];
    assert_eq!(
        p.write_to(&mut small),
        Err(Error::BufferTooSmall {
            needed: wire.len(),
            available: 10
        })
    );
}

#[test]
fn malformed_rtp_is_a_clear_error() {
    assert!(matches!(
        RtpPacket::parse(&[0x80; 11]),
        Err(Error::Truncated {
            needed: 12,
            available: 11,
            ..
        })
    ));
    let mut v1 = [0u8; 12];
    v1[0] = 0x40;
    assert_eq!(RtpPacket::parse(&v1), Err(Error::UnsupportedVersion(1)));
    // CC=15 but no CSRCs present.
    let mut cc = [0u8; 12];
    cc[0] = 0x8F;
    assert!(matches!(
        RtpPacket::parse(&cc),
        Err(Error::Truncated {
            what: "RTP CSRC list",
            needed: 72,
            ..
        })
    ));
    // Extension header claims 100 words.
    let ext = [0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xBE, 0xDE, 0, 100];
    assert!(matches!(
        RtpPacket::parse(&ext),
        Err(Error::Truncated {
            what: "RTP header extension",
            ..
        })
    ));
    // Padding count larger than the payload, and zero padding.
    let pad = [0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9];
    assert_eq!(
        RtpPacket::parse(&pad),
        Err(Error::InvalidPadding {
            padding: 9,
            available: 2
        })
    );
    let zero_pad = [0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    assert!(matches!(
        RtpPacket::parse(&zero_pad),
        Err(Error::InvalidPadding { padding: 0, .. })
    ));
    assert_eq!(PayloadType::new(128), Err(Error::InvalidPayloadType(128)));
}

#[test]
fn rtcp_mux_classification() {
    assert_eq!(
        classify(&[0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        PacketKind::Rtp
    );
    assert_eq!(classify(&[0x81, 200, 0, 6]), PacketKind::Rtcp);
    assert_eq!(classify(&[0x00, 0x01, 0x00, 0x00]), PacketKind::Unknown); // STUN
    assert_eq!(classify(&[]), PacketKind::Unknown);
}

fn block(ssrc: u32) -> ReportBlock {
    ReportBlock {
        ssrc: Ssrc(ssrc),
        fraction_lost: 25,
        cumulative_lost: -3,
        highest_sequence: 0x0001_0010,
        jitter: 42,
        last_sender_report: 0x1234_5678,
        delay_since_last_sender_report: 65536,
    }
}

#[test]
fn rtcp_sender_report_vector() {
    // SR, RC=1, length 12 words (52 bytes), as laid out in RFC 3550 §6.4.1.
    let wire: Vec<u8> = [
        &[0x81, 200, 0x00, 0x0C][..],
        &[0x11, 0x22, 0x33, 0x44],                         // sender SSRC
        &[0x83, 0xAA, 0x7E, 0x80, 0x80, 0x00, 0x00, 0x00], // NTP
        &[0x00, 0x00, 0x03, 0x20],                         // RTP ts 800
        &[0x00, 0x00, 0x00, 0x05],                         // packets
        &[0x00, 0x00, 0x03, 0x20],                         // octets
        &[0x00, 0x00, 0x00, 0x09],                         // block: SSRC 9
        &[0x19, 0xFF, 0xFF, 0xFD],                         // fraction 25, cumulative -3
        &[0x00, 0x01, 0x00, 0x10],
        &[0x00, 0x00, 0x00, 0x2A],
        &[0x12, 0x34, 0x56, 0x78],
        &[0x00, 0x01, 0x00, 0x00],
    ]
    .concat();
    let packets = rtcp::parse_compound(&wire).unwrap();
    let expected = RtcpPacket::SenderReport(SenderReport {
        ssrc: Ssrc(0x1122_3344),
        info: SenderInfo {
            ntp_timestamp: 0x83AA_7E80_8000_0000,
            rtp_timestamp: 800,
            packet_count: 5,
            octet_count: 800,
        },
        reports: vec![block(9)],
    });
    assert_eq!(packets, vec![expected.clone()]);
    assert_eq!(rtcp::write_compound(&[expected]).unwrap(), wire);
}

#[test]
fn rtcp_compound_rr_sdes_bye_round_trip() {
    let packets = vec![
        RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: Ssrc(1),
            reports: vec![block(2), block(3)],
        }),
        RtcpPacket::SourceDescription(SourceDescription {
            chunks: vec![SdesChunk {
                ssrc: Ssrc(1),
                items: vec![SdesItem {
                    kind: rtcp::SDES_CNAME,
                    value: b"switchboard@10.0.0.1",
                }],
            }],
        }),
        RtcpPacket::Goodbye(Goodbye {
            sources: vec![Ssrc(1)],
            reason: Some(b"call ended"),
        }),
    ];
    let wire = rtcp::write_compound(&packets).unwrap();
    assert_eq!(wire.len() % 4, 0);
    // RR: 4 + 4 + 2*24 = 56; SDES: 4 + 4 + 2 + 20 + 1 null -> 31 -> 32; BYE: 4 + 4 + 1 + 10 -> 20
    assert_eq!(wire.len(), 56 + 32 + 20);
    assert_eq!(rtcp::parse_compound(&wire).unwrap(), packets);
}

#[test]
fn rtcp_unknown_type_kept_raw_and_padding_handled() {
    // APP packet (204), padded with 4 octets, as the last packet of a compound.
    let wire = [
        0xA0, 204, 0x00, 0x03, 1, 2, 3, 4, b'n', b'a', b'm', b'e', 0, 0, 0, 4,
    ];
    let packets = rtcp::parse_compound(&wire).unwrap();
    assert_eq!(
        packets,
        vec![RtcpPacket::Other {
            packet_type: 204,
            count: 0,
            body: &[1, 2, 3, 4, b'n', b'a', b'm', b'e']
        }]
    );
}

#[test]
fn rtcp_malformed() {
    assert_eq!(rtcp::parse_compound(&[]), Err(Error::RtcpEmpty));
    // RR claims 2 report blocks in one word.
    assert_eq!(
        rtcp::parse_compound(&[0x82, 201, 0, 1, 0, 0, 0, 1]),
        Err(Error::RtcpCountMismatch {
            packet_type: 201,
            count: 2
        })
    );
    // Length beyond the buffer.
    assert!(matches!(
        rtcp::parse_compound(&[0x80, 201, 0, 9, 0, 0, 0, 1]),
        Err(Error::Truncated {
            what: "RTCP packet",
            ..
        })
    ));
    // Padding bit on a non-last packet.
    let wire = [0xA0, 201, 0, 1, 0, 0, 0, 1, 0x80, 201, 0, 1, 0, 0, 0, 1];
    assert_eq!(rtcp::parse_compound(&wire), Err(Error::RtcpPaddingNotLast));
    // SDES item running past the end.
    let sdes = [0x81, 202, 0, 2, 0, 0, 0, 1, 1, 200, b'x', b'y'];
    assert_eq!(rtcp::parse_compound(&sdes), Err(Error::RtcpBadSdes));
    assert_eq!(
        rtcp::parse_compound(&[0x40, 201, 0, 0]),
        Err(Error::UnsupportedVersion(1))
    );
}

#[test]
fn rtcp_too_many_blocks_is_an_error() {
    let rr = RtcpPacket::ReceiverReport(ReceiverReport {
        ssrc: Ssrc(1),
        reports: vec![block(2); 32],
    });
    assert!(matches!(
        rtcp::write_compound(&[rr]),
        Err(Error::TooMany {
            max: 31,
            count: 32,
            ..
        })
    ));
}
