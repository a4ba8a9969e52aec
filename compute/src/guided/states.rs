//! One model per state (CryoBoltz's case of heterogeneous data): the starting model is fitted by
//! guided sampling into every state volume of a heterogeneity run (one per cluster, or the
//! volumes along a latent path), each fit the same as `fit guided` on that volume alone, and the
//! best model of each state becomes one frame of a trajectory across the states. A state whose
//! fit scores worse than its start by the free score keeps the start, as a single fit does.
//!
//! Independent fits (the default) all start from the given model; chained fits start each state
//! from the previous state's model, which carries a large motion along a path step by step.

use std::time::Instant;

use super::{GuidedError, GuidedFit, GuidedFitOptions, StepProgress, guided_fit};
use crate::formats::model::Structure;
use crate::maps::DensityMap;

/// One state to fit: its name and its volume.
#[derive(Clone, Debug)]
pub struct StateTarget {
    pub label: String,
    pub map: std::sync::Arc<DensityMap>,
    /// Particles behind the state (a cluster's size), when known.
    pub particles: Option<usize>,
}

/// The fit of one state.
#[derive(Clone, Debug)]
pub struct StateFit {
    pub label: String,
    pub particles: Option<usize>,
    pub fit: GuidedFit,
}

impl StateFit {
    /// The state's model: the best sample, or the start when every sample scored worse than it.
    pub fn model(&self) -> Structure {
        let mut model = match self.fit.samples.first() {
            Some(best) if !self.fit.start_is_best => self.fit.sample_model(best),
            _ => self.fit.start_model(),
        };
        model.name = format!("{} ({})", self.fit.model.name, self.label);
        model
    }

    /// Correlation of the state's model with its volume.
    pub fn correlation(&self) -> f64 {
        match self.fit.samples.first() {
            Some(best) if !self.fit.start_is_best => best.correlation,
            _ => self.fit.start_correlation,
        }
    }

    pub fn free_score(&self) -> Option<f64> {
        match self.fit.samples.first() {
            Some(best) if !self.fit.start_is_best => best.free_score,
            _ => self.fit.start_free_score,
        }
    }
}

/// The fits of every state, in path order.
#[derive(Clone, Debug)]
pub struct StatesFit {
    pub states: Vec<StateFit>,
    /// Each state started from the previous state's model.
    pub chained: bool,
    pub seconds: f64,
    /// Stopped before every state was fitted (the states done are kept).
    pub cancelled: bool,
}

impl StatesFit {
    /// The states' models as one model with a frame per state (they share their heavy atoms).
    /// The B-factor column holds the first state's per-residue confidence.
    pub fn trajectory(&self) -> Option<Structure> {
        let first = self.states.first()?.model();
        let frames: Vec<Vec<[f32; 3]>> = self
            .states
            .iter()
            .map(|s| s.model().frames.swap_remove(0))
            .filter(|f| f.len() == first.atoms.len())
            .collect();
        Some(Structure {
            name: format!("{}_states", self.states[0].fit.model.name),
            frames,
            ..first
        })
    }
}

/// What the caller hears after every sampler step.
pub struct StateProgress<'a> {
    /// Index of the state being fitted and how many there are.
    pub state: usize,
    pub states: usize,
    pub label: &'a str,
    pub step: &'a StepProgress<'a>,
}

/// Fits `start` (frame 0) into every state's volume in turn. `on_step` stops the run when it
/// returns false; the states already fitted are kept, the interrupted one is dropped.
pub fn fit_states(
    start: &Structure,
    targets: &[StateTarget],
    options: &GuidedFitOptions,
    chained: bool,
    on_step: &mut dyn FnMut(&StateProgress<'_>) -> bool,
) -> Result<StatesFit, GuidedError> {
    if targets.is_empty() {
        return Err(GuidedError::Input("no state volumes to fit".into()));
    }
    let started = Instant::now();
    let mut states: Vec<StateFit> = Vec::with_capacity(targets.len());
    let mut cancelled = false;
    for (index, target) in targets.iter().enumerate() {
        let from = match (chained, states.last()) {
            (true, Some(previous)) => previous.model(),
            _ => start.clone(),
        };
        let mut stop = false;
        let fit = guided_fit(&from, &target.map, options, &mut |step| {
            let keep_going = on_step(&StateProgress {
                state: index,
                states: targets.len(),
                label: &target.label,
                step,
            });
            stop |= !keep_going;
            keep_going
        })
        .map_err(|e| match e {
            GuidedError::Input(m) => GuidedError::Input(format!("{}: {m}", target.label)),
            other => other,
        })?;
        if stop || fit.cancelled {
            cancelled = true;
            break;
        }
        states.push(StateFit {
            label: target.label.clone(),
            particles: target.particles,
            fit,
        });
    }
    Ok(StatesFit {
        states,
        chained,
        seconds: started.elapsed().as_secs_f64(),
        cancelled,
    })
}
