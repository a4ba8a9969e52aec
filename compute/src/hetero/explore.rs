//! A trained run, analysed and cut into subsets: PCA and UMAP of the latents, clusters (GMM or
//! k-means) with one volume per cluster, optionally refined by a 3D classification seeded by
//! them ([`super::classify`]), volumes along the principal axes, measures against a ground-truth
//! column when the particle file has one, and particle subsets written back as STAR or `.cs`
//! that keep every original column, the optics table and the image references.
//!
//! `analyze` writes `RUN/analysis/`: `pca.npy` and `umap.npy` ([N, 2]), `labels.txt` (one
//! 0-based cluster per particle), `analysis.json` ([`AnalysisSummary`]), `cluster_<i>.mrc` and
//! `pc<a>_<j>.mrc`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::analysis::{Pca, UmapOptions, adjusted_mutual_information, adjusted_rand_index, gmm, pca, spearman, umap};
use super::classify::{Classification, classify};
use super::error::{HeteroError, HeteroResult};
use super::run::{read_json, write_json};
use super::{HeteroData, Trained};
use crate::formats::cs::CsFile;
use crate::formats::error::FormatError;
use crate::formats::npy::{read_f32_array, write_f32_array};
use crate::formats::particles::particle_block;
use crate::formats::star::{StarBlock, StarFile};
use crate::numeric::kmeans::{KMeansOptions, kmeans, squared_distance};

pub use super::states::{StateSource, StateVolume, state_volumes};

pub const ANALYSIS_DIR: &str = "analysis";
pub const LABELS_FILE: &str = "labels.txt";
pub const SUMMARY_FILE: &str = "analysis.json";

/// The column simulated particle sets carry with each particle's true state.
pub const TRUTH_COLUMN: &str = "cryoforgeModelIndex";

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClusterMethod {
    Gmm,
    KMeans,
}

/// What the clusters are fitted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClusterSpace {
    /// The latents themselves.
    Latent,
    /// A UMAP of the latents with this many dimensions (docs/science.md §4: 16 for clustering).
    Umap(usize),
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnalyzeOptions {
    pub clusters: usize,
    pub method: ClusterMethod,
    /// None: the latents when zdim ≤ 16, else a 16-D UMAP.
    pub space: Option<ClusterSpace>,
    /// Volumes along each of the first two principal axes (cryoDRGN: 10).
    pub traversal_volumes: usize,
    /// A numeric column of the particle table holding the true state, for the measures.
    pub truth_column: Option<String>,
    /// After clustering, rounds of 3D classification with the known poses, seeded by the
    /// clusters ([`super::classify`]): each cluster is reconstructed from its particles at the
    /// full particle size and each particle moves to the reconstruction that explains its image
    /// best (0: the clusters stay as fitted).
    #[serde(default, alias = "reassign_rounds")]
    pub classify_rounds: usize,
    pub seed: u64,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self {
            clusters: 5,
            method: ClusterMethod::Gmm,
            space: None,
            traversal_volumes: 10,
            truth_column: Some(TRUTH_COLUMN.to_owned()),
            classify_rounds: 0,
            seed: 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClusterSummary {
    pub index: usize,
    pub size: usize,
    /// The particle whose latent is nearest the cluster's mean latent: its volume is the cluster's.
    pub representative: usize,
    pub volume: String,
}

/// Measures against the ground truth.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TruthScores {
    pub column: String,
    pub ari: f64,
    pub ami: f64,
    /// |Spearman| of the first principal component and of the first UMAP axis with the truth.
    pub spearman_pc1: f64,
    pub spearman_umap1: f64,
    /// ARI and AMI of the fitted clusters before the 3D classification, when it ran.
    #[serde(default, alias = "before_reassignment")]
    pub before_classification: Option<[f64; 2]>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnalysisSummary {
    pub particles: usize,
    pub zdim: usize,
    pub options: AnalyzeOptions,
    pub space: ClusterSpace,
    pub clusters: Vec<ClusterSummary>,
    pub pca_variance: Vec<f64>,
    pub traversal_volumes: Vec<String>,
    pub truth: Option<TruthScores>,
    /// Particles whose class changed in each round of 3D classification (empty when it did not run).
    #[serde(default)]
    pub classification_moves: Vec<usize>,
    pub seconds_umap: f64,
    pub seconds_total: f64,
}

/// Everything the explorer shows, loaded from a run and its analysis.
#[derive(Clone, Debug)]
pub struct Exploration {
    pub run: PathBuf,
    pub zdim: usize,
    /// [N, zdim]
    pub latents: Vec<f32>,
    /// [N, 2]
    pub umap: Vec<f32>,
    pub pca: Vec<f32>,
    pub labels: Vec<usize>,
    pub summary: AnalysisSummary,
}

impl Exploration {
    pub fn load(run: &Path) -> HeteroResult<Self> {
        let dir = run.join(ANALYSIS_DIR);
        let (latents, zdim) = Trained::latents(run)?;
        let (umap, _, _) = read_f32_array(&dir.join("umap.npy"))?;
        let (pca, _, _) = read_f32_array(&dir.join("pca.npy"))?;
        let labels = read_labels(&dir.join(LABELS_FILE))?;
        let summary = read_json(&dir.join(SUMMARY_FILE))?;
        Ok(Self {
            run: run.to_owned(),
            zdim,
            latents,
            umap,
            pca,
            labels,
            summary,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn latent(&self, i: usize) -> &[f32] {
        &self.latents[i * self.zdim..(i + 1) * self.zdim]
    }
}

/// Reads a file of 0-based indices, one per line (blank lines and `#` comments skipped).
pub fn read_labels(path: &Path) -> HeteroResult<Vec<usize>> {
    let text = std::fs::read_to_string(path).map_err(|e| FormatError::io(path, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| {
            l.trim().parse().map_err(|_| {
                FormatError::invalid(
                    path,
                    format!("line {}: '{l}' is not a particle or cluster index", i + 1),
                )
                .into()
            })
        })
        .collect()
}

/// A numeric column of the particle table (STAR: `_name`; `.cs`: field `name`), if present.
pub fn particle_column(path: &Path, name: &str, count: usize) -> HeteroResult<Option<Vec<f64>>> {
    let is_cs = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("cs"));
    let values = if is_cs {
        CsFile::read(path)?.column_f64(name, 0)
    } else {
        let star = StarFile::read(path)?;
        match particle_block(&star).and_then(StarBlock::table) {
            Some(table) => table.column_f64(path, name.trim_start_matches('_'))?,
            None => None,
        }
    };
    Ok(values.map(|mut v| {
        v.truncate(count);
        v
    }))
}

/// Largest image size the 3D classification works at (particles of larger boxes are cropped in
/// Fourier space to it).
pub const CLASSIFY_MAX_SIZE: usize = 128;

/// Split-and-merge attempts after a 3D classification that left one class under half the mean
/// size.
const SPLIT_ATTEMPTS: usize = 2;

/// Analyses a trained run. `progress` hears what is being done and returns false to stop: the
/// analysis then ends with an error at the next stage and leaves the files written so far.
pub fn analyze(run: &Path, options: &AnalyzeOptions, progress: &dyn Fn(&str) -> bool) -> HeteroResult<AnalysisSummary> {
    let started = std::time::Instant::now();
    let stopped = std::cell::Cell::new(false);
    let say = |what: &str| -> HeteroResult<()> {
        if stopped.get() || !progress(what) {
            stopped.set(true);
            return Err(HeteroError::Cancelled("analysis cancelled"));
        }
        Ok(())
    };
    let hear = |what: &str| {
        if !progress(what) {
            stopped.set(true);
        }
    };
    let trained = Trained::load(run)?;
    let (latents, zdim) = Trained::latents(run)?;
    let n = latents.len() / zdim.max(1);
    if n < options.clusters.max(2) {
        return Err(HeteroError::run(
            run,
            format!("{n} particles cannot make {} clusters", options.clusters),
        ));
    }
    let dir = run.join(ANALYSIS_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| FormatError::io(&dir, e))?;
    say("PCA")?;
    let principal = pca(&latents, zdim, zdim.min(10));
    let two = first_two_components(&principal, n);
    write_f32_array(&dir.join("pca.npy"), &two, &[n, 2])?;
    say("UMAP")?;
    let umap_started = std::time::Instant::now();
    let layout = umap(
        &latents,
        zdim,
        &UmapOptions {
            seed: options.seed,
            ..UmapOptions::default()
        },
        &hear,
    );
    let seconds_umap = umap_started.elapsed().as_secs_f64();
    say("UMAP done")?;
    write_f32_array(&dir.join("umap.npy"), &layout, &[n, 2])?;
    let space = options.space.unwrap_or(if zdim <= 16 {
        ClusterSpace::Latent
    } else {
        ClusterSpace::Umap(16)
    });
    let (points, dim) = clustering_space(&latents, zdim, space, options.seed, &say, &hear)?;
    say("clustering")?;
    let fitted = fit_clusters(&points, dim, options);
    let mut classification_moves = Vec::new();
    let (labels, class_volumes) = if options.classify_rounds > 0 {
        let best = classify_clusters(
            &trained,
            &fitted,
            &points,
            dim,
            options,
            &mut classification_moves,
            progress,
        )?;
        (best.labels, Some(best.volumes))
    } else {
        (fitted.clone(), None)
    };
    let text: String = labels.iter().map(|l| format!("{l}\n")).collect();
    crate::io::write_atomically(&dir.join(LABELS_FILE), |w| w.write_all(text.as_bytes()))?;
    let clusters = cluster_volumes(&trained, &latents, zdim, &labels, class_volumes.as_deref(), &dir, &say)?;
    let traversal_volumes = traversal(&trained, &principal, options.traversal_volumes, &dir, &say)?;
    let truth = match &options.truth_column {
        Some(column) => particle_column(&trained.config.particles, column, n)?
            .filter(|t| t.len() == n)
            .map(|t| {
                let fitted = (options.classify_rounds > 0).then_some(fitted.as_slice());
                truth_scores(column, &t, &labels, fitted, &two, &layout)
            }),
        None => None,
    };
    let summary = AnalysisSummary {
        particles: n,
        zdim,
        options: options.clone(),
        space,
        clusters,
        pca_variance: principal.variances.clone(),
        traversal_volumes,
        truth,
        classification_moves,
        seconds_umap,
        seconds_total: started.elapsed().as_secs_f64(),
    };
    write_json(&dir.join(SUMMARY_FILE), &summary)?;
    Ok(summary)
}

/// The points the clusters are fitted on, [n, dim]: the latents themselves, or their UMAP.
fn clustering_space<'a>(
    latents: &'a [f32],
    zdim: usize,
    space: ClusterSpace,
    seed: u64,
    say: &dyn Fn(&str) -> HeteroResult<()>,
    hear: &dyn Fn(&str),
) -> HeteroResult<(Cow<'a, [f32]>, usize)> {
    Ok(match space {
        ClusterSpace::Latent => (Cow::Borrowed(latents), zdim),
        ClusterSpace::Umap(d) => {
            say("UMAP for clustering")?;
            let options = UmapOptions {
                components: d,
                min_dist: 0.0,
                seed,
                ..UmapOptions::default()
            };
            (Cow::Owned(umap(latents, zdim, &options, hear)), d)
        }
    })
}

/// Cluster labels of `points` ([n, dim]) by the method of `options`.
fn fit_clusters(points: &[f32], dim: usize, options: &AnalyzeOptions) -> Vec<usize> {
    match options.method {
        ClusterMethod::Gmm => gmm(points, dim, options.clusters, options.seed).labels,
        ClusterMethod::KMeans => {
            kmeans(points, dim, None, options.clusters, KMeansOptions::new(options.seed, 5)).labels
        }
    }
}

/// The coordinates of the `n` points on the first two principal axes, [n, 2] (0 on the second
/// when there is one axis).
fn first_two_components(principal: &Pca, n: usize) -> Vec<f32> {
    (0..n)
        .flat_map(|i| {
            [
                principal.projections[i * principal.components],
                if principal.components > 1 {
                    principal.projections[i * principal.components + 1]
                } else {
                    0.0
                },
            ]
        })
        .collect()
}

/// The 3D classification of the analysis: the run's particles read at up to
/// [`CLASSIFY_MAX_SIZE`], classified from the `fitted` clusters ([`classify_with_splits`]).
fn classify_clusters(
    trained: &Trained,
    fitted: &[usize],
    points: &[f32],
    dim: usize,
    options: &AnalyzeOptions,
    moves: &mut Vec<usize>,
    progress: &dyn Fn(&str) -> bool,
) -> HeteroResult<Classification> {
    let config = &trained.config;
    let data = HeteroData::open(
        &config.particles,
        CLASSIFY_MAX_SIZE,
        None,
        1.0,
        config.options.lazy,
        Some(fitted.len()),
        config.options.pixel_size_angstrom,
        0,
        &mut |done, total| progress(&format!("3D classification: reading particles {done}/{total}")),
    )?;
    let rounds = options.classify_rounds;
    classify_with_splits(&data, fitted, points, dim, rounds, options.seed, moves, progress)
}

/// Each cluster's size, representative particle (the latent nearest the cluster's mean) and
/// volume, written to `dir` as `cluster_<c>.mrc`: the class reconstruction after a 3D
/// classification (`class_volumes`), otherwise the decoder's at the representative latent.
fn cluster_volumes(
    trained: &Trained,
    latents: &[f32],
    zdim: usize,
    labels: &[usize],
    class_volumes: Option<&[crate::maps::DensityMap]>,
    dir: &Path,
    say: &dyn Fn(&str) -> HeteroResult<()>,
) -> HeteroResult<Vec<ClusterSummary>> {
    let n = labels.len();
    let k = labels.iter().copied().max().map_or(0, |m| m + 1);
    let latent = |i: usize| &latents[i * zdim..(i + 1) * zdim];
    let mut clusters = Vec::new();
    for c in 0..k {
        let members: Vec<usize> = (0..n).filter(|&i| labels[i] == c).collect();
        if members.is_empty() {
            continue;
        }
        let mean: Vec<f32> = (0..zdim)
            .map(|d| members.iter().map(|&i| latents[i * zdim + d]).sum::<f32>() / members.len() as f32)
            .collect();
        let representative = members
            .iter()
            .copied()
            .min_by(|&a, &b| squared_distance(latent(a), &mean).total_cmp(&squared_distance(latent(b), &mean)))
            .unwrap_or(0);
        say(&format!("volume of cluster {c}"))?;
        let name = format!("cluster_{c}.mrc");
        let volume = match class_volumes {
            Some(volumes) => volumes[c].clone(),
            None => trained.volume(latent(representative)),
        };
        volume.write(&dir.join(&name))?;
        clusters.push(ClusterSummary {
            index: c,
            size: members.len(),
            representative,
            volume: name,
        });
    }
    Ok(clusters)
}

/// The measures against the true states `truth` (a numeric column): of the final `labels`, of
/// the `fitted` clusters when a classification followed, and of the first PCA and UMAP axes
/// (`two` and `layout`, [n, 2]).
fn truth_scores(
    column: &str,
    truth: &[f64],
    labels: &[usize],
    fitted: Option<&[usize]>,
    two: &[f32],
    layout: &[f32],
) -> TruthScores {
    let n = truth.len();
    let truth_labels = relabel(truth);
    let pc1: Vec<f64> = (0..n).map(|i| f64::from(two[2 * i])).collect();
    let u1: Vec<f64> = (0..n).map(|i| f64::from(layout[2 * i])).collect();
    TruthScores {
        column: column.to_owned(),
        ari: adjusted_rand_index(labels, &truth_labels),
        ami: adjusted_mutual_information(labels, &truth_labels),
        spearman_pc1: spearman(&pc1, truth).abs(),
        spearman_umap1: spearman(&u1, truth).abs(),
        before_classification: fitted.map(|fitted| {
            [
                adjusted_rand_index(fitted, &truth_labels),
                adjusted_mutual_information(fitted, &truth_labels),
            ]
        }),
    }
}

/// [`classify`] from `seeds`, then split and merge (Ueda et al. 2000): EM can settle with two
/// states in one class and a small class of leftovers (or a fragment of a state split off). Then
/// the small class's particles join the classes whose centres are nearest them in the clustering
/// space (`points`, [N, dim]), the largest class is split in two there by 2-means, and the
/// classification runs again; the result is kept if it explains the images better. Particles
/// moved per round of every kept run are appended to `moves`.
#[allow(clippy::too_many_arguments)]
pub fn classify_with_splits(
    data: &HeteroData,
    seeds: &[usize],
    points: &[f32],
    dim: usize,
    rounds: usize,
    seed: u64,
    moves: &mut Vec<usize>,
    progress: &dyn Fn(&str) -> bool,
) -> HeteroResult<Classification> {
    let n = seeds.len();
    let mut best = classify(data, seeds, rounds, &|round, moved| {
        progress(&format!(
            "3D classification: round {round} of {rounds}, {moved} particles moved"
        ))
    })?;
    moves.extend(&best.changes);
    for attempt in 1..=SPLIT_ATTEMPTS {
        let k = best.volumes.len();
        let sizes: Vec<usize> = (0..k)
            .map(|c| best.labels.iter().filter(|&&l| l == c).count())
            .collect();
        let (Some(small), Some(large)) = ((0..k).min_by_key(|&c| sizes[c]), (0..k).max_by_key(|&c| sizes[c])) else {
            break;
        };
        if k < 3 || sizes[small] * 2 * k >= n {
            break;
        }
        let centres: Vec<Vec<f32>> = (0..k)
            .map(|c| {
                let members: Vec<usize> = (0..n).filter(|&i| best.labels[i] == c).collect();
                (0..dim)
                    .map(|d| members.iter().map(|&i| points[i * dim + d]).sum::<f32>() / members.len().max(1) as f32)
                    .collect()
            })
            .collect();
        let mut next = best.labels.clone();
        for i in (0..n).filter(|&i| best.labels[i] == small) {
            let row = &points[i * dim..(i + 1) * dim];
            next[i] = (0..k)
                .filter(|&c| c != small)
                .min_by(|&a, &b| squared_distance(row, &centres[a]).total_cmp(&squared_distance(row, &centres[b])))
                .unwrap_or(large);
        }
        let members: Vec<usize> = (0..n).filter(|&i| best.labels[i] == large).collect();
        let rows: Vec<f32> = members
            .iter()
            .flat_map(|&i| points[i * dim..(i + 1) * dim].iter().copied())
            .collect();
        let halves = kmeans(&rows, dim, None, 2, KMeansOptions::new(seed + attempt as u64, 5)).labels;
        for (&i, &h) in members.iter().zip(&halves) {
            next[i] = if h == 0 { large } else { small };
        }
        let candidate = classify(data, &next, rounds, &|round, moved| {
            progress(&format!(
                "3D classification (split {attempt}): round {round} of {rounds}, {moved} particles moved"
            ))
        })?;
        if candidate.residual >= best.residual {
            break;
        }
        moves.extend(&candidate.changes);
        best = candidate;
    }
    Ok(best)
}

/// Distinct values of a numeric column as labels 0…k−1.
fn relabel(values: &[f64]) -> Vec<usize> {
    let mut distinct: Vec<f64> = values.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    values.iter().map(|v| distinct.partition_point(|d| d < v)).collect()
}

/// Volumes at evenly spaced points along PC1 and PC2, from the 5th to the 95th percentile.
fn traversal(
    trained: &Trained,
    principal: &Pca,
    count: usize,
    dir: &Path,
    say: &dyn Fn(&str) -> HeteroResult<()>,
) -> HeteroResult<Vec<String>> {
    let mut names = Vec::new();
    if count == 0 {
        return Ok(names);
    }
    let n = principal.projections.len() / principal.components.max(1);
    for axis in 0..principal.components.min(2) {
        let mut values: Vec<f32> = (0..n)
            .map(|i| principal.projections[i * principal.components + axis])
            .collect();
        values.sort_by(f32::total_cmp);
        let (lo, hi) = (
            f64::from(values[n * 5 / 100]),
            f64::from(values[(n * 95 / 100).min(n - 1)]),
        );
        for j in 0..count {
            let t = if count == 1 { 0.5 } else { j as f64 / (count - 1) as f64 };
            let mut coordinates = vec![0.0; axis + 1];
            coordinates[axis] = lo + t * (hi - lo);
            say(&format!("volume {} along PC{}", j + 1, axis + 1))?;
            let name = format!("pc{}_{j}.mrc", axis + 1);
            trained.volume(&principal.point(&coordinates)).write(&dir.join(&name))?;
            names.push(name);
        }
    }
    Ok(names)
}
