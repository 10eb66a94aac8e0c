//! G.711 against an independent transcription of the ITU-T G.191 reference (`g711.c`), which uses
//! the segment shift loops rather than the crate's `leading_zeros` arithmetic and tables.

use media_audio::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode, Law};

fn ref_ulaw_compress(x: i16) -> u8 {
    let x = x as i32;
    let mut absno = if x < 0 {
        ((!x) >> 2) + 33
    } else {
        (x >> 2) + 33
    };
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high_nibble = 0x0008 - segno;
    let low_nibble = 0x000F - ((absno >> segno) & 0x000F);
    let mut out = (high_nibble << 4) | low_nibble;
    if x >= 0 {
        out |= 0x0080;
    }
    out as u8
}

fn ref_ulaw_expand(code: u8) -> i16 {
    let code = code as i32;
    let sign = if code < 0x80 { -1 } else { 1 };
    let mantissa = !code;
    let exponent = (mantissa >> 4) & 0x7;
    let segment = exponent + 1;
    let mantissa = mantissa & 0xF;
    let step = 4 << segment;
    (sign * ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
}

fn ref_alaw_compress(x: i16) -> u8 {
    let x = x as i32;
    let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
    if ix > 15 {
        let mut iexp = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if x >= 0 {
        ix |= 0x0080;
    }
    (ix ^ 0x0055) as u8
}

fn ref_alaw_expand(code: u8) -> i16 {
    let code = code as i32;
    let mut ix = code ^ 0x0055;
    ix &= 0x007F;
    let iexp = ix >> 4;
    let mut mant = ix & 0x000F;
    if iexp > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 0x0008;
    if iexp > 1 {
        mant <<= iexp - 1;
    }
    (if code > 127 { mant } else { -mant }) as i16
}

#[test]
fn ulaw_decode_table_matches_reference() {
    for code in 0..=255u8 {
        assert_eq!(ulaw_decode(code), ref_ulaw_expand(code), "code {code:#04x}");
    }
}

#[test]
fn alaw_decode_table_matches_reference() {
    for code in 0..=255u8 {
        assert_eq!(alaw_decode(code), ref_alaw_expand(code), "code {code:#04x}");
    }
}

#[test]
fn ulaw_encode_every_i16_matches_reference() {
    for x in i16::MIN..=i16::MAX {
        assert_eq!(ulaw_encode(x), ref_ulaw_compress(x), "sample {x}");
    }
}

#[test]
fn alaw_encode_every_i16_matches_reference() {
    for x in i16::MIN..=i16::MAX {
        assert_eq!(alaw_encode(x), ref_alaw_compress(x), "sample {x}");
    }
}

#[test]
fn published_table_rows() {
    // First row of the classic µ-law expansion table (codes 0x00..=0x0F) and its positive mirror.
    let ulaw_row0: [i16; 16] = [
        -32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956, -23932, -22908, -21884,
        -20860, -19836, -18812, -17788, -16764,
    ];
    for (i, &v) in ulaw_row0.iter().enumerate() {
        assert_eq!(ulaw_decode(i as u8), v);
        assert_eq!(ulaw_decode(0x80 | i as u8), -v);
    }
    // Last µ-law row: 0x70..=0x7F, the smallest negative magnitudes.
    let ulaw_row7: [i16; 16] = [
        -120, -112, -104, -96, -88, -80, -72, -64, -56, -48, -40, -32, -24, -16, -8, 0,
    ];
    for (i, &v) in ulaw_row7.iter().enumerate() {
        assert_eq!(ulaw_decode(0x70 | i as u8), v);
    }
    // First row of the classic A-law expansion table (codes 0x00..=0x0F).
    let alaw_row0: [i16; 16] = [
        -5504, -5248, -6016, -5760, -4480, -4224, -4992, -4736, -7552, -7296, -8064, -7808, -6528,
        -6272, -7040, -6784,
    ];
    for (i, &v) in alaw_row0.iter().enumerate() {
        assert_eq!(alaw_decode(i as u8), v);
        assert_eq!(alaw_decode(0x80 | i as u8), -v);
    }
}

#[test]
fn fixed_points_from_the_brief() {
    assert_eq!(Law::Mu.decode(0x7F), 0);
    assert_eq!(Law::Mu.decode(0xFF), 0);
    assert_eq!(Law::Mu.decode(0x00), -32124);
    assert_eq!(Law::A.decode(0xD5), 8);
    assert_eq!(Law::A.decode(0x55), -8);
}
