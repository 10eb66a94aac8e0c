//! Arbitrary bytes as SRTP and SRTCP on a keyed call: refused with an error or opened, never a
//! panic; and any RTP or RTCP packet we seal opens back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_rtp::srtp::{Inbound, MasterKey, Outbound, Suite};
use media_rtp::Error;

type Seal = fn(&mut Outbound, &mut Vec<u8>) -> Result<(), Error>;
type Open = fn(&mut Inbound, &[u8], &mut Vec<u8>) -> Result<(), Error>;

/// SRTP, then SRTCP.
const PROTOCOLS: [(Seal, Open); 2] = [
    (Outbound::protect_rtp, Inbound::unprotect_rtp),
    (Outbound::protect_rtcp, Inbound::unprotect_rtcp),
];

fuzz_target!(|data: &[u8]| {
    let key = MasterKey::new([0x42; 30]);
    let mut opened = Vec::new();
    for suite in Suite::ALL {
        let mut inbound = Inbound::new(suite, &key);
        let mut outbound = Outbound::new(suite, &key);
        for (seal, open) in PROTOCOLS {
            let _ = open(&mut inbound, data, &mut opened);
            let mut sealed = data.to_vec();
            if seal(&mut outbound, &mut sealed).is_ok() {
                let result = open(&mut Inbound::new(suite, &key), &sealed, &mut opened);
                assert_eq!(
                    (result, opened.as_slice()),
                    (Ok(()), data),
                    "what we seal opens"
                );
            }
        }
    }
});
