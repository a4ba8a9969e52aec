//! A map as a weighted point cloud: the voxels above a level (dust removed) clustered by
//! density-weighted k-means. Guided sampling compares this cloud with a model's atoms (global
//! guidance) — far cheaper than comparing every voxel.

use crate::maps::DensityMap;
use crate::maps::tools::remove_dust;
use crate::numeric::kmeans::{FirstPick, KMeansOptions, kmeans};

/// Cluster centres (Å) with the density mass each one carries (summing to 1).
#[derive(Clone, Debug, PartialEq)]
pub struct PointCloud {
    pub points: Vec<[f64; 3]>,
    pub weights: Vec<f64>,
}

/// The number of points docs/science.md §4 prescribes for a model of `atom_count` heavy atoms:
/// K = 0.25 · N_atoms / voxel volume (Å³), at least 1.
pub fn default_point_count(atom_count: usize, voxel_volume_angstrom3: f64) -> usize {
    ((0.25 * atom_count as f64 / voxel_volume_angstrom3.max(1e-6)).round() as usize).max(1)
}

/// Weighted k-means (k-means++ seeding from `seed`, then Lloyd iterations) of the voxels at or
/// above `level`, after removing blobs smaller than `min_dust_volume_angstrom3`.
pub fn map_point_cloud(
    map: &DensityMap,
    level: f32,
    min_dust_volume_angstrom3: f32,
    k: usize,
    seed: u64,
    iterations: usize,
) -> PointCloud {
    let (points, weights) = voxels_above(map, level, min_dust_volume_angstrom3);
    weighted_kmeans(&points, &weights, k, seed, iterations)
}

/// The positions (Å) and values of the voxels at or above `level` (and above 0) that survive
/// dust removal: what [`map_point_cloud`] clusters.
pub fn voxels_above(map: &DensityMap, level: f32, min_dust_volume_angstrom3: f32) -> (Vec<[f64; 3]>, Vec<f64>) {
    let (clean, _) = remove_dust(map, level, min_dust_volume_angstrom3);
    let [nx, ny, nz] = map.grid.dims;
    let mut points = Vec::new();
    let mut weights = Vec::new();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let v = clean.values[map.grid.index(x, y, z)];
                if v >= level && v > 0.0 {
                    points.push(map.grid.world_from_voxel([x as f32, y as f32, z as f32]).map(f64::from));
                    weights.push(f64::from(v));
                }
            }
        }
    }
    (points, weights)
}

/// Weighted k-means of `points`; empty clusters are dropped from the result.
pub fn weighted_kmeans(points: &[[f64; 3]], weights: &[f64], k: usize, seed: u64, iterations: usize) -> PointCloud {
    let flat: Vec<f64> = points.iter().flatten().copied().collect();
    let options = KMeansOptions {
        seed,
        restarts: 1,
        max_iterations: iterations,
        first_pick: FirstPick::ScaledUniform,
    };
    let clustering = kmeans(&flat, 3, Some(weights), k, options);
    let clusters = clustering.centres.len() / 3;
    let mut mass = vec![0f64; clusters];
    for (&w, &a) in weights.iter().zip(&clustering.labels) {
        mass[a] += w;
    }
    let total: f64 = mass.iter().sum();
    let (points, weights) = clustering
        .centres
        .chunks_exact(3)
        .zip(mass)
        .filter(|(_, m)| *m > 0.0)
        .map(|(c, m)| ([c[0], c[1], c[2]], m / total))
        .unzip();
    PointCloud { points, weights }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::distance2;
    use crate::maps::density::{GaussianAtoms, molmap_grid, simulate};

    #[test]
    fn two_blobs_give_two_centres_with_their_masses() {
        let atoms = GaussianAtoms {
            positions: vec![[0.0, 0.0, 0.0], [20.0, 0.0, 0.0]],
            amplitudes: vec![30.0, 10.0],
            sigmas: vec![2.0, 2.0],
        };
        let grid = molmap_grid(&atoms.positions, 3.0);
        let map = DensityMap {
            values: simulate(&grid, &atoms),
            grid,
            meta: Default::default(),
        };
        let cloud = map_point_cloud(&map, 0.01, 10.0, 2, 7, 50);
        assert_eq!(cloud.points.len(), 2);
        let (heavy, light) = if cloud.weights[0] > cloud.weights[1] {
            (0, 1)
        } else {
            (1, 0)
        };
        assert!(
            distance2(&cloud.points[heavy], &[0.0, 0.0, 0.0]).sqrt() < 0.5,
            "{:?}",
            cloud.points
        );
        assert!(
            distance2(&cloud.points[light], &[20.0, 0.0, 0.0]).sqrt() < 0.5,
            "{:?}",
            cloud.points
        );
        assert!((cloud.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(
            cloud.weights[heavy] > 0.7,
            "the heavier blob carries most mass: {:?}",
            cloud.weights
        );
    }

    #[test]
    fn the_prescribed_point_count_scales_with_atoms_and_voxel_volume() {
        assert_eq!(default_point_count(1656, 1.0), 414);
        assert_eq!(default_point_count(1656, 8.0), 52);
        assert_eq!(default_point_count(1, 1000.0), 1);
    }
}
