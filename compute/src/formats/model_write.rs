//! cryoforge's own PDB and mmCIF writers.
//!
//! mmCIF: an `_entity`, `_struct_asym` and `_atom_site` table with both label and auth fields, so
//! that ChimeraX and gemmi see the same chains as the source: each polymer chain is one
//! `label_asym_id` with sequential `label_seq_id`, each ligand residue and each chain's waters get
//! their own, and chains with identical sequences share an entity. PDB: fixed columns, TER after
//! polymer chains, MODEL/ENDMDL for trajectories; anything PDB cannot hold (more than 99,999
//! atoms, chain ids longer than one character, values wider than their columns) is refused with
//! a message pointing to mmCIF, never silently wrapped.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::formats::FileKind;
use crate::formats::error::{FormatError, FormatResult};
use crate::formats::model::{Atom, Structure};
use crate::io::write_atomically;

const PDB_MAX_SERIAL: usize = 99_999;

const AMINO_ACIDS: &[&str] = &[
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE", "LEU", "LYS", "MET", "PHE", "PRO", "SER",
    "THR", "TRP", "TYR", "VAL", "MSE", "SEC", "PYL", "HSD", "HSE", "HSP", "HID", "HIE", "HIP", "CYX", "UNK",
];
const NUCLEOTIDES: &[&str] = &["A", "C", "G", "U", "I", "T", "DA", "DC", "DG", "DT", "DI", "DU", "N"];
const WATERS: &[&str] = &["HOH", "WAT", "DOD", "H2O", "TIP3", "TIP"];

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Class {
    Polymer,
    NonPolymer,
    Water,
}

/// Whether `residue_name` is a standard amino acid or nucleotide.
pub fn is_polymer_residue(residue_name: &str) -> bool {
    AMINO_ACIDS.contains(&residue_name) || NUCLEOTIDES.contains(&residue_name)
}

fn class_of(atom: &Atom) -> Class {
    let name = atom.residue_name.as_str();
    if WATERS.contains(&name) {
        Class::Water
    } else if AMINO_ACIDS.contains(&name) || NUCLEOTIDES.contains(&name) {
        Class::Polymer
    } else {
        Class::NonPolymer
    }
}

/// Writes `structure` (all frames) as PDB or mmCIF, chosen by the extension of `path`.
pub fn write_structure(structure: &Structure, path: &Path) -> FormatResult<()> {
    match FileKind::from_path(path) {
        Some(FileKind::Pdb) => write_pdb(structure, path),
        Some(FileKind::Mmcif) => write_mmcif(structure, path),
        _ => Err(FormatError::invalid(
            path,
            "model output must end in .pdb or .cif (optionally .gz)",
        )),
    }
}

/// Checks that PDB's fixed columns can hold `structure`; the error says why not.
pub fn check_pdb_limits(structure: &Structure, path: &Path) -> FormatResult<()> {
    let refuse = |why: String| {
        Err(FormatError::unsupported(
            path,
            format!("{why}; the PDB format cannot hold this, write mmCIF (.cif) instead"),
        ))
    };
    if structure.atoms.len() > PDB_MAX_SERIAL {
        return refuse(format!(
            "{} atoms exceed PDB's limit of 99,999 atom serial numbers",
            structure.atoms.len()
        ));
    }
    if let Some(a) = structure.atoms.iter().find(|a| a.chain_id.chars().count() > 1) {
        return refuse(format!("chain id '{}' is longer than one character", a.chain_id));
    }
    if let Some(a) = structure
        .atoms
        .iter()
        .find(|a| !(-999..=9999).contains(&a.residue_number))
    {
        return refuse(format!("residue number {} does not fit in 4 columns", a.residue_number));
    }
    if let Some(a) = structure
        .atoms
        .iter()
        .find(|a| a.residue_name.len() > 3 || a.name.len() > 4)
    {
        return refuse(format!(
            "residue '{}' atom '{}' has a name too long for PDB columns",
            a.residue_name, a.name
        ));
    }
    if let Some(a) = structure
        .atoms
        .iter()
        .find(|a| !(-99.99..=999.99).contains(&a.b_factor) || !(-9.99..=99.99).contains(&a.occupancy))
    {
        return refuse(format!(
            "a B-factor/occupancy value ({}, {}) does not fit in 6 columns",
            a.b_factor, a.occupancy
        ));
    }
    let out_of_range = structure
        .frames
        .iter()
        .flatten()
        .any(|p| p.iter().any(|&c| !(-999.999..=9999.999).contains(&c)));
    if out_of_range {
        return refuse("a coordinate does not fit in 8 columns".into());
    }
    Ok(())
}

pub fn write_pdb(structure: &Structure, path: &Path) -> FormatResult<()> {
    check_pdb_limits(structure, path)?;
    write_atomically(path, |w| write_pdb_to(structure, w))
}

fn pdb_atom_name(atom: &Atom) -> String {
    if atom.name.len() >= 4 || atom.element.len() == 2 {
        format!("{:<4}", atom.name)
    } else {
        format!(" {:<3}", atom.name)
    }
}

fn pdb_charge(charge: i8) -> String {
    match charge {
        0 => "  ".to_owned(),
        c if c > 0 => format!("{c}+"),
        c => format!("{}-", -c),
    }
}

pub fn write_pdb_to(structure: &Structure, w: &mut dyn Write) -> std::io::Result<()> {
    writeln!(w, "REMARK   1 WRITTEN BY CRYOFORGE")?;
    let multi = structure.frames.len() > 1;
    let mut line = String::with_capacity(96);
    for (frame_index, frame) in structure.frames.iter().enumerate() {
        if multi {
            writeln!(w, "MODEL     {:>4}", frame_index + 1)?;
        }
        for (i, (atom, pos)) in structure.atoms.iter().zip(frame).enumerate() {
            line.clear();
            use std::fmt::Write as _;
            let _ = write!(
                line,
                "{:<6}{:>5} {}{:1}{:>3} {:1}{:>4}{:1}   {:>8.3}{:>8.3}{:>8.3}{:>6.2}{:>6.2}          {:>2}{:2}",
                if atom.hetero { "HETATM" } else { "ATOM" },
                i + 1,
                pdb_atom_name(atom),
                atom.alt_loc,
                atom.residue_name,
                atom.chain_id,
                atom.residue_number,
                atom.insertion_code,
                pos[0],
                pos[1],
                pos[2],
                atom.occupancy,
                atom.b_factor,
                atom.element.to_uppercase(),
                pdb_charge(atom.formal_charge),
            );
            writeln!(w, "{line}")?;
            let next = structure.atoms.get(i + 1);
            let chain_ends = next.is_none_or(|n| n.chain_id != atom.chain_id || class_of(n) != Class::Polymer);
            if class_of(atom) == Class::Polymer && chain_ends {
                writeln!(w, "TER")?;
            }
        }
        if multi {
            writeln!(w, "ENDMDL")?;
        }
    }
    writeln!(w, "END")
}

/// The label_asym/entity assignment of every atom.
struct Labels {
    /// Per atom: index into `asyms`.
    asym_of_atom: Vec<usize>,
    /// Per atom: label_seq_id (polymers) or None.
    seq_of_atom: Vec<Option<u32>>,
    /// (label_asym_id, entity id).
    asyms: Vec<(String, usize)>,
    /// (entity type, description).
    entities: Vec<(&'static str, String)>,
    /// auth chain ids, blanks replaced.
    auth_chain: Vec<String>,
}

/// `A`…`Z`, `AA`, `BA`, …: the order the PDB uses for label_asym_id.
fn asym_name(mut index: usize) -> String {
    let mut name = String::new();
    loop {
        name.push((b'A' + (index % 26) as u8) as char);
        index /= 26;
        if index == 0 {
            return name;
        }
        index -= 1;
    }
}

fn assign_labels(structure: &Structure) -> Labels {
    let atoms = &structure.atoms;
    // Blank chain ids (old PDB files) become the first letter no other chain uses.
    let blank_replacement = (b'A'..=b'Z')
        .map(|c| (c as char).to_string())
        .find(|c| !atoms.iter().any(|a| &a.chain_id == c))
        .unwrap_or_else(|| "X".to_owned());
    let auth_chain: Vec<String> = atoms
        .iter()
        .map(|a| {
            if a.chain_id.trim().is_empty() {
                blank_replacement.clone()
            } else {
                a.chain_id.clone()
            }
        })
        .collect();

    let mut asym_of_atom = vec![0; atoms.len()];
    let mut seq_of_atom = vec![None; atoms.len()];
    let mut asyms: Vec<(String, usize)> = Vec::new();
    let mut entities: Vec<(&'static str, String)> = Vec::new();
    let mut entity_by_key: HashMap<(Class, String), usize> = HashMap::new();
    // Segments first, entities need the whole sequence of a polymer segment.
    let mut segments: Vec<(Class, usize, usize)> = Vec::new(); // (class, first atom, end)
    let mut i = 0;
    while i < atoms.len() {
        let class = class_of(&atoms[i]);
        let mut end = i + 1;
        let same_residue = |a: &Atom, b: &Atom| {
            a.residue_number == b.residue_number
                && a.insertion_code == b.insertion_code
                && a.residue_name == b.residue_name
        };
        while end < atoms.len() && auth_chain[end] == auth_chain[i] {
            let next_class = class_of(&atoms[end]);
            let continues = match class {
                Class::Polymer | Class::Water => next_class == class,
                Class::NonPolymer => same_residue(&atoms[end], &atoms[i]),
            };
            if !continues {
                break;
            }
            end += 1;
        }
        segments.push((class, i, end));
        i = end;
    }
    let mut water_asym_of_chain: HashMap<String, usize> = HashMap::new();
    for (class, start, end) in segments {
        let key = match class {
            Class::Polymer => {
                let mut seq = String::new();
                let mut prev: Option<(i32, &str)> = None;
                for a in &atoms[start..end] {
                    if prev != Some((a.residue_number, a.insertion_code.as_str())) {
                        seq.push_str(&a.residue_name);
                        seq.push(' ');
                        prev = Some((a.residue_number, a.insertion_code.as_str()));
                    }
                }
                seq
            }
            Class::NonPolymer => atoms[start].residue_name.clone(),
            Class::Water => "HOH".to_owned(),
        };
        let entity = *entity_by_key.entry((class, key.clone())).or_insert_with(|| {
            let kind = match class {
                Class::Polymer => "polymer",
                Class::NonPolymer => "non-polymer",
                Class::Water => "water",
            };
            let description = match class {
                Class::Polymer => format!("polymer of {} residues", key.split_whitespace().count()),
                _ => key.clone(),
            };
            entities.push((kind, description));
            entities.len() - 1
        });
        let asym = if class == Class::Water {
            *water_asym_of_chain.entry(auth_chain[start].clone()).or_insert_with(|| {
                asyms.push((asym_name(asyms.len()), entity));
                asyms.len() - 1
            })
        } else {
            asyms.push((asym_name(asyms.len()), entity));
            asyms.len() - 1
        };
        let mut seq_id = 0u32;
        let mut prev: Option<(i32, &str)> = None;
        for k in start..end {
            asym_of_atom[k] = asym;
            if class == Class::Polymer {
                let id = (atoms[k].residue_number, atoms[k].insertion_code.as_str());
                if prev != Some(id) {
                    seq_id += 1;
                    prev = Some(id);
                }
                seq_of_atom[k] = Some(seq_id);
            }
        }
    }
    Labels {
        asym_of_atom,
        seq_of_atom,
        asyms,
        entities,
        auth_chain,
    }
}

/// Quotes a CIF value when a bare word would be misread.
fn cif_value(value: &str) -> String {
    if value.is_empty() {
        return "?".to_owned();
    }
    let needs_quote = value.contains(char::is_whitespace)
        || value.starts_with(['_', '#', '$', '\'', '"', '[', ']', ';'])
        || matches!(
            value.to_ascii_lowercase().as_str(),
            "." | "?" | "loop_" | "stop_" | "global_"
        )
        || value.to_ascii_lowercase().starts_with("data_")
        || value.to_ascii_lowercase().starts_with("save_");
    if !needs_quote {
        value.to_owned()
    } else if !value.contains('\'') {
        format!("'{value}'")
    } else {
        format!("\"{value}\"")
    }
}

pub fn write_mmcif(structure: &Structure, path: &Path) -> FormatResult<()> {
    write_atomically(path, |w| write_mmcif_to(structure, w))
}

pub fn write_mmcif_to(structure: &Structure, w: &mut dyn Write) -> std::io::Result<()> {
    let labels = assign_labels(structure);
    let block: String = structure
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let block = if block.is_empty() {
        "cryoforge".to_owned()
    } else {
        block
    };
    writeln!(w, "data_{block}")?;
    writeln!(w, "#")?;
    writeln!(w, "_entry.id {}", cif_value(&block))?;
    writeln!(w, "#")?;
    writeln!(w, "loop_\n_entity.id\n_entity.type\n_entity.pdbx_description")?;
    for (i, (kind, description)) in labels.entities.iter().enumerate() {
        writeln!(w, "{} {} {}", i + 1, kind, cif_value(description))?;
    }
    writeln!(w, "#")?;
    writeln!(w, "loop_\n_struct_asym.id\n_struct_asym.entity_id")?;
    for (name, entity) in &labels.asyms {
        writeln!(w, "{name} {}", entity + 1)?;
    }
    writeln!(w, "#")?;
    writeln!(w, "loop_")?;
    for field in [
        "group_PDB",
        "id",
        "type_symbol",
        "label_atom_id",
        "label_alt_id",
        "label_comp_id",
        "label_asym_id",
        "label_entity_id",
        "label_seq_id",
        "pdbx_PDB_ins_code",
        "Cartn_x",
        "Cartn_y",
        "Cartn_z",
        "occupancy",
        "B_iso_or_equiv",
        "pdbx_formal_charge",
        "auth_seq_id",
        "auth_comp_id",
        "auth_asym_id",
        "auth_atom_id",
        "pdbx_PDB_model_num",
    ] {
        writeln!(w, "_atom_site.{field}")?;
    }
    // Quoted names and residue names are the same in every frame: prepare them once.
    let names: Vec<String> = structure.atoms.iter().map(|a| cif_value(&a.name)).collect();
    let residues: Vec<String> = structure.atoms.iter().map(|a| cif_value(&a.residue_name)).collect();
    let mut line = String::with_capacity(160);
    let mut serial = 0usize;
    for (frame_index, frame) in structure.frames.iter().enumerate() {
        for (i, (atom, pos)) in structure.atoms.iter().zip(frame).enumerate() {
            serial += 1;
            let (asym, entity) = &labels.asyms[labels.asym_of_atom[i]];
            line.clear();
            use std::fmt::Write as _;
            let _ = write!(
                line,
                "{} {} {} {} {} {} {} {} {} {} {:.3} {:.3} {:.3} {:.2} {:.2} {} {} {} {} {} {}",
                if atom.hetero { "HETATM" } else { "ATOM" },
                serial,
                cif_value(&atom.element),
                names[i],
                if atom.alt_loc.is_empty() {
                    ".".to_owned()
                } else {
                    cif_value(&atom.alt_loc)
                },
                residues[i],
                asym,
                entity + 1,
                labels.seq_of_atom[i].map_or_else(|| ".".to_owned(), |s| s.to_string()),
                if atom.insertion_code.is_empty() {
                    "?".to_owned()
                } else {
                    cif_value(&atom.insertion_code)
                },
                pos[0],
                pos[1],
                pos[2],
                atom.occupancy,
                atom.b_factor,
                if atom.formal_charge == 0 {
                    "?".to_owned()
                } else {
                    atom.formal_charge.to_string()
                },
                atom.residue_number,
                residues[i],
                cif_value(&labels.auth_chain[i]),
                names[i],
                frame_index + 1,
            );
            writeln!(w, "{line}")?;
        }
    }
    writeln!(w, "#")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(name: &str, res: &str, chain: &str, num: i32, element: &str) -> Atom {
        Atom {
            name: name.into(),
            alt_loc: String::new(),
            residue_name: res.into(),
            chain_id: chain.into(),
            residue_number: num,
            insertion_code: String::new(),
            element: element.into(),
            formal_charge: 0,
            occupancy: 1.0,
            b_factor: 12.5,
            hetero: !AMINO_ACIDS.contains(&res),
        }
    }

    #[test]
    fn labels_split_polymers_ligands_and_waters() {
        let atoms = vec![
            atom("N", "GLY", "A", 1, "N"),
            atom("CA", "GLY", "A", 1, "C"),
            atom("N", "ALA", "A", 2, "N"),
            atom("MG", "MG", "A", 301, "Mg"),
            atom("O", "HOH", "A", 401, "O"),
            atom("O", "HOH", "A", 402, "O"),
            atom("N", "GLY", "B", 1, "N"),
            atom("CA", "GLY", "B", 1, "C"),
            atom("N", "ALA", "B", 2, "N"),
        ];
        let s = Structure {
            name: "t".into(),
            frames: vec![vec![[0.0; 3]; atoms.len()]],
            atoms,
        };
        let l = assign_labels(&s);
        let asym = |i: usize| l.asyms[l.asym_of_atom[i]].0.as_str();
        assert_eq!([asym(0), asym(3), asym(4), asym(5), asym(6)], ["A", "B", "C", "C", "D"]);
        // Chains A and B have the same sequence: one entity.
        assert_eq!(l.asyms[l.asym_of_atom[0]].1, l.asyms[l.asym_of_atom[6]].1);
        assert_eq!(l.seq_of_atom[2], Some(2));
        assert_eq!(l.seq_of_atom[3], None);
        assert_eq!(l.entities.len(), 3);
    }

    #[test]
    fn asym_names_continue_past_z() {
        assert_eq!(asym_name(0), "A");
        assert_eq!(asym_name(25), "Z");
        assert_eq!(asym_name(26), "AA");
        assert_eq!(asym_name(27), "BA");
    }

    #[test]
    fn pdb_refuses_what_it_cannot_hold() {
        let mut a = atom("CA", "GLY", "AB", 1, "C");
        let s = Structure {
            name: "t".into(),
            frames: vec![vec![[0.0; 3]]],
            atoms: vec![a.clone()],
        };
        let err = check_pdb_limits(&s, Path::new("out.pdb")).expect_err("two-letter chain");
        assert!(
            err.to_string().contains("out.pdb") && err.to_string().contains("mmCIF"),
            "{err}"
        );
        a.chain_id = "A".into();
        let n = PDB_MAX_SERIAL + 1;
        let s = Structure {
            name: "t".into(),
            frames: vec![vec![[0.0; 3]; n]],
            atoms: vec![a; n],
        };
        let err = check_pdb_limits(&s, Path::new("big.pdb")).expect_err("too many atoms");
        assert!(err.to_string().contains("99,999"), "{err}");
    }

    #[test]
    fn pdb_columns_are_where_the_format_says() {
        let mut a = atom("CA", "GLY", "A", 12, "C");
        a.hetero = false;
        let s = Structure {
            name: "t".into(),
            frames: vec![vec![[1.5, -22.25, 333.125]]],
            atoms: vec![a],
        };
        let mut out = Vec::new();
        write_pdb_to(&s, &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        let line = text.lines().find(|l| l.starts_with("ATOM")).expect("atom line");
        assert_eq!(&line[12..16], " CA ");
        assert_eq!(&line[17..20], "GLY");
        assert_eq!(&line[21..22], "A");
        assert_eq!(line[22..26].trim(), "12");
        assert_eq!(line[30..38].trim(), "1.500");
        assert_eq!(line[38..46].trim(), "-22.250");
        assert_eq!(line[46..54].trim(), "333.125");
        assert_eq!(line[60..66].trim(), "12.50");
        assert_eq!(line[76..78].trim(), "C");
    }
}
