//! Atomic models (PDB and mmCIF, optionally gzipped), read through pdbtbx into a flat
//! [`Structure`]: one list of atoms (the topology) and one or more frames of coordinates. A
//! multi-model file whose models share one topology (an NMR ensemble, a trajectory written by a
//! sampler) becomes a trajectory with one frame per model.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::error::{FormatError, FormatResult};
use crate::io::{ProgressFn, open_reader};
use crate::formats::FileKind;

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
            pdbtbx::Format::Pdb => options.read_raw(BufReader::new(PdbLineFixer::new(reader))),
            _ => options.read_raw(BufReader::new(CifModelRenumber::new(reader))),
        }))
        .map_err(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown reason".to_owned());
            FormatError::invalid(path, format!("not a readable model: the parser gave up ({what})"))
        })?;
        let (pdb, _warnings) = parsed
            .map_err(|errors| {
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
            if chain_ids.last().is_none_or(|c| c != &atom.chain_id)
                && !chain_ids.contains(&atom.chain_id)
            {
                chain_ids.push(atom.chain_id.clone());
            }
            let key = (atom.chain_id.as_str(), atom.residue_number, atom.insertion_code.as_str());
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

/// Tidies PDB text that pdbtbx would reject but every viewer reads: free-text REMARKs (CHARMM,
/// MDAnalysis) trip its numbered-REMARK parser, and MASTER's counts no longer match once they are
/// gone (neither carries anything cryoforge uses); ATOM lines that stop before the element
/// columns (CHARMM, old files) are padded to 80 columns.
struct PdbLineFixer<R> {
    inner: R,
    line: Vec<u8>,
    position: usize,
}

impl<R: BufRead> PdbLineFixer<R> {
    fn new(inner: R) -> Self {
        Self { inner, line: Vec::new(), position: 0 }
    }
}

impl<R: BufRead> Read for PdbLineFixer<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position >= self.line.len() {
            self.line.clear();
            self.position = 0;
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(0);
            }
            if self.line.starts_with(b"REMARK") || self.line.starts_with(b"MASTER") {
                self.line.clear();
            } else if self.line.starts_with(b"ATOM") || self.line.starts_with(b"HETATM") {
                while matches!(self.line.last(), Some(b'\n' | b'\r')) {
                    self.line.pop();
                }
                if self.line.len() < 80 {
                    self.line.resize(80, b' ');
                }
                if self.line[76..78] == *b"  " {
                    let element = guess_element(&self.line[12..16], &self.line[17..20]);
                    self.line[76..78].copy_from_slice(&element);
                }
                self.line.push(b'\n');
            }
        }
        let n = buf.len().min(self.line.len() - self.position);
        buf[..n].copy_from_slice(&self.line[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// The element of an atom whose line has no element column (CHARMM and old files), right-justified
/// in two bytes. In standard residues the first letter of the name is the element (CA is carbon);
/// in other residues a two-letter name at column 13 is a two-letter element (CA is calcium).
fn guess_element(name: &[u8], residue: &[u8]) -> [u8; 2] {
    let residue = String::from_utf8_lossy(residue).trim().to_owned();
    let standard = crate::formats::model_write::is_polymer_residue(&residue);
    let letters: Vec<u8> = name.iter().copied().filter(u8::is_ascii_alphabetic).collect();
    match letters.as_slice() {
        [] => *b" X",
        [first, second, ..] if !standard && name[0].is_ascii_alphabetic() && name.len() >= 2 && name[1].is_ascii_alphabetic() => {
            let candidate = format!("{}{}", *first as char, second.to_ascii_lowercase() as char);
            if pdbtbx::Element::from_symbol(&candidate).is_some() {
                [first.to_ascii_uppercase(), second.to_ascii_uppercase()]
            } else {
                [b' ', first.to_ascii_uppercase()]
            }
        }
        [first, ..] => [b' ', first.to_ascii_uppercase()],
    }
}

/// Renumbers `_atom_site.id` within each model of an mmCIF file. Multi-model files (NMR entries,
/// trajectories) number atoms continuously across models, as the dictionary's unique key wants,
/// but pdbtbx matches atoms between models by that number; cryoforge matches them by position.
struct CifModelRenumber<R> {
    inner: R,
    line: Vec<u8>,
    position: usize,
    state: CifState,
    columns: Vec<String>,
    counter: usize,
    last_model: Vec<u8>,
}

#[derive(PartialEq)]
enum CifState {
    Outside,
    LoopStart,
    AtomSiteHeader,
    AtomSiteRows,
}

impl<R: BufRead> CifModelRenumber<R> {
    fn new(inner: R) -> Self {
        Self { inner, line: Vec::new(), position: 0, state: CifState::Outside, columns: Vec::new(), counter: 0, last_model: Vec::new() }
    }

    fn fix_line(&mut self) {
        let trimmed = self.line.trim_ascii_start();
        let starts = |p: &[u8]| trimmed.starts_with(p);
        if starts(b"loop_") {
            self.state = CifState::LoopStart;
            return;
        }
        if starts(b"_atom_site.") && matches!(self.state, CifState::LoopStart | CifState::AtomSiteHeader) {
            self.state = CifState::AtomSiteHeader;
            self.columns.push(String::from_utf8_lossy(trimmed).trim().to_owned());
            return;
        }
        if starts(b"_") || starts(b"#") || starts(b"data_") {
            self.state = CifState::Outside;
            return;
        }
        if self.state == CifState::AtomSiteHeader {
            self.state = CifState::AtomSiteRows;
        }
        if self.state != CifState::AtomSiteRows {
            return;
        }
        let column = |name: &str| self.columns.iter().position(|c| c == name);
        let (Some(id_column), Some(model_column)) = (column("_atom_site.id"), column("_atom_site.pdbx_PDB_model_num")) else {
            return;
        };
        let spans = cif_token_spans(&self.line);
        if spans.len() != self.columns.len() {
            return;
        }
        let model = self.line[spans[model_column].0..spans[model_column].1].to_vec();
        if model != self.last_model {
            self.last_model = model;
            self.counter = 0;
        }
        self.counter += 1;
        let (start, end) = spans[id_column];
        let mut fixed = self.line[..start].to_vec();
        fixed.extend_from_slice(self.counter.to_string().as_bytes());
        fixed.extend_from_slice(&self.line[end..]);
        self.line = fixed;
    }
}

/// Byte spans of the whitespace-separated (optionally quoted) values of a CIF line.
fn cif_token_spans(line: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\'' || c == b'"' {
            let mut j = i + 1;
            while j < line.len() && !(line[j] == c && (j + 1 == line.len() || line[j + 1].is_ascii_whitespace())) {
                j += 1;
            }
            spans.push((i, (j + 1).min(line.len())));
            i = j + 1;
        } else {
            let start = i;
            while i < line.len() && !line[i].is_ascii_whitespace() {
                i += 1;
            }
            spans.push((start, i));
        }
    }
    spans
}

impl<R: BufRead> Read for CifModelRenumber<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position >= self.line.len() {
            self.line.clear();
            self.position = 0;
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(0);
            }
            self.fix_line();
        }
        let n = buf.len().min(self.line.len() - self.position);
        buf[..n].copy_from_slice(&self.line[self.position..self.position + n]);
        self.position += n;
        Ok(n)
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
