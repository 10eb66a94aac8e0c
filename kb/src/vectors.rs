//! The vector index: exact cosine search over a flat, contiguous `f32` matrix.
//!
//! Chosen over HNSW with measurements (kb/README.md): at the sizes one business's documents reach
//! (≤ 100k chunks) a brute-force scan of 384-dim unit vectors answers within the latency budget,
//! is exact (recall 1.0, no tuning), supports deletion and filters trivially, adds no dependency,
//! and its file is the matrix itself.
//!
//! File `vectors.f32`: magic `SBKV`, `u32` version, `u32` dimension, `u64` count, then `count`
//! records of `u64` chunk id + `dimension` × `f32`, all little-endian. Written whole to a temporary
//! file and renamed, so a crash leaves the old or the new file, never half of one.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use crate::error::{io, Error, Result};

const MAGIC: &[u8; 4] = b"SBKV";
const VERSION: u32 = 1;
const HEADER: usize = 4 + 4 + 4 + 8;

/// Unit vectors keyed by chunk id.
#[derive(Debug, Clone)]
pub struct FlatIndex {
    dimension: usize,
    ids: Vec<u64>,
    /// `ids.len() * dimension` values, row-major.
    matrix: Vec<f32>,
}

impl FlatIndex {
    /// An empty index for vectors of `dimension`.
    pub fn new(dimension: usize) -> Self {
        FlatIndex {
            dimension,
            ids: Vec::new(),
            matrix: Vec::new(),
        }
    }

    /// Vector length.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the index holds no vectors.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The chunk ids held, in storage order.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// Adds `vector` for `id`. The caller guarantees ids are unique and `vector.len() == dimension`
    /// (the collection checks the embedder's dimension once at open).
    pub fn insert(&mut self, id: u64, vector: &[f32]) {
        debug_assert_eq!(vector.len(), self.dimension);
        self.ids.push(id);
        self.matrix.extend_from_slice(vector);
    }

    /// Removes every vector whose id `remove` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) {
        let dimension = self.dimension;
        let mut write = 0;
        for read in 0..self.ids.len() {
            if keep(self.ids[read]) {
                if write != read {
                    self.ids[write] = self.ids[read];
                    self.matrix
                        .copy_within(read * dimension..(read + 1) * dimension, write * dimension);
                }
                write += 1;
            }
        }
        self.ids.truncate(write);
        self.matrix.truncate(write * dimension);
    }

    /// The `k` ids most similar to `query` (dot product = cosine for unit vectors), best first,
    /// among those `filter` accepts.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        mut filter: impl FnMut(u64) -> bool,
    ) -> Vec<(u64, f32)> {
        if k == 0 || query.len() != self.dimension {
            return Vec::new();
        }
        // Min-heap of the best k so far.
        let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
        for (row, &id) in self.matrix.chunks_exact(self.dimension).zip(&self.ids) {
            let score = dot(row, query);
            if heap.len() == k && heap.peek().is_some_and(|worst| score <= worst.score) {
                continue;
            }
            if !filter(id) {
                continue;
            }
            heap.push(Scored { score, id });
            if heap.len() > k {
                heap.pop();
            }
        }
        let mut best: Vec<(u64, f32)> = heap.into_iter().map(|s| (s.id, s.score)).collect();
        best.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        best
    }

    /// Writes the index to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = Vec::with_capacity(HEADER + self.ids.len() * (8 + 4 * self.dimension));
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&(self.dimension as u32).to_le_bytes());
        bytes.extend_from_slice(&(self.ids.len() as u64).to_le_bytes());
        for (row, id) in self
            .matrix
            .chunks_exact(self.dimension.max(1))
            .zip(&self.ids)
        {
            bytes.extend_from_slice(&id.to_le_bytes());
            for x in row {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        write_atomically(path, &bytes)
    }

    /// Reads an index written by [`save`](Self::save).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        let corrupt = |reason: &str| Error::Corrupt {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if bytes.len() < HEADER || &bytes[..4] != MAGIC {
            return Err(corrupt("not a vector index"));
        }
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if u32_at(4) != VERSION {
            return Err(corrupt("unknown version"));
        }
        let dimension = u32_at(8) as usize;
        let mut count_bytes = [0u8; 8];
        count_bytes.copy_from_slice(&bytes[12..20]);
        let count = u64::from_le_bytes(count_bytes) as usize;
        let record = 8 + 4 * dimension;
        if dimension == 0
            || count
                .checked_mul(record)
                .and_then(|n| n.checked_add(HEADER))
                != Some(bytes.len())
        {
            return Err(corrupt("length does not match header"));
        }
        let mut index = FlatIndex {
            dimension,
            ids: Vec::with_capacity(count),
            matrix: Vec::with_capacity(count * dimension),
        };
        for rec in bytes[HEADER..].chunks_exact(record) {
            let mut id = [0u8; 8];
            id.copy_from_slice(&rec[..8]);
            index.ids.push(u64::from_le_bytes(id));
            index.matrix.extend(
                rec[8..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        Ok(index)
    }
}

/// Writes `bytes` to a sibling temporary file, syncs it and renames it over `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp: PathBuf = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorise without fast-math.
    let mut acc = [0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[derive(Debug, PartialEq)]
struct Scored {
    score: f32,
    id: u64,
}

impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the worst on top.
        other
            .score
            .total_cmp(&self.score)
            .then(self.id.cmp(&other.id))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_retain_roundtrip() {
        let mut index = FlatIndex::new(3);
        index.insert(1, &[1.0, 0.0, 0.0]);
        index.insert(2, &[0.0, 1.0, 0.0]);
        index.insert(3, &[0.6, 0.8, 0.0]);
        assert_eq!(
            index
                .search(&[1.0, 0.0, 0.0], 2, |_| true)
                .iter()
                .map(|h| h.0)
                .collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(
            index
                .search(&[1.0, 0.0, 0.0], 2, |id| id != 1)
                .iter()
                .map(|h| h.0)
                .collect::<Vec<_>>(),
            vec![3, 2]
        );
        index.retain(|id| id != 3);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.f32");
        index.save(&path).unwrap();
        let loaded = FlatIndex::load(&path).unwrap();
        assert_eq!(loaded.ids(), &[1, 2]);
        assert_eq!(loaded.search(&[0.0, 1.0, 0.0], 1, |_| true), vec![(2, 1.0)]);
        std::fs::write(&path, b"SBKV garbage").unwrap();
        assert!(matches!(FlatIndex::load(&path), Err(Error::Corrupt { .. })));
    }
}
