//! CTranslate2 (faster-whisper) Whisper model → whisper.cpp ggml file.
//!
//! A line-by-line port of `ct2_whisper_to_ggml.py` (see MODELS.md): same hparams, same mel
//! filter bank (computed, Slaney-style, bit-identical to OpenAI's `mel_filters.npz`), same
//! vocabulary (ids 0..50256), same tensor names and order as whisper.cpp's
//! `convert-pt-to-ggml.py`. Its output is byte-identical to the script's, which the manifest
//! pins by sha256 (tiny.en `5cca2e9b…`, base `c0db4707…`).
//!
//! Input formats, as the script reads them:
//! - CTranslate2 `model.bin` (binary version ≥ 4), little-endian: `u32 version`, `string spec`,
//!   `u32 revision`, `u32 n_vars`, then per variable `string name`, `u8 rank`, `u32 dims[rank]`,
//!   `u8 dtype` (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), `u32 n_bytes`, data; then optionally
//!   `u32 n_aliases` and pairs `string alias`, `string target`. A `string` is `u16 len` followed by
//!   `len` bytes whose last is a NUL.
//! - Hugging Face `tokenizer.json` (byte-level BPE): `model.vocab` and `added_tokens`.
//!
//! Output (ggml, little-endian): `i32 0x67676d6c`, 11 × `i32` hparams, `i32 n_mels, i32 201`
//! and the f32 filter bank, `i32 n_tokens` and per token `i32 len` + bytes, then per tensor
//! `i32 n_dims, i32 name_len, i32 ftype`, dims innermost first, name, data.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Write};

use half::f16;
use serde::Deserialize;

/// Whether matrices are written as f16 (whisper.cpp's default, and what the manifest pins) or f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatType {
    /// 2-D and larger tensors as f16, except conv biases and positional embeddings.
    F16,
    /// Everything as f32.
    F32,
}

/// Why a model cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertProblem {
    /// The model.bin ends in the middle of something.
    Truncated {
        /// Byte offset where more was needed.
        offset: usize,
        /// What was being read.
        reading: &'static str,
    },
    /// CTranslate2 binary versions below 4 are not supported.
    UnsupportedVersion(u32),
    /// The spec is not `WhisperSpec`.
    NotWhisper(String),
    /// A name is not UTF-8.
    BadString {
        /// Byte offset of the string.
        offset: usize,
    },
    /// Unknown dtype code.
    UnknownDType {
        /// Variable.
        tensor: String,
        /// The code.
        code: u8,
    },
    /// `n_bytes` disagrees with the dims and dtype.
    TensorSize {
        /// Variable.
        tensor: String,
        /// Bytes implied by dims × dtype.
        expected: usize,
        /// Bytes stored.
        actual: usize,
    },
    /// An alias points at a variable that does not exist.
    AliasTarget {
        /// The alias.
        alias: String,
        /// Its missing target.
        target: String,
    },
    /// A variable the converter needs is absent.
    MissingTensor(String),
    /// A variable has an unexpected shape.
    BadShape {
        /// Variable.
        tensor: String,
        /// Its dims.
        dims: Vec<usize>,
    },
    /// An integer tensor where weights are expected.
    NotFloat(String),
    /// int8/int16-quantized models cannot be converted (only f16/f32/bf16).
    Quantized,
    /// Only 80-mel models have computed filters.
    UnsupportedMels(usize),
    /// The tokenizer is unusable.
    Tokenizer(String),
}

impl fmt::Display for ConvertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvertProblem::Truncated { offset, reading } => write!(f, "model.bin truncated at byte {offset} reading {reading}"),
            ConvertProblem::UnsupportedVersion(v) => write!(f, "unsupported CTranslate2 binary version {v}"),
            ConvertProblem::NotWhisper(s) => write!(f, "not a Whisper model: {s}"),
            ConvertProblem::BadString { offset } => write!(f, "string at byte {offset} is not UTF-8"),
            ConvertProblem::UnknownDType { tensor, code } => write!(f, "{tensor}: unknown dtype code {code}"),
            ConvertProblem::TensorSize { tensor, expected, actual } => {
                write!(f, "{tensor}: {actual} data bytes, dims and dtype need {expected}")
            }
            ConvertProblem::AliasTarget { alias, target } => write!(f, "alias {alias} -> missing {target}"),
            ConvertProblem::MissingTensor(t) => write!(f, "missing variable {t}"),
            ConvertProblem::BadShape { tensor, dims } => write!(f, "{tensor}: unexpected shape {dims:?}"),
            ConvertProblem::NotFloat(t) => write!(f, "{t}: integer tensor where float weights are expected"),
            ConvertProblem::Quantized => {
                f.write_str("int8-quantized CTranslate2 model: only float16/float32/bfloat16 ones can be converted")
            }
            ConvertProblem::UnsupportedMels(n) => write!(f, "computing filters is only implemented for 80 mels, model has {n}"),
            ConvertProblem::Tokenizer(s) => write!(f, "tokenizer.json: {s}"),
        }
    }
}

/// Conversion failure: bad input, or the output writer failed.
#[derive(Debug)]
pub enum ConvertError {
    /// The input is not convertible.
    Input(ConvertProblem),
    /// Writing the output failed.
    Output(io::Error),
}

impl From<ConvertProblem> for ConvertError {
    fn from(p: ConvertProblem) -> Self {
        ConvertError::Input(p)
    }
}
impl From<io::Error> for ConvertError {
    fn from(e: io::Error) -> Self {
        ConvertError::Output(e)
    }
}

/// The 11 ggml hparams, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    /// Vocabulary size (51864 English-only, 51865 multilingual).
    pub n_vocab: i32,
    /// Audio context (1500).
    pub n_audio_ctx: i32,
    /// Encoder width.
    pub n_audio_state: i32,
    /// Encoder heads.
    pub n_audio_head: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Text context (448).
    pub n_text_ctx: i32,
    /// Decoder width.
    pub n_text_state: i32,
    /// Decoder heads.
    pub n_text_head: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bins.
    pub n_mels: i32,
    /// 1 for f16 matrices, 0 for f32.
    pub ftype: i32,
}

/// Convert `model_bin` (a whole CTranslate2 `model.bin`) and `tokenizer_json` into ggml, written to `out`.
pub fn convert(
    model_bin: &[u8],
    tokenizer_json: &[u8],
    ftype: FloatType,
    out: &mut impl Write,
) -> Result<Hparams, ConvertError> {
    let model = Ct2Model::parse(model_bin)?;
    if model.spec != "WhisperSpec" {
        return Err(ConvertProblem::NotWhisper(model.spec).into());
    }
    let t = &model.tensors;
    let conv2 = model.get("encoder/conv2/weight")?;
    if t.keys().any(|k| k.ends_with("weight_scale")) || conv2.dtype == DType::I8 {
        return Err(ConvertProblem::Quantized.into());
    }
    let [n_vocab, n_text_state] = model.dims::<2>("decoder/embeddings/weight")?;
    let [n_audio_ctx, n_audio_state] = model.dims::<2>("encoder/position_encodings/encodings")?;
    let [n_text_ctx, _] = model.dims::<2>("decoder/position_encodings/encodings")?;
    let [_, n_mels, _] = model.dims::<3>("encoder/conv1/weight")?;
    let n_audio_layer = model.n_layers("encoder");
    let n_text_layer = model.n_layers("decoder");
    let n_audio_head = model.scalar("encoder/num_heads")?;
    let n_text_head = model.scalar("decoder/num_heads")?;
    let use_f16 = ftype == FloatType::F16;
    let hp = Hparams {
        n_vocab: to_i32(n_vocab),
        n_audio_ctx: to_i32(n_audio_ctx),
        n_audio_state: to_i32(n_audio_state),
        n_audio_head,
        n_audio_layer: to_i32(n_audio_layer),
        n_text_ctx: to_i32(n_text_ctx),
        n_text_state: to_i32(n_text_state),
        n_text_head,
        n_text_layer: to_i32(n_text_layer),
        n_mels: to_i32(n_mels),
        ftype: i32::from(use_f16),
    };
    if n_mels != 80 {
        return Err(ConvertProblem::UnsupportedMels(n_mels).into());
    }
    let filters = mel_filters_slaney();
    let tokens = base_vocabulary(tokenizer_json)?;

    let mut w = TensorWriter { out, use_f16 };
    w.out.write_all(&0x6767_6d6c_i32.to_le_bytes())?;
    for v in [
        hp.n_vocab,
        hp.n_audio_ctx,
        hp.n_audio_state,
        hp.n_audio_head,
        hp.n_audio_layer,
        hp.n_text_ctx,
        hp.n_text_state,
        hp.n_text_head,
        hp.n_text_layer,
        hp.n_mels,
        hp.ftype,
    ] {
        w.out.write_all(&v.to_le_bytes())?;
    }
    w.out.write_all(&(N_MELS as i32).to_le_bytes())?;
    w.out.write_all(&(N_FREQS as i32).to_le_bytes())?;
    for v in &filters {
        w.out.write_all(&v.to_le_bytes())?;
    }
    w.out.write_all(&to_i32(tokens.len()).to_le_bytes())?;
    for tok in &tokens {
        w.out.write_all(&to_i32(tok.len()).to_le_bytes())?;
        w.out.write_all(tok)?;
    }

    // Same tensor order as OpenAI's state_dict (and so as the official ggml files).
    w.put(
        "encoder.positional_embedding",
        model.get("encoder/position_encodings/encodings")?,
    )?;
    w.put("encoder.conv1.weight", model.get("encoder/conv1/weight")?)?;
    w.put("encoder.conv1.bias", model.get("encoder/conv1/bias")?)?;
    w.put("encoder.conv2.weight", conv2)?;
    w.put("encoder.conv2.bias", model.get("encoder/conv2/bias")?)?;
    for i in 0..n_audio_layer {
        block(
            &mut w,
            &model,
            &format!("encoder/layer_{i}/"),
            &format!("encoder.blocks.{i}."),
            n_audio_state,
            false,
        )?;
    }
    w.put(
        "encoder.ln_post.weight",
        model.get("encoder/layer_norm/gamma")?,
    )?;
    w.put(
        "encoder.ln_post.bias",
        model.get("encoder/layer_norm/beta")?,
    )?;
    w.put(
        "decoder.positional_embedding",
        model.get("decoder/position_encodings/encodings")?,
    )?;
    w.put(
        "decoder.token_embedding.weight",
        model.get("decoder/embeddings/weight")?,
    )?;
    for i in 0..n_text_layer {
        block(
            &mut w,
            &model,
            &format!("decoder/layer_{i}/"),
            &format!("decoder.blocks.{i}."),
            n_text_state,
            true,
        )?;
    }
    w.put("decoder.ln.weight", model.get("decoder/layer_norm/gamma")?)?;
    w.put("decoder.ln.bias", model.get("decoder/layer_norm/beta")?)?;
    w.out.flush()?;
    Ok(hp)
}

fn block(
    w: &mut TensorWriter<'_, impl Write>,
    m: &Ct2Model<'_>,
    p: &str,
    q: &str,
    d: usize,
    cross: bool,
) -> Result<(), ConvertError> {
    let g = |s: &str| m.get(&format!("{p}{s}"));
    let qkv_w = g("self_attention/linear_0/weight")?;
    let qkv_b = g("self_attention/linear_0/bias")?;
    w.put(&format!("{q}attn.query.weight"), qkv_w.rows(0, d)?)?;
    w.put(&format!("{q}attn.query.bias"), qkv_b.rows(0, d)?)?;
    w.put(&format!("{q}attn.key.weight"), qkv_w.rows(d, 2 * d)?)?;
    w.put(
        &format!("{q}attn.value.weight"),
        qkv_w.rows(2 * d, qkv_w.dims[0])?,
    )?;
    w.put(
        &format!("{q}attn.value.bias"),
        qkv_b.rows(2 * d, qkv_b.dims[0])?,
    )?;
    w.put(
        &format!("{q}attn.out.weight"),
        g("self_attention/linear_1/weight")?,
    )?;
    w.put(
        &format!("{q}attn.out.bias"),
        g("self_attention/linear_1/bias")?,
    )?;
    w.put(
        &format!("{q}attn_ln.weight"),
        g("self_attention/layer_norm/gamma")?,
    )?;
    w.put(
        &format!("{q}attn_ln.bias"),
        g("self_attention/layer_norm/beta")?,
    )?;
    if cross {
        let kv_w = g("attention/linear_1/weight")?;
        let kv_b = g("attention/linear_1/bias")?;
        w.put(
            &format!("{q}cross_attn.query.weight"),
            g("attention/linear_0/weight")?,
        )?;
        w.put(
            &format!("{q}cross_attn.query.bias"),
            g("attention/linear_0/bias")?,
        )?;
        w.put(&format!("{q}cross_attn.key.weight"), kv_w.rows(0, d)?)?;
        w.put(
            &format!("{q}cross_attn.value.weight"),
            kv_w.rows(d, kv_w.dims[0])?,
        )?;
        w.put(
            &format!("{q}cross_attn.value.bias"),
            kv_b.rows(d, kv_b.dims[0])?,
        )?;
        w.put(
            &format!("{q}cross_attn.out.weight"),
            g("attention/linear_2/weight")?,
        )?;
        w.put(
            &format!("{q}cross_attn.out.bias"),
            g("attention/linear_2/bias")?,
        )?;
        w.put(
            &format!("{q}cross_attn_ln.weight"),
            g("attention/layer_norm/gamma")?,
        )?;
        w.put(
            &format!("{q}cross_attn_ln.bias"),
            g("attention/layer_norm/beta")?,
        )?;
    }
    w.put(&format!("{q}mlp.0.weight"), g("ffn/linear_0/weight")?)?;
    w.put(&format!("{q}mlp.0.bias"), g("ffn/linear_0/bias")?)?;
    w.put(&format!("{q}mlp.2.weight"), g("ffn/linear_1/weight")?)?;
    w.put(&format!("{q}mlp.2.bias"), g("ffn/linear_1/bias")?)?;
    w.put(&format!("{q}mlp_ln.weight"), g("ffn/layer_norm/gamma")?)?;
    w.put(&format!("{q}mlp_ln.bias"), g("ffn/layer_norm/beta")?)?;
    Ok(())
}

/// Values that come from `usize` dims of a parsed file; the parser bounds dims by the file
/// length, which is far below `i32::MAX` elements for any Whisper model. Saturate rather than panic.
fn to_i32(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

struct TensorWriter<'w, W: Write> {
    out: &'w mut W,
    use_f16: bool,
}

impl<W: Write> TensorWriter<'_, W> {
    /// The script's `w(name, data)`.
    fn put(&mut self, name: &str, t: Tensor<'_>) -> Result<(), ConvertError> {
        let mut dims = t.dims.clone();
        if name == "encoder.conv1.bias" || name == "encoder.conv2.bias" {
            dims = vec![dims.first().copied().unwrap_or(0), 1];
        }
        let n_dims = dims.len();
        let keep_f32 = matches!(
            name,
            "encoder.conv1.bias"
                | "encoder.conv2.bias"
                | "encoder.positional_embedding"
                | "decoder.positional_embedding"
        );
        let as_f16 = self.use_f16 && n_dims >= 2 && !keep_f32;
        let ftype: i32 = if as_f16 { 1 } else { 0 };
        for v in [to_i32(n_dims), to_i32(name.len()), ftype] {
            self.out.write_all(&v.to_le_bytes())?;
        }
        for d in dims.iter().rev() {
            self.out.write_all(&to_i32(*d).to_le_bytes())?;
        }
        self.out.write_all(name.as_bytes())?;
        let mut buf = Vec::with_capacity(t.data.len() * 2);
        match (as_f16, t.dtype) {
            (true, DType::F16) | (false, DType::F32) => return Ok(self.out.write_all(t.data)?),
            (true, DType::F32) => {
                for c in t.data.chunks_exact(4) {
                    let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    buf.extend_from_slice(&f16::from_f32(v).to_le_bytes());
                }
            }
            (true, DType::BF16) => {
                for c in t.data.chunks_exact(2) {
                    let v = f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16);
                    buf.extend_from_slice(&f16::from_f32(v).to_le_bytes());
                }
            }
            (false, DType::F16) => {
                for c in t.data.chunks_exact(2) {
                    buf.extend_from_slice(&f16::from_le_bytes([c[0], c[1]]).to_f32().to_le_bytes());
                }
            }
            (false, DType::BF16) => {
                for c in t.data.chunks_exact(2) {
                    let v = f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16);
                    buf.extend_from_slice(&v.to_le_bytes());
                }
            }
            (_, DType::I8 | DType::I16 | DType::I32) => {
                return Err(ConvertProblem::NotFloat(name.to_owned()).into())
            }
        }
        Ok(self.out.write_all(&buf)?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }
    fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// A view of one variable's bytes inside the model.bin buffer.
#[derive(Debug, Clone)]
struct Tensor<'a> {
    name: String,
    dims: Vec<usize>,
    dtype: DType,
    data: &'a [u8],
}

impl<'a> Tensor<'a> {
    /// Rows `a..b` of the outermost dimension (numpy `t[a:b]`).
    fn rows(&self, a: usize, b: usize) -> Result<Tensor<'a>, ConvertProblem> {
        let n = self.dims.first().copied().unwrap_or(0);
        if a > b || b > n {
            return Err(ConvertProblem::BadShape {
                tensor: self.name.clone(),
                dims: self.dims.clone(),
            });
        }
        let row: usize = self.dims[1..].iter().product::<usize>() * self.dtype.size();
        let mut dims = self.dims.clone();
        dims[0] = b - a;
        Ok(Tensor {
            name: self.name.clone(),
            dims,
            dtype: self.dtype,
            data: &self.data[a * row..b * row],
        })
    }
}

struct Ct2Model<'a> {
    spec: String,
    tensors: HashMap<String, Tensor<'a>>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, reading: &'static str) -> Result<&'a [u8], ConvertProblem> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(ConvertProblem::Truncated {
                offset: self.pos,
                reading,
            });
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, reading: &'static str) -> Result<u8, ConvertProblem> {
        Ok(self.take(1, reading)?[0])
    }
    fn u16(&mut self, reading: &'static str) -> Result<u16, ConvertProblem> {
        let b = self.take(2, reading)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, reading: &'static str) -> Result<u32, ConvertProblem> {
        let b = self.take(4, reading)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// `u16 len` + bytes, the last of which (a NUL) is dropped.
    fn string(&mut self, reading: &'static str) -> Result<String, ConvertProblem> {
        let n = usize::from(self.u16(reading)?);
        let offset = self.pos;
        let b = self.take(n, reading)?;
        let b = &b[..n.saturating_sub(1)];
        String::from_utf8(b.to_vec()).map_err(|_| ConvertProblem::BadString { offset })
    }
}

impl<'a> Ct2Model<'a> {
    fn parse(buf: &'a [u8]) -> Result<Self, ConvertProblem> {
        let mut c = Cursor { buf, pos: 0 };
        let version = c.u32("binary version")?;
        if version < 4 {
            return Err(ConvertProblem::UnsupportedVersion(version));
        }
        let spec = c.string("spec name")?;
        let _revision = c.u32("spec revision")?;
        let n_vars = c.u32("variable count")?;
        let mut tensors = HashMap::new();
        for _ in 0..n_vars {
            let name = c.string("variable name")?;
            let rank = c.u8("rank")?;
            let mut dims = Vec::with_capacity(usize::from(rank));
            for _ in 0..rank {
                dims.push(c.u32("dims")? as usize);
            }
            let code = c.u8("dtype")?;
            let dtype = DType::from_code(code).ok_or_else(|| ConvertProblem::UnknownDType {
                tensor: name.clone(),
                code,
            })?;
            let n_bytes = c.u32("data size")? as usize;
            let data = c.take(n_bytes, "tensor data")?;
            // numpy reads rank-0 variables as 1-D arrays.
            if dims.is_empty() {
                dims.push(n_bytes / dtype.size());
            }
            let expected = dims
                .iter()
                .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d));
            if expected != Some(n_bytes) {
                return Err(ConvertProblem::TensorSize {
                    tensor: name,
                    expected: expected.unwrap_or(usize::MAX),
                    actual: n_bytes,
                });
            }
            tensors.insert(
                name.clone(),
                Tensor {
                    name,
                    dims,
                    dtype,
                    data,
                },
            );
        }
        // The alias table is optional: the script reads it only when 4 more bytes exist.
        if buf.len() - c.pos >= 4 {
            let n = c.u32("alias count")?;
            for _ in 0..n {
                let alias = c.string("alias")?;
                let target = c.string("alias target")?;
                let t =
                    tensors
                        .get(&target)
                        .cloned()
                        .ok_or_else(|| ConvertProblem::AliasTarget {
                            alias: alias.clone(),
                            target: target.clone(),
                        })?;
                tensors.entry(alias).or_insert(t);
            }
        }
        Ok(Ct2Model { spec, tensors })
    }

    fn get(&self, name: &str) -> Result<Tensor<'a>, ConvertProblem> {
        self.tensors
            .get(name)
            .cloned()
            .ok_or_else(|| ConvertProblem::MissingTensor(name.to_owned()))
    }

    fn dims<const N: usize>(&self, name: &str) -> Result<[usize; N], ConvertProblem> {
        let t = self.get(name)?;
        <[usize; N]>::try_from(t.dims.as_slice()).map_err(|_| ConvertProblem::BadShape {
            tensor: name.to_owned(),
            dims: t.dims,
        })
    }

    /// `int(t[name].reshape(-1)[0])`.
    fn scalar(&self, name: &str) -> Result<i32, ConvertProblem> {
        let t = self.get(name)?;
        let bad = || ConvertProblem::BadShape {
            tensor: name.to_owned(),
            dims: t.dims.clone(),
        };
        let d = t.data;
        Ok(match t.dtype {
            DType::I8 => i32::from(*d.first().ok_or_else(bad)? as i8),
            DType::I16 => i32::from(i16::from_le_bytes(
                d.get(..2).ok_or_else(bad)?.try_into().map_err(|_| bad())?,
            )),
            DType::I32 => {
                i32::from_le_bytes(d.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?)
            }
            DType::F32 => {
                f32::from_le_bytes(d.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?)
                    as i32
            }
            DType::F16 => {
                f16::from_le_bytes(d.get(..2).ok_or_else(bad)?.try_into().map_err(|_| bad())?)
                    .to_f32() as i32
            }
            DType::BF16 => {
                let b: [u8; 2] = d.get(..2).ok_or_else(bad)?.try_into().map_err(|_| bad())?;
                f32::from_bits(u32::from(u16::from_le_bytes(b)) << 16) as i32
            }
        })
    }

    /// Number of distinct `side/layer_N/…` indices.
    fn n_layers(&self, side: &str) -> usize {
        let prefix = format!("{side}/layer_");
        let layers: HashSet<&str> = self
            .tensors
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .filter_map(|k| k.split('/').nth(1))
            .filter(|l| l.len() > 6 && l[6..].bytes().all(|b| b.is_ascii_digit()))
            .collect();
        layers.len()
    }
}

const N_MELS: usize = 80;
const N_FFT: usize = 400;
const N_FREQS: usize = 1 + N_FFT / 2;

/// librosa.filters.mel(sr=16000, n_fft=400, n_mels=80) (htk=False, norm='slaney'), row-major
/// 80 × 201, computed exactly as the script does with numpy: f64 arithmetic, rows stored as
/// f32, the Slaney normalisation applied in f64 and rounded to f32 again.
pub fn mel_filters_slaney() -> Vec<f32> {
    let sr = 16000.0_f64;
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4_f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f >= min_log_hz {
            min_log_mel + (f.max(1e-10) / min_log_hz).ln() / logstep
        } else {
            f / f_sp
        }
    };
    let mel_to_hz = |m: f64| {
        if m >= min_log_mel {
            min_log_hz * (logstep * (m - min_log_mel)).exp()
        } else {
            f_sp * m
        }
    };
    // numpy.linspace: start + i * ((stop - start) / (num - 1)), last element set to stop.
    let linspace = |start: f64, stop: f64, num: usize| -> Vec<f64> {
        let step = (stop - start) / (num - 1) as f64;
        let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
        v[num - 1] = stop;
        v
    };
    // numpy's minimum/maximum (SIMD minpd/maxpd) return the second operand on ties, which
    // decides the sign of zero; f64::min/max do not promise that.
    let minimum = |a: f64, b: f64| if a < b { a } else { b };
    let maximum = |a: f64, b: f64| if a > b { a } else { b };

    let fftfreqs = linspace(0.0, sr / 2.0, N_FREQS);
    let mel_pts: Vec<f64> = linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), N_MELS + 2)
        .into_iter()
        .map(mel_to_hz)
        .collect();
    let fdiff: Vec<f64> = mel_pts.windows(2).map(|w| w[1] - w[0]).collect();
    let mut weights = vec![0f32; N_MELS * N_FREQS];
    for i in 0..N_MELS {
        let enorm = 2.0 / (mel_pts[i + 2] - mel_pts[i]);
        for (j, &fft) in fftfreqs.iter().enumerate() {
            let lower = -(mel_pts[i] - fft) / fdiff[i];
            let upper = (mel_pts[i + 2] - fft) / fdiff[i + 1];
            let w = maximum(0.0, minimum(lower, upper)) as f32;
            weights[i * N_FREQS + j] = (f64::from(w) * enorm) as f32;
        }
    }
    weights
}

/// GPT-2's byte ↔ printable-char table (`bytes_to_unicode`), inverted: char → byte.
fn byte_decoder() -> HashMap<char, u8> {
    let mut bs: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.into_iter()
        .zip(cs)
        .filter_map(|(b, c)| Some((char::from_u32(c)?, u8::try_from(b).ok()?)))
        .collect()
}

/// Ids 0..50256 as raw bytes (for English-only models that includes `<|endoftext|>`), as in the
/// official ggml files; whisper.cpp appends the remaining special tokens itself from n_vocab.
fn base_vocabulary(tokenizer_json: &[u8]) -> Result<Vec<Vec<u8>>, ConvertProblem> {
    #[derive(Deserialize)]
    struct Tok {
        model: Model,
        #[serde(default)]
        added_tokens: Vec<Added>,
    }
    #[derive(Deserialize)]
    struct Model {
        vocab: HashMap<String, i64>,
    }
    #[derive(Deserialize)]
    struct Added {
        content: String,
        id: i64,
    }
    const N_BASE: i64 = 50257;
    let tok: Tok = serde_json::from_slice(tokenizer_json)
        .map_err(|e| ConvertProblem::Tokenizer(e.to_string()))?;
    let mut vocab = tok.model.vocab;
    for a in tok.added_tokens {
        vocab.entry(a.content).or_insert(a.id);
    }
    let mut by_id: Vec<(i64, String)> = vocab
        .into_iter()
        .filter(|(_, i)| *i < N_BASE)
        .map(|(s, i)| (i, s))
        .collect();
    by_id.sort();
    if by_id.len() != N_BASE as usize || by_id.iter().enumerate().any(|(k, (i, _))| *i != k as i64)
    {
        return Err(ConvertProblem::Tokenizer(
            "ids 0..50256 are not contiguous".into(),
        ));
    }
    let dec = byte_decoder();
    by_id
        .into_iter()
        .map(|(_, s)| {
            s.chars()
                .map(|c| {
                    dec.get(&c).copied().ok_or_else(|| {
                        ConvertProblem::Tokenizer(format!("token {s:?} has non-byte char {c:?}"))
                    })
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal CTranslate2 writer for synthetic models.
    struct Ct2Builder {
        vars: Vec<(String, Vec<u32>, u8, Vec<u8>)>,
        aliases: Vec<(String, String)>,
    }

    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    impl Ct2Builder {
        fn f16(&mut self, name: &str, dims: &[u32], fill: f32) {
            let n: u32 = dims.iter().product();
            let data = (0..n)
                .flat_map(|k| f16::from_f32(fill + k as f32 / 1024.0).to_le_bytes())
                .collect();
            self.vars.push((name.into(), dims.to_vec(), 4, data));
        }
        fn bytes(&self) -> Vec<u8> {
            let mut o = Vec::new();
            o.extend_from_slice(&6u32.to_le_bytes());
            put_str(&mut o, "WhisperSpec");
            o.extend_from_slice(&1u32.to_le_bytes());
            o.extend_from_slice(&(self.vars.len() as u32).to_le_bytes());
            for (name, dims, code, data) in &self.vars {
                put_str(&mut o, name);
                o.push(dims.len() as u8);
                for d in dims {
                    o.extend_from_slice(&d.to_le_bytes());
                }
                o.push(*code);
                o.extend_from_slice(&(data.len() as u32).to_le_bytes());
                o.extend_from_slice(data);
            }
            o.extend_from_slice(&(self.aliases.len() as u32).to_le_bytes());
            for (a, t) in &self.aliases {
                put_str(&mut o, a);
                put_str(&mut o, t);
            }
            o
        }
    }

    /// A 1-layer Whisper with width 4, 80 mels, vocabulary 51864.
    fn synthetic() -> Ct2Builder {
        let d = 4;
        let mut b = Ct2Builder {
            vars: Vec::new(),
            aliases: Vec::new(),
        };
        b.vars.push((
            "encoder/num_heads".into(),
            vec![],
            2,
            2i16.to_le_bytes().to_vec(),
        ));
        b.vars.push((
            "decoder/num_heads".into(),
            vec![],
            2,
            2i16.to_le_bytes().to_vec(),
        ));
        b.f16("encoder/conv1/weight", &[d, 80, 3], 0.1);
        b.f16("encoder/conv1/bias", &[d], 0.2);
        b.f16("encoder/conv2/weight", &[d, d, 3], 0.3);
        b.f16("encoder/conv2/bias", &[d], 0.4);
        b.f16("encoder/position_encodings/encodings", &[6, d], 0.5);
        b.f16("decoder/position_encodings/encodings", &[5, d], 0.6);
        b.f16("decoder/embeddings/weight", &[51864, d], 0.7);
        for side in ["encoder", "decoder"] {
            let p = format!("{side}/layer_0/");
            b.f16(
                &format!("{p}self_attention/linear_0/weight"),
                &[3 * d, d],
                1.0,
            );
            b.f16(&format!("{p}self_attention/linear_0/bias"), &[3 * d], 1.1);
            b.f16(&format!("{p}self_attention/linear_1/weight"), &[d, d], 1.2);
            b.f16(&format!("{p}self_attention/linear_1/bias"), &[d], 1.3);
            b.f16(&format!("{p}self_attention/layer_norm/gamma"), &[d], 1.4);
            b.f16(&format!("{p}self_attention/layer_norm/beta"), &[d], 1.5);
            if side == "decoder" {
                b.f16(&format!("{p}attention/linear_0/weight"), &[d, d], 2.0);
                b.f16(&format!("{p}attention/linear_0/bias"), &[d], 2.1);
                b.f16(&format!("{p}attention/linear_1/weight"), &[2 * d, d], 2.2);
                b.f16(&format!("{p}attention/linear_1/bias"), &[2 * d], 2.3);
                b.f16(&format!("{p}attention/linear_2/weight"), &[d, d], 2.4);
                b.f16(&format!("{p}attention/linear_2/bias"), &[d], 2.5);
                b.f16(&format!("{p}attention/layer_norm/gamma"), &[d], 2.6);
                b.f16(&format!("{p}attention/layer_norm/beta"), &[d], 2.7);
            }
            b.f16(&format!("{p}ffn/linear_0/weight"), &[2 * d, d], 3.0);
            b.f16(&format!("{p}ffn/linear_0/bias"), &[2 * d], 3.1);
            b.f16(&format!("{p}ffn/linear_1/weight"), &[d, 2 * d], 3.2);
            b.f16(&format!("{p}ffn/linear_1/bias"), &[d], 3.3);
            b.f16(&format!("{p}ffn/layer_norm/gamma"), &[d], 3.4);
            b.f16(&format!("{p}ffn/layer_norm/beta"), &[d], 3.5);
            b.f16(&format!("{side}/layer_norm/gamma"), &[d], 4.0);
            b.f16(&format!("{side}/layer_norm/beta"), &[d], 4.1);
        }
        b.aliases.push((
            "decoder/projection/weight".into(),
            "decoder/embeddings/weight".into(),
        ));
        b
    }

    /// Byte-level BPE vocabulary: the 256 byte chars, then filler tokens up to id 50256.
    fn tokenizer() -> Vec<u8> {
        let dec = byte_decoder();
        let mut by_byte: Vec<(u8, char)> = dec.iter().map(|(c, b)| (*b, *c)).collect();
        by_byte.sort();
        let mut vocab = serde_json::Map::new();
        for (b, c) in &by_byte {
            vocab.insert(c.to_string(), (*b as u64).into());
        }
        for i in 256..50256u64 {
            vocab.insert(format!("t{i}"), i.into());
        }
        let added = serde_json::json!([{ "content": "<|endoftext|>", "id": 50256 }, { "content": "<|sot|>", "id": 50257 }]);
        serde_json::to_vec(
            &serde_json::json!({ "model": { "vocab": vocab }, "added_tokens": added }),
        )
        .unwrap()
    }

    fn i32_at(b: &[u8], off: usize) -> i32 {
        i32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn header_layout_of_a_synthetic_model() {
        let mut out = Vec::new();
        let hp = convert(&synthetic().bytes(), &tokenizer(), FloatType::F16, &mut out).unwrap();
        assert_eq!(i32_at(&out, 0), 0x6767_6d6c);
        assert_eq!(&out[..4], b"lmgg");
        let hparams: Vec<i32> = (0..11).map(|k| i32_at(&out, 4 + 4 * k)).collect();
        // n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
        // n_text_state, n_text_head, n_text_layer, n_mels, f16
        assert_eq!(hparams, vec![51864, 6, 4, 2, 1, 5, 4, 2, 1, 80, 1]);
        assert_eq!(hp.n_vocab, 51864);
        let mut off = 48;
        assert_eq!((i32_at(&out, off), i32_at(&out, off + 4)), (80, 201));
        off += 8;
        let filters: Vec<f32> = (0..80 * 201)
            .map(|k| f32::from_le_bytes(out[off + 4 * k..off + 4 * k + 4].try_into().unwrap()))
            .collect();
        assert_eq!(filters, mel_filters_slaney());
        off += 80 * 201 * 4;
        assert_eq!(i32_at(&out, off), 50257);
        off += 4;
        // Token k < 256 is the single byte k (as the synthetic vocabulary says), token 50256 is <|endoftext|>.
        assert_eq!((i32_at(&out, off), out[off + 4]), (1, 0));
        for k in 0..50257 {
            let n = i32_at(&out, off) as usize;
            if k == 50256 {
                assert_eq!(&out[off + 4..off + 4 + n], b"<|endoftext|>");
            }
            off += 4 + n;
        }
        // First tensor: encoder.positional_embedding, 2-D, kept f32, dims innermost first.
        let name = b"encoder.positional_embedding";
        assert_eq!(
            (
                i32_at(&out, off),
                i32_at(&out, off + 4),
                i32_at(&out, off + 8)
            ),
            (2, name.len() as i32, 0)
        );
        assert_eq!((i32_at(&out, off + 12), i32_at(&out, off + 16)), (4, 6));
        assert_eq!(&out[off + 20..off + 20 + name.len()], name);
        off += 20 + name.len() + 6 * 4 * 4;
        // Second: encoder.conv1.weight, 3-D f16 [4, 80, 3] written as 3, 80, 4.
        let name = b"encoder.conv1.weight";
        assert_eq!((i32_at(&out, off), i32_at(&out, off + 8)), (3, 1));
        assert_eq!(
            (
                i32_at(&out, off + 12),
                i32_at(&out, off + 16),
                i32_at(&out, off + 20)
            ),
            (3, 80, 4)
        );
        assert_eq!(&out[off + 24..off + 24 + name.len()], name);
        off += 24 + name.len() + 4 * 80 * 3 * 2;
        // Third: encoder.conv1.bias reshaped to (4, 1), f32.
        assert_eq!((i32_at(&out, off), i32_at(&out, off + 8)), (2, 0));
        assert_eq!((i32_at(&out, off + 12), i32_at(&out, off + 16)), (1, 4));
        // Ends with decoder.ln.bias (1-D f32 of 4 values).
        let tail = b"decoder.ln.bias";
        let end = out.len() - 16;
        assert_eq!(&out[end - tail.len()..end], tail);
    }

    #[test]
    fn output_is_deterministic_and_f32_mode_differs() {
        let (m, t) = (synthetic().bytes(), tokenizer());
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        convert(&m, &t, FloatType::F16, &mut a).unwrap();
        convert(&m, &t, FloatType::F16, &mut b).unwrap();
        convert(&m, &t, FloatType::F32, &mut c).unwrap();
        assert_eq!(a, b);
        assert!(c.len() > a.len());
    }

    #[test]
    fn rejects_truncated_quantized_and_wrong_spec() {
        let t = tokenizer();
        let m = synthetic().bytes();
        for cut in [0, 3, 10, 100, m.len() / 2] {
            let err = convert(&m[..cut], &t, FloatType::F16, &mut Vec::new()).unwrap_err();
            assert!(
                matches!(err, ConvertError::Input(ConvertProblem::Truncated { .. })),
                "cut {cut}: {err:?}"
            );
        }
        let mut q = synthetic();
        q.vars.push((
            "encoder/layer_0/ffn/linear_0/weight_scale".into(),
            vec![1],
            0,
            vec![0; 4],
        ));
        assert!(matches!(
            convert(&q.bytes(), &t, FloatType::F16, &mut Vec::new()),
            Err(ConvertError::Input(ConvertProblem::Quantized))
        ));
        let other = m.clone();
        let mut spec = other;
        spec[6] = b'X'; // "WhisperSpec" -> "XhisperSpec"
        assert!(matches!(
            convert(&spec, &t, FloatType::F16, &mut Vec::new()),
            Err(ConvertError::Input(ConvertProblem::NotWhisper(_)))
        ));
    }

    #[test]
    fn mel_filters_match_known_values() {
        let f = mel_filters_slaney();
        assert_eq!(f.len(), 80 * 201);
        // Row 0 starts at 0 and peaks at the second bin; every row is non-negative.
        assert_eq!(f[0].to_bits() & 0x7fff_ffff, 0);
        assert!(f[1] > 0.0);
        assert!(f.iter().all(|v| *v >= 0.0));
    }
}
