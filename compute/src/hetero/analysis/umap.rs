//! UMAP (McInnes, Healy & Melville 2018): the fuzzy simplicial set of the k-nearest-neighbour
//! graph (ρ, σ per point, symmetrised by the probabilistic union), and the layout optimised by
//! stochastic gradient descent with negative sampling, started from the PCA projection. Updates
//! run in parallel without locks, as the reference implementation does.

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;

use super::neighbours::{locality_order, nearest_neighbours_in_order, permute_rows};
use super::pca::pca;
use crate::numeric::rng::Rng;

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
    /// Above this many points the layout goes coarse to fine (see [`umap`]); None: never.
    #[serde(default = "default_coarse_above")]
    pub coarse_above: Option<usize>,
}

fn default_coarse_above() -> Option<usize> {
    Some(COARSE_ABOVE)
}

/// The default [`UmapOptions::coarse_above`].
pub const COARSE_ABOVE: usize = 200_000;
/// How many points the coarse layout holds (at most half of `coarse_above`).
const COARSE_POINTS: usize = 50_000;
/// Epochs of the whole layout after the coarse one placed every point.
pub const REFINE_EPOCHS: usize = 20;
/// The learning rate those epochs start at (a placed layout needs no large moves).
const REFINE_ALPHA: f32 = 0.5;

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
            coarse_above: default_coarse_above(),
        }
    }
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
///
/// Above `options.coarse_above` points, the layout is made coarse to fine: a systematic sample
/// of 5·10⁴ points (every m-th in the locality order, so spread evenly over the data) gets its own
/// UMAP with all the epochs; every other point starts at the membership-weighted mean of its
/// placed nearest neighbours (spreading outwards through the graph), and the whole layout then
/// runs [`REFINE_EPOCHS`] epochs from a learning rate of [`REFINE_ALPHA`]. Its edges are the
/// whole data's graph throughout.
pub fn umap(data: &[f32], dim: usize, options: &UmapOptions, progress: &dyn Fn(&str)) -> Vec<f32> {
    let n = data.len() / dim.max(1);
    let out_dim = options.components.max(1);
    if n < 3 {
        return vec![0.0; n * out_dim];
    }
    progress("nearest neighbours");
    // Everything runs on the points in an order where near points sit near each other in memory
    // (2× faster on 10⁶ points, where random access is the cost); the layout is put back at the end.
    let order = locality_order(data, dim, options.neighbours, options.seed);
    let ordered = permute_rows(data, dim, &order);
    let data = &ordered[..];
    let knn = nearest_neighbours_in_order(data, dim, options.neighbours, options.seed);
    progress("fuzzy graph");
    let member = memberships(&knn);
    drop(knn);
    let mut edges = fuzzy_union(&member, n * options.neighbours);
    let epochs = options.epochs.unwrap_or(if n <= 10_000 { 500 } else { 200 });
    let coarse = options.coarse_above.is_some_and(|limit| n > limit);
    let (start, run_epochs, alpha) = if coarse {
        progress("coarse layout");
        let start = coarse_layout(data, dim, &member, options);
        (start, REFINE_EPOCHS.min(epochs), REFINE_ALPHA)
    } else {
        (initial_layout(data, dim, out_dim, options.seed), epochs, 1.0)
    };
    drop(member);
    let max_w = edges.iter().map(|e| e.2).fold(0.0f32, f32::max);
    edges.retain(|e| e.2 >= max_w / run_epochs as f32);
    progress("layout");
    let (a, b) = curve_parameters(options.min_dist, options.spread);
    let period: Vec<f32> = edges.iter().map(|e| max_w / e.2).collect();
    let negative_period: Vec<f32> = period
        .iter()
        .map(|p| p / options.negative_samples.max(1) as f32)
        .collect();
    let layout = Layout {
        embedding: start.iter().map(|v| AtomicU32::new(v.to_bits())).collect(),
        out_dim,
        n,
        edges: &edges,
        period,
        negative_period,
        a: a as f32,
        b: b as f32,
        seed: options.seed,
    };
    let in_order = layout.optimise(run_epochs, alpha);
    let mut embedding = vec![0f32; n * out_dim];
    for (p, &i) in order.iter().enumerate() {
        let i = i as usize;
        embedding[i * out_dim..(i + 1) * out_dim].copy_from_slice(&in_order[p * out_dim..(p + 1) * out_dim]);
    }
    embedding
}

/// Each point's fuzzy membership of its neighbours' sets: exp(−(d − ρ)/σ), ρ the distance to the
/// nearest neighbour and σ such that the memberships sum to log₂ k. Distances (not squared).
fn memberships(knn: &[Vec<(f32, u32)>]) -> Vec<Vec<(u32, f32)>> {
    let target = (knn[0].len() as f64).log2();
    knn.par_iter()
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
        .collect()
}

/// The symmetric graph, by the probabilistic union w = a + b − ab over (i, j) and (j, i): edges
/// (i < j, weight), sorted.
fn fuzzy_union(memberships: &[Vec<(u32, f32)>], capacity: usize) -> Vec<(u32, u32, f32)> {
    let mut edges: Vec<(u32, u32, f32)> = Vec::with_capacity(capacity);
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
    merged
}

/// The coarse-to-fine start (see [`umap`]), [n, components]; `member` is each point's fuzzy
/// membership of its neighbours' sets.
fn coarse_layout(data: &[f32], dim: usize, member: &[Vec<(u32, f32)>], options: &UmapOptions) -> Vec<f32> {
    let n = member.len();
    let out_dim = options.components.max(1);
    let limit = options.coarse_above.unwrap_or(COARSE_ABOVE);
    let stride = n.div_ceil(COARSE_POINTS.min(limit / 2).max(1));
    let subset: Vec<u32> = (0..n).step_by(stride).map(|i| i as u32).collect();
    let sub = umap(
        &permute_rows(data, dim, &subset),
        dim,
        &UmapOptions {
            coarse_above: None,
            ..options.clone()
        },
        &|_| {},
    );
    let mut layout = vec![0f32; n * out_dim];
    let mut placed = vec![false; n];
    for (s, &i) in subset.iter().enumerate() {
        let i = i as usize;
        layout[i * out_dim..(i + 1) * out_dim].copy_from_slice(&sub[s * out_dim..(s + 1) * out_dim]);
        placed[i] = true;
    }
    // Outwards through the graph: each pass places the points with a placed neighbour.
    for _ in 0..16 {
        let found: Vec<(usize, Vec<f32>)> = (0..n)
            .into_par_iter()
            .filter(|&i| !placed[i])
            .filter_map(|i| {
                let mut sum = vec![0f32; out_dim];
                let mut weight = 0f32;
                for &(j, w) in &member[i] {
                    let j = j as usize;
                    if placed[j] {
                        let w = w.max(1e-6);
                        for c in 0..out_dim {
                            sum[c] += w * layout[j * out_dim + c];
                        }
                        weight += w;
                    }
                }
                (weight > 0.0).then(|| (i, sum.into_iter().map(|v| v / weight).collect()))
            })
            .collect();
        if found.is_empty() {
            break;
        }
        for (i, p) in found {
            layout[i * out_dim..(i + 1) * out_dim].copy_from_slice(&p);
            placed[i] = true;
        }
    }
    // Points no pass reached (a component of the graph without a sampled point) start at the
    // sampled point before them in the locality order; every point is jittered apart.
    let mut rng = Rng::new(options.seed ^ 0x5eed);
    for i in 0..n {
        if !placed[i] {
            let s = (i / stride) * stride;
            for c in 0..out_dim {
                layout[i * out_dim + c] = layout[s * out_dim + c];
            }
        }
        if i % stride != 0 {
            for c in 0..out_dim {
                layout[i * out_dim + c] += (rng.normal() * 0.01) as f32;
            }
        }
    }
    layout
}

/// The starting layout, [n, out_dim]: the PCA projection scaled to ±10, plus a little noise.
fn initial_layout(data: &[f32], dim: usize, out_dim: usize, seed: u64) -> Vec<f32> {
    let n = data.len() / dim.max(1);
    let start = pca(data, dim, out_dim.min(dim));
    let mut init = vec![0f32; n * out_dim];
    let scale = start.projections.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    let mut rng = Rng::new(seed);
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
    init
}

/// Edges optimised together per parallel task (and per random stream).
const EDGE_CHUNK: usize = 4096;

/// The layout under optimisation: each edge is sampled once every `period` epochs (heavier
/// edges more often), pulls its ends together, and pushes its head away from random points.
struct Layout<'a> {
    /// [n, out_dim] coordinates as f32 bits, updated by all threads without locks.
    embedding: Vec<AtomicU32>,
    out_dim: usize,
    n: usize,
    edges: &'a [(u32, u32, f32)],
    period: Vec<f32>,
    negative_period: Vec<f32>,
    /// The curve 1 / (1 + a·d^(2b)).
    a: f32,
    b: f32,
    seed: u64,
}

impl Layout<'_> {
    fn load(&self, i: usize, c: usize) -> f32 {
        f32::from_bits(self.embedding[i * self.out_dim + c].load(Ordering::Relaxed))
    }

    fn add(&self, i: usize, c: usize, delta: f32) {
        let cell = &self.embedding[i * self.out_dim + c];
        cell.store(
            (f32::from_bits(cell.load(Ordering::Relaxed)) + delta).to_bits(),
            Ordering::Relaxed,
        );
    }

    /// Runs `epochs` epochs of stochastic gradient descent; the final layout, [n, out_dim].
    fn optimise(self, epochs: usize, start_alpha: f32) -> Vec<f32> {
        // The epoch at which each edge (and its negative samples) is next due.
        let mut next: Vec<f32> = self.period.clone();
        let mut next_negative: Vec<f32> = self.negative_period.clone();
        for epoch in 0..epochs {
            let alpha = start_alpha * (1.0 - epoch as f32 / epochs as f32);
            next.par_chunks_mut(EDGE_CHUNK)
                .zip(next_negative.par_chunks_mut(EDGE_CHUNK))
                .enumerate()
                .for_each(|(c, (next, next_negative))| self.chunk(epoch, alpha, c, next, next_negative));
        }
        self.embedding
            .into_iter()
            .map(|v| f32::from_bits(v.into_inner()))
            .collect()
    }

    /// The edges of chunk `c` that are due in `epoch`, with learning rate `alpha`.
    fn chunk(&self, epoch: usize, alpha: f32, c: usize, next: &mut [f32], next_negative: &mut [f32]) {
        let e = epoch as f32;
        let mut rng = Rng::new(self.seed ^ ((epoch as u64) << 32) ^ c as u64);
        let mut head = vec![0f32; self.out_dim];
        let mut other = vec![0f32; self.out_dim];
        for (o, (due, due_negative)) in next.iter_mut().zip(next_negative.iter_mut()).enumerate() {
            if *due > e + 1.0 {
                continue;
            }
            let index = c * EDGE_CHUNK + o;
            let (i, j, _) = self.edges[index];
            let (i, j) = (i as usize, j as usize);
            for d in 0..self.out_dim {
                head[d] = self.load(i, d);
                other[d] = self.load(j, d);
            }
            self.attract(i, j, &mut head, &other, alpha);
            *due += self.period[index];
            let negatives = ((e + 1.0 - *due_negative) / self.negative_period[index]).max(0.0) as usize;
            for _ in 0..negatives {
                // Uniform in [0, n) by a multiply: a 64-bit division here cost a quarter of the layout.
                let m = ((u128::from(rng.next_u64()) * self.n as u128) >> 64) as usize;
                if m != i {
                    self.repel(i, m, &mut head, &mut other, alpha);
                }
            }
            *due_negative += negatives as f32 * self.negative_period[index];
        }
    }

    /// Pulls points i (at `head`) and j (at `other`) together.
    fn attract(&self, i: usize, j: usize, head: &mut [f32], other: &[f32], alpha: f32) {
        let (a, b) = (self.a, self.b);
        let dist2: f32 = head.iter().zip(other).map(|(x, y)| (x - y) * (x - y)).sum();
        if dist2 > 0.0 {
            // d^(2b−2) = d^(2b) / d²: one power.
            let power = dist2.powf(b);
            let coeff = -2.0 * a * b * (power / dist2) / (1.0 + a * power);
            for d in 0..self.out_dim {
                let g = (coeff * (head[d] - other[d])).clamp(-4.0, 4.0) * alpha;
                head[d] += g;
                self.add(i, d, g);
                self.add(j, d, -g);
            }
        }
    }

    /// Pushes point i (at `head`) away from point m (its coordinates read into `other`).
    fn repel(&self, i: usize, m: usize, head: &mut [f32], other: &mut [f32], alpha: f32) {
        let (a, b) = (self.a, self.b);
        for (d, o) in other.iter_mut().enumerate() {
            *o = self.load(m, d);
        }
        let dist2: f32 = head.iter().zip(other.iter()).map(|(h, o)| (h - o) * (h - o)).sum();
        let coeff = if dist2 > 0.0 {
            2.0 * b / ((0.001 + dist2) * (1.0 + a * dist2.powf(b)))
        } else {
            0.0
        };
        for (d, h) in head.iter_mut().enumerate() {
            let g = if coeff > 0.0 {
                (coeff * (*h - other[d])).clamp(-4.0, 4.0)
            } else {
                4.0
            };
            *h += g * alpha;
            self.add(i, d, g * alpha);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hetero::analysis::adjusted_rand_index;
    use crate::hetero::analysis::tests::blobs;
    use crate::numeric::kmeans::{KMeansOptions, kmeans};

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
        let labels = kmeans(&embedding, 2, None, 3, KMeansOptions::new(1, 3)).labels;
        assert!(adjusted_rand_index(&labels, &truth) > 0.99);
        let (a, b) = curve_parameters(0.1, 1.0);
        assert!((a - 1.577).abs() < 0.05 && (b - 0.895).abs() < 0.02, "{a} {b}");
    }

    /// Above the exact-neighbour limit the points are reordered for locality: the layout must
    /// come back in the input's order.
    #[test]
    fn a_large_layout_comes_back_in_the_input_order() {
        let (data, truth) = blobs(8_000, 4, 5);
        assert!(truth.len() > crate::hetero::analysis::neighbours::EXACT_KNN_LIMIT);
        let options = UmapOptions {
            epochs: Some(20),
            ..UmapOptions::default()
        };
        let embedding = umap(&data, 4, &options, &|_| {});
        assert_eq!(embedding.len(), 2 * truth.len());
        let labels = kmeans(&embedding, 2, None, 3, KMeansOptions::new(1, 3)).labels;
        assert!(adjusted_rand_index(&labels, &truth) > 0.99);
    }

    /// Coarse to fine: a sample's layout places the rest, and the whole keeps the blobs apart in
    /// the input's order.
    #[test]
    fn a_coarse_layout_places_every_point() {
        let (data, truth) = blobs(8_000, 4, 5);
        let options = UmapOptions {
            epochs: Some(100),
            coarse_above: Some(4_000),
            ..UmapOptions::default()
        };
        let steps = std::sync::Mutex::new(Vec::new());
        let embedding = umap(&data, 4, &options, &|s| steps.lock().unwrap().push(s.to_string()));
        assert!(steps.lock().unwrap().iter().any(|s| s == "coarse layout"), "{steps:?}");
        assert_eq!(embedding.len(), 2 * truth.len());
        assert!(embedding.iter().all(|v| v.is_finite()));
        let labels = kmeans(&embedding, 2, None, 3, KMeansOptions::new(1, 3)).labels;
        assert!(adjusted_rand_index(&labels, &truth) > 0.99);
    }
}
