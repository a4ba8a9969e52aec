//! cryoforge's mmCIF reader: `_atom_site` read as gemmi reads it (author ids preferred over label
//! ids, label ids kept so a file written back keeps them), with the categories that describe
//! the model (`_struct_conf`, `_struct_sheet_range`, `_entity_poly_seq`,
//! `_pdbx_struct_mod_residue`, `_struct_conn`, `_cell`, `_symmetry`, `_struct`, `_exptl`).

use std::collections::HashMap;

use crate::formats::cif::{Block, Document, Table};
use crate::formats::elements;
use crate::formats::error::ContentError;
use crate::formats::model::{ChainSequence, ModelInfo, ModifiedResidue, ResidueRange, Structure, UnitCell};
use crate::formats::model_build::{Builder, Site};

/// A CIF number: `12.5`, `12.5(3)` (the uncertainty is dropped); `None` for `?`, `.` or text.
pub(crate) fn cif_number(text: Option<&str>) -> Option<f64> {
    let text = text?;
    let text = text.split_once('(').map_or(text, |(v, _)| v);
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn cif_int(text: Option<&str>) -> Option<i32> {
    let text = text?.trim();
    text.parse::<i32>().ok().or_else(|| {
        cif_number(Some(text))
            .filter(|v| v.fract() == 0.0 && v.abs() < 1e9)
            .map(|v| v as i32)
    })
}

/// The first character of a value (altloc, insertion code), empty for `?` and `.`.
fn first_char(text: Option<&str>) -> &str {
    match text {
        Some(t) if !t.is_empty() => &t[..t.chars().next().map_or(0, char::len_utf8)],
        _ => "",
    }
}

struct Columns {
    x: usize,
    y: usize,
    z: usize,
    chain: usize,
    residue: usize,
    atom: usize,
    seq: usize,
    element: Option<usize>,
    group: Option<usize>,
    alt: Option<usize>,
    label_asym: Option<usize>,
    label_seq: Option<usize>,
    entity: Option<usize>,
    icode: Option<usize>,
    occupancy: Option<usize>,
    b: Option<usize>,
    charge: Option<usize>,
    model: Option<usize>,
}

impl Columns {
    fn find(table: &Table<'_>) -> Result<Self, ContentError> {
        let need = |names: &[&str], what: &str| {
            table
                .first_column(names)
                .ok_or_else(|| ContentError(format!("_atom_site has no {what} column ({})", names.join(" or "))))
        };
        Ok(Self {
            x: need(&["Cartn_x"], "x coordinate")?,
            y: need(&["Cartn_y"], "y coordinate")?,
            z: need(&["Cartn_z"], "z coordinate")?,
            chain: need(&["auth_asym_id", "label_asym_id"], "chain")?,
            residue: need(&["auth_comp_id", "label_comp_id"], "residue name")?,
            atom: need(&["auth_atom_id", "label_atom_id"], "atom name")?,
            seq: need(&["auth_seq_id", "label_seq_id"], "residue number")?,
            element: table.column("type_symbol"),
            group: table.column("group_PDB"),
            alt: table.column("label_alt_id"),
            label_asym: table.column("label_asym_id"),
            label_seq: table.column("label_seq_id"),
            entity: table.column("label_entity_id"),
            icode: table.column("pdbx_PDB_ins_code"),
            occupancy: table.column("occupancy"),
            b: table.column("B_iso_or_equiv"),
            charge: table.column("pdbx_formal_charge"),
            model: table.column("pdbx_PDB_model_num"),
        })
    }
}

/// Reads mmCIF text; `name` is used when the data block has no name.
pub(crate) fn read_mmcif(text: &str, name: String) -> Result<Structure, ContentError> {
    let doc = Document::parse(text.to_owned())?;
    let Some(block) = doc.blocks.iter().find(|b| doc.table(b, "_atom_site.").is_some()) else {
        let what = if doc.blocks.is_empty() {
            "no data block"
        } else {
            "no _atom_site table"
        };
        return Err(ContentError(format!("{what}: not an atomic model")));
    };
    let table = doc.table(block, "_atom_site.").expect("found above");
    let c = Columns::find(&table)?;
    let mut builder = Builder::default();
    let mut model: Option<&str> = None;
    let mut guessed_elements = 0usize;
    for row in 0..table.rows() {
        let get = |column: usize| table.get(row, column);
        let opt = |column: Option<usize>| column.and_then(|k| table.get(row, k));
        let (Some(x), Some(y), Some(z)) = (cif_number(get(c.x)), cif_number(get(c.y)), cif_number(get(c.z))) else {
            builder
                .warnings
                .add("an atom site without numeric coordinates was skipped", || {
                    format!("row {}", row + 1)
                });
            continue;
        };
        let model_number = opt(c.model);
        if row == 0 || model_number != model {
            model = model_number;
            builder.begin_model(cif_int(model_number).unwrap_or(0));
        }
        let atom_name = get(c.atom).unwrap_or("");
        let element = match opt(c.element) {
            Some(symbol) => elements::from_symbol(symbol),
            None => {
                guessed_elements += 1;
                let mut padded = [b' '; 4];
                for (slot, b) in padded.iter_mut().skip(1).zip(atom_name.bytes()) {
                    *slot = b;
                }
                elements::guess(&padded, get(c.residue).unwrap_or(""))
            }
        };
        let residue_number = cif_int(get(c.seq)).unwrap_or_else(|| {
            builder
                .warnings
                .add("an atom site without a residue number was read as residue 0", || {
                    format!("row {}", row + 1)
                });
            0
        });
        let formal_charge = match opt(c.charge) {
            None => 0,
            Some(t) => t.trim_end_matches('+').parse::<i8>().unwrap_or_else(|_| {
                builder.warnings.add("an unreadable formal charge was read as 0", || {
                    format!("row {}", row + 1)
                });
                0
            }),
        };
        builder.add(Site {
            chain: get(c.chain).unwrap_or(""),
            residue_number,
            insertion_code: first_char(opt(c.icode)),
            residue_name: get(c.residue).unwrap_or(""),
            segment: "",
            name: atom_name,
            alt_loc: first_char(opt(c.alt)),
            element,
            formal_charge,
            occupancy: cif_number(opt(c.occupancy)).unwrap_or(1.0) as f32,
            b_factor: cif_number(opt(c.b)).unwrap_or(20.0) as f32,
            hetero: opt(c.group).is_some_and(|g| g.trim_start_matches(['"', '\'']).starts_with(['H', 'h'])),
            position: [x, y, z],
            label_asym_id: opt(c.label_asym).unwrap_or(""),
            label_seq_id: cif_int(opt(c.label_seq)),
            entity_id: opt(c.entity).unwrap_or(""),
        });
    }
    let mut info = read_info(&doc, block, &table, &c);
    if guessed_elements > 0 {
        info.warnings.push(format!(
            "{guessed_elements} atom sites have no type_symbol: elements guessed from their names"
        ));
    }
    let name = if block.name.is_empty() {
        name
    } else {
        block.name.clone()
    };
    Ok(builder.finish(name, info))
}

fn read_info(doc: &Document, block: &Block, atoms: &Table<'_>, c: &Columns) -> ModelInfo {
    let mut info = ModelInfo {
        title: doc.value(block, "_struct.title").unwrap_or("").to_owned(),
        method: doc.value(block, "_exptl.method").unwrap_or("").to_owned(),
        ..ModelInfo::default()
    };
    let cell = [
        "length_a",
        "length_b",
        "length_c",
        "angle_alpha",
        "angle_beta",
        "angle_gamma",
    ]
    .map(|k| cif_number(doc.value(block, &format!("_cell.{k}"))));
    if let [Some(a), Some(b), Some(cc), Some(alpha), Some(beta), Some(gamma)] = cell {
        let space_group = doc
            .value(block, "_symmetry.space_group_name_H-M")
            .or_else(|| doc.value(block, "_space_group.name_H-M_alt"))
            .unwrap_or("");
        info.cell = Some(UnitCell {
            lengths: [a, b, cc],
            angles: [alpha, beta, gamma],
            space_group: space_group.to_owned(),
        });
    }
    let range = |t: &Table<'_>, row: usize, kind: Option<usize>| -> Option<ResidueRange> {
        let col = |n: &str| t.column(n).and_then(|k| t.get(row, k));
        Some(ResidueRange {
            chain_id: col("beg_auth_asym_id").or_else(|| col("beg_label_asym_id"))?.to_owned(),
            start: (
                cif_int(col("beg_auth_seq_id").or_else(|| col("beg_label_seq_id")))?,
                first_char(col("pdbx_beg_PDB_ins_code")).to_owned(),
            ),
            end: (
                cif_int(col("end_auth_seq_id").or_else(|| col("end_label_seq_id")))?,
                first_char(col("pdbx_end_PDB_ins_code")).to_owned(),
            ),
            kind: kind.and_then(|k| t.get(row, k)).unwrap_or("").to_owned(),
        })
    };
    if let Some(t) = doc.table(block, "_struct_conf.") {
        let type_column = t.column("conf_type_id");
        for row in 0..t.rows() {
            let is_helix = type_column
                .and_then(|k| t.get(row, k))
                .is_none_or(|ty| ty.to_ascii_uppercase().starts_with("HELX"));
            if is_helix && let Some(r) = range(&t, row, t.column("pdbx_PDB_helix_class")) {
                info.helices.push(r);
            }
        }
    }
    if let Some(t) = doc.table(block, "_struct_sheet_range.") {
        info.strands = (0..t.rows())
            .filter_map(|row| range(&t, row, t.column("sheet_id")))
            .collect();
    }
    if let Some(t) = doc.table(block, "_pdbx_struct_mod_residue.") {
        for row in 0..t.rows() {
            let col = |n: &str| t.column(n).and_then(|k| t.get(row, k));
            info.modified_residues.push(ModifiedResidue {
                chain_id: col("auth_asym_id")
                    .or_else(|| col("label_asym_id"))
                    .unwrap_or("")
                    .to_owned(),
                residue_number: cif_int(col("auth_seq_id").or_else(|| col("label_seq_id"))).unwrap_or(0),
                insertion_code: first_char(col("PDB_ins_code")).to_owned(),
                residue_name: col("auth_comp_id")
                    .or_else(|| col("label_comp_id"))
                    .unwrap_or("")
                    .to_owned(),
                standard_name: col("parent_comp_id").unwrap_or("").to_owned(),
            });
        }
    }
    if let Some(t) = doc.table(block, "_struct_conn.") {
        info.connections = t.rows();
    }
    info.sequences = sequences(doc, block, atoms, c);
    info
}

/// `_entity_poly_seq` per chain: each entity's sequence under every author chain that holds it.
fn sequences(doc: &Document, block: &Block, atoms: &Table<'_>, c: &Columns) -> Vec<ChainSequence> {
    let Some(t) = doc.table(block, "_entity_poly_seq.") else {
        return Vec::new();
    };
    let (Some(entity), Some(monomer)) = (t.column("entity_id"), t.column("mon_id")) else {
        return Vec::new();
    };
    let mut by_entity: Vec<(String, Vec<String>)> = Vec::new();
    for row in 0..t.rows() {
        let id = t.get(row, entity).unwrap_or("");
        let name = t.get(row, monomer).unwrap_or("").to_owned();
        match by_entity.last_mut() {
            Some((last, names)) if last == id => names.push(name),
            _ => by_entity.push((id.to_owned(), vec![name])),
        }
    }
    let Some(entity_column) = c.entity else {
        return Vec::new();
    };
    let mut chains_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for row in 0..atoms.rows() {
        let (Some(e), Some(chain)) = (atoms.get(row, entity_column), atoms.get(row, c.chain)) else {
            continue;
        };
        let chains = chains_of.entry(e).or_default();
        if !chains.contains(&chain) {
            chains.push(chain);
        }
    }
    let mut out = Vec::new();
    for (id, names) in &by_entity {
        for chain in chains_of.get(id.as_str()).into_iter().flatten() {
            out.push(ChainSequence {
                chain_id: (*chain).to_owned(),
                residues: names.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CIF: &str = "data_1abc
_cell.length_a 40.0
_cell.length_b 50.0
_cell.length_c 60.0
_cell.angle_alpha 90
_cell.angle_beta 90
_cell.angle_gamma 90
_symmetry.space_group_name_H-M 'P 21 21 21'
loop_
_atom_site.group_PDB
_atom_site.id
_atom_site.type_symbol
_atom_site.label_atom_id
_atom_site.label_alt_id
_atom_site.label_comp_id
_atom_site.label_asym_id
_atom_site.label_entity_id
_atom_site.label_seq_id
_atom_site.pdbx_PDB_ins_code
_atom_site.Cartn_x
_atom_site.Cartn_y
_atom_site.Cartn_z
_atom_site.occupancy
_atom_site.B_iso_or_equiv
_atom_site.pdbx_formal_charge
_atom_site.auth_seq_id
_atom_site.auth_asym_id
_atom_site.pdbx_PDB_model_num
ATOM 1 N N . MET A 1 1 ? 1.0 2.0 3.0 1.00 10.0 ? 5 A 1
ATOM 2 C CA A MET A 1 1 ? 1.5 2.5 3.5 0.60 11.0 ? 5 A 1
ATOM 3 C CA B MET A 1 1 ? 1.6 2.6 3.6 0.40 11.5 ? 5 A 1
HETATM 4 O O . HOH B 2 . ? 9.0 9.0 9.0 1.00 30.0 ? 101 A 1
HETATM 5 ZN ZN . ZN C 3 . ? 5.0 5.0 5.0 1.00 30.0 2 201 A 1
";

    #[test]
    fn atom_sites_with_auth_and_label_ids() {
        let s = read_mmcif(CIF, "x".into()).expect("read");
        assert_eq!(s.name, "1abc");
        assert_eq!(s.atoms.len(), 5);
        assert_eq!(s.atoms[0].residue_number, 5);
        assert_eq!(s.atoms[0].label_seq_id, Some(1));
        assert_eq!(s.atoms[1].alt_loc, "A");
        assert_eq!(s.atoms[2].occupancy, 0.4);
        assert_eq!(s.atoms[3].label_asym_id, "B");
        assert_eq!(s.atoms[3].label_seq_id, None);
        assert_eq!(s.atoms[4].element, "Zn");
        assert_eq!(s.atoms[4].formal_charge, 2);
        assert!(s.atoms[4].hetero);
        let cell = s.info.cell.as_ref().expect("cell");
        assert_eq!(cell.space_group, "P 21 21 21");
        assert_eq!(s.first_conformer().atoms.len(), 4);
        assert_eq!(s.counts().alternate_atoms, 1);
    }

    #[test]
    fn a_file_without_atom_sites_is_an_error() {
        let err = read_mmcif("data_x\n_cell.length_a 1\n", "x".into()).expect_err("no atoms");
        assert!(err.0.contains("_atom_site"), "{err}");
    }
}
