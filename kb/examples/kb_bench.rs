//! `cargo run --release --example kb_bench -p kb`: ingest rate with the real embedder, index size on
//! disk, hybrid query latency at ~1k and 100k chunks, peak RSS, and the vector-index comparison
//! (exact flat scan vs HNSW from `instant-distance`) on random 384-dim unit vectors.
//!
//! The 100k collection uses a deterministic fake embedder (hash-seeded random unit vectors) and
//! synthetic text: embedding 100k real chunks would take an hour on two cores, and the index
//! timings do not depend on where the vectors came from.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kb::vectors::FlatIndex;
use kb::{Collection, SearchOptions};
use models_api::{Embedder, Embedding};

const DIM: usize = 384;

fn main() {
    // KB_BENCH_COMPARE_ONLY=1 runs only the vector-index comparison; KB_BENCH_HNSW_SIZES=1000,100000
    // picks the sizes HNSW is built at (the flat index always runs 1k, 10k, 100k).
    let hnsw_sizes: Vec<usize> = std::env::var("KB_BENCH_HNSW_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000]); // HNSW at 100k did not finish building in 11.5 min on 2 cores
    if std::env::var_os("KB_BENCH_COMPARE_ONLY").is_some() {
        return compare_vector_indexes(&hnsw_sizes);
    }
    let Some(model_dir) = models_api::testing::model_file("all-MiniLM-L6-v2") else {
        return;
    };
    let embedder = Arc::new(models_embed::MiniLm::load(&model_dir).expect("load all-MiniLM-L6-v2"));
    let work = tempfile::tempdir().expect("tempdir");

    // ~1k chunks of real text with the real embedder.
    let docs = work.path().join("docs");
    let copies = std::env::var("KB_BENCH_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(34);
    write_acme_copies(&docs, copies);
    let mut kb = Collection::open(work.path(), "real", embedder.clone()).expect("open");
    let started = Instant::now();
    let report = kb.ingest(&[docs], &mut |_| {}).expect("ingest");
    let took = started.elapsed();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    println!(
        "ingest (real embedder): {} files, {} chunks in {:.1} s = {:.1} chunks/s",
        report.added.len(),
        report.chunks_added,
        took.as_secs_f64(),
        report.chunks_added as f64 / took.as_secs_f64()
    );
    println!(
        "index size on disk at {} chunks: {}",
        kb.chunk_count(),
        human(dir_size(kb.dir()))
    );
    let questions = [
        "What time do you close on Friday?",
        "Where can I park?",
        "How much is whitening?",
        "Do you take Delta Dental?",
        "cancel appointment fee",
    ];
    let hybrid = time_queries(60, |i| {
        kb.search_with(
            questions[i % questions.len()],
            &SearchOptions { k: 5, source: None },
        )
        .expect("search");
    });
    let embed_only = time_queries(60, |i| {
        embedder
            .embed(&[questions[i % questions.len()]])
            .expect("embed");
    });
    println!(
        "hybrid query at {} chunks (real embedder): {}   of which query embedding: {}",
        kb.chunk_count(),
        hybrid,
        embed_only
    );
    println!("peak RSS so far: {}", human(peak_rss()));
    drop(kb);

    // 100k chunks with a fake embedder: index-side latency only.
    let n: usize = std::env::var("KB_BENCH_CHUNKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let synthetic = work.path().join("synthetic");
    let files = write_synthetic(&synthetic, n);
    let fake = Arc::new(FakeEmbedder);
    let mut big = Collection::open(work.path(), "synthetic", fake).expect("open");
    let started = Instant::now();
    let report = big.ingest(&files, &mut |_| {}).expect("ingest");
    println!(
        "ingest (fake embedder, indexing only): {} chunks in {:.1} s = {:.0} chunks/s",
        report.chunks_added,
        started.elapsed().as_secs_f64(),
        report.chunks_added as f64 / started.elapsed().as_secs_f64()
    );
    println!(
        "index size on disk at {} chunks: {}",
        big.chunk_count(),
        human(dir_size(big.dir()))
    );
    let words = [
        "cleaning price",
        "parking garage",
        "insurance claim",
        "cancel fee",
        "opening hours saturday",
    ];
    let hybrid = time_queries(100, |i| {
        big.search_with(
            words[i % words.len()],
            &SearchOptions { k: 5, source: None },
        )
        .expect("search");
    });
    println!(
        "hybrid query at {} chunks (without query embedding): {}",
        big.chunk_count(),
        hybrid
    );
    let started = Instant::now();
    drop(big);
    let reopened =
        Collection::open(work.path(), "synthetic", Arc::new(FakeEmbedder)).expect("reopen");
    println!(
        "reopen at {} chunks: {:.2} s",
        reopened.chunk_count(),
        started.elapsed().as_secs_f64()
    );
    drop(reopened);
    println!("peak RSS: {}", human(peak_rss()));

    compare_vector_indexes(&hnsw_sizes);
}

/// Exact flat scan vs HNSW on random unit vectors.
fn compare_vector_indexes(hnsw_sizes: &[usize]) {
    println!("\nvector index comparison, {DIM}-dim random unit vectors, k = 10:");
    for n in [1_000usize, 10_000, 100_000] {
        let mut rng = SplitMix(n as u64);
        let points: Vec<Vec<f32>> = (0..n).map(|_| rng.unit_vector()).collect();
        let queries: Vec<Vec<f32>> = (0..200).map(|_| rng.unit_vector()).collect();

        let started = Instant::now();
        let mut flat = FlatIndex::new(DIM);
        for (i, p) in points.iter().enumerate() {
            flat.insert(i as u64, p);
        }
        let flat_build = started.elapsed();
        let exact: Vec<Vec<u64>> = queries
            .iter()
            .map(|q| flat.search(q, 10, |_| true).iter().map(|h| h.0).collect())
            .collect();
        let flat_times = time_queries(queries.len(), |i| {
            flat.search(&queries[i], 10, |_| true);
        });
        println!(
            "  n={n:>6} flat:  build {:>8.2?}  query {}  memory {}  recall@10 1.000",
            flat_build,
            flat_times,
            human((n * (DIM * 4 + 8)) as u64)
        );
        drop(flat);
        if !hnsw_sizes.contains(&n) {
            continue;
        }

        let rss_before = current_rss();
        let started = Instant::now();
        let hnsw_points: Vec<Point> = points.iter().map(|p| Point(p.clone())).collect();
        let values: Vec<usize> = (0..n).collect();
        let map = instant_distance::Builder::default()
            .seed(7)
            .build(hnsw_points, values);
        let hnsw_build = started.elapsed();
        let rss_after = current_rss();
        let mut found = 0usize;
        for (q, truth) in queries.iter().zip(&exact) {
            let mut search = instant_distance::Search::default();
            let got: Vec<u64> = map
                .search(&Point(q.clone()), &mut search)
                .take(10)
                .map(|item| *item.value as u64)
                .collect();
            found += got.iter().filter(|id| truth.contains(id)).count();
        }
        let hnsw_times = time_queries(queries.len(), |i| {
            let mut search = instant_distance::Search::default();
            let _ = map
                .search(&Point(queries[i].clone()), &mut search)
                .take(10)
                .count();
        });
        println!(
            "  n={n:>6} hnsw:  build {:>8.2?}  query {}  memory ~{} (RSS delta)  recall@10 {:.3}",
            hnsw_build,
            hnsw_times,
            human(rss_after.saturating_sub(rss_before)),
            found as f64 / (10 * queries.len()) as f64
        );
    }
}

#[derive(Clone)]
struct Point(Vec<f32>);

impl instant_distance::Point for Point {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum::<f32>()
    }
}

/// Deterministic stand-in: a text's vector is a random unit vector seeded by its hash.
struct FakeEmbedder;

impl Embedder for FakeEmbedder {
    type Error = std::convert::Infallible;
    fn dimension(&self) -> usize {
        DIM
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>, Self::Error> {
        Ok(texts
            .iter()
            .map(|t| {
                let seed = t.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
                Embedding(SplitMix(seed).unit_vector())
            })
            .collect())
    }
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit_vector(&mut self) -> Vec<f32> {
        let v: Vec<f32> = (0..DIM)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect();
        Embedding::normalized(v).0
    }
}

struct Latency {
    p50: Duration,
    p95: Duration,
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p50 {:>9.3?} p95 {:>9.3?}", self.p50, self.p95)
    }
}

fn time_queries(n: usize, mut run: impl FnMut(usize)) -> Latency {
    run(0); // warm-up
    let mut times: Vec<Duration> = (0..n)
        .map(|i| {
            let t = Instant::now();
            run(i);
            t.elapsed()
        })
        .collect();
    times.sort();
    Latency {
        p50: times[n / 2],
        p95: times[(n * 95 / 100).min(n - 1)],
    }
}

fn write_acme_copies(dir: &Path, copies: usize) {
    let acme = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/acme");
    for i in 0..copies {
        let sub = dir.join(format!("branch-{i:03}"));
        std::fs::create_dir_all(&sub).expect("mkdir");
        for entry in std::fs::read_dir(&acme).expect("acme") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            let name = path.file_name().expect("name");
            // Vary the text so every copy is its own document with its own vectors.
            let bytes = if path.extension().is_some_and(|e| e == "pdf") {
                bytes
            } else {
                String::from_utf8(bytes)
                    .expect("utf8")
                    .replace("Springfield", &format!("Springfield {i}"))
                    .into_bytes()
            };
            std::fs::write(sub.join(name), bytes).expect("write");
        }
    }
}

/// `n` FAQ rows of synthetic text in CSV files of 1000 rows (one chunk per row).
fn write_synthetic(dir: &Path, n: usize) -> Vec<PathBuf> {
    const VOCAB: &[&str] = &[
        "appointment",
        "cleaning",
        "price",
        "insurance",
        "parking",
        "garage",
        "saturday",
        "opening",
        "hours",
        "cancel",
        "fee",
        "crown",
        "filling",
        "whitening",
        "xray",
        "dentist",
        "hygienist",
        "emergency",
        "pain",
        "child",
        "claim",
        "payment",
        "plan",
        "card",
        "cash",
        "reception",
        "phone",
        "email",
        "street",
        "bus",
        "floor",
        "lift",
        "records",
    ];
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut rng = SplitMix(42);
    let mut files = Vec::new();
    let mut row = 0;
    while row < n {
        let path = dir.join(format!("faq-{:04}.csv", files.len()));
        let mut csv = String::from("question,answer\n");
        for _ in 0..1000.min(n - row) {
            let mut words = |count: usize| {
                (0..count)
                    .map(|_| VOCAB[(rng.next() % VOCAB.len() as u64) as usize])
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            csv.push_str(&format!(
                "question {row} {}?,{} {row}.\n",
                words(8),
                words(40)
            ));
            row += 1;
        }
        std::fs::write(&path, csv).expect("write");
        files.push(path);
    }
    files
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        dir_size(&path)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn peak_rss() -> u64 {
    status_kib("VmHWM:")
}

fn current_rss() -> u64 {
    status_kib("VmRSS:")
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
