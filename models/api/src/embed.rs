//! Sentence embeddings for retrieval.

/// A loaded sentence-embedding model.
///
/// Threading: `Send + Sync`; calls block. Batches are processed as given: pass several texts at
/// once for throughput (ingestion), one for latency (a query).
pub trait Embedder: Send + Sync {
    /// The engine's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Length of every embedding.
    fn dimension(&self) -> usize;

    /// One L2-normalised embedding per text, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>, Self::Error>;
}

/// An L2-normalised embedding vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(pub Vec<f32>);

impl Embedding {
    /// Normalises `v` to unit length (a zero vector stays zero).
    pub fn normalized(mut v: Vec<f32>) -> Self {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        Embedding(v)
    }

    /// Cosine similarity with another normalised embedding.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        cosine(&self.0, &other.0)
    }
}

/// Dot product; the cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_has_unit_length() {
        let e = Embedding::normalized(vec![3.0, 4.0]);
        assert!((e.cosine(&e) - 1.0).abs() < 1e-6);
        assert_eq!(Embedding::normalized(vec![0.0, 0.0]).0, vec![0.0, 0.0]);
    }
}
