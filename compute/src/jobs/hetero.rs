//! Heterogeneity jobs: training followed by the analysis (one job, resumable), the analysis
//! alone, and decoding one latent point's volume.

use std::path::Path;
use std::sync::Arc;

use super::{JobContext, JobError, JobResult, Series};
use crate::hetero::explore::{AnalyzeOptions, Exploration};
use crate::hetero::{HeteroOptions, HeteroProgress, Trained, train};

pub(super) fn train_job(
    particles: &Path,
    run: &Path,
    options: &HeteroOptions,
    analyze: &AnalyzeOptions,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, JobError> {
    let mut on_step = |p: &HeteroProgress| {
        if p.loss.is_nan() {
            return ctx.step(
                p.step,
                Some(p.steps_per_epoch),
                format!("reading particles {}/{}", p.step, p.steps_per_epoch),
                Vec::new(),
            );
        }
        let total = p.epochs * p.steps_per_epoch;
        let step = p.epoch * p.steps_per_epoch + p.step.min(p.steps_per_epoch);
        let message = match p.epoch_loss {
            Some(mean) => format!(
                "epoch {}/{} done, mean loss {mean:.4} (checkpoint saved)",
                p.epoch + 1,
                p.epochs
            ),
            None => format!("epoch {}/{}, loss {:.4}", p.epoch + 1, p.epochs, p.loss),
        };
        ctx.step(step, Some(total), message, vec![(Series::Loss, p.loss)])
    };
    let outcome = train(particles, run, options, true, &mut on_step)?;
    if outcome.cancelled && outcome.state.epochs_done == 0 {
        return Err(JobError::NothingToAnalyse);
    }
    analyze_job(run, analyze, ctx)
}

pub(super) fn analyze_job(
    run: &Path,
    analyze: &AnalyzeOptions,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, JobError> {
    ctx.step(0, None, "analysing latents".into(), Vec::new());
    let events = std::cell::RefCell::new(ctx);
    crate::hetero::explore::analyze(run, analyze, &|what: &str| {
        events
            .borrow_mut()
            .step(0, None, format!("analysis: {what}"), Vec::new())
    })?;
    Ok(JobResult::Hetero(Arc::new(Exploration::load(run)?)))
}

pub(super) fn volume_job(run: &Path, z: &[f32], label: &str, ctx: &mut JobContext<'_>) -> Result<JobResult, JobError> {
    ctx.step(0, Some(1), format!("decoding {label}"), Vec::new());
    let trained = Trained::load(run)?;
    Ok(JobResult::Map {
        map: Arc::new(trained.volume(z)),
        name: label.to_owned(),
    })
}
