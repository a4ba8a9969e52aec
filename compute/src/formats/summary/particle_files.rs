//! What `cryoforge info` says about STAR and `.cs` files. Any STAR file is summarised (blocks,
//! their key-value pairs, each loop's columns and row count: RELION's optimiser, sampling,
//! model, postprocess and pipeline files as much as particle tables); for particle files also
//! the optics groups with the values the file gives, and what is missing before the particles
//! can be used (a pixel size, say). A particle table that cannot be used is described, not refused.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::formats::cs::CsFile;
use crate::formats::error::FormatError;
use crate::formats::particles::optics::{
    DEFAULT_AMPLITUDE_CONTRAST, DEFAULT_SPHERICAL_ABERRATION_MM, DEFAULT_VOLTAGE_KV, cs_optics,
};
use crate::formats::particles::{OpticsValues, ParticleOptions, ParticleSet, StarLayout, particle_block, star_optics};
use crate::formats::stack::ImageRef;
use crate::formats::star::{StarBlock, StarFile, StarTable};

/// Key-value pairs of a block shown as text before the rest is left to `--json`.
const PAIRS_SHOWN: usize = 24;

#[derive(Clone, Debug, Serialize)]
pub struct StarPair {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct StarLoopSummary {
    pub rows: usize,
    pub columns: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StarBlockSummary {
    pub name: String,
    /// Rows and columns of the block's first loop (RELION writes one per block); 0 and none for
    /// a block of key-value pairs only.
    pub rows: usize,
    pub columns: Vec<String>,
    /// Any further loops of the block.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_loops: Vec<StarLoopSummary>,
    pub pairs: Vec<StarPair>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StarSummary {
    /// The particle table's layout; None for files without particles.
    pub layout: Option<StarLayout>,
    pub blocks: Vec<StarBlockSummary>,
    /// The block holding the particles.
    pub particle_block: Option<String>,
    pub particles: Option<usize>,
    pub optics_groups: usize,
    /// Each optics group as the file gives it (`null`: not in the file).
    pub optics: Vec<OpticsValues>,
    /// Distinct image files the particles name.
    pub image_files: usize,
    /// The particles' images are whole files (`_rlnImageName` without `index@`).
    pub one_file_per_particle: bool,
    /// The file gives no pixel size: particle commands need `--apix`.
    pub needs_pixel_size: bool,
    /// Why the particles cannot be used as they are, when they cannot.
    pub problem: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CsSummary {
    pub rows: usize,
    pub record_bytes: usize,
    pub fields: Vec<String>,
    pub is_particle_set: bool,
    pub optics_groups: Option<usize>,
    pub optics: Vec<OpticsValues>,
    pub needs_pixel_size: bool,
    pub problem: Option<String>,
}

fn table_summary(table: &StarTable) -> StarLoopSummary {
    StarLoopSummary {
        rows: table.row_count(),
        columns: table.columns.clone(),
    }
}

fn block_summary(block: &StarBlock) -> StarBlockSummary {
    let mut loops = block.tables.iter().map(table_summary);
    let first = loops.next();
    StarBlockSummary {
        name: block.name.clone(),
        rows: first.as_ref().map_or(0, |t| t.rows),
        columns: first.map(|t| t.columns).unwrap_or_default(),
        other_loops: loops.collect(),
        pairs: block
            .pairs
            .iter()
            .map(|(key, value)| StarPair {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
    }
}

/// Summarises any STAR file; the particle part only where there is a particle table.
pub fn star_summary(path: &Path, star: &StarFile) -> StarSummary {
    let mut summary = StarSummary {
        layout: None,
        blocks: star.blocks.iter().map(block_summary).collect(),
        particle_block: None,
        particles: None,
        optics_groups: 0,
        optics: Vec::new(),
        image_files: 0,
        one_file_per_particle: false,
        needs_pixel_size: false,
        problem: None,
    };
    let Some((block, table)) = particle_block(star).and_then(|b| Some((b, b.table()?))) else {
        return summary;
    };
    summary.particle_block = Some(block.name.clone());
    summary.particles = Some(table.row_count());
    match star_optics(path, star, table) {
        Ok(optics) => {
            summary.layout = Some(optics.layout);
            summary.optics_groups = optics.groups.len();
            summary.needs_pixel_size = optics.groups.iter().any(|g| g.pixel_size_angstrom.is_none());
            summary.optics = optics.groups;
        }
        Err(e) => summary.problem = Some(without_path(path, &e)),
    }
    if let Some(c) = table.column_index("rlnImageName") {
        let names: Vec<Option<ImageRef>> = (0..table.row_count())
            .map(|r| ImageRef::parse_image_name(table.cell(r, c)))
            .collect();
        let files: BTreeSet<&str> = names.iter().flatten().map(|n| n.path.as_str()).collect();
        summary.image_files = files.len();
        summary.one_file_per_particle = !names.is_empty() && names.iter().flatten().all(|n| n.whole_file);
    }
    // What a particle command would say besides the missing pixel size (any value stands in).
    if summary.problem.is_none() {
        let options = stand_in_pixel_size(summary.needs_pixel_size);
        summary.problem = ParticleSet::from_star_with(path, star, &options)
            .err()
            .map(|e| without_path(path, &e));
    }
    summary
}

/// Summarises a `.cs` file: its fields, and its optics groups when it holds particles.
pub fn cs_summary(path: &Path, cs: &CsFile) -> CsSummary {
    let is_particle_set = cs.field("blob/path").is_some() && cs.field("blob/idx").is_some();
    let optics = if is_particle_set { cs_optics(cs).0 } else { Vec::new() };
    let needs_pixel_size = is_particle_set && optics.iter().any(|g| g.pixel_size_angstrom.is_none());
    let problem = is_particle_set
        .then(|| ParticleSet::from_cs_with(path, cs, &stand_in_pixel_size(needs_pixel_size)).err())
        .flatten()
        .map(|e| without_path(path, &e));
    CsSummary {
        rows: cs.rows,
        record_bytes: cs.record_bytes,
        fields: cs.fields.iter().map(|f| f.name.clone()).collect(),
        is_particle_set,
        optics_groups: is_particle_set.then_some(optics.len()),
        optics,
        needs_pixel_size,
        problem,
    }
}

/// Options that supply a pixel size when the file has none, to find any other problem.
fn stand_in_pixel_size(needed: bool) -> ParticleOptions {
    ParticleOptions::with_pixel_size(needed.then_some(1.0))
}

/// An error's message without the leading path: the summary already names the file.
fn without_path(path: &Path, error: &FormatError) -> String {
    let text = error.to_string();
    let prefix = format!("{}: ", path.display());
    text.strip_prefix(&prefix).map(str::to_owned).unwrap_or(text)
}

fn or_dash(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The optics groups as a table, one line each.
fn optics_lines(f: &mut fmt::Formatter<'_>, optics: &[OpticsValues]) -> fmt::Result {
    if optics.is_empty() {
        return Ok(());
    }
    writeln!(
        f,
        "  optics group           pixel Å  voltage kV  Cs mm  amp. contrast  box px  particles"
    )?;
    for g in optics {
        let name = if g.name.is_empty() {
            g.number.to_string()
        } else {
            format!("{} {}", g.number, g.name)
        };
        writeln!(
            f,
            "    {:<20} {:>7} {:>11} {:>6} {:>14} {:>7} {:>10}",
            name,
            or_dash(g.pixel_size_angstrom, 4),
            or_dash(g.voltage_kv, 1),
            or_dash(g.spherical_aberration_mm, 3),
            or_dash(g.amplitude_contrast, 3),
            g.image_size.map_or_else(|| "—".to_owned(), |s| s.to_string()),
            g.particles
        )?;
    }
    Ok(())
}

/// What is done about values the file leaves out.
fn missing_lines(f: &mut fmt::Formatter<'_>, optics: &[OpticsValues], needs_pixel_size: bool) -> fmt::Result {
    if needs_pixel_size {
        writeln!(
            f,
            "  note           the file gives no pixel size: particle commands need --apix Å (the app: the pixel-size field)"
        )?;
    }
    let microscope_missing = optics
        .iter()
        .any(|g| g.voltage_kv.is_none() || g.spherical_aberration_mm.is_none() || g.amplitude_contrast.is_none());
    if microscope_missing {
        writeln!(
            f,
            "  note           — is not in the file; RELION's defaults are used: {DEFAULT_VOLTAGE_KV} kV, Cs {DEFAULT_SPHERICAL_ABERRATION_MM} mm, amplitude contrast {DEFAULT_AMPLITUDE_CONTRAST}"
        )?;
    }
    Ok(())
}

impl fmt::Display for StarSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.blocks {
            let mut parts = Vec::new();
            if !b.columns.is_empty() {
                parts.push(format!("{} rows × {} columns", b.rows, b.columns.len()));
            }
            for extra in &b.other_loops {
                parts.push(format!(
                    "another loop: {} rows × {} columns",
                    extra.rows,
                    extra.columns.len()
                ));
            }
            if !b.pairs.is_empty() {
                parts.push(format!("{} key-value pairs", b.pairs.len()));
            }
            writeln!(f, "  data_{:<12} {}", b.name, parts.join(", "))?;
            if !b.columns.is_empty() {
                writeln!(f, "      {}", b.columns.join(" "))?;
            }
            for extra in &b.other_loops {
                writeln!(f, "      {}", extra.columns.join(" "))?;
            }
            let width = b.pairs.iter().take(PAIRS_SHOWN).map(|p| p.key.len()).max().unwrap_or(0);
            for p in b.pairs.iter().take(PAIRS_SHOWN) {
                writeln!(f, "      _{:<width$} {}", p.key, p.value)?;
            }
            if b.pairs.len() > PAIRS_SHOWN {
                writeln!(f, "      … {} more (--json lists all)", b.pairs.len() - PAIRS_SHOWN)?;
            }
        }
        let Some(n) = self.particles else {
            return Ok(());
        };
        let layout = match self.layout {
            Some(StarLayout::Relion30) => "RELION 3.0: no optics table, shifts in pixels",
            Some(StarLayout::Relion31) => "RELION 3.1+: optics table, shifts in Å",
            None => "layout unknown",
        };
        let images = if self.one_file_per_particle {
            "one image file per particle".to_owned()
        } else {
            format!("in {} stack file(s)", self.image_files)
        };
        writeln!(
            f,
            "  particles      {n} in data_{} ({layout}), {images}",
            self.particle_block.as_deref().unwrap_or("")
        )?;
        optics_lines(f, &self.optics)?;
        missing_lines(f, &self.optics, self.needs_pixel_size)?;
        if let Some(problem) = &self.problem {
            writeln!(f, "  cannot use     {problem}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CsSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  rows           {} ({} bytes each)", self.rows, self.record_bytes)?;
        writeln!(f, "  fields         {}", self.fields.join(" "))?;
        if let Some(g) = self.optics_groups {
            writeln!(f, "  particles      {} in {g} optics group(s)", self.rows)?;
        }
        optics_lines(f, &self.optics)?;
        missing_lines(f, &self.optics, self.needs_pixel_size)?;
        if let Some(problem) = &self.problem {
            writeln!(f, "  cannot use     {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn star(text: &str) -> StarFile {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.star");
        std::fs::write(&path, text).expect("write");
        StarFile::read(&path).expect("parse")
    }

    #[test]
    fn a_file_without_particles_is_summarised_with_its_pairs_and_loops() {
        let s = star_summary(
            Path::new("post.star"),
            &star(
                "data_general\n_rlnFinalResolution 3.2\n\ndata_fsc\nloop_\n_rlnResolution\n_rlnFsc\n0.1 1\n0.2 0.9\n",
            ),
        );
        assert_eq!(s.layout, None);
        assert_eq!(s.particles, None);
        assert_eq!(s.blocks[0].pairs[0].value, "3.2");
        assert_eq!((s.blocks[1].rows, s.blocks[1].columns.len()), (2, 2));
        let text = s.to_string();
        assert!(
            text.contains("_rlnFinalResolution 3.2") && !text.contains("particles"),
            "{text}"
        );
    }

    #[test]
    fn a_table_without_pixel_size_is_described_not_refused() {
        let text = "data_images\nloop_\n_rlnImageName\n_rlnVoltage\n_rlnDefocusU\n1@a.mrcs 300 1e4\n2@a.mrcs 300 1e4\n";
        let s = star_summary(Path::new("toy.star"), &star(text));
        assert_eq!((s.particles, s.optics_groups, s.image_files), (Some(2), 1, 1));
        assert!(s.needs_pixel_size && s.problem.is_none(), "{s:?}");
        assert_eq!(s.optics[0].voltage_kv, Some(300.0));
        assert_eq!(s.optics[0].pixel_size_angstrom, None);
        assert!(s.to_string().contains("--apix"), "{s}");
    }
}
