//! The k nearest neighbours of every point, UMAP's first step: exact below [`EXACT_KNN_LIMIT`]
//! points, otherwise random-projection trees refined by one round of nearest-neighbour descent.

use rayon::prelude::*;

use crate::numeric::kmeans::squared_distance;
use crate::numeric::rng::Rng;

/// Points up to which the k-nearest neighbours are found exactly.
pub const EXACT_KNN_LIMIT: usize = 20_000;

/// Sorted (distance², index) lists of the k nearest other points of every point.
pub fn nearest_neighbours(data: &[f32], dim: usize, k: usize, seed: u64) -> Vec<Vec<(f32, u32)>> {
    let n = data.len() / dim.max(1);
    let k = k.min(n.saturating_sub(1)).max(1);
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    if n <= EXACT_KNN_LIMIT {
        return (0..n)
            .into_par_iter()
            .map(|i| {
                let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
                for j in 0..n {
                    if j != i {
                        insert_neighbour(&mut best, k, (squared_distance(row(i), row(j)), j as u32));
                    }
                }
                best
            })
            .collect();
    }
    // Memory order matters more than arithmetic here: the points are put in the order of one
    // random-projection tree's leaves, so a point's neighbours (and theirs) sit near it in memory,
    // and the lists are mapped back at the end.
    let order = locality_order(data, dim, k, seed);
    let permuted = permute_rows(data, dim, &order);
    let found = approximate_neighbours(&permuted, dim, k, seed);
    let mut lists = vec![Vec::new(); n];
    for (p, list) in found.into_iter().enumerate() {
        lists[order[p] as usize] = list.into_iter().map(|(d, j)| (d, order[j as usize])).collect();
    }
    lists
}

/// As [`nearest_neighbours`] for data already in [`locality_order`] (no copy, no mapping back).
pub fn nearest_neighbours_in_order(data: &[f32], dim: usize, k: usize, seed: u64) -> Vec<Vec<(f32, u32)>> {
    let n = data.len() / dim.max(1);
    if n <= EXACT_KNN_LIMIT {
        return nearest_neighbours(data, dim, k, seed);
    }
    approximate_neighbours(data, dim, k.min(n - 1).max(1), seed)
}

/// An order of the points in which near points sit near each other (the leaves of a
/// random-projection tree, left to right); the identity below [`EXACT_KNN_LIMIT`] points.
pub fn locality_order(data: &[f32], dim: usize, k: usize, seed: u64) -> Vec<u32> {
    let n = data.len() / dim.max(1);
    if n <= EXACT_KNN_LIMIT {
        return (0..n as u32).collect();
    }
    let mut leaves = Vec::new();
    split_tree(
        data,
        dim,
        (0..n as u32).collect(),
        leaf_size(k),
        &mut Rng::new(seed ^ 0x0dde),
        &mut leaves,
    );
    leaves.into_iter().flatten().collect()
}

/// The rows of `data` ([n, dim]) in `order`.
pub fn permute_rows(data: &[f32], dim: usize, order: &[u32]) -> Vec<f32> {
    order
        .iter()
        .flat_map(|&i| data[i as usize * dim..(i as usize + 1) * dim].iter().copied())
        .collect()
}

fn leaf_size(k: usize) -> usize {
    (2 * k).max(24)
}

/// Random-projection trees (leaves of ≤ `leaf` points, every pair in a leaf a candidate), then
/// one round of nearest-neighbour descent.
fn approximate_neighbours(data: &[f32], dim: usize, k: usize, seed: u64) -> Vec<Vec<(f32, u32)>> {
    let n = data.len() / dim.max(1);
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let trees = 6;
    let leaf = leaf_size(k);
    let mut lists: Vec<Vec<(f32, u32)>> = vec![Vec::with_capacity(k + 1); n];
    for t in 0..trees {
        let mut leaves = Vec::new();
        let mut rng = Rng::new(seed.wrapping_add(t as u64 * 7_777));
        split_tree(data, dim, (0..n as u32).collect(), leaf, &mut rng, &mut leaves);
        let updates: Vec<Vec<(u32, (f32, u32))>> = leaves
            .par_iter()
            .map(|members| {
                let mut out = Vec::with_capacity(members.len() * members.len());
                for (a, &i) in members.iter().enumerate() {
                    for &j in &members[a + 1..] {
                        let d = squared_distance(row(i as usize), row(j as usize));
                        out.push((i, (d, j)));
                        out.push((j, (d, i)));
                    }
                }
                out
            })
            .collect();
        for (i, candidate) in updates.into_iter().flatten() {
            insert_neighbour(&mut lists[i as usize], k, candidate);
        }
    }
    // One round of neighbour descent: neighbours of neighbours (and reverse neighbours).
    let mut reverse: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (i, list) in lists.iter().enumerate() {
        for &(_, j) in list {
            if reverse[j as usize].len() < k {
                reverse[j as usize].push(i as u32);
            }
        }
    }
    (0..n)
        .into_par_iter()
        .map(|i| {
            let mut best = lists[i].clone();
            let direct: Vec<u32> = lists[i]
                .iter()
                .map(|&(_, j)| j)
                .chain(reverse[i].iter().copied())
                .collect();
            for &j in &direct {
                for &m in lists[j as usize].iter().map(|(_, m)| m).chain(&reverse[j as usize]) {
                    if m as usize != i {
                        // insert_neighbour rejects the far ones before it looks for duplicates.
                        insert_neighbour(&mut best, k, (squared_distance(row(i), row(m as usize)), m));
                    }
                }
            }
            best
        })
        .collect()
}

fn insert_neighbour(list: &mut Vec<(f32, u32)>, k: usize, candidate: (f32, u32)) {
    if list.len() == k && candidate.0 >= list[k - 1].0 {
        return;
    }
    if list.iter().any(|&(_, j)| j == candidate.1) {
        return;
    }
    let at = list.partition_point(|&(d, _)| d <= candidate.0);
    list.insert(at, candidate);
    list.truncate(k);
}

fn split_tree(data: &[f32], dim: usize, members: Vec<u32>, leaf: usize, rng: &mut Rng, leaves: &mut Vec<Vec<u32>>) {
    if members.len() <= leaf {
        leaves.push(members);
        return;
    }
    let row = |i: u32| &data[i as usize * dim..(i as usize + 1) * dim];
    let a = members[rng.below(members.len())];
    let mut b = members[rng.below(members.len())];
    for _ in 0..8 {
        if b != a && squared_distance(row(a), row(b)) > 0.0 {
            break;
        }
        b = members[rng.below(members.len())];
    }
    let normal: Vec<f32> = row(a).iter().zip(row(b)).map(|(x, y)| x - y).collect();
    let offset: f32 = normal
        .iter()
        .zip(row(a).iter().zip(row(b)))
        .map(|(n, (x, y))| n * (x + y) / 2.0)
        .sum();
    let (mut left, mut right): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
    for &m in &members {
        let side: f32 = normal.iter().zip(row(m)).map(|(n, v)| n * v).sum::<f32>() - offset;
        if side < 0.0 || (side == 0.0 && rng.next_u64().is_multiple_of(2)) {
            left.push(m)
        } else {
            right.push(m)
        }
    }
    if left.is_empty() || right.is_empty() {
        // Duplicates: split arbitrarily.
        let mut all = members;
        let half = all.len() / 2;
        right = all.split_off(half);
        left = all;
    }
    split_tree(data, dim, left, leaf, rng, leaves);
    split_tree(data, dim, right, leaf, rng, leaves);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hetero::analysis::tests::blobs;

    #[test]
    fn approximate_neighbours_agree_with_exact_ones() {
        let (data, _) = blobs(8_000, 5, 4);
        let n = data.len() / 5;
        assert!(n > EXACT_KNN_LIMIT);
        let approx = nearest_neighbours(&data, 5, 10, 1);
        // Exact lists for a sample of points.
        let mut recall = 0usize;
        for i in (0..n).step_by(97) {
            let row = |j: usize| &data[j * 5..(j + 1) * 5];
            let mut exact: Vec<(f32, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (squared_distance(row(i), row(j)), j))
                .collect();
            exact.sort_by(|x, y| x.0.total_cmp(&y.0));
            recall += exact[..10]
                .iter()
                .filter(|(_, j)| approx[i].iter().any(|&(_, a)| a as usize == *j))
                .count();
        }
        let sampled = n.div_ceil(97) * 10;
        assert!(
            recall as f64 / sampled as f64 > 0.9,
            "recall {}",
            recall as f64 / sampled as f64
        );
    }
}
