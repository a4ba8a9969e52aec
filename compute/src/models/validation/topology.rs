//! What the validator learns once from a structure: its residues (first conformer, heavy atoms),
//! which protein residues are linked by peptide bonds, the bond and angle restraints with their
//! targets, and for each atom the atoms within three bonds (which cannot clash with it).

use std::collections::HashMap;

use super::ResidueId;
use super::ideal::{self, BackboneKind, Target};
use super::tables::{RamaClass, tables};
use crate::formats::model::{Atom, Structure};
use crate::geometry::CellList;

/// The longest C(i)–N(i+1) distance that still counts as a peptide bond.
pub const PEPTIDE_LINK_MAX_ANGSTROM: f64 = 2.0;
/// Atoms outside the residue templates (ligands, unknown residues) are bonded when this close.
pub const BOND_DISTANCE_MAX_ANGSTROM: f64 = 1.9;
/// Two cysteine SG atoms this close form a disulfide.
pub const DISULFIDE_MAX_ANGSTROM: f64 = 2.5;

/// One residue of the first conformer.
#[derive(Clone, Debug)]
pub(crate) struct Residue {
    pub id: ResidueId,
    /// Template name (`HIS` for CHARMM's `HSD`).
    pub template: String,
    /// Kept atoms: (name as the template spells it, atom index).
    pub atoms: Vec<(String, usize)>,
    pub kind: BackboneKind,
    pub class: RamaClass,
    /// N, CA and C all present.
    pub protein: bool,
    /// Bonded to the previous / next residue of the list by a peptide bond.
    pub prev_linked: bool,
    pub next_linked: bool,
}

impl Residue {
    pub fn atom(&self, name: &str) -> Option<usize> {
        self.atoms.iter().find(|(n, _)| n == name).map(|&(_, i)| i)
    }
}

/// A restraint on `N` atoms (a bond for 2, an angle a–centre–c for 3).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Restraint<const N: usize> {
    pub atoms: [usize; N],
    pub target: Target,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Topology {
    pub residues: Vec<Residue>,
    pub bonds: Vec<Restraint<2>>,
    pub angles: Vec<Restraint<3>>,
    /// Heavy first-conformer atoms other than water and metal ions: the clashscore's atoms.
    pub clash_atoms: Vec<usize>,
    /// Per atom index: the atoms within three bonds, sorted.
    pub excluded: Vec<Vec<u32>>,
}

fn template_names(residue_name: &str, atom_name: &str) -> (String, String) {
    let residue = match residue_name {
        "HSD" | "HSE" | "HSP" | "HID" | "HIE" | "HIP" => "HIS",
        "CYX" => "CYS",
        other => other,
    };
    let atom = match (residue, atom_name) {
        ("ILE", "CD") => "CD1",
        (_, other) => other,
    };
    (residue.to_owned(), atom.to_owned())
}

fn is_water(name: &str) -> bool {
    matches!(name, "HOH" | "WAT" | "DOD" | "H2O" | "TIP" | "TIP3" | "SOL")
}

/// Elements counted in clashes; anything else (metal ions) is left out, as a coordination
/// bond is not a steric overlap.
fn is_clash_element(element: &str) -> bool {
    matches!(
        element,
        "C" | "N" | "O" | "S" | "P" | "Se" | "F" | "Cl" | "Br" | "I" | "B" | "Si"
    )
}

fn group_residues(structure: &Structure) -> Vec<Residue> {
    let keep = structure.first_conformer_mask();
    let mut residues: Vec<Residue> = Vec::new();
    let same = |a: &Atom, id: &ResidueId| {
        a.chain_id == id.chain_id
            && a.residue_number == id.number
            && a.insertion_code == id.insertion_code
            && a.residue_name == id.name
    };
    for (i, atom) in structure.atoms.iter().enumerate() {
        if !keep[i] || atom.is_hydrogen() {
            continue;
        }
        let (template, name) = template_names(&atom.residue_name, &atom.name);
        let continues = residues.last().is_some_and(|r| same(atom, &r.id));
        if let Some(r) = residues.last_mut().filter(|_| continues) {
            if r.atom(&name).is_none() {
                r.atoms.push((name, i));
            }
            continue;
        }
        residues.push(Residue {
            id: ResidueId::of(atom),
            kind: BackboneKind::of(&template),
            template,
            atoms: vec![(name, i)],
            class: RamaClass::General,
            protein: false,
            prev_linked: false,
            next_linked: false,
        });
    }
    for r in &mut residues {
        r.protein = ["N", "CA", "C"].iter().all(|n| r.atom(n).is_some());
    }
    residues
}

fn distance(frame: Option<&Vec<[f32; 3]>>, i: usize, j: usize) -> Option<f64> {
    let f = frame?;
    let (a, b) = (f.get(i)?, f.get(j)?);
    Some(ideal::norm(ideal::sub(a.map(f64::from), b.map(f64::from))))
}

fn link_residues(residues: &mut [Residue], frame: Option<&Vec<[f32; 3]>>) {
    for k in 1..residues.len() {
        let (prev, this) = (&residues[k - 1], &residues[k]);
        if !(prev.protein && this.protein && prev.id.chain_id == this.id.chain_id) {
            continue;
        }
        let (Some(c), Some(n)) = (prev.atom("C"), this.atom("N")) else {
            continue;
        };
        // Without coordinates, consecutive numbering stands in for the distance check.
        let linked = match distance(frame, c, n) {
            Some(d) => d <= PEPTIDE_LINK_MAX_ANGSTROM,
            None => this.id.number - prev.id.number <= 1,
        };
        residues[k - 1].next_linked = linked;
        residues[k].prev_linked = linked;
    }
    for k in 0..residues.len() {
        let next = (residues[k].next_linked).then(|| residues[k + 1].template.clone());
        residues[k].class = RamaClass::of(&residues[k].template, next.as_deref());
    }
}

/// Bonds and angles inside one residue: the template's pairs and triples, with Engh & Huber
/// targets for the backbone and Cβ and the corpus's for the side chain. A protein residue with
/// no template gets the backbone ones.
fn residue_restraints(r: &Residue, top: &mut Topology, covered: &mut [bool]) {
    let geometry = &tables().geometry;
    let fallback_bonds = [("N", "CA"), ("CA", "C"), ("C", "O"), ("CA", "CB")];
    let fallback_angles = [("N", "CA", "C"), ("CA", "C", "O"), ("N", "CA", "CB"), ("C", "CA", "CB")];
    let bonds: Vec<(&str, &str, Option<Target>)> = match geometry.bonds.get(&r.template) {
        Some(list) => list
            .iter()
            .map(|(a, b, t)| (a.as_str(), b.as_str(), Some(*t)))
            .collect(),
        None if r.protein => fallback_bonds.iter().map(|&(a, b)| (a, b, None)).collect(),
        None => Vec::new(),
    };
    for (a, b, corpus) in bonds {
        let (Some(i), Some(j)) = (r.atom(a), r.atom(b)) else {
            continue;
        };
        if let Some(target) = ideal::intra_bond(r.kind, a, b).or(corpus) {
            top.bonds.push(Restraint { atoms: [i, j], target });
            covered[i] = true;
            covered[j] = true;
        }
    }
    let angles: Vec<(&str, &str, &str, Option<Target>)> = match geometry.angles.get(&r.template) {
        Some(list) => list
            .iter()
            .map(|(a, c, b, t)| (a.as_str(), c.as_str(), b.as_str(), Some(*t)))
            .collect(),
        None if r.protein => fallback_angles.iter().map(|&(a, c, b)| (a, c, b, None)).collect(),
        None => Vec::new(),
    };
    for (a, centre, c, corpus) in angles {
        let (Some(i), Some(j), Some(k)) = (r.atom(a), r.atom(centre), r.atom(c)) else {
            continue;
        };
        if let Some(target) = ideal::intra_angle(r.kind, a, centre, c).or(corpus) {
            top.angles.push(Restraint {
                atoms: [i, j, k],
                target,
            });
        }
    }
}

fn peptide_restraints(prev: &Residue, this: &Residue, top: &mut Topology) {
    let targets = ideal::peptide(prev.kind, this.kind);
    let (Some(c), Some(n), Some(ca_prev), Some(ca)) =
        (prev.atom("C"), this.atom("N"), prev.atom("CA"), this.atom("CA"))
    else {
        return;
    };
    top.bonds.push(Restraint {
        atoms: [c, n],
        target: targets.c_n,
    });
    top.angles.push(Restraint {
        atoms: [ca_prev, c, n],
        target: targets.ca_c_n,
    });
    top.angles.push(Restraint {
        atoms: [c, n, ca],
        target: targets.c_n_ca,
    });
    if let Some(o) = prev.atom("O") {
        top.angles.push(Restraint {
            atoms: [o, c, n],
            target: targets.o_c_n,
        });
    }
}

/// Bonds that only the exclusion graph needs: disulfides, and atoms no template covers
/// (ligands, unknown residues, odd names) bonded by distance.
fn distance_bonds(
    structure: &Structure,
    frame: Option<&Vec<[f32; 3]>>,
    top: &Topology,
    covered: &[bool],
) -> Vec<(usize, usize)> {
    let Some(frame) = frame else { return Vec::new() };
    let heavy: Vec<usize> = top
        .residues
        .iter()
        .flat_map(|r| r.atoms.iter().map(|&(_, i)| i))
        .collect();
    let cells = CellList::new(frame, &heavy, DISULFIDE_MAX_ANGSTROM);
    let mut out = Vec::new();
    let sulfur = |i: usize| structure.atoms[i].name == "SG" && structure.atoms[i].element == "S";
    for &i in &heavy {
        let disulfide = sulfur(i);
        if covered[i] && !disulfide {
            continue;
        }
        cells.for_each_near(frame, i, |j, d| {
            let bonded = if disulfide && sulfur(j) {
                d <= DISULFIDE_MAX_ANGSTROM
            } else {
                d <= BOND_DISTANCE_MAX_ANGSTROM && !(covered[i] && covered[j])
            };
            if bonded && j != i {
                out.push((i.min(j), i.max(j)));
            }
        });
    }
    out
}

/// For each clash atom, the atoms reachable in at most three bonds.
fn exclusions(n_atoms: usize, edges: &[(usize, usize)], clash_atoms: &[usize]) -> Vec<Vec<u32>> {
    let mut adjacency: HashMap<usize, Vec<usize>> = HashMap::new();
    for &(a, b) in edges {
        adjacency.entry(a).or_default().push(b);
        adjacency.entry(b).or_default().push(a);
    }
    let mut excluded = vec![Vec::new(); n_atoms];
    for &start in clash_atoms {
        let mut seen: Vec<usize> = vec![start];
        let mut shell = vec![start];
        for _ in 0..3 {
            let mut next = Vec::new();
            for a in shell {
                for &b in adjacency.get(&a).map_or(&[][..], Vec::as_slice) {
                    if !seen.contains(&b) {
                        seen.push(b);
                        next.push(b);
                    }
                }
            }
            shell = next;
        }
        let mut list: Vec<u32> = seen.into_iter().filter(|&a| a != start).map(|a| a as u32).collect();
        list.sort_unstable();
        excluded[start] = list;
    }
    excluded
}

impl Topology {
    /// The topology of `structure`, with peptide links, disulfides and distance-rule bonds
    /// decided on frame `frame` (consecutive numbering links residues when it has none).
    pub fn new(structure: &Structure, frame: usize) -> Self {
        let coords = structure.frames.get(frame);
        let mut residues = group_residues(structure);
        link_residues(&mut residues, coords);
        let mut top = Topology::default();
        let mut covered = vec![false; structure.atoms.len()];
        for (k, r) in residues.iter().enumerate() {
            residue_restraints(r, &mut top, &mut covered);
            if r.prev_linked {
                peptide_restraints(&residues[k - 1], r, &mut top);
            }
        }
        top.clash_atoms = residues
            .iter()
            .filter(|r| !is_water(&r.id.name))
            .flat_map(|r| r.atoms.iter().map(|&(_, i)| i))
            .filter(|&i| is_clash_element(&structure.atoms[i].element))
            .collect();
        top.residues = residues;
        let mut edges: Vec<(usize, usize)> = top.bonds.iter().map(|b| (b.atoms[0], b.atoms[1])).collect();
        edges.extend(distance_bonds(structure, coords, &top, &covered));
        top.excluded = exclusions(structure.atoms.len(), &edges, &top.clash_atoms);
        top
    }
}
