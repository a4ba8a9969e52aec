//! One-screen summaries of any file cryoforge reads: what `cryoforge info` prints (as text or
//! JSON) and what the app's inspector shows.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::formats::cs::CsFile;
use crate::formats::error::{FormatError, FormatResult};
use crate::formats::model::{Structure, StructureCounts};
use crate::formats::particles::{ParticleSet, StarLayout, particle_block, star_layout};
use crate::formats::stack::ParticleStack;
use crate::formats::star::StarFile;
use crate::formats::{FileKind, KNOWN_EXTENSIONS};
use crate::io::ProgressFn;
use crate::maps::{DensityMap, MapGrid, Statistics};

#[derive(Clone, Debug, Serialize)]
pub struct FileSummary {
    pub path: PathBuf,
    pub kind: FileKind,
    #[serde(flatten)]
    pub details: Details,
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Details {
    Map(MapSummary),
    Stack(StackSummary),
    Star(StarSummary),
    Cs(CsSummary),
    Model(StructureCounts),
}

#[derive(Clone, Debug, Serialize)]
pub struct MapSummary {
    pub dims: [usize; 3],
    pub voxel_size_angstrom: [f32; 3],
    /// Position of the first voxel in Å (the placement ChimeraX uses).
    pub first_voxel_angstrom: [f32; 3],
    pub origin_field_angstrom: [f32; 3],
    pub start_voxel: [i32; 3],
    /// MAPC/MAPR/MAPS as stored.
    pub axis_order: [i32; 3],
    pub mode: i32,
    pub cell_angles_deg: [f32; 3],
    pub space_group: i32,
    pub statistics: Statistics,
}

#[derive(Clone, Debug, Serialize)]
pub struct StackSummary {
    pub count: usize,
    pub box_size: [usize; 2],
    pub pixel_size_angstrom: f32,
    pub mode: i32,
}

#[derive(Clone, Debug, Serialize)]
pub struct StarBlockSummary {
    pub name: String,
    pub rows: usize,
    pub columns: Vec<String>,
    pub pairs: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct StarSummary {
    pub layout: StarLayout,
    pub blocks: Vec<StarBlockSummary>,
    pub particles: Option<usize>,
    pub optics_groups: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct CsSummary {
    pub rows: usize,
    pub record_bytes: usize,
    pub fields: Vec<String>,
    pub is_particle_set: bool,
    pub optics_groups: Option<usize>,
}

/// Reads `path` and summarises it.
pub fn summarize(path: &Path, progress: Option<ProgressFn<'_>>) -> FormatResult<FileSummary> {
    let kind = FileKind::from_path(path).ok_or_else(|| {
        FormatError::unsupported(
            path,
            format!("unknown file type (cryoforge reads {})", KNOWN_EXTENSIONS.join(", ")),
        )
    })?;
    let details = match kind {
        FileKind::Map => Details::Map(map_summary(&DensityMap::read_with_progress(path, progress)?)),
        FileKind::Stack => {
            let stack = ParticleStack::open(path)?;
            Details::Stack(StackSummary {
                count: stack.count(),
                box_size: stack.box_size(),
                pixel_size_angstrom: stack.pixel_size_angstrom(),
                mode: stack.header().mode,
            })
        }
        FileKind::Star => Details::Star(star_summary(path, &StarFile::read_with_progress(path, progress)?)?),
        FileKind::Cs => {
            let cs = CsFile::read_with_progress(path, progress)?;
            let particles = ParticleSet::from_cs(path, &cs).ok();
            Details::Cs(CsSummary {
                rows: cs.rows,
                record_bytes: cs.record_bytes,
                fields: cs.fields.iter().map(|f| f.name.clone()).collect(),
                is_particle_set: particles.is_some(),
                optics_groups: particles.map(|p| p.optics.len()),
            })
        }
        FileKind::Pdb | FileKind::Mmcif => Details::Model(Structure::read_with_progress(path, progress)?.counts()),
    };
    Ok(FileSummary {
        path: path.to_owned(),
        kind,
        details,
    })
}

pub fn map_summary(map: &DensityMap) -> MapSummary {
    let MapGrid {
        dims,
        voxel_size_angstrom,
        origin_field_angstrom,
        start_voxel,
        ..
    } = map.grid.clone();
    MapSummary {
        dims,
        voxel_size_angstrom,
        first_voxel_angstrom: map.grid.first_voxel_angstrom(),
        origin_field_angstrom,
        start_voxel,
        axis_order: map.meta.source_axis_order,
        mode: map.meta.source_mode.word(),
        cell_angles_deg: map.meta.cell_angles_deg,
        space_group: map.meta.space_group,
        statistics: map.statistics(),
    }
}

fn star_summary(path: &Path, star: &StarFile) -> FormatResult<StarSummary> {
    let particles = particle_block(star)
        .is_some()
        .then(|| ParticleSet::from_star(path, star))
        .transpose()?;
    Ok(StarSummary {
        layout: star_layout(star),
        blocks: star
            .blocks
            .iter()
            .map(|b| StarBlockSummary {
                name: b.name.clone(),
                rows: b.table().map_or(0, |t| t.row_count()),
                columns: b.table().map(|t| t.columns.clone()).unwrap_or_default(),
                pairs: b.pairs.len(),
            })
            .collect(),
        particles: particles.as_ref().map(|p| p.particles.len()),
        optics_groups: particles.map_or(0, |p| p.optics.len()),
    })
}

fn fmt3<T: fmt::Display>(v: &[T; 3]) -> String {
    format!("{} × {} × {}", v[0], v[1], v[2])
}

fn fmt3f(v: &[f32; 3]) -> String {
    format!("({:.3}, {:.3}, {:.3})", v[0], v[1], v[2])
}

impl fmt::Display for FileSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({})", self.path.display(), self.kind.label())?;
        match &self.details {
            Details::Map(m) => {
                writeln!(f, "  dimensions     {} voxels (x, y, z)", fmt3(&m.dims))?;
                writeln!(f, "  voxel size     {} Å", fmt3f(&m.voxel_size_angstrom))?;
                writeln!(f, "  first voxel at {} Å", fmt3f(&m.first_voxel_angstrom))?;
                writeln!(
                    f,
                    "  origin field   {} Å, start {:?} voxels",
                    fmt3f(&m.origin_field_angstrom),
                    m.start_voxel
                )?;
                let standard = if m.axis_order == [1, 2, 3] {
                    "standard"
                } else {
                    "non-standard, reordered to x,y,z"
                };
                writeln!(f, "  axis order     {:?} ({standard})", m.axis_order)?;
                writeln!(f, "  mode           {}, space group {}", m.mode, m.space_group)?;
                if m.cell_angles_deg.iter().any(|&a| (a - 90.0).abs() > 1e-3) {
                    writeln!(
                        f,
                        "  cell angles    {} (non-orthogonal; shown on orthogonal axes)",
                        fmt3f(&m.cell_angles_deg)
                    )?;
                }
                let s = &m.statistics;
                writeln!(
                    f,
                    "  values         min {:.4}, max {:.4}, mean {:.4}, rms {:.4}",
                    s.min, s.max, s.mean, s.rms
                )?;
            }
            Details::Stack(s) => {
                writeln!(f, "  images         {}", s.count)?;
                writeln!(
                    f,
                    "  box            {} × {} px at {:.3} Å/px (mode {})",
                    s.box_size[0], s.box_size[1], s.pixel_size_angstrom, s.mode
                )?;
            }
            Details::Star(s) => {
                let layout = match s.layout {
                    StarLayout::Relion30 => "RELION 3.0 (no optics table, shifts in pixels)",
                    StarLayout::Relion31 => "RELION 3.1+ (optics table, shifts in Å)",
                };
                writeln!(f, "  layout         {layout}")?;
                for b in &s.blocks {
                    writeln!(
                        f,
                        "  data_{:<12} {} rows × {} columns{}",
                        b.name,
                        b.rows,
                        b.columns.len(),
                        if b.pairs > 0 {
                            format!(", {} key-value pairs", b.pairs)
                        } else {
                            String::new()
                        }
                    )?;
                    if !b.columns.is_empty() {
                        writeln!(f, "      {}", b.columns.join(" "))?;
                    }
                }
                if let Some(n) = s.particles {
                    writeln!(f, "  particles      {n} in {} optics group(s)", s.optics_groups)?;
                }
            }
            Details::Cs(c) => {
                writeln!(f, "  rows           {} ({} bytes each)", c.rows, c.record_bytes)?;
                writeln!(f, "  fields         {}", c.fields.join(" "))?;
                if let Some(g) = c.optics_groups {
                    writeln!(f, "  particles      {} in {g} optics group(s)", c.rows)?;
                }
            }
            Details::Model(m) => {
                writeln!(f, "  models         {}", m.models)?;
                writeln!(
                    f,
                    "  chains         {} ({})",
                    m.chains,
                    m.chain_ids
                        .iter()
                        .map(|c| if c.is_empty() { "' '" } else { c })
                        .collect::<Vec<_>>()
                        .join(" ")
                )?;
                writeln!(f, "  residues       {}", m.residues)?;
                writeln!(f, "  atoms          {} ({} hetero)", m.atoms, m.hetero_atoms)?;
            }
        }
        Ok(())
    }
}
