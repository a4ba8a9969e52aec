//! k-means, once for every caller: k-means++ seeding (each new centre drawn with probability
//! ∝ weight × squared distance to the nearest centre), Lloyd iterations until no point moves,
//! the best of several restarts by inertia. Points are flat rows of `dim` values; weights are
//! optional (a map's point cloud weighs voxels by density, latent clustering weighs particles
//! equally).

use rayon::prelude::*;

use crate::numeric::rng::Rng;

/// The squared Euclidean distance between two rows.
pub fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// A k-means clustering: a label per point and the centres, `[k, dim]` row-major.
#[derive(Clone, Debug, Default)]
pub struct Clustering {
    pub labels: Vec<usize>,
    pub centres: Vec<f64>,
    /// Σ weight × squared distance to the point's centre.
    pub inertia: f64,
}

/// How the first centre of a k-means++ start is drawn. Both are uniform over the points; each
/// caller keeps the one its recorded results were measured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstPick {
    /// `next_u64() mod n` (latent clustering).
    Modulo,
    /// `⌊uniform() · n⌋` (the map point cloud and the guided prior's nodes).
    ScaledUniform,
}

/// Options of [`kmeans`].
#[derive(Clone, Copy, Debug)]
pub struct KMeansOptions {
    pub seed: u64,
    pub restarts: usize,
    pub max_iterations: usize,
    pub first_pick: FirstPick,
}

impl KMeansOptions {
    /// `restarts` runs from `seed` on, up to 300 Lloyd iterations each.
    pub fn new(seed: u64, restarts: usize) -> Self {
        Self {
            seed,
            restarts,
            max_iterations: 300,
            first_pick: FirstPick::Modulo,
        }
    }
}

fn distance2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Clusters `data` (`[n, dim]`, f32 or f64) into at most `k` clusters.
pub fn kmeans<T>(data: &[T], dim: usize, weights: Option<&[f64]>, k: usize, options: KMeansOptions) -> Clustering
where
    T: Copy + Into<f64> + Sync,
{
    let dim = dim.max(1);
    let n = data.len() / dim;
    if n == 0 || k == 0 {
        return Clustering::default();
    }
    let points: Vec<f64> = data[..n * dim].iter().map(|&v| v.into()).collect();
    let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
    let k = k.min(n);
    let row = |i: usize| &points[i * dim..(i + 1) * dim];
    let mut best: Option<Clustering> = None;
    for restart in 0..options.restarts.max(1) {
        let mut rng = Rng::new(options.seed.wrapping_add(restart as u64 * 104_729));
        let first = match options.first_pick {
            FirstPick::Modulo => rng.below(n),
            FirstPick::ScaledUniform => (rng.uniform() * n as f64) as usize % n,
        };
        let mut centres: Vec<f64> = row(first).to_vec();
        let mut nearest: Vec<f64> = (0..n).into_par_iter().map(|i| distance2(row(i), &centres)).collect();
        while centres.len() < k * dim {
            let total: f64 = nearest.iter().enumerate().map(|(i, d)| d * weight(i)).sum();
            if total <= 0.0 {
                break;
            }
            let mut target = rng.uniform() * total;
            let mut pick = n - 1;
            for (i, d) in nearest.iter().enumerate() {
                target -= d * weight(i);
                if target <= 0.0 {
                    pick = i;
                    break;
                }
            }
            let c = row(pick).to_vec();
            nearest
                .par_iter_mut()
                .enumerate()
                .for_each(|(i, d)| *d = d.min(distance2(row(i), &c)));
            centres.extend(c);
        }
        let clusters = centres.len() / dim;
        let distance_to = |centres: &[f64], c: usize, i: usize| distance2(row(i), &centres[c * dim..(c + 1) * dim]);
        let mut labels = vec![usize::MAX; n];
        for _ in 0..options.max_iterations.max(1) {
            let assigned: Vec<usize> = (0..n)
                .into_par_iter()
                .map(|i| {
                    // The first nearest centre, each distance computed once.
                    let (mut nearest, mut best) = (0, f64::INFINITY);
                    for c in 0..clusters {
                        let d = distance_to(&centres, c, i);
                        if d < best {
                            (nearest, best) = (c, d);
                        }
                    }
                    nearest
                })
                .collect();
            let changed = assigned != labels;
            labels = assigned;
            let mut sums = vec![0f64; clusters * dim];
            let mut mass = vec![0f64; clusters];
            for (i, &l) in labels.iter().enumerate() {
                let w = weight(i);
                mass[l] += w;
                for (s, &v) in sums[l * dim..(l + 1) * dim].iter_mut().zip(row(i)) {
                    *s += w * v;
                }
            }
            for c in 0..clusters {
                if mass[c] > 0.0 {
                    for j in 0..dim {
                        centres[c * dim + j] = sums[c * dim + j] / mass[c];
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let inertia: f64 = (0..n).map(|i| weight(i) * distance_to(&centres, labels[i], i)).sum();
        if best.as_ref().is_none_or(|b| inertia < b.inertia) {
            best = Some(Clustering {
                labels,
                centres,
                inertia,
            });
        }
    }
    best.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_pull_the_centre_towards_the_heavy_point() {
        // One cluster of two points, one nine times heavier: the centre is the weighted mean.
        let data = [0.0f64, 0.0, 10.0, 0.0];
        let options = KMeansOptions {
            seed: 1,
            restarts: 1,
            max_iterations: 10,
            first_pick: FirstPick::Modulo,
        };
        let c = kmeans(&data, 2, Some(&[9.0, 1.0]), 1, options);
        assert!((c.centres[0] - 1.0).abs() < 1e-12, "{:?}", c.centres);
        let c = kmeans(&data, 2, None, 2, options);
        assert_ne!(c.labels[0], c.labels[1]);
        assert!(c.inertia < 1e-12);
    }
}
