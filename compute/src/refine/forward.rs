//! The differentiable forward model of particle refinement, in burn: every heavy atom a 2D
//! Gaussian at its projected position (the separable form of docs/science.md §2, image = Gyᵀ·diag(a)·Gx
//! as one batched matrix product), the particle's in-plane shift, its CTF in Fourier space, and
//! the Fourier ring correlation against the particle image.
//!
//! Conventions are the simulator's ([`crate::particles::simulate`]): volume point r (relative to the box
//! centre) lands at pixel (A·r)x,y / pixel + box/2 − origin, each 2D Gaussian integrates to its
//! amplitude, and the CTF is RELION's. The Fourier transform is a DFT written as matrix products
//! (x over the non-negative half, as a real FFT keeps), so it is differentiable on every backend
//! and needs no power-of-two box. FRC rings are integer radii in pixels of the full box's
//! frequency grid (RELION's binning: ring r holds |k|·box rounded to r).

use burn::tensor::{Device, Tensor, TensorData};

use crate::geometry::Mat3;
use crate::particles::ctf::CtfParams;

/// What changes per batch: poses, shifts and CTFs of the particles, and their images.
pub struct Batch {
    /// The first two rows of each particle's RELION matrix A, as [B, 3, 2] (columns = rows of A).
    pub rotations: Tensor<3>,
    /// Pixel offset of the box centre for each particle: box/2 − origin, as [B, 1, 2].
    pub offsets: Tensor<3>,
    /// CTF on the half-plane frequency grid, [B, box, box/2 + 1].
    pub ctf: Tensor<3>,
    /// The particle images' spectra on the same grid (real, imaginary).
    pub observed: (Tensor<3>, Tensor<3>),
    pub size: usize,
}

/// The constant parts of the forward model for one box size and pixel size.
pub struct ForwardModel {
    pub device: Device,
    pub box_size: usize,
    pub pixel_size: f64,
    /// Pixel coordinates 0…box−1 as [1, 1, box].
    grid: Tensor<3>,
    /// DFT matrices: rows (full, [box, box]) and columns (half, [box/2+1, box]) as cos and sin.
    cos_rows: Tensor<2>,
    sin_rows: Tensor<2>,
    cos_cols_t: Tensor<2>,
    sin_cols_t: Tensor<2>,
    /// [box·(box/2+1), rings] 0/1 ring membership, and the number of rings used.
    rings: Tensor<2>,
    pub ring_count: usize,
}

/// Frequency (1/Å) of row or column index `i` of a DFT of length `n` with pixel size `apix`.
fn frequency(i: usize, n: usize, apix: f64) -> f64 {
    let signed = if i <= n / 2 { i as f64 } else { i as f64 - n as f64 };
    signed / (n as f64 * apix)
}

impl ForwardModel {
    /// `max_ring` is the highest ring (in pixels of frequency radius) the loss uses.
    pub fn new(device: &Device, box_size: usize, pixel_size: f64, max_ring: usize) -> Self {
        let n = box_size;
        let half = n / 2 + 1;
        let tau = std::f64::consts::TAU;
        let matrix = |rows: usize, f: &dyn Fn(usize, usize) -> f64| -> Tensor<2> {
            let values: Vec<f32> = (0..rows * n).map(|i| f(i / n, i % n) as f32).collect();
            Tensor::from_data(TensorData::new(values, [rows, n]), device)
        };
        let cos = |k: usize, x: usize| (tau * (k * x) as f64 / n as f64).cos();
        let sin = |k: usize, x: usize| (tau * (k * x) as f64 / n as f64).sin();
        // The Nyquist ring is left out: a real image does not keep the CTF's asymmetry there.
        let max_ring = max_ring.clamp(1, n / 2 - 1);
        let mut ring_values = vec![0f32; n * half * max_ring];
        for y in 0..n {
            let ky = if y <= n / 2 { y as f64 } else { y as f64 - n as f64 };
            for x in 0..half {
                let r = (ky.hypot(x as f64)).round() as usize;
                if (1..=max_ring).contains(&r) {
                    ring_values[(y * half + x) * max_ring + r - 1] = 1.0;
                }
            }
        }
        Self {
            device: device.clone(),
            box_size: n,
            pixel_size,
            grid: Tensor::from_data(
                TensorData::new((0..n).map(|i| i as f32).collect::<Vec<_>>(), [1, 1, n]),
                device,
            ),
            cos_rows: matrix(n, &cos),
            sin_rows: matrix(n, &sin),
            cos_cols_t: matrix(half, &cos).transpose(),
            sin_cols_t: matrix(half, &sin).transpose(),
            rings: Tensor::from_data(TensorData::new(ring_values, [n * half, max_ring]), device),
            ring_count: max_ring,
        }
    }

    /// The highest ring for a resolution limit in Å.
    pub fn ring_of_resolution(box_size: usize, pixel_size: f64, resolution_angstrom: f64) -> usize {
        ((box_size as f64 * pixel_size / resolution_angstrom).floor() as usize).clamp(1, box_size / 2 - 1)
    }

    /// A batch's tensors. `rotations` are RELION matrices, `origins_px` RELION origins in pixels.
    pub fn batch(&self, rotations: &[Mat3], origins_px: &[[f64; 2]], ctfs: &[CtfParams], images: &[&[f32]]) -> Batch {
        let b = rotations.len();
        let n = self.box_size;
        let half = n / 2 + 1;
        let mut rot = Vec::with_capacity(b * 6);
        for a in rotations {
            for (x, y) in a[0].iter().zip(&a[1]) {
                rot.push(*x as f32);
                rot.push(*y as f32);
            }
        }
        let centre = (n / 2) as f64;
        let offsets: Vec<f32> = origins_px
            .iter()
            .flat_map(|o| [(centre - o[0]) as f32, (centre - o[1]) as f32])
            .collect();
        let mut ctf = Vec::with_capacity(b * n * half);
        for c in ctfs {
            for y in 0..n {
                let ky = frequency(y, n, self.pixel_size);
                for x in 0..half {
                    ctf.push(c.value(frequency(x, n, self.pixel_size), ky) as f32);
                }
            }
        }
        let pixels: Vec<f32> = images.iter().flat_map(|im| im.iter().copied()).collect();
        let observed = self.spectrum(Tensor::from_data(TensorData::new(pixels, [b, n, n]), &self.device));
        Batch {
            rotations: Tensor::from_data(TensorData::new(rot, [b, 3, 2]), &self.device),
            offsets: Tensor::from_data(TensorData::new(offsets, [b, 1, 2]), &self.device),
            ctf: Tensor::from_data(TensorData::new(ctf, [b, n, half]), &self.device),
            observed,
            size: b,
        }
    }

    /// Projections [B, box, box] of atoms at `positions` ([N, 3], Å, relative to the box
    /// centre) with amplitudes `amplitudes` ([N]) and widths σ² `widths` ([N], Å²).
    pub fn project(&self, positions: Tensor<2>, amplitudes: Tensor<1>, widths: Tensor<1>, batch: &Batch) -> Tensor<3> {
        let [n_atoms, _] = positions.dims();
        let b = batch.size;
        let apix2 = (self.pixel_size * self.pixel_size) as f32;
        // [B, N, 2] pixel positions of every atom in every particle.
        let rotated = positions
            .unsqueeze_dim::<3>(0)
            .expand([b, n_atoms, 3])
            .matmul(batch.rotations.clone());
        let pixel = rotated.div_scalar(self.pixel_size as f32) + batch.offsets.clone().expand([b, n_atoms, 2]);
        let px = pixel.clone().narrow(2, 0, 1);
        let py = pixel.narrow(2, 1, 1);
        // σ² in pixels², per atom, broadcast over batch and pixels.
        let sigma2 = widths.div_scalar(apix2).reshape([1, n_atoms, 1]);
        let inv_two_sigma2 = sigma2.clone().mul_scalar(2.0).recip();
        let norm = amplitudes.reshape([1, n_atoms, 1]) / sigma2.mul_scalar(std::f32::consts::TAU);
        let gx = ((self.grid.clone() - px).square().neg() * inv_two_sigma2.clone()).exp();
        let gy = ((self.grid.clone() - py).square().neg() * inv_two_sigma2).exp() * norm;
        gy.swap_dims(1, 2).matmul(gx)
    }

    /// The half-plane spectrum (real, imaginary) of real images [B, box, box]: F = D·I·Dᵀ with
    /// D = e^{−2πi k x / box}, columns restricted to k ≥ 0.
    pub fn spectrum(&self, images: Tensor<3>) -> (Tensor<3>, Tensor<3>) {
        let [b, n, _] = images.dims();
        let half = n / 2 + 1;
        let t1 = images
            .clone()
            .matmul(self.cos_cols_t.clone().unsqueeze_dim::<3>(0).expand([b, n, half]));
        let t2 = images.matmul(self.sin_cols_t.clone().unsqueeze_dim::<3>(0).expand([b, n, half]));
        let cr = self.cos_rows.clone().unsqueeze_dim::<3>(0).expand([b, n, n]);
        let sr = self.sin_rows.clone().unsqueeze_dim::<3>(0).expand([b, n, n]);
        let re = cr.clone().matmul(t1.clone()) - sr.clone().matmul(t2.clone());
        let im = (sr.matmul(t1) + cr.matmul(t2)).neg();
        (re, im)
    }

    /// FRC per particle and ring, [B, rings], of the CTF-modulated projections against the
    /// batch's images.
    pub fn frc(&self, projections: Tensor<3>, batch: &Batch) -> Tensor<2> {
        let b = batch.size;
        let n = self.box_size;
        let cells = n * (n / 2 + 1);
        let (re, im) = self.spectrum(projections);
        let (re, im) = (re * batch.ctf.clone(), im * batch.ctf.clone());
        let (ore, oim) = batch.observed.clone();
        let rings = self
            .rings
            .clone()
            .unsqueeze_dim::<3>(0)
            .expand([b, cells, self.ring_count]);
        let per_ring = |t: Tensor<3>| {
            t.reshape([b, 1, cells])
                .matmul(rings.clone())
                .reshape([b, self.ring_count])
        };
        let cross = per_ring(re.clone() * ore.clone() + im.clone() * oim.clone());
        let model_power = per_ring(re.square() + im.square());
        let image_power = per_ring(ore.square() + oim.square());
        cross / (model_power * image_power).add_scalar(1e-20).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::relion_matrix;
    use crate::maps::density::GaussianAtoms;
    use crate::particles::simulate::{apply_ctf, project};

    fn atoms() -> GaussianAtoms {
        let positions: Vec<[f32; 3]> = (0..40)
            .map(|i| {
                let t = i as f32 * 0.6;
                [6.0 * t.cos(), 6.0 * t.sin(), 0.5 * i as f32 - 10.0]
            })
            .collect();
        let n = positions.len();
        GaussianAtoms {
            positions,
            amplitudes: (0..n).map(|i| 6.0 + (i % 3) as f32).collect(),
            sigmas: vec![1.6; n],
        }
    }

    fn ctf() -> CtfParams {
        CtfParams {
            voltage_kv: 300.0,
            spherical_aberration_mm: 2.7,
            amplitude_contrast: 0.1,
            defocus_u_angstrom: 15_000.0,
            defocus_v_angstrom: 14_000.0,
            defocus_angle_deg: 30.0,
            phase_shift_deg: 0.0,
            b_factor: 0.0,
        }
    }

    fn inputs(atoms: &GaussianAtoms, device: &Device) -> (Tensor<2>, Tensor<1>, Tensor<1>) {
        let n = atoms.len();
        let flat: Vec<f32> = atoms.positions.iter().flatten().copied().collect();
        (
            Tensor::from_data(TensorData::new(flat, [n, 3]), device),
            Tensor::from_data(TensorData::new(atoms.amplitudes.clone(), [n]), device),
            Tensor::from_data(
                TensorData::new(atoms.sigmas.iter().map(|s| s * s).collect::<Vec<_>>(), [n]),
                device,
            ),
        )
    }

    #[test]
    fn projection_matches_the_simulator_and_frc_of_the_truth_is_one() {
        let device = Device::flex();
        let atoms = atoms();
        let (n, apix) = (32usize, 1.5);
        let rotation = relion_matrix(40.0, 70.0, -20.0);
        let origin = [1.5, -2.0];
        let mut expected = project(&atoms, [0.0; 3], &rotation, origin, n, apix);
        let model = ForwardModel::new(&device, n, apix, n / 2 - 1);
        let batch = model.batch(&[rotation], &[origin], &[ctf()], &[expected.as_slice()]);
        let (pos, amp, wid) = inputs(&atoms, &device);
        let image = model
            .project(pos.clone(), amp.clone(), wid.clone(), &batch)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        let worst = image
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let peak = expected.iter().copied().fold(0f32, f32::max);
        assert!(worst < 1e-3 * peak, "projection differs by {worst} (peak {peak})");

        // The CTF-modulated simulator image against the model with its CTF: FRC 1 on every ring.
        let mut planner = rustfft::FftPlanner::new();
        apply_ctf(&mut expected, n, apix, &ctf(), false, &mut planner);
        let batch = model.batch(&[rotation], &[origin], &[ctf()], &[expected.as_slice()]);
        let frc = model
            .frc(model.project(pos.clone(), amp.clone(), wid.clone(), &batch), &batch)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        let lowest = frc.iter().copied().fold(1f32, f32::min);
        assert!(lowest > 0.999, "FRC of the truth {frc:?}");

        // Inverted contrast (cryoDRGN's CTF sign against RELION's) anti-correlates.
        let mut other = project(&atoms, [0.0; 3], &rotation, origin, n, apix);
        apply_ctf(&mut other, n, apix, &ctf(), false, &mut planner);
        other.iter_mut().for_each(|v| *v = -*v);
        let batch = model.batch(&[rotation], &[origin], &[ctf()], &[other.as_slice()]);
        let frc = model
            .frc(model.project(pos, amp, wid, &batch), &batch)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        assert!(frc[0] < -0.99, "inverted contrast must anti-correlate: {frc:?}");
    }

    #[test]
    fn position_gradients_match_finite_differences() {
        let device = Device::flex();
        let atoms = atoms();
        let (n, apix) = (24usize, 2.0);
        let rotation = relion_matrix(10.0, 100.0, 45.0);
        let origin = [0.5, 0.25];
        let mut target = atoms.clone();
        for (i, p) in target.positions.iter_mut().enumerate() {
            p[i % 3] += 0.8;
        }
        let mut image = project(&target, [0.0; 3], &rotation, origin, n, apix);
        let mut planner = rustfft::FftPlanner::new();
        apply_ctf(&mut image, n, apix, &ctf(), false, &mut planner);
        let model = ForwardModel::new(&device, n, apix, 6);
        let loss_of = |flat: &[f32], dev: &Device| -> Tensor<1> {
            let (_, amp, wid) = inputs(&atoms, dev);
            let pos = Tensor::<2>::from_data(TensorData::new(flat.to_vec(), [atoms.len(), 3]), dev);
            let batch = model.batch(&[rotation], &[origin], &[ctf()], &[image.as_slice()]);
            model.frc(model.project(pos, amp, wid, &batch), &batch).mean()
        };
        let flat: Vec<f32> = atoms.positions.iter().flatten().copied().collect();
        let ad = device.clone().autodiff();
        let pos = Tensor::<2>::from_data(TensorData::new(flat.clone(), [atoms.len(), 3]), &ad).require_grad();
        let (_, amp, wid) = inputs(&atoms, &ad);
        let batch = model.batch(&[rotation], &[origin], &[ctf()], &[image.as_slice()]);
        let loss = model.frc(model.project(pos.clone(), amp, wid, &batch), &batch).mean();
        let grads = loss.backward();
        let gradient = pos
            .grad(&grads)
            .expect("gradient")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        let h = 1e-2f32;
        for i in [0usize, 7, 31, 62, 100] {
            let (mut plus, mut minus) = (flat.clone(), flat.clone());
            plus[i] += h;
            minus[i] -= h;
            let fd = (loss_of(&plus, &device).into_scalar::<f32>() - loss_of(&minus, &device).into_scalar::<f32>())
                / (2.0 * h);
            let scale = gradient.iter().map(|g| g.abs()).fold(0f32, f32::max);
            assert!(
                (fd - gradient[i]).abs() < 0.02 * scale + 1e-6,
                "coordinate {i}: autodiff {} vs finite difference {fd}",
                gradient[i]
            );
        }
    }
}
