//! `cryoforge hetero pretrain`: pretrains the heterogeneity encoder's prior on simulated particles
//! of a family-split chain set (`scripts/build_dataset.py`), and the `--encoder` choice of
//! `hetero train`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use cryoforge_compute::build::train::load_dataset;
use cryoforge_compute::hetero::EncoderStart;
use cryoforge_compute::hetero::pretrain::{PretrainOptions, PretrainProgress, check_on_particles, pretrain};
use cryoforge_compute::hetero::prior::{PriorRecord, PriorShape, PriorSource, save};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct PretrainArgs {
    /// A chain set: a folder with manifest.json and the chains (scripts/build_dataset.py).
    #[arg(long)]
    pub structures: PathBuf,
    /// Families never to train on, e.g. those of the proteins the prior will be tested on.
    #[arg(long, value_delimiter = ',')]
    pub exclude_families: Vec<usize>,
    #[arg(long, default_value_t = PretrainOptions::default().steps)]
    pub steps: usize,
    /// Chains (one per family) per step, two views each.
    #[arg(long, default_value_t = PretrainOptions::default().pairs)]
    pub pairs: usize,
    #[arg(long, default_value_t = PretrainOptions::default().learning_rate)]
    pub lr: f64,
    #[arg(long, default_value_t = PretrainOptions::default().temperature)]
    pub temperature: f64,
    /// SNR range of the simulated views (drawn log-uniformly).
    #[arg(long, value_delimiter = ',', default_values_t = [PretrainOptions::default().snr.0, PretrainOptions::default().snr.1])]
    pub snr: Vec<f64>,
    /// Feature count of the prior.
    #[arg(long, default_value_t = PriorShape::default().features)]
    pub features: usize,
    /// After training, the ARI of a GMM on the prior's features of these particles (a STAR or
    /// .cs with a cryoforgeModelIndex column) against their true states.
    #[arg(long)]
    pub check: Vec<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The prior's weights (.bpk; its record is written beside it as .json).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// `--encoder`: "pretrained", "random" or a prior file.
pub fn encoder_start(value: &str) -> anyhow::Result<EncoderStart> {
    Ok(match value {
        "pretrained" => EncoderStart::Pretrained(PriorSource::Bundled),
        "random" => EncoderStart::Random,
        path => {
            let path = Path::new(path);
            if !path.exists() {
                bail!(
                    "--encoder {}: no such file (give pretrained, random or a prior .bpk)",
                    path.display()
                );
            }
            EncoderStart::Pretrained(PriorSource::File(
                path.canonicalize().unwrap_or_else(|_| path.to_owned()),
            ))
        }
    })
}

pub fn pretrain_cmd(args: PretrainArgs) -> anyhow::Result<()> {
    let chains = load_dataset(&args.structures)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("reading the chain set in {}", args.structures.display()))?;
    let [snr_low, snr_high] = args.snr[..] else {
        bail!("--snr takes two values, low,high");
    };
    let options = PretrainOptions {
        shape: PriorShape {
            features: args.features,
            ..PriorShape::default()
        },
        steps: args.steps,
        pairs: args.pairs,
        learning_rate: args.lr,
        temperature: args.temperature,
        snr: (snr_low, snr_high),
        exclude_families: args.exclude_families.clone(),
        seed: args.seed,
        ..PretrainOptions::default()
    };
    let bar = ProgressBar::new(options.steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut on_step = |p: &PretrainProgress| {
        bar.set_position(p.step as u64 + 1);
        bar.set_message(format!("loss {:.3}", p.loss));
        if let Some(v) = p.validation {
            bar.suspend(|| eprintln!("step {}: loss {:.4}, validation top-1 {v:.3}", p.step + 1, p.loss));
        }
        true
    };
    let outcome = pretrain(&chains, &options, &mut on_step)?;
    bar.finish_and_clear();
    let mut checks = Vec::new();
    for path in &args.check {
        match check_on_particles(&outcome.prior, &options.shape, path, 10_000)? {
            Some(ari) => checks.push(format!("{}: GMM ARI {ari:.3}", path.display())),
            None => checks.push(format!("{}: no truth column", path.display())),
        }
    }
    let trained_with = format!(
        "cryoforge hetero pretrain --structures {}{} --steps {} --pairs {} --lr {} \
         --temperature {} --snr {},{} --features {} --seed {}: {} training chains of {} families, {:.0} s on {} threads; \
         validation top-1 retrieval (two views each of {} chains of unseen families) {:.3} (random weights {:.3}){}",
        args.structures.display(),
        if options.exclude_families.is_empty() {
            String::new()
        } else {
            let families: Vec<String> = options.exclude_families.iter().map(ToString::to_string).collect();
            format!(" --exclude-families {}", families.join(","))
        },
        options.steps,
        options.pairs,
        options.learning_rate,
        options.temperature,
        options.snr.0,
        options.snr.1,
        options.shape.features,
        options.seed,
        outcome.train_chains,
        outcome.train_families,
        outcome.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        outcome.validation_chains,
        outcome.validation_accuracy,
        outcome.initial_accuracy,
        if checks.is_empty() {
            String::new()
        } else {
            format!("; {}", checks.join("; "))
        },
    );
    let record = PriorRecord {
        shape: options.shape.clone(),
        trained_with: trained_with.clone(),
    };
    save(&outcome.prior, &record, &args.output)?;
    eprintln!("{trained_with}\n→ {}", args.output.display());
    if outcome.cancelled {
        bail!("stopped early; the prior so far was saved");
    }
    Ok(())
}
