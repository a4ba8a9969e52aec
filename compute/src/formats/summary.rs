//! One-screen summaries of any file cryoforge reads: what `cryoforge info` prints (as text or
//! JSON) and what the app's inspector shows.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::formats::cs::CsFile;
use crate::formats::error::{FormatError, FormatResult};
use crate::formats::model::Structure;
use crate::formats::stack::ParticleStack;
use crate::formats::star::StarFile;
use crate::formats::{FileKind, KNOWN_EXTENSIONS};
use crate::io::ProgressFn;
use crate::maps::{DensityMap, MapGrid, Statistics};

mod model_file;
mod particle_files;

pub use self::model_file::{ModelSummary, model_summary};
pub use self::particle_files::{
    CsSummary, StarBlockSummary, StarLoopSummary, StarPair, StarSummary, cs_summary, star_summary,
};

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
    Model(ModelSummary),
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
        FileKind::Star => Details::Star(star_summary(path, &StarFile::read_with_progress(path, progress)?)),
        FileKind::Cs => Details::Cs(cs_summary(path, &CsFile::read_with_progress(path, progress)?)),
        FileKind::Pdb | FileKind::Mmcif => {
            Details::Model(model_summary(&Structure::read_with_progress(path, progress)?))
        }
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
            Details::Star(s) => write!(f, "{s}")?,
            Details::Cs(c) => write!(f, "{c}")?,
            Details::Model(m) => write!(f, "{m}")?,
        }
        Ok(())
    }
}
