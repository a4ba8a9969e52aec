//! mmCIF label ids (`label_asym_id`, `label_entity_id`, `label_seq_id`): kept as read when every
//! atom has them, so an mmCIF round trip keeps them; otherwise assigned as the PDB does: each
//! polymer chain is one `label_asym_id` with sequential `label_seq_id`, each ligand residue and each
//! chain's waters get their own, and chains with identical sequences share an entity.

use std::collections::HashMap;

use crate::formats::model::{Atom, Structure};

pub(crate) const AMINO_ACIDS: &[&str] = &[
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE", "LEU", "LYS", "MET", "PHE", "PRO", "SER",
    "THR", "TRP", "TYR", "VAL", "MSE", "SEC", "PYL", "HSD", "HSE", "HSP", "HID", "HIE", "HIP", "CYX", "UNK",
];
const NUCLEOTIDES: &[&str] = &["A", "C", "G", "U", "I", "T", "DA", "DC", "DG", "DT", "DI", "DU", "N"];
const WATERS: &[&str] = &["HOH", "WAT", "DOD", "H2O", "TIP3", "TIP"];

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Class {
    Polymer,
    NonPolymer,
    Water,
}

/// Whether `residue_name` is a standard amino acid or nucleotide.
pub fn is_polymer_residue(residue_name: &str) -> bool {
    AMINO_ACIDS.contains(&residue_name) || NUCLEOTIDES.contains(&residue_name)
}

pub(crate) fn class_of(atom: &Atom) -> Class {
    let name = atom.residue_name.as_str();
    if WATERS.contains(&name) {
        Class::Water
    } else if AMINO_ACIDS.contains(&name) || NUCLEOTIDES.contains(&name) {
        Class::Polymer
    } else {
        Class::NonPolymer
    }
}

/// The label_asym/entity assignment of every atom.
pub(crate) struct Labels {
    /// Per atom: index into `asyms`.
    pub(crate) asym_of_atom: Vec<usize>,
    /// Per atom: label_seq_id (polymers) or None.
    pub(crate) seq_of_atom: Vec<Option<i32>>,
    /// (label_asym_id, entity index).
    pub(crate) asyms: Vec<(String, usize)>,
    /// (entity id, entity type, description).
    pub(crate) entities: Vec<(String, &'static str, String)>,
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

fn class_name(class: Class) -> &'static str {
    match class {
        Class::Polymer => "polymer",
        Class::NonPolymer => "non-polymer",
        Class::Water => "water",
    }
}

/// The labels the file was read with, when every atom has them (an mmCIF read by cryoforge):
/// a round trip keeps them.
fn labels_as_read(structure: &Structure) -> Option<Labels> {
    let atoms = &structure.atoms;
    if atoms.is_empty() || atoms.iter().any(|a| a.label_asym_id.is_empty()) {
        return None;
    }
    let mut asym_index: HashMap<&str, usize> = HashMap::new();
    let mut entity_index: HashMap<&str, usize> = HashMap::new();
    let mut labels = Labels {
        asym_of_atom: Vec::with_capacity(atoms.len()),
        seq_of_atom: atoms.iter().map(|a| a.label_seq_id).collect(),
        asyms: Vec::new(),
        entities: Vec::new(),
    };
    for atom in atoms {
        let asym = *asym_index.entry(&atom.label_asym_id).or_insert_with(|| {
            let entity_key = if atom.entity_id.is_empty() {
                atom.label_asym_id.as_str()
            } else {
                atom.entity_id.as_str()
            };
            let entity = *entity_index.entry(entity_key).or_insert_with(|| {
                let class = class_of(atom);
                let description = match class {
                    Class::Polymer => "polymer".to_owned(),
                    _ => atom.residue_name.clone(),
                };
                let id = if atom.entity_id.is_empty() {
                    (labels.entities.len() + 1).to_string()
                } else {
                    atom.entity_id.clone()
                };
                labels.entities.push((id, class_name(class), description));
                labels.entities.len() - 1
            });
            labels.asyms.push((atom.label_asym_id.clone(), entity));
            labels.asyms.len() - 1
        });
        labels.asym_of_atom.push(asym);
    }
    Some(labels)
}

pub(crate) fn assign_labels(structure: &Structure) -> Labels {
    if let Some(labels) = labels_as_read(structure) {
        return labels;
    }
    let atoms = &structure.atoms;
    let auth_chain: Vec<&str> = atoms.iter().map(|a| a.chain_id.as_str()).collect();

    let mut asym_of_atom = vec![0; atoms.len()];
    let mut seq_of_atom = vec![None; atoms.len()];
    let mut asyms: Vec<(String, usize)> = Vec::new();
    let mut entities: Vec<(String, &'static str, String)> = Vec::new();
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
            let kind = class_name(class);
            let description = match class {
                Class::Polymer => format!("polymer of {} residues", key.split_whitespace().count()),
                _ => key.clone(),
            };
            entities.push(((entities.len() + 1).to_string(), kind, description));
            entities.len() - 1
        });
        let asym = if class == Class::Water {
            *water_asym_of_chain
                .entry(auth_chain[start].to_owned())
                .or_insert_with(|| {
                    asyms.push((asym_name(asyms.len()), entity));
                    asyms.len() - 1
                })
        } else {
            asyms.push((asym_name(asyms.len()), entity));
            asyms.len() - 1
        };
        let mut seq_id = 0i32;
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
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A test atom (the writer's tests use it too).
    pub(crate) fn atom(name: &str, res: &str, chain: &str, num: i32, element: &str) -> Atom {
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
            ..Atom::default()
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
            info: Default::default(),
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
}
