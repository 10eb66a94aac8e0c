//! The crate's one error type.

/// Everything that can fail in `media-audio`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resampler could not be built for this rate pair.
    #[error("resampler construction: {0}")]
    ResamplerConstruction(#[from] rubato::ResamplerConstructionError),
    /// The resampler rejected a chunk (a bug in our chunking if it ever happens).
    #[error("resampling: {0}")]
    Resample(#[from] rubato::ResampleError),
    /// VAD frames must be 10, 20 or 30 ms long.
    #[error("VAD frame of {samples} samples is not 10, 20 or 30 ms at {rate} Hz")]
    VadFrameLength {
        /// Samples given.
        samples: usize,
        /// Sample rate.
        rate: u32,
    },
    /// The VAD supports 8 and 16 kHz here.
    #[error("VAD does not support {0} Hz")]
    VadRate(u32),
    /// hound rejected WAV data (corrupt samples on reading, an I/O error on writing).
    #[error("WAV: {0}")]
    Wav(#[from] hound::Error),
    /// Not a WAV file, or one without a part every WAV file has.
    #[error("not a valid WAV file: {0}")]
    NotWav(&'static str),
    /// A chunk declares more bytes than the file has (a recording cut short).
    #[error(
        "truncated WAV file: the {chunk:?} chunk declares {declared} bytes, {present} are present"
    )]
    WavTruncated {
        /// The chunk's id.
        chunk: &'static str,
        /// Its declared size.
        declared: usize,
        /// Bytes the file has after its header.
        present: usize,
    },
    /// The channel asked for is not in the file.
    #[error("channel {asked} asked for, but the file has {channels} channel(s) (0-based)")]
    WavChannel {
        /// The channel asked for, 0-based.
        asked: u16,
        /// Channels in the file.
        channels: u16,
    },
    /// A sample rate the resampler does not take.
    #[error("unsupported sample rate {0} Hz; supported: 8000, 16000, 22050, 44100, 48000")]
    WavRate(u32),
    /// A sample encoding the reader does not decode.
    #[error(
        "unsupported WAV encoding (format tag {tag:#06x}, {bits} bits); supported: PCM \
         (8/16/24/32-bit), IEEE float (32-bit), G.711 µ-law and A-law (8-bit)"
    )]
    WavEncoding {
        /// The WAVE_FORMAT tag.
        tag: u16,
        /// Bits per sample.
        bits: u16,
    },
}
