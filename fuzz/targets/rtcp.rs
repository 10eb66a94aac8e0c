#![no_main]
use libfuzzer_sys::fuzz_target;
use media_rtp::rtcp;

fuzz_target!(|data: &[u8]| {
    if let Ok(packets) = rtcp::parse_compound(data) {
        if let Ok(out) = rtcp::write_compound(&packets) {
            assert!(rtcp::parse_compound(&out).is_ok());
        }
    }
});
