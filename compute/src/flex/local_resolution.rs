//! Local resolution from half maps, at each residue: the FSC of the two half maps in a small
//! box around the residue under a soft spherical mask (blocres's method, Cardone et al. 2013),
//! read at the 0.5 threshold that small boxes call for.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

use crate::maps::DensityMap;
use crate::numeric::fft::{fft3_in_place_with, signed_index};

/// How the local resolution is measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocalResolutionOptions {
    /// The box edge in voxels (even).
    pub box_voxels: usize,
    pub threshold: f64,
}

impl LocalResolutionOptions {
    /// A box of about 4.5× the global resolution (at least 16 voxels, at most 40), as blocres
    /// advises for its windows.
    pub fn for_map(map: &DensityMap, resolution_angstrom: f32) -> Self {
        let h = map.grid.voxel_size_angstrom[0].max(1e-3);
        let n = ((4.5 * resolution_angstrom / h).ceil() as usize).clamp(16, 40);
        Self {
            box_voxels: n + n % 2,
            threshold: 0.5,
        }
    }
}

/// The local resolution (Å) of two half maps at each position: where the windowed FSC first
/// falls below the threshold, interpolated between shells; the box's Nyquist limit when it never
/// does, the box edge when it starts below. `None` for a position outside the maps.
pub fn local_resolution(
    half_a: &DensityMap,
    half_b: &DensityMap,
    positions: &[[f32; 3]],
    options: &LocalResolutionOptions,
    keep_going: &mut dyn FnMut(usize) -> bool,
) -> Vec<Option<f64>> {
    let n = options.box_voxels;
    let grid = &half_a.grid;
    let h = f64::from(grid.voxel_size_angstrom[0]);
    let first = grid.first_voxel_angstrom();
    let half = n as f64 / 2.0;
    // A sphere of radius n/2 − 2 voxels with a 2-voxel cosine edge.
    let mask: Vec<f32> = (0..n * n * n)
        .map(|i| {
            let (x, y, z) = (i % n, (i / n) % n, i / (n * n));
            let r = ((x as f64 - half).powi(2) + (y as f64 - half).powi(2) + (z as f64 - half).powi(2)).sqrt();
            let inner = half - 4.0;
            if r <= inner {
                1.0
            } else if r >= half - 2.0 {
                0.0
            } else {
                (0.5 + 0.5 * (std::f64::consts::PI * (r - inner) / 2.0).cos()) as f32
            }
        })
        .collect();
    let shells = n / 2;
    let mut planner = FftPlanner::new();
    let mut a = vec![Complex::new(0.0f32, 0.0); n * n * n];
    let mut b = a.clone();
    let mut out = Vec::with_capacity(positions.len());
    for (index, p) in positions.iter().enumerate() {
        if !keep_going(index) {
            break;
        }
        let centre: [i64; 3] =
            std::array::from_fn(|k| ((p[k] - first[k]) / grid.voxel_size_angstrom[k]).round() as i64);
        if (0..3).any(|k| centre[k] < 0 || centre[k] >= grid.dims[k] as i64) {
            out.push(None);
            continue;
        }
        for i in 0..n * n * n {
            let (x, y, z) = (i % n, (i / n) % n, i / (n * n));
            let at = [
                centre[0] + x as i64 - n as i64 / 2,
                centre[1] + y as i64 - n as i64 / 2,
                centre[2] + z as i64 - n as i64 / 2,
            ];
            let inside = (0..3).all(|k| at[k] >= 0 && at[k] < grid.dims[k] as i64);
            let (va, vb) = if inside {
                let v = grid.index(at[0] as usize, at[1] as usize, at[2] as usize);
                (half_a.values[v], half_b.values[v])
            } else {
                (0.0, 0.0)
            };
            a[i] = Complex::new(va * mask[i], 0.0);
            b[i] = Complex::new(vb * mask[i], 0.0);
        }
        fft3_in_place_with([n; 3], &mut a, false, &mut planner);
        fft3_in_place_with([n; 3], &mut b, false, &mut planner);
        let mut num = vec![0f64; shells + 1];
        let mut da = vec![0f64; shells + 1];
        let mut db = vec![0f64; shells + 1];
        for i in 0..n * n * n {
            let (x, y, z) = (i % n, (i / n) % n, i / (n * n));
            let r = (signed_index(x, n).powi(2) + signed_index(y, n).powi(2) + signed_index(z, n).powi(2)).sqrt();
            let s = r.round() as usize;
            if s > shells {
                continue;
            }
            num[s] += f64::from((a[i] * b[i].conj()).re);
            da[s] += f64::from(a[i].norm_sqr());
            db[s] += f64::from(b[i].norm_sqr());
        }
        let fsc: Vec<f64> = (0..=shells)
            .map(|s| {
                let d = (da[s] * db[s]).sqrt();
                if d > 0.0 { num[s] / d } else { 0.0 }
            })
            .collect();
        // Shell s is at frequency s/(n·h); the first shell past the DC term that drops below.
        let mut shell = None;
        for s in 1..=shells {
            if fsc[s] < options.threshold {
                let previous = fsc[s - 1];
                let t = if previous > fsc[s] {
                    ((previous - options.threshold) / (previous - fsc[s])).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                shell = Some((s - 1) as f64 + t);
                break;
            }
        }
        let s = shell.unwrap_or(shells as f64).max(1.0);
        out.push(Some(n as f64 * h / s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::MapGrid;
    use crate::maps::MapMeta;
    use crate::maps::tools::low_pass;
    use crate::numeric::rng::Rng;

    #[test]
    fn a_sharp_half_reads_finer_than_a_blurred_half() {
        // Two halves of one random map with independent noise; the left half of the box
        // low-passed to 8 Å, the right half left at 3 Å.
        let dims = [64, 32, 32];
        let grid = MapGrid::new(dims, [1.0; 3], [0.0; 3]);
        let mut rng = Rng::new(7);
        let signal: Vec<f32> = (0..grid.voxel_count()).map(|_| rng.normal() as f32).collect();
        let map = |values: Vec<f32>| DensityMap {
            grid: grid.clone(),
            values,
            meta: MapMeta::default(),
        };
        let sharp = low_pass(&map(signal.clone()), 3.0).values;
        let blurred = low_pass(&map(signal), 8.0).values;
        let combined: Vec<f32> = (0..grid.voxel_count())
            .map(|i| if i % 64 < 32 { blurred[i] } else { sharp[i] })
            .collect();
        let sd = (combined.iter().map(|v| v * v).sum::<f32>() / combined.len() as f32).sqrt();
        let half = |seed: u64| {
            let mut r = Rng::new(seed);
            map(combined.iter().map(|v| v + 0.3 * sd * r.normal() as f32).collect())
        };
        let (a, b) = (half(1), half(2));
        let options = LocalResolutionOptions {
            box_voxels: 20,
            threshold: 0.5,
        };
        let res = local_resolution(&a, &b, &[[14.0, 16.0, 16.0], [48.0, 16.0, 16.0]], &options, &mut |_| {
            true
        });
        let (left, right) = (res[0].unwrap(), res[1].unwrap());
        assert!(left > right + 2.0, "left {left} right {right}");
        assert!(right < 5.0, "right {right}");
    }
}
