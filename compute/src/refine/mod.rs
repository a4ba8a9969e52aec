//! Particle-driven refinement (the CoCoFold method, docs/science.md §4): the model, drawn as one
//! Gaussian per heavy atom, is projected at each particle's known pose, multiplied by its CTF and
//! compared with the raw image by a Fourier ring correlation loss averaged over rings up to a
//! maximum frequency. Per-atom amplitudes (bounded 1–20) and widths (σ² bounded 0.1–0.8 Å²) are
//! learned beside the structure with a quadratic penalty outside the bounds; Adam updates all of
//! them, one batch of particles at a time.
//!
//! The structure is not free coordinates: it moves in the basis of the elastic-network prior of
//! the guided sampler ([`crate::guided::ElasticPrior`]): x = x₀ + B·diag(√v)·q with whitened
//! coefficients q under a N(0, I) prior, so only protein-like collective motions are reachable,
//! and the prior is re-centred (residue geometry restored, modes rebuilt) every few steps so
//! large motions stay reachable. The loss runs coarse to fine: the highest ring rises from
//! `start_resolution` to `resolution` over the epochs.

pub mod forward;
mod gallery;
mod options;
mod refiner;

use std::time::Instant;

use crate::formats::model::Structure;
use crate::numeric::rng::Rng;
use crate::particles::data::ParticleData;
use crate::training::{DataParallel, WorkerPanic};
use refiner::Refiner;

pub use burn::tensor::Device;
pub use forward::{Batch, ForwardModel};
pub use gallery::Gallery;
pub use options::{AUTO_MIN_STEPS, EpochRecord, RefineOptions, RefineProgress, Refinement};

/// What can stop a refinement.
#[derive(Debug, thiserror::Error)]
pub enum RefineError {
    /// The model, the particles or the options cannot be refined as given.
    #[error("{0}")]
    Input(String),
    /// A training step failed (a worker panicked).
    #[error(transparent)]
    Training(#[from] WorkerPanic),
}

/// The device refinement trains on: burn's wgpu backend on a hardware GPU when cryoforge is built
/// with the `burn-wgpu` feature (and `CRYOFORGE_GPU` is not `0`), otherwise Flex on the CPU.
pub fn training_device() -> Device {
    #[cfg(feature = "burn-wgpu")]
    if crate::gpu::hardware_gpu_possible() && std::env::var("CRYOFORGE_GPU").map_or(true, |v| v != "0") {
        return Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    }
    Device::flex()
}

/// Refines `structure` (frame 0, heavy atoms) against `data`. `centre` is where the box centre
/// sits in the model's frame. `on_step` is called after every step and stops the run when it
/// returns false; the model reached so far is kept.
pub fn refine_particles(
    structure: &Structure,
    data: &ParticleData,
    centre: [f64; 3],
    options: &RefineOptions,
    device: &Device,
    on_step: &mut dyn FnMut(&RefineProgress<'_>) -> bool,
) -> Result<Refinement, RefineError> {
    crate::tune_allocator();
    let started = Instant::now();
    if !(options.resolution_angstrom.is_finite() && options.resolution_angstrom > 0.0) {
        return Err(RefineError::Input(format!(
            "resolution must be positive, got {}",
            options.resolution_angstrom
        )));
    }
    if options.epochs == 0 || options.batch == 0 {
        return Err(RefineError::Input("epochs and batch must be at least 1".into()));
    }
    let mut refiner = Refiner::new(structure, options, device)?;

    // Hold out a few particles to score each epoch; train on the rest in shuffled batches.
    let mut rng = Rng::new(options.seed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    rng.shuffle_by_uniform(&mut order);
    let held = options.validation_particles.min(data.len() / 5);
    let (validation, train) = order.split_at(held);
    let (validation, mut train) = (validation.to_vec(), train.to_vec());
    if train.is_empty() {
        return Err(RefineError::Input("no particles to train on".into()));
    }
    let steps_per_epoch = train.len().div_ceil(options.batch);
    let parallel = DataParallel::per_thread();
    let final_ring = ForwardModel::ring_of_resolution(data.box_size, data.pixel_size, options.resolution_angstrom);
    let final_model = ForwardModel::new(device, data.box_size, data.pixel_size, final_ring);

    let mut step_frc = Vec::new();
    let mut epochs = Vec::new();
    let mut best = (f64::NEG_INFINITY, refiner.positions.clone(), 0usize);
    let mut completed = true;
    let mut seen = 0usize;
    let mut report = |refiner: &Refiner<'_>, epoch, step, frc, resolution_angstrom, validation_frc| {
        on_step(&RefineProgress {
            epoch,
            epochs: options.epochs,
            step,
            steps_per_epoch,
            frc,
            resolution_angstrom,
            validation_frc,
            positions: &refiner.points(),
            amplitudes: &refiner.amplitudes,
            widths: &refiner.widths,
        })
    };
    'epochs: for epoch in 0..options.epochs {
        let epoch_started = Instant::now();
        let resolution = options.ring_limit_angstrom(epoch);
        let ring = ForwardModel::ring_of_resolution(data.box_size, data.pixel_size, resolution);
        let forward = ForwardModel::new(device, data.box_size, data.pixel_size, ring);
        rng.shuffle_by_uniform(&mut train);
        let mut epoch_frc = 0.0;
        for (step, chunk) in train.chunks(options.batch).enumerate() {
            let frc = refiner.step(&forward, data, centre, chunk, &parallel, steps_per_epoch)?;
            step_frc.push(frc);
            epoch_frc += frc;
            seen += chunk.len();
            if !report(&refiner, epoch, step, frc, resolution, None) {
                completed = false;
                break 'epochs;
            }
        }
        let mean_frc = epoch_frc / steps_per_epoch as f64;
        let validation_frc = if validation.is_empty() {
            mean_frc
        } else {
            refiner.score(&final_model, data, centre, &validation)
        };
        if validation_frc > best.0 {
            best = (validation_frc, refiner.positions.clone(), epoch);
        }
        epochs.push(EpochRecord {
            epoch,
            resolution_angstrom: resolution,
            mean_frc,
            validation_frc,
            seconds: epoch_started.elapsed().as_secs_f64(),
        });
        if !report(
            &refiner,
            epoch,
            steps_per_epoch,
            mean_frc,
            resolution,
            Some(validation_frc),
        ) {
            completed = false;
            break;
        }
    }
    // The final model keeps each residue's own geometry.
    let refined = refiner.model_of(&refiner.positions);
    let best_model = if best.0.is_finite() {
        refiner.model_of(&best.1)
    } else {
        refined.clone()
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(Refinement {
        start: refiner.heavy.clone(),
        refined,
        best: best_model,
        best_epoch: best.2,
        describe_prior: refiner.describe_prior(),
        amplitudes: refiner.amplitudes,
        widths: refiner.widths,
        step_frc,
        epochs,
        completed,
        seconds,
        particles_per_second: seen as f64 / seconds.max(1e-9),
    })
}
