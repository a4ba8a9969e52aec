//! A map as a weighted point cloud: the voxels above a level (dust removed) clustered by
//! density-weighted k-means. Guided sampling compares this cloud with a model's atoms (global
//! guidance) — far cheaper than comparing every voxel.

use rayon::prelude::*;

use crate::formats::mrc::DensityMap;
use crate::maptools::remove_dust;
use crate::particle_sim::Rng;

/// Cluster centres (Å) with the density mass each one carries (summing to 1).
#[derive(Clone, Debug, PartialEq)]
pub struct PointCloud {
    pub points: Vec<[f64; 3]>,
    pub weights: Vec<f64>,
}

/// The number of points SCIENCE.md prescribes for a model of `atom_count` heavy atoms:
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
    weighted_kmeans(&points, &weights, k, seed, iterations)
}

fn distance2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

/// Weighted k-means of `points`; empty clusters are dropped from the result.
pub fn weighted_kmeans(points: &[[f64; 3]], weights: &[f64], k: usize, seed: u64, iterations: usize) -> PointCloud {
    if points.is_empty() || k == 0 {
        return PointCloud {
            points: Vec::new(),
            weights: Vec::new(),
        };
    }
    let k = k.min(points.len());
    let mut rng = Rng::new(seed);
    // k-means++: each new centre drawn with probability ∝ weight × squared distance to the nearest.
    let mut centres = vec![points[(rng.uniform() * points.len() as f64) as usize % points.len()]];
    let mut nearest: Vec<f64> = points.iter().map(|p| distance2(p, &centres[0])).collect();
    while centres.len() < k {
        let total: f64 = nearest.iter().zip(weights).map(|(d, w)| d * w).sum();
        if total <= 0.0 {
            break;
        }
        let mut target = rng.uniform() * total;
        let mut chosen = points.len() - 1;
        for (i, (d, w)) in nearest.iter().zip(weights).enumerate() {
            target -= d * w;
            if target <= 0.0 {
                chosen = i;
                break;
            }
        }
        centres.push(points[chosen]);
        let c = centres[centres.len() - 1];
        nearest
            .par_iter_mut()
            .zip(points)
            .for_each(|(d, p)| *d = d.min(distance2(p, &c)));
    }
    let mut assignment = vec![0usize; points.len()];
    for _ in 0..iterations {
        let changed: usize = assignment
            .par_iter_mut()
            .zip(points)
            .map(|(a, p)| {
                let best = (0..centres.len())
                    .min_by(|&i, &j| distance2(p, &centres[i]).total_cmp(&distance2(p, &centres[j])))
                    .unwrap_or(0);
                let moved = usize::from(*a != best);
                *a = best;
                moved
            })
            .sum();
        let mut sums = vec![[0f64; 4]; centres.len()];
        for ((p, &w), &a) in points.iter().zip(weights).zip(&assignment) {
            for k in 0..3 {
                sums[a][k] += w * p[k];
            }
            sums[a][3] += w;
        }
        for (c, s) in centres.iter_mut().zip(&sums) {
            if s[3] > 0.0 {
                *c = [s[0] / s[3], s[1] / s[3], s[2] / s[3]];
            }
        }
        if changed == 0 {
            break;
        }
    }
    let mut mass = vec![0f64; centres.len()];
    for (&w, &a) in weights.iter().zip(&assignment) {
        mass[a] += w;
    }
    let total: f64 = mass.iter().sum();
    let (points, weights) = centres
        .into_iter()
        .zip(mass)
        .filter(|(_, m)| *m > 0.0)
        .map(|(c, m)| (c, m / total))
        .unzip();
    PointCloud { points, weights }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::{GaussianAtoms, molmap_grid, simulate};

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
