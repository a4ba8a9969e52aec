//! A Gaussian mixture with full covariances fitted by expectation–maximisation, started from
//! k-means, for clustering latents.

use rayon::prelude::*;

use crate::numeric::kmeans::{KMeansOptions, kmeans};

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
    let init = kmeans(data, dim, None, k, KMeansOptions::new(seed, 3)).labels;
    let k = init.iter().copied().max().map_or(1, |m| m + 1);
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
        for c in 0..k {
            gmm.m_step(data, dim, &resp, c);
        }
        let log_likelihood = gmm.e_step(data, dim, &mut resp);
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

impl Gmm {
    fn components(&self) -> usize {
        self.weights.len()
    }

    /// The M step for component `c`: its weight, mean and covariance from the responsibilities
    /// `resp` ([n, k]).
    fn m_step(&mut self, data: &[f32], dim: usize, resp: &[f64], c: usize) {
        let k = self.components();
        let n = data.len() / dim.max(1);
        let row = |i: usize| &data[i * dim..(i + 1) * dim];
        let total: f64 = (0..n).map(|i| resp[i * k + c]).sum::<f64>() + 10.0 * f64::EPSILON;
        self.weights[c] = total / n as f64;
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
        self.means[c * dim..(c + 1) * dim].copy_from_slice(&mean);
        self.covariances[c] = full;
    }

    /// The E step: responsibilities `resp` ([n, k]) from log N(x | μ, Σ) through the Cholesky
    /// factor; returns the mean log-likelihood per point.
    fn e_step(&self, data: &[f32], dim: usize, resp: &mut [f64]) -> f64 {
        let k = self.components();
        let n = data.len() / dim.max(1);
        let row = |i: usize| &data[i * dim..(i + 1) * dim];
        let factors: Vec<(nalgebra::DMatrix<f64>, f64)> = self
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
                            (0..dim).map(|a| f64::from(x[a]) - self.means[c * dim + a]),
                        );
                        let solved = factors[c].0.solve_lower_triangular(&diff).unwrap_or(diff);
                        self.weights[c].max(1e-300).ln() - 0.5 * (constant + factors[c].1 + solved.norm_squared())
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
        log_likelihood / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hetero::analysis::adjusted_rand_index;
    use crate::hetero::analysis::tests::blobs;

    #[test]
    fn kmeans_and_gmm_recover_blobs() {
        let (data, truth) = blobs(200, 4, 9);
        let labels = kmeans(&data, 4, None, 3, KMeansOptions::new(1, 3)).labels;
        assert!(adjusted_rand_index(&labels, &truth) > 0.99);
        let g = gmm(&data, 4, 3, 1);
        assert!(adjusted_rand_index(&g.labels, &truth) > 0.99);
        assert!(g.log_likelihood.is_finite());
        assert!((g.weights.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    }
}
