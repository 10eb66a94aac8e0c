//! RTP data packets (RFC 3550 §5.1): zero-copy parse, serialise into a caller buffer.

use crate::{Error, PayloadType, Ssrc};

/// Length of the fixed RTP header.
pub const HEADER_LEN: usize = 12;

/// A parsed (or to-be-sent) RTP packet borrowing its variable parts from a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Marker bit; for audio, the first packet of a talkspurt (RFC 3551 §4.1).
    pub marker: bool,
    /// Payload type.
    pub payload_type: PayloadType,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp in units of the payload's clock rate.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: Ssrc,
    /// Contributing sources (0..=15).
    pub csrcs: Csrcs<'a>,
    /// Header extension, if the X bit is set.
    pub extension: Option<HeaderExtension<'a>>,
    /// Payload, padding removed.
    pub payload: &'a [u8],
    /// Padding octets after the payload including the count octet; 0 means no P bit.
    pub padding: u8,
}

/// The CSRC list, kept as raw big-endian words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Csrcs<'a>(&'a [u8]);

impl<'a> Csrcs<'a> {
    /// An empty list.
    pub const EMPTY: Csrcs<'static> = Csrcs(&[]);

    /// Wraps raw big-endian CSRC words; `None` unless the length is a multiple of 4 and at most 15
    /// entries.
    pub fn from_bytes(bytes: &'a [u8]) -> Option<Self> {
        (bytes.len() % 4 == 0 && bytes.len() / 4 <= 15).then_some(Csrcs(bytes))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = Ssrc> + 'a {
        self.0
            .chunks_exact(4)
            .map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }

    fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// An RTP header extension (RFC 3550 §5.3.1); `data` is a whole number of 32-bit words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    /// The profile-defined 16 bits (0xBEDE for RFC 8285 one-byte headers).
    pub profile: u16,
    /// Extension data, a multiple of 4 bytes.
    pub data: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// A packet with no CSRCs, extension or padding.
    pub fn new(
        payload_type: PayloadType,
        sequence: u16,
        timestamp: u32,
        ssrc: Ssrc,
        payload: &'a [u8],
    ) -> Self {
        RtpPacket {
            marker: false,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrcs: Csrcs::EMPTY,
            extension: None,
            payload,
            padding: 0,
        }
    }

    /// Parses a datagram. Never panics; every malformed input is an [`Error`].
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated {
                what: "RTP header",
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(Error::UnsupportedVersion(version));
        }
        let has_padding = buf[0] & 0x20 != 0;
        let has_extension = buf[0] & 0x10 != 0;
        let csrc_count = (buf[0] & 0x0F) as usize;
        let marker = buf[1] & 0x80 != 0;
        let payload_type = PayloadType::from_wire(buf[1]);
        let sequence = u16::from_be_bytes([buf[2], buf[3]]);
        let timestamp = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let ssrc = Ssrc(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));

        let mut offset = HEADER_LEN + 4 * csrc_count;
        if buf.len() < offset {
            return Err(Error::Truncated {
                what: "RTP CSRC list",
                needed: offset,
                available: buf.len(),
            });
        }
        let csrcs = Csrcs(&buf[HEADER_LEN..offset]);

        let extension = if has_extension {
            if buf.len() < offset + 4 {
                return Err(Error::Truncated {
                    what: "RTP header extension",
                    needed: offset + 4,
                    available: buf.len(),
                });
            }
            let profile = u16::from_be_bytes([buf[offset], buf[offset + 1]]);
            let words = u16::from_be_bytes([buf[offset + 2], buf[offset + 3]]) as usize;
            let start = offset + 4;
            let end = start + 4 * words;
            if buf.len() < end {
                return Err(Error::Truncated {
                    what: "RTP header extension",
                    needed: end,
                    available: buf.len(),
                });
            }
            offset = end;
            Some(HeaderExtension {
                profile,
                data: &buf[start..end],
            })
        } else {
            None
        };

        let body = &buf[offset..];
        let (payload, padding) = if has_padding {
            // RFC 3550 §5.1: the last octet counts the padding octets, itself included.
            let padding = body.last().copied().unwrap_or(0) as usize;
            if padding == 0 || padding > body.len() {
                return Err(Error::InvalidPadding {
                    padding,
                    available: body.len(),
                });
            }
            (&body[..body.len() - padding], padding as u8)
        } else {
            (body, 0)
        };

        Ok(RtpPacket {
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrcs,
            extension,
            payload,
            padding,
        })
    }

    /// Bytes [`write_to`](Self::write_to) will produce.
    pub fn serialized_len(&self) -> usize {
        HEADER_LEN
            + self.csrcs.bytes().len()
            + self.extension.map_or(0, |e| 4 + e.data.len())
            + self.payload.len()
            + self.padding as usize
    }

    /// Serialises into `out`, returning the number of bytes written.
    pub fn write_to(&self, out: &mut [u8]) -> Result<usize, Error> {
        let len = self.serialized_len();
        if out.len() < len {
            return Err(Error::BufferTooSmall {
                needed: len,
                available: out.len(),
            });
        }
        if let Some(ext) = self.extension {
            if ext.data.len() % 4 != 0 || ext.data.len() / 4 > u16::MAX as usize {
                return Err(Error::TooMany {
                    what: "RTP header extension bytes (multiple of 4)",
                    count: ext.data.len(),
                    max: 4 * u16::MAX as usize,
                });
            }
        }
        let out = &mut out[..len];
        out[0] = 0x80
            | if self.padding > 0 { 0x20 } else { 0 }
            | if self.extension.is_some() { 0x10 } else { 0 }
            | self.csrcs.len() as u8;
        out[1] = (self.marker as u8) << 7 | self.payload_type.get();
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.0.to_be_bytes());
        let mut at = HEADER_LEN;
        let csrc = self.csrcs.bytes();
        out[at..at + csrc.len()].copy_from_slice(csrc);
        at += csrc.len();
        if let Some(ext) = self.extension {
            out[at..at + 2].copy_from_slice(&ext.profile.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&((ext.data.len() / 4) as u16).to_be_bytes());
            at += 4;
            out[at..at + ext.data.len()].copy_from_slice(ext.data);
            at += ext.data.len();
        }
        out[at..at + self.payload.len()].copy_from_slice(self.payload);
        at += self.payload.len();
        if self.padding > 0 {
            out[at..len].fill(0);
            out[len - 1] = self.padding;
        }
        Ok(len)
    }

    /// Serialises into a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.serialized_len()];
        // Invariant: the buffer is exactly serialized_len(); only a malformed extension can fail.
        match self.write_to(&mut out) {
            Ok(_) => out,
            Err(_) => Vec::new(),
        }
    }
}

/// What a datagram on a multiplexed RTP/RTCP port is (RFC 5761 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// An RTP packet.
    Rtp,
    /// An RTCP packet (second octet 192..=223).
    Rtcp,
    /// Neither (too short, wrong version, e.g. STUN).
    Unknown,
}

/// Classifies a datagram received on an rtcp-mux port.
pub fn classify(buf: &[u8]) -> PacketKind {
    match buf {
        [b0, b1, ..] if b0 >> 6 == 2 => {
            if (192..=223).contains(b1) {
                PacketKind::Rtcp
            } else if buf.len() >= HEADER_LEN {
                PacketKind::Rtp
            } else {
                PacketKind::Unknown
            }
        }
        _ => PacketKind::Unknown,
    }
}
