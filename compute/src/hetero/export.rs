//! Particle subsets of a run written back as STAR or `.cs`: the selected rows of the original
//! file with every column, the optics table and the other blocks kept, or, when the format
//! changes, converted through the particle model (poses, shifts, CTFs and image references).

use std::path::Path;

use super::error::{HeteroError, HeteroResult};
use crate::formats::cs::CsFile;
use crate::formats::error::FormatError;
use crate::formats::particles::{ParticleOptions, ParticleSet, particle_block};
use crate::formats::stack::ImageRef;
use crate::formats::star::{StarFile, StarTable};

/// Writes particles `rows` (0-based, in the file's order) of `source` to `output`. Same format:
/// the original rows with every column, the optics table and other blocks kept. STAR → .cs or
/// back: converted through the particle model (poses, shifts, CTFs and image references), with
/// `particle_options` supplying what the source lacks (the run's pixel size).
pub fn export_subset(
    source: &Path,
    rows: &[usize],
    output: &Path,
    particle_options: &ParticleOptions,
) -> HeteroResult<usize> {
    let is_cs = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("cs"));
    let mut rows = rows.to_vec();
    rows.sort_unstable();
    rows.dedup();
    if rows.is_empty() {
        return Err(HeteroError::Invalid("the selection is empty: nothing to export".into()));
    }
    // STAR and .cs writers go through a temporary file and a rename themselves.
    match (is_cs(source), is_cs(output)) {
        (true, true) => {
            let cs = CsFile::read(source)?;
            check_rows(&rows, cs.rows, source)?;
            cs.select_rows(&rows).write(output)?;
        }
        (false, false) => export_star(source, &rows, output)?,
        (source_cs, _) => export_converted(source, source_cs, &rows, output, particle_options)?,
    }
    Ok(rows.len())
}

/// STAR to STAR: the particle table's rows `rows`, every other block as it was.
fn export_star(source: &Path, rows: &[usize], output: &Path) -> HeteroResult<()> {
    let mut star = StarFile::read(source)?;
    let no_table = || FormatError::invalid(source, "no particle table");
    let block_name = particle_block(&star).map(|b| b.name.clone()).ok_or_else(no_table)?;
    let block = star.block_mut(&block_name).ok_or_else(no_table)?;
    let table = block.table_mut().ok_or_else(no_table)?;
    check_rows(rows, table.row_count(), source)?;
    *table = table.select_rows(rows);
    // Stack references stay relative to the source: write absolute ones when the output lives
    // elsewhere.
    absolutise_images(table, source, output);
    Ok(star.write(output)?)
}

/// STAR to .cs or back, through the particle model.
fn export_converted(
    source: &Path,
    source_cs: bool,
    rows: &[usize],
    output: &Path,
    particle_options: &ParticleOptions,
) -> HeteroResult<()> {
    let set = if source_cs {
        ParticleSet::from_cs_with(source, &CsFile::read(source)?, particle_options)?
    } else {
        ParticleSet::from_star_with(source, &StarFile::read(source)?, particle_options)?
    };
    check_rows(rows, set.particles.len(), source)?;
    let mut subset = ParticleSet {
        optics: set.optics.clone(),
        particles: rows.iter().map(|&r| set.particles[r].clone()).collect(),
    };
    let dir = source.parent().unwrap_or(Path::new("."));
    for p in &mut subset.particles {
        let reference = ImageRef {
            index_1based: p.image_index_1based,
            path: p.image_path.clone(),
            whole_file: p.image_whole_file,
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
        subset.to_star().write(output)?;
    } else {
        subset.to_cs().write(output)?;
    }
    Ok(())
}

fn check_rows(rows: &[usize], count: usize, source: &Path) -> HeteroResult<()> {
    match rows.last() {
        Some(&last) if last >= count => Err(HeteroError::run(
            source,
            format!("particle {last} selected, but the file holds {count}"),
        )),
        _ => Ok(()),
    }
}

fn absolutise_images(table: &mut StarTable, source: &Path, output: &Path) {
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
            let absolute = ImageRef::parse_image_name(text).and_then(|reference| {
                let path = reference.resolve(source)?;
                let path = std::fs::canonicalize(&path).unwrap_or(path);
                Some(
                    ImageRef {
                        index_1based: reference.index_1based,
                        path: path.display().to_string(),
                        whole_file: reference.whole_file,
                    }
                    .to_relion(),
                )
            });
            absolute.unwrap_or_else(|| text.to_owned())
        })
        .collect();
    table.set_column("rlnImageName", |r| resolved[r].clone());
}
