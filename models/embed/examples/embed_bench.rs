//! `cargo run --release --example embed_bench -p models-embed`: embeddings per second.

use std::time::Instant;

use models_api::testing::model_file;
use models_api::Embedder;
use models_embed::MiniLm;

fn main() {
    let Some(dir) = model_file("all-MiniLM-L6-v2") else {
        return;
    };
    let started = Instant::now();
    let model = MiniLm::load(&dir).expect("load");
    println!("all-MiniLM-L6-v2 load: {:?}", started.elapsed());
    let texts: Vec<String> = (0..64)
        .map(|i| format!("Question {i}: what are your opening hours on public holidays, and can I park behind the building?"))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    model.embed(&refs[..4]).expect("warm-up");
    for batch in [1usize, 8, 32] {
        let t = Instant::now();
        let mut n = 0;
        for chunk in refs.chunks(batch) {
            n += model.embed(chunk).expect("embed").len();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "batch {batch:>2}: {:.0} embeddings/s ({:.1} ms per call)",
            n as f64 / secs,
            secs * 1000.0 / (n / batch) as f64
        );
    }
}
