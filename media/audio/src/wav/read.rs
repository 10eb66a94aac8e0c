//! Any common WAV file in (PCM, IEEE float, G.711 µ-law and A-law; 8–48 kHz; mono or
//! multi-channel), one channel of 16-bit samples out. The operator tools read recordings and test
//! audio with it, so its input is whatever file someone hands them: it is fuzzed (`fuzz/`).
//!
//! hound reads PCM and float but not the G.711 format tags, which is what phone systems record,
//! so the RIFF chunks are walked here first: G.711 data is expanded with this crate's bit-exact
//! tables, everything else goes to hound.

use crate::g711::Law;
use crate::resample::SampleRate;
use crate::Error;

/// A decoded file: mono samples at the file's own rate, and what the file was.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Mono 16-bit samples at `rate`.
    pub samples: Vec<i16>,
    /// The file's sample rate.
    pub rate: SampleRate,
    /// Channels in the file (mixed or picked down to one).
    pub channels: u16,
    /// How the file stored its samples.
    pub encoding: Encoding,
}

/// How a file's samples were stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Linear PCM of this many bits.
    Pcm { bits: u16 },
    /// IEEE float of this many bits.
    Float { bits: u16 },
    /// G.711 µ-law.
    MuLaw,
    /// G.711 A-law.
    ALaw,
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encoding::Pcm { bits } => write!(f, "pcm{bits}"),
            Encoding::Float { bits } => write!(f, "float{bits}"),
            Encoding::MuLaw => f.write_str("mulaw"),
            Encoding::ALaw => f.write_str("alaw"),
        }
    }
}

/// Which channel to keep from a multi-channel file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The average of all channels.
    Mix,
    /// One channel, 0-based (a call recording has the caller on 0 and the agent on 1).
    Only(u16),
}

/// WAVE_FORMAT_* tags (RFC 2361, mmreg.h).
const FORMAT_PCM: u16 = 0x0001;
const FORMAT_FLOAT: u16 = 0x0003;
const FORMAT_ALAW: u16 = 0x0006;
const FORMAT_MULAW: u16 = 0x0007;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Decodes a WAV file's bytes and reduces them to one channel.
pub fn decode(bytes: &[u8], channel: Channel) -> Result<Decoded, Error> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(Error::NotWav("no RIFF/WAVE header"));
    }
    let fmt = chunk(bytes, b"fmt ")?.ok_or(Error::NotWav("no fmt chunk"))?;
    let data = chunk(bytes, b"data")?.ok_or(Error::NotWav("no data chunk"))?;
    if fmt.len() < 16 {
        return Err(Error::NotWav("fmt chunk shorter than 16 bytes"));
    }
    let le16 = |at: usize| u16::from_le_bytes([fmt[at], fmt[at + 1]]);
    let mut tag = le16(0);
    let channels = le16(2);
    let hz = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
    let bits = le16(14);
    // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the sub-format GUID.
    if tag == FORMAT_EXTENSIBLE && fmt.len() >= 26 {
        tag = le16(24);
    }
    if channels == 0 {
        return Err(Error::NotWav("0 channels"));
    }
    if let Channel::Only(asked) = channel {
        if asked >= channels {
            return Err(Error::WavChannel { asked, channels });
        }
    }
    let rate = SampleRate::from_hz(hz).ok_or(Error::WavRate(hz))?;
    let (interleaved, encoding) = match (tag, bits) {
        (FORMAT_MULAW, 8) => (Law::Mu.decode_vec(data), Encoding::MuLaw),
        (FORMAT_ALAW, 8) => (Law::A.decode_vec(data), Encoding::ALaw),
        (FORMAT_PCM | FORMAT_FLOAT, _) => with_hound(bytes)?,
        (tag, bits) => return Err(Error::WavEncoding { tag, bits }),
    };
    Ok(Decoded {
        samples: to_mono(&interleaved, channels, channel),
        rate,
        channels,
        encoding,
    })
}

/// The body of the first chunk with this id. A chunk that claims more bytes than the file has
/// is an error (a recording cut short, or not a WAV file at all).
fn chunk<'a>(bytes: &'a [u8], id: &'static [u8; 4]) -> Result<Option<&'a [u8]>, Error> {
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = at + 8;
        let present = bytes.len() - body;
        if &bytes[at..at + 4] == id {
            if size > present {
                return Err(Error::WavTruncated {
                    chunk: std::str::from_utf8(id).unwrap_or("?"),
                    declared: size,
                    present,
                });
            }
            return Ok(Some(&bytes[body..body + size]));
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(size).saturating_add(size & 1);
    }
    Ok(None)
}

/// PCM and float through hound, as interleaved i16.
fn with_hound(bytes: &[u8]) -> Result<(Vec<i16>, Encoding), Error> {
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes))?;
    let spec = reader.spec();
    let bits = spec.bits_per_sample;
    match (spec.sample_format, bits) {
        (hound::SampleFormat::Int, 1..=16) => {
            // hound scales nothing: 8-bit samples come out as -128..=127.
            let shift = 16 - bits;
            let samples = reader
                .into_samples::<i16>()
                .map(|s| s.map(|s| s << shift))
                .collect::<Result<_, _>>()?;
            Ok((samples, Encoding::Pcm { bits }))
        }
        (hound::SampleFormat::Int, 17..=32) => {
            let shift = bits - 16;
            let samples = reader
                .into_samples::<i32>()
                .map(|s| s.map(|s| (s >> shift) as i16))
                .collect::<Result<_, _>>()?;
            Ok((samples, Encoding::Pcm { bits }))
        }
        (hound::SampleFormat::Float, 32) => {
            let samples = reader
                .into_samples::<f32>()
                .map(|s| s.map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16))
                .collect::<Result<_, _>>()?;
            Ok((samples, Encoding::Float { bits }))
        }
        (hound::SampleFormat::Int, _) => Err(Error::WavEncoding {
            tag: FORMAT_PCM,
            bits,
        }),
        (hound::SampleFormat::Float, _) => Err(Error::WavEncoding {
            tag: FORMAT_FLOAT,
            bits,
        }),
    }
}

fn to_mono(interleaved: &[i16], channels: u16, channel: Channel) -> Vec<i16> {
    let n = usize::from(channels);
    if n == 1 {
        return interleaved.to_vec();
    }
    let frames = interleaved.chunks_exact(n);
    match channel {
        Channel::Only(c) => frames.map(|f| f[usize::from(c)]).collect(),
        Channel::Mix => frames
            .map(|f| (f.iter().map(|&s| i32::from(s)).sum::<i32>() / n as i32) as i16)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV header by hand, independent of hound.
    fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let block = channels * bits / 8;
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        v.extend_from_slice(&block.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    fn pcm16(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    #[test]
    fn reads_stereo_pcm_mixed_or_one_channel() {
        let bytes = wav(FORMAT_PCM, 2, 48000, 16, &pcm16(&[1000, 3000, -200, -400]));
        let mixed = decode(&bytes, Channel::Mix).unwrap();
        assert_eq!(mixed.samples, [2000, -300]);
        assert_eq!((mixed.rate, mixed.channels), (SampleRate::Hz48000, 2));
        assert_eq!(mixed.encoding, Encoding::Pcm { bits: 16 });
        let right = decode(&bytes, Channel::Only(1)).unwrap();
        assert_eq!(right.samples, [3000, -400]);
        let e = decode(&bytes, Channel::Only(2)).unwrap_err().to_string();
        assert!(e.contains("2 channel(s)"), "{e}");
    }

    #[test]
    fn reads_g711_by_format_tag() {
        let pcm = [0i16, 1000, -1000, 30000];
        let codes = Law::Mu.encode_vec(&pcm);
        let a = decode(&wav(FORMAT_MULAW, 1, 8000, 8, &codes), Channel::Mix).unwrap();
        assert_eq!(a.encoding, Encoding::MuLaw);
        assert_eq!(a.samples, Law::Mu.decode_vec(&codes));
        let codes = Law::A.encode_vec(&pcm);
        let a = decode(&wav(FORMAT_ALAW, 1, 8000, 8, &codes), Channel::Mix).unwrap();
        assert_eq!(a.samples, Law::A.decode_vec(&codes));
    }

    #[test]
    fn scales_8_and_24_bit_pcm_and_float() {
        let a = decode(&wav(FORMAT_PCM, 1, 16000, 8, &[0x80, 0xC0]), Channel::Mix).unwrap();
        assert_eq!(a.samples, [0, 64 << 8]);
        let a = decode(
            &wav(FORMAT_PCM, 1, 16000, 24, &[0x00, 0x00, 0x40]),
            Channel::Mix,
        )
        .unwrap();
        assert_eq!(a.samples, [0x4000]);
        let f: Vec<u8> = [0.5f32, -1.0]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let a = decode(&wav(FORMAT_FLOAT, 1, 22050, 32, &f), Channel::Mix).unwrap();
        assert_eq!(a.samples, [16384, -32768]);
    }

    #[test]
    fn precise_errors() {
        let err = |b: &[u8]| decode(b, Channel::Mix).unwrap_err().to_string();
        assert!(err(b"ID3\x04 an mp3").contains("not a valid WAV file"));
        assert!(err(&wav(0x0055, 1, 16000, 16, &[0; 4])).contains("format tag 0x0055"));
        assert!(err(&wav(FORMAT_MULAW, 1, 8000, 16, &[0; 4])).contains("16 bits"));
        assert!(err(&wav(FORMAT_PCM, 1, 11025, 16, &[0; 4])).contains("11025 Hz"));
        let mut no_fmt = wav(FORMAT_PCM, 1, 16000, 16, &[0; 4]);
        no_fmt[12..16].copy_from_slice(b"junk");
        assert!(err(&no_fmt).contains("no fmt chunk"));
    }

    #[test]
    fn truncated_data_is_an_error() {
        let mut bytes = wav(FORMAT_MULAW, 1, 8000, 8, &[0xFF; 100]);
        bytes.truncate(bytes.len() - 40);
        let e = decode(&bytes, Channel::Mix).unwrap_err().to_string();
        assert!(e.contains("declares 100 bytes, 60 are present"), "{e}");
    }
}
