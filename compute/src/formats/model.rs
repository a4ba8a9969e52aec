//! Atomic models (PDB and mmCIF, optionally gzipped), read through pdbtbx into a flat
//! [`Structure`]: one list of atoms (the topology) and one or more frames of coordinates. A
//! multi-model file whose models share one topology (an NMR ensemble, a trajectory written by a
//! sampler) becomes a trajectory with one frame per model.

use std::io::BufReader;
use std::path::Path;

use crate::formats::FileKind;
use crate::formats::error::{FormatError, FormatResult};
use crate::formats::model_text::{CifModelRenumber, LineRewriter, fix_pdb_line};
use crate::io::{ProgressFn, open_reader};

/// One atom of the topology; coordinates live in [`Structure::frames`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Atom {
    /// Atom name (`CA`, `O5'`).
    pub name: String,
    /// Alternate location indicator, empty if none.
    pub alt_loc: String,
    pub residue_name: String,
    /// Author chain id (`auth_asym_id`); may be empty in old PDB files.
    pub chain_id: String,
    /// Author residue number (`auth_seq_id`).
    pub residue_number: i32,
    /// Insertion code, empty if none.
    pub insertion_code: String,
    /// Element symbol, capitalised as in the periodic table (`C`, `Fe`).
    pub element: String,
    pub formal_charge: i8,
    pub occupancy: f32,
    /// B-factor, or any per-atom value a method writes there (flexibility, for example).
    pub b_factor: f32,
    /// HETATM record.
    pub hetero: bool,
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
        pdbtbx::Element::from_symbol(&self.element).map_or(6, |e| e.atomic_number() as u32)
    }
}

/// A model or a trajectory of one topology.
#[derive(Clone, Debug, PartialEq)]
pub struct Structure {
    /// A short name (file stem or data block name), used as the mmCIF data block.
    pub name: String,
    pub atoms: Vec<Atom>,
    /// Coordinates in Å, one `Vec` per frame (model), each `atoms.len()` long.
    pub frames: Vec<Vec<[f32; 3]>>,
}

/// Counts for `info`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StructureCounts {
    pub models: usize,
    pub chains: usize,
    pub residues: usize,
    pub atoms: usize,
    pub hetero_atoms: usize,
    pub chain_ids: Vec<String>,
}

impl Structure {
    /// Reads a PDB or mmCIF file (format from the extension; `.gz` allowed).
    pub fn read(path: &Path) -> FormatResult<Self> {
        Self::read_with_progress(path, None)
    }

    pub fn read_with_progress(path: &Path, progress: Option<ProgressFn<'_>>) -> FormatResult<Self> {
        let format = match FileKind::from_path(path) {
            Some(FileKind::Pdb) => pdbtbx::Format::Pdb,
            Some(FileKind::Mmcif) => pdbtbx::Format::Mmcif,
            _ => {
                return Err(FormatError::invalid(
                    path,
                    "not a model file name (expected .pdb, .ent, .cif or .mmcif, optionally .gz)",
                ));
            }
        };
        let reader = BufReader::with_capacity(1 << 20, open_reader(path, progress)?);
        let mut options = pdbtbx::ReadOptions::new();
        options.set_format(format).set_level(pdbtbx::StrictnessLevel::Loose);
        // pdbtbx panics on some malformed input (an empty chain id, for one): that must become
        // an error naming the file, never a crash.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match format {
            pdbtbx::Format::Pdb => options.read_raw(BufReader::new(LineRewriter::new(reader, fix_pdb_line))),
            _ => {
                let mut renumber = CifModelRenumber::default();
                options.read_raw(BufReader::new(LineRewriter::new(reader, |line: &mut Vec<u8>| {
                    renumber.fix_line(line)
                })))
            }
        }))
        .map_err(|panic| {
            let what = crate::panic::panic_message(panic.as_ref());
            FormatError::invalid(path, format!("not a readable model: the parser gave up ({what})"))
        })?;
        let (pdb, _warnings) = parsed.map_err(|errors| {
            let first: Vec<String> = errors
                .iter()
                .filter(|e| e.fails(pdbtbx::StrictnessLevel::Loose))
                .take(3)
                .map(|e| e.short_description().to_owned() + ": " + e.long_description())
                .collect();
            FormatError::invalid(path, format!("not a readable model: {}", first.join("; ")))
        })?;
        let name = path
            .file_name()
            .map(|n| crate::io::name_without_gz(Path::new(n)))
            .and_then(|n| n.split('.').next().map(str::to_owned))
            .unwrap_or_else(|| "model".to_owned());
        Self::from_pdbtbx(path, &pdb, name)
    }

    fn from_pdbtbx(path: &Path, pdb: &pdbtbx::PDB, name: String) -> FormatResult<Self> {
        let mut atoms = Vec::new();
        let mut frames = Vec::new();
        for (model_index, model) in pdb.models().enumerate() {
            let mut coords = Vec::with_capacity(atoms.len());
            for chain in model.chains() {
                for residue in chain.residues() {
                    for conformer in residue.conformers() {
                        for atom in conformer.atoms() {
                            let (x, y, z) = atom.pos();
                            coords.push([x as f32, y as f32, z as f32]);
                            if model_index == 0 {
                                atoms.push(convert_atom(chain, residue, conformer, atom));
                            }
                        }
                    }
                }
            }
            if model_index > 0 && coords.len() != atoms.len() {
                return Err(FormatError::unsupported(
                    path,
                    format!(
                        "model {} has {} atoms but model 1 has {}; multi-model files are read as trajectories of one topology",
                        model.serial_number(),
                        coords.len(),
                        atoms.len()
                    ),
                ));
            }
            frames.push(coords);
        }
        if atoms.is_empty() {
            return Err(FormatError::invalid(path, "no atoms found"));
        }
        Ok(Self { name, atoms, frames })
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
            chain_ids,
        }
    }

    /// A copy holding only frame `frame`.
    pub fn single_frame(&self, frame: usize) -> Option<Self> {
        Some(Self {
            name: self.name.clone(),
            atoms: self.atoms.clone(),
            frames: vec![self.frames.get(frame)?.clone()],
        })
    }
}

fn convert_atom(
    chain: &pdbtbx::Chain,
    residue: &pdbtbx::Residue,
    conformer: &pdbtbx::Conformer,
    atom: &pdbtbx::Atom,
) -> Atom {
    let element = match atom.element() {
        Some(e) => e.symbol().to_owned(),
        None => element_from_name(atom.name()),
    };
    Atom {
        name: atom.name().to_owned(),
        alt_loc: conformer.alternative_location().unwrap_or("").to_owned(),
        residue_name: conformer.name().to_owned(),
        chain_id: chain.id().to_owned(),
        residue_number: residue.serial_number() as i32,
        insertion_code: residue.insertion_code().unwrap_or("").to_owned(),
        element,
        formal_charge: atom.charge().clamp(-9, 9) as i8,
        occupancy: atom.occupancy() as f32,
        b_factor: atom.b_factor() as f32,
        hetero: atom.hetero(),
    }
}

/// Guesses the element from an atom name when the element column is empty (old PDB files).
fn element_from_name(name: &str) -> String {
    let letters: String = name.chars().filter(char::is_ascii_alphabetic).collect();
    match letters.chars().next() {
        Some(c) => c.to_ascii_uppercase().to_string(),
        None => "X".to_owned(),
    }
}
