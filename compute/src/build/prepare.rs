//! The map as the network sees it: resampled to a 1 Å grid and normalised so that the solvent
//! (the median voxel) reads 0 and the level that encloses the expected protein volume reads 1,
//! clamped to [−2, 4]. The expected volume comes from the sequence (133 Å³ per residue: 7.8
//! heavy atoms of 17 Å³), so the scale does not depend on the box size, the map's units or how
//! much solvent surrounds the protein. E3-CryoFold normalises by the 95th percentile, which
//! moves with the box; this is the same idea made independent of it.

use crate::maps::scores::VOLUME_PER_HEAVY_ATOM_ANGSTROM3;
use crate::maps::tools::resample;
use crate::maps::{DensityMap, MapGrid};

/// The network's voxel size, Å.
pub const VOXEL_ANGSTROM: f32 = 1.0;
/// Heavy atoms per residue, on average over proteins.
pub const HEAVY_ATOMS_PER_RESIDUE: f32 = 7.8;

/// A map on the network's grid with its normalised values.
#[derive(Clone, Debug)]
pub struct PreparedMap {
    pub grid: MapGrid,
    pub values: Vec<f32>,
    /// The map values (before normalisation) that became 0 and 1.
    pub solvent_level: f32,
    pub protein_level: f32,
}

impl PreparedMap {
    /// Position (Å) of voxel `i` (x fastest).
    pub fn position(&self, i: usize) -> [f32; 3] {
        let [nx, ny, _] = self.grid.dims;
        let voxel = [(i % nx) as f32, ((i / nx) % ny) as f32, (i / (nx * ny)) as f32];
        self.grid.world_from_voxel(voxel)
    }
}

/// Resamples `map` to 1 Å (when it is on another grid) and normalises it for a protein of
/// `residues` residues. None when the map is flat.
pub fn prepare(map: &DensityMap, residues: usize) -> Option<PreparedMap> {
    let on_grid = if map
        .grid
        .voxel_size_angstrom
        .iter()
        .all(|&h| (h - VOXEL_ANGSTROM).abs() < 1e-3)
    {
        map.clone()
    } else {
        resample(map, VOXEL_ANGSTROM, None)
    };
    let (values, solvent, protein) = normalise(&on_grid.values, residues)?;
    Some(PreparedMap {
        grid: on_grid.grid,
        values,
        solvent_level: solvent,
        protein_level: protein,
    })
}

/// The values of a 1 Å map normalised for a protein of `residues` residues (None when flat).
pub fn normalise_values(values: &[f32], residues: usize) -> Option<Vec<f32>> {
    normalise(values, residues).map(|(v, _, _)| v)
}

fn normalise(values: &[f32], residues: usize) -> Option<(Vec<f32>, f32, f32)> {
    let volume = residues.max(1) as f32 * HEAVY_ATOMS_PER_RESIDUE * VOLUME_PER_HEAVY_ATOM_ANGSTROM3;
    let (solvent, protein) = levels(values, volume / VOXEL_ANGSTROM.powi(3));
    if protein.partial_cmp(&solvent) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let scale = 1.0 / (protein - solvent);
    let normalised = values
        .iter()
        .map(|&v| ((v - solvent) * scale).clamp(-2.0, 4.0))
        .collect();
    Some((normalised, solvent, protein))
}

/// The median and the level that `expected_voxels` voxels reach (never above the 99.9th
/// percentile, so a protein larger than the box still gets a level).
fn levels(values: &[f32], expected_voxels: f32) -> (f32, f32) {
    let mut sorted: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return (0.0, 0.0);
    }
    sorted.sort_unstable_by(f32::total_cmp);
    let n = sorted.len();
    let median = sorted[n / 2];
    let from_top = (expected_voxels.round() as usize).clamp(n / 1000 + 1, n - 1);
    (median, sorted[n - 1 - from_top.min(n - 1)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::density::{GaussianAtoms, molmap_grid, simulate};

    #[test]
    fn a_map_on_any_grid_and_scale_becomes_a_1_angstrom_map_with_protein_near_1() {
        // 40 "residues" of 8 atoms on a helix-like curve.
        let positions: Vec<[f32; 3]> = (0..320)
            .map(|i| {
                let t = i as f32 * 0.3;
                [6.0 * t.cos(), 6.0 * t.sin(), 0.5 * t]
            })
            .collect();
        let atoms = GaussianAtoms {
            positions,
            amplitudes: vec![6.0; 320],
            sigmas: vec![1.1; 320],
        };
        let grid = molmap_grid(&atoms.positions, 5.0);
        let mut map = DensityMap {
            values: simulate(&grid, &atoms),
            grid,
            meta: Default::default(),
        };
        let a = prepare(&map, 40).expect("prepared");
        assert!(a.grid.voxel_size_angstrom.iter().all(|&h| h == 1.0));
        // Scaling and offsetting the map changes nothing.
        map.values.iter_mut().for_each(|v| *v = 3.0 * *v - 7.0);
        let b = prepare(&map, 40).expect("prepared");
        let diff = a
            .values
            .iter()
            .zip(&b.values)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-4, "{diff}");
        // About the expected volume reads above 1.
        let above = a.values.iter().filter(|&&v| v >= 1.0).count() as f32;
        let expected = 40.0 * HEAVY_ATOMS_PER_RESIDUE * VOLUME_PER_HEAVY_ATOM_ANGSTROM3;
        assert!(
            (above / expected - 1.0).abs() < 0.05,
            "{above} voxels above 1, expected {expected}"
        );
        let flat = DensityMap {
            values: vec![1.0; map.values.len()],
            ..map
        };
        assert!(prepare(&flat, 40).is_none());
    }
}
