//! `cryoforge flex`: per-residue flexibility (RMSF, Å) of a model from its map, written as
//! B-factors in the model (B = 8π²·RMSF²/3) and as a CSV with one column per estimator.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use cryoforge_compute::flex::{FlexError, FlexOptions, estimate_flexibility};
use cryoforge_compute::formats::model_write::write_structure;
use cryoforge_compute::maps::DensityMap;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct FlexArgs {
    /// The map, the model and the map's resolution (Å).
    #[command(flatten)]
    pub input: super::science::MapModelArgs,
    /// Two half maps: adds the local-resolution estimator (windowed FSC at each Cα).
    #[arg(long, num_args = 2, value_names = ["HALF_A", "HALF_B"])]
    pub half_maps: Vec<PathBuf>,
    /// The model with each residue's RMSF as its B-factor (.pdb or .cif).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The per-residue table (default: beside the output, `<name>.csv`).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// L-BFGS iterations of the B-factor refinement.
    #[arg(long, default_value_t = 80)]
    pub iterations: usize,
    /// Weight of the penalty on log-B differences between chain neighbours (higher: smoother
    /// along the chain, steadier in noise).
    #[arg(long)]
    pub smoothness: Option<f64>,
    /// Weight of the same penalty between residues in contact (Cα within 6.5 Å), relative to
    /// --smoothness (0 leaves it out).
    #[arg(long)]
    pub contact_smoothness: Option<f64>,
    /// Compare the map with the model's density as it is, not low-passed at the resolution.
    #[arg(long)]
    pub no_low_pass: bool,
    /// Leave out the learned combiner's column.
    #[arg(long, conflicts_with = "learned")]
    pub no_learned: bool,
    /// Make the learned combiner's column the combined value (by default the map estimate is).
    #[arg(long)]
    pub learned: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn flex_cmd(args: FlexArgs) -> anyhow::Result<()> {
    let resolution = super::science::positive(args.input.resolution, "--resolution")?;
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let map = DensityMap::read(&args.input.map)?;
    let structure = super::science::read_model(&args.input.model)?;
    let halves = args
        .half_maps
        .iter()
        .map(|p| DensityMap::read(p).map_err(anyhow::Error::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut options = FlexOptions::new(resolution);
    options.b.iterations = args.iterations;
    options.b.low_pass = !args.no_low_pass;
    options.learned = !args.no_learned;
    options.combine_learned = args.learned;
    if let Some(s) = args.smoothness {
        if !(s.is_finite() && s >= 0.0) {
            bail!("--smoothness must be zero or positive, got {s}");
        }
        options.b.smoothness = s;
    }
    if let Some(c) = args.contact_smoothness {
        if !(c.is_finite() && c >= 0.0) {
            bail!("--contact-smoothness must be zero or positive, got {c}");
        }
        options.b.contact_smoothness = c;
    }
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {percent}% ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let half_pair = match halves.as_slice() {
        [a, b] => Some((a, b)),
        _ => None,
    };
    let flex = estimate_flexibility(&map, half_pair, &structure, &options, &mut |p| {
        bar.set_position((p.fraction * 1000.0) as u64);
        bar.set_message(p.message.to_owned());
        true
    })
    .map_err(|e| {
        let about = match &e {
            FlexError::NoProtein | FlexError::OutsideMap { .. } => &args.input.model,
            FlexError::HalfMapGrids(_) => &args.half_maps[1],
            _ => &args.input.map,
        };
        anyhow::anyhow!("{}: {e}", about.display())
    })?;
    bar.finish_and_clear();
    write_structure(&flex.model(&structure), &args.output)?;
    let csv = args
        .csv
        .clone()
        .unwrap_or_else(|| super::guided::beside(&args.output, "", "csv"));
    flex.write_csv(&csv)?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let summary = serde_json::json!({
        "model": args.output,
        "csv": csv,
        "residues": flex.residues.len(),
        "mean_rmsf_angstrom": mean(&flex.rmsf),
        "max_rmsf_angstrom": flex.rmsf.iter().copied().fold(0.0, f64::max),
        "estimators": flex.estimators.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        "combiner": flex.combiner,
        "correlation_start": flex.correlation_start,
        "correlation": flex.correlation,
        "blur_b": flex.blur_b,
        "seconds": flex.seconds,
    });
    let report = serde_json::to_value(&flex)?;
    if let Some(path) = super::write_report(&args.output, &report, &summary, args.json)? {
        println!(
            "{} residues: mean RMSF {:.2} Å, max {:.2} Å ({})",
            flex.residues.len(),
            mean(&flex.rmsf),
            flex.rmsf.iter().copied().fold(0.0, f64::max),
            flex.combiner
        );
        println!(
            "B-factor refinement: map–model cc {:.3} → {:.3}, shared blur B {:.1} Å², {:.1} s",
            flex.correlation_start, flex.correlation, flex.blur_b, flex.seconds
        );
        println!(
            "wrote {} (RMSF as B = 8π²·RMSF²/3), {}, {}",
            args.output.display(),
            csv.display(),
            path.display()
        );
    }
    Ok(())
}

/// `cryoforge flex-train`: the learned combiner from maps simulated from a data set's X-ray chains.
#[derive(Args)]
pub struct FlexTrainArgs {
    /// The data set (manifest.json and chains; scripts/build_dataset.py).
    #[arg(long)]
    pub structures: PathBuf,
    /// The weights (.bpk); the report goes beside as .json.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Simulated maps to learn from.
    #[arg(long, default_value_t = 160)]
    pub maps: usize,
    #[arg(long, default_value_t = 40)]
    pub epochs: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn flex_train_cmd(args: FlexTrainArgs) -> anyhow::Result<()> {
    use cryoforge_compute::flex::training;
    let chains = cryoforge_compute::build::train::load_dataset(&args.structures).map_err(anyhow::Error::msg)?;
    let bar = ProgressBar::new(args.maps as u64);
    let (net, mut report) = training::train_on_dataset(&chains, args.maps, args.epochs, args.seed, &mut |done| {
        bar.set_position(done as u64)
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", args.structures.display()))?;
    bar.finish_and_clear();
    report.command = format!(
        "cryoforge flex-train --structures {} --maps {} --epochs {} --seed {}",
        args.structures.display(),
        args.maps,
        args.epochs,
        args.seed
    );
    training::save_combiner(&net, &args.output)?;
    super::write_json(&args.output.with_extension("json"), &report)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
