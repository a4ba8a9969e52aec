//! The `cryoforge` binary: with no subcommand it opens the desktop app (files given as arguments
//! open in it); subcommands run the same work from the command line.

mod cli;
mod gui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cryoforge", version, about = "A workbench that turns cryo-EM data into atomic models")]
#[command(args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Files to open in the app (maps, particle stacks, STAR/.cs, PDB/mmCIF models).
    files: Vec<PathBuf>,
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
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Some(Command::Info { json, files }) => cli::info(&files, json),
        Some(Command::Convert { input, output }) => cli::convert(&input, &output),
        None => gui::run(args.files),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
