//! Analysis of latent spaces: PCA, UMAP (to 2D for display, more dimensions for clustering),
//! k-means and a Gaussian mixture by EM, and the measures SCIENCE.md §5 names for them (ARI, AMI,
//! Spearman). Data are row-major `[n, dim]` f32 slices.
//!
//! UMAP follows McInnes, Healy & Melville (2018): a k-nearest-neighbour graph (exact below
//! [`EXACT_KNN_LIMIT`] points, otherwise random-projection trees refined by one round of
//! nearest-neighbour descent), the fuzzy simplicial set (ρ, σ per point, symmetrised by the
//! probabilistic union), and the layout optimised by stochastic gradient descent with negative
//! sampling, started from the PCA projection. Updates run in parallel without locks, as the
//! reference implementation does.

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

use crate::particle_sim::Rng;

/// Principal components: the projection of every point on the first `components` axes, the
/// variance along each, and the axes (unit vectors, `[components, dim]`).
#[derive(Clone, Debug)]
pub struct Pca {
    pub mean: Vec<f64>,
    pub axes: Vec<Vec<f64>>,
    pub variances: Vec<f64>,
    pub projections: Vec<f32>,
    pub components: usize,
}

pub fn pca(data: &[f32], dim: usize, components: usize) -> Pca {
    let n = data.len() / dim.max(1);
    let components = components.min(dim);
    let mut mean = vec![0f64; dim];
    for row in data.chunks_exact(dim) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let covariance = data
        .par_chunks_exact(dim)
        .fold(
            || vec![0f64; dim * dim],
            |mut acc, row| {
                for i in 0..dim {
                    let a = f64::from(row[i]) - mean[i];
                    for j in i..dim {
                        acc[i * dim + j] += a * (f64::from(row[j]) - mean[j]);
                    }
                }
                acc
            },
        )
        .reduce(
            || vec![0f64; dim * dim],
            |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
        );
    let mut full = vec![0f64; dim * dim];
    for i in 0..dim {
        for j in i..dim {
            let v = covariance[i * dim + j] / (n.max(2) - 1) as f64;
            full[i * dim + j] = v;
            full[j * dim + i] = v;
        }
    }
    let (values, vectors) = crate::enm::symmetric_eigen(full, dim);
    let axes: Vec<Vec<f64>> = vectors
        .into_iter()
        .rev()
        .take(components)
        .map(|mut axis| {
            // A sign convention so runs agree: the largest component positive.
            let largest = axis
                .iter()
                .copied()
                .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
            if largest < 0.0 {
                axis.iter_mut().for_each(|v| *v = -*v);
            }
            axis
        })
        .collect();
    let variances = values.into_iter().rev().take(components).collect();
    let projections = data
        .par_chunks_exact(dim)
        .flat_map_iter(|row| {
            axes.iter()
                .map(|axis| {
                    axis.iter()
                        .zip(row)
                        .zip(&mean)
                        .map(|((a, &v), m)| a * (f64::from(v) - m))
                        .sum::<f64>() as f32
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Pca {
        mean,
        axes,
        variances,
        projections,
        components,
    }
}

impl Pca {
    /// The point at `coordinates` along the axes, back in the original space.
    pub fn point(&self, coordinates: &[f64]) -> Vec<f32> {
        let mut out = self.mean.clone();
        for (axis, c) in self.axes.iter().zip(coordinates) {
            for (o, a) in out.iter_mut().zip(axis) {
                *o += a * c;
            }
        }
        out.into_iter().map(|v| v as f32).collect()
    }
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means (k-means++ seeding, Lloyd iterations), the best of `restarts` by inertia.
/// Returns (labels, centres [k, dim]).
pub fn kmeans(data: &[f32], dim: usize, k: usize, seed: u64, restarts: usize) -> (Vec<usize>, Vec<f32>) {
    let n = data.len() / dim.max(1);
    let k = k.clamp(1, n.max(1));
    let mut best: Option<(f64, Vec<usize>, Vec<f32>)> = None;
    for restart in 0..restarts.max(1) {
        let mut rng = Rng::new(seed.wrapping_add(restart as u64 * 104_729));
        let row = |i: usize| &data[i * dim..(i + 1) * dim];
        let mut centres: Vec<f32> = row((rng.next_u64() % n as u64) as usize).to_vec();
        let mut nearest: Vec<f32> = (0..n)
            .into_par_iter()
            .map(|i| squared_distance(row(i), &centres[..dim]))
            .collect();
        while centres.len() < k * dim {
            let total: f64 = nearest.iter().map(|&d| f64::from(d)).sum();
            let mut target = rng.uniform() * total;
            let mut pick = n - 1;
            for (i, &d) in nearest.iter().enumerate() {
                target -= f64::from(d);
                if target <= 0.0 {
                    pick = i;
                    break;
                }
            }
            let c = row(pick).to_vec();
            nearest
                .par_iter_mut()
                .enumerate()
                .for_each(|(i, d)| *d = d.min(squared_distance(row(i), &c)));
            centres.extend(c);
        }
        let mut labels = vec![0usize; n];
        for _ in 0..300 {
            let assigned: Vec<usize> = (0..n)
                .into_par_iter()
                .map(|i| {
                    (0..k)
                        .min_by(|&a, &b| {
                            squared_distance(row(i), &centres[a * dim..(a + 1) * dim])
                                .total_cmp(&squared_distance(row(i), &centres[b * dim..(b + 1) * dim]))
                        })
                        .unwrap_or(0)
                })
                .collect();
            let changed = assigned != labels;
            labels = assigned;
            let mut sums = vec![0f64; k * dim];
            let mut counts = vec![0usize; k];
            for (i, &l) in labels.iter().enumerate() {
                counts[l] += 1;
                for (s, &v) in sums[l * dim..(l + 1) * dim].iter_mut().zip(row(i)) {
                    *s += f64::from(v);
                }
            }
            for c in 0..k {
                if counts[c] > 0 {
                    for j in 0..dim {
                        centres[c * dim + j] = (sums[c * dim + j] / counts[c] as f64) as f32;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let inertia: f64 = (0..n)
            .map(|i| {
                f64::from(squared_distance(
                    row(i),
                    &centres[labels[i] * dim..(labels[i] + 1) * dim],
                ))
            })
            .sum();
        if best.as_ref().is_none_or(|b| inertia < b.0) {
            best = Some((inertia, labels, centres));
        }
    }
    best.map(|(_, l, c)| (l, c)).unwrap_or_default()
}

/// A Gaussian mixture with full covariances.
#[derive(Clone, Debug)]
pub struct Gmm {
    pub weights: Vec<f64>,
    /// [k, dim]
    pub means: Vec<f64>,
    /// Each component's covariance, dim × dim row-major.
    pub covariances: Vec<Vec<f64>>,
    pub labels: Vec<usize>,
    pub log_likelihood: f64,
    pub iterations: usize,
}

fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Fits a k-component GMM by EM, started from k-means; responsibilities in log space
/// (log-sum-exp), sklearn's regularisation of 1e-6 on the covariance diagonals.
pub fn gmm(data: &[f32], dim: usize, k: usize, seed: u64) -> Gmm {
    let n = data.len() / dim.max(1);
    let (init, _) = kmeans(data, dim, k, seed, 3);
    let k = init.iter().copied().max().map_or(1, |m| m + 1);
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    // Responsibilities start hard, from k-means.
    let mut resp: Vec<f64> = (0..n * k)
        .map(|idx| if init[idx / k] == idx % k { 1.0 } else { 0.0 })
        .collect();
    let mut gmm = Gmm {
        weights: vec![1.0 / k as f64; k],
        means: vec![0.0; k * dim],
        covariances: vec![vec![0.0; dim * dim]; k],
        labels: init,
        log_likelihood: f64::NEG_INFINITY,
        iterations: 0,
    };
    let mut previous = f64::NEG_INFINITY;
    for iteration in 0..300 {
        // M step.
        for c in 0..k {
            let total: f64 = (0..n).map(|i| resp[i * k + c]).sum::<f64>() + 10.0 * f64::EPSILON;
            gmm.weights[c] = total / n as f64;
            let mut mean = vec![0f64; dim];
            for i in 0..n {
                let r = resp[i * k + c];
                for (m, &v) in mean.iter_mut().zip(row(i)) {
                    *m += r * f64::from(v);
                }
            }
            mean.iter_mut().for_each(|m| *m /= total);
            let cov = (0..n)
                .into_par_iter()
                .fold(
                    || vec![0f64; dim * dim],
                    |mut acc, i| {
                        let r = resp[i * k + c];
                        if r > 1e-12 {
                            let x = row(i);
                            for a in 0..dim {
                                let da = f64::from(x[a]) - mean[a];
                                for b in a..dim {
                                    acc[a * dim + b] += r * da * (f64::from(x[b]) - mean[b]);
                                }
                            }
                        }
                        acc
                    },
                )
                .reduce(
                    || vec![0f64; dim * dim],
                    |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
                );
            let mut full = vec![0f64; dim * dim];
            for a in 0..dim {
                for b in a..dim {
                    let v = cov[a * dim + b] / total;
                    full[a * dim + b] = v;
                    full[b * dim + a] = v;
                }
                full[a * dim + a] += 1e-6;
            }
            gmm.means[c * dim..(c + 1) * dim].copy_from_slice(&mean);
            gmm.covariances[c] = full;
        }
        // E step: log N(x | μ, Σ) through the Cholesky factor.
        let factors: Vec<(nalgebra::DMatrix<f64>, f64)> = gmm
            .covariances
            .iter()
            .map(|cov| {
                let m = nalgebra::DMatrix::from_row_slice(dim, dim, cov);
                let l = nalgebra::Cholesky::new(m.clone())
                    .or_else(|| nalgebra::Cholesky::new(m + nalgebra::DMatrix::identity(dim, dim) * 1e-3))
                    .map(|c| c.l())
                    .unwrap_or_else(|| nalgebra::DMatrix::identity(dim, dim));
                let log_det = 2.0 * (0..dim).map(|i| l[(i, i)].ln()).sum::<f64>();
                (l, log_det)
            })
            .collect();
        let constant = dim as f64 * (std::f64::consts::TAU).ln();
        let rows: Vec<(Vec<f64>, f64)> = (0..n)
            .into_par_iter()
            .map(|i| {
                let x = row(i);
                let logp: Vec<f64> = (0..k)
                    .map(|c| {
                        let diff = nalgebra::DVector::from_iterator(
                            dim,
                            (0..dim).map(|a| f64::from(x[a]) - gmm.means[c * dim + a]),
                        );
                        let solved = factors[c].0.solve_lower_triangular(&diff).unwrap_or(diff);
                        gmm.weights[c].max(1e-300).ln() - 0.5 * (constant + factors[c].1 + solved.norm_squared())
                    })
                    .collect();
                let total = log_sum_exp(&logp);
                (logp.into_iter().map(|l| (l - total).exp()).collect(), total)
            })
            .collect();
        let mut log_likelihood = 0.0;
        for (i, (r, total)) in rows.into_iter().enumerate() {
            resp[i * k..(i + 1) * k].copy_from_slice(&r);
            log_likelihood += total;
        }
        log_likelihood /= n as f64;
        gmm.log_likelihood = log_likelihood;
        gmm.iterations = iteration + 1;
        if (log_likelihood - previous).abs() < 1e-6 {
            break;
        }
        previous = log_likelihood;
    }
    gmm.labels = (0..n)
        .map(|i| {
            (0..k)
                .max_by(|&a, &b| resp[i * k + a].total_cmp(&resp[i * k + b]))
                .unwrap_or(0)
        })
        .collect();
    gmm
}

/// UMAP parameters (umap-learn's defaults).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UmapOptions {
    pub neighbours: usize,
    pub components: usize,
    pub min_dist: f64,
    pub spread: f64,
    /// None: 500 below 10,000 points, else 200.
    pub epochs: Option<usize>,
    pub negative_samples: usize,
    pub seed: u64,
}

impl Default for UmapOptions {
    fn default() -> Self {
        Self {
            neighbours: 15,
            components: 2,
            min_dist: 0.1,
            spread: 1.0,
            epochs: None,
            negative_samples: 5,
            seed: 42,
        }
    }
}

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
    // Random-projection trees: leaves of ≤ 2k points, every pair in a leaf a candidate.
    let trees = 6;
    let leaf = (2 * k).max(24);
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
                    if m as usize != i && !best.iter().any(|&(_, b)| b == m) {
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
    let a = members[(rng.next_u64() % members.len() as u64) as usize];
    let mut b = members[(rng.next_u64() % members.len() as u64) as usize];
    for _ in 0..8 {
        if b != a && squared_distance(row(a), row(b)) > 0.0 {
            break;
        }
        b = members[(rng.next_u64() % members.len() as u64) as usize];
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

/// The curve 1 / (1 + a·d^(2b)) closest (least squares) to UMAP's target for `min_dist` and
/// `spread`; (1.577, 0.895) for the defaults.
pub fn curve_parameters(min_dist: f64, spread: f64) -> (f64, f64) {
    let xs: Vec<f64> = (1..300).map(|i| i as f64 * spread * 3.0 / 300.0).collect();
    let target = |x: f64| {
        if x < min_dist {
            1.0
        } else {
            (-(x - min_dist) / spread).exp()
        }
    };
    let error = |a: f64, b: f64| {
        xs.iter()
            .map(|&x| (1.0 / (1.0 + a * x.powf(2.0 * b)) - target(x)).powi(2))
            .sum::<f64>()
    };
    let (mut a, mut b, mut step_a, mut step_b) = (1.5, 0.9, 0.5, 0.2);
    let mut best = error(a, b);
    for _ in 0..200 {
        let mut improved = false;
        for (da, db) in [(step_a, 0.0), (-step_a, 0.0), (0.0, step_b), (0.0, -step_b)] {
            let (na, nb) = (a + da, b + db);
            if na > 0.0 && nb > 0.0 {
                let e = error(na, nb);
                if e < best {
                    (a, b, best, improved) = (na, nb, e, true);
                }
            }
        }
        if !improved {
            step_a /= 2.0;
            step_b /= 2.0;
        }
    }
    (a, b)
}

/// The UMAP embedding of `data` ([n, dim]) in `options.components` dimensions, [n, components].
pub fn umap(data: &[f32], dim: usize, options: &UmapOptions, progress: &dyn Fn(&str)) -> Vec<f32> {
    let n = data.len() / dim.max(1);
    let out_dim = options.components.max(1);
    if n < 3 {
        return vec![0.0; n * out_dim];
    }
    progress("nearest neighbours");
    let knn = nearest_neighbours(data, dim, options.neighbours, options.seed);
    progress("fuzzy graph");
    // ρ and σ per point; distances (not squared) from here on.
    let target = (knn[0].len() as f64).log2();
    let memberships: Vec<Vec<(u32, f32)>> = knn
        .par_iter()
        .map(|list| {
            let d: Vec<f64> = list.iter().map(|&(d2, _)| f64::from(d2).sqrt()).collect();
            let rho = d.iter().copied().find(|&v| v > 0.0).unwrap_or(0.0);
            let (mut lo, mut hi, mut sigma) = (0.0, f64::INFINITY, 1.0);
            for _ in 0..64 {
                let sum: f64 = d.iter().map(|&v| (-(v - rho).max(0.0) / sigma).exp()).sum();
                if (sum - target).abs() < 1e-5 {
                    break;
                }
                if sum > target {
                    hi = sigma;
                    sigma = (lo + hi) / 2.0;
                } else {
                    lo = sigma;
                    sigma = if hi.is_finite() { (lo + hi) / 2.0 } else { sigma * 2.0 };
                }
            }
            let mean = d.iter().sum::<f64>() / d.len().max(1) as f64;
            let sigma = sigma.max(1e-3 * mean).max(1e-12);
            list.iter()
                .zip(&d)
                .map(|(&(_, j), &v)| (j, (-(v - rho).max(0.0) / sigma).exp() as f32))
                .collect()
        })
        .collect();
    // Probabilistic union: w = a + b − ab over (i, j) and (j, i).
    let mut edges: Vec<(u32, u32, f32)> = Vec::with_capacity(n * options.neighbours);
    for (i, list) in memberships.iter().enumerate() {
        for &(j, w) in list {
            let (a, b) = if (i as u32) < j { (i as u32, j) } else { (j, i as u32) };
            edges.push((a, b, w));
        }
    }
    edges.par_sort_unstable_by_key(|e| (e.0, e.1));
    let mut merged: Vec<(u32, u32, f32)> = Vec::with_capacity(edges.len());
    for e in edges {
        match merged.last_mut() {
            Some(last) if last.0 == e.0 && last.1 == e.1 => last.2 = last.2 + e.2 - last.2 * e.2,
            _ => merged.push(e),
        }
    }
    let epochs = options.epochs.unwrap_or(if n <= 10_000 { 500 } else { 200 });
    let max_w = merged.iter().map(|e| e.2).fold(0.0f32, f32::max);
    merged.retain(|e| e.2 >= max_w / epochs as f32);
    // Start: the PCA projection scaled to ±10, plus a little noise.
    progress("layout");
    let start = pca(data, dim, out_dim.min(dim));
    let mut init = vec![0f32; n * out_dim];
    let scale = start.projections.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    let mut rng = Rng::new(options.seed);
    for i in 0..n {
        for c in 0..out_dim {
            let v = if c < start.components {
                start.projections[i * start.components + c] / scale * 10.0
            } else {
                0.0
            };
            init[i * out_dim + c] = v + (rng.normal() * 1e-4) as f32;
        }
    }
    let embedding: Vec<AtomicU32> = init.iter().map(|v| AtomicU32::new(v.to_bits())).collect();
    let (a, b) = curve_parameters(options.min_dist, options.spread);
    let (a, b) = (a as f32, b as f32);
    let period: Vec<f32> = merged.iter().map(|e| max_w / e.2).collect();
    let negative_period: Vec<f32> = period
        .iter()
        .map(|p| p / options.negative_samples.max(1) as f32)
        .collect();
    let mut next: Vec<f32> = period.clone();
    let mut next_negative: Vec<f32> = negative_period.clone();
    let load = |i: usize, c: usize| f32::from_bits(embedding[i * out_dim + c].load(Ordering::Relaxed));
    let add = |i: usize, c: usize, delta: f32| {
        let cell = &embedding[i * out_dim + c];
        cell.store(
            (f32::from_bits(cell.load(Ordering::Relaxed)) + delta).to_bits(),
            Ordering::Relaxed,
        );
    };
    let chunk = 4096;
    for epoch in 0..epochs {
        let alpha = 1.0 - epoch as f32 / epochs as f32;
        let e = epoch as f32;
        next.par_chunks_mut(chunk)
            .zip(next_negative.par_chunks_mut(chunk))
            .enumerate()
            .for_each(|(c, (next, next_negative))| {
                let mut rng = Rng::new(options.seed ^ ((epoch as u64) << 32) ^ c as u64);
                let mut head = vec![0f32; out_dim];
                let mut other = vec![0f32; out_dim];
                for (o, (due, due_negative)) in next.iter_mut().zip(next_negative.iter_mut()).enumerate() {
                    if *due > e + 1.0 {
                        continue;
                    }
                    let index = c * chunk + o;
                    let (i, j, _) = merged[index];
                    let (i, j) = (i as usize, j as usize);
                    for d in 0..out_dim {
                        head[d] = load(i, d);
                        other[d] = load(j, d);
                    }
                    let dist2: f32 = head.iter().zip(&other).map(|(x, y)| (x - y) * (x - y)).sum();
                    if dist2 > 0.0 {
                        let coeff = -2.0 * a * b * dist2.powf(b - 1.0) / (1.0 + a * dist2.powf(b));
                        for d in 0..out_dim {
                            let g = (coeff * (head[d] - other[d])).clamp(-4.0, 4.0) * alpha;
                            head[d] += g;
                            add(i, d, g);
                            add(j, d, -g);
                        }
                    }
                    *due += period[index];
                    let negatives = ((e + 1.0 - *due_negative) / negative_period[index]).max(0.0) as usize;
                    for _ in 0..negatives {
                        let m = (rng.next_u64() % n as u64) as usize;
                        if m == i {
                            continue;
                        }
                        let dist2: f32 = (0..out_dim).map(|d| (head[d] - load(m, d)).powi(2)).sum();
                        let coeff = if dist2 > 0.0 {
                            2.0 * b / ((0.001 + dist2) * (1.0 + a * dist2.powf(b)))
                        } else {
                            0.0
                        };
                        for d in 0..out_dim {
                            let g = if coeff > 0.0 {
                                (coeff * (head[d] - load(m, d))).clamp(-4.0, 4.0)
                            } else {
                                4.0
                            };
                            head[d] += g * alpha;
                            add(i, d, g * alpha);
                        }
                    }
                    *due_negative += negatives as f32 * negative_period[index];
                }
            });
    }
    embedding.into_iter().map(|v| f32::from_bits(v.into_inner())).collect()
}

/// Adjusted Rand index of two labelings.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let (table, rows, cols, n) = contingency(a, b);
    let comb2 = |x: f64| x * (x - 1.0) / 2.0;
    let index: f64 = table.iter().map(|&v| comb2(v as f64)).sum();
    let sum_a: f64 = rows.iter().map(|&v| comb2(v as f64)).sum();
    let sum_b: f64 = cols.iter().map(|&v| comb2(v as f64)).sum();
    let expected = sum_a * sum_b / comb2(n as f64);
    let max = (sum_a + sum_b) / 2.0;
    if (max - expected).abs() < 1e-12 {
        1.0
    } else {
        (index - expected) / (max - expected)
    }
}

fn contingency(a: &[usize], b: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>, usize) {
    let ka = a.iter().copied().max().map_or(0, |m| m + 1);
    let kb = b.iter().copied().max().map_or(0, |m| m + 1);
    let mut table = vec![0usize; ka * kb];
    for (&x, &y) in a.iter().zip(b) {
        table[x * kb + y] += 1;
    }
    let rows: Vec<usize> = (0..ka).map(|i| table[i * kb..(i + 1) * kb].iter().sum()).collect();
    let cols: Vec<usize> = (0..kb).map(|j| (0..ka).map(|i| table[i * kb + j]).sum()).collect();
    (table, rows, cols, a.len().min(b.len()))
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |s, (i, g)| s + g / (x + i as f64 + 1.0));
    0.5 * (std::f64::consts::TAU).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// Adjusted mutual information (arithmetic-mean normalisation, as scikit-learn's default).
pub fn adjusted_mutual_information(a: &[usize], b: &[usize]) -> f64 {
    let (table, rows, cols, n) = contingency(a, b);
    let kb = cols.len();
    let nf = n as f64;
    let entropy = |counts: &[usize]| {
        -counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / nf;
                p * p.ln()
            })
            .sum::<f64>()
    };
    let (ha, hb) = (entropy(&rows), entropy(&cols));
    let mut mi = 0.0;
    for (i, &ai) in rows.iter().enumerate() {
        for (j, &bj) in cols.iter().enumerate() {
            let nij = table[i * kb + j];
            if nij > 0 {
                mi += nij as f64 / nf * (nf * nij as f64 / (ai as f64 * bj as f64)).ln();
            }
        }
    }
    // Expected mutual information under the hypergeometric model.
    let lg = |x: usize| ln_gamma(x as f64 + 1.0);
    let mut emi = 0.0;
    for &ai in &rows {
        for &bj in &cols {
            if ai == 0 || bj == 0 {
                continue;
            }
            let start = (ai + bj).saturating_sub(n).max(1);
            let end = ai.min(bj);
            let fixed = lg(ai) + lg(bj) + lg(n - ai) + lg(n - bj) - lg(n);
            for nij in start..=end {
                let term = nij as f64 / nf * (nf * nij as f64 / (ai as f64 * bj as f64)).ln();
                let log_p = fixed - lg(nij) - lg(ai - nij) - lg(bj - nij) - lg(n + nij - ai - bj);
                emi += term * log_p.exp();
            }
        }
    }
    let denominator = (ha + hb) / 2.0 - emi;
    if denominator.abs() < 1e-12 {
        1.0
    } else {
        (mi - emi) / denominator
    }
}

/// Ranks (1-based, ties averaged).
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut out = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            out[i] = rank;
        }
        start = end;
    }
    out
}

pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt().max(1e-300)
}

/// Spearman's rank correlation.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three well-separated blobs in `dim` dimensions, with their labels.
    fn blobs(n_per: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for c in 0..3 {
            for _ in 0..n_per {
                for d in 0..dim {
                    let centre = if d == c % dim { 10.0 } else { 0.0 } * if c == 2 { -1.0 } else { 1.0 };
                    data.push((centre + rng.normal()) as f32);
                }
                labels.push(c);
            }
        }
        (data, labels)
    }

    #[test]
    fn clustering_measures_match_known_values() {
        // Identical partitions up to renaming.
        let a = [0, 0, 1, 1, 2, 2];
        let b = [2, 2, 0, 0, 1, 1];
        assert!((adjusted_rand_index(&a, &b) - 1.0).abs() < 1e-12);
        assert!((adjusted_mutual_information(&a, &b) - 1.0).abs() < 1e-9);
        // scikit-learn 1.x gives 0.5714285714285714 for both scores of these.
        let x = [0, 0, 1, 1];
        let y = [0, 0, 1, 2];
        assert!((adjusted_rand_index(&x, &y) - 0.571_428_571_428_571_4).abs() < 1e-12);
        assert!((adjusted_mutual_information(&x, &y) - 0.571_428_571_428_571_5).abs() < 1e-9);
        // A larger case: scikit-learn's adjusted_rand_score = 0.4323996971990916 and
        // adjusted_mutual_info_score = 0.4303231785268328.
        let a: Vec<usize> = (0..300).map(|i| (i * 7 + 3) % 5).collect();
        let b: Vec<usize> = (0..300).map(|i| if i % 3 == 0 { (i * 11) % 4 } else { a[i] }).collect();
        assert!((adjusted_rand_index(&a, &b) - 0.432_399_697_199_091_6).abs() < 1e-10);
        assert!(
            (adjusted_mutual_information(&a, &b) - 0.430_323_178_526_832_8).abs() < 1e-8,
            "{}",
            adjusted_mutual_information(&a, &b)
        );
        // Independent labelings score near zero.
        let mut rng = Rng::new(3);
        let r1: Vec<usize> = (0..2000).map(|_| (rng.next_u64() % 4) as usize).collect();
        let r2: Vec<usize> = (0..2000).map(|_| (rng.next_u64() % 4) as usize).collect();
        assert!(adjusted_rand_index(&r1, &r2).abs() < 0.02);
        assert!(adjusted_mutual_information(&r1, &r2).abs() < 0.02);
    }

    #[test]
    fn gamma_and_spearman() {
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [1.0, 4.0, 9.0, 16.0, 100.0];
        assert!((spearman(&a, &b) - 1.0).abs() < 1e-12);
        let c = [5.0, 4.0, 3.0, 2.0, 1.0];
        assert!((spearman(&a, &c) + 1.0).abs() < 1e-12);
        // Ties: scipy.stats.spearmanr([1,2,2,3],[1,2,3,4]) = 0.9486832980505138.
        assert!((spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]) - 0.948_683_298_050_513_8).abs() < 1e-12);
    }

    #[test]
    fn pca_finds_the_long_axis() {
        let mut rng = Rng::new(5);
        let data: Vec<f32> = (0..500)
            .flat_map(|_| {
                let t = rng.normal() * 5.0;
                [
                    (t * 0.6 + rng.normal() * 0.1) as f32,
                    (t * 0.8 + rng.normal() * 0.1) as f32,
                    (rng.normal() * 0.1) as f32,
                ]
            })
            .collect();
        let p = pca(&data, 3, 2);
        assert!(
            (p.axes[0][0].abs() - 0.6).abs() < 0.02 && (p.axes[0][1].abs() - 0.8).abs() < 0.02,
            "{:?}",
            p.axes[0]
        );
        assert!(p.variances[0] > 20.0 && p.variances[1] < 0.05);
    }

    #[test]
    fn kmeans_and_gmm_recover_blobs() {
        let (data, truth) = blobs(200, 4, 9);
        let (labels, _) = kmeans(&data, 4, 3, 1, 3);
        assert!(adjusted_rand_index(&labels, &truth) > 0.99);
        let g = gmm(&data, 4, 3, 1);
        assert!(adjusted_rand_index(&g.labels, &truth) > 0.99);
        assert!(g.log_likelihood.is_finite());
        assert!((g.weights.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    }

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

    #[test]
    fn umap_keeps_blobs_apart() {
        let (data, truth) = blobs(150, 6, 2);
        let embedding = umap(
            &data,
            6,
            &UmapOptions {
                epochs: Some(200),
                ..UmapOptions::default()
            },
            &|_| {},
        );
        assert!(embedding.iter().all(|v| v.is_finite()));
        let (labels, _) = kmeans(&embedding, 2, 3, 1, 3);
        assert!(adjusted_rand_index(&labels, &truth) > 0.99);
        let (a, b) = curve_parameters(0.1, 1.0);
        assert!((a - 1.577).abs() < 0.05 && (b - 0.895).abs() < 0.02, "{a} {b}");
    }
}
