//! MolProbity-style validation of a model's protein geometry: Ramachandran regions against
//! distributions measured on public X-ray structures, bond and angle RMSZ (Engh & Huber 2001 for
//! the backbone and Cβ, corpus statistics for side chains), a heavy-atom clashscore and Cβ
//! deviations.
//!
//! A [`Validator`] learns the topology once (residues of the first conformer, peptide links,
//! restraints, which atom pairs are within three bonds) so that the guided fit can score many
//! coordinate sets of the same atoms cheaply; [`validate`] is the one-shot form. The reference
//! tables live in `assets/validation/` (provenance and held-out check in its README). Hydrogens
//! are ignored throughout; the clashscore counts heavy-atom overlaps only, so it reads lower
//! than MolProbity's, which adds hydrogens first.

mod clash;
mod geometry;
pub(crate) mod ideal;
mod rama;
mod tables;
#[cfg(test)]
mod tests;
mod topology;

pub use clash::{CLASH_OVERLAP_ANGSTROM, POLAR_CONTACT_ANGSTROM, vdw_radius};
pub use geometry::{ANGLE_SIGMA_FLOOR_DEG, BOND_SIGMA_FLOOR_ANGSTROM, CBETA_DEVIATION_ANGSTROM, Z_OUTLIER};
pub use rama::{RamaRegion, region as rama_region};
pub(crate) use tables::tables;
pub use tables::{RamaClass, TableError};
pub use topology::PEPTIDE_LINK_MAX_ANGSTROM;

use crate::formats::model::{Atom, Structure};

/// A residue as the file names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResidueId {
    pub chain_id: String,
    pub number: i32,
    pub insertion_code: String,
    pub name: String,
}

impl ResidueId {
    fn of(atom: &Atom) -> Self {
        Self {
            chain_id: atom.chain_id.clone(),
            number: atom.residue_number,
            insertion_code: atom.insertion_code.clone(),
            name: atom.residue_name.clone(),
        }
    }
}

impl std::fmt::Display for ResidueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chain = if self.chain_id.is_empty() { "-" } else { &self.chain_id };
        write!(f, "{chain} {}{} {}", self.number, self.insertion_code, self.name)
    }
}

/// A residue outside the allowed Ramachandran region of its class.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RamaOutlier {
    pub residue: ResidueId,
    pub class: RamaClass,
    pub phi_deg: f64,
    pub psi_deg: f64,
}

/// Ramachandran counts over protein residues whose φ and ψ are both defined (bonded to both
/// neighbours).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RamachandranReport {
    pub evaluated: usize,
    pub favoured: usize,
    pub allowed: usize,
    pub outliers: usize,
    /// None when no residue was evaluated.
    pub favoured_percent: Option<f64>,
    pub outliers_percent: Option<f64>,
    pub outlier_list: Vec<RamaOutlier>,
}

/// A bond or angle more than [`Z_OUTLIER`] σ from its target.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RestraintOutlier {
    /// `chain/RESnumber/ATOM` for each atom (the centre of an angle in the middle).
    pub atoms: Vec<String>,
    /// Å for bonds, degrees for angles.
    pub value: f64,
    pub ideal: f64,
    pub z: f64,
}

/// Bond or angle statistics.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RestraintReport {
    pub count: usize,
    /// Root-mean-square z-score; None when there is nothing to measure.
    pub rmsz: Option<f64>,
    /// How many have |z| > 4.
    pub outliers: usize,
    /// The worst outliers (at most 10), largest |z| first.
    pub worst: Vec<RestraintOutlier>,
}

/// Two atoms more than three bonds apart that overlap by at least 0.4 Å.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Clash {
    pub atoms: [String; 2],
    pub distance_angstrom: f64,
    /// Contact distance (sum of radii; at most 2.9 Å for an N/O pair) minus the distance.
    pub overlap_angstrom: f64,
}

/// A residue whose Cβ is at least 0.25 Å from where ideal geometry puts it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CbetaDeviation {
    pub residue: ResidueId,
    pub deviation_angstrom: f64,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CbetaReport {
    /// Non-Gly protein residues with N, CA, C and CB.
    pub checked: usize,
    /// How many deviate by ≥ 0.25 Å.
    pub deviations: usize,
    pub max_deviation_angstrom: f64,
    /// Every deviation, largest first.
    pub outliers: Vec<CbetaDeviation>,
}

/// φ and ψ of one protein residue, None where undefined (no bonded neighbour on that side).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ResidueDihedrals {
    pub residue: ResidueId,
    pub class: RamaClass,
    pub phi_deg: Option<f64>,
    pub psi_deg: Option<f64>,
}

/// Everything [`Validator::report`] measures on one set of coordinates.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ValidationReport {
    /// Protein residues (with N, CA and C) of the first conformer.
    pub residues: usize,
    pub ramachandran: RamachandranReport,
    pub bonds: RestraintReport,
    pub angles: RestraintReport,
    /// Heavy-atom clashes per 1000 heavy atoms (waters and metal ions left out); None without atoms.
    pub clashscore: Option<f64>,
    /// Number of clashing pairs.
    pub clashes: usize,
    /// Heavy atoms the clashscore counts.
    pub clash_atoms: usize,
    /// The deepest overlaps (at most 10).
    pub worst_clashes: Vec<Clash>,
    pub cbeta: CbetaReport,
    /// Reference tables that failed to load (a broken build); empty normally.
    pub warnings: Vec<String>,
}

fn or_dash(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

impl ValidationReport {
    /// One line: "Ramachandran 97.2% favoured, 0.5% outliers; clashscore 3.1; bond RMSZ 0.62,
    /// angle RMSZ 0.81; Cβ deviations 0".
    pub fn summary_line(&self) -> String {
        if self.residues == 0 {
            return "no protein residues to validate".to_owned();
        }
        let r = &self.ramachandran;
        format!(
            "Ramachandran {}% favoured, {}% outliers; clashscore {}; bond RMSZ {}, angle RMSZ {}; Cβ deviations {}",
            or_dash(r.favoured_percent, 1),
            or_dash(r.outliers_percent, 1),
            or_dash(self.clashscore, 1),
            or_dash(self.bonds.rmsz, 2),
            or_dash(self.angles.rmsz, 2),
            self.cbeta.deviations
        )
    }

    /// A multi-line report with the outlier lists.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let r = &self.ramachandran;
        let _ = writeln!(s, "protein residues   {}", self.residues);
        let _ = writeln!(
            s,
            "Ramachandran       {} evaluated: {} favoured ({}%), {} allowed, {} outliers ({}%)",
            r.evaluated,
            r.favoured,
            or_dash(r.favoured_percent, 2),
            r.allowed,
            r.outliers,
            or_dash(r.outliers_percent, 2)
        );
        for o in &r.outlier_list {
            let _ = writeln!(
                s,
                "  outlier {:<16} {:?}  φ {:7.1}  ψ {:7.1}",
                o.residue.to_string(),
                o.class,
                o.phi_deg,
                o.psi_deg
            );
        }
        for (what, report, unit) in [("bonds", &self.bonds, "Å"), ("angles", &self.angles, "°")] {
            let _ = writeln!(
                s,
                "{what:<18} {}: RMSZ {}, {} with |z| > {Z_OUTLIER}",
                report.count,
                or_dash(report.rmsz, 3),
                report.outliers
            );
            for o in &report.worst {
                let _ = writeln!(
                    s,
                    "  {}  {:.3}{unit} (ideal {:.3}{unit}, z {:+.1})",
                    o.atoms.join(" – "),
                    o.value,
                    o.ideal,
                    o.z
                );
            }
        }
        let _ = writeln!(
            s,
            "clashscore         {} ({} clashes among {} heavy atoms; heavy atoms only, no hydrogens)",
            or_dash(self.clashscore, 2),
            self.clashes,
            self.clash_atoms
        );
        for c in &self.worst_clashes {
            let _ = writeln!(
                s,
                "  {} – {}  {:.2} Å, overlap {:.2} Å",
                c.atoms[0], c.atoms[1], c.distance_angstrom, c.overlap_angstrom
            );
        }
        let _ = writeln!(
            s,
            "Cβ deviations      {} of {} ≥ {CBETA_DEVIATION_ANGSTROM} Å (largest {:.3} Å)",
            self.cbeta.deviations, self.cbeta.checked, self.cbeta.max_deviation_angstrom
        );
        for d in &self.cbeta.outliers {
            let _ = writeln!(s, "  {}  {:.3} Å", d.residue, d.deviation_angstrom);
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }
}

/// Ideal bond lengths (Å) and angles (degrees) with their σ, by atom index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdealGeometry {
    pub bonds: Vec<([usize; 2], f64, f64)>,
    pub angles: Vec<([usize; 3], f64, f64)>,
}

/// A structure's topology, ready to validate coordinate sets of its atoms.
#[derive(Clone, Debug)]
pub struct Validator {
    structure: Structure,
    topology: topology::Topology,
    radii: Vec<f64>,
    polar: Vec<bool>,
}

impl Validator {
    /// Learns the topology of `structure`; peptide links, disulfides and ligand bonds are decided
    /// on its first frame.
    pub fn new(structure: &Structure) -> Self {
        Self::with_topology_frame(structure, 0)
    }

    /// As [`Validator::new`], deciding links on frame `frame`.
    pub fn with_topology_frame(structure: &Structure, frame: usize) -> Self {
        let topology = topology::Topology::new(structure, frame);
        Self {
            // Only the atoms are needed later (for labels); frames can be large trajectories.
            structure: Structure {
                name: structure.name.clone(),
                atoms: structure.atoms.clone(),
                frames: Vec::new(),
                info: Default::default(),
            },
            topology,
            radii: structure.atoms.iter().map(|a| vdw_radius(&a.element)).collect(),
            polar: structure
                .atoms
                .iter()
                .map(|a| a.element == "N" || a.element == "O")
                .collect(),
        }
    }

    /// The targets the validation measures against, by atom index: bond lengths (Å) and bond
    /// angles (degrees, the middle index is the vertex), each with its σ.
    pub fn ideal_geometry(&self) -> IdealGeometry {
        IdealGeometry {
            bonds: self
                .topology
                .bonds
                .iter()
                .map(|r| (r.atoms, r.target.ideal, r.target.sigma))
                .collect(),
            angles: self
                .topology
                .angles
                .iter()
                .map(|r| (r.atoms, r.target.ideal, r.target.sigma))
                .collect(),
        }
    }

    /// Protein residues the validator found.
    pub fn protein_residues(&self) -> usize {
        self.topology.residues.iter().filter(|r| r.protein).count()
    }

    /// φ/ψ of every protein residue of `positions`, in file order.
    pub fn dihedrals(&self, positions: &[[f32; 3]]) -> Vec<ResidueDihedrals> {
        let residues = &self.topology.residues;
        (0..residues.len())
            .filter(|&k| residues[k].protein)
            .map(|k| {
                let (phi_deg, psi_deg) = rama::phi_psi(residues, k, positions);
                ResidueDihedrals {
                    residue: residues[k].id.clone(),
                    class: residues[k].class,
                    phi_deg,
                    psi_deg,
                }
            })
            .collect()
    }

    /// Validates `positions`: one per atom of the structure, in the same order.
    pub fn report(&self, positions: &[[f32; 3]]) -> ValidationReport {
        let top = &self.topology;
        let clashes = clash::find_clashes(top, &self.radii, &self.polar, positions);
        let atom_label = |i: usize| {
            let a = &self.structure.atoms[i];
            format!(
                "{}/{}{}{}/{}",
                a.chain_id, a.residue_name, a.residue_number, a.insertion_code, a.name
            )
        };
        let clash_atoms = top.clash_atoms.len();
        ValidationReport {
            residues: self.protein_residues(),
            ramachandran: rama::ramachandran(&top.residues, positions),
            bonds: geometry::bonds(&self.structure, &top.bonds, positions),
            angles: geometry::angles(&self.structure, &top.angles, positions),
            clashscore: (clash_atoms > 0).then(|| 1000.0 * clashes.len() as f64 / clash_atoms as f64),
            clashes: clashes.len(),
            clash_atoms,
            worst_clashes: clashes
                .iter()
                .take(clash::WORST_CLASHES_LISTED)
                .map(|c| Clash {
                    atoms: [atom_label(c.i), atom_label(c.j)],
                    distance_angstrom: c.distance_angstrom,
                    overlap_angstrom: c.overlap_angstrom,
                })
                .collect(),
            cbeta: geometry::cbeta(&top.residues, positions),
            warnings: tables::tables().errors.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Validates frame `frame` of `structure` (an empty report if there is no such frame).
pub fn validate(structure: &Structure, frame: usize) -> ValidationReport {
    let Some(positions) = structure.frames.get(frame) else {
        return ValidationReport::default();
    };
    Validator::with_topology_frame(structure, frame).report(positions)
}
