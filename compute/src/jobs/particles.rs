//! The particle refinement job: reads the particles, refines the model against them and
//! publishes the model and a gallery of particles beside its projections as it goes.

use std::sync::Arc;
use std::time::Duration;

use super::{JobContext, JobError, JobResult, Series, Snapshot};
use crate::formats::model::Structure;
use crate::formats::particles::ParticleOptions;
use crate::particles::data::ParticleData;
use crate::refine::{Gallery, RefineOptions, RefineProgress, refine_particles};

/// Particles shown in the gallery: spread over the set.
const GALLERY_SIZE: usize = 4;

pub(super) fn particle_fit_job(
    path: &std::path::Path,
    pixel_size_angstrom: Option<f64>,
    model: &Structure,
    centre: Option<[f64; 3]>,
    options: &RefineOptions,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, JobError> {
    let job = ctx.job;
    ctx.step(0, None, format!("reading {}", path.display()), Vec::new());
    let data = ParticleData::read_with(path, &ParticleOptions::with_pixel_size(pixel_size_angstrom))?;
    let mut options = options.clone();
    if options.epochs == 0 {
        options.epochs = RefineOptions::auto_epochs(data.len(), options.batch, options.validation_particles);
    }
    let options = &options;
    let centre = centre
        .or(data.centre)
        .unwrap_or_else(|| crate::particles::data::centroid(model));
    let shown: Vec<usize> = (0..GALLERY_SIZE).map(|i| i * data.len() / GALLERY_SIZE).collect();
    let total = options.epochs * data.len().div_ceil(options.batch.max(1));
    let mut last_publish: Option<std::time::Instant> = None;
    let mut last_gallery: Option<std::time::Instant> = None;
    let mut gallery: Option<Arc<Gallery>> = None;
    let mut on_step = |p: &RefineProgress<'_>| {
        if last_gallery.is_none_or(|t| t.elapsed() > Duration::from_millis(700)) {
            gallery = Some(Arc::new(Gallery::of(
                &data,
                &shown,
                p.positions,
                p.amplitudes,
                p.widths,
                centre,
            )));
            last_gallery = Some(std::time::Instant::now());
        }
        if last_publish.is_none_or(|t| t.elapsed() > Duration::from_millis(30)) {
            ctx.publish(Snapshot::Particles {
                job,
                frame: p.positions.iter().map(|q| q.map(|v| v as f32)).collect(),
                gallery: gallery.clone(),
            });
            last_publish = Some(std::time::Instant::now());
        }
        let mut values = vec![(Series::Frc, p.frc)];
        values.extend(p.validation_frc.map(|v| (Series::HeldOutFrc, v)));
        let message = match p.validation_frc {
            Some(v) => format!("epoch {}/{} done: held-out FRC {v:.4}", p.epoch + 1, p.epochs),
            None => format!(
                "epoch {}/{}: step {}/{}, limit {:.1} Å, FRC {:.4}",
                p.epoch + 1,
                p.epochs,
                p.step + 1,
                p.steps_per_epoch,
                p.resolution_angstrom,
                p.frc
            ),
        };
        ctx.step(
            (p.epoch * p.steps_per_epoch + p.step.min(p.steps_per_epoch.saturating_sub(1)) + 1).min(total),
            Some(total),
            message,
            values,
        )
    };
    let device = crate::refine::training_device();
    let refinement = refine_particles(model, &data, centre, options, &device, &mut on_step)?;
    let frame = refinement.refined.frames[0].clone();
    let last: Vec<[f64; 3]> = frame.iter().map(|p| p.map(f64::from)).collect();
    let final_gallery = Gallery::of(&data, &shown, &last, &refinement.amplitudes, &refinement.widths, centre);
    ctx.publish(Snapshot::Particles {
        job,
        frame,
        gallery: Some(Arc::new(final_gallery)),
    });
    Ok(JobResult::ParticleFit(Arc::new(refinement)))
}
