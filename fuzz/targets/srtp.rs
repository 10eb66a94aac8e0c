//! Arbitrary bytes as SRTP and SRTCP on a keyed call: refused with an error or opened, never a
//! panic; and any RTP packet we seal opens back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_rtp::srtp::{Inbound, MasterKey, Outbound, Suite};

fuzz_target!(|data: &[u8]| {
    let key = MasterKey::new([0x42; 30]);
    let mut opened = Vec::new();
    for suite in Suite::ALL {
        let mut inbound = Inbound::new(suite, &key);
        let _ = inbound.unprotect_rtp(data, &mut opened);
        let _ = inbound.unprotect_rtcp(data, &mut opened);
        let mut outbound = Outbound::new(suite, &key);
        let mut sealed = data.to_vec();
        if outbound.protect_rtp(&mut sealed).is_ok() {
            let result = Inbound::new(suite, &key).unprotect_rtp(&sealed, &mut opened);
            assert_eq!(
                (result, opened.as_slice()),
                (Ok(()), data),
                "what we seal opens"
            );
        }
        let mut sealed = data.to_vec();
        if outbound.protect_rtcp(&mut sealed).is_ok() {
            let result = Inbound::new(suite, &key).unprotect_rtcp(&sealed, &mut opened);
            assert_eq!(
                (result, opened.as_slice()),
                (Ok(()), data),
                "what we seal opens"
            );
        }
    }
});
