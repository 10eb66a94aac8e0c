//! Arbitrary bytes as a WAV file handed to the operator tools: decoded to one channel or a
//! precise error, never a panic or an allocation the file's size does not justify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_audio::wav::read::{decode, Channel};

fuzz_target!(|data: &[u8]| {
    if let Ok(mix) = decode(data, Channel::Mix) {
        let one = decode(data, Channel::Only(0)).expect("channel 0 of a file that decodes");
        assert_eq!(
            one.samples.len(),
            mix.samples.len(),
            "one sample per frame either way"
        );
    }
});
