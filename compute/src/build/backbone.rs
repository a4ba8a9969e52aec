//! The full backbone from a Cα trace. The peptide between residues i and i+1 (its C, O and the
//! next N) is placed from a library of peptides of real protein chains: each entry holds the
//! pseudo-angles at Cα(i) and Cα(i+1), the pseudo-torsion Cα(i−1..i+2), and the peptide's atoms
//! in two local frames (one built on Cα(i−1), one on Cα(i+2), for chain ends). A query averages
//! its nearest entries (as BBQ and PULCHRA do with their own tables); chain ends get ideal
//! geometry; Cβ is placed ideally from N, CA and C. The restrained refinement against the map
//! then cleans up what the library leaves.

use crate::formats::model::Structure;
use crate::geometry::distance;
use crate::guided::restraints::angle;
use crate::models::validation::ideal::{BackboneKind, dihedral_deg, ideal_cbeta};

/// The peptide's atoms (C(i), O(i), N(i+1)) in a frame.
type PeptideAtoms = [[f64; 3]; 3];

/// One peptide of a real chain.
#[derive(Clone, Debug, PartialEq)]
pub struct PeptideEntry {
    /// Pseudo-angles at Cα(i) and Cα(i+1) and the pseudo-torsion, degrees.
    pub theta_i: f64,
    pub theta_next: f64,
    pub tau: f64,
    /// The atoms in the frame from Cα(i−1) and in the frame from Cα(i+2).
    pub in_frame_before: PeptideAtoms,
    pub in_frame_after: PeptideAtoms,
}

/// The library of peptides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeptideLibrary {
    pub entries: Vec<PeptideEntry>,
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn add_scaled(a: [f64; 3], b: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn unit(a: [f64; 3]) -> [f64; 3] {
    let n = dot(a, a).sqrt().max(1e-12);
    a.map(|v| v / n)
}

/// An orthonormal frame at `origin` with its first axis along `along` and its second in the
/// plane of `along` and `towards`.
struct Frame {
    origin: [f64; 3],
    axes: [[f64; 3]; 3],
}

impl Frame {
    fn new(origin: [f64; 3], along: [f64; 3], towards: [f64; 3]) -> Self {
        let e1 = unit(along);
        let mut perpendicular = add_scaled(towards, e1, -dot(towards, e1));
        // Three Cα in a line (a trace along straight density) leave the plane open: any
        // perpendicular will do, where a zero one would put N, C and O on the Cα–Cα axis.
        if dot(perpendicular, perpendicular) < 1e-6 * dot(towards, towards).max(1e-12) {
            let axis = if e1[0].abs() < 0.9 {
                [1.0, 0.0, 0.0]
            } else {
                [0.0, 1.0, 0.0]
            };
            perpendicular = add_scaled(axis, e1, -dot(axis, e1));
        }
        let e2 = unit(perpendicular);
        Self {
            origin,
            axes: [e1, e2, cross(e1, e2)],
        }
    }

    fn local(&self, p: [f64; 3]) -> [f64; 3] {
        let d = sub(p, self.origin);
        self.axes.map(|a| dot(d, a))
    }

    fn world(&self, l: [f64; 3]) -> [f64; 3] {
        let mut p = self.origin;
        for (a, v) in self.axes.iter().zip(l) {
            p = add_scaled(p, *a, v);
        }
        p
    }
}

/// The frames of the peptide Cα(i) → Cα(i+1): from Cα(i−1) and from Cα(i+2).
fn frame_before(before: [f64; 3], ca: [f64; 3], next: [f64; 3]) -> Frame {
    Frame::new(ca, sub(next, ca), sub(before, ca))
}

fn frame_after(ca: [f64; 3], next: [f64; 3], after: [f64; 3]) -> Frame {
    Frame::new(ca, sub(next, ca), sub(after, next))
}

/// The Cα and backbone atoms of the residues of `structure` (chains in file order; residues
/// with N, CA, C and O).
fn backbone_runs(structure: &Structure) -> Vec<Vec<[[f64; 3]; 4]>> {
    // Residues in file order: (chain, N, CA, C, O) where all four are present.
    let mut residues: Vec<(&str, [[f64; 3]; 4])> = Vec::new();
    let mut current: Option<(&str, i32, &str)> = None;
    let mut atoms: [Option<[f64; 3]>; 4] = [None; 4];
    fn push<'s>(
        chain: Option<&'s str>,
        atoms: &mut [Option<[f64; 3]>; 4],
        residues: &mut Vec<(&'s str, [[f64; 3]; 4])>,
    ) {
        if let (Some(chain), [Some(n), Some(ca), Some(c), Some(o)]) = (chain, *atoms) {
            residues.push((chain, [n, ca, c, o]));
        }
        *atoms = [None; 4];
    }
    for (atom, p) in structure.atoms.iter().zip(&structure.frames[0]) {
        let key = (
            atom.chain_id.as_str(),
            atom.residue_number,
            atom.insertion_code.as_str(),
        );
        if current != Some(key) {
            push(current.map(|c| c.0), &mut atoms, &mut residues);
            current = Some(key);
        }
        let slot = match atom.name.as_str() {
            "N" => 0,
            "CA" => 1,
            "C" => 2,
            "O" => 3,
            _ => continue,
        };
        if atom.alt_loc.is_empty() || atom.alt_loc == "A" {
            atoms[slot] = Some(p.map(f64::from));
        }
    }
    push(current.map(|c| c.0), &mut atoms, &mut residues);
    // A residue continues the run when it is in the same chain and its Cα is a peptide away.
    let mut runs: Vec<Vec<[[f64; 3]; 4]>> = Vec::new();
    for (k, (chain, r)) in residues.iter().enumerate() {
        let continues = k > 0 && residues[k - 1].0 == *chain && distance(&residues[k - 1].1[1], &r[1]) < 4.2;
        if !continues {
            runs.push(Vec::new());
        }
        if let Some(run) = runs.last_mut() {
            run.push(*r);
        }
    }
    runs
}

impl PeptideLibrary {
    /// Peptides of every chain of `structures` with four consecutive residues around them.
    pub fn from_structures(structures: &[Structure]) -> Self {
        let mut entries = Vec::new();
        for s in structures.iter().filter(|s| !s.frames.is_empty()) {
            for run in backbone_runs(s) {
                for i in 1..run.len().saturating_sub(2) {
                    let (before, ca, next, after) = (run[i - 1][1], run[i][1], run[i + 1][1], run[i + 2][1]);
                    let atoms = [run[i][2], run[i][3], run[i + 1][0]];
                    let (fb, fa) = (frame_before(before, ca, next), frame_after(ca, next, after));
                    entries.push(PeptideEntry {
                        theta_i: angle(&before, &ca, &next).to_degrees(),
                        theta_next: angle(&ca, &next, &after).to_degrees(),
                        tau: dihedral_deg(before, ca, next, after),
                        in_frame_before: atoms.map(|p| fb.local(p)),
                        in_frame_after: atoms.map(|p| fa.local(p)),
                    });
                }
            }
        }
        Self { entries }
    }

    /// The library as text: a header line, then one entry per line (3 angles, 9 + 9 coordinates).
    pub fn to_text(&self, provenance: &str) -> String {
        let mut out = format!("# {}\n", provenance.replace('\n', " "));
        out.push_str("# theta_i theta_next tau | C O N(next) in the frame from CA(i-1) | the same from CA(i+2)\n");
        for e in &self.entries {
            let mut values = vec![e.theta_i, e.theta_next, e.tau];
            values.extend(e.in_frame_before.iter().flatten());
            values.extend(e.in_frame_after.iter().flatten());
            let line: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
            out.push_str(&line.join(" "));
            out.push('\n');
        }
        out
    }

    pub fn from_text(text: &str) -> Self {
        let entries = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let v: Vec<f64> = l.split_whitespace().filter_map(|w| w.parse().ok()).collect();
                (v.len() == 21).then(|| {
                    let atoms = |o: usize| std::array::from_fn(|k| [v[o + 3 * k], v[o + 3 * k + 1], v[o + 3 * k + 2]]);
                    PeptideEntry {
                        theta_i: v[0],
                        theta_next: v[1],
                        tau: v[2],
                        in_frame_before: atoms(3),
                        in_frame_after: atoms(12),
                    }
                })
            })
            .collect();
        Self { entries }
    }

    /// The library bundled with cryoforge (`assets/build/peptides.txt`).
    pub fn bundled() -> &'static Self {
        static LIBRARY: std::sync::OnceLock<PeptideLibrary> = std::sync::OnceLock::new();
        LIBRARY.get_or_init(|| Self::from_text(include_str!("../../../assets/build/peptides.txt")))
    }

    /// The medoid of the `k` nearest entries (by the features the query has): the one real
    /// peptide closest to the others. A mean of peptides whose carbonyls point different ways
    /// shrinks the C=O bond (to 0.4 Å on noisy traces); a medoid keeps a peptide's own geometry.
    fn nearest(
        &self,
        theta_i: Option<f64>,
        theta_next: Option<f64>,
        tau: Option<f64>,
        k: usize,
    ) -> Option<PeptideAtoms> {
        let use_before = theta_i.is_some();
        let mut scored: Vec<(f64, &PeptideEntry)> = self
            .entries
            .iter()
            .map(|e| {
                let mut d = 0.0;
                if let Some(t) = theta_i {
                    d += ((t - e.theta_i) / 10.0).powi(2);
                }
                if let Some(t) = theta_next {
                    d += ((t - e.theta_next) / 10.0).powi(2);
                }
                if let Some(t) = tau {
                    let diff = (t - e.tau + 540.0).rem_euclid(360.0) - 180.0;
                    d += (diff / 20.0).powi(2);
                }
                (d, e)
            })
            .collect();
        if scored.is_empty() {
            return None;
        }
        let k = k.min(scored.len());
        scored.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0));
        let atoms: Vec<PeptideAtoms> = scored[..k]
            .iter()
            .map(|(_, e)| {
                if use_before {
                    e.in_frame_before
                } else {
                    e.in_frame_after
                }
            })
            .collect();
        let spread = |p: &PeptideAtoms| -> f64 {
            atoms
                .iter()
                .map(|q| p.iter().zip(q).map(|(x, y)| distance(x, y).powi(2)).sum::<f64>())
                .sum()
        };
        atoms.iter().copied().min_by(|p, q| spread(p).total_cmp(&spread(q)))
    }
}

/// Places atom d from a, b, c: |cd| = `bond` Å, angle b–c–d = `angle_deg`, dihedral a–b–c–d
/// = `torsion_deg` (the NeRF construction).
pub fn place(a: [f64; 3], b: [f64; 3], c: [f64; 3], bond: f64, angle_deg: f64, torsion_deg: f64) -> [f64; 3] {
    let bc = unit(sub(c, b));
    let n = unit(cross(sub(b, a), bc));
    let m = cross(n, bc);
    let (theta, tau) = (angle_deg.to_radians(), torsion_deg.to_radians());
    let d = [
        -bond * theta.cos(),
        bond * theta.sin() * tau.cos(),
        bond * theta.sin() * tau.sin(),
    ];
    let mut p = c;
    for (axis, v) in [bc, m, n].iter().zip(d) {
        p = add_scaled(p, *axis, v);
    }
    p
}

/// A residue's built atoms.
#[derive(Clone, Debug, PartialEq)]
pub struct BuiltResidue {
    pub n: [f64; 3],
    pub ca: [f64; 3],
    pub c: [f64; 3],
    pub o: [f64; 3],
    /// None for glycine.
    pub cb: Option<[f64; 3]>,
}

/// N, CA, C, O (and Cβ where `has_cb`) for a chain of Cα positions.
pub fn build_backbone(library: &PeptideLibrary, ca: &[[f64; 3]], has_cb: &[bool]) -> Vec<BuiltResidue> {
    let m = ca.len();
    // Peptide k joins residues k and k+1: C(k), O(k), N(k+1).
    let mut peptides: Vec<Option<PeptideAtoms>> = vec![None; m.saturating_sub(1)];
    for (k, peptide) in peptides.iter_mut().enumerate() {
        let before = k.checked_sub(1).map(|b| ca[b]);
        let after = ca.get(k + 2).copied();
        let theta_i = before.map(|b| angle(&b, &ca[k], &ca[k + 1]).to_degrees());
        let theta_next = after.map(|a| angle(&ca[k], &ca[k + 1], &a).to_degrees());
        let tau = before.zip(after).map(|(b, a)| dihedral_deg(b, ca[k], ca[k + 1], a));
        *peptide = match (before, after) {
            (Some(b), _) => library
                .nearest(theta_i, theta_next, tau, 8)
                .map(|l| l.map(|p| frame_before(b, ca[k], ca[k + 1]).world(p))),
            (None, Some(a)) => library
                .nearest(None, theta_next, None, 8)
                .map(|l| l.map(|p| frame_after(ca[k], ca[k + 1], a).world(p))),
            (None, None) => None,
        };
    }
    let mut residues: Vec<BuiltResidue> = Vec::with_capacity(m);
    for i in 0..m {
        let from_next = peptides.get(i).copied().flatten();
        let from_previous = i.checked_sub(1).and_then(|p| peptides[p]);
        // Chain ends (or a two-residue trace): ideal geometry from the neighbours there are.
        let c = from_next.map_or_else(
            || {
                let back = if i > 0 {
                    ca[i - 1]
                } else {
                    add_scaled(ca[i], [1.0, 0.0, 0.0], 3.8)
                };
                let side = from_previous.map_or([0.0, 0.0, 1.0], |p| sub(p[2], ca[i]));
                place(add_scaled(ca[i], side, 1.0), back, ca[i], 1.525, 111.0, -60.0)
            },
            |p| p[0],
        );
        let n = from_previous.map_or_else(
            || {
                let ahead = ca
                    .get(i + 1)
                    .copied()
                    .unwrap_or(add_scaled(ca[i], [1.0, 0.0, 0.0], 3.8));
                place(ahead, c, ca[i], 1.458, 111.0, 130.0)
            },
            |p| p[2],
        );
        let o = from_next.map_or_else(|| place(n, ca[i], c, 1.231, 120.5, 180.0), |p| p[1]);
        let kind = if has_cb.get(i).copied().unwrap_or(true) {
            BackboneKind::General
        } else {
            BackboneKind::Glycine
        };
        let cb = (kind != BackboneKind::Glycine).then(|| ideal_cbeta(kind, n, ca[i], c));
        residues.push(BuiltResidue { n, ca: ca[i], c, o, cb });
    }
    residues
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_shapes::adk_1ake as adk;

    #[test]
    fn three_calphas_in_a_line_still_get_a_sound_backbone() {
        let ca: Vec<[f64; 3]> = (0..5).map(|i| [3.8 * f64::from(i), 0.0, 0.0]).collect();
        let built = build_backbone(PeptideLibrary::bundled(), &ca, &[true; 5]);
        for r in &built {
            let cb = r.cb.expect("cb");
            for (name, atom, bond) in [("N", r.n, 1.458), ("C", r.c, 1.525), ("CB", cb, 1.53)] {
                let d = crate::geometry::distance(&atom, &r.ca);
                assert!((d - bond).abs() < 0.3, "CA–{name} {d:.2} Å");
            }
        }
    }

    #[test]
    fn nerf_places_an_atom_at_the_asked_bond_angle_and_torsion() {
        let (a, b, c) = ([1.0, 0.3, 0.0], [0.0, 0.0, 0.0], [0.0, 1.5, 0.2]);
        let d = place(a, b, c, 1.33, 116.0, -60.0);
        assert!((distance(&c, &d) - 1.33).abs() < 1e-9);
        assert!((angle(&b, &c, &d).to_degrees() - 116.0).abs() < 1e-6);
        assert!((dihedral_deg(a, b, c, d) + 60.0).abs() < 1e-6);
    }

    #[test]
    fn the_bundled_library_rebuilds_a_chain_it_never_saw_to_a_few_tenths_of_an_angstrom() {
        let library = PeptideLibrary::bundled();
        assert!(library.entries.len() > 1000, "{}", library.entries.len());
        // 1AKE (adenylate kinase; its family is among the library's, so this checks the construction;
        // scripts/build_targets.py measures built models of held-out families).
        let runs = backbone_runs(&adk());
        let run = &runs[0];
        let ca: Vec<[f64; 3]> = run.iter().map(|r| r[1]).collect();
        let built = build_backbone(library, &ca, &vec![true; ca.len()]);
        let (mut sum, mut count) = (0.0, 0.0);
        for (b, r) in built.iter().zip(run).skip(1).take(run.len() - 2) {
            for (x, y) in [(b.n, r[0]), (b.c, r[2]), (b.o, r[3])] {
                sum += distance(&x, &y).powi(2);
                count += 1.0;
            }
        }
        let rmsd = (sum / count).sqrt();
        eprintln!(
            "backbone N, C, O from Cα: {rmsd:.3} Å RMSD over {} residues",
            run.len() - 2
        );
        assert!(rmsd < 0.6, "{rmsd}");
        // A noisy trace (Cα moved up to 0.3 Å) still gets peptides of real geometry.
        let mut rng = crate::numeric::rng::Rng::new(5);
        let noisy: Vec<[f64; 3]> = ca.iter().map(|p| p.map(|v| v + 0.6 * (rng.uniform() - 0.5))).collect();
        let built = build_backbone(library, &noisy, &vec![true; noisy.len()]);
        for b in &built[..built.len() - 1] {
            let co = distance(&b.c, &b.o);
            assert!((co - 1.23).abs() < 0.06, "C=O {co}");
        }
        // The round trip through text keeps the library.
        let again = PeptideLibrary::from_text(&library.to_text("test"));
        assert_eq!(again.entries.len(), library.entries.len());
    }
}
