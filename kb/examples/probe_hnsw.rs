//! Binary-size probe (see kb/README.md): the same as `probe_flat` with an `instant-distance` HNSW.

#[derive(Clone)]
struct Point(Vec<f32>);

impl instant_distance::Point for Point {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum::<f32>()
    }
}

fn main() {
    let dim = 384;
    let points: Vec<Point> = (0..1000usize)
        .map(|i| Point((0..dim).map(|j| ((i * 31 + j) % 17) as f32).collect()))
        .collect();
    let values: Vec<u64> = (0..1000).collect();
    let map = instant_distance::Builder::default().build(points, values);
    let mut search = instant_distance::Search::default();
    let best: Vec<u64> = map
        .search(&Point(vec![1.0; dim]), &mut search)
        .take(3)
        .map(|item| *item.value)
        .collect();
    println!("{best:?}");
}
