//! Map–model scores as people report them: fitmap's correlation about zero and about the mean
//! and its overlap, the correlation inside the simulated map's envelope, the average map value at
//! atoms, the fraction of atoms inside the contour, and the FSC of the map against the simulated
//! map with the resolution where it crosses 0.5; the correlation and the FSC again in the
//! model's own zone (docs/science.md §5: real maps hold more than the model).

use crate::maps::density::{GaussianAtoms, simulate};
use crate::maps::local::{MODEL_ZONE_RADIUS_PER_RESOLUTION, voxels_near};
use crate::maps::tools::gaussian_blur;
use crate::maps::{DensityMap, MapGrid};
use crate::numeric::fft::{fft3, for_each_frequency};

/// Protein volume per heavy atom in Å³ (≈ 1.21 Å³/Da × 14 Da per heavy atom).
pub const VOLUME_PER_HEAVY_ATOM_ANGSTROM3: f32 = 17.0;
/// The simulated map's envelope for "correlation inside contour": voxels above this fraction of
/// its maximum.
pub const ENVELOPE_FRACTION: f32 = 0.1;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MapModelScores {
    pub resolution_angstrom: f32,
    pub contour_level: f32,
    pub correlation_about_zero: f64,
    pub correlation_about_mean: f64,
    pub overlap: f64,
    pub correlation_inside_envelope: f64,
    pub mean_map_value_at_atoms: f64,
    pub fraction_atoms_inside_contour: f64,
    pub atoms_scored: usize,
    /// Resolution (Å) where the map-vs-model FSC first falls below 0.5; None if it never does.
    pub fsc_resolution_angstrom: Option<f64>,
    pub fsc: Vec<FscShell>,
    /// The same in the model's own zone (voxels within `zone_radius_angstrom` of an atom), as
    /// real maps hold more than the model: correlation about the mean inside the zone (CC_mask),
    /// and the FSC of both maps under the zone's soft-edged mask.
    pub zone_radius_angstrom: f64,
    pub zone_voxels: usize,
    pub correlation_in_zone: f64,
    pub zone_fsc_resolution_angstrom: Option<f64>,
    pub zone_fsc: Vec<FscShell>,
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct FscShell {
    /// Spatial frequency at the shell's centre, 1/Å.
    pub frequency_per_angstrom: f64,
    pub fsc: f64,
}

/// Σ a·b / √(Σa² Σb²), optionally after subtracting each mean; restricted to `mask` if given.
pub fn correlation(a: &[f32], b: &[f32], about_mean: bool, mask: Option<&[bool]>) -> f64 {
    let take = |i: usize| mask.is_none_or(|m| m[i]);
    let (mut n, mut sa, mut sb) = (0f64, 0f64, 0f64);
    if about_mean {
        for i in 0..a.len() {
            if take(i) {
                n += 1.0;
                sa += f64::from(a[i]);
                sb += f64::from(b[i]);
            }
        }
    }
    let (ma, mb) = if about_mean && n > 0.0 {
        (sa / n, sb / n)
    } else {
        (0.0, 0.0)
    };
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for i in 0..a.len() {
        if take(i) {
            let (x, y) = (f64::from(a[i]) - ma, f64::from(b[i]) - mb);
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
    }
    if aa <= 0.0 || bb <= 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// Trilinear interpolation of `map` at `pos` (Å); None outside the grid.
pub fn interpolate(map: &DensityMap, pos: [f32; 3]) -> Option<f32> {
    let g = &map.grid;
    let first = g.first_voxel_angstrom();
    let mut base = [0usize; 3];
    let mut frac = [0f32; 3];
    for a in 0..3 {
        let u = (pos[a] - first[a]) / g.voxel_size_angstrom[a];
        if !(u >= 0.0 && u <= (g.dims[a] - 1) as f32) {
            return None;
        }
        let b = (u.floor() as usize).min(g.dims[a].saturating_sub(2));
        base[a] = b;
        frac[a] = u - b as f32;
    }
    let at = |dx: usize, dy: usize, dz: usize| {
        let (x, y, z) = (
            (base[0] + dx).min(g.dims[0] - 1),
            (base[1] + dy).min(g.dims[1] - 1),
            (base[2] + dz).min(g.dims[2] - 1),
        );
        map.values[g.index(x, y, z)]
    };
    let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
    let c00 = lerp(at(0, 0, 0), at(1, 0, 0), frac[0]);
    let c10 = lerp(at(0, 1, 0), at(1, 1, 0), frac[0]);
    let c01 = lerp(at(0, 0, 1), at(1, 0, 1), frac[0]);
    let c11 = lerp(at(0, 1, 1), at(1, 1, 1), frac[0]);
    Some(lerp(lerp(c00, c10, frac[1]), lerp(c01, c11, frac[1]), frac[2]))
}

/// The level at which the map encloses `volume_angstrom3` (the highest voxels first).
pub fn level_enclosing_volume(map: &DensityMap, volume_angstrom3: f32) -> f32 {
    let voxel_volume: f32 = map.grid.voxel_size_angstrom.iter().product();
    level_enclosing_volume_of(&map.values, voxel_volume, volume_angstrom3)
}

/// The level at which `values`, voxels of `voxel_volume_angstrom3` each (a map's, or those of a
/// region of it), enclose `volume_angstrom3`.
pub fn level_enclosing_volume_of(values: &[f32], voxel_volume_angstrom3: f32, volume_angstrom3: f32) -> f32 {
    let count = ((volume_angstrom3 / voxel_volume_angstrom3).round() as usize).clamp(1, values.len().max(1));
    level_enclosing_count(values, count)
}

/// The level at which `fraction` of the voxels are above it (ChimeraX's initial level uses 1%).
pub fn level_enclosing_fraction(values: &[f32], fraction: f32) -> f32 {
    let count = ((values.len() as f32 * fraction).round() as usize).clamp(1, values.len());
    level_enclosing_count(values, count)
}

fn level_enclosing_count(values: &[f32], count: usize) -> f32 {
    let mut sorted: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return 0.0;
    }
    let k = sorted.len() - count.min(sorted.len());
    let (_, level, _) = sorted.select_nth_unstable_by(k, f32::total_cmp);
    *level
}

/// Scores `atoms` (a model as Gaussians at `resolution_angstrom`) against `map`.
/// `contour_level` defaults to the level enclosing the model's volume.
pub fn score_map_model(
    map: &DensityMap,
    atoms: &GaussianAtoms,
    resolution_angstrom: f32,
    contour_level: Option<f32>,
) -> MapModelScores {
    let simulated = simulate(&map.grid, atoms);
    let contour = contour_level
        .unwrap_or_else(|| level_enclosing_volume(map, atoms.len() as f32 * VOLUME_PER_HEAVY_ATOM_ANGSTROM3));
    let sim_max = simulated.iter().copied().fold(0.0f32, f32::max);
    let envelope: Vec<bool> = simulated.iter().map(|&v| v > ENVELOPE_FRACTION * sim_max).collect();
    let overlap = map
        .values
        .iter()
        .zip(&simulated)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    let at_atoms: Vec<f32> = atoms.positions.iter().filter_map(|&p| interpolate(map, p)).collect();
    let n = atoms.len().max(1) as f64;
    let fsc = fourier_shell_correlation(&map.grid, &map.values, &simulated);
    let zone_radius = MODEL_ZONE_RADIUS_PER_RESOLUTION * f64::from(resolution_angstrom);
    let positions: Vec<[f64; 3]> = atoms.positions.iter().map(|p| p.map(f64::from)).collect();
    let zone = voxels_near(&map.grid, &positions, zone_radius);
    let soft = soft_mask(map, &zone, resolution_angstrom);
    let masked = |values: &[f32]| -> Vec<f32> { values.iter().zip(&soft).map(|(v, m)| v * m).collect() };
    let zone_fsc = fourier_shell_correlation(&map.grid, &masked(&map.values), &masked(&simulated));
    MapModelScores {
        resolution_angstrom,
        contour_level: contour,
        correlation_about_zero: correlation(&map.values, &simulated, false, None),
        correlation_about_mean: correlation(&map.values, &simulated, true, None),
        overlap,
        correlation_inside_envelope: correlation(&map.values, &simulated, true, Some(&envelope)),
        // Atoms outside the box count as zero density.
        mean_map_value_at_atoms: at_atoms.iter().map(|&v| f64::from(v)).sum::<f64>() / n,
        fraction_atoms_inside_contour: at_atoms.iter().filter(|&&v| v >= contour).count() as f64 / n,
        atoms_scored: atoms.len(),
        fsc_resolution_angstrom: resolution_at(&fsc, 0.5),
        fsc,
        zone_radius_angstrom: zone_radius,
        zone_voxels: zone.iter().filter(|z| **z).count(),
        correlation_in_zone: correlation(&map.values, &simulated, true, Some(&zone)),
        zone_fsc_resolution_angstrom: resolution_at(&zone_fsc, 0.5),
        zone_fsc,
    }
}

/// A 0/1 mask with its edge softened by a Gaussian of a third of the resolution (a hard edge
/// would put its own high-frequency ripples into a masked FSC).
fn soft_mask(map: &DensityMap, inside: &[bool], resolution_angstrom: f32) -> Vec<f32> {
    let hard = DensityMap {
        grid: map.grid.clone(),
        values: inside.iter().map(|&b| f32::from(u8::from(b))).collect(),
        meta: Default::default(),
    };
    gaussian_blur(&hard, f64::from(resolution_angstrom) / 3.0)
}

/// FSC between two maps on one grid, in shells one Fourier pixel of the longest box edge wide,
/// up to Nyquist of the coarsest axis.
pub fn fourier_shell_correlation(grid: &MapGrid, a: &[f32], b: &[f32]) -> Vec<FscShell> {
    let fa = fft3(grid, a, false);
    let fb = fft3(grid, b, false);
    let h = grid.voxel_size_angstrom.map(f64::from);
    let box_length = (0..3).map(|k| grid.dims[k] as f64 * h[k]).fold(0.0, f64::max);
    let step = 1.0 / box_length;
    let nyquist = (0..3).map(|k| 0.5 / h[k]).fold(f64::INFINITY, f64::min);
    let shells = (nyquist / step).floor() as usize;
    let mut cross = vec![0f64; shells + 1];
    let mut pa = vec![0f64; shells + 1];
    let mut pb = vec![0f64; shells + 1];
    for_each_frequency(grid, &mut |i, frequency, _| {
        let s = (frequency / step).round() as usize;
        if s > shells {
            return;
        }
        let (u, v) = (fa[i], fb[i]);
        cross[s] += f64::from(u.re * v.re + u.im * v.im);
        pa[s] += f64::from(u.norm_sqr());
        pb[s] += f64::from(v.norm_sqr());
    });
    (1..=shells)
        .map(|s| FscShell {
            frequency_per_angstrom: s as f64 * step,
            fsc: if pa[s] > 0.0 && pb[s] > 0.0 {
                cross[s] / (pa[s] * pb[s]).sqrt()
            } else {
                0.0
            },
        })
        .collect()
}

/// Resolution (Å) where the curve first falls below `threshold`, interpolated between shells.
pub fn resolution_at(curve: &[FscShell], threshold: f64) -> Option<f64> {
    for w in curve.windows(2) {
        let (a, b) = (w[0], w[1]);
        if a.fsc >= threshold && b.fsc < threshold {
            let t = (a.fsc - threshold) / (a.fsc - b.fsc);
            let f = a.frequency_per_angstrom + t * (b.frequency_per_angstrom - a.frequency_per_angstrom);
            return Some(1.0 / f);
        }
    }
    match curve.first() {
        Some(first) if first.fsc < threshold => Some(1.0 / first.frequency_per_angstrom),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::density::molmap_grid;

    fn blob(res: f32) -> (MapGrid, GaussianAtoms) {
        let positions: Vec<[f32; 3]> = (0..30)
            .map(|i| {
                let t = i as f32 * 0.7;
                [8.0 * t.cos(), 8.0 * t.sin(), 1.5 * i as f32 - 20.0]
            })
            .collect();
        let n = positions.len();
        let atoms = GaussianAtoms {
            positions,
            amplitudes: vec![6.0; n],
            sigmas: vec![0.225 * res; n],
        };
        (molmap_grid(&atoms.positions, res), atoms)
    }

    #[test]
    fn a_model_scores_perfectly_against_its_own_map_and_worse_when_moved() {
        let (grid, atoms) = blob(5.0);
        let map = DensityMap {
            values: simulate(&grid, &atoms),
            grid,
            meta: Default::default(),
        };
        let s = score_map_model(&map, &atoms, 5.0, None);
        assert!(
            s.correlation_about_mean > 0.9999 && s.correlation_about_zero > 0.9999,
            "{s:?}"
        );
        assert!(s.correlation_inside_envelope > 0.9999);
        assert!(s.fraction_atoms_inside_contour > 0.9);
        // The FSC of a map with itself is 1 everywhere.
        assert!(s.fsc.iter().take(10).all(|sh| sh.fsc > 0.999));
        let mut moved = atoms.clone();
        for p in &mut moved.positions {
            p[0] += 3.0;
        }
        let m = score_map_model(&map, &moved, 5.0, None);
        assert!(
            m.correlation_about_mean < s.correlation_about_mean - 0.1,
            "{}",
            m.correlation_about_mean
        );
        assert!(m.mean_map_value_at_atoms < s.mean_map_value_at_atoms);
    }

    #[test]
    fn fsc_against_a_jittered_model_falls_where_the_jitter_says() {
        // Independent errors of rms d per axis damp shell f by exp(−2π²f²d²): 0.5 at ≈ 5.3 Å for d = 1 Å.
        let (_, base) = blob(3.0);
        let mut positions = Vec::new();
        for copy in 0..20 {
            for p in &base.positions {
                positions.push([p[0] + 3.0 * (copy % 4) as f32, p[1] + 4.0 * (copy / 4) as f32, p[2]]);
            }
        }
        let n = positions.len();
        let atoms = GaussianAtoms {
            positions,
            amplitudes: vec![6.0; n],
            sigmas: vec![0.225 * 3.0; n],
        };
        let grid = molmap_grid(&atoms.positions, 3.0);
        let mut rng = crate::numeric::rng::Rng::new(7);
        let mut normal = || rng.normal() as f32;
        let mut jittered = atoms.clone();
        for p in &mut jittered.positions {
            for c in p.iter_mut() {
                *c += normal();
            }
        }
        let fsc = fourier_shell_correlation(&grid, &simulate(&grid, &atoms), &simulate(&grid, &jittered));
        let res = resolution_at(&fsc, 0.5).expect("crosses");
        assert!(res > 3.5 && res < 9.0, "FSC 0.5 at {res} Å");
    }

    #[test]
    fn interpolation_is_exact_on_grid_points_and_linear_between() {
        let grid = MapGrid::new([3, 3, 3], [2.0; 3], [0.0; 3]);
        let values: Vec<f32> = (0..27).map(|i| (i % 3) as f32 * 10.0).collect();
        let map = DensityMap {
            grid,
            values,
            meta: Default::default(),
        };
        assert_eq!(interpolate(&map, [2.0, 2.0, 2.0]), Some(10.0));
        assert_eq!(interpolate(&map, [3.0, 1.0, 4.0]), Some(15.0));
        assert_eq!(interpolate(&map, [4.0, 4.0, 4.0]), Some(20.0));
        assert_eq!(interpolate(&map, [4.1, 0.0, 0.0]), None);
    }
}
