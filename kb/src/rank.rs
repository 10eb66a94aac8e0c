//! Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): `score(d) = Σ 1 / (K + rank)`
//! over the lists containing `d`. Uses ranks, not scores, so BM25's unbounded scores and cosine
//! similarities need no calibration against each other.

use std::collections::HashMap;

/// The paper's constant: damps the weight of the very top ranks.
pub const K: f32 = 60.0;

/// A fused result.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused {
    /// The item.
    pub id: u64,
    /// Σ 1/(K + rank).
    pub score: f32,
    /// 1-based rank in each input list, `None` where absent.
    pub ranks: Vec<Option<usize>>,
}

/// Fuses ranked lists (best first) into one, best first; ties broken by id for determinism.
pub fn reciprocal_rank_fusion(lists: &[&[u64]]) -> Vec<Fused> {
    let mut by_id: HashMap<u64, Fused> = HashMap::new();
    for (list_index, list) in lists.iter().enumerate() {
        for (i, &id) in list.iter().enumerate() {
            let entry = by_id.entry(id).or_insert_with(|| Fused {
                id,
                score: 0.0,
                ranks: vec![None; lists.len()],
            });
            if entry.ranks[list_index].is_none() {
                entry.ranks[list_index] = Some(i + 1);
                entry.score += 1.0 / (K + (i + 1) as f32);
            }
        }
    }
    let mut fused: Vec<Fused> = by_id.into_values().collect();
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_beats_a_single_first_place() {
        let fused = reciprocal_rank_fusion(&[&[1, 2, 3], &[2, 3, 4]]);
        let order: Vec<u64> = fused.iter().map(|f| f.id).collect();
        assert_eq!(order, vec![2, 3, 1, 4]);
        assert_eq!(fused[0].ranks, vec![Some(2), Some(1)]);
    }
}
