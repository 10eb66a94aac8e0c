//! Newtypes for RTP header fields.

use crate::Error;

/// An RTP payload type, 0..=127 (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PayloadType(u8);

impl PayloadType {
    /// PCMU, G.711 µ-law at 8 kHz (RFC 3551 static type).
    pub const PCMU: PayloadType = PayloadType(0);
    /// PCMA, G.711 A-law at 8 kHz (RFC 3551 static type).
    pub const PCMA: PayloadType = PayloadType(8);
    /// Comfort noise (RFC 3389 static type).
    pub const CN: PayloadType = PayloadType(13);

    /// Validates a payload type number.
    pub fn new(value: u8) -> Result<Self, Error> {
        if value <= 127 {
            Ok(PayloadType(value))
        } else {
            Err(Error::InvalidPayloadType(value))
        }
    }

    /// The number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// Masks the low seven bits; used where the wire field is 7 bits wide.
    pub(crate) fn from_wire(value: u8) -> Self {
        PayloadType(value & 0x7F)
    }
}

impl std::fmt::Display for PayloadType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A synchronisation source identifier (RFC 3550 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ssrc(pub u32);

impl std::fmt::Display for Ssrc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}
