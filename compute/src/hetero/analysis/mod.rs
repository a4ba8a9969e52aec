//! Analysis of latent spaces: PCA, UMAP (to 2D for display, more dimensions for clustering),
//! a Gaussian mixture by EM (k-means is [`crate::numeric::kmeans`]), and the measures
//! docs/science.md §7 names for them (ARI, AMI, Spearman). Data are row-major `[n, dim]` f32 slices.

mod gmm;
mod metrics;
mod neighbours;
mod pca;
mod umap;

pub use gmm::{Gmm, gmm};
pub use metrics::{adjusted_mutual_information, adjusted_rand_index, ln_gamma, pearson, spearman};
pub use neighbours::{EXACT_KNN_LIMIT, nearest_neighbours};
pub use pca::{Pca, pca};
pub use umap::{COARSE_ABOVE, UmapOptions, curve_parameters, umap};

#[cfg(test)]
pub(crate) mod tests {
    use crate::numeric::rng::Rng;

    /// Three well-separated blobs in `dim` dimensions, with their labels.
    pub(crate) fn blobs(n_per: usize, dim: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
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
}
