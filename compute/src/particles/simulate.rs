//! The particle simulator: images of one or more models (or a trajectory's frames) at known
//! poses, shifts and CTFs, with Gaussian noise at a chosen SNR, written as a `.mrcs` stack and a
//! RELION 3.1 STAR file with a ground-truth model index per particle.
//!
//! Conventions (verified by the simulate → reconstruct round trip in the tests): RELION's matrix
//! A places volume point r at (A·r)x,y in the image; the model is centred on its centroid, which
//! is the box centre; `_rlnOriginXAngst` is the shift that re-centres the particle, so the
//! particle itself sits at centre − origin; the CTF is RELION's (see [`crate::particles::ctf`]);
//! SNR is var(signal) / var(noise) over the whole data set (CryoBench).
//!
//! On a hardware GPU the images are projected with the WGSL kernel
//! ([`crate::particles::projection_gpu`]); elsewhere (software adapters included, where the CPU
//! is faster) with [`project`]. Both give the same images to float precision.

use rayon::prelude::*;
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

use crate::formats::model::Structure;
use crate::formats::particles::{OpticsGroup, Particle, ParticleSet};
use crate::geometry::{Mat3, relion_angles, relion_matrix};
use crate::gpu::{AdapterChoice, GpuContext, GpuError};
use crate::maps::density::{GaussianAtoms, GaussianOptions};
use crate::numeric::fft::{fft2_in_place, signed_index};
use crate::numeric::rng::Rng;
use crate::particles::ctf::CtfParams;
use crate::particles::projection_gpu::{GpuProjector, ProjectionAtoms, Views};

/// Which views the particles show.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoseDistribution {
    /// Uniform over SO(3).
    Uniform,
    /// Uniform, but no views within `half_angle_deg` of the z axis (top and bottom views missing).
    MissingCone { half_angle_deg: f64 },
    /// Views clustered around the top view with this spread (degrees, standard deviation).
    PreferredView { spread_deg: f64 },
}

#[derive(Clone, Debug)]
pub struct SimulationOptions {
    pub count: usize,
    pub box_size: usize,
    pub pixel_size_angstrom: f64,
    /// Gaussian width σ = 0.225 × resolution for the atoms.
    pub resolution_angstrom: f64,
    /// var(signal) / var(noise); None for noise-free images.
    pub snr: Option<f64>,
    pub defocus_range_angstrom: (f64, f64),
    /// Largest |U − V|.
    pub astigmatism_angstrom: f64,
    pub voltage_kv: f64,
    pub spherical_aberration_mm: f64,
    pub amplitude_contrast: f64,
    /// Apply the CTF (off for tests of the projection alone).
    pub apply_ctf: bool,
    pub poses: PoseDistribution,
    /// Largest in-plane shift in pixels (uniform in a square).
    pub max_shift_px: f64,
    pub seed: u64,
}

impl Default for SimulationOptions {
    fn default() -> Self {
        Self {
            count: 1000,
            box_size: 64,
            pixel_size_angstrom: 1.5,
            resolution_angstrom: 3.0,
            snr: Some(0.1),
            defocus_range_angstrom: (10_000.0, 25_000.0),
            astigmatism_angstrom: 500.0,
            voltage_kv: 300.0,
            spherical_aberration_mm: 2.7,
            amplitude_contrast: 0.1,
            apply_ctf: true,
            poses: PoseDistribution::Uniform,
            max_shift_px: 3.0,
            seed: 1,
        }
    }
}

/// Simulated images (box² values each, x fastest), their particle metadata, and the model each
/// particle was drawn from.
pub struct SimulatedParticles {
    pub images: Vec<Vec<f32>>,
    pub particles: ParticleSet,
    pub model_index: Vec<usize>,
    /// Each model's centroid (Å): the point that sits at the box centre.
    pub centres: Vec<[f64; 3]>,
}

fn draw_pose(rng: &mut Rng, poses: PoseDistribution) -> [f64; 3] {
    loop {
        let angles = match poses {
            PoseDistribution::PreferredView { spread_deg } => {
                let tilt = (rng.normal() * spread_deg).abs();
                [rng.uniform() * 360.0 - 180.0, tilt, rng.uniform() * 360.0 - 180.0]
            }
            _ => relion_angles(&rng.rotation()),
        };
        if let PoseDistribution::MissingCone { half_angle_deg } = poses {
            let tilt = angles[1];
            if tilt < half_angle_deg || tilt > 180.0 - half_angle_deg {
                continue;
            }
        }
        return angles;
    }
}

/// The projection of `atoms` (centred on `centre`) at `rotation`, shifted by −`origin_px`,
/// onto a box² image: separable 2D Gaussians, each integrating to its amplitude.
pub fn project(
    atoms: &GaussianAtoms,
    centre: [f64; 3],
    rotation: &Mat3,
    origin_px: [f64; 2],
    box_size: usize,
    pixel_size: f64,
) -> Vec<f32> {
    let n = box_size;
    let half = (n / 2) as f64;
    let mut image = vec![0f32; n * n];
    let mut ex = Vec::new();
    let mut ey = Vec::new();
    for i in 0..atoms.len() {
        let p = atoms.positions[i].map(f64::from);
        let r = [p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]];
        let px =
            (rotation[0][0] * r[0] + rotation[0][1] * r[1] + rotation[0][2] * r[2]) / pixel_size + half - origin_px[0];
        let py =
            (rotation[1][0] * r[0] + rotation[1][1] * r[1] + rotation[1][2] * r[2]) / pixel_size + half - origin_px[1];
        let sigma = f64::from(atoms.sigmas[i]) / pixel_size;
        let reach = 5.0 * sigma;
        let (x0, x1) = (
            (px - reach).ceil().max(0.0) as usize,
            (px + reach).floor().min((n - 1) as f64),
        );
        let (y0, y1) = (
            (py - reach).ceil().max(0.0) as usize,
            (py + reach).floor().min((n - 1) as f64),
        );
        if x1 < x0 as f64 || y1 < y0 as f64 {
            continue;
        }
        let (x1, y1) = (x1 as usize, y1 as usize);
        let norm = f64::from(atoms.amplitudes[i]) / (std::f64::consts::TAU * sigma * sigma);
        ex.clear();
        ex.extend((x0..=x1).map(|x| (-(x as f64 - px).powi(2) / (2.0 * sigma * sigma)).exp()));
        ey.clear();
        ey.extend((y0..=y1).map(|y| (-(y as f64 - py).powi(2) / (2.0 * sigma * sigma)).exp()));
        for (j, &fy) in ey.iter().enumerate() {
            let row = &mut image[(y0 + j) * n + x0..(y0 + j) * n + x1 + 1];
            for (v, &fx) in row.iter_mut().zip(&ex) {
                *v += (norm * fy * fx) as f32;
            }
        }
    }
    image
}

/// Multiplies an image by `ctf` (or its sign, for phase flipping) in Fourier space.
pub fn apply_ctf(
    image: &mut [f32],
    box_size: usize,
    pixel_size: f64,
    ctf: &CtfParams,
    sign_only: bool,
    planner: &mut FftPlanner<f32>,
) {
    let n = box_size;
    let mut data: Vec<Complex<f32>> = image.iter().map(|&v| Complex::new(v, 0.0)).collect();
    fft2_in_place(n, &mut data, false, planner);
    for y in 0..n {
        let ky = signed_index(y, n) / (n as f64 * pixel_size);
        for x in 0..n {
            let kx = signed_index(x, n) / (n as f64 * pixel_size);
            let c = ctf.value(kx, ky);
            let factor = if sign_only { c.signum() } else { c };
            data[y * n + x] *= factor as f32;
        }
    }
    fft2_in_place(n, &mut data, true, planner);
    let scale = 1.0 / (n * n) as f32;
    for (v, c) in image.iter_mut().zip(&data) {
        *v = c.re * scale;
    }
}

/// Every particle's projection (no CTF, no noise) on the CPU.
fn project_on_cpu(
    sources: &[(GaussianAtoms, [f64; 3])],
    particles: &[Particle],
    model_index: &[usize],
    options: &SimulationOptions,
) -> Vec<Vec<f32>> {
    particles
        .par_iter()
        .zip(model_index)
        .map(|(p, &source)| {
            let (atoms, centre) = &sources[source];
            let rotation = relion_matrix(p.euler_deg[0], p.euler_deg[1], p.euler_deg[2]);
            let origin_px = p.shift_angstrom.map(|s| s / options.pixel_size_angstrom);
            project(
                atoms,
                *centre,
                &rotation,
                origin_px,
                options.box_size,
                options.pixel_size_angstrom,
            )
        })
        .collect()
}

/// Every particle's projection (no CTF, no noise) with the WGSL kernel, source by source, in
/// dispatches small enough for one storage buffer and for a GPU watchdog.
fn project_on_gpu(
    projector: &GpuProjector,
    sources: &[(GaussianAtoms, [f64; 3])],
    particles: &[Particle],
    model_index: &[usize],
    options: &SimulationOptions,
) -> Result<Vec<Vec<f32>>, GpuError> {
    let pixels = options.box_size * options.box_size;
    let max_binding = projector.context().device.limits().max_storage_buffer_binding_size as usize;
    let mut images = vec![Vec::new(); particles.len()];
    for (source, (atoms, centre)) in sources.iter().enumerate() {
        let members: Vec<usize> = (0..particles.len()).filter(|&i| model_index[i] == source).collect();
        if members.is_empty() {
            continue;
        }
        let positions: Vec<[f32; 3]> = atoms
            .positions
            .iter()
            .map(|p| std::array::from_fn(|k| (f64::from(p[k]) - centre[k]) as f32))
            .collect();
        let widths: Vec<f32> = atoms.sigmas.iter().map(|s| s * s).collect();
        let projection_atoms = ProjectionAtoms {
            positions: &positions,
            amplitudes: &atoms.amplitudes,
            widths: &widths,
        };
        // Each invocation loops over every atom: about 2³¹ atom visits per dispatch.
        let per_dispatch = ((1usize << 31) / (pixels * atoms.len().max(1)))
            .min(max_binding / (4 * pixels).max(1))
            .max(1);
        for chunk in members.chunks(per_dispatch) {
            let rotations: Vec<Mat3> = chunk
                .iter()
                .map(|&i| {
                    let e = particles[i].euler_deg;
                    relion_matrix(e[0], e[1], e[2])
                })
                .collect();
            let origins: Vec<[f64; 2]> = chunk
                .iter()
                .map(|&i| particles[i].shift_angstrom.map(|s| s / options.pixel_size_angstrom))
                .collect();
            let views = Views {
                rotations: &rotations,
                origins_px: &origins,
                box_size: options.box_size,
                pixel_size: options.pixel_size_angstrom,
            };
            let projected = projector.project(&projection_atoms, &views)?;
            for (&i, image) in chunk.iter().zip(projected.chunks_exact(pixels)) {
                images[i] = image.to_vec();
            }
        }
    }
    Ok(images)
}

/// The WGSL projector on a hardware GPU; None on software adapters (llvmpipe), where the CPU
/// projection is faster, or without a GPU.
fn hardware_projector() -> Option<GpuProjector> {
    if !crate::gpu::hardware_gpu_possible() {
        return None;
    }
    GpuContext::new(AdapterChoice::HardwareOnly).ok().map(GpuProjector::new)
}

/// Simulates particles from `models` (each with all its frames as candidates; a particle draws
/// one (model, frame) uniformly and records its running index). Projects on a hardware GPU
/// when there is one, else on the CPU.
pub fn simulate_particles(models: &[Structure], options: &SimulationOptions, stack_name: &str) -> SimulatedParticles {
    simulate_particles_with(models, options, stack_name, hardware_projector().as_ref())
}

/// [`simulate_particles`], projecting with `projector` when given (falling back to the CPU if the
/// device fails), else on the CPU.
pub fn simulate_particles_with(
    models: &[Structure],
    options: &SimulationOptions,
    stack_name: &str,
    projector: Option<&GpuProjector>,
) -> SimulatedParticles {
    let gaussian = GaussianOptions {
        resolution_angstrom: options.resolution_angstrom as f32,
        use_b_factors: false,
        skip_hydrogens: true,
    };
    let mut sources: Vec<(GaussianAtoms, [f64; 3])> = Vec::new();
    for model in models {
        for frame in 0..model.frames.len() {
            let (atoms, _) = GaussianAtoms::from_structure(model, frame, gaussian);
            let n = atoms.len().max(1) as f64;
            let centre = std::array::from_fn(|k| atoms.positions.iter().map(|p| f64::from(p[k])).sum::<f64>() / n);
            sources.push((atoms, centre));
        }
    }
    let mut rng = Rng::new(options.seed);
    let mut particles = Vec::with_capacity(options.count);
    let mut model_index = Vec::with_capacity(options.count);
    let mut ctfs = Vec::with_capacity(options.count);
    for i in 0..options.count {
        let source = (rng.uniform() * sources.len() as f64) as usize % sources.len().max(1);
        let euler = draw_pose(&mut rng, options.poses);
        let shift_px = [
            (rng.uniform() * 2.0 - 1.0) * options.max_shift_px,
            (rng.uniform() * 2.0 - 1.0) * options.max_shift_px,
        ];
        let (lo, hi) = options.defocus_range_angstrom;
        let mean_defocus = lo + rng.uniform() * (hi - lo);
        let astig = rng.uniform() * options.astigmatism_angstrom;
        let angle = rng.uniform() * 180.0 - 90.0;
        let ctf = CtfParams {
            voltage_kv: options.voltage_kv,
            spherical_aberration_mm: options.spherical_aberration_mm,
            amplitude_contrast: options.amplitude_contrast,
            defocus_u_angstrom: mean_defocus + astig / 2.0,
            defocus_v_angstrom: mean_defocus - astig / 2.0,
            defocus_angle_deg: angle,
            phase_shift_deg: 0.0,
            b_factor: 0.0,
        };
        particles.push(Particle {
            image_index_1based: i + 1,
            image_path: stack_name.to_owned(),
            image_whole_file: false,
            euler_deg: euler,
            shift_angstrom: shift_px.map(|s| s * options.pixel_size_angstrom),
            defocus_u_angstrom: ctf.defocus_u_angstrom,
            defocus_v_angstrom: ctf.defocus_v_angstrom,
            defocus_angle_deg: ctf.defocus_angle_deg,
            phase_shift_deg: 0.0,
            optics: 0,
        });
        model_index.push(source);
        ctfs.push(ctf);
    }
    let mut images = match projector {
        Some(gpu) => project_on_gpu(gpu, &sources, &particles, &model_index, options)
            .unwrap_or_else(|_| project_on_cpu(&sources, &particles, &model_index, options)),
        None => project_on_cpu(&sources, &particles, &model_index, options),
    };
    if options.apply_ctf {
        images
            .par_iter_mut()
            .zip(&ctfs)
            .for_each_init(FftPlanner::new, |planner, (image, ctf)| {
                apply_ctf(
                    image,
                    options.box_size,
                    options.pixel_size_angstrom,
                    ctf,
                    false,
                    planner,
                );
            });
    }
    if let Some(snr) = options.snr.filter(|s| *s > 0.0) {
        let signal_variance = images
            .iter()
            .map(|im| crate::maps::Statistics::of(im).rms.powi(2) as f64)
            .sum::<f64>()
            / images.len().max(1) as f64;
        let sigma = (signal_variance / snr).sqrt();
        for image in &mut images {
            for v in image.iter_mut() {
                *v += (sigma * rng.normal()) as f32;
            }
        }
    }
    let optics = vec![OpticsGroup {
        name: "opticsGroup1".into(),
        number: 1,
        pixel_size_angstrom: options.pixel_size_angstrom,
        voltage_kv: options.voltage_kv,
        spherical_aberration_mm: options.spherical_aberration_mm,
        amplitude_contrast: options.amplitude_contrast,
        image_size: Some(options.box_size),
    }];
    SimulatedParticles {
        images,
        particles: ParticleSet { optics, particles },
        model_index,
        centres: sources.iter().map(|s| s.1).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small asymmetric model: a helix of carbons with a heavy tail.
    fn helix_model() -> Structure {
        let frame = (0..40)
            .map(|i| {
                let t = i as f32 * 0.5;
                [6.0 * t.cos(), 6.0 * t.sin(), 0.6 * i as f32 - 12.0]
            })
            .collect();
        crate::test_shapes::ca_chain("helix", frame, |i| if i > 32 { "S" } else { "C" })
    }

    /// The WGSL projection path (forced here, on llvmpipe) gives the CPU path's images.
    #[test]
    fn wgsl_projection_path_gives_the_cpu_images() {
        let Some(context) = crate::gpu::test_context() else {
            return;
        };
        let projector = GpuProjector::new(context);
        let model = helix_model();
        let options = SimulationOptions {
            count: 12,
            box_size: 32,
            pixel_size_angstrom: 1.5,
            resolution_angstrom: 4.0,
            snr: Some(1.0),
            max_shift_px: 2.5,
            seed: 7,
            ..SimulationOptions::default()
        };
        let models = [model.clone(), model];
        let cpu = simulate_particles_with(&models, &options, "p.mrcs", None);
        let gpu = simulate_particles_with(&models, &options, "p.mrcs", Some(&projector));
        assert_eq!(cpu.particles, gpu.particles);
        assert_eq!(cpu.model_index, gpu.model_index);
        assert_eq!(cpu.images.len(), options.count);
        let peak = cpu.images.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
        let worst = cpu
            .images
            .iter()
            .flatten()
            .zip(gpu.images.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("CPU vs WGSL projection: worst difference {worst:.3e} of peak {peak:.3e}");
        assert!(worst < 1e-4 * peak, "images differ by {worst} (peak {peak})");
    }
}
