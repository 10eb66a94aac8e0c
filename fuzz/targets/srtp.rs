//! Arbitrary bytes as SRTP and SRTCP on a keyed call: refused with an error or opened, never a
//! panic; and any RTP packet we seal opens back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_rtp::srtp::{Inbound, MasterKey, Outbound, Suite};

fuzz_target!(|data: &[u8]| {
    let key = MasterKey::new([0x42; 30]);
    for suite in Suite::ALL {
        let mut inbound = Inbound::new(suite, &key);
        let _ = inbound.unprotect_rtp(data);
        let _ = inbound.unprotect_rtcp(data);
        let mut outbound = Outbound::new(suite, &key);
        if let Ok(sealed) = outbound.protect_rtp(data) {
            let opened = Inbound::new(suite, &key).unprotect_rtp(&sealed);
            assert_eq!(opened.as_deref(), Ok(data), "what we seal opens");
        }
        if let Ok(sealed) = outbound.protect_rtcp(data) {
            let opened = Inbound::new(suite, &key).unprotect_rtcp(&sealed);
            assert_eq!(opened.as_deref(), Ok(data), "what we seal opens");
        }
    }
});
