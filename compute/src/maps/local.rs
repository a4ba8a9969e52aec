//! Map values near atoms: the voxels within a radius of a set of positions (the guided fit's
//! zone), and the per-residue correlation of a map with a model's density (local fit quality,
//! as real-space refinement programs report it per residue).

use super::{DensityMap, MapGrid};
use crate::maps::density::{GaussianAtoms, simulate};
use crate::maps::scores::correlation;

/// The model's own zone of a map reaches this × the resolution from its atoms: a little past the
/// density kernel's 5σ cutoff (1.125 × resolution), so every voxel an atom's density touches is in
/// it. The guided fit's automatic zone and the zone scores of `score` use it.
pub const MODEL_ZONE_RADIUS_PER_RESOLUTION: f64 = 1.25;

/// Calls `visit` with the index of every voxel of `grid` within `radius_angstrom` of a position
/// (a voxel near several positions is visited once per position).
pub fn visit_voxels_near(grid: &MapGrid, positions: &[[f64; 3]], radius_angstrom: f64, visit: &mut dyn FnMut(usize)) {
    let first = grid.first_voxel_angstrom().map(f64::from);
    let h = grid.voxel_size_angstrom.map(f64::from);
    let r2 = radius_angstrom * radius_angstrom;
    for p in positions {
        if p.iter().any(|v| !v.is_finite()) {
            continue;
        }
        // The voxel range along each axis within the radius; an atom beyond the box reaches none.
        let range = |a: usize| {
            let lo = ((p[a] - radius_angstrom - first[a]) / h[a]).ceil().max(0.0);
            let hi = ((p[a] + radius_angstrom - first[a]) / h[a])
                .floor()
                .min(grid.dims[a] as f64 - 1.0);
            (lo <= hi).then_some(lo as usize..=hi as usize)
        };
        let (Some(xs), Some(ys), Some(zs)) = (range(0), range(1), range(2)) else {
            continue;
        };
        for z in zs {
            let dz = first[2] + z as f64 * h[2] - p[2];
            for y in ys.clone() {
                let dy = first[1] + y as f64 * h[1] - p[1];
                let rest = r2 - dz * dz - dy * dy;
                if rest < 0.0 {
                    continue;
                }
                for x in xs.clone() {
                    let dx = first[0] + x as f64 * h[0] - p[0];
                    if dx * dx <= rest {
                        visit(grid.index(x, y, z));
                    }
                }
            }
        }
    }
}

/// The voxels of `grid` within `radius_angstrom` of any of `positions`.
pub fn voxels_near(grid: &MapGrid, positions: &[[f64; 3]], radius_angstrom: f64) -> Vec<bool> {
    let mut inside = vec![false; grid.voxel_count()];
    visit_voxels_near(grid, positions, radius_angstrom, &mut |i| inside[i] = true);
    inside
}

/// The radius around a residue's atoms its local correlation is taken over: half the
/// resolution, within 1.5–4 Å.
pub fn residue_radius(resolution_angstrom: f32) -> f64 {
    (0.5 * f64::from(resolution_angstrom)).clamp(1.5, 4.0)
}

/// For each residue (a list of atom indices), the correlation about the mean of `map` with the
/// density of all of `atoms` over the voxels within `radius_angstrom` of the residue's atoms; 0
/// for a residue outside the map.
pub fn residue_correlations(
    map: &DensityMap,
    atoms: &GaussianAtoms,
    residues: &[Vec<usize>],
    radius_angstrom: f64,
) -> Vec<f64> {
    let simulated = simulate(&map.grid, atoms);
    let mut mark = vec![false; map.grid.voxel_count()];
    residues
        .iter()
        .map(|residue| {
            let at: Vec<[f64; 3]> = residue.iter().map(|&i| atoms.positions[i].map(f64::from)).collect();
            let mut voxels = Vec::new();
            visit_voxels_near(&map.grid, &at, radius_angstrom, &mut |v| {
                if !mark[v] {
                    mark[v] = true;
                    voxels.push(v);
                }
            });
            let a: Vec<f32> = voxels.iter().map(|&v| map.values[v]).collect();
            let b: Vec<f32> = voxels.iter().map(|&v| simulated[v]).collect();
            for &v in &voxels {
                mark[v] = false;
            }
            if voxels.len() < 4 {
                0.0
            } else {
                correlation(&a, &b, true, None)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::MapMeta;

    fn atoms_at(positions: &[[f32; 3]], resolution: f32) -> GaussianAtoms {
        GaussianAtoms {
            positions: positions.to_vec(),
            amplitudes: vec![1.0; positions.len()],
            sigmas: vec![0.225 * resolution; positions.len()],
        }
    }

    #[test]
    fn a_residue_with_its_density_correlates_and_one_without_does_not() {
        let grid = MapGrid::new([40, 40, 40], [1.0; 3], [-20.0; 3]);
        let placed = [[-6.0, 0.0, 0.0], [-4.5, 0.5, 0.0], [6.0, 0.0, 0.0], [7.5, 0.5, 0.0]];
        // The map holds the first residue where the model has it, the second residue 3 Å away.
        let truth = [placed[0], placed[1], [6.0, 3.0, 0.0], [7.5, 3.5, 0.0]];
        let map = DensityMap {
            values: simulate(&grid, &atoms_at(&truth, 4.0)),
            grid,
            meta: MapMeta::default(),
        };
        let cc = residue_correlations(&map, &atoms_at(&placed, 4.0), &[vec![0, 1], vec![2, 3]], 2.0);
        assert!(cc[0] > 0.95, "{cc:?}");
        assert!(cc[1] < 0.6, "{cc:?}");
        let outside = residue_correlations(&map, &atoms_at(&[[90.0, 0.0, 0.0]], 4.0), &[vec![0]], 2.0);
        assert_eq!(outside, vec![0.0]);
    }
}
