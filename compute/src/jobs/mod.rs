//! The compute thread: one named worker that runs jobs while the UI stays responsive.
//!
//! Typed commands go in and typed events come out over bounded channels; heavy intermediate
//! state (coordinates, maps) goes through a latest-value slot so no backlog builds up when the
//! UI is slower than the job. A job checks for cancel and pause between steps, so cancel is
//! honoured within one step and keeps what the job has; a panic inside a job becomes a
//! [`Event::Failed`] and the worker lives on.
//!
//! This module is the protocol (what goes in and out); [`worker`] runs it, and each family of
//! jobs adapts a method to it in its own module ([`fit`], [`particles`], [`hetero`], [`flex`],
//! [`map_tool`]).

pub mod build;
mod fit;
mod flex;
mod hetero;
pub mod map_tool;
mod particles;
#[cfg(test)]
mod tests;
pub mod worker;

use std::sync::{Arc, Mutex};

use crate::build::sequence::ChainSequence;
use crate::build::{BuildError, BuildOptions, BuildResult};
use crate::flex::{FlexError, FlexOptions, Flexibility};
use crate::formats::error::FormatError;
use crate::formats::model::Structure;
use crate::guided::states::StatesFit;
use crate::guided::{GuidedError, GuidedFit, GuidedFitOptions};
use crate::hetero::explore::{AnalyzeOptions, Exploration, StateSource};
use crate::hetero::{HeteroError, HeteroOptions};
use crate::maps::DensityMap;
use crate::refine::{Gallery, RefineError, RefineOptions, Refinement};
use crate::rigid_fit::Placement;

pub use map_tool::MapTool;
pub use worker::{ComputeThread, JobContext};

pub type JobId = u64;

/// A unit of work for the compute thread.
#[derive(Clone)]
pub enum JobSpec {
    /// Rigid fit of a model into a map: local from where it is, or a global search.
    RigidFit {
        map: Arc<DensityMap>,
        model: Arc<Structure>,
        resolution_angstrom: f32,
        /// 0 for a local fit; otherwise the number of starting orientations.
        search_starts: usize,
    },
    /// A map tool producing a new map.
    MapTool {
        map: Arc<DensityMap>,
        /// The source map's name; the new map is named after it and the tool.
        source: String,
        tool: MapTool,
    },
    /// Map-guided sampling of a model into a map; the denoised estimate streams as coordinates
    /// of the model's heavy atoms (see [`crate::guided::heavy_atom_model`]).
    GuidedFit {
        map: Arc<DensityMap>,
        model: Arc<Structure>,
        options: Box<GuidedFitOptions>,
    },
    /// Guided sampling of a model into every state volume of an analysed heterogeneity run
    /// ([`crate::guided::states`]); the state being fitted streams as coordinates.
    GuidedStates {
        run: std::path::PathBuf,
        source: StateSource,
        model: Arc<Structure>,
        options: Box<GuidedFitOptions>,
        chained: bool,
    },
    /// Particle-driven refinement of a model against the particles of a STAR/.cs file; the model
    /// streams as coordinates of its heavy atoms, with a gallery of particles and projections.
    ParticleFit {
        particles: std::path::PathBuf,
        /// Pixel size (Å) in place of the particle file's (needed when it gives none).
        pixel_size_angstrom: Option<f64>,
        model: Arc<Structure>,
        centre: Option<[f64; 3]>,
        options: Box<RefineOptions>,
    },
    /// Heterogeneity: train the latent model on a particle set into a run directory (resuming
    /// it if it holds a checkpoint), then analyse the latents.
    HeteroTrain {
        particles: std::path::PathBuf,
        run: std::path::PathBuf,
        options: Box<HeteroOptions>,
        analyze: Box<AnalyzeOptions>,
    },
    /// Analyse a trained run again (other clusters) and load it.
    HeteroAnalyze {
        run: std::path::PathBuf,
        analyze: Box<AnalyzeOptions>,
    },
    /// Decode the volume at a latent point of a trained run.
    HeteroVolume {
        run: std::path::PathBuf,
        z: Vec<f32>,
        label: String,
    },
    /// Per-residue flexibility of a model from a map (and half maps, for local resolution).
    Flex {
        map: Arc<DensityMap>,
        half_maps: Option<(Arc<DensityMap>, Arc<DensityMap>)>,
        model: Arc<Structure>,
        options: FlexOptions,
    },
    /// A backbone model built from a map and sequences (and a mask); what each step finds
    /// streams as a model ([`Snapshot::Model`]).
    Build {
        map: Arc<DensityMap>,
        sequences: Vec<ChainSequence>,
        mask: Option<Arc<DensityMap>>,
        options: Box<BuildOptions>,
        /// Weights of `cryoforge build train` (None: the bundled ones).
        weights: Option<std::path::PathBuf>,
    },
    /// Panics: proves a crashing job becomes a failed event.
    #[cfg(test)]
    Crash,
}

impl JobSpec {
    pub fn title(&self) -> String {
        match self {
            Self::MapTool { tool, .. } => format!("Map: {}", tool.label()),
            Self::RigidFit { search_starts: 0, .. } => "Fit in map (local)".to_owned(),
            Self::RigidFit { search_starts, .. } => format!("Fit in map (global, {search_starts} starts)"),
            Self::GuidedFit { options, .. } if !options.guidance_enabled => {
                "Guided fit (control: no guidance)".to_owned()
            }
            Self::HeteroTrain { options, .. } => format!(
                "Heterogeneity training (zdim {}, {} epochs)",
                options.zdim, options.epochs
            ),
            Self::HeteroAnalyze { analyze, .. } => format!("Heterogeneity analysis ({} clusters)", analyze.clusters),
            Self::HeteroVolume { .. } => "Latent volume".to_owned(),
            Self::Flex { options, .. } => format!("Flexibility ({} Å map)", options.resolution_angstrom),
            Self::Build { sequences, options, .. } => format!(
                "Build model ({} residues, {} Å map)",
                sequences.iter().map(|s| s.len() * s.copies).sum::<usize>(),
                options.resolution_angstrom
            ),
            Self::GuidedStates { source, .. } => format!("Guided fit into {}", source.label()),
            Self::ParticleFit { options, .. } if options.epochs == 0 => {
                format!("Particle refinement (auto epochs, batch {})", options.batch)
            }
            Self::ParticleFit { options, .. } => format!(
                "Particle refinement ({} epochs, batch {})",
                options.epochs, options.batch
            ),
            Self::GuidedFit { options, .. } => format!(
                "Guided fit ({} sample(s), {} steps in {} round(s))",
                options.samples,
                options.steps_per_sample(),
                options.rounds.max(1)
            ),
            #[cfg(test)]
            Self::Crash => "crash".to_owned(),
        }
    }
}

/// Commands to the compute thread.
pub enum Command {
    /// Run a job (queued behind the current one).
    Start(JobId, JobSpec),
    /// Stop a job at its next step, keeping what it has.
    Cancel(JobId),
    /// Hold the running job between steps.
    Pause,
    /// Continue a paused job.
    Resume,
    /// End the thread.
    Shutdown,
}

/// A quantity a job measures at its steps; the jobs panel plots each as its own line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Series {
    /// Map–model correlation (rigid and guided fits).
    Correlation,
    /// The best correlation so far (global search).
    BestCorrelation,
    /// Sinkhorn divergence to the map's point cloud (guided fit, global phase).
    Sinkhorn,
    /// Density L2 (guided fit, local phase).
    DensityL2,
    /// Mean FRC of the training batch (particle refinement).
    Frc,
    /// Mean FRC of the held-out particles, at the end of each epoch.
    HeldOutFrc,
    /// The training loss (heterogeneity).
    Loss,
}

impl Series {
    /// The legend's name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Correlation => "correlation",
            Self::BestCorrelation => "best",
            Self::Sinkhorn => "sinkhorn",
            Self::DensityL2 => "density L2",
            Self::Frc => "FRC",
            Self::HeldOutFrc => "held-out FRC",
            Self::Loss => "loss",
        }
    }
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    Guided(#[from] GuidedError),
    #[error(transparent)]
    Refine(#[from] RefineError),
    #[error(transparent)]
    Hetero(#[from] HeteroError),
    #[error(transparent)]
    Flex(#[from] FlexError),
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The job's inputs cannot be used as given.
    #[error("{0}")]
    Input(String),
    #[error("cancelled before it started")]
    CancelledBeforeStart,
    #[error("cancelled before the first epoch finished: nothing to analyse")]
    NothingToAnalyse,
    #[error("the job crashed: {0}")]
    Panic(String),
}

/// Events from the compute thread, in order.
#[derive(Clone, Debug)]
pub enum Event {
    /// A job began.
    Started { job: JobId, title: String },
    /// A step finished, with the values it measured (each a line of the job's plot).
    Progress {
        job: JobId,
        step: usize,
        total: Option<usize>,
        message: String,
        values: Vec<(Series, f64)>,
    },
    /// A job finished (also after cancel, with what it had).
    Finished {
        job: JobId,
        result: JobResult,
        cancelled: bool,
    },
    /// A job failed or panicked; the thread goes on.
    Failed { job: JobId, error: Arc<JobError> },
}

/// What a finished job hands back.
#[derive(Clone, Debug)]
pub enum JobResult {
    /// Placements best first, with the model as placed by the best.
    Placements {
        placements: Vec<Placement>,
        best_model: Arc<Structure>,
    },
    /// A new map and its name (the source and what made it).
    Map { map: Arc<DensityMap>, name: String },
    /// Ranked samples with their trajectories.
    GuidedFit(Arc<GuidedFit>),
    /// One model per state of a heterogeneity run.
    GuidedStates(Arc<StatesFit>),
    /// A refined model (the model so far when cancelled).
    ParticleFit(Arc<Refinement>),
    /// A trained and analysed heterogeneity run.
    Hetero(Arc<Exploration>),
    /// Per-residue flexibility of a model.
    Flex(Arc<Flexibility>),
    /// A model built from a map and sequences.
    Build(Arc<BuildResult>),
}

/// Heavy state of the running job, replaced at every publish; the UI takes the latest.
#[derive(Clone, Debug)]
pub enum Snapshot {
    /// Current coordinates of a model being moved.
    Coordinates { job: JobId, frame: Vec<[f32; 3]> },
    /// Coordinates of a model refined against particles, with the latest gallery.
    Particles {
        job: JobId,
        frame: Vec<[f32; 3]>,
        gallery: Option<Arc<Gallery>>,
    },
    /// A model that changes as a job goes (a build: candidates, then traces, then the model).
    Model { job: JobId, model: Arc<Structure> },
}

/// The latest-value slot.
#[derive(Clone, Default)]
pub struct SnapshotSlot(Arc<Mutex<Option<Snapshot>>>);

impl SnapshotSlot {
    pub fn publish(&self, snapshot: Snapshot) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(snapshot);
        }
    }

    pub fn take(&self) -> Option<Snapshot> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}
