//! The model's own density (docs/science.md §5): real maps hold more than the model (neighbouring
//! subunits, a micelle), and guidance that sees the whole box pulls atoms into that foreign
//! density. A zone restricts what guidance sees: the map's point cloud, its z-scoring, the density
//! L2 and the correlation are all computed over the zone's voxels. The zone is either the voxels
//! near the model (recomputed around the current estimate every few guided steps, so that large
//! motions stay reachable), a user's mask, or the whole box.

use std::sync::Arc;

use crate::maps::scores::interpolate;
use crate::maps::{DensityMap, MapGrid, Statistics};

pub use crate::maps::local::voxels_near;

/// The density kernel's cutoff, 5σ, is 1.125 × resolution (σ = 0.225 × resolution); an atom's
/// density has fallen to 1 % of its peak at 3σ, 0.675 × resolution.
///
/// The automatic zone of the density L2, the z-scores and the correlation reaches a little past
/// the kernel's cutoff, so every voxel an atom's density touches, and the density just beyond the
/// model that tells an atom where to go, are in view.
pub const ZONE_RADIUS_PER_RESOLUTION: f64 = crate::maps::local::MODEL_ZONE_RADIUS_PER_RESOLUTION;

/// The point cloud of global guidance is drawn from a tighter zone, a little past the kernel's 3σ:
/// the density the model itself could hold. A cloud drawn from a wider zone takes in a touching
/// neighbour's surface, and a zone that follows the model then follows it into the neighbour.
/// Measured with `scripts/guided_neighbour.sh` (AdK closed into a 6 Å gemmi map of the open state
/// with a second copy beside its LID domain, SNR 1; 200 steps, one sample). With one radius for
/// everything, copies 6 Å apart: Cα RMSD 1.82 Å (the LID 1.1 Å off) at 0.75 × resolution, 1.84 Å
/// at 1.0 ×, 2.80 Å at 1.25 × (the LID 3 Å inside the neighbour, pulled there in the global
/// phase); 5 Å apart: 1.81 Å at 0.75 ×, 2.17 Å at 1.0 ×. With these defaults (1.25 ×, cloud
/// 0.75 ×): 1.79 Å (6 Å apart), 1.86 Å (5 Å apart), 1.77 Å without the neighbour; the whole box
/// gives 7.04, 8.34 and 1.86 Å. The price is reach in short runs: 60 steps from the closed state
/// as its file places it into cryoforge's 5 Å map of the open one reach 4.62 Å against the whole
/// box's 2.41 Å (best of two samples); 200 steps from it placed by `fit rigid`, 1.83 against
/// 1.65 Å.
pub const CLOUD_RADIUS_PER_RESOLUTION: f64 = 0.75;

/// The automatic zone is recomputed around the current estimate every this many guided steps.
pub const ZONE_EVERY_STEPS: usize = 5;

/// Which voxels of the map guidance sees.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneOptions {
    /// Every voxel of the box (a map that holds the model alone).
    WholeMap,
    /// Voxels within `radius_angstrom` of an atom (the point cloud: within
    /// `cloud_radius_angstrom`): of the start model first, then of the current denoised estimate
    /// every `every_steps` guided steps.
    Model {
        radius_angstrom: f64,
        cloud_radius_angstrom: f64,
        every_steps: usize,
    },
    /// A user's mask: the voxels where it is at least `level` (the mask is interpolated at the
    /// map's voxels when its grid differs). The mask itself is not serialised.
    Mask {
        level: f32,
        #[serde(skip)]
        mask: Option<Arc<DensityMap>>,
    },
}

impl Default for ZoneOptions {
    /// What a report written before zones existed meant: the whole box.
    fn default() -> Self {
        Self::WholeMap
    }
}

impl ZoneOptions {
    /// The automatic zone for a map of `resolution_angstrom`.
    pub fn around_model(resolution_angstrom: f32) -> Self {
        let (radius_angstrom, cloud_radius_angstrom) = default_zone_radii(resolution_angstrom);
        Self::Model {
            radius_angstrom,
            cloud_radius_angstrom,
            every_steps: ZONE_EVERY_STEPS,
        }
    }

    /// A user's mask, thresholded at `level`.
    pub fn mask(mask: Arc<DensityMap>, level: f32) -> Self {
        Self::Mask {
            level,
            mask: Some(mask),
        }
    }

    /// How often the zone follows the model (None: it is fixed).
    pub fn follows_every(&self) -> Option<usize> {
        match self {
            Self::Model { every_steps, .. } if *every_steps > 0 => Some(*every_steps),
            _ => None,
        }
    }

    /// One line for reports and the UI.
    pub fn describe(&self) -> String {
        match self {
            Self::WholeMap => "the whole map".into(),
            Self::Model {
                radius_angstrom,
                cloud_radius_angstrom,
                every_steps,
            } => {
                let follows = if *every_steps == 0 {
                    "around the start".to_owned()
                } else {
                    format!("following it every {every_steps} guided steps")
                };
                format!(
                    "within {radius_angstrom:.1} Å of the model (its point cloud within {cloud_radius_angstrom:.1} Å), \
                     {follows}"
                )
            }
            Self::Mask { level, .. } => format!("the mask at level {level}"),
        }
    }
}

/// The automatic zone's radius and its point cloud's (Å) for a map of `resolution_angstrom`.
pub fn default_zone_radii(resolution_angstrom: f32) -> (f64, f64) {
    let resolution = f64::from(resolution_angstrom);
    (
        ZONE_RADIUS_PER_RESOLUTION * resolution,
        CLOUD_RADIUS_PER_RESOLUTION * resolution,
    )
}

/// The voxels of `grid` where `mask` is at least `level`: read directly when the mask shares the
/// grid, else interpolated at each voxel's position (outside the mask's box: not in the zone).
pub fn mask_on_grid(mask: &DensityMap, grid: &MapGrid, level: f32) -> Vec<bool> {
    let same = mask.grid.dims == grid.dims
        && mask.grid.voxel_size_angstrom == grid.voxel_size_angstrom
        && mask.grid.first_voxel_angstrom() == grid.first_voxel_angstrom();
    if same {
        return mask.values.iter().map(|&v| v >= level).collect();
    }
    let [nx, ny, nz] = grid.dims;
    let mut inside = Vec::with_capacity(grid.voxel_count());
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let p = grid.world_from_voxel([x as f32, y as f32, z as f32]);
                inside.push(interpolate(mask, p).is_some_and(|v| v >= level));
            }
        }
    }
    inside
}

/// (value − mean) / σ over the zone's voxels (every voxel without a zone), 0 outside it; and σ.
pub fn z_scored_in(values: &[f32], zone: Option<&[bool]>) -> (Vec<f32>, f64) {
    let stats = match zone {
        None => Statistics::of(values),
        Some(zone) => {
            let inside: Vec<f32> = values.iter().zip(zone).filter(|(_, z)| **z).map(|(v, _)| *v).collect();
            Statistics::of(&inside)
        }
    };
    let (mean, sd) = (f64::from(stats.mean), f64::from(stats.rms).max(1e-30));
    let z = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if zone.is_none_or(|zone| zone[i]) {
                ((f64::from(v) - mean) / sd) as f32
            } else {
                0.0
            }
        })
        .collect();
    (z, sd)
}

/// The map with every voxel outside the zone set to zero.
pub fn zoned(map: &DensityMap, zone: &[bool]) -> DensityMap {
    let mut out = map.clone();
    for (v, &inside) in out.values.iter_mut().zip(zone) {
        if !inside {
            *v = 0.0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::distance2;
    use crate::guided::GuidedError;
    use crate::guided::guidance::{GuidanceOptions, MapGuidance};
    use crate::guided::pointcloud::PointCloud;
    use crate::maps::density::{CUTOFF_SIGMAS, GaussianAtoms, SIGMA_PER_RESOLUTION, molmap_grid, simulate};

    fn grid() -> MapGrid {
        MapGrid::new([20, 20, 20], [1.0; 3], [-10.0, -10.0, -10.0])
    }

    #[test]
    fn the_zone_is_the_ball_around_the_atoms() {
        let g = grid();
        let zone = voxels_near(&g, &[[0.0, 0.0, 0.0]], 3.0);
        let count = zone.iter().filter(|v| **v).count();
        // Integer points in a ball of radius 3: 123.
        assert_eq!(count, 123);
        assert!(zone[g.index(13, 10, 10)] && !zone[g.index(14, 10, 10)] && !zone[g.index(12, 12, 12)]);
        // An atom outside the box marks only the voxels it reaches.
        let edge = voxels_near(&g, &[[-12.0, 0.0, 0.0]], 3.0);
        assert_eq!(
            edge.iter().filter(|v| **v).count(),
            22,
            "the caps at x = -10 (radius √5) and -9 (one voxel)"
        );
        assert!(voxels_near(&g, &[[f64::NAN, 0.0, 0.0]], 3.0).iter().all(|v| !v));
    }

    #[test]
    fn a_mask_on_another_grid_is_interpolated_onto_the_map() {
        let g = grid();
        let mut mask_grid = MapGrid::new([10, 10, 10], [2.0; 3], [-10.0, -10.0, -10.0]);
        mask_grid.cell_sampling = [10; 3];
        let mut values = vec![0f32; 1000];
        // The mask is 1 for x ≥ 0 (mask voxels 5.. along x).
        for z in 0..10 {
            for y in 0..10 {
                for x in 5..10 {
                    values[mask_grid.index(x, y, z)] = 1.0;
                }
            }
        }
        let mask = DensityMap {
            grid: mask_grid,
            values,
            meta: Default::default(),
        };
        let zone = mask_on_grid(&mask, &g, 0.75);
        // Map voxel x = 9 sits at -1 Å (mask 0.5 between its voxels at -2 and 0 Å), x = 10 at
        // 0 Å (1); x = 19 (9 Å) lies beyond the mask's last voxel (8 Å) and is outside.
        assert!(!zone[g.index(9, 3, 3)] && zone[g.index(10, 3, 3)] && zone[g.index(18, 3, 3)]);
        assert!(!zone[g.index(19, 3, 3)]);
        let same = mask_on_grid(&mask, &mask.grid, 0.5);
        assert_eq!(same.iter().filter(|v| **v).count(), 500);
    }

    #[test]
    fn z_scores_use_the_zone_only() {
        let values = [1.0, 3.0, 100.0, -50.0];
        let zone = [true, true, false, false];
        let (z, sd) = z_scored_in(&values, Some(&zone));
        assert_eq!(z, vec![-1.0, 1.0, 0.0, 0.0]);
        assert!((sd - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_default_zone_passes_the_kernel_and_its_cloud_the_kernels_3_sigma() {
        let (radius_angstrom, cloud_radius_angstrom) = default_zone_radii(6.0);
        let sigma = f64::from(SIGMA_PER_RESOLUTION) * 6.0;
        assert!(radius_angstrom > f64::from(CUTOFF_SIGMAS) * sigma, "{radius_angstrom}");
        assert!((cloud_radius_angstrom - 4.5).abs() < 1e-9 && cloud_radius_angstrom > 3.0 * sigma);
    }

    /// A globule of 150 carbon-like atoms, uniform in a ball of 8.5 Å (protein's 17 Å³ per heavy
    /// atom) centred at x = `x`; the same atoms for every `x`.
    fn globule(x: f32) -> GaussianAtoms {
        let mut rng = crate::numeric::rng::Rng::new(3);
        let mut positions = Vec::new();
        while positions.len() < 150 {
            let p: [f64; 3] = std::array::from_fn(|_| 17.0 * rng.uniform() - 8.5);
            if p.iter().map(|v| v * v).sum::<f64>() <= 8.5 * 8.5 {
                positions.push([x + p[0] as f32, p[1] as f32, p[2] as f32]);
            }
        }
        GaussianAtoms {
            positions,
            amplitudes: vec![6.0; 150],
            sigmas: vec![SIGMA_PER_RESOLUTION * 5.0; 150],
        }
    }

    /// The 5 Å map of every atom in `parts`, on one molmap grid around all of them.
    fn map_of(parts: &[&GaussianAtoms]) -> DensityMap {
        let all = GaussianAtoms {
            positions: parts.iter().flat_map(|p| p.positions.clone()).collect(),
            amplitudes: parts.iter().flat_map(|p| p.amplitudes.clone()).collect(),
            sigmas: parts.iter().flat_map(|p| p.sigmas.clone()).collect(),
        };
        let grid = molmap_grid(&all.positions, 5.0);
        DensityMap {
            values: simulate(&grid, &all),
            grid,
            meta: Default::default(),
        }
    }

    fn guidance(map: &DensityMap, model: &GaussianAtoms, zone: ZoneOptions) -> MapGuidance {
        let mut options = GuidanceOptions::new(5.0);
        options.zone = zone;
        MapGuidance::new(map, model, &options).expect("guidance")
    }

    /// The cloud's mass that lies nearer to `other` than to `model`.
    fn mass_nearer(cloud: &PointCloud, model: &GaussianAtoms, other: &GaussianAtoms) -> f64 {
        let nearest = |p: &[f64; 3], atoms: &GaussianAtoms| {
            atoms
                .positions
                .iter()
                .map(|q| distance2(p, &q.map(f64::from)))
                .fold(f64::INFINITY, f64::min)
        };
        cloud
            .points
            .iter()
            .zip(&cloud.weights)
            .filter(|(p, _)| nearest(p, other) < nearest(p, model))
            .map(|(_, w)| w)
            .sum()
    }

    fn positions(atoms: &GaussianAtoms) -> Vec<[f64; 3]> {
        atoms.positions.iter().map(|p| p.map(f64::from)).collect()
    }

    // A neighbour 27 Å along x: its nearest atoms are about 10 Å from the model's, beyond the
    // 6.25 Å zone of a 5 Å map but within the Sinkhorn reach (10 Å).
    const NEIGHBOUR_X: f32 = 27.0;

    #[test]
    fn the_zone_keeps_a_neighbours_density_out_of_the_cloud_and_the_scores() {
        let (model, neighbour) = (globule(0.0), globule(NEIGHBOUR_X));
        let map = map_of(&[&model, &neighbour]);
        let mut whole = guidance(&map, &model, ZoneOptions::WholeMap);
        let mut zoned = guidance(&map, &model, ZoneOptions::around_model(5.0));
        let in_whole = mass_nearer(whole.cloud(), &model, &neighbour);
        let in_zoned = mass_nearer(zoned.cloud(), &model, &neighbour);
        assert!(in_whole > 0.3, "the whole map's cloud covers the neighbour: {in_whole}");
        assert_eq!(in_zoned, 0.0, "the zone's cloud holds none of it");
        assert!(zoned.zone_voxels() < whole.zone_voxels() / 2);
        // No voxel at the neighbour's atoms is in the zone.
        for p in &neighbour.positions {
            let v = nearest_voxel(&map.grid, *p);
            assert!(!zoned.in_zone(v), "voxel at {p:?} is in the zone");
        }
        // The model at its true place: the zoned density L2 and correlation see a perfect fit;
        // over the whole box the neighbour's unexplained density spoils both.
        let (l2_whole, l2_zoned) = (whole.local(&model, 0.0).loss, zoned.local(&model, 0.0).loss);
        assert!(
            l2_zoned < 1e-3 && l2_whole > 0.5,
            "L2 zoned {l2_zoned}, whole {l2_whole}"
        );
        let (cc_whole, cc_zoned) = (whole.correlation(&model), zoned.correlation(&model));
        assert!(
            cc_zoned > 0.999 && cc_whole < 0.8,
            "cc zoned {cc_zoned}, whole {cc_whole}"
        );
    }

    fn nearest_voxel(grid: &MapGrid, p: [f32; 3]) -> usize {
        let first = grid.first_voxel_angstrom();
        let v: [usize; 3] = std::array::from_fn(|a| ((p[a] - first[a]) / grid.voxel_size_angstrom[a]).round() as usize);
        grid.index(v[0], v[1], v[2])
    }

    #[test]
    fn density_beside_the_model_does_not_pull_its_atoms() {
        // The neighbour 10 Å away, and touching (its nearest atoms about 5 Å from the model's).
        for neighbour_x in [NEIGHBOUR_X, 22.0] {
            let (model, neighbour) = (globule(0.0), globule(neighbour_x));
            let map = map_of(&[&model, &neighbour]);
            let at_truth = positions(&model);
            // Descent moves atoms along −∇: a negative mean x-gradient pulls them towards the
            // neighbour (at +x).
            let mean_x = |g: &[[f64; 3]]| g.iter().map(|g| g[0]).sum::<f64>() / g.len() as f64;
            let rms = |g: &[[f64; 3]]| (g.iter().flatten().map(|v| v * v).sum::<f64>() / g.len() as f64).sqrt();
            let mut whole = guidance(&map, &model, ZoneOptions::WholeMap);
            let mut zoned = guidance(&map, &model, ZoneOptions::around_model(5.0));
            let pull_whole = mean_x(&whole.global(&at_truth).gradient);
            let pull_zoned = mean_x(&zoned.global(&at_truth).gradient);
            let local_whole = rms(&whole.local(&model, 0.0).gradient);
            let local_zoned = rms(&zoned.local(&model, 0.0).gradient);
            eprintln!(
                "neighbour at x = {neighbour_x}: global pull whole {pull_whole:.3e}, zoned {pull_zoned:.3e}; \
                 local gradient (rms) whole {local_whole:.3e}, zoned {local_zoned:.3e}"
            );
            assert!(pull_whole < 0.0, "over the whole box the neighbour pulls: {pull_whole}");
            assert!(
                pull_zoned.abs() < 0.05 * pull_whole.abs(),
                "the zone's cloud does not: {pull_zoned} vs {pull_whole}"
            );
            if neighbour_x == NEIGHBOUR_X {
                // At its true place the model is at rest in the zone; over the whole box the
                // neighbour's density, z-scored with the model's, moves it. (Touching, the
                // neighbour's surface lies inside the local term's wider zone.)
                assert!(
                    local_zoned < 1e-3 * local_whole,
                    "local gradient in the zone {local_zoned}, over the whole box {local_whole}"
                );
            }
        }
    }

    #[test]
    fn the_zone_follows_the_model_and_a_mask_stays() {
        let (model, neighbour) = (globule(0.0), globule(NEIGHBOUR_X));
        let map = map_of(&[&model, &neighbour]);
        let mut zoned = guidance(&map, &model, ZoneOptions::around_model(5.0));
        zoned.follow(&positions(&neighbour));
        assert!(
            mass_nearer(zoned.cloud(), &neighbour, &model) == 0.0,
            "moved onto the neighbour, the zone holds its density only"
        );
        let before = zoned.zone_voxels();
        zoned.follow(&[[500.0, 500.0, 500.0]]);
        assert_eq!(zoned.zone_voxels(), before, "a zone with no density keeps the last one");

        // A mask of the half-space x < 10 Å (between the copies) on a coarser grid of its own.
        let coarse = MapGrid::new([20, 20, 20], [3.0; 3], [-20.0, -20.0, -20.0]);
        let values = (0..coarse.voxel_count())
            .map(|i| f32::from(coarse.world_from_voxel([(i % 20) as f32, 0.0, 0.0])[0] < 10.0))
            .collect();
        let mask = Arc::new(DensityMap {
            grid: coarse,
            values,
            meta: Default::default(),
        });
        let mut masked = guidance(&map, &model, ZoneOptions::mask(mask.clone(), 0.5));
        assert_eq!(mass_nearer(masked.cloud(), &model, &neighbour), 0.0);
        let voxels = masked.zone_voxels();
        masked.follow(&positions(&neighbour));
        assert_eq!(masked.zone_voxels(), voxels, "a mask does not move");
        let mut options = GuidanceOptions::new(5.0);
        options.zone = ZoneOptions::mask(mask, 2.0);
        assert!(matches!(
            MapGuidance::new(&map, &model, &options),
            Err(GuidedError::EmptyMask { .. })
        ));
    }
}
