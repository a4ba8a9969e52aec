//! cryoforge's own PDB and mmCIF writers.
//!
//! mmCIF: an `_entity`, `_struct_asym` and `_atom_site` table with both label and auth fields
//! (labels from `model_labels`), every atom site with its altloc, occupancy and B-factor, so that
//! gemmi and ChimeraX read back the atom sites cryoforge read. PDB: fixed columns, TER after
//! polymer chains, MODEL/ENDMDL for trajectories; anything PDB cannot hold (more than 99,999
//! atoms, chain ids longer than one character, values wider than their columns) is refused with
//! a message pointing to mmCIF, never silently wrapped.

use std::io::Write;
use std::path::Path;

use crate::formats::FileKind;
use crate::formats::error::{FormatError, FormatResult};
use crate::formats::model::{Atom, Structure};
pub use crate::formats::model_labels::is_polymer_residue;
use crate::formats::model_labels::{Class, assign_labels, class_of};
use crate::io::write_atomically;

const PDB_MAX_SERIAL: usize = 99_999;

/// Writes `structure` (all frames) as PDB or mmCIF, chosen by the extension of `path`.
pub fn write_structure(structure: &Structure, path: &Path) -> FormatResult<()> {
    if crate::io::format_extension(path) == "bcif" {
        return Err(FormatError::unsupported(
            path,
            "cryoforge reads BinaryCIF but writes mmCIF text: name the output .cif",
        ));
    }
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
        .find(|a| a.residue_name.len() > 3 || a.name.len() > 4 || a.segment.len() > 4 || a.alt_loc.len() > 1)
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
    if let Some(cell) = &structure.info.cell {
        let [a, b, c] = cell.lengths;
        let [alpha, beta, gamma] = cell.angles;
        let group = if cell.space_group.is_empty() {
            "P 1"
        } else {
            cell.space_group.as_str()
        };
        writeln!(
            w,
            "CRYST1{a:9.3}{b:9.3}{c:9.3}{alpha:7.2}{beta:7.2}{gamma:7.2} {group:<11}"
        )?;
    }
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
                "{:<6}{:>5} {}{:1}{:>3} {:1}{:>4}{:1}   {:>8.3}{:>8.3}{:>8.3}{:>6.2}{:>6.2}      {:<4}{:>2}{:2}",
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
                atom.segment,
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
    for (id, kind, description) in &labels.entities {
        writeln!(w, "{} {} {}", cif_value(id), kind, cif_value(description))?;
    }
    writeln!(w, "#")?;
    writeln!(w, "loop_\n_struct_asym.id\n_struct_asym.entity_id")?;
    for (name, entity) in &labels.asyms {
        writeln!(w, "{} {}", cif_value(name), cif_value(&labels.entities[*entity].0))?;
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
                "{} {} {} {} {} {} {} {} {} {} {:.3} {:.3} {:.3} {} {} {} {} {} {} {} {}",
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
                cif_value(asym),
                cif_value(&labels.entities[*entity].0),
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
                if atom.chain_id.is_empty() {
                    "''".to_owned()
                } else {
                    cif_value(&atom.chain_id)
                },
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
    use crate::formats::model_labels::tests::atom;

    #[test]
    fn pdb_refuses_what_it_cannot_hold() {
        let mut a = atom("CA", "GLY", "AB", 1, "C");
        let s = Structure {
            name: "t".into(),
            frames: vec![vec![[0.0; 3]]],
            atoms: vec![a.clone()],
            info: Default::default(),
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
            info: Default::default(),
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
            info: Default::default(),
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
