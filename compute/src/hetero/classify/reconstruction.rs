//! The class reconstructions of the 3D classification: particles inserted in Fourier space at
//! their poses with trilinear weights (on a grid oversampled by [`padding`]), the Wiener filter
//! from the Fourier shell correlation of two half sets inside the class's envelope, the
//! envelope itself, and the final grids as maps.

use rayon::prelude::*;
use rustfft::num_complex::Complex32;

use super::Shares;
use crate::hetero::data::HeteroData;
use crate::hetero::error::HeteroResult;
use crate::maps::{DensityMap, MapGrid};
use crate::numeric::fft::fft3_in_place;

/// Fourier sums of one reconstruction: Σ w·CTF·F and Σ w·CTF² on the full D³ grid.
#[derive(Clone)]
pub(super) struct Sums {
    pub(super) num: Vec<Complex32>,
    pub(super) den: Vec<f32>,
}

impl Sums {
    fn new(d: usize) -> Self {
        Self {
            num: vec![Complex32::default(); d * d * d],
            den: vec![0.0; d * d * d],
        }
    }

    fn add(&mut self, other: &Self) {
        self.num.iter_mut().zip(&other.num).for_each(|(a, b)| *a += b);
        self.den.iter_mut().zip(&other.den).for_each(|(a, b)| *a += b);
    }
}

/// Trilinear corners of a point in voxel units: (grid index, weight).
pub(super) fn corners(p: [f32; 3], d: usize) -> [(usize, f32); 8] {
    let base = p.map(f32::floor);
    let frac = [p[0] - base[0], p[1] - base[1], p[2] - base[2]];
    let b = base.map(|v| v as i32);
    let wrap = |v: i32| v.rem_euclid(d as i32) as usize;
    std::array::from_fn(|c| {
        let (dx, dy, dz) = (c & 1, (c >> 1) & 1, (c >> 2) & 1);
        let w = (if dx == 1 { frac[0] } else { 1.0 - frac[0] })
            * (if dy == 1 { frac[1] } else { 1.0 - frac[1] })
            * (if dz == 1 { frac[2] } else { 1.0 - frac[2] });
        (
            wrap(b[0] + dx as i32) + d * (wrap(b[1] + dy as i32) + d * wrap(b[2] + dz as i32)),
            w,
        )
    })
}

/// One particle's frequencies: the 3D position of each half-disk point (voxel units), its CTF,
/// its observed value and its shell.
pub(super) struct ParticlePoints {
    pub(super) positions: Vec<[f32; 3]>,
    pub(super) ctf: Vec<f32>,
    pub(super) values: Vec<Complex32>,
}

pub(super) fn particle_points(data: &HeteroData, i: usize, spectrum: &[f32], pad: usize) -> ParticlePoints {
    let a = data.rotation(i);
    let ctf = data.set.ctf(i);
    let freq = 1.0 / (data.box_size as f64 * data.pixel_size);
    let p = data.points.len();
    let mut out = ParticlePoints {
        positions: Vec::with_capacity(p),
        ctf: Vec::with_capacity(p),
        values: Vec::with_capacity(p),
    };
    for (j, &[kx, ky]) in data.points.iter().enumerate() {
        let (x, y) = (f64::from(kx), f64::from(ky));
        out.positions.push(std::array::from_fn(|k| {
            ((x * a[0][k] + y * a[1][k]) * pad as f64) as f32
        }));
        out.ctf.push(ctf.value(x * freq, y * freq) as f32);
        out.values.push(Complex32::new(spectrum[j], spectrum[p + j]));
    }
    out
}

/// Shell of each half-disk point (rounded radius).
pub(super) fn point_shells(data: &HeteroData) -> Vec<usize> {
    data.points
        .iter()
        .map(|&[kx, ky]| f64::from(kx).hypot(f64::from(ky)).round() as usize)
        .collect()
}

/// Shell of every voxel of the G³ grid (G = pad·D): the rounded radius of its signed frequency
/// in units of the images' frequency step.
pub(super) fn voxel_shells(g: usize, pad: usize) -> Vec<usize> {
    let signed = |v: usize| if v >= g / 2 { v as i64 - g as i64 } else { v as i64 };
    (0..g * g * g)
        .map(|i| {
            let (x, y, z) = (signed(i % g), signed((i / g) % g), signed(i / (g * g)));
            (((x * x + y * y + z * z) as f64).sqrt() / pad as f64).round() as usize
        })
        .collect()
}

/// The Fourier grid is oversampled this many times (the references are zero-padded in real
/// space, as in RELION), so trilinear interpolation between its voxels stays accurate to Nyquist.
/// Boxes above 64 px are not padded, to bound memory (10 grids of (2·128)³ would be 2 GB a thread).
pub(super) fn padding(d: usize) -> usize {
    if d <= 64 { 2 } else { 1 }
}

/// Sums for every class and half (index 2·class + half), each particle inserted into its classes
/// with its weights.
pub(super) fn reconstruct_sums(data: &HeteroData, shares: &[Shares], k: usize) -> HeteroResult<Vec<Sums>> {
    let pad = padding(data.image_size);
    let d = pad * data.image_size;
    let n = shares.len();
    let all: Vec<usize> = (0..n).collect();
    let threads = rayon::current_num_threads().max(1);
    let parts: Vec<HeteroResult<Vec<Sums>>> = all
        .par_chunks(n.div_ceil(threads).max(1))
        .map(|part| {
            let mut sums = vec![Sums::new(d); 2 * k];
            for chunk in part.chunks(256) {
                let prepared = data.prepared(chunk)?;
                for (&i, prep) in chunk.iter().zip(&prepared) {
                    let points = particle_points(data, i, &prep.spectrum, pad);
                    for &(class, share) in &shares[i] {
                        let target = &mut sums[2 * class + i % 2];
                        for ((pos, &c), &v) in points.positions.iter().zip(&points.ctf).zip(&points.values) {
                            for (index, w) in corners(*pos, d) {
                                target.num[index] += v * (share * w * c);
                                target.den[index] += share * w * c * c;
                            }
                        }
                    }
                }
            }
            Ok(sums)
        })
        .collect();
    let mut total: Option<Vec<Sums>> = None;
    for part in parts {
        let part = part?;
        match &mut total {
            None => total = Some(part),
            Some(t) => t.iter_mut().zip(&part).for_each(|(a, b)| a.add(b)),
        }
    }
    let mut total = total.unwrap_or_else(|| vec![Sums::new(d); 2 * k]);
    // Hermitian symmetry: only one of each ±k pair was inserted.
    for sums in &mut total {
        let mirror = |i: usize| -> usize {
            let (x, y, z) = (i % d, (i / d) % d, i / (d * d));
            (d - x) % d + d * ((d - y) % d + d * ((d - z) % d))
        };
        let num = sums.num.clone();
        let den = sums.den.clone();
        for i in 0..num.len() {
            let m = mirror(i);
            sums.num[i] = num[i] + num[m].conj();
            sums.den[i] = den[i] + den[m];
        }
    }
    Ok(total)
}

/// A class reconstruction: the summed halves and the Wiener term λ per shell, so a particle can
/// be compared with the reconstruction from every particle but itself.
pub(super) struct ClassVolume {
    pub(super) sums: Sums,
    /// λ per shell (voxels beyond Nyquist: infinite, so they stay zero).
    pub(super) lambda: Vec<f32>,
    /// Σ·CTF·F / (Σ CTF² + λ), the reconstruction from all members, masked by its envelope.
    pub(super) grid: Vec<Complex32>,
    /// The fraction of the box the envelope keeps.
    pub(super) mask_mean: f32,
}

/// RELION's regularisation parameter T for 3D classification (`--tau2_fudge 4`): the data are
/// trusted T times more than the FSC's signal-to-noise says.
const TAU2_FUDGE: f64 = 4.0;

/// Resolution (Å) of the envelope that masks the references.
const ENVELOPE_RESOLUTION: f64 = 15.0;

/// A soft envelope of the reference in `grid` (Fourier, centre at voxel 0), in real space on
/// the same wrapped grid: the reference low-passed to 15 Å, ramping from 0 at 5 % of its maximum
/// to 1 at 15 %, inside the sphere of the box (RELION's solvent mask, made automatically).
fn envelope(grid: &[Complex32], d: usize, pixel: f64, radius: f64) -> Vec<f32> {
    let r0 = d as f64 * pixel / ENVELOPE_RESOLUTION;
    let signed = |v: usize| if v >= d / 2 { v as f64 - d as f64 } else { v as f64 };
    let r2 = |i: usize| signed(i % d).powi(2) + signed((i / d) % d).powi(2) + signed(i / (d * d)).powi(2);
    let mut low: Vec<Complex32> = grid
        .iter()
        .enumerate()
        .map(|(i, v)| v * (-(r2(i) / (r0 * r0))).exp() as f32)
        .collect();
    fft3_in_place([d; 3], &mut low, true);
    let peak = low.iter().map(|v| v.re).fold(0f32, f32::max).max(f32::MIN_POSITIVE);
    let radius2 = radius.powi(2);
    low.iter()
        .enumerate()
        .map(|(i, l)| {
            if r2(i) < radius2 {
                ((l.re / peak - 0.05) / 0.10).clamp(0.0, 1.0)
            } else {
                0.0
            }
        })
        .collect()
}

/// `grid` multiplied in real space by `mask` (both on the wrapped grid).
fn apply_mask(grid: &[Complex32], mask: &[f32], d: usize) -> Vec<Complex32> {
    let mut real = grid.to_vec();
    fft3_in_place([d; 3], &mut real, true);
    let n = (d * d * d) as f32;
    for (v, m) in real.iter_mut().zip(mask) {
        *v = Complex32::new(v.re * m / n, 0.0);
    }
    fft3_in_place([d; 3], &mut real, false);
    real
}

/// Fourier shell correlation of two grids, per shell below `count`.
fn shell_correlation(a: &[Complex32], b: &[Complex32], shells: &[usize], count: usize) -> Vec<f64> {
    let mut cross = vec![0f64; count];
    let mut power = vec![[0f64; 2]; count];
    for ((x, y), &s) in a.iter().zip(b).zip(shells) {
        if s < count {
            cross[s] += f64::from((x * y.conj()).re);
            power[s][0] += f64::from(x.norm_sqr());
            power[s][1] += f64::from(y.norm_sqr());
        }
    }
    (0..count)
        .map(|s| {
            if power[s][0] > 0.0 && power[s][1] > 0.0 {
                cross[s] / (power[s][0] * power[s][1]).sqrt()
            } else {
                0.0
            }
        })
        .collect()
}

/// The Wiener-filtered class volume from its two half sums: λ per shell from the half-set FSC.
pub(super) fn wiener(half: &[Sums], shells: &[usize], d: usize, pixel: f64) -> ClassVolume {
    let g = padding(d) * d;
    let count = d / 2 + 1;
    let mut mean_den = vec![[0f64; 3]; count];
    let mut voxels = vec![0f64; count];
    for (i, &s) in shells.iter().enumerate() {
        if s < count {
            mean_den[s][0] += f64::from(half[0].den[i]);
            mean_den[s][1] += f64::from(half[1].den[i]);
            mean_den[s][2] += f64::from(half[0].den[i] + half[1].den[i]);
            voxels[s] += 1.0;
        }
    }
    for (m, v) in mean_den.iter_mut().zip(&voxels) {
        m.iter_mut().for_each(|x| *x /= v.max(1.0));
    }
    // FSC of the two halves, each lightly regularised.
    let raw_halves: Vec<Vec<Complex32>> = (0..2)
        .map(|h| {
            shells
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    if s < count {
                        half[h].num[i] / (half[h].den[i] + (1e-3 * mean_den[s][h]) as f32 + f32::MIN_POSITIVE)
                    } else {
                        Complex32::default()
                    }
                })
                .collect()
        })
        .collect();
    let box_fsc = shell_correlation(&raw_halves[0], &raw_halves[1], shells, count);
    let lambda_from = |fsc: &[f64], t: f64| -> Vec<f32> {
        (0..=shells.iter().copied().max().unwrap_or(0))
            .map(|s| {
                if s >= d / 2 {
                    return f32::INFINITY;
                }
                let f = fsc[s].clamp(1e-3, 0.999);
                let ssnr = 2.0 * f / (1.0 - f) * t;
                (mean_den[s][2] / ssnr) as f32 + f32::MIN_POSITIVE
            })
            .collect()
    };
    let mut sums = half[0].clone();
    sums.add(&half[1]);
    let ratio = |lambda: &[f32]| -> Vec<Complex32> {
        shells
            .iter()
            .enumerate()
            .map(|(i, &s)| sums.num[i] / (sums.den[i] + lambda[s]))
            .collect()
    };
    // The envelope from the Wiener reconstruction with the box's FSC; then the FSC again between
    // the half maps inside the envelope (noise outside the particle no longer lowers it), and
    // the filter from that with RELION's T.
    let mask = envelope(&ratio(&lambda_from(&box_fsc, 1.0)), g, pixel, d as f64 / 2.0 - 2.0);
    let mask_mean = (mask.iter().map(|&m| f64::from(m)).sum::<f64>() / mask.len() as f64).max(1e-3) as f32;
    let masked_halves: Vec<Vec<Complex32>> = raw_halves.iter().map(|h| apply_mask(h, &mask, g)).collect();
    let lambda = lambda_from(
        &shell_correlation(&masked_halves[0], &masked_halves[1], shells, count),
        TAU2_FUDGE,
    );
    let grid = apply_mask(&ratio(&lambda), &mask, g);
    ClassVolume {
        sums,
        lambda,
        grid,
        mask_mean,
    }
}

/// A Fourier grid (particle centre at voxel 0, oversampled by [`padding`]) as a real map of the
/// images' size, centred where the particles were.
pub(super) fn to_map(data: &HeteroData, mut grid: Vec<Complex32>) -> DensityMap {
    let d = data.image_size;
    let g = padding(d) * d;
    for (i, v) in grid.iter_mut().enumerate() {
        if (i % g + (i / g) % g + i / (g * g)) % 2 == 1 {
            *v = -*v;
        }
    }
    fft3_in_place([g; 3], &mut grid, true);
    let offset = (g - d) / 2;
    let scale = 1.0 / (d * d * d) as f32;
    let mut values = Vec::with_capacity(d * d * d);
    for z in 0..d {
        for y in 0..d {
            for x in 0..d {
                values.push(grid[(x + offset) + g * ((y + offset) + g * (z + offset))].re * scale);
            }
        }
    }
    let voxel = data.training_pixel_size() as f32;
    let centre = data.centre.unwrap_or([0.0; 3]);
    let first = centre.map(|c| c as f32 - voxel * (d / 2) as f32);
    DensityMap {
        grid: MapGrid::new([d; 3], [voxel; 3], first),
        values,
        meta: Default::default(),
    }
}
