//! Sentence embeddings with all-MiniLM-L6-v2 (BERT, 6 layers × 384) on candle, behind
//! [`models_api::Embedder`]: `tokenizer.json` → BERT → mean pooling over real tokens → L2
//! normalisation, as sentence-transformers does for this model (`1_Pooling/config.json`).
//!
//! Pure Rust: no ONNX Runtime, no C++. The safetensors file is read into memory (90 MB) rather
//! than memory-mapped, which would need `unsafe`.
//!
//! Threading: [`MiniLm`] is `Send + Sync`; calls block (a 32-sentence batch takes ~100 ms on
//! two cores). Inputs are truncated to [`MAX_TOKENS`].

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use models_api::{Embedder, Embedding};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Longest input in tokens; longer texts are truncated (the model was trained on 256).
pub const MAX_TOKENS: usize = 256;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file does not exist or cannot be read.
    #[error("embedding model {path}: {source}")]
    FileUnreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A model file is malformed (config, tokenizer or weights).
    #[error("embedding model {path}: {reason}")]
    ModelCorrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Tokenization failed.
    #[error("tokenizer: {0}")]
    Tokenize(String),
    /// The forward pass failed.
    #[error("embedding inference: {0}")]
    Inference(#[from] candle_core::Error),
}

/// all-MiniLM-L6-v2 loaded from a directory with `config.json`, `tokenizer.json` and
/// `model.safetensors`.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dimension: usize,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("dimension", &self.dimension)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::FileUnreadable {
        path: path.to_owned(),
        source,
    })
}

impl MiniLm {
    /// Loads the model from `dir` on the CPU.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let corrupt = |path: &Path, reason: String| Error::ModelCorrupt {
            path: path.to_owned(),
            reason,
        };
        let config_path = dir.join("config.json");
        let config: Config = serde_json::from_slice(&read(&config_path)?)
            .map_err(|e| corrupt(&config_path, e.to_string()))?;
        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_bytes(read(&tokenizer_path)?)
            .map_err(|e| corrupt(&tokenizer_path, e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| corrupt(&tokenizer_path, e.to_string()))?;
        let weights_path = dir.join("model.safetensors");
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(read(&weights_path)?, DType::F32, &device)
            .map_err(|e| corrupt(&weights_path, e.to_string()))?;
        let model =
            BertModel::load(vb, &config).map_err(|e| corrupt(&weights_path, e.to_string()))?;
        Ok(MiniLm {
            model,
            tokenizer,
            device,
            dimension: config.hidden_size,
        })
    }
}

impl Embedder for MiniLm {
    type Error = Error;

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>, Error> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Tokenize(e.to_string()))?;
        let rows = encodings.len();
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings
                .iter()
                .flat_map(|e| f(e).iter().copied())
                .collect()
        };
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (rows, len), &self.device)?;
        let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), (rows, len), &self.device)?;
        let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), (rows, len), &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // [rows, len, dim]
                                                                     // Mean over real tokens only: padding must not dilute short sentences in a batch.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // [rows, len, 1]
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // [rows, dim]
        let counts = mask.sum(1)?.clamp(1.0, f64::MAX)?; // [rows, 1]
        let mean = summed.broadcast_div(&counts)?;
        let vectors: Vec<Vec<f32>> = mean.to_vec2()?;
        Ok(vectors.into_iter().map(Embedding::normalized).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dir_names_the_file() {
        let err = MiniLm::load(Path::new("/nonexistent/minilm")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/minilm/config.json"),
            "{err}"
        );
    }
}
