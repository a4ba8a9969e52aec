//! The flexibility job: per-residue RMSF of a model from its map, with progress and cancel.

use std::sync::Arc;

use super::{JobContext, JobError, JobResult, Series};
use crate::flex::{FlexOptions, estimate_flexibility};
use crate::formats::model::Structure;
use crate::maps::DensityMap;

pub(super) fn flex_job(
    map: &DensityMap,
    half_maps: Option<&(Arc<DensityMap>, Arc<DensityMap>)>,
    model: &Structure,
    options: &FlexOptions,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, JobError> {
    let resolution = options.resolution_angstrom;
    if !(resolution.is_finite() && resolution > 0.0) {
        return Err(JobError::Input(format!(
            "resolution must be positive, got {resolution}"
        )));
    }
    let halves = half_maps.map(|(a, b)| (a.as_ref(), b.as_ref()));
    let mut last = 0;
    let flex = estimate_flexibility(map, halves, model, options, &mut |p| {
        let step = (p.fraction * 1000.0).round() as usize;
        // One event per permille at most: the B-factor refinement reports every iteration.
        if step == last && step != 0 {
            return !ctx.is_cancelled();
        }
        last = step;
        let values = p
            .correlation
            .map(|cc| vec![(Series::Correlation, cc)])
            .unwrap_or_default();
        ctx.step(step, Some(1000), p.message.to_owned(), values)
    })?;
    Ok(JobResult::Flex(Arc::new(flex)))
}
