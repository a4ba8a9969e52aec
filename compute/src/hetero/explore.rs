//! A trained run, analysed and cut into subsets: PCA and UMAP of the latents, clusters (GMM or
//! k-means) with one volume per cluster, optionally refined by a 3D classification seeded by
//! them ([`super::classify`]), volumes along the principal axes, measures against a ground-truth
//! column when the particle file has one, and particle subsets written back as STAR or `.cs`
//! that keep every original column, the optics table and the image references.
//!
//! `analyze` writes `RUN/analysis/`: `pca.npy` and `umap.npy` ([N, 2]), `labels.txt` (one
//! 0-based cluster per particle), `analysis.json` ([`AnalysisSummary`]), `cluster_<i>.mrc` and
//! `pc<a>_<j>.mrc`.

use std::path::{Path, PathBuf};

use crate::formats::cs::CsFile;
use crate::formats::particles::particle_block;
use crate::formats::star::{StarBlock, StarFile};

use super::analysis::{
    Pca, UmapOptions, adjusted_mutual_information, adjusted_rand_index, gmm, kmeans, pca, spearman, umap,
};
use super::classify::classify;
use super::{Trained, read_npy, write_atomic, write_npy};

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
    /// A UMAP of the latents with this many dimensions (SCIENCE.md: 16 for clustering).
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
    pub fn load(run: &Path) -> Result<Self, String> {
        let dir = run.join(ANALYSIS_DIR);
        let (latents, zdim) = Trained::latents(run)?;
        let (umap, _, _) = read_npy(&dir.join("umap.npy"))?;
        let (pca, _, _) = read_npy(&dir.join("pca.npy"))?;
        let labels = read_labels(&dir.join(LABELS_FILE))?;
        let text = std::fs::read_to_string(dir.join(SUMMARY_FILE))
            .map_err(|e| format!("{}: {e}", dir.join(SUMMARY_FILE).display()))?;
        let summary = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", dir.join(SUMMARY_FILE).display()))?;
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

pub fn read_labels(path: &Path) -> Result<Vec<usize>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| {
            l.trim().parse().map_err(|_| {
                format!(
                    "{}: line {}: '{l}' is not a particle or cluster index",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

/// A numeric column of the particle table (STAR: `_name`; `.cs`: field `name`), if present.
pub fn particle_column(path: &Path, name: &str, count: usize) -> Result<Option<Vec<f64>>, String> {
    let is_cs = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("cs"));
    let values = if is_cs {
        CsFile::read(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .column_f64(name, 0)
    } else {
        let star = StarFile::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        match particle_block(&star).and_then(StarBlock::table) {
            Some(table) => table
                .column_f64(path, name.trim_start_matches('_'))
                .map_err(|e| format!("{}: {e}", path.display()))?,
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
pub fn analyze(
    run: &Path,
    options: &AnalyzeOptions,
    progress: &dyn Fn(&str) -> bool,
) -> Result<AnalysisSummary, String> {
    let started = std::time::Instant::now();
    let stopped = std::cell::Cell::new(false);
    let say = |what: &str| -> Result<(), String> {
        if stopped.get() || !progress(what) {
            stopped.set(true);
            return Err("analysis cancelled".into());
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
        return Err(format!(
            "{}: {n} particles cannot make {} clusters",
            run.display(),
            options.clusters
        ));
    }
    let dir = run.join(ANALYSIS_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    say("PCA")?;
    let principal = pca(&latents, zdim, zdim.min(10));
    let two: Vec<f32> = (0..n)
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
        .collect();
    write_npy(&dir.join("pca.npy"), &two, &[n, 2])?;
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
    write_npy(&dir.join("umap.npy"), &layout, &[n, 2])?;
    let space = options.space.unwrap_or(if zdim <= 16 {
        ClusterSpace::Latent
    } else {
        ClusterSpace::Umap(16)
    });
    let reduced_store;
    let (points, dim): (&[f32], usize) = match space {
        ClusterSpace::Latent => (&latents, zdim),
        ClusterSpace::Umap(d) => {
            say("UMAP for clustering")?;
            reduced_store = umap(
                &latents,
                zdim,
                &UmapOptions {
                    components: d,
                    min_dist: 0.0,
                    seed: options.seed,
                    ..UmapOptions::default()
                },
                &hear,
            );
            (&reduced_store, d)
        }
    };
    say("clustering")?;
    let fitted = match options.method {
        ClusterMethod::Gmm => gmm(points, dim, options.clusters, options.seed).labels,
        ClusterMethod::KMeans => kmeans(points, dim, options.clusters, options.seed, 5).0,
    };
    let mut classification_moves = Vec::new();
    let (labels, class_volumes) = if options.classify_rounds > 0 {
        let config = &trained.config;
        let data = super::HeteroData::open(
            &config.particles,
            CLASSIFY_MAX_SIZE,
            None,
            config.options.lazy,
            Some(n),
            &mut |done, total| progress(&format!("3D classification: reading particles {done}/{total}")),
        )?;
        let rounds = options.classify_rounds;
        let best = classify_with_splits(
            &data,
            &fitted,
            points,
            dim,
            rounds,
            options.seed,
            &mut classification_moves,
            progress,
        )?;
        (best.labels, Some(best.volumes))
    } else {
        (fitted.clone(), None)
    };
    let text: String = labels.iter().map(|l| format!("{l}\n")).collect();
    write_atomic(&dir.join(LABELS_FILE), text.as_bytes())?;
    let k = labels.iter().copied().max().map_or(0, |m| m + 1);
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
            .min_by(|&a, &b| {
                dist(&latents[a * zdim..(a + 1) * zdim], &mean)
                    .total_cmp(&dist(&latents[b * zdim..(b + 1) * zdim], &mean))
            })
            .unwrap_or(0);
        say(&format!("volume of cluster {c}"))?;
        let name = format!("cluster_{c}.mrc");
        // After a 3D classification the class's reconstruction is its volume; otherwise the
        // decoder's at the representative latent.
        let volume = match &class_volumes {
            Some(volumes) => volumes[c].clone(),
            None => trained.volume(&latents[representative * zdim..(representative + 1) * zdim]),
        };
        volume.write(&dir.join(&name)).map_err(|e| e.to_string())?;
        clusters.push(ClusterSummary {
            index: c,
            size: members.len(),
            representative,
            volume: name,
        });
    }
    let traversal_volumes = traversal(&trained, &principal, options.traversal_volumes, &dir, &say)?;
    let truth = match &options.truth_column {
        Some(column) => particle_column(&trained.config.particles, column, n)?
            .filter(|t| t.len() == n)
            .map(|t| {
                let truth_labels = relabel(&t);
                let pc1: Vec<f64> = (0..n).map(|i| f64::from(two[2 * i])).collect();
                let u1: Vec<f64> = (0..n).map(|i| f64::from(layout[2 * i])).collect();
                TruthScores {
                    column: column.clone(),
                    ari: adjusted_rand_index(&labels, &truth_labels),
                    ami: adjusted_mutual_information(&labels, &truth_labels),
                    spearman_pc1: spearman(&pc1, &t).abs(),
                    spearman_umap1: spearman(&u1, &t).abs(),
                    before_classification: (options.classify_rounds > 0).then(|| {
                        [
                            adjusted_rand_index(&fitted, &truth_labels),
                            adjusted_mutual_information(&fitted, &truth_labels),
                        ]
                    }),
                }
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
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    write_atomic(&dir.join(SUMMARY_FILE), text.as_bytes())?;
    Ok(summary)
}

/// [`classify`] from `seeds`, then split and merge (Ueda et al. 2000): EM can settle with two
/// states in one class and a small class of leftovers (or a fragment of a state split off). Then
/// the small class's particles join the classes whose centres are nearest them in the clustering
/// space (`points`, [N, dim]), the largest class is split in two there by 2-means, and the
/// classification runs again; the result is kept if it explains the images better. Particles
/// moved per round of every kept run are appended to `moves`.
#[allow(clippy::too_many_arguments)]
pub fn classify_with_splits(
    data: &super::HeteroData,
    seeds: &[usize],
    points: &[f32],
    dim: usize,
    rounds: usize,
    seed: u64,
    moves: &mut Vec<usize>,
    progress: &dyn Fn(&str) -> bool,
) -> Result<super::classify::Classification, String> {
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
                .min_by(|&a, &b| dist(row, &centres[a]).total_cmp(&dist(row, &centres[b])))
                .unwrap_or(large);
        }
        let members: Vec<usize> = (0..n).filter(|&i| best.labels[i] == large).collect();
        let rows: Vec<f32> = members
            .iter()
            .flat_map(|&i| points[i * dim..(i + 1) * dim].iter().copied())
            .collect();
        let (halves, _) = kmeans(&rows, dim, 2, seed + attempt as u64, 5);
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

fn dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
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
    say: &dyn Fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, String> {
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
            trained
                .volume(&principal.point(&coordinates))
                .write(&dir.join(&name))
                .map_err(|e| e.to_string())?;
            names.push(name);
        }
    }
    Ok(names)
}

/// Writes particles `rows` (0-based, in the file's order) of `source` to `output`. Same format:
/// the original rows with every column, the optics table and other blocks kept. STAR → .cs or
/// back: converted through the particle model (poses, shifts, CTFs and image references).
pub fn export_subset(source: &Path, rows: &[usize], output: &Path) -> Result<usize, String> {
    let is_cs = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("cs"));
    let mut rows = rows.to_vec();
    rows.sort_unstable();
    rows.dedup();
    if rows.is_empty() {
        return Err("the selection is empty: nothing to export".into());
    }
    let name = source.display();
    // STAR and .cs writers go through a temporary file and a rename themselves.
    let written = match (is_cs(source), is_cs(output)) {
        (true, true) => {
            let cs = CsFile::read(source).map_err(|e| format!("{name}: {e}"))?;
            check_rows(&rows, cs.rows, source)?;
            cs.select_rows(&rows).write(output).map_err(|e| e.to_string())
        }
        (false, false) => {
            let mut star = StarFile::read(source).map_err(|e| format!("{name}: {e}"))?;
            let block_name = particle_block(&star)
                .map(|b| b.name.clone())
                .ok_or_else(|| format!("{name}: no particle table"))?;
            let block = star
                .block_mut(&block_name)
                .ok_or_else(|| format!("{name}: no particle table"))?;
            let table = block.table_mut().ok_or_else(|| format!("{name}: no particle table"))?;
            check_rows(&rows, table.row_count(), source)?;
            *table = table.select_rows(&rows);
            // Stack references stay relative to the source: write absolute ones when the output
            // lives elsewhere.
            absolutise_images(table, source, output);
            star.write(output).map_err(|e| e.to_string())
        }
        (source_cs, _) => {
            let set = if source_cs {
                crate::formats::particles::ParticleSet::from_cs(
                    source,
                    &CsFile::read(source).map_err(|e| format!("{name}: {e}"))?,
                )
            } else {
                crate::formats::particles::ParticleSet::from_star(
                    source,
                    &StarFile::read(source).map_err(|e| format!("{name}: {e}"))?,
                )
            }
            .map_err(|e| format!("{name}: {e}"))?;
            check_rows(&rows, set.particles.len(), source)?;
            let mut subset = crate::formats::particles::ParticleSet {
                optics: set.optics.clone(),
                particles: rows.iter().map(|&r| set.particles[r].clone()).collect(),
            };
            let dir = source.parent().unwrap_or(Path::new("."));
            for p in &mut subset.particles {
                let reference = crate::formats::stack::ImageRef {
                    index_1based: p.image_index_1based,
                    path: p.image_path.clone(),
                };
                if let Some(resolved) = reference.resolve(source)
                    && output.parent() != Some(dir)
                {
                    p.image_path = std::fs::canonicalize(&resolved)
                        .unwrap_or(resolved)
                        .display()
                        .to_string();
                }
            }
            if source_cs {
                subset.to_star().write(output)
            } else {
                subset.to_cs().write(output)
            }
            .map_err(|e| e.to_string())
        }
    };
    written.map_err(|e| format!("{}: {e}", output.display()))?;
    Ok(rows.len())
}

fn check_rows(rows: &[usize], count: usize, source: &Path) -> Result<(), String> {
    match rows.last() {
        Some(&last) if last >= count => Err(format!(
            "{}: particle {last} selected, but the file holds {count}",
            source.display()
        )),
        _ => Ok(()),
    }
}

fn absolutise_images(table: &mut crate::formats::star::StarTable, source: &Path, output: &Path) {
    let same_dir = |a: &Path, b: &Path| {
        let canon = |p: &Path| {
            std::fs::canonicalize(
                p.parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new(".")),
            )
            .ok()
        };
        canon(a).is_some() && canon(a) == canon(b)
    };
    if same_dir(source, output) {
        return;
    }
    let Some(column) = table.column_index("rlnImageName") else {
        return;
    };
    let rows = table.row_count();
    let resolved: Vec<String> = (0..rows)
        .map(|r| {
            let text = table.cell(r, column);
            let absolute = crate::formats::stack::ImageRef::parse(text).and_then(|reference| {
                let path = reference.resolve(source)?;
                let path = std::fs::canonicalize(&path).unwrap_or(path);
                Some(
                    crate::formats::stack::ImageRef {
                        index_1based: reference.index_1based,
                        path: path.display().to_string(),
                    }
                    .to_relion(),
                )
            });
            absolute.unwrap_or_else(|| text.to_owned())
        })
        .collect();
    table.set_column("rlnImageName", |r| resolved[r].clone());
}
