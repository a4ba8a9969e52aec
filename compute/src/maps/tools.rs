//! Everyday map operations: threshold, dust removal, crop, resample, Fourier low-pass, hand
//! flip and z-score normalisation. Each returns a new map and keeps the placement right.

use rustfft::num_complex::Complex;

use crate::maps::density::bounding_box;
use crate::maps::segment::{Connectivity, label_components};
use crate::maps::{DensityMap, MapGrid};
use crate::numeric::fft::{fft3_in_place, signed_index};

/// Values below `level` become zero (ChimeraX's `volume threshold … minimum L set 0`).
pub fn threshold(map: &DensityMap, level: f32) -> DensityMap {
    let mut out = map.clone();
    for v in &mut out.values {
        if *v < level {
            *v = 0.0;
        }
    }
    out
}

/// Labels of the 6-connected components of voxels at or above `level` (0 = below level), and each
/// label's size (index 0 unused).
pub fn connected_components(map: &DensityMap, level: f32) -> (Vec<u32>, Vec<usize>) {
    label_components(map.grid.dims, |i| map.values[i] >= level, Connectivity::Faces)
}

/// Zeroes every connected blob above `level` smaller than `min_volume_angstrom3`.
pub fn remove_dust(map: &DensityMap, level: f32, min_volume_angstrom3: f32) -> (DensityMap, usize) {
    let voxel_volume: f32 = map.grid.voxel_size_angstrom.iter().product();
    let min_voxels = (min_volume_angstrom3 / voxel_volume).ceil() as usize;
    let (labels, sizes) = connected_components(map, level);
    let mut out = map.clone();
    for (v, &l) in out.values.iter_mut().zip(&labels) {
        if l != 0 && sizes[l as usize] < min_voxels {
            *v = 0.0;
        }
    }
    let removed = sizes.iter().skip(1).filter(|&&s| s < min_voxels).count();
    (out, removed)
}

/// Crops to the box holding every voxel at or above `level`, plus `padding_angstrom`.
pub fn crop_to_level(map: &DensityMap, level: f32, padding_angstrom: f32) -> Option<DensityMap> {
    let [nx, ny, nz] = map.grid.dims;
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                if map.values[map.grid.index(x, y, z)] >= level {
                    for (a, c) in [x, y, z].into_iter().enumerate() {
                        lo[a] = lo[a].min(c);
                        hi[a] = hi[a].max(c);
                    }
                }
            }
        }
    }
    if lo[0] == usize::MAX {
        return None;
    }
    let pad: [usize; 3] = std::array::from_fn(|a| (padding_angstrom / map.grid.voxel_size_angstrom[a]).ceil() as usize);
    let lo: [usize; 3] = std::array::from_fn(|a| lo[a].saturating_sub(pad[a]));
    let hi: [usize; 3] = std::array::from_fn(|a| (hi[a] + pad[a]).min(map.grid.dims[a] - 1));
    Some(sub_box(map, lo, hi))
}

/// The box of `map` around `positions` with `padding` Å beyond them (None when they miss it).
pub fn crop_around(map: &DensityMap, positions: &[[f32; 3]], padding: f32) -> Option<DensityMap> {
    let first = map.grid.first_voxel_angstrom();
    let h = map.grid.voxel_size_angstrom;
    let (lo, hi) = bounding_box(positions);
    let mut vlo = [0usize; 3];
    let mut vhi = [0usize; 3];
    for a in 0..3 {
        let n = map.grid.dims[a] as f32;
        let l = ((lo[a] - padding - first[a]) / h[a]).floor().max(0.0);
        let u = ((hi[a] + padding - first[a]) / h[a]).ceil().min(n - 1.0);
        if l.is_nan() || u.is_nan() || l > u || u < 0.0 || l > n - 1.0 {
            return None;
        }
        vlo[a] = l as usize;
        vhi[a] = u as usize;
    }
    Some(sub_box(map, vlo, vhi))
}

/// The voxels lo..=hi (inclusive, x,y,z) as a new map in the same place.
pub fn sub_box(map: &DensityMap, lo: [usize; 3], hi: [usize; 3]) -> DensityMap {
    let dims: [usize; 3] = std::array::from_fn(|a| hi[a] - lo[a] + 1);
    let first = map.grid.world_from_voxel(lo.map(|v| v as f32));
    let mut grid = MapGrid::new(dims, map.grid.voxel_size_angstrom, first);
    grid.cell_sampling = dims;
    let mut values = Vec::with_capacity(dims.iter().product());
    for z in lo[2]..=hi[2] {
        for y in lo[1]..=hi[1] {
            let row = map.grid.index(lo[0], y, z);
            values.extend_from_slice(&map.values[row..row + dims[0]]);
        }
    }
    DensityMap {
        grid,
        values,
        meta: map.meta.clone(),
    }
}

/// Resamples by trilinear interpolation onto a grid of `voxel_size_angstrom` covering the same
/// region (or `dims` voxels if given), first voxel in the same place.
pub fn resample(map: &DensityMap, voxel_size_angstrom: f32, dims: Option<[usize; 3]>) -> DensityMap {
    let first = map.grid.first_voxel_angstrom();
    let dims = dims.unwrap_or_else(|| {
        std::array::from_fn(|a| {
            (((map.grid.dims[a] - 1) as f32 * map.grid.voxel_size_angstrom[a] / voxel_size_angstrom).floor() as usize
                + 1)
            .max(1)
        })
    });
    let grid = MapGrid::new(dims, [voxel_size_angstrom; 3], first);
    let mut values = vec![0f32; grid.voxel_count()];
    for z in 0..dims[2] {
        for y in 0..dims[1] {
            for x in 0..dims[0] {
                let p = grid.world_from_voxel([x as f32, y as f32, z as f32]);
                values[grid.index(x, y, z)] = crate::maps::scores::interpolate(map, p).unwrap_or(0.0);
            }
        }
    }
    DensityMap {
        grid,
        values,
        meta: map.meta.clone(),
    }
}

/// Fourier low-pass to `resolution_angstrom` with a soft (raised-cosine) edge one Fourier
/// pixel wide, so no ringing from a hard cutoff.
pub fn low_pass(map: &DensityMap, resolution_angstrom: f32) -> DensityMap {
    let dims = map.grid.dims;
    let h = map.grid.voxel_size_angstrom.map(f64::from);
    let mut data: Vec<Complex<f32>> = map.values.iter().map(|&v| Complex::new(v, 0.0)).collect();
    fft3_in_place(dims, &mut data, false);
    let cutoff = 1.0 / f64::from(resolution_angstrom);
    let width = (0..3).map(|a| 1.0 / (dims[a] as f64 * h[a])).fold(0.0, f64::max);
    for z in 0..dims[2] {
        let fz = signed_index(z, dims[2]) / (dims[2] as f64 * h[2]);
        for y in 0..dims[1] {
            let fy = signed_index(y, dims[1]) / (dims[1] as f64 * h[1]);
            for x in 0..dims[0] {
                let fx = signed_index(x, dims[0]) / (dims[0] as f64 * h[0]);
                let f = (fx * fx + fy * fy + fz * fz).sqrt();
                let weight = if f <= cutoff {
                    1.0
                } else if f >= cutoff + width {
                    0.0
                } else {
                    0.5 * (1.0 + (std::f64::consts::PI * (f - cutoff) / width).cos())
                };
                data[(z * dims[1] + y) * dims[0] + x] *= weight as f32;
            }
        }
    }
    fft3_in_place(dims, &mut data, true);
    let n = map.values.len() as f32;
    DensityMap {
        grid: map.grid.clone(),
        values: data.iter().map(|c| c.re / n).collect(),
        meta: map.meta.clone(),
    }
}

/// Mirror image (the other hand): z reversed, in the same box.
pub fn flip_hand(map: &DensityMap) -> DensityMap {
    let [nx, ny, nz] = map.grid.dims;
    let mut values = vec![0f32; map.values.len()];
    for z in 0..nz {
        let src = &map.values[(nz - 1 - z) * nx * ny..(nz - z) * nx * ny];
        values[z * nx * ny..(z + 1) * nx * ny].copy_from_slice(src);
    }
    DensityMap {
        grid: map.grid.clone(),
        values,
        meta: map.meta.clone(),
    }
}

/// Adds Gaussian noise at signal-to-noise ratio `snr` = var(values) / var(noise), seeded.
pub fn add_noise(values: &mut [f32], snr: f64, seed: u64) {
    let sd = f64::from(crate::maps::Statistics::of(values).rms) / snr.sqrt();
    let mut rng = crate::numeric::rng::Rng::new(seed);
    for v in values.iter_mut() {
        *v += (sd * rng.normal()) as f32;
    }
}

/// (value − mean) / σ.
pub fn z_score(map: &DensityMap) -> DensityMap {
    let stats = map.statistics();
    let sigma = if stats.rms > 0.0 { stats.rms } else { 1.0 };
    let mut out = map.clone();
    for v in &mut out.values {
        *v = (*v - stats.mean) / sigma;
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::density::{GaussianAtoms, molmap_grid, simulate};
    use crate::maps::scores::correlation;

    fn two_blobs() -> DensityMap {
        let atoms = GaussianAtoms {
            positions: vec![[0.0; 3], [14.0, 0.0, 0.0]],
            amplitudes: vec![100.0, 1.0],
            sigmas: vec![2.0, 1.0],
        };
        let grid = molmap_grid(&atoms.positions, 3.0);
        DensityMap {
            values: simulate(&grid, &atoms),
            grid,
            meta: Default::default(),
        }
    }

    #[test]
    fn dust_removal_keeps_the_big_blob_only() {
        let map = two_blobs();
        let level = 0.01;
        let (_, sizes) = connected_components(&map, level);
        assert_eq!(sizes.len() - 1, 2, "two blobs");
        let (clean, removed) = remove_dust(&map, level, 50.0);
        assert_eq!(removed, 1);
        let (_, sizes) = connected_components(&clean, level);
        assert_eq!(sizes.len() - 1, 1);
    }

    #[test]
    fn crop_keeps_placement_and_values() {
        let map = two_blobs();
        let cropped = crop_to_level(&map, 0.5, 2.0).expect("something above level");
        assert!(cropped.grid.voxel_count() < map.grid.voxel_count() / 4);
        let p = cropped.grid.world_from_voxel([3.0, 2.0, 1.0]);
        let original = crate::maps::scores::interpolate(&map, p).expect("inside");
        assert!((original - cropped.values[cropped.grid.index(3, 2, 1)]).abs() < 1e-5);
    }

    #[test]
    fn low_pass_removes_high_frequencies_but_keeps_the_shape() {
        let map = two_blobs();
        let smooth = low_pass(&map, 8.0);
        assert!(correlation(&map.values, &smooth.values, true, None) > 0.9);
        let total: f32 = map.values.iter().sum();
        let smooth_total: f32 = smooth.values.iter().sum();
        assert!((total - smooth_total).abs() < 1e-3 * total.abs(), "DC term kept");
        let peak = map.values.iter().copied().fold(0.0, f32::max);
        let smooth_peak = smooth.values.iter().copied().fold(0.0, f32::max);
        assert!(smooth_peak < peak, "blurred peak is lower");
    }

    #[test]
    fn flip_twice_is_identity_and_zscore_standardises() {
        let atoms = GaussianAtoms {
            positions: vec![[0.0, 0.0, 4.0], [6.0, 0.0, -3.0]],
            amplitudes: vec![6.0, 8.0],
            sigmas: vec![1.0, 1.0],
        };
        let grid = molmap_grid(&atoms.positions, 3.0);
        let map = DensityMap {
            values: simulate(&grid, &atoms),
            grid,
            meta: Default::default(),
        };
        assert!(
            flip_hand(&flip_hand(&map)).values == map.values,
            "flipping twice is the identity"
        );
        assert!(
            correlation(&flip_hand(&map).values, &map.values, true, None) < 0.5,
            "a chiral map changes"
        );
        let z = z_score(&map).statistics();
        assert!(z.mean.abs() < 1e-5 && (z.rms - 1.0).abs() < 1e-4);
    }

    #[test]
    fn resample_to_half_spacing_interpolates_in_place() {
        let map = two_blobs();
        let fine = resample(&map, map.grid.voxel_size_angstrom[0] / 2.0, None);
        assert_eq!(fine.grid.first_voxel_angstrom(), map.grid.first_voxel_angstrom());
        assert_eq!(fine.grid.dims[0], 2 * (map.grid.dims[0] - 1) + 1);
        assert!((fine.values[fine.grid.index(4, 6, 8)] - map.values[map.grid.index(2, 3, 4)]).abs() < 1e-6);
    }
}
