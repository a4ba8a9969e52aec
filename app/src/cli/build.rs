//! `cryoforge build`: a backbone model from a map and a sequence (the E3-CryoFold method), and
//! `cryoforge build train` / `build peptides`, which make the bundled network and peptide
//! library from a data set of real structures.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use cryoforge_compute::build::sequence::parse_fasta;
use cryoforge_compute::build::{BuildInput, BuildOptions, Likelihood, Tracer, build_model, train, weights};
use cryoforge_compute::formats::model_write::write_structure;
use cryoforge_compute::maps::DensityMap;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BuildCommand {
    #[command(subcommand)]
    pub command: Option<BuildSubcommand>,
    #[command(flatten)]
    pub args: BuildArgs,
}

#[derive(Subcommand)]
pub enum BuildSubcommand {
    /// Train the Cα network on maps simulated from a data set of real structures (a folder with
    /// manifest.json, made by scripts/build_dataset.py).
    Train(TrainArgs),
    /// Make the peptide library the backbone is built from (the data set's training chains).
    Peptides {
        #[arg(long)]
        structures: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LikelihoodArg {
    /// The Cα network (bundled weights, or --weights).
    Network,
    /// The classical baseline: the map itself (its density, or its maxima for --tracer links), no
    /// direction, no residue types.
    Density,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TracerArg {
    /// The minimum spanning tree of points sampled from the densest voxels, Cα every 3.8 Å along
    /// its longest paths (the measured best).
    Graph,
    /// Cα candidates from the likelihood's maxima, joined by greedy links.
    Links,
}

#[derive(Args)]
pub struct BuildArgs {
    #[arg(long, required = true)]
    pub map: Option<PathBuf>,
    /// FASTA: one record per chain; `>name x2` for two copies of a chain.
    #[arg(long, required = true)]
    pub sequence: Option<PathBuf>,
    /// The map's resolution, Å (default: three voxels, at least 2 Å).
    #[arg(long)]
    pub resolution: Option<f32>,
    /// Build only inside this mask (a map; inside where it is at least --mask-level).
    #[arg(long)]
    pub mask: Option<PathBuf>,
    #[arg(long, default_value_t = 0.5)]
    pub mask_level: f32,
    /// Where the Cα likelihood comes from (default: the map itself, the measured best; the
    /// network with --weights).
    #[arg(long, value_enum)]
    pub likelihood: Option<LikelihoodArg>,
    /// Weights trained with `cryoforge build train` (default: the bundled ones).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// How the chain is traced.
    #[arg(long, value_enum, default_value = "graph")]
    pub tracer: TracerArg,
    /// Skip the restrained refinement against the map.
    #[arg(long)]
    pub no_refine: bool,
    /// Cα candidates need at least this probability (the strongest 1.5 per residue are kept).
    #[arg(long, default_value_t = BuildOptions::new(4.0).candidates.min_score)]
    pub min_probability: f32,
    /// Cut out residues whose Cα comes closer than this (Å) to a longer fragment's: two traces
    /// of one density would clash (0 keeps them).
    #[arg(long, default_value_t = BuildOptions::new(4.0).trace.min_separation_angstrom)]
    pub min_separation: f64,
    /// Also write the Cα candidates (probability as B-factor; traced ones in chain A, the rest in
    /// chain Z) to this model file.
    #[arg(long)]
    pub candidates_out: Option<PathBuf>,
    /// The model (.cif or .pdb); the report goes beside it.
    #[arg(short, long, required = true)]
    pub output: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct TrainArgs {
    /// The data set: manifest.json and the chain files it lists.
    #[arg(long)]
    pub structures: PathBuf,
    /// The weights (.bpk); the record (shape, command, data) goes beside as .json.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long, default_value_t = train::TrainOptions::default().steps)]
    pub steps: usize,
    #[arg(long, default_value_t = train::TrainOptions::default().batch)]
    pub batch: usize,
    #[arg(long, default_value_t = train::TrainOptions::default().crop)]
    pub crop: usize,
    /// Channels at 1, 2 and 4 Å.
    #[arg(long, num_args = 3, default_values_t = train::TrainOptions::default().shape.channels)]
    pub channels: Vec<usize>,
    #[arg(long, default_value_t = train::TrainOptions::default().learning_rate)]
    pub learning_rate: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start from these weights (a checkpoint, or an earlier run) instead of a random network.
    #[arg(long)]
    pub init: Option<PathBuf>,
}

pub fn build_cmd(command: BuildCommand) -> anyhow::Result<()> {
    match command.command {
        Some(BuildSubcommand::Train(args)) => train_cmd(args),
        Some(BuildSubcommand::Peptides { structures, output }) => peptides_cmd(&structures, &output),
        None => build_model_cmd(command.args),
    }
}

fn build_model_cmd(args: BuildArgs) -> anyhow::Result<()> {
    let (Some(map_path), Some(sequence_path), Some(output)) = (&args.map, &args.sequence, &args.output) else {
        bail!("give --map, --sequence and -o");
    };
    let text = std::fs::read_to_string(sequence_path).with_context(|| format!("{}", sequence_path.display()))?;
    let sequences = parse_fasta(&text).with_context(|| format!("{}", sequence_path.display()))?;
    let map = DensityMap::read(map_path)?;
    let mask = args.mask.as_deref().map(DensityMap::read).transpose()?;
    let resolution = match args.resolution {
        Some(r) => super::science::positive(r, "--resolution")?,
        None => (3.0 * map.grid.voxel_size_angstrom[0]).max(2.0),
    };
    let mut options = BuildOptions::new(resolution);
    options.refine = !args.no_refine;
    if !(args.min_probability > 0.0 && args.min_probability < 1.0) {
        bail!(
            "--min-probability must be between 0 and 1, got {}",
            args.min_probability
        );
    }
    options.candidates.min_score = args.min_probability;
    if !(args.min_separation.is_finite() && args.min_separation >= 0.0) {
        bail!("--min-separation must be zero or positive, got {}", args.min_separation);
    }
    options.trace.min_separation_angstrom = args.min_separation;
    options.mask_level = args.mask_level;
    options.tracer = match args.tracer {
        TracerArg::Graph => Tracer::Graph,
        TracerArg::Links => Tracer::Links,
    };
    options.likelihood = match (args.likelihood, &args.weights) {
        (Some(LikelihoodArg::Network), _) | (None, Some(_)) => Likelihood::Network,
        (Some(LikelihoodArg::Density), _) => Likelihood::Density,
        (None, None) => Likelihood::default_for_this_build(),
    };
    let net = match (options.likelihood, &args.weights) {
        (Likelihood::Density, _) => None,
        (Likelihood::Network, Some(path)) => Some(weights::load(path)?),
        (Likelihood::Network, None) => Some(weights::bundled()?),
    };
    let bar = ProgressBar::new(1000);
    bar.set_style(
        ProgressStyle::with_template("{msg:24} {bar:40} {percent:>3}% {elapsed}")
            .unwrap_or(ProgressStyle::default_bar()),
    );
    let input = BuildInput {
        map: &map,
        sequences: &sequences,
        mask: mask.as_ref(),
    };
    let result = build_model(&input, &options, net.as_ref(), &mut |p| {
        bar.set_message(p.stage);
        bar.set_position((1000.0 * p.fraction) as u64);
        true
    })
    .with_context(|| format!("building into {}", map_path.display()))?;
    bar.finish_and_clear();
    write_structure(&result.model, output)?;
    if let Some(path) = &args.candidates_out {
        write_structure(&candidates_model(&result), path)?;
    }
    let residues: usize = sequences.iter().map(|s| s.len() * s.copies).sum();
    let summary = serde_json::json!({
        "map": map_path,
        "sequence": sequence_path,
        "resolution_angstrom": resolution,
        "likelihood": result.likelihood,
        "sequence_residues": residues,
        "candidates": result.candidates,
        "fragments": result.fragments,
        "built_residues": result.residues.len(),
        "threaded_residues": result.threaded_residues(),
        "correlation": result.correlation,
        "validation": result.validation.summary_line(),
        "seconds": result.seconds,
        "model": output,
    });
    let report = serde_json::json!({
        "summary": summary,
        "options": options,
        "residues": result.residues,
        "refinement": result.refinement,
        "validation": result.validation,
    });
    if let Some(path) = super::write_report(output, &report, &summary, args.json)? {
        let total: f64 = result.seconds.iter().map(|(_, s)| s).sum();
        println!(
            "built {} residues ({} threaded onto the sequence of {residues}) from {} Cα candidates in {} fragments; \
             correlation {:.3}; {total:.1} s",
            result.residues.len(),
            result.threaded_residues(),
            result.candidates,
            result.fragments,
            result.correlation
        );
        println!("validation: {}", result.validation.summary_line());
        println!("wrote {} and {}", output.display(), path.display());
    }
    Ok(())
}

/// The candidates as a model: one Cα per candidate, probability as B; traced fragments each a
/// run of residues in chain A (numbered on, a gap of 10 between fragments), the rest in chain Z.
fn candidates_model(result: &cryoforge_compute::build::BuildResult) -> cryoforge_compute::formats::model::Structure {
    use cryoforge_compute::formats::model::{Atom, Structure};
    let mut traced = vec![None; result.candidate_points.len()];
    let mut number = 1;
    for fragment in &result.traced {
        for &k in fragment {
            traced[k] = Some(number);
            number += 1;
        }
        number += 10;
    }
    let mut model = Structure {
        name: "candidates".into(),
        frames: vec![Vec::new()],
        ..Structure::default()
    };
    let mut lone = 1;
    for (k, (p, score)) in result.candidate_points.iter().enumerate() {
        let (chain, residue_number) = match traced[k] {
            Some(n) => ("A", n),
            None => {
                lone += 1;
                ("Z", lone - 1)
            }
        };
        model.atoms.push(Atom {
            name: "CA".into(),
            residue_name: "ALA".into(),
            chain_id: chain.into(),
            residue_number,
            element: "C".into(),
            occupancy: 1.0,
            b_factor: 100.0 * score,
            ..Atom::default()
        });
        model.frames[0].push(*p);
    }
    model
}

fn train_cmd(args: TrainArgs) -> anyhow::Result<()> {
    let chains = train::load_dataset(&args.structures).map_err(anyhow::Error::msg)?;
    let [c0, c1, c2] = args.channels[..] else {
        bail!("--channels takes three numbers");
    };
    let options = train::TrainOptions {
        shape: cryoforge_compute::build::network::NetShape { channels: [c0, c1, c2] },
        steps: args.steps,
        batch: args.batch,
        crop: args.crop,
        learning_rate: args.learning_rate,
        seed: args.seed,
        checkpoint: Some(args.output.with_extension("checkpoint.bpk")),
        init: args.init.clone(),
        ..train::TrainOptions::default()
    };
    let bar = ProgressBar::new(options.steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} {elapsed}/{duration}")
            .unwrap_or(ProgressStyle::default_bar()),
    );
    let (net, report) = train::train(&chains, &options, &mut |p| {
        bar.set_position(p.step as u64);
        bar.set_message(format!("loss {:.3} {:.3} {:.3}", p.loss[0], p.loss[1], p.loss[2]));
        if let Some(v) = p.validation {
            bar.println(format!(
                "step {}: validation bump {:.4} vector {:.4} type {:.4}",
                p.step, v[0], v[1], v[2]
            ));
        }
        true
    })
    .map_err(anyhow::Error::msg)?;
    bar.finish_and_clear();
    let record = weights::WeightsRecord {
        shape: options.shape.clone(),
        trained_with: format!(
            "cryoforge build train --structures {} --steps {} --batch {} --crop {} --channels {c0} {c1} {c2} \
             --learning-rate {} --seed {}{}: {} training chains of {} families, {} validation chains, {:.0} s",
            args.structures.display(),
            options.steps,
            options.batch,
            options.crop,
            options.learning_rate,
            options.seed,
            args.init
                .as_ref()
                .map(|p| format!(" --init {}", p.display()))
                .unwrap_or_default(),
            report.train_chains,
            report.train_families,
            report.validation_chains,
            report.seconds
        ),
    };
    weights::save(&net, &record, &args.output)?;
    super::write_json(&args.output.with_extension("report.json"), &report)?;
    println!("{}", record.trained_with);
    println!("wrote {}", args.output.display());
    Ok(())
}

fn peptides_cmd(structures: &std::path::Path, output: &std::path::Path) -> anyhow::Result<()> {
    let chains = train::load_dataset(structures).map_err(anyhow::Error::msg)?;
    // One chain per training family, so the two large families do not fill the library.
    let mut seen = std::collections::HashSet::new();
    let representatives: Vec<_> = chains
        .iter()
        .filter(|c| c.split == "train" && seen.insert(c.family))
        .map(|c| c.structure.clone())
        .collect();
    let library = cryoforge_compute::build::backbone::PeptideLibrary::from_structures(&representatives);
    // Every 8th peptide is plenty for the nearest-neighbour look-up.
    let thinned = cryoforge_compute::build::backbone::PeptideLibrary {
        entries: library.entries.iter().step_by(8).cloned().collect(),
    };
    let text = thinned.to_text(&format!(
        "peptides of one chain per training family ({} chains) of {} (every 8th of {}), made by `cryoforge build \
         peptides`",
        representatives.len(),
        structures.display(),
        library.entries.len()
    ));
    cryoforge_compute::io::write_atomically(output, |w| w.write_all(text.as_bytes()))?;
    println!("wrote {} peptides to {}", thinned.entries.len(), output.display());
    Ok(())
}
