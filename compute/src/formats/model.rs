//! Atomic models (PDB and mmCIF, optionally gzipped), read by cryoforge's own readers into a flat
//! [`Structure`]: one list of atoms (the topology) and one or more frames of coordinates. A
//! multi-model file whose models share one topology (an NMR ensemble, a trajectory written by a
//! sampler) becomes a trajectory with one frame per model.
//!
//! Files read with the atoms gemmi reads (the corpus test checks it on 572 public files). The
//! alternate-conformation policy: every atom site is kept, with its altloc id and occupancy, so a
//! file written back holds the same atom sites; methods and the viewer use the first conformer
//! ([`Structure::first_conformer`]). What a reader had to guess or skip is in
//! [`ModelInfo::warnings`], never fatal for a file that still has atoms.

use std::io::Read;
use std::path::Path;

use crate::formats::FileKind;
use crate::formats::error::{FormatError, FormatResult};
use crate::io::{ProgressFn, open_reader};

/// One atom of the topology; coordinates live in [`Structure::frames`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Atom {
    /// Atom name (`CA`, `O5'`).
    pub name: String,
    /// Alternate location indicator, empty if none.
    pub alt_loc: String,
    pub residue_name: String,
    /// Author chain id (`auth_asym_id`); may be empty in old PDB and MD files.
    pub chain_id: String,
    /// Author residue number (`auth_seq_id`).
    pub residue_number: i32,
    /// Insertion code, empty if none.
    pub insertion_code: String,
    /// PDB segment id (columns 73–76, CHARMM's segid), empty if none.
    pub segment: String,
    /// Element symbol, capitalised as in the periodic table (`C`, `Fe`); `X` if unknown.
    pub element: String,
    pub formal_charge: i8,
    pub occupancy: f32,
    /// B-factor, or any per-atom value a method writes there (flexibility, for example).
    pub b_factor: f32,
    /// HETATM record.
    pub hetero: bool,
    /// mmCIF `label_asym_id` as read, empty when the file has none (PDB); the mmCIF writer keeps
    /// it when every atom has one and assigns its own otherwise.
    pub label_asym_id: String,
    /// mmCIF `label_seq_id` as read.
    pub label_seq_id: Option<i32>,
    /// mmCIF `label_entity_id` as read.
    pub entity_id: String,
}

impl Atom {
    /// Whether this is the α-carbon of an amino acid.
    pub fn is_alpha_carbon(&self) -> bool {
        self.name == "CA" && self.element == "C"
    }

    pub fn is_hydrogen(&self) -> bool {
        self.element == "H" || self.element == "D"
    }

    /// Atomic number (for density amplitudes); 6 for unknown elements.
    pub fn atomic_number(&self) -> u32 {
        crate::formats::elements::atomic_number(&self.element).unwrap_or(6)
    }
}

/// A range of residues of one chain (a helix or a strand), as HELIX/SHEET or `_struct_conf` give it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ResidueRange {
    pub chain_id: String,
    pub start: (i32, String),
    pub end: (i32, String),
    /// Helix class (1 right-handed α, 5 3₁₀, ...) or the sheet id for strands.
    pub kind: String,
}

/// A modified residue (MODRES, `_pdbx_struct_mod_residue`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ModifiedResidue {
    pub chain_id: String,
    pub residue_number: i32,
    pub insertion_code: String,
    pub residue_name: String,
    /// The standard residue it derives from (`MET` for `MSE`).
    pub standard_name: String,
}

/// The sequence of one chain (SEQRES, `_entity_poly_seq`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ChainSequence {
    pub chain_id: String,
    pub residues: Vec<String>,
}

/// Unit cell and space group (CRYST1, `_cell`, `_symmetry`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct UnitCell {
    pub lengths: [f64; 3],
    pub angles: [f64; 3],
    pub space_group: String,
}

/// What a model file says besides its atoms, and what its reader noticed.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    pub title: String,
    /// Experimental method (EXPDTA, `_exptl.method`).
    pub method: String,
    pub cell: Option<UnitCell>,
    pub helices: Vec<ResidueRange>,
    pub strands: Vec<ResidueRange>,
    pub sequences: Vec<ChainSequence>,
    pub modified_residues: Vec<ModifiedResidue>,
    /// Bonds listed by CONECT records or `_struct_conn`.
    pub connections: usize,
    /// Odd records, guessed values, skipped models: shown to the user, never fatal.
    pub warnings: Vec<String>,
}

/// A model or a trajectory of one topology.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Structure {
    /// A short name (file stem or data block name), used as the mmCIF data block.
    pub name: String,
    pub atoms: Vec<Atom>,
    /// Coordinates in Å, one `Vec` per frame (model), each `atoms.len()` long.
    pub frames: Vec<Vec<[f32; 3]>>,
    pub info: ModelInfo,
}

/// Counts for `info`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StructureCounts {
    pub models: usize,
    pub chains: usize,
    pub residues: usize,
    pub atoms: usize,
    pub hetero_atoms: usize,
    /// Atoms of alternate conformations beyond the first (which methods leave out).
    pub alternate_atoms: usize,
    pub chain_ids: Vec<String>,
}

impl Structure {
    /// Reads a PDB or mmCIF file (format from the extension; `.gz` allowed).
    pub fn read(path: &Path) -> FormatResult<Self> {
        Self::read_with_progress(path, None)
    }

    pub fn read_with_progress(path: &Path, progress: Option<ProgressFn<'_>>) -> FormatResult<Self> {
        let kind = FileKind::from_path(path).filter(|k| k.is_model()).ok_or_else(|| {
            FormatError::invalid(
                path,
                "not a model file name (expected .pdb, .ent, .cif, .mmcif or .bcif, optionally .gz)",
            )
        })?;
        let mut bytes = Vec::new();
        open_reader(path, progress)?
            .read_to_end(&mut bytes)
            .map_err(|e| FormatError::io(path, e))?;
        let name = path
            .file_name()
            .map(|n| crate::io::name_without_gz(Path::new(n)))
            .and_then(|n| n.split('.').next().map(str::to_owned))
            .unwrap_or_else(|| "model".to_owned());
        // BinaryCIF: MessagePack, whose first byte is a map's.
        let binary_cif = matches!(bytes.first(), Some(0x80..=0x8f | 0xde | 0xdf));
        let looks_like_cif = bytes
            .iter()
            .take(4096)
            .position(|b| !b.is_ascii_whitespace())
            .is_some_and(|i| bytes[i..].starts_with(b"data_") || bytes[i] == b'#');
        // A reader bug must become an error naming the file, never a crash.
        let parsed = crate::panic::catch_quietly(|| match (kind, looks_like_cif) {
            _ if binary_cif => crate::formats::bcif::to_cif_text(&bytes)
                .and_then(|text| crate::formats::mmcif_read::read_mmcif(&text, name)),
            (FileKind::Mmcif, _) | (_, true) => {
                let text =
                    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                crate::formats::mmcif_read::read_mmcif(&text, name)
            }
            _ => Ok(crate::formats::pdb_read::read_pdb(&bytes, name)),
        })
        .map_err(|panic| FormatError::invalid(path, format!("not a readable model: the reader gave up ({panic})")))?;
        let structure = parsed.map_err(|e| FormatError::invalid(path, e.0))?;
        if structure.atoms.is_empty() {
            return Err(FormatError::invalid(
                path,
                "no atoms found (no ATOM/HETATM records or _atom_site rows)",
            ));
        }
        Ok(structure)
    }

    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    pub fn counts(&self) -> StructureCounts {
        let mut chain_ids: Vec<String> = Vec::new();
        let mut residues = 0;
        let mut previous: Option<(&str, i32, &str)> = None;
        for atom in &self.atoms {
            if chain_ids.last().is_none_or(|c| c != &atom.chain_id) && !chain_ids.contains(&atom.chain_id) {
                chain_ids.push(atom.chain_id.clone());
            }
            let key = (
                atom.chain_id.as_str(),
                atom.residue_number,
                atom.insertion_code.as_str(),
            );
            if previous != Some(key) {
                residues += 1;
                previous = Some(key);
            }
        }
        StructureCounts {
            models: self.frames.len(),
            chains: chain_ids.len(),
            residues,
            atoms: self.atoms.len(),
            hetero_atoms: self.atoms.iter().filter(|a| a.hetero).count(),
            alternate_atoms: self.atoms.len() - self.first_conformer_mask().iter().filter(|&&k| k).count(),
            chain_ids,
        }
    }

    /// A copy holding only frame `frame`.
    pub fn single_frame(&self, frame: usize) -> Option<Self> {
        Some(Self {
            name: self.name.clone(),
            atoms: self.atoms.clone(),
            frames: vec![self.frames.get(frame)?.clone()],
            info: self.info.clone(),
        })
    }

    /// Per atom: whether it belongs to the first conformer (no altloc, or the first altloc id
    /// its residue uses).
    pub fn first_conformer_mask(&self) -> Vec<bool> {
        let mut keep = vec![true; self.atoms.len()];
        let mut residue_start = 0;
        let mut first_alt: Option<&str> = None;
        for (i, atom) in self.atoms.iter().enumerate() {
            let r = &self.atoms[residue_start];
            let new_residue = atom.chain_id != r.chain_id
                || atom.residue_number != r.residue_number
                || atom.insertion_code != r.insertion_code
                || atom.residue_name != r.residue_name;
            if new_residue {
                residue_start = i;
                first_alt = None;
            }
            if !atom.alt_loc.is_empty() {
                let first = *first_alt.get_or_insert(atom.alt_loc.as_str());
                keep[i] = atom.alt_loc == first;
            }
        }
        keep
    }

    /// The structure with only its first conformer: what methods and the viewer use. Atoms of
    /// the first conformer keep their altloc id and occupancy.
    pub fn first_conformer(&self) -> Self {
        let keep = self.first_conformer_mask();
        if keep.iter().all(|&k| k) {
            return self.clone();
        }
        let pick = |v: &[[f32; 3]]| v.iter().zip(&keep).filter(|(_, k)| **k).map(|(p, _)| *p).collect();
        Self {
            name: self.name.clone(),
            atoms: self
                .atoms
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(a, _)| a.clone())
                .collect(),
            frames: self.frames.iter().map(|f| pick(f)).collect(),
            info: self.info.clone(),
        }
    }
}
