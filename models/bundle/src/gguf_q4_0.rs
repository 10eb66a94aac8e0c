//! GGUF → the same GGUF with its Q5_0 weight matrices requantized to Q4_0.
//!
//! Why: llama.cpp repacks Q4_0 matrices at load time into interleaved 8×8 blocks for its AVX2 and
//! AVX-512 kernels, and has no such layout for Q5_0. The small profile's Qwen2.5-0.5B ships as
//! "Q4_K_M", but its 896-wide rows do not fit k-quant super-blocks, so nearly every matrix fell
//! back to Q5_0. Requantized, it prefills about 40% and decodes about 17% faster on 2 cores
//! (`llm_bench`), with the demo's answers unchanged in substance.
//!
//! What changes: every Q5_0 tensor except `token_embd.weight` (a row lookup, never multiplied)
//! becomes Q4_0, and `general.file_type` says so. Everything else (metadata, tokenizer, the Q8_0
//! output matrix, the K-quants) is copied as is. The arithmetic is ggml's reference code
//! (`dequantize_row_q5_0`, `quantize_row_q4_0_ref`) step for step, so the tensors are
//! bit-identical to what `llama-quantize --allow-requantize … Q4_0` writes for them; the
//! manifest pins the whole file by sha256.
//!
//! GGUF (v2/v3, little-endian): `"GGUF"`, `u32 version`, `u64 n_tensors`, `u64 n_kv`; each KV is a
//! string key, `u32 type` and a value; each tensor info is a string name, `u32 n_dims`,
//! `u64 dims[n_dims]`, `u32 ggml_type`, `u64 offset` into the data section, which starts at the
//! next multiple of `general.alignment` (default 32) and holds each tensor padded to it.
//! A string is `u64 len` + bytes.

use std::fmt;
use std::io::{self, Write};

use half::f16;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// Values per block in both formats.
const QK: usize = 32;
/// `block_q5_0`: f16 scale, 32 high bits, 16 bytes of low nibbles.
const Q5_0_BLOCK: usize = 22;
/// `block_q4_0`: f16 scale, 16 bytes of nibbles.
const Q4_0_BLOCK: usize = 18;
const GGML_TYPE_Q4_0: u32 = 2;
const GGML_TYPE_Q5_0: u32 = 6;
/// `LLAMA_FTYPE_MOSTLY_Q4_0`.
const FTYPE_MOSTLY_Q4_0: u32 = 2;
/// GGUF value type codes.
const GGUF_TYPE_UINT32: u32 = 4;
const GGUF_TYPE_STRING: u32 = 8;
const GGUF_TYPE_ARRAY: u32 = 9;

/// Why a file cannot be requantized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not a GGUF file.
    NotGguf,
    /// A GGUF version this reader does not know.
    UnsupportedVersion(u32),
    /// The file ends in the middle of something.
    Truncated {
        /// Byte offset where more was needed.
        offset: usize,
        /// What was being read.
        reading: &'static str,
    },
    /// A metadata value type code that does not exist.
    UnknownValueType {
        /// Byte offset of the code.
        offset: usize,
        /// The code.
        code: u32,
    },
    /// A tensor type this reader cannot size, or rows that are not whole blocks of it.
    UnknownTensorType {
        /// Tensor name.
        tensor: String,
        /// The ggml type code.
        code: u32,
    },
    /// A tensor's data lies outside the file, or overlaps the next one.
    BadOffset {
        /// Tensor name.
        tensor: String,
    },
    /// The file has no Q5_0 tensor to requantize (it is not the file the manifest means).
    NothingToRequantize,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotGguf => write!(f, "not a GGUF file"),
            Problem::UnsupportedVersion(v) => write!(f, "GGUF version {v} is not supported"),
            Problem::Truncated { offset, reading } => {
                write!(f, "truncated at byte {offset} while reading {reading}")
            }
            Problem::UnknownValueType { offset, code } => {
                write!(f, "unknown metadata value type {code} at byte {offset}")
            }
            Problem::UnknownTensorType { tensor, code } => {
                write!(
                    f,
                    "tensor {tensor}: ggml type {code} with these rows is not supported"
                )
            }
            Problem::BadOffset { tensor } => write!(f, "tensor {tensor}: data out of bounds"),
            Problem::NothingToRequantize => write!(f, "no Q5_0 tensor to requantize"),
        }
    }
}

/// A failed requantization: bad input, or the output could not be written.
#[derive(Debug)]
pub enum RequantizeError {
    /// The input is not a usable GGUF.
    Input(Problem),
    /// Writing failed.
    Output(io::Error),
}

impl From<io::Error> for RequantizeError {
    fn from(e: io::Error) -> Self {
        RequantizeError::Output(e)
    }
}

/// One tensor's entry in the header.
struct TensorInfo {
    name: String,
    dims: Vec<u64>,
    ggml_type: u32,
    offset: u64,
    /// Where the `u32 type, u64 offset` pair sits in the input, to be patched in the output.
    type_at: usize,
}

impl TensorInfo {
    fn requantized(&self) -> bool {
        self.ggml_type == GGML_TYPE_Q5_0 && self.name != "token_embd.weight"
    }
}

/// Write `gguf` to `out` with its Q5_0 weight matrices as Q4_0. Returns the bytes written.
pub fn requantize(gguf: &[u8], out: &mut impl Write) -> Result<u64, RequantizeError> {
    let header = Header::read(gguf).map_err(RequantizeError::Input)?;
    if !header.tensors.iter().any(TensorInfo::requantized) {
        return Err(RequantizeError::Input(Problem::NothingToRequantize));
    }
    // The header keeps its length: only type codes, offsets and one u32 value change.
    let mut head = gguf[..header.data_start].to_vec();
    if let Some(at) = header.file_type_at {
        head[at..at + 4].copy_from_slice(&FTYPE_MOSTLY_Q4_0.to_le_bytes());
    }
    let mut inputs = Vec::with_capacity(header.tensors.len());
    let mut offset = 0u64;
    for t in &header.tensors {
        let data = header.data(gguf, t).map_err(RequantizeError::Input)?;
        let (ggml_type, size) = if t.requantized() {
            let blocks = data.len() / Q5_0_BLOCK;
            (GGML_TYPE_Q4_0, (blocks * Q4_0_BLOCK) as u64)
        } else {
            (t.ggml_type, data.len() as u64)
        };
        head[t.type_at..t.type_at + 4].copy_from_slice(&ggml_type.to_le_bytes());
        head[t.type_at + 4..t.type_at + 12].copy_from_slice(&offset.to_le_bytes());
        offset += pad(size, header.alignment);
        inputs.push((t, data, size));
    }
    out.write_all(&head)?;
    let mut written = head.len() as u64;
    let mut converted = Vec::new();
    for (t, data, size) in inputs {
        if t.requantized() {
            converted.clear();
            data.chunks_exact(Q5_0_BLOCK)
                .for_each(|b| converted.extend_from_slice(&q5_0_to_q4_0(b)));
            out.write_all(&converted)?;
        } else {
            out.write_all(data)?;
        }
        let padding = pad(size, header.alignment) - size;
        out.write_all(&vec![0; usize::try_from(padding).unwrap_or(0)])?;
        written += size + padding;
    }
    Ok(written)
}

fn pad(n: u64, alignment: u64) -> u64 {
    n.div_ceil(alignment) * alignment
}

/// One 32-value block: ggml's `dequantize_row_q5_0` then `quantize_row_q4_0_ref`.
fn q5_0_to_q4_0(b: &[u8]) -> [u8; Q4_0_BLOCK] {
    let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    let mut x = [0f32; QK];
    for j in 0..QK / 2 {
        let h0 = (((qh >> j) << 4) & 0x10) as u8;
        let h1 = ((qh >> (j + 12)) & 0x10) as u8;
        x[j] = (i32::from((qs[j] & 0x0f) | h0) - 16) as f32 * d;
        x[j + QK / 2] = (i32::from((qs[j] >> 4) | h1) - 16) as f32 * d;
    }
    // The value of largest magnitude, sign kept, maps to -8: the grid is -8..7 times d.
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in &x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
    let mut y = [0u8; Q4_0_BLOCK];
    y[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    for j in 0..QK / 2 {
        // C's (int8_t) cast truncates toward zero; the values are in 0.5..=16.5 here.
        let q0 = ((x[j] * id + 8.5) as i8).min(15) as u8;
        let q1 = ((x[j + QK / 2] * id + 8.5) as i8).min(15) as u8;
        y[2 + j] = q0 | (q1 << 4);
    }
    y
}

/// What the requantizer needs from the header.
struct Header {
    tensors: Vec<TensorInfo>,
    alignment: u64,
    data_start: usize,
    /// Where `general.file_type`'s u32 value sits, if the file has one.
    file_type_at: Option<usize>,
}

impl Header {
    fn read(gguf: &[u8]) -> Result<Self, Problem> {
        let mut r = Reader { buf: gguf, pos: 0 };
        if r.bytes(4, "magic")? != MAGIC {
            return Err(Problem::NotGguf);
        }
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(Problem::UnsupportedVersion(version));
        }
        let n_tensors = r.u64("tensor count")?;
        let n_kv = r.u64("metadata count")?;
        let (mut alignment, mut file_type_at) = (DEFAULT_ALIGNMENT, None);
        for _ in 0..n_kv {
            let key = r.string("metadata key")?;
            let code = r.u32("metadata type")?;
            if code == GGUF_TYPE_UINT32 && key == "general.alignment" {
                alignment = u64::from(r.u32("general.alignment")?).max(1);
            } else if code == GGUF_TYPE_UINT32 && key == "general.file_type" {
                file_type_at = Some(r.pos);
                r.u32("general.file_type")?;
            } else {
                r.skip_value(code)?;
            }
        }
        let mut tensors = Vec::new();
        for _ in 0..n_tensors {
            let name = r.string("tensor name")?;
            let n_dims = r.u32("tensor rank")?;
            let dims = (0..n_dims)
                .map(|_| r.u64("tensor dims"))
                .collect::<Result<_, _>>()?;
            let type_at = r.pos;
            let ggml_type = r.u32("tensor type")?;
            let offset = r.u64("tensor offset")?;
            tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
                type_at,
            });
        }
        let data_start = usize::try_from(pad(r.pos as u64, alignment)).unwrap_or(usize::MAX);
        if data_start > gguf.len() {
            return Err(Problem::Truncated {
                offset: gguf.len(),
                reading: "data section",
            });
        }
        Ok(Header {
            tensors,
            alignment,
            data_start,
            file_type_at,
        })
    }

    /// A tensor's data in the input, checked to lie inside the file.
    fn data<'a>(&self, gguf: &'a [u8], t: &TensorInfo) -> Result<&'a [u8], Problem> {
        let size = byte_size(t.ggml_type, &t.dims).ok_or_else(|| Problem::UnknownTensorType {
            tensor: t.name.clone(),
            code: t.ggml_type,
        })?;
        let start = (self.data_start as u64).checked_add(t.offset);
        let range = start.and_then(|s| {
            Some(usize::try_from(s).ok()?..usize::try_from(s.checked_add(size)?).ok()?)
        });
        range
            .and_then(|r| gguf.get(r))
            .ok_or_else(|| Problem::BadOffset {
                tensor: t.name.clone(),
            })
    }
}

/// Bytes of a tensor of `ggml_type` with `dims` (innermost first), for the types GGUF LLMs use.
fn byte_size(ggml_type: u32, dims: &[u64]) -> Option<u64> {
    let (block_bytes, block_values) = match ggml_type {
        0 => (4, 1),      // F32
        1 | 30 => (2, 1), // F16, BF16
        2 => (18, 32),    // Q4_0
        3 => (20, 32),    // Q4_1
        6 => (22, 32),    // Q5_0
        7 => (24, 32),    // Q5_1
        8 => (34, 32),    // Q8_0
        10 => (84, 256),  // Q2_K
        11 => (110, 256), // Q3_K
        12 => (144, 256), // Q4_K
        13 => (176, 256), // Q5_K
        14 => (210, 256), // Q6_K
        _ => return None,
    };
    let row = *dims.first()?;
    if row % block_values != 0 {
        return None;
    }
    let rows = dims[1..].iter().try_fold(1u64, |n, &d| n.checked_mul(d))?;
    (row / block_values)
        .checked_mul(block_bytes)?
        .checked_mul(rows)
}

/// A bounds-checked little-endian cursor.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize, reading: &'static str) -> Result<&'a [u8], Problem> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(Problem::Truncated {
            offset: self.pos,
            reading,
        })?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn u32(&mut self, reading: &'static str) -> Result<u32, Problem> {
        let b = self.bytes(4, reading)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, reading: &'static str) -> Result<u64, Problem> {
        let b = self.bytes(8, reading)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn len(&mut self, reading: &'static str) -> Result<usize, Problem> {
        let at = self.pos;
        let n = self.u64(reading)?;
        usize::try_from(n).map_err(|_| Problem::Truncated {
            offset: at,
            reading,
        })
    }

    fn string(&mut self, reading: &'static str) -> Result<String, Problem> {
        let n = self.len(reading)?;
        Ok(String::from_utf8_lossy(self.bytes(n, reading)?).into_owned())
    }

    /// Skip one metadata value of type `code` (arrays recursively).
    fn skip_value(&mut self, code: u32) -> Result<(), Problem> {
        let at = self.pos;
        match code {
            GGUF_TYPE_STRING => {
                let n = self.len("metadata string")?;
                self.bytes(n, "metadata string")?;
            }
            GGUF_TYPE_ARRAY => {
                let elem = self.u32("array type")?;
                let n = self.len("array length")?;
                match scalar_size(elem) {
                    Some(size) => {
                        let total = n.checked_mul(size).ok_or(Problem::Truncated {
                            offset: self.pos,
                            reading: "array",
                        })?;
                        self.bytes(total, "array")?;
                    }
                    None => (0..n).try_for_each(|_| self.skip_value(elem))?,
                }
            }
            code => match scalar_size(code) {
                Some(size) => {
                    self.bytes(size, "metadata value")?;
                }
                None => return Err(Problem::UnknownValueType { offset: at, code }),
            },
        }
        Ok(())
    }
}

/// Size of a fixed-size metadata value type; `None` for strings, arrays and unknown codes.
fn scalar_size(code: u32) -> Option<usize> {
    match code {
        0 | 1 | 7 => Some(1), // u8, i8, bool
        2 | 3 => Some(2),     // u16, i16
        4..=6 => Some(4),     // u32, i32, f32
        10..=12 => Some(8),   // u64, i64, f64
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // reason: tests

    use super::*;

    /// A Q5_0 block holding `values` (each -16..=15) times `d`.
    fn q5_0_block(d: f32, values: &[i32; QK]) -> Vec<u8> {
        let mut b = f16::from_f32(d).to_le_bytes().to_vec();
        let mut qh = 0u32;
        let mut qs = [0u8; QK / 2];
        for (j, &v) in values.iter().enumerate() {
            let q = (v + 16) as u32;
            qh |= (q >> 4) << j;
            let nibble = (q & 0x0f) as u8;
            qs[j % (QK / 2)] |= if j < QK / 2 { nibble } else { nibble << 4 };
        }
        b.extend_from_slice(&qh.to_le_bytes());
        b.extend_from_slice(&qs);
        b
    }

    fn q4_0_values(b: &[u8]) -> (f32, [i32; QK]) {
        let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
        let mut v = [0; QK];
        for j in 0..QK / 2 {
            v[j] = i32::from(b[2 + j] & 0x0f) - 8;
            v[j + QK / 2] = i32::from(b[2 + j] >> 4) - 8;
        }
        (d, v)
    }

    #[test]
    fn a_block_is_requantized_as_ggml_does() {
        // -16..=15 at d = 1: the largest magnitude, -16, becomes -8 with d = 2, and every value
        // rounds half up on the coarser grid (x / 2 + 8.5, truncated, at most 15).
        let values: [i32; QK] = std::array::from_fn(|j| j as i32 - 16);
        let (d, q) = q4_0_values(&q5_0_to_q4_0(&q5_0_block(1.0, &values)));
        assert_eq!(d, 2.0);
        let expected: [i32; QK] = std::array::from_fn(|j| {
            let x = j as f32 - 16.0;
            ((x / 2.0 + 8.5) as i32).min(15) - 8
        });
        assert_eq!(q, expected);
        assert_eq!((q[0], q[15], q[16], q[31]), (-8, 0, 0, 7));
    }

    #[test]
    fn a_positive_peak_keeps_its_sign_and_zeros_stay_zero() {
        let mut values = [0; QK];
        values[3] = 15;
        values[20] = -5;
        let (d, q) = q4_0_values(&q5_0_to_q4_0(&q5_0_block(0.5, &values)));
        // max = 7.5 → d = -0.9375: the peak lands on -8, zeros on 0.
        assert_eq!(d, -0.9375);
        assert_eq!(q[3], -8);
        assert_eq!(q[0], 0);
        assert_eq!(q[20], 3); // -2.5 / -0.9375 = 2.67 → 3
        let all_zero = q4_0_values(&q5_0_to_q4_0(&q5_0_block(0.0, &[0; QK])));
        assert_eq!(all_zero, (0.0, [0; QK]));
    }

    /// A small GGUF v3: a string, an array of strings, `general.file_type`, then three tensors.
    fn tiny_gguf() -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        let blocks = |n: usize, d: f32| -> Vec<u8> {
            (0..n)
                .flat_map(|k| {
                    q5_0_block(d, &std::array::from_fn(|j| (j as i32 + k as i32) % 31 - 15))
                })
                .collect()
        };
        let tensors: Vec<(&str, Vec<u64>, u32, Vec<u8>)> = vec![
            (
                "token_embd.weight",
                vec![32, 2],
                GGML_TYPE_Q5_0,
                blocks(2, 0.25),
            ),
            (
                "blk.0.ffn_up.weight",
                vec![64, 3],
                GGML_TYPE_Q5_0,
                blocks(6, 0.125),
            ),
            (
                "output_norm.weight",
                vec![3],
                0,
                [1.0f32, 2.0, 3.0]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
            ),
        ];
        let mut g = b"GGUF".to_vec();
        g.extend_from_slice(&3u32.to_le_bytes());
        g.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        g.extend_from_slice(&3u64.to_le_bytes());
        string(&mut g, "general.name");
        g.extend_from_slice(&GGUF_TYPE_STRING.to_le_bytes());
        string(&mut g, "tiny");
        string(&mut g, "tokenizer.ggml.tokens");
        g.extend_from_slice(&GGUF_TYPE_ARRAY.to_le_bytes());
        g.extend_from_slice(&GGUF_TYPE_STRING.to_le_bytes());
        g.extend_from_slice(&2u64.to_le_bytes());
        string(&mut g, "a");
        string(&mut g, "bc");
        string(&mut g, "general.file_type");
        g.extend_from_slice(&GGUF_TYPE_UINT32.to_le_bytes());
        g.extend_from_slice(&15u32.to_le_bytes());
        let mut offset = 0u64;
        for (name, dims, ty, data) in &tensors {
            string(&mut g, name);
            g.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            dims.iter()
                .for_each(|d| g.extend_from_slice(&d.to_le_bytes()));
            g.extend_from_slice(&ty.to_le_bytes());
            g.extend_from_slice(&offset.to_le_bytes());
            offset += pad(data.len() as u64, DEFAULT_ALIGNMENT);
        }
        g.resize(pad(g.len() as u64, DEFAULT_ALIGNMENT) as usize, 0);
        for (_, _, _, data) in &tensors {
            g.extend_from_slice(data);
            g.resize(pad(g.len() as u64, DEFAULT_ALIGNMENT) as usize, 0);
        }
        g
    }

    #[test]
    fn weight_matrices_become_q4_0_and_the_rest_is_kept() {
        let input = tiny_gguf();
        let mut out = Vec::new();
        let written = requantize(&input, &mut out).unwrap();
        assert_eq!(written, out.len() as u64);
        let before = Header::read(&input).unwrap();
        let after = Header::read(&out).unwrap();
        assert_eq!(
            after.data_start, before.data_start,
            "the header keeps its length"
        );
        let types: Vec<u32> = after.tensors.iter().map(|t| t.ggml_type).collect();
        assert_eq!(types, [GGML_TYPE_Q5_0, GGML_TYPE_Q4_0, 0]);
        let at = after.file_type_at.unwrap();
        assert_eq!(out[at..at + 4], FTYPE_MOSTLY_Q4_0.to_le_bytes());
        // Metadata before general.file_type's value is copied byte for byte.
        assert_eq!(out[..at], input[..at]);
        for (a, b) in after.tensors.iter().zip(&before.tensors) {
            assert_eq!(a.offset % DEFAULT_ALIGNMENT, 0, "{}", a.name);
            let (new, old) = (
                after.data(&out, a).unwrap(),
                before.data(&input, b).unwrap(),
            );
            if a.ggml_type == GGML_TYPE_Q4_0 {
                assert_eq!(new.len(), 6 * Q4_0_BLOCK);
                let ours: Vec<u8> = old.chunks(Q5_0_BLOCK).flat_map(q5_0_to_q4_0).collect();
                assert_eq!(new, ours.as_slice());
            } else {
                assert_eq!(new, old, "{} is copied", a.name);
            }
        }
        assert_eq!(out.len() as u64 % DEFAULT_ALIGNMENT, 0);
    }

    #[test]
    fn broken_files_are_refused_with_the_reason() {
        let input = tiny_gguf();
        let problem = |bytes: &[u8]| match requantize(bytes, &mut Vec::new()) {
            Err(RequantizeError::Input(p)) => p,
            other => panic!("expected an input problem, got {other:?}"),
        };
        assert_eq!(problem(b"GGML...."), Problem::NotGguf);
        assert!(matches!(problem(&input[..40]), Problem::Truncated { .. }));
        let cut = input.len() - 40;
        assert!(matches!(problem(&input[..cut]), Problem::BadOffset { .. }));
        let mut v4 = input.clone();
        v4[4] = 9;
        assert_eq!(problem(&v4), Problem::UnsupportedVersion(9));
        // A file with nothing to requantize is not the file the manifest means.
        let mut plain = input;
        let h = Header::read(&plain).unwrap();
        let at = h.tensors[1].type_at;
        plain[at..at + 4].copy_from_slice(&GGML_TYPE_Q4_0.to_le_bytes());
        assert_eq!(problem(&plain), Problem::NothingToRequantize);
    }
}
