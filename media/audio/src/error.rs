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
    /// Writing the WAV file failed.
    #[error("WAV: {0}")]
    Wav(#[from] hound::Error),
}
