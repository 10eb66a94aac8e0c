//! Binary-size probe (see kb/README.md): the flat index alone. Compare with `probe_hnsw`.

use kb::vectors::FlatIndex;

fn main() {
    let dim = 384;
    let mut index = FlatIndex::new(dim);
    for i in 0..1000u64 {
        let v: Vec<f32> = (0..dim)
            .map(|j| ((i as usize * 31 + j) % 17) as f32)
            .collect();
        index.insert(i, &v);
    }
    let query = vec![1.0; dim];
    println!("{:?}", index.search(&query, 3, |_| true));
}
