//! The model-building job: a backbone model from a map and sequences, with progress and cancel;
//! what each step finds (Cα candidates, traces, the threaded model) streams as a model of its own
//! ([`Snapshot::Model`]) so the viewport shows the build as it grows.

use std::sync::Arc;

use super::{JobContext, JobError, JobResult, Snapshot};
use crate::build::network::CaNet;
use crate::build::sequence::ChainSequence;
use crate::build::{BuildInput, BuildOptions, BuildSnapshot, Likelihood, build_model, weights};
use crate::formats::model::{Atom, Structure};
use crate::maps::DensityMap;

pub(super) fn build_job(
    map: &DensityMap,
    sequences: &[ChainSequence],
    mask: Option<&DensityMap>,
    options: &BuildOptions,
    weights_path: Option<&std::path::Path>,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, JobError> {
    let net: Option<CaNet> = match (options.likelihood, weights_path) {
        (Likelihood::Density, _) => None,
        (Likelihood::Network, Some(path)) => Some(weights::load(path)?),
        (Likelihood::Network, None) => Some(weights::bundled()?),
    };
    let input = BuildInput { map, sequences, mask };
    let job = ctx.job;
    let mut last = usize::MAX;
    let result = build_model(&input, options, net.as_ref(), &mut |p| {
        if let Some(snapshot) = p.snapshot {
            ctx.publish(Snapshot::Model {
                job,
                model: Arc::new(snapshot_model(snapshot)),
            });
        }
        let step = (p.fraction * 1000.0).round() as usize;
        if step == last {
            return !ctx.is_cancelled();
        }
        last = step;
        ctx.step(step, Some(1000), p.stage.to_owned(), Vec::new())
    })?;
    Ok(JobResult::Build(Arc::new(result)))
}

/// A step's findings as a model: candidates as lone Cα (named `candidates`), traces as one chain
/// of Cα per fragment (`traces`), the model as it is.
pub fn snapshot_model(snapshot: &BuildSnapshot) -> Structure {
    let alpha = |chain: String, number: i32| Atom {
        name: "CA".into(),
        residue_name: "ALA".into(),
        chain_id: chain,
        residue_number: number,
        element: "C".into(),
        occupancy: 1.0,
        ..Atom::default()
    };
    match snapshot {
        BuildSnapshot::Candidates(points) => Structure {
            name: "candidates".into(),
            atoms: (0..points.len()).map(|k| alpha("C".into(), k as i32 + 1)).collect(),
            frames: vec![points.clone()],
            ..Structure::default()
        },
        BuildSnapshot::Traces(fragments) => {
            let mut atoms = Vec::new();
            let mut frame = Vec::new();
            for (f, fragment) in fragments.iter().enumerate() {
                for (k, p) in fragment.iter().enumerate() {
                    atoms.push(alpha(format!("T{f}"), k as i32 + 1));
                    frame.push(*p);
                }
            }
            Structure {
                name: "traces".into(),
                atoms,
                frames: vec![frame],
                ..Structure::default()
            }
        }
        BuildSnapshot::Model(model) => model.as_ref().clone(),
    }
}
