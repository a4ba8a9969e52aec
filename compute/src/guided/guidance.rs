//! The map terms that steer guided sampling (docs/science.md §4), each with its gradient with
//! respect to the atom positions:
//! - global: the debiased Sinkhorn divergence (reach 10 Å) between the heavy atoms (weighted by
//!   atomic number) and a weighted k-means point cloud of the thresholded, de-dusted map;
//! - local: the mean squared difference between the z-scored map and the z-scored density
//!   simulated from the atoms (the density kernel and its analytic gradient).

use super::GuidedError;
use crate::guided::pointcloud::{PointCloud, default_point_count, map_point_cloud};
use crate::guided::sinkhorn::{SinkhornOptions, SinkhornWarmStart, sinkhorn_divergence_warm};
use crate::maps::density::{GaussianAtoms, simulate, simulate_backward};
use crate::maps::scores::{VOLUME_PER_HEAVY_ATOM_ANGSTROM3, level_enclosing_volume};
use crate::maps::tools::low_pass;
use crate::maps::{DensityMap, Statistics};

/// The point cloud has at least one point per this many heavy atoms.
pub const MIN_ATOMS_PER_POINT: usize = 20;

/// How the map is turned into guidance.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GuidanceOptions {
    pub resolution_angstrom: f32,
    /// Low-pass the map to the resolution first (for noisy, experimental maps).
    pub low_pass: bool,
    /// Sinkhorn blur (Å) and reach (Å).
    pub blur_angstrom: f64,
    pub reach_angstrom: f64,
    /// Global guidance uses at most this many atoms (an even subsample of larger models; the
    /// prior spreads their motion to the rest).
    pub max_sinkhorn_atoms: usize,
    /// Point-cloud size; None for docs/science.md §4's K = 0.25 · N_atoms / voxel volume.
    pub cloud_points: Option<usize>,
    pub seed: u64,
}

impl GuidanceOptions {
    pub fn new(resolution_angstrom: f32) -> Self {
        Self {
            resolution_angstrom,
            low_pass: false,
            blur_angstrom: 1.0,
            reach_angstrom: 10.0,
            max_sinkhorn_atoms: 600,
            cloud_points: None,
            seed: 1,
        }
    }
}

/// The map convolved with a normalised 3D Gaussian of width `sigma_angstrom` (separable, in
/// real space, truncated at 3σ, edges clamped).
pub fn gaussian_blur(map: &DensityMap, sigma_angstrom: f64) -> Vec<f32> {
    use rayon::prelude::*;
    let [nx, ny, nz] = map.grid.dims;
    let mut values = map.values.clone();
    for axis in 0..3 {
        let h = f64::from(map.grid.voxel_size_angstrom[axis]);
        let radius = ((3.0 * sigma_angstrom / h).ceil() as isize).max(1);
        let kernel: Vec<f32> = (-radius..=radius)
            .map(|i| (-(i as f64 * h).powi(2) / (2.0 * sigma_angstrom * sigma_angstrom)).exp() as f32)
            .collect();
        let total: f32 = kernel.iter().sum();
        let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
        let (n, stride) = match axis {
            0 => (nx, 1),
            1 => (ny, nx),
            _ => (nz, nx * ny),
        };
        let source = values.clone();
        values.par_iter_mut().enumerate().for_each(|(index, v)| {
            let position = (index / stride) % n;
            let base = index - position * stride;
            let mut sum = 0.0f32;
            for (k, w) in kernel.iter().enumerate() {
                let j = (position as isize + k as isize - radius).clamp(0, n as isize - 1) as usize;
                sum += w * source[base + j * stride];
            }
            *v = sum;
        });
    }
    values
}

/// A map prepared for guidance, with the Sinkhorn solver's warm start.
pub struct MapGuidance {
    pub map: DensityMap,
    pub cloud: PointCloud,
    /// The level the cloud was thresholded at.
    pub level: f32,
    z_map: Vec<f32>,
    sinkhorn: SinkhornOptions,
    sinkhorn_atoms: Vec<usize>,
    sinkhorn_weights: Vec<f64>,
    warm: SinkhornWarmStart,
}

/// A loss and its gradient for every atom.
pub struct TermValue {
    pub loss: f64,
    pub gradient: Vec<[f64; 3]>,
}

/// (value − mean) / σ, and σ.
fn z_scored(values: &[f32]) -> (Vec<f32>, f64) {
    let stats = Statistics::of(values);
    let (mean, sd) = (f64::from(stats.mean), f64::from(stats.rms).max(1e-30));
    (
        values.iter().map(|&v| ((f64::from(v) - mean) / sd) as f32).collect(),
        sd,
    )
}

impl MapGuidance {
    /// Prepares `map` for guiding `atoms` (their amplitudes set the Sinkhorn weights).
    pub fn new(map: &DensityMap, atoms: &GaussianAtoms, options: &GuidanceOptions) -> Result<Self, GuidedError> {
        if map.values.iter().all(|v| *v == map.values[0]) {
            return Err(GuidedError::FlatMap);
        }
        let map = if options.low_pass {
            low_pass(map, options.resolution_angstrom)
        } else {
            map.clone()
        };
        let voxel_volume: f64 = map.grid.voxel_size_angstrom.iter().map(|&h| f64::from(h)).product();
        let expected_volume = atoms.len() as f32 * VOLUME_PER_HEAVY_ATOM_ANGSTROM3;
        let level = level_enclosing_volume(&map, expected_volume);
        // Blobs smaller than a resolution-sized cube are noise, not protein.
        let dust = options.resolution_angstrom.powi(3).min(0.05 * expected_volume);
        // docs/science.md §4's K = 0.25·N/voxel volume, but at least one point per 20 heavy atoms: the
        // large voxels of coarse maps (8 Å: 2.7 Å) would otherwise leave a handful of points and
        // a blurry target (AdK at 8 Å: 22 points, 2.75 Å Cα RMSD; 90 points, 1.29 Å).
        let k = options.cloud_points.unwrap_or_else(|| {
            default_point_count(atoms.len(), voxel_volume).max(atoms.len().div_ceil(MIN_ATOMS_PER_POINT))
        });
        let cloud = map_point_cloud(&map, level, dust, k, options.seed, 50);
        if cloud.points.is_empty() {
            return Err(GuidedError::NoDensity { level });
        }
        let stride = atoms.len().div_ceil(options.max_sinkhorn_atoms.max(1)).max(1);
        let sinkhorn_atoms: Vec<usize> = (0..atoms.len()).step_by(stride).collect();
        let sinkhorn_weights = sinkhorn_atoms.iter().map(|&i| f64::from(atoms.amplitudes[i])).collect();
        let (z_map, _) = z_scored(&map.values);
        let sinkhorn = SinkhornOptions {
            blur_angstrom: options.blur_angstrom,
            reach_angstrom: Some(options.reach_angstrom),
            scaling: 0.5,
            final_iterations: 50,
            tolerance: 1e-4,
        };
        Ok(Self {
            map,
            cloud,
            level,
            z_map,
            sinkhorn,
            sinkhorn_atoms,
            sinkhorn_weights,
            warm: SinkhornWarmStart::default(),
        })
    }

    /// Atoms used by the global term.
    pub fn sinkhorn_atom_count(&self) -> usize {
        self.sinkhorn_atoms.len()
    }

    /// Sinkhorn divergence between the atoms and the map's cloud.
    pub fn global(&mut self, positions: &[[f64; 3]]) -> TermValue {
        let x: Vec<[f64; 3]> = self.sinkhorn_atoms.iter().map(|&i| positions[i]).collect();
        let result = sinkhorn_divergence_warm(
            &x,
            &self.sinkhorn_weights,
            &self.cloud.points,
            &self.cloud.weights,
            &self.sinkhorn,
            &mut self.warm,
        );
        let mut gradient = vec![[0.0; 3]; positions.len()];
        for (&i, g) in self.sinkhorn_atoms.iter().zip(&result.gradient) {
            gradient[i] = *g;
        }
        TermValue {
            loss: result.divergence,
            gradient,
        }
    }

    /// Mean squared difference of the z-scored map and the z-scored simulated density, both
    /// blurred by a further Gaussian of `blur_angstrom` (coarse to fine: a wider basin while
    /// the sample is still noisy).
    pub fn local(&self, atoms: &GaussianAtoms, blur_angstrom: f64) -> TermValue {
        let grid = &self.map.grid;
        let blurred_map;
        let (z_map, atoms) = if blur_angstrom > 0.05 * f64::from(grid.voxel_size_angstrom[0]) {
            blurred_map = z_scored(&gaussian_blur(&self.map, blur_angstrom)).0;
            let b2 = (blur_angstrom * blur_angstrom) as f32;
            let wider = GaussianAtoms {
                positions: atoms.positions.clone(),
                amplitudes: atoms.amplitudes.clone(),
                sigmas: atoms.sigmas.iter().map(|s| (s * s + b2).sqrt()).collect(),
            };
            (&blurred_map, std::borrow::Cow::Owned(wider))
        } else {
            (&self.z_map, std::borrow::Cow::Borrowed(atoms))
        };
        let atoms = atoms.as_ref();
        let simulated = simulate(grid, atoms);
        let (z_sim, sd) = z_scored(&simulated);
        let n = z_sim.len().max(1) as f64;
        let residual: Vec<f64> = z_sim
            .iter()
            .zip(z_map)
            .map(|(&a, &b)| f64::from(a) - f64::from(b))
            .collect();
        let loss = residual.iter().map(|r| r * r).sum::<f64>() / n;
        // ∂L/∂sᵥ through the z-score: (2/(n·sd)) (rᵥ − mean r − ẑᵥ · mean(r ẑ)).
        let mean_r = residual.iter().sum::<f64>() / n;
        let mean_rz = residual.iter().zip(&z_sim).map(|(r, &z)| r * f64::from(z)).sum::<f64>() / n;
        let scale = 2.0 / (n * sd);
        let dloss: Vec<f32> = residual
            .iter()
            .zip(&z_sim)
            .map(|(r, &z)| (scale * (r - mean_r - f64::from(z) * mean_rz)) as f32)
            .collect();
        let grads = simulate_backward(grid, atoms, &dloss);
        // (∂/∂position does not depend on the width change, so these are the atoms' gradients.)
        TermValue {
            loss,
            gradient: grads.positions.iter().map(|g| g.map(f64::from)).collect(),
        }
    }

    /// Correlation about the mean between the map and the atoms' simulated density (= 1 − L/2).
    pub fn correlation(&self, atoms: &GaussianAtoms) -> f64 {
        let simulated = simulate(&self.map.grid, atoms);
        crate::maps::scores::correlation(&self.map.values, &simulated, true, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::density::molmap_grid;

    fn blobs() -> GaussianAtoms {
        let positions = (0..30)
            .map(|i| {
                let t = i as f32 * 0.7;
                [5.0 * t.cos(), 5.0 * t.sin(), 0.8 * i as f32]
            })
            .collect();
        GaussianAtoms {
            positions,
            amplitudes: vec![6.0; 30],
            sigmas: vec![1.2; 30],
        }
    }

    /// The 5 Å map of `atoms` on molmap's grid.
    fn map_of(atoms: &GaussianAtoms) -> DensityMap {
        let grid = molmap_grid(&atoms.positions, 5.0);
        DensityMap {
            values: simulate(&grid, atoms),
            grid,
            meta: Default::default(),
        }
    }

    #[test]
    fn the_local_gradient_matches_finite_differences_and_vanishes_at_the_truth() {
        let truth = blobs();
        let map = map_of(&truth);
        let guidance = MapGuidance::new(&map, &truth, &GuidanceOptions::new(5.0)).expect("guidance");
        let at_truth = guidance.local(&truth, 0.0);
        assert!(at_truth.loss < 1e-8, "{}", at_truth.loss);
        let mut moved = truth.clone();
        moved.positions[7][0] += 0.8;
        moved.positions[12][2] -= 0.5;
        for blur in [0.0, 2.0] {
            let value = guidance.local(&moved, blur);
            let h = 1e-2f32;
            for (i, k) in [(7, 0), (12, 2), (3, 1)] {
                let mut plus = moved.clone();
                plus.positions[i][k] += h;
                let mut minus = moved.clone();
                minus.positions[i][k] -= h;
                let fd = (guidance.local(&plus, blur).loss - guidance.local(&minus, blur).loss) / (2.0 * f64::from(h));
                let an = value.gradient[i][k];
                assert!(
                    (fd - an).abs() < 1e-4 + 2e-2 * fd.abs(),
                    "blur {blur}, atom {i} axis {k}: fd {fd} analytic {an}"
                );
            }
            assert!(
                value.gradient[7][0] > 0.0,
                "moving the displaced atom back lowers the loss"
            );
        }
    }

    #[test]
    fn the_global_term_pulls_a_shifted_model_back() {
        let truth = blobs();
        let map = map_of(&truth);
        let mut guidance = MapGuidance::new(&map, &truth, &GuidanceOptions::new(5.0)).expect("guidance");
        let shifted: Vec<[f64; 3]> = truth
            .positions
            .iter()
            .map(|p| [f64::from(p[0]) + 3.0, f64::from(p[1]), f64::from(p[2])])
            .collect();
        let value = guidance.global(&shifted);
        let mean_gx = value.gradient.iter().map(|g| g[0]).sum::<f64>() / 30.0;
        assert!(
            mean_gx > 0.0,
            "the gradient points along the shift, so descent moves back: {mean_gx}"
        );
        // A warm-started second call agrees with a cold one.
        let again = guidance.global(&shifted);
        let cold = MapGuidance::new(&map, &truth, &GuidanceOptions::new(5.0))
            .expect("guidance")
            .global(&shifted);
        assert!(
            (again.loss - cold.loss).abs() < 1e-3 * cold.loss.abs().max(1e-3),
            "{} vs {}",
            again.loss,
            cold.loss
        );
    }
}
