//! Readers and writers for the files of RELION, cryoSPARC, EMDB, the PDB and ChimeraX.
//!
//! Each format lives in its own module. Every reader checks what a header claims against what the
//! file holds before allocating, and every error names the file.

mod bcif;
pub mod cif;
pub mod cs;
pub mod elements;
pub mod error;
mod mmcif_read;
pub mod model;
mod model_build;
mod model_labels;
pub mod model_write;
pub mod mrc;
pub mod npy;
pub mod particles;
mod pdb_read;
pub mod stack;
pub mod star;
pub mod summary;

use std::path::Path;

/// What a file is, judged by its name (a trailing `.gz` or `.bz2` is looked through).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// MRC/CCP4 density map (`.mrc`, `.map`, `.ccp4`, optionally gzipped or bzip2-compressed).
    Map,
    /// MRC image stack (`.mrcs`).
    Stack,
    /// RELION STAR metadata.
    Star,
    /// cryoSPARC `.cs` metadata (a numpy structured array).
    Cs,
    /// Atomic model, PDB format.
    Pdb,
    /// Atomic model, mmCIF format.
    Mmcif,
}

impl FileKind {
    /// Classifies `path` by extension, or `None` for files cryoforge does not read.
    pub fn from_path(path: &Path) -> Option<Self> {
        Some(match crate::io::format_extension(path).as_str() {
            "mrc" | "map" | "ccp4" | "rec" => Self::Map,
            "mrcs" | "st" => Self::Stack,
            "star" => Self::Star,
            "cs" => Self::Cs,
            "pdb" | "ent" | "pdb1" => Self::Pdb,
            "cif" | "mmcif" | "bcif" => Self::Mmcif,
            _ => return None,
        })
    }

    pub fn is_model(self) -> bool {
        matches!(self, Self::Pdb | Self::Mmcif)
    }

    /// A short human name for messages.
    pub fn label(self) -> &'static str {
        match self {
            Self::Map => "map",
            Self::Stack => "particle stack",
            Self::Star => "STAR file",
            Self::Cs => "cryoSPARC .cs",
            Self::Pdb => "PDB model",
            Self::Mmcif => "mmCIF model",
        }
    }
}

/// The extensions cryoforge opens, for file dialogs and error messages.
pub const KNOWN_EXTENSIONS: &[&str] = &[
    "mrc", "map", "ccp4", "rec", "mrcs", "st", "star", "cs", "pdb", "ent", "cif", "mmcif", "bcif", "gz", "bz2",
];
