//! The states of an analysed run for per-state model fitting (`fit guided --run`): the cluster
//! volumes in the order of their particles' mean first principal component, or the traversal
//! volumes along a principal axis.

use std::path::{Path, PathBuf};

use super::error::{HeteroError, HeteroResult};
use super::explore::{ANALYSIS_DIR, AnalysisSummary, LABELS_FILE, SUMMARY_FILE, read_labels};
use super::run::read_json;
use crate::formats::npy::read_f32_array;

/// Which volumes of an analysed run stand for its states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StateSource {
    /// One volume per cluster, ordered along the first principal component of the latents (the
    /// mean PC1 of each cluster's particles), so the states read as a path.
    Clusters,
    /// The traversal volumes along principal axis 1 or 2, in order.
    Path { axis: usize },
}

impl StateSource {
    pub fn label(self) -> String {
        match self {
            Self::Clusters => "every cluster".into(),
            Self::Path { axis } => format!("the path along PC{axis}"),
        }
    }
}

/// One state's volume, as `analyze` wrote it.
#[derive(Clone, Debug)]
pub struct StateVolume {
    /// `cluster 2`, `PC1 3/5`.
    pub label: String,
    pub path: PathBuf,
    pub map: crate::maps::DensityMap,
    /// Particles of the cluster (None on a path).
    pub particles: Option<usize>,
}

/// The state volumes of an analysed run, in path order.
pub fn state_volumes(run: &Path, source: StateSource) -> HeteroResult<Vec<StateVolume>> {
    let dir = run.join(ANALYSIS_DIR);
    let summary_path = dir.join(SUMMARY_FILE);
    if !summary_path.exists() {
        return Err(HeteroError::run(
            run,
            "has no analysis yet (run `cryoforge hetero analyze` on it first)".to_owned(),
        ));
    }
    let summary: AnalysisSummary = read_json(&summary_path)?;
    let mut states: Vec<(f64, String, PathBuf, Option<usize>)> = match source {
        StateSource::Clusters => {
            if summary.clusters.is_empty() {
                return Err(HeteroError::run(run, "its analysis has no clusters".to_owned()));
            }
            let labels = read_labels(&dir.join(LABELS_FILE))?;
            let (pca_values, rows, cols) = read_f32_array(&dir.join("pca.npy"))?;
            let mut sum = vec![0.0f64; summary.clusters.len()];
            let mut count = vec![0usize; summary.clusters.len()];
            if rows == labels.len() && cols >= 1 {
                for (i, &c) in labels.iter().enumerate() {
                    if c < sum.len() {
                        sum[c] += f64::from(pca_values[i * cols]);
                        count[c] += 1;
                    }
                }
            }
            summary
                .clusters
                .iter()
                .map(|c| {
                    let key = if count[c.index] > 0 {
                        sum[c.index] / count[c.index] as f64
                    } else {
                        c.index as f64
                    };
                    (key, format!("cluster {}", c.index), dir.join(&c.volume), Some(c.size))
                })
                .collect()
        }
        StateSource::Path { axis } => {
            let prefix = format!("pc{axis}_");
            let names: Vec<&String> = summary
                .traversal_volumes
                .iter()
                .filter(|n| n.starts_with(&prefix))
                .collect();
            if names.is_empty() {
                return Err(HeteroError::run(
                    run,
                    format!("its analysis has no volumes along PC{axis} (analyze with --traversal N)"),
                ));
            }
            let n = names.len();
            names
                .iter()
                .enumerate()
                .map(|(j, name)| (j as f64, format!("PC{axis} {}/{n}", j + 1), dir.join(name), None))
                .collect()
        }
    };
    states.sort_by(|a, b| a.0.total_cmp(&b.0));
    states
        .into_iter()
        .map(|(_, label, path, particles)| {
            let map = crate::maps::DensityMap::read(&path)?;
            Ok(StateVolume {
                label,
                path,
                map,
                particles,
            })
        })
        .collect()
}
