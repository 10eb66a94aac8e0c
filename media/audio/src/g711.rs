//! ITU-T G.711 µ-law and A-law companding, bit-exact with the ITU-T G.191 reference
//! implementation (`g711.c`: `ulaw_compress`/`ulaw_expand`, `alaw_compress`/`alaw_expand`).
//!
//! Samples are 16-bit linear PCM. Decoding goes through 256-entry tables built at compile time;
//! encoding computes the segment with `leading_zeros` instead of the reference's shift loop, which
//! `tests/g711_reference.rs` proves equal for every `i16`.

/// The two G.711 companding laws. RTP static payload types: PCMU = 0 (µ-law), PCMA = 8 (A-law).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, used in North America and Japan (RTP "PCMU").
    Mu,
    /// A-law, used in Europe and most other places (RTP "PCMA").
    A,
}

impl Law {
    /// The code word that decodes to silence (0 for µ-law, ±8 for A-law).
    pub const fn silence(self) -> u8 {
        match self {
            Law::Mu => 0xFF,
            Law::A => 0xD5,
        }
    }

    /// Encodes one linear sample.
    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Mu => ulaw_encode(sample),
            Law::A => alaw_encode(sample),
        }
    }

    /// Decodes one code word.
    #[inline]
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::Mu => ulaw_decode(code),
            Law::A => alaw_decode(code),
        }
    }

    /// Encodes `samples` into `out`, which must be at least as long; returns the number written
    /// (`min(samples.len(), out.len())`).
    pub fn encode_into(self, samples: &[i16], out: &mut [u8]) -> usize {
        let n = samples.len().min(out.len());
        match self {
            Law::Mu => out[..n]
                .iter_mut()
                .zip(samples)
                .for_each(|(o, &s)| *o = ulaw_encode(s)),
            Law::A => out[..n]
                .iter_mut()
                .zip(samples)
                .for_each(|(o, &s)| *o = alaw_encode(s)),
        }
        n
    }

    /// Decodes `codes` into `out`; returns the number written (`min(codes.len(), out.len())`).
    pub fn decode_into(self, codes: &[u8], out: &mut [i16]) -> usize {
        let n = codes.len().min(out.len());
        let table = match self {
            Law::Mu => &ULAW_DECODE,
            Law::A => &ALAW_DECODE,
        };
        out[..n]
            .iter_mut()
            .zip(codes)
            .for_each(|(o, &c)| *o = table[c as usize]);
        n
    }

    /// Encodes a whole frame into a new buffer.
    pub fn encode_vec(self, samples: &[i16]) -> Vec<u8> {
        let mut out = vec![0u8; samples.len()];
        self.encode_into(samples, &mut out);
        out
    }

    /// Decodes a whole payload into a new buffer.
    pub fn decode_vec(self, codes: &[u8]) -> Vec<i16> {
        let mut out = vec![0i16; codes.len()];
        self.decode_into(codes, &mut out);
        out
    }
}

/// µ-law decode table indexed by code word.
pub static ULAW_DECODE: [i16; 256] = build_ulaw_table();
/// A-law decode table indexed by code word.
pub static ALAW_DECODE: [i16; 256] = build_alaw_table();

/// Encodes one sample to µ-law (G.191 `ulaw_compress`).
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    // G.191: one's complement of negative input, 16 → 14 bits, add the bias of 33.
    let magnitude = if sample < 0 { !sample } else { sample };
    let absno = (((magnitude >> 2) as u32) + 33).min(0x1FFF);
    // Segment = 1 + bit length of (absno >> 6); equals the reference's shift loop.
    let segno = 33 - (absno >> 6).leading_zeros();
    let high = 8 - segno;
    let low = 0xF - ((absno >> segno) & 0xF);
    let code = ((high << 4) | low) as u8;
    if sample >= 0 {
        code | 0x80
    } else {
        code
    }
}

/// Decodes one µ-law code word.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Encodes one sample to A-law (G.191 `alaw_compress`).
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    // G.191: one's complement of negative input, 16 → 12 bits.
    let magnitude = if sample < 0 { !sample } else { sample };
    let ix = (magnitude >> 4) as u32;
    let mut code = if ix > 15 {
        // Exponent = bit length − 4 (5..=11 bits → 1..=7); the leading 1 is implicit.
        let exponent = 28 - ix.leading_zeros();
        (exponent << 4) | ((ix >> (exponent - 1)) & 0xF)
    } else {
        ix
    };
    if sample >= 0 {
        code |= 0x80;
    }
    (code ^ 0x55) as u8
}

/// Decodes one A-law code word.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

const fn ulaw_expand(code: u8) -> i16 {
    // G.191 `ulaw_expand`.
    let mantissa = !code;
    let exponent = ((mantissa >> 4) & 0x7) as i32;
    let segment = exponent + 1;
    let mantissa = (mantissa & 0xF) as i32;
    let step = 4 << segment;
    let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    if code < 0x80 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_expand(code: u8) -> i16 {
    // G.191 `alaw_expand`.
    let ix = ((code ^ 0x55) & 0x7F) as i32;
    let exponent = ix >> 4;
    let mut mantissa = ix & 0xF;
    if exponent > 0 {
        mantissa += 16;
    }
    mantissa = (mantissa << 4) + 8;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    if code > 127 {
        mantissa as i16
    } else {
        -mantissa as i16
    }
}

const fn build_ulaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_expand(i as u8);
        i += 1;
    }
    table
}

const fn build_alaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_expand(i as u8);
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_points() {
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn decode_then_encode_is_identity_on_codes() {
        for code in 0..=255u8 {
            // µ-law has two zeros (0x7F and 0xFF); both decode to 0, which encodes as 0xFF.
            let back = ulaw_encode(ulaw_decode(code));
            if code == 0x7F {
                assert_eq!(back, 0xFF);
            } else {
                assert_eq!(back, code, "µ-law {code:#04x}");
            }
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn slice_apis_round_trip() {
        let samples: Vec<i16> = (0..160)
            .map(|i| ((i * 397) % 20000 - 10000) as i16)
            .collect();
        for law in [Law::Mu, Law::A] {
            let codes = law.encode_vec(&samples);
            let decoded = law.decode_vec(&codes);
            assert_eq!(decoded.len(), 160);
            for (&a, &b) in samples.iter().zip(&decoded) {
                // Quantisation error is bounded by half the largest step (1024 for µ-law seg 8).
                assert!((a as i32 - b as i32).abs() <= 1024, "{law:?} {a} {b}");
            }
            assert!(law.decode(law.silence()).abs() <= 8);
        }
    }
}
