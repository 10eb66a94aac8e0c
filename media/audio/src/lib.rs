//! Audio for Switchboard calls: G.711 companding, packet loss concealment, resampling, voice
//! activity detection and per-leg WAV recording.
//!
//! This crate is a leaf: it knows nothing of RTP, SIP or the call runtime. Everything here is
//! synchronous and allocation-light on the hot path; nothing reads a clock or touches a socket.
//! Audio is 16-bit signed mono PCM (`i16`) unless a function says otherwise.
//!
//! ```
//! use media_audio::g711::Law;
//! let frame = [0i16; 160]; // 20 ms at 8 kHz
//! let payload = Law::Mu.encode_vec(&frame);
//! assert_eq!(Law::Mu.decode_vec(&payload), frame);
//! ```
#![forbid(unsafe_code)]

pub mod g711;
pub mod plc;
pub mod resample;
pub mod vad;
pub mod wav;

mod error;

pub use error::Error;
