//! Map-guided structure sampling (the CryoBoltz method, docs/science.md §4): an EDM reverse
//! diffusion over the heavy-atom coordinates of a starting model, whose denoised estimate is
//! pushed into a map, first globally (Sinkhorn divergence to the map's point cloud) and then
//! locally (density L2), each push rescaled to the size of the unguided update. The built-in
//! denoiser is the exact posterior mean of an elastic-network prior of the model ([`prior`]); a
//! learned one plugs in through [`Denoiser`]. Every step's noisy sample and denoised estimate are
//! recorded with the step's losses, so the whole trajectory can be replayed. Guidance sees only
//! the model's zone of the map ([`zone`]), which follows the estimate as it moves.

pub mod geometry_check;
pub mod guidance;
mod network;
pub mod pointcloud;
pub mod prior;
pub mod schedule;
pub mod sinkhorn;
pub mod zone;

use std::time::Instant;

use crate::formats::model::Structure;
use crate::maps::DensityMap;
use crate::maps::density::{GaussianAtoms, GaussianOptions};
use crate::models::compare::{superpose, superposed_rmsd};
use crate::numeric::rng::Rng;

pub use geometry_check::GeometryReport;

/// Why a guided fit cannot run.
#[derive(Debug, thiserror::Error)]
pub enum GuidedError {
    /// The model, the map or the options cannot be used as given.
    #[error("{0}")]
    Input(String),
    #[error("the map is flat (every voxel has the same value)")]
    FlatMap,
    #[error("no density above level {level:.4} survives dust removal")]
    NoDensity { level: f32 },
    #[error("the mask covers no voxel of the map at level {level}")]
    EmptyMask { level: f32 },
}
pub use guidance::{GuidanceOptions, MapGuidance};
pub use prior::{Denoiser, ElasticPrior, PriorOptions};
pub use schedule::{Phase, Schedule, ScheduleKind};
pub use zone::ZoneOptions;

/// Everything a guided fit needs besides the map and the model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GuidedFitOptions {
    pub schedule: Schedule,
    pub schedule_kind: ScheduleKind,
    pub guidance: GuidanceOptions,
    pub prior: PriorOptions,
    /// Independent samples, each from its own seed; ranked by map–model correlation.
    pub samples: usize,
    pub seed: u64,
    /// Off for the control run: the same sampler with no map terms.
    pub guidance_enabled: bool,
    /// Re-centre the prior on the current estimate every this many guided steps (0: never).
    pub recentre_every: usize,
    /// Step along ∇ₓₜ L(x̂₀(xₜ)) (the gradient pulled back through the denoiser, as diffusion
    /// posterior sampling does) rather than ∇L(x̂₀).
    pub pull_back_gradient: bool,
    /// Local guidance compares map and model blurred by this × the step's noise level (Å):
    /// coarse to fine as the sample sharpens; 0 for the map as it is.
    pub local_blur_per_sigma: f64,
    /// Put every residue's own geometry back on the final model.
    pub restore_residue_geometry: bool,
    /// Recorded trajectories (noisy and denoised, all samples) are decimated to fit this.
    pub max_trajectory_bytes: usize,
    /// Weight of a soft repulsion (see [`geometry_check::Topology::repulsion`]) added to the unit
    /// guidance gradient in guided steps; 0 for none.
    #[serde(default)]
    pub clash_weight: f64,
    /// Atoms that were not in contact in the start repel below this distance (Å).
    #[serde(default = "default_contact")]
    pub contact_angstrom: f64,
}

fn default_contact() -> f64 {
    3.0
}

impl GuidedFitOptions {
    pub fn new(resolution_angstrom: f32, kind: ScheduleKind) -> Self {
        let mut guidance = GuidanceOptions::new(resolution_angstrom);
        guidance.low_pass = kind.low_pass_map();
        Self {
            schedule: Schedule::published(),
            schedule_kind: kind,
            guidance,
            prior: PriorOptions::default(),
            samples: 1,
            seed: 1,
            guidance_enabled: true,
            recentre_every: 5,
            pull_back_gradient: true,
            local_blur_per_sigma: 0.0,
            restore_residue_geometry: true,
            max_trajectory_bytes: 1 << 30,
            clash_weight: 0.03,
            contact_angstrom: default_contact(),
        }
    }
}

/// One step's numbers.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepRecord {
    pub step: usize,
    pub phase: Phase,
    /// The noise level the step starts from and the (raised) level it denoises at, Å.
    pub sigma: f64,
    pub sigma_hat: f64,
    pub guidance_scale: f64,
    /// Sinkhorn divergence (global steps) and z-scored density L2 (local steps).
    pub sinkhorn: Option<f64>,
    pub density_l2: Option<f64>,
    /// Correlation of the denoised estimate with the map (the map as guidance sees it).
    pub correlation: f64,
    /// All-atom RMSD of the denoised estimate from the starting model, after superposition, Å.
    pub rmsd_to_start_angstrom: f64,
}

/// Where a sample's time went, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timings {
    pub denoise_seconds: f64,
    pub guidance_seconds: f64,
    pub recentre_seconds: f64,
    pub scoring_seconds: f64,
}

/// A sample's trajectory: coordinates of the sampled atoms at the recorded steps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trajectory {
    pub steps: Vec<usize>,
    pub noisy: Vec<Vec<[f32; 3]>>,
    pub denoised: Vec<Vec<[f32; 3]>>,
}

/// One finished sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub index: usize,
    pub seed: u64,
    pub positions: Vec<[f32; 3]>,
    pub correlation: f64,
    pub steps: Vec<StepRecord>,
    pub trajectory: Trajectory,
    pub geometry: GeometryReport,
    pub seconds: f64,
    pub timings: Timings,
    /// False when the run was cancelled before this sample finished.
    pub complete: bool,
}

/// The outcome of a guided fit.
#[derive(Clone, Debug)]
pub struct GuidedFit {
    /// The sampled (heavy) atoms as a model of their own, in the starting coordinates.
    pub model: Structure,
    /// Best first (by correlation with the map).
    pub samples: Vec<Sample>,
    pub start_correlation: f64,
    pub start_geometry: GeometryReport,
    pub cloud_points: usize,
    pub cloud_level: f32,
    /// Voxels in the zone around the start (every voxel when guidance sees the whole map).
    pub zone_voxels: usize,
    pub zone: String,
    pub sinkhorn_atoms: usize,
    pub prior: String,
    pub trajectory_stride: usize,
    pub seconds: f64,
    pub cancelled: bool,
}

impl GuidedFit {
    /// The model with a sample's coordinates.
    pub fn sample_model(&self, sample: &Sample) -> Structure {
        Structure {
            name: format!("{}_sample{}", self.model.name, sample.index + 1),
            atoms: self.model.atoms.clone(),
            frames: vec![sample.positions.clone()],
            info: self.model.info.clone(),
        }
    }

    /// The model with every recorded frame of a sample's trajectory (denoised or noisy).
    pub fn trajectory_model(&self, sample: &Sample, noisy: bool) -> Structure {
        let frames = if noisy {
            sample.trajectory.noisy.clone()
        } else {
            sample.trajectory.denoised.clone()
        };
        Structure {
            name: format!("{}_sample{}_trajectory", self.model.name, sample.index + 1),
            atoms: self.model.atoms.clone(),
            frames,
            info: self.model.info.clone(),
        }
    }
}

/// What the caller sees after every step.
pub struct StepProgress<'a> {
    pub sample: usize,
    pub samples: usize,
    pub total_steps: usize,
    pub record: &'a StepRecord,
    /// The denoised estimate at this step.
    pub denoised: &'a [[f64; 3]],
}

/// The heavy atoms of frame 0 of `structure` as a model of their own: what guided sampling
/// moves, writes and streams.
pub fn heavy_atom_model(structure: &Structure, resolution_angstrom: f32) -> Structure {
    let (atoms, kept) = GaussianAtoms::from_structure(structure, 0, GaussianOptions::molmap(resolution_angstrom));
    Structure {
        name: structure.name.clone(),
        atoms: kept.iter().map(|&i| structure.atoms[i].clone()).collect(),
        frames: vec![atoms.positions],
        info: structure.info.clone(),
    }
}

fn to_points(flat: &[f64]) -> Vec<[f64; 3]> {
    flat.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
}

fn to_f32(points: &[[f64; 3]]) -> Vec<[f32; 3]> {
    points.iter().map(|p| p.map(|v| v as f32)).collect()
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Runs a guided fit of `structure` (frame 0) into `map`. `on_step` is called after every step
/// and stops the run when it returns false; what was finished is kept (a partial sample is
/// returned, marked incomplete).
pub fn guided_fit(
    structure: &Structure,
    map: &DensityMap,
    options: &GuidedFitOptions,
    on_step: &mut dyn FnMut(&StepProgress<'_>) -> bool,
) -> Result<GuidedFit, GuidedError> {
    let resolution = options.guidance.resolution_angstrom;
    if !(resolution.is_finite() && resolution > 0.0) {
        return Err(GuidedError::Input(format!(
            "resolution must be positive, got {resolution}"
        )));
    }
    if structure.frames.is_empty() {
        return Err(GuidedError::Input("the model has no coordinates".into()));
    }
    if options.schedule.total_steps() == 0 {
        return Err(GuidedError::Input("the schedule has no steps".into()));
    }
    let started = Instant::now();
    let (atoms, kept) = GaussianAtoms::from_structure(structure, 0, GaussianOptions::molmap(resolution));
    if atoms.len() < 4 {
        return Err(GuidedError::Input(format!(
            "the model has {} heavy atoms; guided fitting needs at least 4",
            atoms.len()
        )));
    }
    let model = Structure {
        name: structure.name.clone(),
        atoms: kept.iter().map(|&i| structure.atoms[i].clone()).collect(),
        frames: vec![atoms.positions.clone()],
        info: structure.info.clone(),
    };
    let start: Vec<[f64; 3]> = atoms.positions.iter().map(|p| p.map(f64::from)).collect();
    let mut guidance = MapGuidance::new(map, &atoms, &options.guidance)?;
    let zone_voxels = guidance.zone_voxels();
    let topology = geometry_check::Topology::of(&start);
    let all: Vec<usize> = (0..model.atoms.len()).collect();

    let steps = options.schedule.total_steps();
    let frame_bytes = 2 * 12 * start.len();
    let budget_frames = (options.max_trajectory_bytes / frame_bytes.max(1) / options.samples.max(1)).max(2);
    let stride = steps.div_ceil(budget_frames).max(1);

    let mut samples = Vec::new();
    let mut cancelled = false;
    let mut prior_description = String::new();
    for index in 0..options.samples.max(1) {
        let seed = options.seed.wrapping_add(index as u64);
        let mut prior = ElasticPrior::new(&model, &all, &start, options.prior.clone());
        prior_description = prior.describe();
        let mut run = SampleRun {
            options,
            start: &start,
            atoms: &atoms,
            guidance: &mut guidance,
            index,
            samples: options.samples.max(1),
            stride,
        };
        let sample = run.sample(&mut prior, seed, &topology, on_step);
        let complete = sample.complete;
        samples.push(sample);
        if !complete {
            cancelled = true;
            break;
        }
    }
    samples.sort_by(|a, b| {
        b.complete
            .cmp(&a.complete)
            .then(b.correlation.total_cmp(&a.correlation))
    });
    let start_correlation = guidance.correlation(&atoms);
    guidance.follow(&start);
    Ok(GuidedFit {
        model,
        samples,
        start_correlation,
        start_geometry: topology.check(&start),
        cloud_points: guidance.cloud.points.len(),
        cloud_level: guidance.level,
        zone_voxels,
        zone: options.guidance.zone.describe(),
        sinkhorn_atoms: guidance.sinkhorn_atom_count(),
        prior: prior_description,
        trajectory_stride: stride,
        seconds: started.elapsed().as_secs_f64(),
        cancelled,
    })
}

struct SampleRun<'a> {
    options: &'a GuidedFitOptions,
    start: &'a [[f64; 3]],
    atoms: &'a GaussianAtoms,
    guidance: &'a mut MapGuidance,
    index: usize,
    samples: usize,
    stride: usize,
}

impl SampleRun<'_> {
    fn gaussians_at(&self, positions: &[[f64; 3]]) -> GaussianAtoms {
        GaussianAtoms {
            positions: to_f32(positions),
            amplitudes: self.atoms.amplitudes.clone(),
            sigmas: self.atoms.sigmas.clone(),
        }
    }

    /// The guidance gradient at the denoised estimate, or None outside guided steps.
    fn guidance_gradient(&mut self, phase: Phase, estimate: &[[f64; 3]], sigma: f64) -> Option<(f64, Vec<[f64; 3]>)> {
        if !self.options.guidance_enabled {
            return None;
        }
        let value = match phase {
            Phase::Global => self.guidance.global(estimate),
            Phase::Local => self
                .guidance
                .local(&self.gaussians_at(estimate), self.options.local_blur_per_sigma * sigma),
            Phase::WarmUp | Phase::Relax => return None,
        };
        Some((value.loss, value.gradient))
    }

    fn sample(
        &mut self,
        prior: &mut dyn Denoiser,
        seed: u64,
        topology: &geometry_check::Topology,
        on_step: &mut dyn FnMut(&StepProgress<'_>) -> bool,
    ) -> Sample {
        let started = Instant::now();
        // Every sample starts from the zone around the start model.
        self.guidance.follow(self.start);
        let schedule = &self.options.schedule;
        let sigmas = schedule.sigmas();
        let steps = schedule.total_steps();
        let mut rng = Rng::new(seed);
        let start_flat: Vec<f64> = self.start.iter().flatten().copied().collect();
        let mut x: Vec<f64> = start_flat.iter().map(|m| m + sigmas[0] * rng.normal()).collect();
        let mut records = Vec::with_capacity(steps);
        let mut trajectory = Trajectory::default();
        let mut complete = true;
        let mut guided_steps = 0usize;
        let mut timings = Timings::default();
        for step in 0..steps {
            let (sigma, sigma_next) = (sigmas[step], sigmas[step + 1]);
            let phase = schedule.phase(step);
            let sigma_hat = sigma * (1.0 + schedule.gamma(sigma));
            let churn = schedule.noise_scale * (sigma_hat * sigma_hat - sigma * sigma).max(0.0).sqrt();
            let mut noisy: Vec<f64> = x.iter().map(|v| v + churn * rng.normal()).collect();
            let clock = Instant::now();
            let mut denoised = prior.denoise(&noisy, sigma_hat);
            timings.denoise_seconds += clock.elapsed().as_secs_f64();
            let scale = if self.options.guidance_enabled {
                schedule.guidance_scale(step)
            } else {
                0.0
            };
            if phase == Phase::Global && guided_steps == 0 && self.options.guidance_enabled {
                // Keep the sample in the map's frame: superpose the estimate on the start.
                let t = superpose(&to_points(&denoised), self.start);
                for v in [&mut noisy, &mut denoised] {
                    for c in v.chunks_exact_mut(3) {
                        c.copy_from_slice(&t.apply([c[0], c[1], c[2]]));
                    }
                }
            }
            let update: Vec<f64> = noisy
                .iter()
                .zip(&denoised)
                .map(|(n, d)| schedule.step_scale * (sigma_next - sigma_hat) / sigma_hat * (n - d))
                .collect();
            let mut record = StepRecord {
                step,
                phase,
                sigma,
                sigma_hat,
                guidance_scale: scale,
                sinkhorn: None,
                density_l2: None,
                correlation: 0.0,
                rmsd_to_start_angstrom: 0.0,
            };
            // The push acts on the sample only: the next step's denoiser keeps what the prior
            // allows of it (soft collective motions) and removes the rest, so the estimate
            // stays a projection onto the prior and is what gets recorded and re-centred on.
            let estimate = to_points(&denoised);
            let mut next: Vec<f64> = noisy.iter().zip(&update).map(|(n, u)| n + u).collect();
            let clock = Instant::now();
            if scale > 0.0
                && self.options.guidance_enabled
                && matches!(phase, Phase::Global | Phase::Local)
                && let Some(every) = self.guidance.zone_follows_every()
                && guided_steps.is_multiple_of(every)
            {
                // The zone moves with the estimate: density beside where the model has got to
                // comes into view, so large motions stay reachable.
                self.guidance.follow(&estimate);
            }
            if scale > 0.0
                && let Some((loss, gradient)) = self.guidance_gradient(phase, &estimate, sigma_hat)
            {
                match phase {
                    Phase::Global => record.sinkhorn = Some(loss),
                    _ => record.density_l2 = Some(loss),
                }
                let mut flat: Vec<f64> = gradient.iter().flatten().copied().collect();
                if self.options.clash_weight > 0.0 {
                    // The map's push at unit size, plus the repulsion at its own scale (Å).
                    let g = norm(&flat);
                    if g > 0.0 {
                        flat.iter_mut().for_each(|v| *v /= g);
                    }
                    let (_, repulsion) = topology.repulsion(self.start, &estimate, self.options.contact_angstrom);
                    for (v, r) in flat.iter_mut().zip(repulsion.iter().flatten()) {
                        *v += self.options.clash_weight * r;
                    }
                }
                let flat = if self.options.pull_back_gradient {
                    prior.pull_back(&flat, sigma_hat)
                } else {
                    flat
                };
                let g_norm = norm(&flat);
                if g_norm > 0.0 && g_norm.is_finite() {
                    let push = scale * norm(&update) / g_norm;
                    for (n, g) in next.iter_mut().zip(&flat) {
                        *n -= push * g;
                    }
                }
                guided_steps += 1;
                timings.guidance_seconds += clock.elapsed().as_secs_f64();
                if self.options.recentre_every > 0 && guided_steps.is_multiple_of(self.options.recentre_every) {
                    let clock = Instant::now();
                    prior.recentre(&denoised);
                    timings.recentre_seconds += clock.elapsed().as_secs_f64();
                }
            }
            let clock = Instant::now();
            record.correlation = self.guidance.correlation(&self.gaussians_at(&estimate));
            record.rmsd_to_start_angstrom = superposed_rmsd(&estimate, self.start);
            timings.scoring_seconds += clock.elapsed().as_secs_f64();
            if step % self.stride == 0 || step + 1 == steps {
                trajectory.steps.push(step);
                trajectory.noisy.push(to_f32(&to_points(&noisy)));
                trajectory.denoised.push(to_f32(&estimate));
            }
            x = next;
            let keep_going = on_step(&StepProgress {
                sample: self.index,
                samples: self.samples,
                total_steps: steps,
                record: &record,
                denoised: &estimate,
            });
            records.push(record);
            if !keep_going {
                complete = false;
                // Stop with the current estimate rather than a half-denoised sample.
                x = estimate.iter().flatten().copied().collect();
                break;
            }
        }
        let mut positions = to_points(&x);
        if self.options.restore_residue_geometry {
            positions = prior.restore_geometry(&positions);
        }
        let correlation = self.guidance.correlation(&self.gaussians_at(&positions));
        Sample {
            index: self.index,
            seed,
            geometry: topology.check(&positions),
            positions: to_f32(&positions),
            correlation,
            steps: records,
            trajectory,
            seconds: started.elapsed().as_secs_f64(),
            timings,
            complete,
        }
    }
}
