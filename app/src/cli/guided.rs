//! `cryoforge fit guided`: map-guided sampling of a starting model into a map, from the command
//! line. Writes the best model, every sample, every sample's trajectory (multi-model files
//! ChimeraX plays) and a JSON report with per-step losses, final scores and times.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::formats::model_write::write_structure;
use cryoforge_compute::guided::zone::default_zone_radii;
use cryoforge_compute::guided::{
    FreeOptions, GuidedError, GuidedFit, GuidedFitOptions, Sample, ScheduleKind, ZoneOptions, guided_fit,
};
use cryoforge_compute::maps::DensityMap;
use cryoforge_compute::maps::density::{GaussianAtoms, GaussianOptions};
use cryoforge_compute::maps::scores::score_map_model;
use cryoforge_compute::models::compare::compare;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScheduleArg {
    /// Maps simulated from a model.
    Synthetic,
    /// Experimental (noisy) maps: guidance sees the map low-passed to the resolution.
    Experimental,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ZoneArg {
    /// Density within --zone-radius of the model, following it as it moves.
    Model,
    /// The whole box (a map that holds the model alone).
    WholeMap,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StatesArg {
    Clusters,
    Pc1,
    Pc2,
}

#[derive(Args)]
pub struct GuidedArgs {
    /// The map (with --half-maps: optional, only reported).
    #[arg(long, required_unless_present_any = ["half_maps", "run"])]
    pub map: Option<PathBuf>,
    /// A heterogeneity run (`hetero train`, then `hetero analyze`): the model is fitted into the
    /// volume of every state (see --states) and -o gets one model per state and a trajectory
    /// across the states.
    #[arg(long, conflicts_with_all = ["map", "half_maps"])]
    pub run: Option<PathBuf>,
    /// With --run: which volumes are the states: every cluster (ordered along the latents' first
    /// principal component), or the volumes along PC1 or PC2 (`hetero analyze --traversal N`).
    #[arg(long, value_enum, default_value_t = StatesArg::Clusters, requires = "run")]
    pub states: StatesArg,
    /// With --run: each state starts from the previous state's model instead of from --model
    /// (a large motion along a path taken step by step).
    #[arg(long, requires = "run")]
    pub chain: bool,
    /// Two half maps: guidance sees the first, the free score is the correlation with the second.
    #[arg(long, num_args = 2, value_names = ["HALF_A", "HALF_B"])]
    pub half_maps: Option<Vec<PathBuf>>,
    /// Rank samples by their correlation with the map guidance sees, with no free score (by
    /// default a tenth of the map's Fourier coefficients within the resolution is held out).
    #[arg(long)]
    pub no_free: bool,
    /// The starting model (a prediction, or a structure of another state), placed in the map.
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub resolution: f32,
    /// Independent samples, ranked by correlation with the map.
    #[arg(long, default_value_t = cryoforge_compute::guided::DEFAULT_SAMPLES)]
    pub samples: usize,
    /// Sampler steps (the phases keep their published proportions).
    #[arg(long, default_value_t = cryoforge_compute::guided::DEFAULT_STEPS)]
    pub steps: usize,
    #[arg(long, value_enum, default_value_t = ScheduleArg::Synthetic)]
    pub schedule: ScheduleArg,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Which density guidance sees: the model's own zone (neighbours in the box do not pull atoms
    /// out), or the whole box. A --mask replaces either.
    #[arg(long, value_enum, default_value_t = ZoneArg::Model)]
    pub zone: ZoneArg,
    /// Radius of the model's zone for the density L2 and the scores, Å (default: 1.25 × the
    /// resolution, a little past the density kernel's reach).
    #[arg(long)]
    pub zone_radius: Option<f64>,
    /// Radius of the tighter zone the map's point cloud is drawn from, Å (default: 0.75 × the
    /// resolution, so a touching neighbour's surface stays out).
    #[arg(long)]
    pub zone_cloud_radius: Option<f64>,
    /// The model's zone is recomputed around the current estimate every this many guided steps
    /// (0: it stays around the start).
    #[arg(long, default_value_t = cryoforge_compute::guided::zone::ZONE_EVERY_STEPS)]
    pub zone_every: usize,
    /// A mask (MRC, on the map's grid or any other: it is interpolated): guidance sees the voxels
    /// where it is at least --mask-level.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// The level that separates inside from outside in --mask (for a segment map that holds
    /// density rather than 0/1, its contour level).
    #[arg(long, default_value_t = 0.5)]
    pub mask_level: f32,
    /// Run the sampler with no map terms (a control: the result should stay near the start).
    #[arg(long)]
    pub no_guidance: bool,
    /// Weight of the soft repulsion between atoms that were apart in the start (0: none).
    #[arg(long, default_value_t = 0.03)]
    pub clash_weight: f64,
    /// Rounds of sampling: each later round starts again from the previous round's best model
    /// (kept only when it raises the free score).
    #[arg(long, default_value_t = cryoforge_compute::guided::DEFAULT_ROUNDS)]
    pub rounds: usize,
    /// Steps of every round after the first (default: half of --steps).
    #[arg(long)]
    pub round_steps: Option<usize>,
    /// Keep the local guidance at full strength even when the free score stops improving (by
    /// default it halves after two checks, five local steps apart, without a gain).
    #[arg(long)]
    pub no_anneal: bool,
    /// End every sample as the sampler leaves it, without the restrained relaxation.
    #[arg(long)]
    pub no_relax: bool,
    /// The map's mean force on an atom in the final relaxation, against the stereochemistry
    /// restraints (χ²/Å; 0 relaxes the geometry alone).
    /// Default: 60 at 8 Å and coarser, rising as 1/resolution to 96 at 5 Å and finer.
    #[arg(long)]
    pub relax_map_weight: Option<f64>,
    /// L-BFGS iterations of the final relaxation.
    #[arg(long, default_value_t = cryoforge_compute::guided::RelaxOptions::default().iterations)]
    pub relax_iterations: usize,
    /// Restrain a start's bond or angle to its ideal value when it is further than this many σ
    /// from it (0: every bond and angle the validation knows takes its ideal value).
    #[arg(long, default_value_t = cryoforge_compute::guided::restraints::IDEAL_OUTLIER_Z)]
    pub ideal_z: f64,
    /// L-BFGS iterations of the stereochemistry restraints on the denoised estimate at every
    /// guided step (0: restraints in the final relaxation only).
    #[arg(long, default_value_t = GuidedFitOptions::new(5.0, ScheduleKind::Synthetic).denoiser_restraint_iterations)]
    pub denoiser_restraints: usize,
    /// Elastic modes of the prior (at most 3 × nodes − 6).
    #[arg(long, default_value_t = 300)]
    pub modes: usize,
    /// The best sample's trajectory (default: beside the output, `<name>_trajectory.pdb`).
    #[arg(long)]
    pub trajectory: Option<PathBuf>,
    /// A reference model to report Cα RMSD, TM-score and lDDT against (for benchmarks); with
    /// --run, give it once per reference state (every state is compared with each).
    #[arg(long)]
    pub reference: Vec<PathBuf>,
    /// The best model (.cif or .pdb); samples, trajectories and the report go beside it.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Print the report (without per-step records) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `<dir>/<stem><suffix>.<ext>` beside `path`.
pub fn beside(path: &Path, suffix: &str, extension: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .trim_end_matches(".gz")
        .rsplit_once('.')
        .map_or(name.as_str(), |(s, _)| s)
        .to_owned();
    path.with_file_name(format!("{stem}{suffix}.{extension}"))
}

pub fn extension_of(path: &Path) -> &'static str {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".pdb") || name.ends_with(".pdb.gz") {
        "pdb"
    } else {
        "cif"
    }
}

pub fn options_from(args: &GuidedArgs) -> anyhow::Result<GuidedFitOptions> {
    if !(args.resolution.is_finite() && args.resolution > 0.0) {
        bail!("--resolution must be a positive number, got {}", args.resolution);
    }
    if args.steps < 4 {
        bail!("--steps must be at least 4, got {}", args.steps);
    }
    let kind = match args.schedule {
        ScheduleArg::Synthetic => ScheduleKind::Synthetic,
        ScheduleArg::Experimental => ScheduleKind::Experimental,
    };
    let mut options = GuidedFitOptions::new(args.resolution, kind);
    options.schedule = options.schedule.with_total_steps(args.steps);
    options.samples = args.samples.max(1);
    options.seed = args.seed;
    options.guidance_enabled = !args.no_guidance;
    options.prior.modes = args.modes;
    options.clash_weight = args.clash_weight.max(0.0);
    options.relax.enabled = !args.no_relax;
    options.anneal.enabled = !args.no_anneal;
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    options.rounds = args.rounds;
    options.round_steps = args.round_steps;
    match args.relax_map_weight {
        Some(weight) if !(weight.is_finite() && weight >= 0.0) => {
            bail!("--relax-map-weight must be 0 or more, got {weight}")
        }
        Some(weight) => options.relax.map_weight = weight,
        None => {}
    }
    options.relax.iterations = args.relax_iterations;
    if !(args.ideal_z.is_finite() && args.ideal_z >= 0.0) {
        bail!("--ideal-z must be 0 or more, got {}", args.ideal_z);
    }
    options.relax.restraints.ideal_outlier_z = args.ideal_z;
    options.denoiser_restraint_iterations = args.denoiser_restraints;
    options.guidance.zone = match (&args.mask, args.zone) {
        (Some(path), _) => {
            let mask = DensityMap::read(path).context("the --mask map")?;
            ZoneOptions::mask(std::sync::Arc::new(mask), args.mask_level)
        }
        (None, ZoneArg::WholeMap) => ZoneOptions::WholeMap,
        (None, ZoneArg::Model) => {
            let (radius_angstrom, cloud_radius_angstrom) = default_zone_radii(args.resolution);
            let radius = args.zone_radius.unwrap_or(radius_angstrom);
            let cloud_radius = args.zone_cloud_radius.unwrap_or(cloud_radius_angstrom);
            for (name, r) in [("--zone-radius", radius), ("--zone-cloud-radius", cloud_radius)] {
                if !(r.is_finite() && r > 0.0) {
                    bail!("{name} must be a positive number of Å, got {r}");
                }
            }
            ZoneOptions::Model {
                radius_angstrom: radius,
                cloud_radius_angstrom: cloud_radius,
                every_steps: args.zone_every,
            }
        }
    };
    Ok(options)
}

fn sample_summary(
    fit: &GuidedFit,
    sample: &Sample,
    map: &DensityMap,
    resolution: f32,
    reference: Option<&Structure>,
) -> serde_json::Value {
    let model = fit.sample_model(sample);
    let (atoms, _) = GaussianAtoms::from_structure(&model, 0, GaussianOptions::molmap(resolution));
    let scores = score_map_model(map, &atoms, resolution, None);
    serde_json::json!({
        "sample": sample.index + 1,
        "seed": sample.seed,
        "complete": sample.complete,
        "seconds": sample.seconds,
        "correlation": sample.correlation,
        "correlation_about_zero": scores.correlation_about_zero,
        "fsc_resolution_angstrom": scores.fsc_resolution_angstrom,
        "zone_correlation": scores.correlation_in_zone,
        "zone_fsc_resolution_angstrom": scores.zone_fsc_resolution_angstrom,
        "geometry": sample.geometry,
        "relax": sample.relax,
        "free_score": sample.free_score,
        "validation": sample.validation,
        "rmsd_to_start_angstrom": sample.steps.last().map(|r| r.rmsd_to_start_angstrom),
        "reference": reference.map(|r| compare(&model, 0, r)),
    })
}

pub fn fit_guided_cmd(args: GuidedArgs) -> anyhow::Result<()> {
    if let Some(run) = &args.run {
        return super::guided_states::fit_states_cmd(&args, run);
    }
    let mut options = options_from(&args)?;
    let map_path = match (&args.half_maps, &args.map) {
        (Some(halves), _) => {
            let other = DensityMap::read(&halves[1])?;
            options.free = FreeOptions::HalfMap {
                other: Some(std::sync::Arc::new(other)),
            };
            halves[0].clone()
        }
        (None, Some(map)) => map.clone(),
        (None, None) => bail!("give --map or --half-maps"),
    };
    if args.no_free {
        options.free = FreeOptions::Off;
    }
    let map = DensityMap::read(&map_path)?;
    let structure = super::science::read_model(&args.model)?;
    if args.reference.len() > 1 {
        bail!("give one --reference (several only with --run)");
    }
    let reference = args
        .reference
        .first()
        .map(|p| super::science::read_model(p))
        .transpose()?;
    let bar = ProgressBar::new(options.total_steps() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut on_step = |p: &cryoforge_compute::guided::StepProgress<'_>| {
        bar.set_position((p.sample * p.total_steps + p.record.step + 1) as u64);
        bar.set_message(format!(
            "sample {}/{} {} cc {:.4}",
            p.sample + 1,
            p.samples,
            p.record.phase.label(),
            p.record.correlation
        ));
        true
    };
    let fit = guided_fit(&structure, &map, &options, &mut on_step).map_err(|e| {
        let about = match (&e, &args.mask) {
            (GuidedError::EmptyMask { .. }, Some(mask)) => mask,
            (GuidedError::Input(m), _) if m.contains("half maps") => &map_path,
            _ => &args.model,
        };
        anyhow::anyhow!("{}: {e}", about.display())
    })?;
    bar.finish_and_clear();
    let best = fit.samples.first().context("the fit produced no sample")?;

    if fit.start_is_best {
        eprintln!(
            "every sample scores worse than the start by the free score ({}: start {:.4}, best sample {:.4}); \
             {} is the start, unchanged",
            fit.free,
            fit.start_free_score.unwrap_or(f64::NAN),
            best.free_score.unwrap_or(f64::NAN),
            args.output.display()
        );
        write_structure(&fit.start_model(), &args.output)?;
    } else {
        write_structure(&fit.sample_model(best), &args.output)?;
    }
    let extension = extension_of(&args.output);
    let trajectory_path = args
        .trajectory
        .clone()
        .unwrap_or_else(|| beside(&args.output, "_trajectory", "pdb"));
    let mut files = serde_json::Map::new();
    files.insert("best".into(), args.output.display().to_string().into());
    files.insert("best_trajectory".into(), trajectory_path.display().to_string().into());
    write_structure(&fit.trajectory_model(best, false), &trajectory_path)?;
    for sample in &fit.samples {
        let n = sample.index + 1;
        let sample_path = beside(&args.output, &format!("_sample{n}"), extension);
        write_structure(&fit.sample_model(sample), &sample_path)?;
        let traj = beside(&trajectory_path, &format!("_sample{n}"), extension_of(&trajectory_path));
        write_structure(&fit.trajectory_model(sample, false), &traj)?;
        files.insert(format!("sample{n}"), sample_path.display().to_string().into());
        files.insert(format!("sample{n}_trajectory"), traj.display().to_string().into());
    }

    let summaries: Vec<serde_json::Value> = fit
        .samples
        .iter()
        .map(|s| sample_summary(&fit, s, &map, args.resolution, reference.as_ref()))
        .collect();
    let start_reference = reference.as_ref().map(|r| compare(&fit.model, 0, r));
    let summary = serde_json::json!({
        "map": map_path, "half_maps": args.half_maps, "model": args.model, "resolution_angstrom": args.resolution,
        "guidance": options.guidance_enabled, "prior": fit.prior, "cloud_points": fit.cloud_points,
        "cloud_level": fit.cloud_level, "sinkhorn_atoms": fit.sinkhorn_atoms, "atoms": fit.model.atoms.len(),
        "zone": fit.zone, "zone_voxels": fit.zone_voxels, "mask": args.mask,
        "free": fit.free, "start_is_best": fit.start_is_best, "rounds": fit.rounds,
        "start": { "correlation": fit.start_correlation, "free_score": fit.start_free_score, "validation": fit.start_validation, "geometry": fit.start_geometry, "reference": start_reference },
        "samples": summaries, "seconds": fit.seconds, "cancelled": fit.cancelled, "trajectory_stride": fit.trajectory_stride, "files": files,
    });
    let mut report = summary.clone();
    report["options"] = serde_json::to_value(&options)?;
    report["steps"] = serde_json::to_value(
        fit.samples
            .iter()
            .map(|s| serde_json::json!({"sample": s.index + 1, "steps": s.steps}))
            .collect::<Vec<_>>(),
    )?;
    let Some(report_path) = super::write_report(&args.output, &report, &summary, args.json)? else {
        return Ok(());
    };

    println!(
        "{} heavy atoms, {}; map point cloud {} points",
        fit.model.atoms.len(),
        fit.prior,
        fit.cloud_points
    );
    println!("guidance sees {} ({} voxels at the start)", fit.zone, fit.zone_voxels);
    println!(
        "start: correlation {:.4}, bonds rms {:.3} Å, {} clashes",
        fit.start_correlation, fit.start_geometry.bond_rmsd_angstrom, fit.start_geometry.clashes
    );
    println!("       {}", fit.start_validation.summary_line());
    if let Some(c) = &start_reference {
        println!(
            "       Cα RMSD to reference {:.3} Å, TM {:.3}",
            c.ca_rmsd_angstrom, c.tm_score
        );
    }
    for (rank, s) in fit.samples.iter().enumerate() {
        let mut line = format!(
            "#{} sample {} (seed {}): correlation {:.4}, moved {:.2} Å, bonds rms {:.3} Å (max {:.2}), {} clashes, {:.1} s",
            rank + 1,
            s.index + 1,
            s.seed,
            s.correlation,
            s.steps.last().map_or(0.0, |r| r.rmsd_to_start_angstrom),
            s.geometry.bond_rmsd_angstrom,
            s.geometry.bond_max_deviation_angstrom,
            s.geometry.clashes,
            s.seconds
        );
        if let Some(r) = &reference {
            let c = compare(&fit.sample_model(s), 0, r);
            line += &format!(
                "; Cα RMSD to reference {:.3} Å, TM {:.3}",
                c.ca_rmsd_angstrom, c.tm_score
            );
        }
        println!("{line}");
        println!("       {}", s.validation.summary_line());
    }
    eprintln!(
        "wrote {} (best), samples and trajectories beside it, report {} ({:.1} s)",
        args.output.display(),
        report_path.display(),
        fit.seconds
    );
    Ok(())
}
