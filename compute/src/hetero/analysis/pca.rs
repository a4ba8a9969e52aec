//! Principal component analysis of latents: the covariance of the points, its eigenvectors
//! (largest first, signed so runs agree), and every point's projection on them.

use rayon::prelude::*;

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
    let (values, vectors) = crate::numeric::eigen::symmetric_eigen(full, dim);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::rng::Rng;

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
}
