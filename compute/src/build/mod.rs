//! One-shot model building from a map and a sequence (the E3-CryoFold method, docs/science.md §4
//! and §6): a small 3D network predicts where the Cα atoms are, which way the chain runs and
//! which residue sits where ([`network`]); classical steps place the Cα ([`candidates`]), trace
//! them into fragments ([`trace`]), thread the fragments onto the sequence ([`thread`]), build
//! the backbone ([`backbone`]) and refine the model against the map with the guided fit's
//! stereochemistry restraints. Every residue's confidence (the Cα likelihood and the local
//! map–model correlation) goes in its B-factor.
//!
//! By default the chain is traced through the density itself ([`graph`]: the minimum spanning
//! tree of points sampled from the densest voxels, Cα every 3.8 Å along its longest paths); the
//! older tracer ([`Tracer::Links`]) joins the likelihood's maxima. Without the network
//! ([`Likelihood::Density`], the classical baseline) traces have no direction and nothing is
//! threaded; with it, each path is threaded by the predicted residue types, and paths not
//! registered against the density (maps of 5 Å or coarser) run the way the predicted next-Cα
//! vectors point.

pub mod backbone;
pub mod candidates;
pub mod graph;
pub mod network;
pub mod pipeline;
pub mod prepare;
pub mod sequence;
pub mod thread;
pub mod trace;
pub mod train;
pub mod weights;

pub use pipeline::{BuildProgress, BuildResult, BuildSnapshot, build_model};

use crate::maps::DensityMap;

/// Why a model cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the map is flat (every voxel has the same value)")]
    FlatMap,
    #[error(
        "the map holds no density read as protein chain: no three linked Cα candidates with a probability of at \
         least {min_score}"
    )]
    NoDensity { min_score: f32 },
    #[error(
        "the sequence ({residues} residues, about {needed_angstrom3:.0} Å³ of protein) is longer than the map can hold \
         ({available_angstrom3:.0} Å³ of density above its noise level)"
    )]
    SequenceTooLong {
        residues: usize,
        needed_angstrom3: f64,
        available_angstrom3: f64,
    },
    #[error("the mask does not overlap the map (no voxel of the map is inside the mask at level {level})")]
    MaskOutside { level: f32 },
    #[error("the network's weights cannot be used: {0}")]
    Weights(String),
    #[error("{0}")]
    Input(String),
}

/// Where the Cα likelihood comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Likelihood {
    /// The Cα network (bundled weights or `--weights`).
    Network,
    /// The classical baseline: the normalised map itself (its maxima for [`Tracer::Links`]), no
    /// direction, no residue types.
    Density,
}

/// Whether the bundled network is the default likelihood. Off: on the held-out families
/// (`scripts/build_targets.sh`) with the unregistered density tree it reached the same TM-score as
/// the map alone (0.316 / 0.268 / 0.268 against 0.317 / 0.265 / 0.265 at 3 / 4 / 6 Å) at four to
/// ten times the time, and with linked peaks a lower one (docs/science.md §4, "One-shot model building");
/// a default is the best recipe measured.
pub const NETWORK_BY_DEFAULT: bool = false;

impl Likelihood {
    /// The likelihood a build uses unless told: the network when it is the measured best and
    /// cryoforge carries its weights, else the map itself.
    pub fn default_for_this_build() -> Self {
        if NETWORK_BY_DEFAULT && weights::bundled_available() {
            Self::Network
        } else {
            Self::Density
        }
    }
}

/// How the chain is traced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tracer {
    /// The minimum spanning tree of points sampled from the densest voxels; its longest paths
    /// are the chain, Cα every 3.8 Å along them ([`graph`]). The measured best.
    #[default]
    Graph,
    /// Cα candidates from the likelihood's maxima, joined by greedy links ([`trace`]).
    Links,
}

/// Everything a build needs besides the map and the sequences.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BuildOptions {
    pub resolution_angstrom: f32,
    pub likelihood: Likelihood,
    #[serde(default)]
    pub tracer: Tracer,
    #[serde(default)]
    pub graph: graph::GraphOptions,
    pub candidates: candidates::CandidateOptions,
    pub trace: trace::TraceOptions,
    pub thread: thread::ThreadOptions,
    /// Restrained refinement against the map after the backbone is built.
    pub refine: bool,
    pub refine_iterations: usize,
    /// A mask's inside is where it is at least this.
    pub mask_level: f32,
}

impl BuildOptions {
    pub fn new(resolution_angstrom: f32) -> Self {
        Self {
            resolution_angstrom,
            likelihood: Likelihood::Network,
            tracer: Tracer::default(),
            graph: Default::default(),
            candidates: Default::default(),
            trace: Default::default(),
            thread: Default::default(),
            refine: true,
            refine_iterations: 300,
            mask_level: 0.5,
        }
    }
}

/// The inputs of a build.
pub struct BuildInput<'a> {
    pub map: &'a DensityMap,
    pub sequences: &'a [sequence::ChainSequence],
    pub mask: Option<&'a DensityMap>,
}
