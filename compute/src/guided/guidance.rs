//! The map terms that steer guided sampling (docs/science.md §4), each with its gradient with
//! respect to the atom positions:
//! - global: the debiased Sinkhorn divergence (reach 10 Å) between the heavy atoms (weighted by
//!   atomic number) and a weighted k-means point cloud of the thresholded, de-dusted map;
//! - local: the mean squared difference between the z-scored map and the z-scored density
//!   simulated from the atoms (the density kernel and its analytic gradient).
//!
//! Both see only the model's zone ([`super::zone`]): the cloud is made of the voxels of the zone
//! (a tighter one for an automatic zone), the z-scores, the L2 and the correlation are taken over
//! them.

use super::GuidedError;
use crate::guided::pointcloud::{PointCloud, default_point_count, voxels_above, weighted_kmeans};
use crate::guided::sinkhorn::{SinkhornOptions, SinkhornWarmStart, sinkhorn_divergence_warm};
use crate::guided::zone::{ZoneOptions, mask_on_grid, voxels_near, z_scored_in, zoned};
use crate::maps::DensityMap;
use crate::maps::density::{GaussianAtoms, simulate, simulate_backward};
use crate::maps::scores::{VOLUME_PER_HEAVY_ATOM_ANGSTROM3, level_enclosing_volume_of};
use crate::maps::tools::{gaussian_blur, low_pass};

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
    /// Which voxels guidance sees (reports written before zones existed: the whole map).
    #[serde(default)]
    pub zone: ZoneOptions,
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
            zone: ZoneOptions::around_model(resolution_angstrom),
        }
    }
}

/// A map prepared for guidance, with the Sinkhorn solver's warm start.
pub struct MapGuidance {
    pub map: DensityMap,
    /// The map's point cloud; clustered from `cloud_voxels` when global guidance first needs it
    /// after the zone moved (k-means of a fine map's zone is the costliest part of following).
    cloud: PointCloud,
    cloud_voxels: Option<(Vec<[f64; 3]>, Vec<f64>)>,
    /// The level the cloud was thresholded at.
    pub level: f32,
    /// The voxels guidance sees (None: all of them), those the cloud is drawn from, and how
    /// they are chosen.
    zone: Option<Vec<bool>>,
    cloud_zone: Option<Vec<bool>>,
    zone_options: ZoneOptions,
    cloud_setup: CloudSetup,
    z_map: Vec<f32>,
    sinkhorn: SinkhornOptions,
    sinkhorn_atoms: Vec<usize>,
    sinkhorn_weights: Vec<f64>,
    warm: SinkhornWarmStart,
}

/// What the point cloud is made from, kept to remake it when the zone moves.
struct CloudSetup {
    /// The model's expected volume (Å³): the cloud takes the zone's densest voxels of this volume.
    expected_volume: f32,
    dust: f32,
    points: usize,
    seed: u64,
}

/// A loss and its gradient for every atom.
pub struct TermValue {
    pub loss: f64,
    pub gradient: Vec<[f64; 3]>,
}

fn positions_of(atoms: &GaussianAtoms) -> Vec<[f64; 3]> {
    atoms.positions.iter().map(|p| p.map(f64::from)).collect()
}

impl MapGuidance {
    /// Prepares `map` for guiding `atoms` (their amplitudes set the Sinkhorn weights; the
    /// automatic zone starts around their positions).
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
        // docs/science.md §4's K = 0.25·N/voxel volume, but at least one point per 20 heavy atoms: the
        // large voxels of coarse maps (8 Å: 2.7 Å) would otherwise leave a handful of points and
        // a blurry target (AdK at 8 Å: 22 points, 2.75 Å Cα RMSD; 90 points, 1.29 Å).
        let points = options.cloud_points.unwrap_or_else(|| {
            default_point_count(atoms.len(), voxel_volume).max(atoms.len().div_ceil(MIN_ATOMS_PER_POINT))
        });
        let cloud_setup = CloudSetup {
            expected_volume,
            // Blobs smaller than a resolution-sized cube are noise, not protein.
            dust: options.resolution_angstrom.powi(3).min(0.05 * expected_volume),
            points,
            seed: options.seed,
        };
        let (zone, cloud_zone) = match &options.zone {
            ZoneOptions::WholeMap => (None, None),
            ZoneOptions::Model {
                radius_angstrom,
                cloud_radius_angstrom,
                ..
            } => {
                let at = positions_of(atoms);
                (
                    Some(voxels_near(&map.grid, &at, *radius_angstrom)),
                    Some(voxels_near(&map.grid, &at, *cloud_radius_angstrom)),
                )
            }
            ZoneOptions::Mask { level, mask } => {
                let mask = mask
                    .as_ref()
                    .ok_or_else(|| GuidedError::Input("the zone is a mask, but no mask was given".into()))?;
                let inside = mask_on_grid(mask, &map.grid, *level);
                if !inside.contains(&true) {
                    return Err(GuidedError::EmptyMask { level: *level });
                }
                (Some(inside.clone()), Some(inside))
            }
        };
        let stride = atoms.len().div_ceil(options.max_sinkhorn_atoms.max(1)).max(1);
        let sinkhorn_atoms: Vec<usize> = (0..atoms.len()).step_by(stride).collect();
        let sinkhorn_weights = sinkhorn_atoms.iter().map(|&i| f64::from(atoms.amplitudes[i])).collect();
        let sinkhorn = SinkhornOptions {
            blur_angstrom: options.blur_angstrom,
            reach_angstrom: Some(options.reach_angstrom),
            scaling: 0.5,
            final_iterations: 50,
            tolerance: 1e-4,
        };
        let mut guidance = Self {
            map,
            cloud: PointCloud {
                points: Vec::new(),
                weights: Vec::new(),
            },
            cloud_voxels: None,
            level: 0.0,
            zone,
            cloud_zone,
            zone_options: options.zone.clone(),
            cloud_setup,
            z_map: Vec::new(),
            sinkhorn,
            sinkhorn_atoms,
            sinkhorn_weights,
            warm: SinkhornWarmStart::default(),
        };
        let (level, voxels) = guidance.zone_cloud_voxels();
        if voxels.0.is_empty() {
            return Err(GuidedError::NoDensity { level });
        }
        guidance.adopt(level, voxels);
        Ok(guidance)
    }

    /// The level enclosing the model's volume among the cloud zone's voxels, and the voxels of
    /// density above it (what the point cloud clusters).
    fn zone_cloud_voxels(&self) -> (f32, (Vec<[f64; 3]>, Vec<f64>)) {
        let setup = &self.cloud_setup;
        let voxel_volume: f32 = self.map.grid.voxel_size_angstrom.iter().product();
        let level = match &self.cloud_zone {
            None => level_enclosing_volume_of(&self.map.values, voxel_volume, setup.expected_volume),
            Some(zone) => {
                let inside: Vec<f32> = self
                    .map
                    .values
                    .iter()
                    .zip(zone)
                    .filter(|(_, z)| **z)
                    .map(|(v, _)| *v)
                    .collect();
                level_enclosing_volume_of(&inside, voxel_volume, setup.expected_volume)
            }
        };
        let voxels = match &self.cloud_zone {
            None => voxels_above(&self.map, level, setup.dust),
            Some(zone) => voxels_above(&zoned(&self.map, zone), level, setup.dust),
        };
        (level, voxels)
    }

    fn adopt(&mut self, level: f32, voxels: (Vec<[f64; 3]>, Vec<f64>)) {
        self.level = level;
        self.cloud_voxels = Some(voxels);
        self.z_map = z_scored_in(&self.map.values, self.zone.as_deref()).0;
        self.warm = SinkhornWarmStart::default();
    }

    /// Moves the automatic zone to `positions` (the current estimate) and remakes the cloud and
    /// the z-scored map inside it; a fixed zone (a mask, the whole map) stays. A zone that would
    /// hold no density above its level keeps the previous one.
    pub fn follow(&mut self, positions: &[[f64; 3]]) {
        let ZoneOptions::Model {
            radius_angstrom,
            cloud_radius_angstrom,
            ..
        } = self.zone_options
        else {
            return;
        };
        let previous_cloud_zone =
            self.cloud_zone
                .replace(voxels_near(&self.map.grid, positions, cloud_radius_angstrom));
        let (level, voxels) = self.zone_cloud_voxels();
        if voxels.0.is_empty() {
            self.cloud_zone = previous_cloud_zone;
            return;
        }
        self.zone = Some(voxels_near(&self.map.grid, positions, radius_angstrom));
        self.adopt(level, voxels);
    }

    /// The map's point cloud in the current zone (clustered now if the zone moved since).
    pub fn cloud(&mut self) -> &PointCloud {
        if let Some((points, weights)) = self.cloud_voxels.take() {
            let setup = &self.cloud_setup;
            self.cloud = weighted_kmeans(&points, &weights, setup.points, setup.seed, 50);
        }
        &self.cloud
    }

    /// Voxels in the zone now (every voxel without one).
    pub fn zone_voxels(&self) -> usize {
        self.zone
            .as_ref()
            .map_or(self.map.values.len(), |z| z.iter().filter(|v| **v).count())
    }

    /// Whether `voxel` (an index into the map's values) is in the zone now.
    pub fn in_zone(&self, voxel: usize) -> bool {
        self.zone.as_ref().is_none_or(|z| z[voxel])
    }

    /// How often the zone follows the estimate, in guided steps (None: it is fixed).
    pub fn zone_follows_every(&self) -> Option<usize> {
        self.zone_options.follows_every()
    }

    /// Atoms used by the global term.
    pub fn sinkhorn_atom_count(&self) -> usize {
        self.sinkhorn_atoms.len()
    }

    /// Sinkhorn divergence between the atoms and the map's cloud.
    pub fn global(&mut self, positions: &[[f64; 3]]) -> TermValue {
        let x: Vec<[f64; 3]> = self.sinkhorn_atoms.iter().map(|&i| positions[i]).collect();
        self.cloud();
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

    /// Mean squared difference of the z-scored map and the z-scored simulated density over the
    /// zone, both blurred by a further Gaussian of `blur_angstrom` (coarse to fine: a wider
    /// basin while the sample is still noisy).
    pub fn local(&self, atoms: &GaussianAtoms, blur_angstrom: f64) -> TermValue {
        let grid = &self.map.grid;
        let zone = self.zone.as_deref();
        let blurred_map;
        let (z_map, atoms) = if blur_angstrom > 0.05 * f64::from(grid.voxel_size_angstrom[0]) {
            blurred_map = z_scored_in(&gaussian_blur(&self.map, blur_angstrom), zone).0;
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
        let (z_sim, sd) = z_scored_in(&simulated, zone);
        let inside = |i: usize| zone.is_none_or(|z| z[i]);
        let n = self.zone_voxels().max(1) as f64;
        // Outside the zone both z-scores are 0, so the residual is too.
        let residual: Vec<f64> = z_sim
            .iter()
            .zip(z_map)
            .map(|(&a, &b)| f64::from(a) - f64::from(b))
            .collect();
        let loss = residual.iter().map(|r| r * r).sum::<f64>() / n;
        // ∂L/∂sᵥ through the z-score: (2/(n·sd)) (rᵥ − mean r − ẑᵥ · mean(r ẑ)) in the zone.
        let mean_r = residual.iter().sum::<f64>() / n;
        let mean_rz = residual.iter().zip(&z_sim).map(|(r, &z)| r * f64::from(z)).sum::<f64>() / n;
        let scale = 2.0 / (n * sd);
        let dloss: Vec<f32> = residual
            .iter()
            .zip(&z_sim)
            .enumerate()
            .map(|(i, (r, &z))| {
                if inside(i) {
                    (scale * (r - mean_r - f64::from(z) * mean_rz)) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let grads = simulate_backward(grid, atoms, &dloss);
        // (∂/∂position does not depend on the width change, so these are the atoms' gradients.)
        TermValue {
            loss,
            gradient: grads.positions.iter().map(|g| g.map(f64::from)).collect(),
        }
    }

    /// Correlation about the mean between the map and the atoms' simulated density (= 1 − L/2),
    /// inside the zone: the automatic one around these atoms (a model's own zone, as CC_mask
    /// takes it), else the fixed one.
    pub fn correlation(&self, atoms: &GaussianAtoms) -> f64 {
        let simulated = simulate(&self.map.grid, atoms);
        let own;
        let zone = match &self.zone_options {
            ZoneOptions::Model { radius_angstrom, .. } => {
                own = voxels_near(&self.map.grid, &positions_of(atoms), *radius_angstrom);
                Some(own.as_slice())
            }
            _ => self.zone.as_deref(),
        };
        crate::maps::scores::correlation(&self.map.values, &simulated, true, zone)
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
