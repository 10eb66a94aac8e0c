//! RTCP (RFC 3550 §6): SR, RR, SDES and BYE, parsed from and written to compound packets.
//! Other packet types (APP, RFC 4585 feedback, XR) are kept raw.

use crate::{Error, Ssrc};

/// RTCP packet type: sender report.
pub const SR: u8 = 200;
/// RTCP packet type: receiver report.
pub const RR: u8 = 201;
/// RTCP packet type: source description.
pub const SDES: u8 = 202;
/// RTCP packet type: goodbye.
pub const BYE: u8 = 203;

/// SDES item type CNAME (RFC 3550 §6.5.1).
pub const SDES_CNAME: u8 = 1;

/// One RTCP packet of a compound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// Sender report (RFC 3550 §6.4.1).
    SenderReport(SenderReport),
    /// Receiver report (RFC 3550 §6.4.2).
    ReceiverReport(ReceiverReport),
    /// Source description (RFC 3550 §6.5).
    SourceDescription(SourceDescription<'a>),
    /// Goodbye (RFC 3550 §6.6).
    Goodbye(Goodbye<'a>),
    /// Any other type, body after the 4-byte header, padding removed.
    Other {
        /// Packet type.
        packet_type: u8,
        /// The 5-bit count/subtype field.
        count: u8,
        /// Body after the common header.
        body: &'a [u8],
    },
}

/// The NTP/RTP/count part of a sender report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp (seconds since 1900 in the high word).
    pub ntp_timestamp: u64,
    /// RTP timestamp corresponding to `ntp_timestamp`.
    pub rtp_timestamp: u32,
    /// Packets sent since the start.
    pub packet_count: u32,
    /// Payload octets sent since the start.
    pub octet_count: u32,
}

/// A reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: Ssrc,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost; a signed 24-bit value (negative with duplicates).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP timestamp (LSR), 0 if none.
    pub last_sender_report: u32,
    /// Delay since that SR in 1/65536 s (DLSR), 0 if none.
    pub delay_since_last_sender_report: u32,
}

/// Sender report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SenderReport {
    /// Sender's SSRC.
    pub ssrc: Ssrc,
    /// Sender information.
    pub info: SenderInfo,
    /// Reception reports (at most 31).
    pub reports: Vec<ReportBlock>,
}

/// Receiver report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReceiverReport {
    /// Reporter's SSRC.
    pub ssrc: Ssrc,
    /// Reception reports (at most 31).
    pub reports: Vec<ReportBlock>,
}

/// Source description: chunks of items per source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceDescription<'a> {
    /// Chunks (at most 31).
    pub chunks: Vec<SdesChunk<'a>>,
}

/// The items for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source.
    pub ssrc: Ssrc,
    /// Its items.
    pub items: Vec<SdesItem<'a>>,
}

/// One SDES item (CNAME = 1, NAME = 2, …); `value` is at most 255 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// Item type, non-zero.
    pub kind: u8,
    /// UTF-8 text per the RFC; kept as bytes.
    pub value: &'a [u8],
}

/// Goodbye.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Goodbye<'a> {
    /// Sources leaving (at most 31).
    pub sources: Vec<Ssrc>,
    /// Optional reason text.
    pub reason: Option<&'a [u8]>,
}

/// Parses a compound RTCP packet (RFC 3550 §6.1). Checks version, lengths and padding; it does
/// not insist the first packet is SR/RR, so RFC 5506 reduced-size RTCP parses too.
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket<'_>>, Error> {
    if buf.is_empty() {
        return Err(Error::RtcpEmpty);
    }
    let mut packets = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(Error::Truncated {
                what: "RTCP header",
                needed: 4,
                available: rest.len(),
            });
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(Error::UnsupportedVersion(version));
        }
        let padded = rest[0] & 0x20 != 0;
        let count = rest[0] & 0x1F;
        let packet_type = rest[1];
        let len = 4 * (u16::from_be_bytes([rest[2], rest[3]]) as usize + 1);
        if rest.len() < len {
            return Err(Error::Truncated {
                what: "RTCP packet",
                needed: len,
                available: rest.len(),
            });
        }
        let mut body = &rest[4..len];
        rest = &rest[len..];
        if padded {
            if !rest.is_empty() {
                return Err(Error::RtcpPaddingNotLast);
            }
            let padding = body.last().copied().unwrap_or(0) as usize;
            if padding == 0 || padding > body.len() {
                return Err(Error::InvalidPadding {
                    padding,
                    available: body.len(),
                });
            }
            body = &body[..body.len() - padding];
        }
        packets.push(parse_one(packet_type, count, body)?);
    }
    Ok(packets)
}

fn parse_one(packet_type: u8, count: u8, body: &[u8]) -> Result<RtcpPacket<'_>, Error> {
    let mismatch = Error::RtcpCountMismatch { packet_type, count };
    match packet_type {
        SR => {
            if body.len() < 24 + 24 * count as usize {
                return Err(mismatch);
            }
            let info = SenderInfo {
                ntp_timestamp: be64(&body[4..12]),
                rtp_timestamp: be32(&body[12..16]),
                packet_count: be32(&body[16..20]),
                octet_count: be32(&body[20..24]),
            };
            // Profile-specific extensions after the blocks are ignored.
            Ok(RtcpPacket::SenderReport(SenderReport {
                ssrc: Ssrc(be32(&body[0..4])),
                info,
                reports: parse_blocks(&body[24..], count),
            }))
        }
        RR => {
            if body.len() < 4 + 24 * count as usize {
                return Err(mismatch);
            }
            Ok(RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: Ssrc(be32(&body[0..4])),
                reports: parse_blocks(&body[4..], count),
            }))
        }
        SDES => {
            let mut chunks = Vec::with_capacity(count as usize);
            let mut at = 0;
            for _ in 0..count {
                if body.len() < at + 4 {
                    return Err(mismatch);
                }
                let ssrc = Ssrc(be32(&body[at..at + 4]));
                at += 4;
                let mut items = Vec::new();
                loop {
                    let kind = *body.get(at).ok_or(Error::RtcpBadSdes)?;
                    if kind == 0 {
                        // RFC 3550 §6.5: the list ends with null octets up to the next word.
                        at += 1;
                        at = (at + 3) & !3;
                        break;
                    }
                    let len = *body.get(at + 1).ok_or(Error::RtcpBadSdes)? as usize;
                    let value = body.get(at + 2..at + 2 + len).ok_or(Error::RtcpBadSdes)?;
                    items.push(SdesItem { kind, value });
                    at += 2 + len;
                }
                chunks.push(SdesChunk { ssrc, items });
            }
            Ok(RtcpPacket::SourceDescription(SourceDescription { chunks }))
        }
        BYE => {
            let n = count as usize;
            if body.len() < 4 * n {
                return Err(mismatch);
            }
            let sources = body[..4 * n]
                .chunks_exact(4)
                .map(|c| Ssrc(be32(c)))
                .collect();
            let reason = match body.get(4 * n) {
                Some(&len) => Some(
                    body.get(4 * n + 1..4 * n + 1 + len as usize)
                        .ok_or(mismatch)?,
                ),
                None => None,
            };
            Ok(RtcpPacket::Goodbye(Goodbye { sources, reason }))
        }
        _ => Ok(RtcpPacket::Other {
            packet_type,
            count,
            body,
        }),
    }
}

fn parse_blocks(buf: &[u8], count: u8) -> Vec<ReportBlock> {
    buf.chunks_exact(24)
        .take(count as usize)
        .map(|b| {
            // Sign-extend the 24-bit cumulative loss.
            let cumulative_lost = (i32::from_be_bytes([b[4], b[5], b[6], b[7]]) << 8) >> 8;
            ReportBlock {
                ssrc: Ssrc(be32(&b[0..4])),
                fraction_lost: b[4],
                cumulative_lost,
                highest_sequence: be32(&b[8..12]),
                jitter: be32(&b[12..16]),
                last_sender_report: be32(&b[16..20]),
                delay_since_last_sender_report: be32(&b[20..24]),
            }
        })
        .collect()
}

impl RtcpPacket<'_> {
    /// Appends this packet (no padding) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        let (count, packet_type) = match self {
            RtcpPacket::SenderReport(sr) => {
                (check_count("SR report blocks", sr.reports.len())?, SR)
            }
            RtcpPacket::ReceiverReport(rr) => {
                (check_count("RR report blocks", rr.reports.len())?, RR)
            }
            RtcpPacket::SourceDescription(s) => (check_count("SDES chunks", s.chunks.len())?, SDES),
            RtcpPacket::Goodbye(b) => (check_count("BYE sources", b.sources.len())?, BYE),
            RtcpPacket::Other {
                packet_type, count, ..
            } => (*count & 0x1F, *packet_type),
        };
        out.extend_from_slice(&[0x80 | count, packet_type, 0, 0]);
        match self {
            RtcpPacket::SenderReport(sr) => {
                out.extend_from_slice(&sr.ssrc.0.to_be_bytes());
                out.extend_from_slice(&sr.info.ntp_timestamp.to_be_bytes());
                out.extend_from_slice(&sr.info.rtp_timestamp.to_be_bytes());
                out.extend_from_slice(&sr.info.packet_count.to_be_bytes());
                out.extend_from_slice(&sr.info.octet_count.to_be_bytes());
                sr.reports.iter().for_each(|b| write_block(b, out));
            }
            RtcpPacket::ReceiverReport(rr) => {
                out.extend_from_slice(&rr.ssrc.0.to_be_bytes());
                rr.reports.iter().for_each(|b| write_block(b, out));
            }
            RtcpPacket::SourceDescription(s) => {
                for chunk in &s.chunks {
                    out.extend_from_slice(&chunk.ssrc.0.to_be_bytes());
                    for item in &chunk.items {
                        if item.kind == 0 || item.value.len() > 255 {
                            out.truncate(start);
                            return Err(Error::TooMany {
                                what: "SDES item length",
                                count: item.value.len(),
                                max: 255,
                            });
                        }
                        out.push(item.kind);
                        out.push(item.value.len() as u8);
                        out.extend_from_slice(item.value);
                    }
                    // Terminating null, then pad to the word boundary.
                    out.push(0);
                    while (out.len() - start) % 4 != 0 {
                        out.push(0);
                    }
                }
            }
            RtcpPacket::Goodbye(b) => {
                b.sources
                    .iter()
                    .for_each(|s| out.extend_from_slice(&s.0.to_be_bytes()));
                if let Some(reason) = b.reason {
                    if reason.len() > 255 {
                        out.truncate(start);
                        return Err(Error::TooMany {
                            what: "BYE reason length",
                            count: reason.len(),
                            max: 255,
                        });
                    }
                    out.push(reason.len() as u8);
                    out.extend_from_slice(reason);
                    while (out.len() - start) % 4 != 0 {
                        out.push(0);
                    }
                }
            }
            RtcpPacket::Other { body, .. } => {
                out.extend_from_slice(body);
                while (out.len() - start) % 4 != 0 {
                    out.push(0);
                }
            }
        }
        let words = (out.len() - start) / 4 - 1;
        if words > u16::MAX as usize {
            out.truncate(start);
            return Err(Error::TooMany {
                what: "RTCP packet words",
                count: words,
                max: u16::MAX as usize,
            });
        }
        out[start + 2..start + 4].copy_from_slice(&(words as u16).to_be_bytes());
        Ok(())
    }
}

/// Writes several packets as one compound.
pub fn write_compound(packets: &[RtcpPacket<'_>]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(128);
    for p in packets {
        p.write(&mut out)?;
    }
    Ok(out)
}

fn check_count(what: &'static str, count: usize) -> Result<u8, Error> {
    if count > 31 {
        Err(Error::TooMany {
            what,
            count,
            max: 31,
        })
    } else {
        Ok(count as u8)
    }
}

fn write_block(b: &ReportBlock, out: &mut Vec<u8>) {
    out.extend_from_slice(&b.ssrc.0.to_be_bytes());
    let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
    out.extend_from_slice(&(((b.fraction_lost as u32) << 24) | lost).to_be_bytes());
    out.extend_from_slice(&b.highest_sequence.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    out.extend_from_slice(&b.last_sender_report.to_be_bytes());
    out.extend_from_slice(&b.delay_since_last_sender_report.to_be_bytes());
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}
