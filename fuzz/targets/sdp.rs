#![no_main]
use libfuzzer_sys::fuzz_target;
use media_rtp::sdp::{self, Codec, Direction, LocalCapabilities, SessionDescription};

fuzz_target!(|data: &[u8]| {
    if let Ok(offer) = SessionDescription::parse(data) {
        let _ = offer.to_string();
        let caps = LocalCapabilities {
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            telephone_event: media_rtp::PayloadType::new(101).ok(),
            address: [192, 0, 2, 1].into(),
            port: 40000,
            rtcp_port: None,
            ptime_ms: 20,
            direction: Direction::SendRecv,
            username: "fuzz".into(),
            session_id: 1,
            session_version: 1,
            srtp: sdp::SrtpPolicy::Accept(media_rtp::srtp::MasterKey::new([7; 30])),
        };
        let _ = sdp::answer(&offer, &caps);
    }
});
