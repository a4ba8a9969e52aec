//! Geometry sanity of a moved model against its start: covalent bond lengths (pairs closer than
//! 2.1 Å in the start model) and clashes (heavy atoms closer than 2.2 Å that are neither bonded
//! nor share a bonded neighbour).

use std::collections::{HashMap, HashSet};

use crate::geometry::distance;

/// Bonds and clashes of one set of coordinates.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeometryReport {
    pub bonds: usize,
    /// RMS and largest deviation of bond lengths from the start model's (Å).
    pub bond_rmsd_angstrom: f64,
    pub bond_max_deviation_angstrom: f64,
    /// Bonds stretched or compressed by more than 0.2 Å.
    pub bonds_off_by_0_2_angstrom: usize,
    pub clashes: usize,
}

const BOND_ANGSTROM: f64 = 2.1;
const CLASH_ANGSTROM: f64 = 2.2;

/// The covalent topology of a start model, to check later coordinates against.
pub struct Topology {
    bonds: Vec<(usize, usize, f64)>,
    /// Pairs never counted as clashes (bonded, or 1–3 through a shared atom).
    excluded: HashSet<(usize, usize)>,
}

/// Pairs (i < j) closer than `cutoff`, by a cell list.
pub(crate) fn close_pairs(positions: &[[f64; 3]], cutoff: f64) -> Vec<(usize, usize, f64)> {
    let cell = |p: &[f64; 3]| p.map(|v| (v / cutoff).floor() as i64);
    let mut cells: HashMap<[i64; 3], Vec<usize>> = HashMap::new();
    for (i, p) in positions.iter().enumerate() {
        if p.iter().all(|v| v.is_finite()) {
            cells.entry(cell(p)).or_default().push(i);
        }
    }
    let mut out = Vec::new();
    for (i, p) in positions.iter().enumerate() {
        if !p.iter().all(|v| v.is_finite()) {
            continue;
        }
        let c = cell(p);
        for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    let Some(list) = cells.get(&[c[0] + dx, c[1] + dy, c[2] + dz]) else {
                        continue;
                    };
                    for &j in list {
                        if j > i {
                            let d = distance(p, &positions[j]);
                            if d < cutoff {
                                out.push((i, j, d));
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

impl Topology {
    pub fn of(start: &[[f64; 3]]) -> Self {
        Self::from_bonds(close_pairs(start, BOND_ANGSTROM))
    }

    /// The topology of given bonds (i < j, with their lengths).
    pub fn from_bonds(bonds: Vec<(usize, usize, f64)>) -> Self {
        let mut neighbours: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut excluded = HashSet::new();
        for &(i, j, _) in &bonds {
            neighbours.entry(i).or_default().push(j);
            neighbours.entry(j).or_default().push(i);
            excluded.insert((i, j));
        }
        for list in neighbours.values() {
            for &a in list {
                for &b in list {
                    if a < b {
                        excluded.insert((a, b));
                    }
                }
            }
        }
        Self { bonds, excluded }
    }

    /// A soft repulsion between atoms closer than their target t = min(`contact`, start distance
    /// − 0.1 Å): E = Σ (t − d)² over such pairs (bonded and 1–3 pairs excluded), and ∂E/∂x. Pairs
    /// already in contact in the start keep their start distance as the floor.
    pub fn repulsion(&self, start: &[[f64; 3]], positions: &[[f64; 3]], contact: f64) -> (f64, Vec<[f64; 3]>) {
        let mut gradient = vec![[0.0; 3]; positions.len()];
        let mut energy = 0.0;
        for (i, j, d) in close_pairs(positions, contact) {
            if self.excluded.contains(&(i, j)) || d <= 1e-9 {
                continue;
            }
            let target = contact.min(distance(&start[i], &start[j]) - 0.1);
            if d >= target {
                continue;
            }
            energy += (target - d).powi(2);
            // ∂E/∂x_i = −2(t − d)·(x_i − x_j)/d.
            let f = -2.0 * (target - d) / d;
            for k in 0..3 {
                let g = f * (positions[i][k] - positions[j][k]);
                gradient[i][k] += g;
                gradient[j][k] -= g;
            }
        }
        (energy, gradient)
    }

    pub fn check(&self, positions: &[[f64; 3]]) -> GeometryReport {
        let mut sum2 = 0.0;
        let mut max = 0.0f64;
        let mut off = 0;
        for &(i, j, length) in &self.bonds {
            let dev = (distance(&positions[i], &positions[j]) - length).abs();
            sum2 += dev * dev;
            max = max.max(dev);
            off += usize::from(dev > 0.2);
        }
        let clashes = close_pairs(positions, CLASH_ANGSTROM)
            .iter()
            .filter(|(i, j, _)| !self.excluded.contains(&(*i, *j)))
            .count();
        GeometryReport {
            bonds: self.bonds.len(),
            bond_rmsd_angstrom: if self.bonds.is_empty() {
                0.0
            } else {
                (sum2 / self.bonds.len() as f64).sqrt()
            },
            bond_max_deviation_angstrom: max,
            bonds_off_by_0_2_angstrom: off,
            clashes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretched_bonds_and_overlapping_atoms_are_counted() {
        // A zig-zag chain of 1.5 Å bonds and a separate atom far away.
        let mut start: Vec<[f64; 3]> = (0..10)
            .map(|i| [1.3 * i as f64, if i % 2 == 0 { 0.0 } else { 0.75 }, 0.0])
            .collect();
        start.push([0.0, 10.0, 0.0]);
        let topology = Topology::of(&start);
        assert_eq!(topology.bonds.len(), 9);
        assert_eq!(
            topology.check(&start),
            GeometryReport {
                bonds: 9,
                clashes: 0,
                ..GeometryReport::default()
            }
        );
        let mut moved = start.clone();
        moved[9][0] += 0.5;
        moved[10] = [1.3 * 5.0, 2.6, 0.0];
        let report = topology.check(&moved);
        assert_eq!(report.bonds_off_by_0_2_angstrom, 1);
        assert!(report.bond_max_deviation_angstrom > 0.3);
        assert_eq!(report.clashes, 1, "{report:?}");

        // Only the new contact repels, and its gradient matches finite differences.
        let (energy, gradient) = topology.repulsion(&start, &moved, 3.0);
        assert!(energy > 0.0);
        assert!(gradient[0].iter().all(|g| *g == 0.0), "bonded neighbours do not repel");
        let h = 1e-6;
        for k in 0..3 {
            let mut plus = moved.clone();
            plus[10][k] += h;
            let mut minus = moved.clone();
            minus[10][k] -= h;
            let fd = (topology.repulsion(&start, &plus, 3.0).0 - topology.repulsion(&start, &minus, 3.0).0) / (2.0 * h);
            assert!(
                (fd - gradient[10][k]).abs() < 1e-5,
                "axis {k}: {fd} vs {}",
                gradient[10][k]
            );
        }
        assert_eq!(
            topology.repulsion(&start, &start, 3.0).0,
            0.0,
            "the start repels nothing"
        );
    }
}
