//! What a refinement is asked to do ([`RefineOptions`]), what it reports at each step
//! ([`RefineProgress`]) and what it hands back ([`Refinement`]).

use crate::formats::model::Structure;
use crate::guided::PriorOptions;

/// Everything a refinement needs besides the particles and the model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RefineOptions {
    /// Final resolution (Å): the FRC uses rings up to 1/resolution (at most Nyquist), and the
    /// atoms start with σ = 0.225 × resolution (within the width bounds).
    pub resolution_angstrom: f64,
    /// First epoch's resolution limit; the limit falls linearly to `resolution_angstrom` by the
    /// last epoch.
    pub start_resolution_angstrom: f64,
    pub epochs: usize,
    pub batch: usize,
    /// Adam learning rates: amplitudes and widths as published (1e-2, 5e-3); the structure's
    /// rate is per whitened mode coefficient (one prior standard deviation = 1).
    pub lr_amplitude: f64,
    pub lr_width: f64,
    pub lr_structure: f64,
    pub amplitude_bounds: (f64, f64),
    pub width_bounds: (f64, f64),
    /// Weight of the quadratic penalty outside the bounds.
    pub bound_penalty: f64,
    /// Weight of the prior term ½|q|² (per particle-batch loss, which is a mean FRC in [−1, 1]).
    pub prior_weight: f64,
    pub prior: PriorOptions,
    /// Re-centre the prior on the current model every this many steps (0: once per epoch).
    pub recentre_every: usize,
    /// Particles held out to score the model each epoch (FRC at the final resolution).
    pub validation_particles: usize,
    pub seed: u64,
}

/// Fewest optimisation steps the automatic epoch count allows: small particle sets get more
/// epochs (500 particles at batch 32 need ~43), large ones the published 10.
pub const AUTO_MIN_STEPS: usize = 600;

impl RefineOptions {
    /// The published 10 epochs, or more when a small set would give fewer than
    /// [`AUTO_MIN_STEPS`] steps.
    pub fn auto_epochs(particles: usize, batch: usize, validation_particles: usize) -> usize {
        let held = validation_particles.min(particles / 5);
        let steps_per_epoch = particles.saturating_sub(held).div_ceil(batch.max(1)).max(1);
        AUTO_MIN_STEPS.div_ceil(steps_per_epoch).max(10)
    }

    /// The highest ring's resolution in `epoch`: 1/resolution rises linearly from
    /// `start_resolution_angstrom` to `resolution_angstrom` over the epochs (coarse to fine).
    pub fn ring_limit_angstrom(&self, epoch: usize) -> f64 {
        let t = if self.epochs > 1 {
            epoch as f64 / (self.epochs - 1) as f64
        } else {
            1.0
        };
        1.0 / ((1.0 - t) / self.start_resolution_angstrom + t / self.resolution_angstrom)
    }

    pub fn new(resolution_angstrom: f64) -> Self {
        Self {
            resolution_angstrom,
            start_resolution_angstrom: 12.0f64.max(resolution_angstrom),
            epochs: 10,
            batch: 32,
            lr_amplitude: 1e-2,
            lr_width: 5e-3,
            lr_structure: 0.05,
            amplitude_bounds: (1.0, 20.0),
            width_bounds: (0.1, 0.8),
            bound_penalty: 1.0,
            prior_weight: 1e-3,
            prior: PriorOptions {
                modes: 200,
                ..PriorOptions::default()
            },
            recentre_every: 20,
            validation_particles: 64,
            seed: 1,
        }
    }
}

/// Reported after every optimisation step.
pub struct RefineProgress<'a> {
    pub epoch: usize,
    pub epochs: usize,
    pub step: usize,
    pub steps_per_epoch: usize,
    /// This batch's mean FRC over its rings.
    pub frc: f64,
    /// The current ring limit in Å.
    pub resolution_angstrom: f64,
    /// Mean FRC of the held-out particles at the final resolution, after each epoch.
    pub validation_frc: Option<f64>,
    /// The current model (heavy atoms, in the model's frame).
    pub positions: &'a [[f64; 3]],
    pub amplitudes: &'a [f64],
    pub widths: &'a [f64],
}

/// One epoch's record.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub resolution_angstrom: f64,
    pub mean_frc: f64,
    pub validation_frc: f64,
    pub seconds: f64,
}

/// The result: the refined heavy-atom model, the best one seen (by held-out FRC), the learned
/// amplitudes and widths, and the history.
#[derive(Debug)]
pub struct Refinement {
    pub start: Structure,
    pub refined: Structure,
    pub best: Structure,
    pub best_epoch: usize,
    pub amplitudes: Vec<f64>,
    pub widths: Vec<f64>,
    pub step_frc: Vec<f64>,
    pub epochs: Vec<EpochRecord>,
    pub completed: bool,
    pub seconds: f64,
    pub particles_per_second: f64,
    pub describe_prior: String,
}
