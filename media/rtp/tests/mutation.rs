//! Seeded pseudo-random mutations of valid inputs thrown at every parser: nothing may panic.
//! (The fuzz targets under `fuzz/` do the same with coverage guidance.)

use std::time::{Duration, Instant};

use media_rtp::sdp::{self, Codec, Direction, LocalCapabilities, SessionDescription};
use media_rtp::telephone_event::TelephoneEventReceiver;
use media_rtp::{rtcp, JitterBuffer, JitterConfig, PayloadType, RtpPacket, SourceState, Ssrc};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                v.insert(i, rng.next() as u8);
            }
            _ if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            _ => {}
        }
    }
    v
}

const SDP: &str = "v=0\r\no=- 123 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 8 0 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\na=ptime:20\r\na=rtcp:30001 IN IP4 203.0.113.6\r\n\
a=sendonly\r\nm=video 0 RTP/AVP 31\r\n";

#[test]
fn mutated_packets_and_sdp_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut rtp = RtpPacket::new(PayloadType::PCMU, 7, 1234, Ssrc(99), &[0xFF; 160]);
    rtp.padding = 4;
    let rtp = rtp.to_vec();
    let rtcp_wire = {
        let rr = rtcp::RtcpPacket::ReceiverReport(rtcp::ReceiverReport {
            ssrc: Ssrc(1),
            reports: vec![rtcp::ReportBlock::default(); 2],
        });
        let sdes = rtcp::RtcpPacket::SourceDescription(rtcp::SourceDescription {
            chunks: vec![rtcp::SdesChunk {
                ssrc: Ssrc(1),
                items: vec![rtcp::SdesItem {
                    kind: 1,
                    value: b"cname",
                }],
            }],
        });
        let bye = rtcp::RtcpPacket::Goodbye(rtcp::Goodbye {
            sources: vec![Ssrc(1)],
            reason: Some(b"bye"),
        });
        rtcp::write_compound(&[rr, sdes, bye]).unwrap()
    };
    let caps = LocalCapabilities {
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        telephone_event: PayloadType::new(101).ok(),
        address: [192, 0, 2, 1].into(),
        port: 40000,
        rtcp_port: None,
        ptime_ms: 20,
        direction: Direction::SendRecv,
        username: "t".into(),
        session_id: 1,
        session_version: 1,
        srtp: Default::default(),
    };
    let t0 = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut source = SourceState::new(Ssrc(99), 8000, 7);
    let mut dtmf = TelephoneEventReceiver::new();
    let mut parsed = 0;
    for i in 0..5000u64 {
        let now = t0 + Duration::from_millis(i * 7);
        let m = mutate(&mut rng, &rtp);
        if let Ok(p) = RtpPacket::parse(&m) {
            parsed += 1;
            assert_eq!(RtpPacket::parse(&p.to_vec()).unwrap(), p);
            jb.push(&p, now);
            source.update(p.sequence, p.timestamp, now);
            let _ = dtmf.handle(p.timestamp, p.payload);
            let _ = source.report_block(now);
        }
        let _ = jb.pop(now);
        let m = mutate(&mut rng, &rtcp_wire);
        if let Ok(packets) = rtcp::parse_compound(&m) {
            let _ = rtcp::write_compound(&packets);
        }
        let m = mutate(&mut rng, SDP.as_bytes());
        if let Ok(offer) = SessionDescription::parse(&m) {
            let text = offer.to_string();
            let _ = SessionDescription::parse(text.as_bytes());
            let _ = sdp::answer(&offer, &caps);
        }
    }
    assert!(
        parsed > 100,
        "mutations should leave many packets valid: {parsed}"
    );
}
