//! Heavy-atom clashscore: serious van der Waals overlaps between atoms more than three bonds
//! apart, found with a cell list in O(n).
//!
//! MolProbity's clashscore is computed on a model with hydrogens added (by Reduce) and probe's
//! contact dots; this one sees heavy atoms only (models from maps rarely carry hydrogens), so
//! its numbers are lower and not interchangeable with MolProbity's: a heavy-atom clashscore.

use super::topology::Topology;
use crate::geometry::CellList;

/// An overlap at least this deep is a clash (Å), as in MolProbity.
pub const CLASH_OVERLAP_ANGSTROM: f64 = 0.4;
/// N/O pairs can hydrogen-bond: their contact distance is at most this (Å), so a clash needs
/// d ≤ 2.9 − 0.4 = 2.5 Å.
pub const POLAR_CONTACT_ANGSTROM: f64 = 2.9;
const LARGEST_RADIUS: f64 = 1.8;
/// How many clashes the report lists.
pub const WORST_CLASHES_LISTED: usize = 10;

/// van der Waals radius by element (Å): C 1.70, N 1.55, O 1.40, S 1.80, anything else 1.8. Oxygen
/// takes Probe's 1.40 Å rather than Bondi's 1.52: with Bondi's, the normal O(i)···C(i+1) contact
/// of every peptide (2.7–2.8 Å, four bonds apart) counts as a clash.
pub fn vdw_radius(element: &str) -> f64 {
    match element {
        "C" => 1.70,
        "N" => 1.55,
        "O" => 1.40,
        "S" => 1.80,
        _ => 1.8,
    }
}

/// A clashing pair (atom indices, i < j).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RawClash {
    pub i: usize,
    pub j: usize,
    pub distance_angstrom: f64,
    pub overlap_angstrom: f64,
}

/// Every clash of `positions`, worst (deepest overlap) first.
pub(crate) fn find_clashes(
    topology: &Topology,
    radii: &[f64],
    polar: &[bool],
    positions: &[[f32; 3]],
) -> Vec<RawClash> {
    let reach = 2.0 * LARGEST_RADIUS - CLASH_OVERLAP_ANGSTROM;
    let cells = CellList::new(positions, &topology.clash_atoms, reach);
    let mut clashes = Vec::new();
    for &i in &topology.clash_atoms {
        cells.for_each_near(positions, i, |j, d| {
            if j <= i || topology.excluded[i].binary_search(&(j as u32)).is_ok() {
                return;
            }
            let mut contact = radii[i] + radii[j];
            if polar[i] && polar[j] {
                contact = contact.min(POLAR_CONTACT_ANGSTROM);
            }
            let overlap = contact - d;
            if overlap >= CLASH_OVERLAP_ANGSTROM {
                clashes.push(RawClash {
                    i,
                    j,
                    distance_angstrom: d,
                    overlap_angstrom: overlap,
                });
            }
        });
    }
    clashes.sort_by(|a, b| b.overlap_angstrom.total_cmp(&a.overlap_angstrom));
    clashes
}
