//! WAV files for the operator tools: any common WAV in (PCM, IEEE float, G.711 µ-law and A-law;
//! 8–48 kHz; mono or multi-channel), mono 16-bit PCM at a chosen rate out.
//!
//! hound reads PCM and float but not the G.711 format tags, which is what phone systems record,
//! so the RIFF chunks are walked here first: G.711 data is expanded with `media-audio`'s
//! bit-exact tables, everything else goes to hound.

use anyhow::{bail, ensure, Context};
use media_audio::g711::Law;
use media_audio::resample::SampleRate;
use std::path::Path;

/// A decoded file: mono samples at the file's own rate, and what the file was.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Mono 16-bit samples at `rate`.
    pub samples: Vec<i16>,
    pub rate: SampleRate,
    /// Channels in the file (mixed or picked down to one).
    pub channels: u16,
    pub encoding: Encoding,
}

/// How the file's samples were stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Pcm { bits: u16 },
    Float { bits: u16 },
    MuLaw,
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

const SUPPORTED: &str =
    "supported: PCM (8/16/24/32-bit), IEEE float (32-bit), G.711 µ-law and A-law";

/// Reads `path` as a WAV file and reduces it to one channel.
pub fn read_wav(path: &Path, channel: Channel) -> anyhow::Result<Audio> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode_wav(&bytes, channel).with_context(|| format!("{}", path.display()))
}

/// [`read_wav`] on bytes in memory.
pub fn decode_wav(bytes: &[u8], channel: Channel) -> anyhow::Result<Audio> {
    ensure!(
        bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
        "not a WAV file (no RIFF/WAVE header)"
    );
    let fmt = chunk(bytes, b"fmt ")?.context("not a valid WAV file: no fmt chunk")?;
    let data = chunk(bytes, b"data")?.context("not a valid WAV file: no data chunk")?;
    ensure!(
        fmt.len() >= 16,
        "not a valid WAV file: fmt chunk of {} bytes",
        fmt.len()
    );
    let le16 = |at: usize| u16::from_le_bytes([fmt[at], fmt[at + 1]]);
    let mut tag = le16(0);
    let channels = le16(2);
    let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
    let bits = le16(14);
    // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the sub-format GUID.
    if tag == FORMAT_EXTENSIBLE && fmt.len() >= 26 {
        tag = le16(24);
    }
    ensure!(channels > 0, "not a valid WAV file: 0 channels");
    if let Channel::Only(c) = channel {
        ensure!(
            c < channels,
            "channel {c} asked for, but the file has {channels} channel(s) (0-based)"
        );
    }
    let rate = SampleRate::from_hz(rate).with_context(|| {
        format!("unsupported sample rate {rate} Hz; supported: 8000, 16000, 22050, 44100, 48000")
    })?;
    let (interleaved, encoding) = match tag {
        FORMAT_MULAW | FORMAT_ALAW => {
            ensure!(
                bits == 8,
                "G.711 WAV with {bits} bits per sample (expected 8)"
            );
            let (law, encoding) = if tag == FORMAT_MULAW {
                (Law::Mu, Encoding::MuLaw)
            } else {
                (Law::A, Encoding::ALaw)
            };
            (law.decode_vec(data), encoding)
        }
        FORMAT_PCM | FORMAT_FLOAT => read_with_hound(bytes)?,
        other => bail!("unsupported WAV encoding (format tag {other:#06x}); {SUPPORTED}"),
    };
    Ok(Audio {
        samples: to_mono(&interleaved, channels, channel),
        rate,
        channels,
        encoding,
    })
}

/// Resamples mono audio from `from` to `to` (see [`media_audio::resample::resample`]).
pub fn resample(samples: &[i16], from: SampleRate, to: SampleRate) -> anyhow::Result<Vec<i16>> {
    media_audio::resample::resample(samples, from, to).context("resampling")
}

/// Writes mono 16-bit PCM.
pub fn write_wav(path: &Path, samples: &[i16], rate: u32) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let write = || -> Result<(), hound::Error> {
        let mut w = hound::WavWriter::create(path, spec)?;
        let mut w16 = w.get_i16_writer(samples.len() as u32);
        for &s in samples {
            w16.write_sample(s);
        }
        w16.flush()?;
        w.finalize()
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// The body of the first chunk with this id. A chunk that claims more bytes than the file has
/// is an error (a recording cut short, or not a WAV file at all).
fn chunk<'a>(bytes: &'a [u8], id: &[u8; 4]) -> anyhow::Result<Option<&'a [u8]>> {
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = at + 8;
        let present = bytes.len() - body;
        if &bytes[at..at + 4] == id {
            ensure!(
                size <= present,
                "truncated WAV file: the {:?} chunk declares {size} bytes, {present} are present",
                String::from_utf8_lossy(id)
            );
            return Ok(Some(&bytes[body..body + size]));
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(size).saturating_add(size & 1);
    }
    Ok(None)
}

/// PCM and float through hound, as interleaved i16.
fn read_with_hound(bytes: &[u8]) -> anyhow::Result<(Vec<i16>, Encoding)> {
    let reader =
        hound::WavReader::new(std::io::Cursor::new(bytes)).context("not a valid WAV file")?;
    let spec = reader.spec();
    let bits = spec.bits_per_sample;
    let bad = |e: hound::Error| anyhow::anyhow!("corrupt WAV data: {e}");
    match (spec.sample_format, bits) {
        (hound::SampleFormat::Int, 1..=16) => {
            // hound scales nothing: 8-bit samples come out as -128..=127.
            let shift = 16 - bits;
            let samples = reader
                .into_samples::<i16>()
                .map(|s| s.map(|s| s << shift))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            Ok((samples, Encoding::Pcm { bits }))
        }
        (hound::SampleFormat::Int, 17..=32) => {
            let shift = bits - 16;
            let samples = reader
                .into_samples::<i32>()
                .map(|s| s.map(|s| (s >> shift) as i16))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            Ok((samples, Encoding::Pcm { bits }))
        }
        (hound::SampleFormat::Float, 32) => {
            let samples = reader
                .into_samples::<f32>()
                .map(|s| s.map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            Ok((samples, Encoding::Float { bits }))
        }
        (format, bits) => bail!("unsupported WAV encoding ({format:?}, {bits} bits); {SUPPORTED}"),
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
        let mixed = decode_wav(&bytes, Channel::Mix).unwrap();
        assert_eq!(mixed.samples, [2000, -300]);
        assert_eq!((mixed.rate, mixed.channels), (SampleRate::Hz48000, 2));
        assert_eq!(mixed.encoding, Encoding::Pcm { bits: 16 });
        let right = decode_wav(&bytes, Channel::Only(1)).unwrap();
        assert_eq!(right.samples, [3000, -400]);
        let e = decode_wav(&bytes, Channel::Only(2))
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 channel(s)"), "{e}");
    }

    #[test]
    fn reads_g711_by_format_tag() {
        let pcm = [0i16, 1000, -1000, 30000];
        let codes = Law::Mu.encode_vec(&pcm);
        let a = decode_wav(&wav(FORMAT_MULAW, 1, 8000, 8, &codes), Channel::Mix).unwrap();
        assert_eq!(a.encoding, Encoding::MuLaw);
        assert_eq!(a.samples, Law::Mu.decode_vec(&codes));
        let codes = Law::A.encode_vec(&pcm);
        let a = decode_wav(&wav(FORMAT_ALAW, 1, 8000, 8, &codes), Channel::Mix).unwrap();
        assert_eq!(a.samples, Law::A.decode_vec(&codes));
    }

    #[test]
    fn scales_8_and_24_bit_pcm_and_float() {
        let a = decode_wav(&wav(FORMAT_PCM, 1, 16000, 8, &[0x80, 0xC0]), Channel::Mix).unwrap();
        assert_eq!(a.samples, [0, 64 << 8]);
        let a = decode_wav(
            &wav(FORMAT_PCM, 1, 16000, 24, &[0x00, 0x00, 0x40]),
            Channel::Mix,
        )
        .unwrap();
        assert_eq!(a.samples, [0x4000]);
        let f: Vec<u8> = [0.5f32, -1.0]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let a = decode_wav(&wav(FORMAT_FLOAT, 1, 22050, 32, &f), Channel::Mix).unwrap();
        assert_eq!(a.samples, [16384, -32768]);
    }

    #[test]
    fn precise_errors() {
        let err = |b: &[u8]| decode_wav(b, Channel::Mix).unwrap_err().to_string();
        assert!(err(b"ID3\x04 an mp3").contains("not a WAV file"));
        assert!(err(&wav(0x0055, 1, 16000, 16, &[0; 4])).contains("format tag 0x0055"));
        assert!(err(&wav(FORMAT_PCM, 1, 11025, 16, &[0; 4])).contains("11025 Hz"));
        let mut no_fmt = wav(FORMAT_PCM, 1, 16000, 16, &[0; 4]);
        no_fmt[12..16].copy_from_slice(b"junk");
        assert!(err(&no_fmt).contains("no fmt chunk"));
    }

    #[test]
    fn truncated_data_is_an_error() {
        let mut bytes = wav(FORMAT_MULAW, 1, 8000, 8, &[0xFF; 100]);
        bytes.truncate(bytes.len() - 40);
        let e = decode_wav(&bytes, Channel::Mix).unwrap_err().to_string();
        assert!(e.contains("declares 100 bytes, 60 are present"), "{e}");
    }

    #[test]
    fn resampling_keeps_length_and_timing() {
        // A click at 0.5 s must stay at 0.5 s after 8 kHz → 16 kHz.
        let mut pcm = vec![0i16; 8000];
        pcm[4000] = 20000;
        let out = resample(&pcm, SampleRate::Hz8000, SampleRate::Hz16000).unwrap();
        assert_eq!(out.len(), 16000);
        let peak = (0..out.len())
            .max_by_key(|&i| out[i].unsigned_abs())
            .unwrap();
        assert!((7998..=8002).contains(&peak), "click at {peak}");
    }
}
