//! SRTP and SRTCP (RFC 3711) keyed in the SDP (SDES, RFC 4568), with the two suites every SDES
//! peer offers: AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32 (RFC 4568 §6.2). No MKI, key
//! derivation rate 0, SRTCP always encrypted with an 80-bit tag.
//!
//! [`Outbound`] seals what we send in place, [`Inbound`] checks and decrypts what arrives into a
//! buffer the caller keeps, so a call allocates nothing per packet for SRTP. A packet
//! whose tag does not verify, or one seen before (a 64-packet replay window per source, §3.3.2),
//! is an error and is never decrypted into the call. State for a source (its rollover counter,
//! the window) is created and moved only by a packet that authenticated.

use aes::cipher::{InnerIvInit, KeyInit, KeyIvInit, StreamCipher, StreamCipherCoreWrapper};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::Error;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;
type HmacSha1 = Hmac<Sha1>;

/// An SDES crypto suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl Suite {
    /// In our order of preference.
    pub const ALL: [Suite; 2] = [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];

    /// The name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Bytes of the RTP authentication tag (SRTCP's is always 10).
    fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

const SRTCP_TAG_LEN: usize = 10;
/// The E flag and the 31-bit SRTCP index after the encrypted part.
const SRTCP_INDEX_LEN: usize = 4;
/// Sources a receiver keeps state for; a new one replaces the least recently seen.
const MAX_SOURCES: usize = 4;

/// A master key and salt: 30 bytes, base64 after `inline:` in an `a=crypto` line.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    key: [u8; 16],
    salt: [u8; 14],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// From 30 random bytes: 16 of key, 14 of salt.
    pub fn new(bytes: [u8; 30]) -> MasterKey {
        let mut key = [0u8; 16];
        let mut salt = [0u8; 14];
        key.copy_from_slice(&bytes[..16]);
        salt.copy_from_slice(&bytes[16..]);
        MasterKey { key, salt }
    }

    /// The base64 key-and-salt of an `inline:` key parameter.
    pub fn from_inline(text: &str) -> Result<MasterKey, Error> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| Error::SrtpKey("not base64"))?;
        let bytes: [u8; 30] = bytes
            .try_into()
            .map_err(|_| Error::SrtpKey("not 30 bytes of key and salt"))?;
        Ok(MasterKey::new(bytes))
    }

    pub fn inline(&self) -> String {
        let mut bytes = [0u8; 30];
        bytes[..16].copy_from_slice(&self.key);
        bytes[16..].copy_from_slice(&self.salt);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// One `a=crypto` line (RFC 4568 §9.1) of a suite we support, with a single inline key, no MKI
/// and no session parameters; other lines are not for us (`parse` returns `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: Suite,
    pub key: MasterKey,
}

impl Crypto {
    /// The attribute's value: `1 AES_CM_128_HMAC_SHA1_80 inline:KEY[|2^31]`.
    pub fn parse(value: &str) -> Option<Crypto> {
        let mut fields = value.split_ascii_whitespace();
        let tag = fields.next()?.parse().ok()?;
        let suite = Suite::from_name(fields.next()?)?;
        let key_params = fields.next()?;
        if fields.next().is_some() || key_params.contains(';') {
            return None; // session parameters, or several keys: not supported
        }
        let info = key_params.strip_prefix("inline:")?;
        let mut parts = info.split('|');
        let key = MasterKey::from_inline(parts.next()?).ok()?;
        match (parts.next(), parts.next()) {
            (None, _) => {}
            // A lifetime; an MKI (`n:len`) is not supported.
            (Some(lifetime), None) if !lifetime.contains(':') => {}
            _ => return None,
        }
        Some(Crypto { tag, suite, key })
    }

    pub fn to_value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            self.key.inline()
        )
    }
}

/// What one direction of a call is keyed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keying {
    pub suite: Suite,
    /// Seals what we send.
    pub ours: MasterKey,
    /// Opens what the peer sends.
    pub theirs: MasterKey,
}

/// The session keys derived from a master key for one of RTP or RTCP (§4.3).
struct SessionKeys {
    /// The expanded AES key, so a packet does not expand it again.
    cipher: aes::Aes128,
    auth: HmacSha1,
    salt: [u8; 14],
}

impl SessionKeys {
    /// Labels 0, 1, 2 for SRTP; 3, 4, 5 for SRTCP (§4.3.2).
    fn derive(master: &MasterKey, first_label: u8) -> SessionKeys {
        let mut cipher = [0u8; 16];
        let mut auth = [0u8; 20];
        let mut salt = [0u8; 14];
        prf(master, first_label, &mut cipher);
        prf(master, first_label + 1, &mut auth);
        prf(master, first_label + 2, &mut salt);
        SessionKeys {
            cipher: aes::Aes128::new(&cipher.into()),
            auth: <HmacSha1 as Mac>::new_from_slice(&auth).expect("HMAC takes a key of any length"),
            salt,
        }
    }

    /// Encrypts or decrypts `data` in place (AES in counter mode, §4.1.1).
    fn apply(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, i) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= i;
        }
        let core = ctr::CtrCore::<aes::Aes128, ctr::flavors::Ctr128BE>::inner_iv_init(
            self.cipher.clone(),
            &iv.into(),
        );
        StreamCipherCoreWrapper::from_core(core).apply_keystream(data);
    }

    /// Appends the authentication tag of `packet` (followed, for SRTP, by `roc`) to `packet`.
    fn append_tag(&self, packet: &mut Vec<u8>, roc: Option<u32>, len: usize) {
        let mut mac = self.auth.clone();
        mac.update(packet);
        if let Some(roc) = roc {
            mac.update(&roc.to_be_bytes());
        }
        packet.extend_from_slice(&mac.finalize().into_bytes()[..len]);
    }

    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut mac = self.auth.clone();
        for part in parts {
            mac.update(part);
        }
        mac.verify_truncated_left(tag).is_ok()
    }
}

/// The AES-CM key derivation function (§4.3.1, §4.3.3) with a key derivation rate of 0.
fn prf(master: &MasterKey, label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(&master.salt);
    iv[7] ^= label;
    out.fill(0);
    Aes128Ctr::new(&master.key.into(), &iv.into()).apply_keystream(out);
}

/// Seals the RTP and RTCP we send.
pub struct Outbound {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    /// Rollover counter and the last sequence number sent.
    roc: u32,
    last_sequence: Option<u16>,
    srtcp_index: u32,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("srtp::Outbound")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    pub fn new(suite: Suite, key: &MasterKey) -> Outbound {
        Outbound {
            suite,
            rtp: SessionKeys::derive(key, 0),
            rtcp: SessionKeys::derive(key, 3),
            roc: 0,
            last_sequence: None,
            srtcp_index: 0,
        }
    }

    /// Seals an RTP packet in place as SRTP: its payload encrypted, the tag appended.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), Error> {
        let header = rtp_header_len(packet)?;
        let sequence = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        // The counter rolls over when the sequence number wraps (§3.3.1).
        if let Some(last) = self.last_sequence {
            if sequence < last && last - sequence > 0x8000 {
                self.roc = self.roc.wrapping_add(1);
            }
        }
        self.last_sequence = Some(sequence);
        let index = (u64::from(self.roc) << 16) | u64::from(sequence);
        self.rtp.apply(ssrc, index, &mut packet[header..]);
        self.rtp
            .append_tag(packet, Some(self.roc), self.suite.rtp_tag_len());
        Ok(())
    }

    /// Seals an RTCP compound packet in place as SRTCP (encrypted, E flag set).
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), Error> {
        if packet.len() < 8 {
            return Err(truncated("SRTCP", 8, packet.len()));
        }
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        self.srtcp_index = (self.srtcp_index + 1) & 0x7FFF_FFFF;
        let index = self.srtcp_index;
        self.rtcp.apply(ssrc, u64::from(index), &mut packet[8..]);
        packet.extend_from_slice(&(index | 0x8000_0000).to_be_bytes());
        self.rtcp.append_tag(packet, None, SRTCP_TAG_LEN);
        Ok(())
    }
}

/// Checks and opens the SRTP and SRTCP the peer sends.
pub struct Inbound {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    /// Per source, most recently seen first.
    sources: Vec<Source>,
    rtcp_window: ReplayWindow,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("srtp::Inbound")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

struct Source {
    ssrc: u32,
    roc: u32,
    /// The highest sequence number authenticated.
    highest: u16,
    window: ReplayWindow,
}

impl Inbound {
    pub fn new(suite: Suite, key: &MasterKey) -> Inbound {
        Inbound {
            suite,
            rtp: SessionKeys::derive(key, 0),
            rtcp: SessionKeys::derive(key, 3),
            sources: Vec::new(),
            rtcp_window: ReplayWindow::default(),
        }
    }

    /// Opens an SRTP packet into `out` (cleared first), if it authenticates and was not seen
    /// before.
    pub fn unprotect_rtp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let tag_len = self.suite.rtp_tag_len();
        let header = rtp_header_len(packet)?;
        if packet.len() < header + tag_len {
            return Err(truncated("SRTP", header + tag_len, packet.len()));
        }
        let (body, tag) = packet.split_at(packet.len() - tag_len);
        let sequence = u16::from_be_bytes([body[2], body[3]]);
        let ssrc = u32::from_be_bytes([body[8], body[9], body[10], body[11]]);
        let known = self.sources.iter().position(|s| s.ssrc == ssrc);
        // §3.3.1: the index is guessed from the counter and the highest sequence number seen.
        let (roc, index) = match known.map(|i| &self.sources[i]) {
            Some(source) => {
                let roc = estimate_roc(source.roc, source.highest, sequence);
                let index = (u64::from(roc) << 16) | u64::from(sequence);
                if !source.window.is_new(index) {
                    return Err(Error::SrtpReplay);
                }
                (roc, index)
            }
            None => (0, u64::from(sequence)),
        };
        if !self.rtp.verify(&[body, &roc.to_be_bytes()], tag) {
            return Err(Error::SrtpAuthentication);
        }
        let source = match known {
            Some(i) => {
                self.sources[..=i].rotate_right(1);
                &mut self.sources[0]
            }
            None => {
                self.sources.truncate(MAX_SOURCES - 1);
                self.sources.insert(
                    0,
                    Source {
                        ssrc,
                        roc,
                        highest: sequence,
                        window: ReplayWindow::default(),
                    },
                );
                &mut self.sources[0]
            }
        };
        source.window.accept(index);
        let highest = (u64::from(source.roc) << 16) | u64::from(source.highest);
        if index > highest {
            source.roc = roc;
            source.highest = sequence;
        }
        out.clear();
        out.extend_from_slice(body);
        self.rtp.apply(ssrc, index, &mut out[header..]);
        Ok(())
    }

    /// Opens an SRTCP packet into `out` (cleared first), if it authenticates and was not seen
    /// before.
    pub fn unprotect_rtcp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let min = 8 + SRTCP_INDEX_LEN + SRTCP_TAG_LEN;
        if packet.len() < min {
            return Err(truncated("SRTCP", min, packet.len()));
        }
        let (body, tag) = packet.split_at(packet.len() - SRTCP_TAG_LEN);
        if !self.rtcp.verify(&[body], tag) {
            return Err(Error::SrtpAuthentication);
        }
        let (rtcp, e_index) = body.split_at(body.len() - SRTCP_INDEX_LEN);
        let e_index = u32::from_be_bytes([e_index[0], e_index[1], e_index[2], e_index[3]]);
        let index = u64::from(e_index & 0x7FFF_FFFF);
        if !self.rtcp_window.is_new(index) {
            return Err(Error::SrtpReplay);
        }
        self.rtcp_window.accept(index);
        out.clear();
        out.extend_from_slice(rtcp);
        if e_index & 0x8000_0000 != 0 {
            let ssrc = u32::from_be_bytes([out[4], out[5], out[6], out[7]]);
            self.rtcp.apply(ssrc, index, &mut out[8..]);
        }
        Ok(())
    }
}

/// RFC 3711 Appendix A: the rollover counter of a packet with sequence number `sequence`, given
/// the counter and highest sequence number of the source so far.
fn estimate_roc(roc: u32, highest: u16, sequence: u16) -> u32 {
    if highest < 0x8000 {
        if sequence > highest && sequence - highest > 0x8000 {
            roc.wrapping_sub(1)
        } else {
            roc
        }
    } else if highest - 0x8000 > sequence {
        roc.wrapping_add(1)
    } else {
        roc
    }
}

/// The last 64 packet indices accepted (§3.3.2).
#[derive(Debug, Default)]
struct ReplayWindow {
    /// Highest index accepted, plus one (0: none yet).
    top: u64,
    /// Bit `n`: index `top - 1 - n` was accepted.
    seen: u64,
}

impl ReplayWindow {
    fn is_new(&self, index: u64) -> bool {
        if index >= self.top {
            return true;
        }
        let behind = self.top - 1 - index;
        behind < 64 && self.seen & (1 << behind) == 0
    }

    fn accept(&mut self, index: u64) {
        if index >= self.top {
            let shift = index + 1 - self.top;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.top = index + 1;
        } else {
            self.seen |= 1 << (self.top - 1 - index);
        }
    }
}

/// The length of an RTP header with its CSRCs and extension: what SRTP leaves in the clear.
fn rtp_header_len(packet: &[u8]) -> Result<usize, Error> {
    if packet.len() < 12 {
        return Err(truncated("SRTP header", 12, packet.len()));
    }
    let mut len = 12 + 4 * usize::from(packet[0] & 0x0F);
    if packet[0] & 0x10 != 0 {
        if packet.len() < len + 4 {
            return Err(truncated("SRTP header extension", len + 4, packet.len()));
        }
        len += 4 + 4 * usize::from(u16::from_be_bytes([packet[len + 2], packet[len + 3]]));
    }
    if packet.len() < len {
        return Err(truncated("SRTP header", len, packet.len()));
    }
    Ok(len)
}

fn truncated(what: &'static str, needed: usize, available: usize) -> Error {
    Error::Truncated {
        what,
        needed,
        available,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 3711 Appendix B.3 (and libsrtp's test key).
    fn master() -> MasterKey {
        let mut bytes = [0u8; 30];
        bytes.copy_from_slice(&hex(
            "E1F97A0D3E018BE0D64FA32C06DE41390EC675AD498AFEEBB6960B3AABE6",
        ));
        MasterKey::new(bytes)
    }

    #[test]
    fn session_keys_are_derived_as_rfc_3711_b3_says() {
        let mut cipher = [0u8; 16];
        prf(&master(), 0, &mut cipher);
        assert_eq!(cipher.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        let keys = SessionKeys::derive(&master(), 0);
        assert_eq!(keys.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        let mut auth = [0u8; 16];
        prf(&master(), 1, &mut auth);
        assert_eq!(auth.to_vec(), hex("CEBE321F6FF7716B6FD4AB49AF256A15"));
    }

    #[test]
    fn aes_cm_keystream_is_rfc_3711_b2s() {
        let mut data = [0u8; 32];
        Aes128Ctr::new(
            &<[u8; 16]>::try_from(hex("2B7E151628AED2A6ABF7158809CF4F3C"))
                .unwrap()
                .into(),
            &<[u8; 16]>::try_from(hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"))
                .unwrap()
                .into(),
        )
        .apply_keystream(&mut data);
        assert_eq!(
            data.to_vec(),
            hex("E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB")
        );
    }

    #[test]
    fn windows_refuse_replays_and_the_too_old() {
        let mut w = ReplayWindow::default();
        assert!(w.is_new(5));
        w.accept(5);
        assert!(!w.is_new(5));
        assert!(w.is_new(4));
        w.accept(100);
        assert!(!w.is_new(36), "64 behind");
        assert!(w.is_new(37));
        w.accept(37);
        assert!(!w.is_new(37));
    }

    #[test]
    fn the_rollover_counter_follows_wraps_both_ways() {
        assert_eq!(estimate_roc(0, 65500, 10), 1, "wrapped forward");
        assert_eq!(
            estimate_roc(1, 10, 65500),
            0,
            "a late packet from before the wrap"
        );
        assert_eq!(estimate_roc(3, 1000, 1001), 3);
    }
}
