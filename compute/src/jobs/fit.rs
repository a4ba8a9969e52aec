//! Fitting jobs: rigid fitting (local or a global search, each start a cancellable step) and
//! guided sampling, publishing the moving model's coordinates as they change.

use std::sync::Arc;
use std::time::Duration;

use super::{JobContext, JobError, JobResult, Series, Snapshot};
use crate::formats::model::Structure;
use crate::guided::states::{StateProgress, StateTarget, fit_states};
use crate::guided::{GuidedFitOptions, StepProgress, guided_fit};
use crate::maps::DensityMap;
use crate::maps::density::{GaussianAtoms, GaussianOptions};
use crate::models::compare::RigidTransform;
use crate::rigid_fit::{RigidFitOptions, RigidFitter};

fn transformed_frame(model: &Structure, t: &RigidTransform) -> Vec<[f32; 3]> {
    model.frames[0]
        .iter()
        .map(|p| t.apply(p.map(f64::from)).map(|v| v as f32))
        .collect()
}

pub(super) fn rigid_fit_job(
    map: &DensityMap,
    model: &Structure,
    resolution: f32,
    starts: usize,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, JobError> {
    if !(resolution.is_finite() && resolution > 0.0) {
        return Err(JobError::Input(format!(
            "resolution must be positive, got {resolution}"
        )));
    }
    let (atoms, _) = GaussianAtoms::from_structure(model, 0, GaussianOptions::molmap(resolution));
    if atoms.is_empty() {
        return Err(JobError::Input("the model has no heavy atoms".into()));
    }
    let fitter = RigidFitter::new(map, &atoms);
    let mut placements = Vec::new();
    if starts == 0 {
        let job = ctx.job;
        let mut last_publish = std::time::Instant::now();
        let mut on_step = |n: usize, cc: f64, t: &RigidTransform| {
            if last_publish.elapsed() > Duration::from_millis(50) {
                ctx.publish(Snapshot::Coordinates {
                    job,
                    frame: transformed_frame(model, t),
                });
                last_publish = std::time::Instant::now();
            }
            ctx.step(n, None, format!("correlation {cc:.4}"), vec![(Series::Correlation, cc)])
        };
        placements.push(fitter.fit_local(RigidTransform::IDENTITY, RigidFitOptions::default(), &mut on_step));
    } else {
        // Run the starts one after another so each is a visible, cancellable step.
        let rotations = crate::rigid_fit::spread_rotations(starts, 1);
        let target = crate::rigid_fit::density_centre(map);
        let centre = model_centre(&atoms);
        let mut all = Vec::new();
        for (i, rotvec) in rotations.iter().enumerate() {
            let start = RigidTransform::rotation_about(crate::geometry::matrix_from_rotvec(*rotvec), centre, target);
            let placement = fitter.fit_local(start, RigidFitOptions::default(), &mut |_, _, _| true);
            ctx.publish(Snapshot::Coordinates {
                job: ctx.job,
                frame: transformed_frame(model, &placement.transform),
            });
            all.push(placement);
            let best = all.iter().map(|p| p.correlation).fold(f64::MIN, f64::max);
            if !ctx.step(
                i + 1,
                Some(starts),
                format!("start {} of {starts}: correlation {:.4}", i + 1, placement.correlation),
                vec![
                    (Series::Correlation, placement.correlation),
                    (Series::BestCorrelation, best),
                ],
            ) {
                break;
            }
        }
        placements = crate::rigid_fit::cluster_placements(all, &fitter);
    }
    placements.sort_by(|a, b| b.correlation.total_cmp(&a.correlation));
    let best = placements
        .first()
        .ok_or_else(|| JobError::Input("no placement".into()))?;
    let mut best_model = model.clone();
    best_model.frames = vec![transformed_frame(model, &best.transform)];
    Ok(JobResult::Placements {
        placements,
        best_model: Arc::new(best_model),
    })
}

pub(super) fn guided_fit_job(
    map: &DensityMap,
    model: &Structure,
    options: &GuidedFitOptions,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, JobError> {
    let job = ctx.job;
    let mut last_publish: Option<std::time::Instant> = None;
    let total = options.total_steps();
    let mut on_step = |p: &StepProgress<'_>| {
        // The UI draws at most ~30 frames a second; publishing faster only costs copies.
        if last_publish.is_none_or(|t| t.elapsed() > Duration::from_millis(30)) {
            ctx.publish(Snapshot::Coordinates {
                job,
                frame: p.denoised.iter().map(|q| q.map(|v| v as f32)).collect(),
            });
            last_publish = Some(std::time::Instant::now());
        }
        let r = p.record;
        let mut values = vec![(Series::Correlation, r.correlation)];
        values.extend(r.sinkhorn.map(|v| (Series::Sinkhorn, v)));
        values.extend(r.density_l2.map(|v| (Series::DensityL2, v)));
        let message = format!(
            "sample {}/{}: step {} ({}), σ {:.2} Å, correlation {:.4}",
            p.sample + 1,
            p.samples,
            r.step + 1,
            r.phase.label(),
            r.sigma,
            r.correlation
        );
        ctx.step(p.sample * p.total_steps + r.step + 1, Some(total), message, values)
    };
    let fit = guided_fit(model, map, options, &mut on_step)?;
    if let Some(best) = fit.samples.first() {
        ctx.publish(Snapshot::Coordinates {
            job,
            frame: best.positions.clone(),
        });
    }
    Ok(JobResult::GuidedFit(Arc::new(fit)))
}

pub(super) fn guided_states_job(
    run: &std::path::Path,
    source: crate::hetero::explore::StateSource,
    model: &Structure,
    options: &GuidedFitOptions,
    chained: bool,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, JobError> {
    let volumes = crate::hetero::explore::state_volumes(run, source)?;
    let targets: Vec<StateTarget> = volumes
        .into_iter()
        .map(|v| StateTarget {
            label: v.label,
            map: Arc::new(v.map),
            particles: v.particles,
        })
        .collect();
    let job = ctx.job;
    let mut last_publish: Option<std::time::Instant> = None;
    let per_state = options.total_steps();
    let total = per_state * targets.len();
    let mut on_step = |p: &StateProgress<'_>| {
        let s = p.step;
        if last_publish.is_none_or(|t| t.elapsed() > Duration::from_millis(30)) {
            ctx.publish(Snapshot::Coordinates {
                job,
                frame: s.denoised.iter().map(|q| q.map(|v| v as f32)).collect(),
            });
            last_publish = Some(std::time::Instant::now());
        }
        let message = format!(
            "{} ({} of {}): sample {}/{}, step {} ({}), correlation {:.4}",
            p.label,
            p.state + 1,
            p.states,
            s.sample + 1,
            s.samples,
            s.record.step + 1,
            s.record.phase.label(),
            s.record.correlation
        );
        ctx.step(
            p.state * per_state + s.sample * s.total_steps + s.record.step + 1,
            Some(total),
            message,
            vec![(Series::Correlation, s.record.correlation)],
        )
    };
    let fit = fit_states(model, &targets, options, chained, &mut on_step)?;
    if fit.states.is_empty() {
        return Err(JobError::Input("cancelled before the first state was fitted".into()));
    }
    Ok(JobResult::GuidedStates(Arc::new(fit)))
}

fn model_centre(atoms: &GaussianAtoms) -> [f64; 3] {
    let n = atoms.len().max(1) as f64;
    std::array::from_fn(|k| atoms.positions.iter().map(|p| f64::from(p[k])).sum::<f64>() / n)
}
