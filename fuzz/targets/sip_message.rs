//! Arbitrary bytes through the datagram parser and the stream framer. What
//! parses must validate or fail without panicking, and what we write must
//! read back as the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip_message::{frame_stream, Limits, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::parse(data) {
        let _ = message.validate();
        if let Some(request) = message.as_request() {
            let _ = request.can_respond();
            let _ = request.response(400, "Bad Request", None);
        }
        let written = message.to_bytes();
        let again = Message::parse(&written).expect("what we write parses");
        assert_eq!(again.body(), message.body());
        assert_eq!(again.to_bytes(), written, "serialisation is stable");
    }
    let _ = frame_stream(data, &Limits::default());
});
