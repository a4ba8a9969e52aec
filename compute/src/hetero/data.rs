//! Particles as the heterogeneity network sees them: each image's spectrum, re-centred by its
//! shift, cropped to the training size (downsampling in Fourier space), kept on the half-disk of
//! frequencies below Nyquist as the decoder's target; the downsampled, masked real-space image as
//! the encoder's input; and its CTF at the same frequencies. Both are divided by one scale each,
//! measured on the first particles, so the network sees values of order one.
//!
//! Images are prepared once and held when they fit the memory budget, otherwise read from their
//! stacks batch by batch (lazy loading).

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustfft::FftPlanner;
use rustfft::num_complex::Complex32;

use crate::formats::particles::{ParticleOptions, ParticleSet};
use crate::geometry::{Mat3, relion_matrix};
use crate::particles::data::{StackReader, read_particle_metadata};

use super::error::{HeteroError, HeteroResult};
use super::model::{BatchInput, canonical};
use crate::numeric::fft::fft2_in_place;

/// One particle, prepared.
#[derive(Clone)]
pub struct Prepared {
    /// Encoder input, image_size² values.
    pub image: Vec<f32>,
    /// Spectrum on [`HeteroData::points`]: real parts, then imaginary parts.
    pub spectrum: Vec<f32>,
    /// The pretrained prior's input ([`super::prior::prior_input`] of the same filtered image at
    /// the prior's size across the whole box); empty without a prior.
    pub prior: Vec<f32>,
}

/// A particle set ready for training.
pub struct HeteroData {
    pub path: PathBuf,
    pub set: ParticleSet,
    pub centre: Option<[f64; 3]>,
    pub box_size: usize,
    pub pixel_size: f64,
    /// Training image size (even, ≤ box).
    pub image_size: usize,
    /// Integer frequencies (kx, ky) of the half-disk, |k| < image_size/2.
    pub points: Vec<[i32; 2]>,
    pub image_scale: f32,
    pub spectrum_scale: f32,
    /// The encoder sees frequencies up to this (Å); None: all kept.
    pub encoder_resolution: Option<f64>,
    /// Side of the pretrained prior's input image (0: no prior).
    pub prior_size: usize,
    reader: StackReader,
    cache: Option<Vec<Prepared>>,
}

/// The half-disk of integer frequencies below `size/2` (kx ≥ 0; for kx = 0 only ky ≥ 0).
pub fn half_disk(size: usize) -> Vec<[i32; 2]> {
    let r = size as i32 / 2;
    let mut points = Vec::new();
    for ky in -r + 1..r {
        for kx in 0..r {
            if kx == 0 && ky < 0 {
                continue;
            }
            if kx * kx + ky * ky < r * r {
                points.push([kx, ky]);
            }
        }
    }
    points
}

/// The points of [`half_disk`] below `fraction` × Nyquist (at least the 3 × 3 lowest).
pub fn half_disk_within(size: usize, fraction: f64) -> Vec<[i32; 2]> {
    let radius = (fraction.clamp(0.0, 1.0) * size as f64 / 2.0).max(1.5);
    half_disk(size)
        .into_iter()
        .filter(|p| f64::from(p[0] * p[0] + p[1] * p[1]) < radius * radius)
        .collect()
}

/// Prepares one image: `origin_px` is RELION's origin, so the particle's centre sits at pixel
/// box/2 − origin. Returns the image (unscaled) and spectrum on `points` (unscaled). The
/// encoder's image is the spectrum times `encoder_filter(kx, ky)` (the particle's CTF and a
/// low-pass: a matched filter, so particles of one state look alike whatever their defocus).
/// With `prior_size` > 0, the same filtered image at that size across the box is turned into the
/// pretrained prior's input ([`super::prior::prior_input`]).
#[allow(clippy::too_many_arguments)]
pub fn prepare_image(
    image: &[f32],
    box_size: usize,
    image_size: usize,
    origin_px: [f64; 2],
    points: &[[i32; 2]],
    encoder_filter: &dyn Fn(i32, i32) -> f32,
    prior_size: usize,
    planner: &mut FftPlanner<f32>,
) -> Prepared {
    let (b, d) = (box_size, image_size);
    let mut full: Vec<Complex32> = image.iter().map(|&v| Complex32::new(v, 0.0)).collect();
    fft2_in_place(b, &mut full, false, planner);
    let centre = [b as f64 / 2.0 - origin_px[0], b as f64 / 2.0 - origin_px[1]];
    // The spectrum of the particle moved to pixel 0: F(k)·exp(+2πi k·c/B), scaled so the
    // downsampled image keeps the original's pixel values.
    let scale = 1.0 / (b * b) as f64;
    let at = |kx: i32, ky: i32| -> Complex32 {
        let (x, y) = (kx.rem_euclid(b as i32) as usize, ky.rem_euclid(b as i32) as usize);
        let phase = std::f64::consts::TAU * (f64::from(kx) * centre[0] + f64::from(ky) * centre[1]) / b as f64;
        let rot = Complex32::new((phase.cos() * scale) as f32, (phase.sin() * scale) as f32);
        full[y * b + x] * rot
    };
    let mut spectrum = vec![0f32; 2 * points.len()];
    for (i, &[kx, ky]) in points.iter().enumerate() {
        let v = at(kx, ky);
        spectrum[i] = v.re;
        spectrum[points.len() + i] = v.im;
    }
    // The encoder's image: the cropped spectrum back in real space, particle at the centre.
    let filtered = |d: usize, planner: &mut FftPlanner<f32>| -> Vec<f32> {
        let r = (d.min(b) / 2) as i32;
        let mut small = vec![Complex32::default(); d * d];
        for ky in -r + 1..r {
            for kx in -r + 1..r {
                let sign = if (kx + ky).rem_euclid(2) == 0 { 1.0 } else { -1.0 };
                small[ky.rem_euclid(d as i32) as usize * d + kx.rem_euclid(d as i32) as usize] =
                    at(kx, ky) * (sign * encoder_filter(kx, ky));
            }
        }
        fft2_in_place(d, &mut small, true, planner);
        let radius2 = (d as f64 / 2.0).powi(2);
        small
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let (x, y) = ((i % d) as f64 - d as f64 / 2.0, (i / d) as f64 - d as f64 / 2.0);
                if x * x + y * y < radius2 { v.re } else { 0.0 }
            })
            .collect()
    };
    let image = filtered(d, planner);
    let prior = if prior_size > 0 {
        super::prior::prior_input(filtered(prior_size, planner), prior_size)
    } else {
        Vec::new()
    };
    Prepared { image, spectrum, prior }
}

/// Memory for prepared particles above which they are read from their stacks batch by batch.
pub const CACHE_BUDGET_BYTES: usize = 4 << 30;

impl HeteroData {
    /// Opens a STAR/.cs set and prepares it at `image_size` px (rounded down to even, at most
    /// the box). `lazy` forces reading from the stacks per batch; otherwise that happens only
    /// when the prepared set would exceed [`CACHE_BUDGET_BYTES`]. `max_particles` keeps the first N;
    /// `pixel_size_angstrom` replaces the file's pixel size. The decoder's target keeps the
    /// frequencies below `decoder_frequency` × Nyquist of the training size.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        path: &Path,
        image_size: usize,
        encoder_resolution: Option<f64>,
        decoder_frequency: f64,
        lazy: bool,
        max_particles: Option<usize>,
        pixel_size_angstrom: Option<f64>,
        prior_size: usize,
        progress: &mut dyn FnMut(usize, usize) -> bool,
    ) -> HeteroResult<Self> {
        let (mut set, centre) = read_particle_metadata(path, &ParticleOptions::with_pixel_size(pixel_size_angstrom))?;
        if let Some(n) = max_particles {
            set.particles.truncate(n.max(1));
        }
        let reader = StackReader::open(path, &set)?;
        let (box_size, pixel_size) = reader.geometry(path, &set)?;
        let image_size = (image_size.min(box_size) / 2 * 2).max(8);
        let points = half_disk_within(image_size, decoder_frequency);
        let mut data = Self {
            path: path.to_owned(),
            set,
            centre,
            box_size,
            pixel_size,
            image_size,
            points,
            image_scale: 1.0,
            spectrum_scale: 1.0,
            encoder_resolution,
            prior_size,
            reader,
            cache: None,
        };
        // Scales from the first particles.
        let sample: Vec<usize> = (0..data.len().min(500)).collect();
        let prepared = data.prepare(&sample)?;
        let rms = |f: &dyn Fn(&Prepared) -> &[f32]| {
            let (sum, count) = prepared.iter().fold((0f64, 0usize), |(s, c), p| {
                (
                    s + f(p).iter().map(|&v| f64::from(v).powi(2)).sum::<f64>(),
                    c + f(p).len(),
                )
            });
            ((sum / count.max(1) as f64).sqrt() as f32).max(f32::MIN_POSITIVE)
        };
        data.image_scale = rms(&|p| &p.image);
        data.spectrum_scale = rms(&|p| &p.spectrum);
        let bytes =
            data.len() * 4 * (image_size * image_size + 2 * data.points.len() + super::prior::input_len(prior_size));
        if !lazy && bytes <= CACHE_BUDGET_BYTES {
            let mut cache = Vec::with_capacity(data.len());
            for chunk in (0..data.len()).collect::<Vec<_>>().chunks(256) {
                cache.extend(data.prepare(chunk)?);
                if !progress(cache.len(), data.len()) {
                    return Err(HeteroError::Cancelled("cancelled while reading particles"));
                }
            }
            data.cache = Some(cache);
        }
        Ok(data)
    }

    pub fn len(&self) -> usize {
        self.set.particles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.particles.is_empty()
    }

    pub fn is_lazy(&self) -> bool {
        self.cache.is_none()
    }

    /// Pixel size of the training images.
    pub fn training_pixel_size(&self) -> f64 {
        self.pixel_size * self.box_size as f64 / self.image_size as f64
    }

    /// Reads and prepares particles `indices` (scaled), in parallel.
    fn prepare(&self, indices: &[usize]) -> HeteroResult<Vec<Prepared>> {
        let images: Vec<Vec<f32>> = indices
            .iter()
            .map(|&i| self.reader.image(&self.set, i))
            .collect::<Result<_, _>>()?;
        let (is, ss) = (1.0 / self.image_scale, 1.0 / self.spectrum_scale);
        Ok(indices
            .par_iter()
            .zip(images)
            .map_init(FftPlanner::new, |planner, (&i, image)| {
                let origin = self.set.particles[i].shift_angstrom.map(|s| s / self.pixel_size);
                let ctf = self.set.ctf(i);
                let freq = 1.0 / (self.box_size as f64 * self.pixel_size);
                let limit = self.encoder_resolution.map_or(f64::INFINITY, |r| 1.0 / r);
                let filter = |kx: i32, ky: i32| {
                    let (fx, fy) = (f64::from(kx) * freq, f64::from(ky) * freq);
                    if fx.hypot(fy) > limit {
                        0.0
                    } else {
                        ctf.value(fx, fy) as f32
                    }
                };
                let mut p = prepare_image(
                    &image,
                    self.box_size,
                    self.image_size,
                    origin,
                    &self.points,
                    &filter,
                    self.prior_size,
                    planner,
                );
                p.image.iter_mut().for_each(|v| *v *= is);
                p.spectrum.iter_mut().for_each(|v| *v *= ss);
                p
            })
            .collect())
    }

    pub(super) fn prepared(&self, indices: &[usize]) -> HeteroResult<Vec<Prepared>> {
        match &self.cache {
            Some(cache) => Ok(indices.iter().map(|&i| cache[i].clone()).collect()),
            None => self.prepare(indices),
        }
    }

    pub fn rotation(&self, i: usize) -> Mat3 {
        let e = self.set.particles[i].euler_deg;
        relion_matrix(e[0], e[1], e[2])
    }

    /// The network's input for particles `indices`.
    pub fn batch(&self, indices: &[usize]) -> HeteroResult<BatchInput> {
        let prepared = self.prepared(indices)?;
        let p = self.points.len();
        let d = self.image_size as f64;
        let freq = 1.0 / (self.box_size as f64 * self.pixel_size);
        let mut input = BatchInput {
            size: indices.len(),
            points: p,
            images: Vec::with_capacity(indices.len() * self.image_size * self.image_size),
            prior_images: Vec::with_capacity(indices.len() * super::prior::input_len(self.prior_size)),
            coords: Vec::with_capacity(indices.len() * p * 3),
            signs: Vec::with_capacity(indices.len() * p),
            ctf: Vec::with_capacity(indices.len() * p),
            target_re: Vec::with_capacity(indices.len() * p),
            target_im: Vec::with_capacity(indices.len() * p),
        };
        for (&i, prep) in indices.iter().zip(&prepared) {
            let a = self.rotation(i);
            let ctf = self.set.ctf(i);
            input.images.extend_from_slice(&prep.image);
            input.prior_images.extend_from_slice(&prep.prior);
            for &[kx, ky] in &self.points {
                let (x, y) = (f64::from(kx) / d, f64::from(ky) / d);
                let (c, s) = canonical(std::array::from_fn(|k| x * a[0][k] + y * a[1][k]));
                input.coords.extend_from_slice(&c);
                input.signs.push(s);
                input
                    .ctf
                    .push(ctf.value(f64::from(kx) * freq, f64::from(ky) * freq) as f32);
            }
            input.target_re.extend_from_slice(&prep.spectrum[..p]);
            input.target_im.extend_from_slice(&prep.spectrum[p..]);
        }
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_disk_holds_each_frequency_pair_once() {
        let points = half_disk(16);
        for &[kx, ky] in &points {
            assert!(
                !points.contains(&[-kx, -ky]) || (kx == 0 && ky == 0),
                "{kx},{ky} and its mirror"
            );
        }
        // About half the disk of radius 8.
        let disk = std::f64::consts::PI * 64.0 / 2.0;
        assert!((points.len() as f64 - disk).abs() < 12.0, "{}", points.len());
    }

    #[test]
    fn the_decoders_frequency_limit_keeps_the_inner_half_disk() {
        assert_eq!(half_disk_within(32, 1.0), half_disk(32));
        let inner = half_disk_within(32, 0.5);
        assert!(inner.iter().all(|&[kx, ky]| kx * kx + ky * ky < 64));
        let all_inner = half_disk(32)
            .into_iter()
            .filter(|&[kx, ky]| kx * kx + ky * ky < 64)
            .count();
        assert_eq!(inner.len(), all_inner);
        // A quarter of the frequencies, so about a quarter of the decoder's work.
        let ratio = inner.len() as f64 / half_disk(32).len() as f64;
        assert!((ratio - 0.25).abs() < 0.03, "{ratio}");
        // Never empty: the lowest frequencies stay.
        assert!(half_disk_within(32, 0.0).contains(&[1, 0]));
    }

    #[test]
    fn shifted_particles_are_recentred() {
        // A Gaussian blob at the box centre, and the same blob moved by the origin (−2, 3) px:
        // after preparation both spectra agree.
        let b = 32;
        let blob = |cx: f64, cy: f64| -> Vec<f32> {
            (0..b * b)
                .map(|i| {
                    let (x, y) = ((i % b) as f64 - cx, (i / b) as f64 - cy);
                    (-(x * x + y * y) / 8.0).exp() as f32
                })
                .collect()
        };
        let points = half_disk(16);
        let mut planner = FftPlanner::new();
        let centred = prepare_image(
            &blob(16.0, 16.0),
            b,
            16,
            [0.0, 0.0],
            &points,
            &|_, _| 1.0,
            0,
            &mut planner,
        );
        let origin = [-2.0, 3.0];
        let moved = prepare_image(
            &blob(16.0 - origin[0], 16.0 - origin[1]),
            b,
            16,
            origin,
            &points,
            &|_, _| 1.0,
            0,
            &mut planner,
        );
        for (a, m) in centred.spectrum.iter().zip(&moved.spectrum) {
            assert!((a - m).abs() < 1e-5, "{a} vs {m}");
        }
        // The encoder image holds the blob at its centre, downsampled 2×.
        let peak = centred
            .image
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap_or(0);
        assert_eq!((peak % 16, peak / 16), (8, 8));
        // A centred real blob has a real spectrum.
        assert!(centred.spectrum[points.len()..].iter().all(|v| v.abs() < 1e-5));
    }
}
