//! Guided fitting in rounds: the first round runs the whole schedule from the start model; every
//! later round starts again from the previous round's best model, with a new prior, zone and
//! restraints around it, and local guidance only. A later round is kept when its best sample
//! beats its own start (the previous best) by the free score, else the rounds end.

use super::{GuidedError, GuidedFit, GuidedFitOptions, StepProgress, guided_fit_round};
use crate::formats::model::Structure;
use crate::maps::DensityMap;

/// Runs a guided fit of `structure` (frame 0) into `map`, in `options.rounds` rounds. `on_step`
/// is called after every step (numbered across the rounds) and stops the run when it returns
/// false; what was finished is kept (a partial sample is returned, marked incomplete).
pub fn guided_fit(
    structure: &Structure,
    map: &DensityMap,
    options: &GuidedFitOptions,
    on_step: &mut dyn FnMut(&StepProgress<'_>) -> bool,
) -> Result<GuidedFit, GuidedError> {
    let per_sample = options.steps_per_sample();
    let mut relay = |offset: usize, p: &StepProgress<'_>| {
        let mut record = p.record.clone();
        record.step += offset;
        on_step(&StepProgress {
            sample: p.sample,
            samples: p.samples,
            total_steps: per_sample,
            record: &record,
            denoised: p.denoised,
        })
    };
    let mut fit = guided_fit_round(structure, map, options, None, &mut |p| relay(0, p))?;
    // Later rounds refine: no global (Sinkhorn) phase, whose point cloud can take in a touching
    // neighbour's density once the model sits next to it; its steps warm up instead.
    let mut later = options.clone();
    later.schedule = options.schedule.clone().with_total_steps(options.later_round_steps());
    later.schedule.warm_up_steps += later.schedule.global_steps;
    later.schedule.global_steps = 0;
    // The first step of each later round, counted across the rounds.
    let mut at = options.schedule.total_steps();
    for _ in 1..options.rounds.max(1) {
        let Some(best) = fit.samples.first() else { break };
        if fit.cancelled || fit.start_is_best || !best.complete {
            break;
        }
        let from = fit.sample_model(best);
        let next = guided_fit_round(&from, map, &later, Some(&fit.model.frames[0]), &mut |p| relay(at, p))?;
        let Some(next_best) = next.samples.first() else { break };
        let improved = match (next_best.free_score, next.start_free_score) {
            (Some(f), Some(start)) => f > start,
            _ => next_best.correlation > next.start_correlation,
        };
        if next.cancelled || !next_best.complete || !improved {
            fit.seconds += next.seconds;
            fit.cancelled |= next.cancelled;
            break;
        }
        fit = join_rounds(fit, next, at);
        at += later.schedule.total_steps();
    }
    Ok(fit)
}

/// The fit `next` (a round started from `previous`'s best sample) as one fit from `previous`'s
/// start: its samples' records and trajectories follow the best previous sample's, numbered from
/// `offset`, and the start's scores stay the first round's.
fn join_rounds(previous: GuidedFit, mut next: GuidedFit, offset: usize) -> GuidedFit {
    let best = &previous.samples[0];
    for sample in &mut next.samples {
        let mut steps = best.steps.clone();
        steps.extend(sample.steps.drain(..).map(|mut r| {
            r.step += offset;
            r
        }));
        sample.steps = steps;
        let mut trajectory = best.trajectory.clone();
        trajectory
            .steps
            .extend(sample.trajectory.steps.iter().map(|s| s + offset));
        trajectory.noisy.append(&mut sample.trajectory.noisy);
        trajectory.denoised.append(&mut sample.trajectory.denoised);
        sample.trajectory = trajectory;
        sample.seconds += best.seconds;
        let t = &mut sample.timings;
        t.denoise_seconds += best.timings.denoise_seconds;
        t.guidance_seconds += best.timings.guidance_seconds;
        t.recentre_seconds += best.timings.recentre_seconds;
        t.scoring_seconds += best.timings.scoring_seconds;
    }
    let start_is_best = match (
        previous.start_free_score,
        next.samples.first().and_then(|s| s.free_score),
    ) {
        (Some(start), Some(best)) => best < start,
        _ => false,
    };
    GuidedFit {
        model: previous.model,
        samples: next.samples,
        start_correlation: previous.start_correlation,
        start_validation: previous.start_validation,
        start_free_score: previous.start_free_score,
        free: previous.free,
        start_is_best,
        start_geometry: previous.start_geometry,
        cloud_points: previous.cloud_points,
        cloud_level: previous.cloud_level,
        zone_voxels: previous.zone_voxels,
        zone: previous.zone,
        sinkhorn_atoms: previous.sinkhorn_atoms,
        prior: previous.prior,
        trajectory_stride: previous.trajectory_stride,
        seconds: previous.seconds + next.seconds,
        cancelled: next.cancelled,
        residues: previous.residues,
        start_residue_correlation: previous.start_residue_correlation,
        rounds: previous.rounds + 1,
    }
}
