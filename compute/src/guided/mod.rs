//! Map-guided structure sampling (the CryoBoltz method, docs/science.md §4): an EDM reverse
//! diffusion over the heavy-atom coordinates of a starting model, whose denoised estimate is
//! pushed into a map, first globally (Sinkhorn divergence to the map's point cloud) and then
//! locally (density L2), each push rescaled to the size of the unguided update. The built-in
//! denoiser is the exact posterior mean of an elastic-network prior of the model ([`prior`]); a
//! learned one plugs in through [`Denoiser`]. Every step's noisy sample and denoised estimate are
//! recorded with the step's losses, so the whole trajectory can be replayed. Guidance sees only
//! the model's zone of the map ([`zone`]), which follows the estimate as it moves.

pub mod free;
pub mod geometry_check;
pub mod guidance;
mod network;
pub mod pointcloud;
pub mod prior;
pub mod rama_prior;
pub mod relax;
pub mod restraints;
mod rounds;
mod sampler;
pub mod schedule;
pub mod sinkhorn;
pub mod states;
pub mod zone;

use std::time::Instant;

use crate::formats::model::Structure;
use crate::maps::DensityMap;
use crate::maps::density::{GaussianAtoms, GaussianOptions};
use crate::maps::local::residue_correlations;
use crate::models::validation::{ValidationReport, Validator};

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
pub use free::{FreeOptions, FreeScore};
pub use guidance::{GuidanceOptions, MapGuidance};
pub use prior::{Denoiser, ElasticPrior, PriorOptions};
pub use relax::{RelaxOptions, RelaxReport};
pub use rounds::guided_fit;
pub use schedule::{Phase, Schedule, ScheduleKind};
pub use zone::ZoneOptions;

/// The default number of sampler steps and of samples, the same in the command line and the app.
pub const DEFAULT_STEPS: usize = 200;
pub const DEFAULT_SAMPLES: usize = 1;
pub const DEFAULT_ROUNDS: usize = 2;

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
    /// The final restrained relaxation of every sample ([`relax`]).
    #[serde(default)]
    pub relax: RelaxOptions,
    /// The free score samples are ranked by ([`free`]).
    #[serde(default)]
    pub free: FreeOptions,
    /// Local guidance weakens when the free score stops improving.
    #[serde(default)]
    pub anneal: AnnealOptions,
    /// Rounds of sampling: every later round starts again from the previous round's best model
    /// (a new prior and zone around it) with `round_steps` steps; a round whose best sample does
    /// not beat its start by the free score (or by correlation without one) is dropped and the
    /// rounds end.
    #[serde(default = "one")]
    pub rounds: usize,
    /// Steps of every later round (None: half of the first round's).
    #[serde(default)]
    pub round_steps: Option<usize>,
    /// Stereochemistry in the denoiser: in guided steps the denoised estimate is polished by
    /// this many L-BFGS iterations of the restraints, tethered to the estimate
    /// ([`relax::polish`]), so the map pushes a protein-like estimate; 0 for none.
    #[serde(default)]
    pub denoiser_restraint_iterations: usize,
    /// The tether's σ (Å): how far the polish may move an atom for the geometry.
    #[serde(default = "default_tether")]
    pub denoiser_tether_angstrom: f64,
}

fn default_tether() -> f64 {
    0.5
}

fn one() -> usize {
    1
}

/// Free-score annealing of the local guidance: every `every_steps` local steps the free score
/// of the estimate is taken; after `patience` checks without a gain of `min_gain` over the best
/// so far, the guidance scale is multiplied by `factor` (as a fit that has stopped improving on
/// held-out data starts fitting noise). Needs a free score. On by default as a guard: on every
/// measured case (the gemmi-made AdK maps, EMD-3488) the free score rises at every check, so it
/// never triggers and the results are unchanged (docs/science.md §4).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnnealOptions {
    pub enabled: bool,
    pub every_steps: usize,
    pub patience: usize,
    pub factor: f64,
    pub min_gain: f64,
}

impl Default for AnnealOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            every_steps: 5,
            patience: 2,
            factor: 0.5,
            min_gain: 1e-3,
        }
    }
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
            samples: DEFAULT_SAMPLES,
            seed: 1,
            guidance_enabled: true,
            recentre_every: 5,
            pull_back_gradient: true,
            local_blur_per_sigma: 0.0,
            restore_residue_geometry: true,
            max_trajectory_bytes: 1 << 30,
            clash_weight: 0.03,
            contact_angstrom: default_contact(),
            relax: RelaxOptions {
                map_weight: relax::default_map_weight(resolution_angstrom),
                ..RelaxOptions::default()
            },
            free: FreeOptions::HeldOut { seed: 1 },
            anneal: AnnealOptions::default(),
            rounds: DEFAULT_ROUNDS,
            round_steps: None,
            denoiser_restraint_iterations: 0,
            denoiser_tether_angstrom: default_tether(),
        }
    }

    /// Steps of every round after the first.
    pub fn later_round_steps(&self) -> usize {
        self.round_steps.unwrap_or(self.schedule.total_steps() / 2).max(4)
    }

    /// Sampler steps of one sample over all rounds (what progress counts to, per sample).
    pub fn steps_per_sample(&self) -> usize {
        self.schedule.total_steps() + self.rounds.max(1).saturating_sub(1) * self.later_round_steps()
    }

    /// Sampler steps of the whole fit.
    pub fn total_steps(&self) -> usize {
        self.steps_per_sample() * self.samples.max(1)
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
    /// The estimate's free score, on the local steps where annealing checks it.
    #[serde(default)]
    pub free_score: Option<f64>,
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
    /// The final relaxation, when it ran.
    pub relax: Option<RelaxReport>,
    /// MolProbity-style validation of the final coordinates.
    pub validation: ValidationReport,
    /// The free score of the final coordinates (None without one).
    pub free_score: Option<f64>,
    /// Per-residue local correlation with the map (the confidence written as B-factors), in
    /// the order of [`GuidedFit::residues`].
    pub residue_correlation: Vec<f32>,
    /// False when the run was cancelled before this sample finished.
    pub complete: bool,
}

/// The outcome of a guided fit.
#[derive(Clone, Debug)]
pub struct GuidedFit {
    /// The sampled (heavy) atoms as a model of their own, in the starting coordinates.
    pub model: Structure,
    /// Best first: by the free score when there is one, else by correlation with the map.
    pub samples: Vec<Sample>,
    pub start_correlation: f64,
    pub start_validation: ValidationReport,
    /// The start's free score, what it is computed from, and whether the start scores better
    /// than every sample (a fit that would do harm: the start is then the result to keep).
    pub start_free_score: Option<f64>,
    pub free: String,
    pub start_is_best: bool,
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
    /// The model's residues (atom indices), and the start's per-residue correlation with the map.
    pub residues: Vec<Vec<usize>>,
    pub start_residue_correlation: Vec<f32>,
    /// Rounds of sampling the result comes from (later rounds that did not help are dropped).
    pub rounds: usize,
}

impl GuidedFit {
    /// The model's atoms with each residue's local correlation with the map (`confidence`, one
    /// value per residue) in the B-factor column.
    fn atoms_with_confidence(&self, confidence: &[f32]) -> Vec<crate::formats::model::Atom> {
        let mut atoms = self.model.atoms.clone();
        for (residue, cc) in self.residues.iter().zip(confidence) {
            for &i in residue {
                atoms[i].b_factor = *cc;
            }
        }
        atoms
    }

    /// The model with a sample's coordinates, and each residue's local correlation with the map
    /// in the B-factor column (the confidence the viewer colours by).
    pub fn sample_model(&self, sample: &Sample) -> Structure {
        Structure {
            name: format!("{}_sample{}", self.model.name, sample.index + 1),
            atoms: self.atoms_with_confidence(&sample.residue_correlation),
            frames: vec![sample.positions.clone()],
            info: self.model.info.clone(),
        }
    }

    /// The start model, with its per-residue correlation in the B-factor column.
    pub fn start_model(&self) -> Structure {
        Structure {
            atoms: self.atoms_with_confidence(&self.start_residue_correlation),
            ..self.model.clone()
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
            atoms: self.atoms_with_confidence(&sample.residue_correlation),
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

pub(crate) fn guided_fit_round(
    structure: &Structure,
    map: &DensityMap,
    options: &GuidedFitOptions,
    origin: Option<&[[f32; 3]]>,
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
    let (work_map, free) = match &options.free {
        FreeOptions::Off => (None, None),
        FreeOptions::HeldOut { seed } => {
            let (work, free) = FreeScore::hold_out(map, resolution, *seed);
            (Some(work), Some(free))
        }
        FreeOptions::HalfMap { other } => {
            let other = other
                .as_deref()
                .ok_or_else(|| GuidedError::Input("the other half map is missing".into()))?;
            if other.grid != map.grid {
                return Err(GuidedError::Input(format!(
                    "the half maps are on different grids ({:?} voxels of {:?} Å against {:?} of {:?})",
                    other.grid.dims, other.grid.voxel_size_angstrom, map.grid.dims, map.grid.voxel_size_angstrom
                )));
            }
            let (radius, _) = zone::default_zone_radii(resolution);
            (None, Some(FreeScore::half_map(other.clone(), resolution, radius)))
        }
    };
    let mut guidance = MapGuidance::new(work_map.as_ref().unwrap_or(map), &atoms, &options.guidance)?;
    let zone_voxels = guidance.zone_voxels();
    let topology = geometry_check::Topology::of(&start);
    let validator = Validator::new(&model);
    let start_validation = validator.report(&model.frames[0]);
    // A start with poor geometry overall (an old crystal structure) is not a source of targets:
    // every bond and angle the validation knows is restrained to its ideal value.
    let ideal_z = if start_validation
        .bonds
        .rmsz
        .is_some_and(|z| z > restraints::POOR_START_BOND_RMSZ)
    {
        0.0
    } else {
        options.relax.restraints.ideal_outlier_z
    };
    let restraints = restraints::Restraints::from_start(&model, &start, options.relax.restraints.clone())
        .with_ideal_outliers(&validator.ideal_geometry(), ideal_z)
        .with_torsion_prior(std::sync::Arc::new(rama_prior::RamaPrior), &model);
    let all: Vec<usize> = (0..model.atoms.len()).collect();
    let residues = network::residue_groups(&model, &all);
    let residue_radius = crate::maps::local::residue_radius(resolution);

    let origin: Vec<[f64; 3]> = origin.map_or_else(|| start.clone(), |o| o.iter().map(|p| p.map(f64::from)).collect());
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
        let mut run = sampler::SampleRun {
            options,
            start: &start,
            origin: &origin,
            atoms: &atoms,
            guidance: &mut guidance,
            index,
            samples: options.samples.max(1),
            stride,
            restraints: &restraints,
            residues: &residues,
            residue_radius,
            free: free.as_ref(),
            validator: &validator,
        };
        let sample = run.sample(&mut prior, seed, &topology, on_step);
        let complete = sample.complete;
        samples.push(sample);
        if !complete {
            cancelled = true;
            break;
        }
    }
    let rank = |s: &Sample| s.free_score.unwrap_or(s.correlation);
    samples.sort_by(|a, b| b.complete.cmp(&a.complete).then(rank(b).total_cmp(&rank(a))));
    let start_free_score = free.as_ref().map(|f| f.score(&atoms));
    let start_is_best = match (start_free_score, samples.first().and_then(|s| s.free_score)) {
        (Some(start), Some(best)) => best < start,
        _ => false,
    };
    let start_correlation = guidance.correlation(&atoms);
    guidance.follow(&start);
    let start_residue_correlation: Vec<f32> = residue_correlations(&guidance.map, &atoms, &residues, residue_radius)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    Ok(GuidedFit {
        model,
        samples,
        start_correlation,
        start_validation,
        start_free_score,
        free: free.as_ref().map_or_else(|| "none".into(), FreeScore::describe),
        start_is_best,
        start_geometry: topology.check(&start),
        cloud_points: guidance.cloud().points.len(),
        cloud_level: guidance.level,
        zone_voxels,
        zone: options.guidance.zone.describe(),
        sinkhorn_atoms: guidance.sinkhorn_atom_count(),
        prior: prior_description,
        trajectory_stride: stride,
        seconds: started.elapsed().as_secs_f64(),
        cancelled,
        residues,
        start_residue_correlation,
        rounds: 1,
    })
}
