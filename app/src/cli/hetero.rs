//! `cryoforge hetero`: the heterogeneity explorer from the command line. `train` learns a latent
//! per particle (encoder + neural-field decoder, known poses and CTFs), `analyze` embeds and
//! clusters the latents and decodes volumes, `export` writes particle subsets as STAR/.cs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use cryoforge_compute::formats::npy::{read_f32_array, write_f32_array};
use cryoforge_compute::formats::particles::ParticleOptions;
use cryoforge_compute::hetero::analysis::{COARSE_ABOVE, UmapOptions, umap};
use cryoforge_compute::hetero::explore::{
    ANALYSIS_DIR, AnalyzeOptions, ClusterMethod, ClusterSpace, Exploration, LABELS_FILE, analyze, particle_column,
    read_labels,
};
use cryoforge_compute::hetero::export::export_subset;
use cryoforge_compute::hetero::{HeteroOptions, HeteroProgress, RunConfig, train};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::particles::PixelSizeArg;
use crate::scatter::{ScatterStyle, cluster_colour, rasterise, value_colour};

#[derive(Subcommand)]
pub enum HeteroCommand {
    /// Train the encoder and decoder on a particle set with known poses and CTFs.
    Train(TrainArgs),
    /// PCA, UMAP and clusters of a trained run's latents, with one volume per cluster and
    /// volumes along the first two principal axes; PNG plots.
    Analyze(AnalyzeArgs),
    /// Write a subset of the run's particles (by cluster or by a list of indices) as STAR or .cs.
    Export(ExportArgs),
    /// UMAP of any float32 .npy array [N, D] (latents from elsewhere, or for benchmarks).
    Umap(UmapArgs),
    /// Pretrain the encoder's prior on simulated particles of many structures (contrastive).
    Pretrain(crate::cli::hetero_pretrain::PretrainArgs),
}

#[derive(Args)]
pub struct UmapArgs {
    pub input: PathBuf,
    #[arg(long, default_value_t = 15)]
    pub neighbours: usize,
    #[arg(long, default_value_t = 2)]
    pub components: usize,
    #[arg(long, default_value_t = 0.1)]
    pub min_dist: f64,
    /// Optimisation epochs (default: 500 below 10,000 points, else 200); coarse to fine, those
    /// of the coarse layout.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Above this many points, lay out a sample of 5·10⁴ first, place the rest from it and refine
    /// the whole for 20 epochs; 0: one layout of every point from the PCA start.
    #[arg(long, default_value_t = COARSE_ABOVE)]
    pub coarse_above: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Args)]
pub struct TrainArgs {
    /// RELION STAR or cryoSPARC .cs with poses and CTFs.
    #[arg(long)]
    pub particles: PathBuf,
    #[command(flatten)]
    pub pixel_size: PixelSizeArg,
    /// Latent size (8; 128 for compositional mixtures).
    #[arg(long, default_value_t = 8)]
    pub zdim: usize,
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = cryoforge_compute::hetero::LEARNING_RATE)]
    pub lr: f64,
    /// KL weight (default 1/zdim).
    #[arg(long)]
    pub beta: Option<f64>,
    /// Train on images downsampled (in Fourier space) to this many pixels.
    #[arg(long, default_value_t = 64)]
    pub downsample: usize,
    /// The encoder sees the CTF-multiplied image low-passed to this resolution (Å; default: all
    /// frequencies of the training size).
    #[arg(long)]
    pub encoder_resolution: Option<f64>,
    /// Pose-aware encoder: correlate each particle's Fourier slice with this many learned 3D
    /// templates at its known pose (0: the encoder sees the image only).
    #[arg(long, default_value_t = cryoforge_compute::hetero::TEMPLATES)]
    pub templates: usize,
    /// The decoder fits the frequencies below this fraction of the training size's Nyquist
    /// (1: all of them, as cryoDRGN; fewer is faster).
    #[arg(long, default_value_t = cryoforge_compute::hetero::DECODER_FREQUENCY)]
    pub decoder_frequency: f64,
    /// Decoder hidden layers and width.
    #[arg(long, default_value_t = 3)]
    pub layers: usize,
    #[arg(long, default_value_t = 256)]
    pub width: usize,
    /// Read particles from their stacks batch by batch instead of holding them in memory.
    #[arg(long)]
    pub lazy: bool,
    /// Use only the first N particles.
    #[arg(long)]
    pub max_particles: Option<usize>,
    /// Where the encoder starts: "random" (the image and template scores alone, as cryoDRGN),
    /// "pretrained" (with the prior bundled with cryoforge in front, fine-tuned with the rest), or
    /// a prior file from `hetero pretrain`.
    #[arg(long, default_value = "random")]
    pub encoder: String,
    /// Continue the run in the output directory from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The run directory.
    #[arg(short, long)]
    pub output: PathBuf,
}

#[derive(Args)]
pub struct AnalyzeArgs {
    /// A run directory written by `hetero train`.
    pub run: PathBuf,
    #[arg(long, default_value_t = 5)]
    pub clusters: usize,
    /// gmm or kmeans.
    #[arg(long, default_value = "gmm")]
    pub method: String,
    /// What to cluster: "latent", or "umap" (16-D UMAP). Default: latent when zdim ≤ 16.
    #[arg(long)]
    pub space: Option<String>,
    /// Volumes along each of the first two principal axes.
    #[arg(long, default_value_t = 10)]
    pub traversal: usize,
    /// A numeric particle column with the true state, to score against (ARI, AMI, Spearman).
    #[arg(long, default_value = "cryoforgeModelIndex")]
    pub truth: String,
    /// Rounds of 3D classification after clustering, seeded by the clusters: each cluster is
    /// reconstructed from its particles at full size (up to 128 px) with the known poses, and each
    /// particle moves to the reconstruction that explains its image best. 0 keeps the fitted clusters.
    #[arg(long, visible_alias = "reassign", default_value_t = 0)]
    pub classify: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    pub run: PathBuf,
    /// Clusters to export, e.g. 2,5 (as numbered by `hetero analyze`).
    #[arg(long, value_delimiter = ',')]
    pub clusters: Vec<usize>,
    /// A file of 0-based particle indices, one per line (the GUI's "Export selection" writes one).
    #[arg(long)]
    pub selection: Option<PathBuf>,
    /// .star or .cs; the same format as the input keeps every column.
    #[arg(short, long)]
    pub output: PathBuf,
    // For converting STAR ↔ .cs; default: the `--apix` the run was trained with.
    #[command(flatten)]
    pub pixel_size: PixelSizeArg,
}

pub fn hetero_cmd(command: HeteroCommand) -> anyhow::Result<()> {
    match command {
        HeteroCommand::Train(args) => train_cmd(args),
        HeteroCommand::Analyze(args) => analyze_cmd(args),
        HeteroCommand::Export(args) => export_cmd(args),
        HeteroCommand::Umap(args) => umap_cmd(args),
        HeteroCommand::Pretrain(args) => crate::cli::hetero_pretrain::pretrain_cmd(args),
    }
}

fn train_cmd(args: TrainArgs) -> anyhow::Result<()> {
    if !args.particles.exists() {
        bail!("{}: no such file", args.particles.display());
    }
    let options = HeteroOptions {
        zdim: args.zdim,
        epochs: args.epochs,
        batch: args.batch,
        learning_rate: args.lr,
        beta: args.beta,
        image_size: args.downsample,
        encoder_resolution: args.encoder_resolution,
        templates: args.templates,
        decoder_frequency: args.decoder_frequency,
        decoder_layers: args.layers,
        decoder_width: args.width,
        lazy: args.lazy,
        max_particles: args.max_particles,
        pixel_size_angstrom: args.pixel_size.apix,
        encoder: crate::cli::hetero_pretrain::encoder_start(&args.encoder)?,
        seed: args.seed,
        ..HeteroOptions::default()
    };
    options.validate()?;
    let started = Instant::now();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut on_step = |p: &HeteroProgress| {
        if p.epoch_loss.is_some() {
            bar.println(format!("epoch {}/{}: loss {:.5}", p.epoch + 1, p.epochs, p.loss));
        } else if p.loss.is_nan() {
            bar.set_length(p.steps_per_epoch as u64);
            bar.set_position(p.step as u64);
            bar.set_message("reading particles");
        } else {
            bar.set_length(p.steps_per_epoch as u64);
            bar.set_position(p.step as u64 + 1);
            bar.set_message(format!("epoch {}/{} loss {:.4}", p.epoch + 1, p.epochs, p.loss));
        }
        true
    };
    let outcome = train(&args.particles, &args.output, &options, args.resume, &mut on_step)?;
    bar.finish_and_clear();
    let state = &outcome.state;
    let rate = state.particles_per_second.iter().sum::<f64>() / state.particles_per_second.len().max(1) as f64;
    eprintln!(
        "trained {} epochs in {:.1} s ({rate:.1} particles/s per epoch); final loss {:.5} → {}",
        state.epochs_done,
        started.elapsed().as_secs_f64(),
        state.epoch_loss.last().copied().unwrap_or(f64::NAN),
        args.output.display()
    );
    Ok(())
}

fn analyze_cmd(args: AnalyzeArgs) -> anyhow::Result<()> {
    let method = match args.method.to_ascii_lowercase().as_str() {
        "gmm" => ClusterMethod::Gmm,
        "kmeans" | "k-means" => ClusterMethod::KMeans,
        other => bail!("--method must be gmm or kmeans, got '{other}'"),
    };
    let space = match args.space.as_deref() {
        None => None,
        Some("latent" | "z") => Some(ClusterSpace::Latent),
        Some("umap") => Some(ClusterSpace::Umap(16)),
        Some(other) => bail!("--space must be latent or umap, got '{other}'"),
    };
    if args.clusters < 1 {
        bail!("--clusters must be at least 1");
    }
    let options = AnalyzeOptions {
        clusters: args.clusters,
        method,
        space,
        traversal_volumes: args.traversal,
        truth_column: Some(args.truth.clone()),
        classify_rounds: args.classify,
        seed: args.seed,
    };
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let summary = analyze(&args.run, &options, &|what: &str| {
        spinner.set_message(what.to_owned());
        true
    })?;
    spinner.finish_and_clear();
    let exploration = Exploration::load(&args.run)?;
    let dir = args.run.join(ANALYSIS_DIR);
    write_plots(&exploration, &dir, &args.truth)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    println!(
        "{} particles, zdim {}; clusters ({:?} on {:?}):",
        summary.particles, summary.zdim, summary.options.method, summary.space
    );
    for c in &summary.clusters {
        println!(
            "  cluster {}: {} particles, volume {}",
            c.index,
            c.size,
            dir.join(&c.volume).display()
        );
    }
    if let Some(t) = &summary.truth {
        println!(
            "against {}: ARI {:.4}  AMI {:.4}  |Spearman| PC1 {:.4}  UMAP1 {:.4}",
            t.column, t.ari, t.ami, t.spearman_pc1, t.spearman_umap1
        );
        if let Some([ari, ami]) = t.before_classification {
            println!("  (the fitted clusters before 3D classification: ARI {ari:.4}  AMI {ami:.4})");
        }
    }
    println!(
        "UMAP {:.1} s, all {:.1} s → {}",
        summary.seconds_umap,
        summary.seconds_total,
        dir.display()
    );
    Ok(())
}

/// `umap.png` and `pca.png` coloured by cluster, and `umap_truth.png` by the truth column.
fn write_plots(exploration: &Exploration, dir: &Path, truth: &str) -> anyhow::Result<()> {
    let style = ScatterStyle::default();
    let by_cluster: Vec<[u8; 3]> = exploration.labels.iter().map(|&l| cluster_colour(l)).collect();
    let save = |name: &str, points: &[f32], colours: &[[u8; 3]]| -> anyhow::Result<()> {
        let (w, h) = (800, 800);
        let pixels = rasterise(points, colours, w, h, None, &style);
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp.png"));
        image::RgbaImage::from_raw(w as u32, h as u32, pixels)
            .context("plot size")?
            .save(&tmp)
            .with_context(|| tmp.display().to_string())?;
        std::fs::rename(&tmp, &path).with_context(|| path.display().to_string())?;
        Ok(())
    };
    save("umap.png", &exploration.umap, &by_cluster)?;
    save("pca.png", &exploration.pca, &by_cluster)?;
    let config = RunConfig::read(&exploration.run)?;
    if let Some(values) = particle_column(&config.particles, truth, exploration.len())? {
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        let colours: Vec<[u8; 3]> = values
            .iter()
            .map(|&v| value_colour(((v - lo) / (hi - lo).max(1e-12)) as f32))
            .collect();
        save("umap_truth.png", &exploration.umap, &colours)?;
    }
    Ok(())
}

fn export_cmd(args: ExportArgs) -> anyhow::Result<()> {
    let config = RunConfig::read(&args.run)?;
    let rows: Vec<usize> = match (&args.selection, args.clusters.is_empty()) {
        (Some(file), true) => read_labels(file)?,
        (None, false) => {
            let labels_path = args.run.join(ANALYSIS_DIR).join(LABELS_FILE);
            let labels = read_labels(&labels_path).context("run `cryoforge hetero analyze` first")?;
            let k = labels.iter().copied().max().map_or(0, |m| m + 1);
            if let Some(bad) = args.clusters.iter().find(|&&c| c >= k) {
                bail!(
                    "cluster {bad} does not exist: the analysis has clusters 0–{}",
                    k.saturating_sub(1)
                );
            }
            (0..labels.len())
                .filter(|&i| args.clusters.contains(&labels[i]))
                .collect()
        }
        _ => bail!("give either --clusters or --selection"),
    };
    if let Some(&bad) = rows.iter().find(|&&r| r >= config.particle_count) {
        bail!(
            "particle {bad} selected, but the run has {} particles",
            config.particle_count
        );
    }
    let pixel_size = args.pixel_size.apix.or(config.options.pixel_size_angstrom);
    let written = export_subset(
        &config.particles,
        &rows,
        &args.output,
        &ParticleOptions::with_pixel_size(pixel_size),
    )?;
    eprintln!(
        "wrote {written} of {} particles → {}",
        config.particle_count,
        args.output.display()
    );
    Ok(())
}

fn umap_cmd(args: UmapArgs) -> anyhow::Result<()> {
    let (values, rows, cols) = read_f32_array(&args.input)?;
    if rows < 3 || args.neighbours < 2 || args.components < 1 {
        bail!(
            "UMAP needs at least 3 points, --neighbours ≥ 2 and --components ≥ 1 ({} has {rows})",
            args.input.display()
        );
    }
    let options = UmapOptions {
        neighbours: args.neighbours,
        components: args.components,
        min_dist: args.min_dist,
        epochs: args.epochs,
        seed: args.seed,
        coarse_above: (args.coarse_above > 0).then_some(args.coarse_above),
        ..UmapOptions::default()
    };
    let started = Instant::now();
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    // When each step began, for the closing line's breakdown.
    let stages = std::cell::RefCell::new(Vec::<(String, Instant)>::new());
    let layout = umap(&values, cols, &options, &|what: &str| {
        stages.borrow_mut().push((what.to_owned(), Instant::now()));
        spinner.set_message(what.to_owned())
    });
    spinner.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let stages = stages.into_inner();
    let breakdown: Vec<String> = stages
        .iter()
        .enumerate()
        .map(|(k, (what, from))| {
            let to = stages.get(k + 1).map_or_else(Instant::now, |s| s.1);
            format!("{what} {:.1} s", (to - *from).as_secs_f64())
        })
        .collect();
    write_f32_array(&args.output, &layout, &[rows, options.components])?;
    eprintln!(
        "UMAP of {rows} points × {cols} dimensions in {seconds:.2} s ({}) → {}",
        breakdown.join(", "),
        args.output.display()
    );
    Ok(())
}
