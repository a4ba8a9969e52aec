//! `info` and `convert`: summaries of any file and format conversion by extension.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use cryoforge_compute::formats::FileKind;
use cryoforge_compute::formats::cs::CsFile;
use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::formats::model_write::write_structure;
use cryoforge_compute::formats::particles::ParticleSet;
use cryoforge_compute::formats::star::StarFile;
use cryoforge_compute::formats::summary::summarize;
use cryoforge_compute::maps::DensityMap;
use indicatif::{ProgressBar, ProgressStyle};

/// A byte-count bar over reading `path`; hidden when stderr is not a terminal.
fn read_bar(path: &Path) -> ProgressBar {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("reading {}", path.display()));
    bar
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

pub fn info(files: &[std::path::PathBuf], json: bool) -> anyhow::Result<()> {
    let mut summaries = Vec::new();
    let mut failures = 0;
    for path in files {
        let bar = read_bar(path);
        let progress = |bytes: u64| bar.set_position(bytes);
        let result = summarize(path, Some(&progress));
        bar.finish_and_clear();
        match result {
            Ok(summary) if json => summaries.push(summary),
            Ok(summary) => println!("{summary}"),
            Err(err) => {
                eprintln!("error: {err}");
                failures += 1;
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&summaries)?);
    }
    if failures > 0 {
        bail!("{failures} of {} file(s) could not be read", files.len());
    }
    Ok(())
}

/// Converts `input` to `output` by their extensions; `pixel_size` is used for particle files
/// that give none.
pub fn convert(input: &Path, output: &Path, pixel_size: crate::cli::particles::PixelSizeArg) -> anyhow::Result<()> {
    let kind_of = |p: &Path| FileKind::from_path(p).with_context(|| format!("{}: unknown file type", p.display()));
    let (from, to) = (kind_of(input)?, kind_of(output)?);
    let bar = read_bar(input);
    let progress = |bytes: u64| bar.set_position(bytes);
    let progress = Some(&progress as &(dyn Fn(u64) + Sync));
    match (from, to) {
        (a, b) if a.is_model() && b.is_model() => {
            let structure = Structure::read_with_progress(input, progress)?;
            bar.finish_and_clear();
            let writing = spinner(format!("writing {}", output.display()));
            let result = write_structure(&structure, output);
            writing.finish_and_clear();
            result?;
            eprintln!(
                "wrote {} atoms × {} model(s) to {}",
                structure.atoms.len(),
                structure.frame_count(),
                output.display()
            );
        }
        (FileKind::Map, FileKind::Map) => {
            let map = DensityMap::read_with_progress(input, progress)?;
            bar.finish_and_clear();
            map.write(output)?;
            eprintln!("wrote {:?} voxels to {}", map.grid.dims, output.display());
        }
        (FileKind::Star, FileKind::Star) => {
            // Same format: keep every block and column exactly.
            StarFile::read_with_progress(input, progress)?.write(output)?;
            bar.finish_and_clear();
        }
        (FileKind::Cs, FileKind::Cs) => {
            CsFile::read_with_progress(input, progress)?.write(output)?;
            bar.finish_and_clear();
        }
        (FileKind::Star, FileKind::Cs) => {
            let star = StarFile::read_with_progress(input, progress)?;
            bar.finish_and_clear();
            let particles = ParticleSet::from_star_with(input, &star, &pixel_size.options())?;
            particles.to_cs().write(output)?;
            eprintln!("wrote {} particles to {}", particles.particles.len(), output.display());
        }
        (FileKind::Cs, FileKind::Star) => {
            let cs = CsFile::read_with_progress(input, progress)?;
            bar.finish_and_clear();
            let particles = ParticleSet::from_cs_with(input, &cs, &pixel_size.options())?;
            particles.to_star().write(output)?;
            eprintln!(
                "wrote {} particles in {} optics group(s) to {}",
                particles.particles.len(),
                particles.optics.len(),
                output.display()
            );
        }
        (a, b) => bail!(
            "cannot convert a {} ({}) into a {} ({})",
            a.label(),
            input.display(),
            b.label(),
            output.display()
        ),
    }
    Ok(())
}
