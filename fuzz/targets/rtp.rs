#![no_main]
use libfuzzer_sys::fuzz_target;
use media_rtp::RtpPacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = RtpPacket::parse(data) {
        // Whatever parses must serialise back to the same bytes (padding bytes aside).
        let out = p.to_vec();
        assert_eq!(RtpPacket::parse(&out).unwrap(), p);
    }
});
