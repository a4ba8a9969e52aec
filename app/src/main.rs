//! The `cryoforge` binary: with no subcommand it opens the desktop app (files given as arguments
//! open in it); subcommands run the same work from the command line.

use cryoforge::cli;
use cryoforge::gui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cryoforge",
    version,
    about = "A workbench that turns cryo-EM data into atomic models"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Files to open in the app (maps, particle stacks, STAR/.cs, PDB/mmCIF models).
    files: Vec<PathBuf>,
    /// Start a guided fit of the first model into the first map at this resolution (Å) once
    /// they have loaded.
    #[arg(long, value_name = "RESOLUTION")]
    guided_fit: Option<f32>,
}

#[derive(Subcommand)]
enum Command {
    /// Print a summary of each file: maps, stacks, STAR, .cs and models.
    Info {
        /// Print JSON (an array, one object per file) instead of text.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Convert by extension: models PDB↔mmCIF, maps MRC↔CCP4/.map.gz, particles STAR↔.cs.
    Convert {
        input: PathBuf,
        output: PathBuf,
        #[command(flatten)]
        pixel_size: cli::particles::PixelSizeArg,
    },
    /// Simulate data from models.
    #[command(subcommand)]
    Simulate(cli::science::SimulateCommand),
    /// Back-project particles (STAR with poses and CTFs) into a map centred on the origin.
    Reconstruct {
        #[arg(long)]
        particles: PathBuf,
        #[command(flatten)]
        pixel_size: cli::particles::PixelSizeArg,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Score a model in a map: correlations, overlap, map value at atoms, FSC.
    Score {
        #[command(flatten)]
        input: cli::science::MapModelArgs,
        /// Contour level for "atoms inside contour" (default: the level enclosing the model's volume).
        #[arg(long)]
        contour: Option<f32>,
        #[arg(long)]
        json: bool,
    },
    /// Compare a model with a reference: Cα RMSD, TM-score, lDDT.
    Compare {
        model: PathBuf,
        reference: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Fit models into maps.
    #[command(subcommand)]
    Fit(cli::science::FitCommand),
    /// Render maps and models to a PNG without a window.
    Render {
        #[arg(long)]
        out: PathBuf,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, default_value_t = 1024)]
        width: u32,
        #[arg(long, default_value_t = 768)]
        height: u32,
        /// Isosurface level (default: the level enclosing 1% of each map's voxels).
        #[arg(long)]
        threshold: Option<f32>,
    },
    /// Map tools: threshold, dust, crop, resample, lowpass, flip, zscore, segment.
    #[command(subcommand)]
    Map(cli::map::MapCommand),
    /// Heterogeneity: train a latent model on particles, analyse its latent space, export subsets.
    #[command(subcommand)]
    Hetero(cli::hetero::HeteroCommand),
    /// Per-residue flexibility (RMSF) from a map and its model: B-factors refined against the
    /// map, local resolution of half maps, elastic network and contacts, written as B-factors
    /// and a CSV.
    Flex(cli::flex::FlexArgs),
    /// Train the flexibility estimators' learned combiner on maps simulated from a data set's
    /// X-ray chains (their own B-factors as the truth).
    FlexTrain(cli::flex::FlexTrainArgs),
    /// Build a backbone model from a map and a sequence (FASTA): Cα network, tracing, threading,
    /// backbone and refinement; `build train` and `build peptides` make what it runs on.
    Build(cli::build::BuildCommand),
    /// Validate a model's geometry: Ramachandran, clashscore, bond and angle RMSZ, Cβ deviations.
    Validate {
        model: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// A command's output piped into `head` ends the command quietly when `head` has read enough, as
/// it ends `cat`: the default action of SIGPIPE, which Rust's runtime sets to "ignore" so that
/// every later write to stdout fails (and `println!` panics). Only for subcommands: the window
/// keeps Rust's default, so a display connection closing is an error it handles, not a kill.
#[cfg(unix)]
#[allow(unsafe_code)] // One FFI call, before any thread or output exists.
fn end_quietly_on_closed_stdout() {
    // SAFETY: restoring a signal's default disposition has no preconditions; nothing else in
    // the process has installed a SIGPIPE handler that this could displace.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn end_quietly_on_closed_stdout() {}

fn main() -> ExitCode {
    // A caught panic (a parser, a job) is reported once as an error; anything else, one line.
    cryoforge_compute::panic::install_hook();
    let args = Args::parse();
    if args.command.is_some() {
        end_quietly_on_closed_stdout();
    }
    let result = match args.command {
        Some(Command::Info { json, files }) => cli::info(&files, json),
        Some(Command::Convert {
            input,
            output,
            pixel_size,
        }) => cli::convert(&input, &output, pixel_size),
        Some(Command::Simulate(command)) => cli::science::simulate_cmd(command),
        Some(Command::Score { input, contour, json }) => {
            cli::science::score_cmd(&input.map, &input.model, input.resolution, contour, json)
        }
        Some(Command::Compare { model, reference, json }) => cli::science::compare_cmd(&model, &reference, json),
        Some(Command::Fit(command)) => cli::science::fit_cmd(command),
        Some(Command::Map(command)) => cli::map::map_cmd(command),
        Some(Command::Hetero(command)) => cli::hetero::hetero_cmd(command),
        Some(Command::Flex(args)) => cli::flex::flex_cmd(args),
        Some(Command::FlexTrain(args)) => cli::flex::flex_train_cmd(args),
        Some(Command::Build(command)) => cli::build::build_cmd(command),
        Some(Command::Validate { model, json }) => cli::validate::validate_cmd(&model, json),
        Some(Command::Reconstruct {
            particles,
            pixel_size,
            output,
        }) => cli::science::reconstruct_cmd(&particles, pixel_size, &output),
        Some(Command::Render {
            out,
            files,
            width,
            height,
            threshold,
        }) => cli::render::render_cmd(&out, &files, width, height, threshold),
        None => gui::run(args.files, args.guided_fit),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
