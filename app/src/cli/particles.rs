//! `cryoforge fit particles`: particle-driven refinement of a model against raw particle images
//! with known poses and CTFs. Writes the refined model, the best one seen (by held-out FRC), and
//! a JSON report with the loss per step and per epoch.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::formats::model_write::write_structure;
use cryoforge_compute::formats::particles::ParticleOptions;
use cryoforge_compute::models::compare::compare;
use cryoforge_compute::particles::data::ParticleData;
use cryoforge_compute::refine::{RefineOptions, RefineProgress, refine_particles};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::guided::{beside, extension_of};

/// `--apix`, on every command that reads particles.
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct PixelSizeArg {
    /// Pixel size of the particle images in Å, for files that give none (RELION 3.0 tables
    /// without optics or pixel-size columns); replaces the file's value when it has one.
    #[arg(long, value_name = "Å", value_parser = parse_pixel_size)]
    pub apix: Option<f64>,
}

impl PixelSizeArg {
    pub fn options(self) -> ParticleOptions {
        ParticleOptions::with_pixel_size(self.apix)
    }
}

fn parse_pixel_size(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a positive pixel size in Å, got {text:?}")),
    }
}

#[derive(Args)]
pub struct ParticleFitArgs {
    /// RELION STAR or cryoSPARC .cs with poses and CTFs; the stacks it names are read.
    #[arg(long)]
    pub particles: PathBuf,
    #[command(flatten)]
    pub pixel_size: PixelSizeArg,
    /// The starting model, placed in the particles' frame.
    #[arg(long)]
    pub model: PathBuf,
    /// Final resolution (Å): the FRC loss uses rings up to 1/resolution.
    #[arg(long)]
    pub resolution: f64,
    /// Epochs (default: the published 10, or more for small sets so there are at least 600
    /// optimisation steps).
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Where the box centre sits in the model's frame, "x,y,z" in Å (default: from the STAR file
    /// if the simulator wrote it, else the model's centroid).
    /// (write `--centre=-3.7,9.6,14.4` when the first value is negative).
    #[arg(long, value_parser = parse_centre, allow_hyphen_values = true)]
    pub centre: Option<[f64; 3]>,
    /// Use only the first N particles.
    #[arg(long)]
    pub max_particles: Option<usize>,
    /// Elastic modes of the prior the structure moves in.
    #[arg(long, default_value_t = 200)]
    pub modes: usize,
    /// Adam learning rate of the structure (per whitened mode coefficient).
    #[arg(long)]
    pub lr_structure: Option<f64>,
    /// First epoch's resolution limit (Å); falls to --resolution by the last epoch.
    #[arg(long)]
    pub start_resolution: Option<f64>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A reference model to report Cα RMSD, TM-score and lDDT against (for benchmarks).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// The refined model (.cif or .pdb); the best-by-validation model and the report go beside it.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long)]
    pub json: bool,
}

fn parse_centre(text: &str) -> Result<[f64; 3], String> {
    let values: Vec<f64> = text
        .split(',')
        .map(|v| v.trim().parse::<f64>().map_err(|e| format!("{v:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match values.as_slice() {
        [x, y, z] if values.iter().all(|v| v.is_finite()) => Ok([*x, *y, *z]),
        _ => Err(format!("expected three finite numbers x,y,z in Å, got {text:?}")),
    }
}

/// Options for `particles` particles.
pub fn options_from(args: &ParticleFitArgs, particles: usize) -> anyhow::Result<RefineOptions> {
    if !(args.resolution.is_finite() && args.resolution > 0.0) {
        bail!("--resolution must be a positive number, got {}", args.resolution);
    }
    if args.epochs == Some(0) || args.batch == 0 {
        bail!("--epochs and --batch must be at least 1");
    }
    let mut options = RefineOptions::new(args.resolution);
    options.batch = args.batch;
    options.seed = args.seed;
    options.prior.modes = args.modes;
    if let Some(lr) = args.lr_structure {
        options.lr_structure = lr;
    }
    if let Some(r) = args.start_resolution {
        options.start_resolution_angstrom = r.max(args.resolution);
    }
    options.epochs = args
        .epochs
        .unwrap_or_else(|| RefineOptions::auto_epochs(particles, options.batch, options.validation_particles));
    Ok(options)
}

pub fn fit_particles_cmd(args: ParticleFitArgs) -> anyhow::Result<()> {
    // Bad options fail before the particles are read.
    options_from(&args, 1)?;
    let mut data = ParticleData::read_with(&args.particles, &args.pixel_size.options()).map_err(anyhow::Error::msg)?;
    if let Some(n) = args.max_particles {
        data.images.truncate(n);
        data.set.particles.truncate(n);
    }
    let options = options_from(&args, data.len())?;
    let structure = Structure::read(&args.model)?;
    let reference = args.reference.as_deref().map(Structure::read).transpose()?;
    let centre = match (&args.centre, data.centre) {
        (Some(c), _) => *c,
        (None, Some(c)) => c,
        (None, None) => cryoforge_compute::particles::data::centroid(&structure),
    };
    let device = cryoforge_compute::refine::training_device();
    let bar = ProgressBar::new((options.epochs * data.len().div_ceil(options.batch)) as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut on_step = |p: &RefineProgress<'_>| {
        if let Some(v) = p.validation_frc {
            bar.println(format!(
                "epoch {}/{}: limit {:.1} Å, mean FRC {:.4}, held-out FRC {v:.4}",
                p.epoch + 1,
                p.epochs,
                p.resolution_angstrom,
                p.frc
            ));
        } else {
            bar.set_position((p.epoch * p.steps_per_epoch + p.step + 1) as u64);
            bar.set_message(format!("epoch {}/{} FRC {:.4}", p.epoch + 1, p.epochs, p.frc));
        }
        true
    };
    let refinement = refine_particles(&structure, &data, centre, &options, &device, &mut on_step)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.model.display()))?;
    bar.finish_and_clear();

    write_structure(&refinement.refined, &args.output)?;
    let extension = extension_of(&args.output);
    let best_path = beside(&args.output, "_best", extension);
    write_structure(&refinement.best, &best_path)?;
    let against = |model: &Structure| reference.as_ref().map(|r| compare(model, 0, r));
    let summary = serde_json::json!({
        "particles": args.particles, "model": args.model, "particle_count": data.len(), "box": data.box_size,
        "pixel_size_angstrom": data.pixel_size, "centre": centre, "atoms": refinement.refined.atoms.len(),
        "prior": refinement.describe_prior, "epochs": refinement.epochs, "best_epoch": refinement.best_epoch + 1,
        "completed": refinement.completed, "seconds": refinement.seconds, "particles_per_second": refinement.particles_per_second,
        "start": { "reference": against(&refinement.start) },
        "refined": { "reference": against(&refinement.refined) },
        "best": { "reference": against(&refinement.best) },
        "files": { "refined": args.output, "best": best_path },
    });
    let mut report = summary.clone();
    report["options"] = serde_json::to_value(&options)?;
    report["step_frc"] = serde_json::to_value(&refinement.step_frc)?;
    report["amplitudes"] = serde_json::to_value(&refinement.amplitudes)?;
    report["widths"] = serde_json::to_value(&refinement.widths)?;
    let Some(report_path) = super::write_report(&args.output, &report, &summary, args.json)? else {
        return Ok(());
    };
    println!(
        "{} particles of {} px, {} heavy atoms, {}",
        data.len(),
        data.box_size,
        refinement.refined.atoms.len(),
        refinement.describe_prior
    );
    if let Some(last) = refinement.epochs.last() {
        println!(
            "final epoch: mean FRC {:.4}, held-out FRC {:.4} at {:.1} Å; best epoch {}",
            last.mean_frc,
            last.validation_frc,
            options.resolution_angstrom,
            refinement.best_epoch + 1
        );
    }
    if let (Some(s), Some(r), Some(b)) = (
        against(&refinement.start),
        against(&refinement.refined),
        against(&refinement.best),
    ) {
        println!(
            "Cα RMSD to reference: start {:.3} Å → refined {:.3} Å (TM {:.3}); best-by-validation {:.3} Å",
            s.ca_rmsd_angstrom, r.ca_rmsd_angstrom, r.tm_score, b.ca_rmsd_angstrom
        );
    }
    eprintln!(
        "wrote {} and {}, report {} ({:.1} s, {:.0} particles/s)",
        args.output.display(),
        best_path.display(),
        report_path.display(),
        refinement.seconds,
        refinement.particles_per_second
    );
    Ok(())
}
