//! The collection's bookkeeping with a deterministic bag-of-words embedder, so CI without the
//! model bundle still covers ingest, re-ingest, update, removal, restart and crash repair.

mod support;

use std::sync::Arc;

use kb::{Collection, SearchOptions};
use models_api::{Embedder, Embedding};
use support::{acme_copy, acme_dir};

/// Hashes lower-cased words into 64 buckets: crude, but deterministic and model-free.
struct HashingEmbedder;

impl Embedder for HashingEmbedder {
    type Error = std::convert::Infallible;
    fn dimension(&self) -> usize {
        64
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>, Self::Error> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; 64];
                for word in t
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                {
                    let h = word
                        .to_lowercase()
                        .bytes()
                        .fold(5381u32, |h, b| h.wrapping_mul(33) ^ u32::from(b));
                    v[(h % 64) as usize] += 1.0;
                }
                Embedding::normalized(v)
            })
            .collect())
    }
}

#[test]
fn bookkeeping_survives_reingest_update_remove_and_restart() {
    let data = tempfile::tempdir().unwrap();
    let (_tmp, docs) = acme_copy();
    let embedder = Arc::new(HashingEmbedder);
    let mut kb = Collection::open(data.path(), "acme", embedder.clone()).unwrap();
    let first = kb.ingest(&[&docs], &mut |_| {}).unwrap();
    assert_eq!((first.added.len(), first.failed.len()), (5, 0));
    let total = kb.chunk_count();
    assert_eq!(first.chunks_added, total);

    let again = kb.ingest(&[&docs], &mut |_| {}).unwrap();
    assert_eq!(
        (again.unchanged.len(), again.chunks_added, kb.chunk_count()),
        (5, 0, total)
    );

    std::fs::write(
        docs.join("faq.csv"),
        "question,answer\nDo you open on Sundays?,No.\n",
    )
    .unwrap();
    let changed = kb.ingest(&[&docs], &mut |_| {}).unwrap();
    assert_eq!(
        (
            changed.updated.as_slice(),
            changed.chunks_removed,
            changed.chunks_added
        ),
        (&["faq.csv".to_string()][..], 8, 1)
    );
    assert_eq!(kb.chunk_count(), total - 7);

    kb.remove("prices.html").unwrap();
    let left = kb.chunk_count();
    let hits = kb
        .search_with(
            "whitening price",
            &SearchOptions {
                k: 50,
                source: None,
            },
        )
        .unwrap();
    assert!(hits.iter().all(|h| h.chunk.source != "prices.html"));
    drop(kb);

    let kb = Collection::open(data.path(), "acme", embedder.clone()).unwrap();
    assert_eq!(kb.chunk_count(), left);
    assert_eq!(kb.documents().count(), 4);
    let sunday = kb.search("Sundays", 1, 500).unwrap();
    assert_eq!(sunday[0].source, "faq.csv");
    let dir = kb.dir().to_owned();
    drop(kb);

    // Torn write: chunk store lost; the reopen rebuilds from the stored documents.
    std::fs::remove_file(dir.join("chunks.jsonl")).unwrap();
    let kb = Collection::open(data.path(), "acme", embedder.clone()).unwrap();
    assert_eq!(kb.chunk_count(), left);

    // Another embedding dimension is refused until rebuilt.
    struct Wider;
    impl Embedder for Wider {
        type Error = std::convert::Infallible;
        fn dimension(&self) -> usize {
            8
        }
        fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>, Self::Error> {
            Ok(texts
                .iter()
                .map(|_| Embedding::normalized(vec![1.0; 8]))
                .collect())
        }
    }
    drop(kb);
    assert!(matches!(
        Collection::open(data.path(), "acme", Arc::new(Wider)),
        Err(kb::Error::DimensionMismatch {
            stored: 64,
            embedder: 8,
            ..
        })
    ));
    let (rebuilt, report) =
        Collection::open_rebuilding(&dir, Arc::new(Wider), &mut |_| {}).unwrap();
    assert_eq!((rebuilt.chunk_count(), report.failed.len()), (left, 0));
}

#[test]
fn agent_names_are_checked() {
    let data = tempfile::tempdir().unwrap();
    for bad in ["", "../x", "a/b", ".hidden"] {
        assert!(
            matches!(
                Collection::open(data.path(), bad, Arc::new(HashingEmbedder)),
                Err(kb::Error::InvalidName { .. })
            ),
            "{bad}"
        );
    }
    assert!(kb::agents(data.path()).unwrap().is_empty());
    let _ = acme_dir();
}
