//! Stereochemistry restraints on all heavy atoms of a model, taken from its start (a deposited
//! or predicted structure, whose geometry is protein-like): bond lengths, bond angles, chiral
//! and planar volumes at every atom with three bonded neighbours (Cα chirality, the peptide
//! carbon's planarity, side-chain branches and rings), the peptide ω torsion, the backbone
//! hydrogen bonds of the start's helices and sheets (flat-bottomed, so they may shorten but not
//! break), a soft clash repulsion and, when given, a φ/ψ prior ([`TorsionPrior`]). Every term
//! is a squared z-score, so the sum reads as χ² and the map term is weighed against it as
//! real-space refinement programs do. The guided fit minimises restraints plus its local map
//! term in its final relaxation.

use std::collections::HashMap;

use crate::formats::model::Structure;
use crate::geometry::distance;
use crate::guided::geometry_check::{Topology, close_pairs};

/// The σ of each restraint kind (the z-score's denominator) and the clash weight.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RestraintOptions {
    pub bond_sigma_angstrom: f64,
    pub angle_sigma_degrees: f64,
    /// Chiral and planar volumes, Å³.
    pub volume_sigma: f64,
    pub omega_sigma_degrees: f64,
    /// Backbone O···N hydrogen bonds of the start may stretch by this much before they cost.
    pub hbond_tolerance_angstrom: f64,
    pub hbond_sigma_angstrom: f64,
    /// Atoms apart in the start repel below the smaller of this and their start distance.
    pub clash_contact_angstrom: f64,
    pub clash_sigma_angstrom: f64,
    /// Weight of the φ/ψ prior (its energy is −ln of a density).
    pub torsion_weight: f64,
    /// A start's bond or angle further than this many σ from the ideal value is restrained to
    /// the ideal value instead ([`Restraints::with_ideal_outliers`]); 0 restrains every bond and
    /// angle the validation knows to its ideal value.
    #[serde(default = "default_ideal_outlier_z")]
    pub ideal_outlier_z: f64,
}

fn default_ideal_outlier_z() -> f64 {
    IDEAL_OUTLIER_Z
}

impl Default for RestraintOptions {
    fn default() -> Self {
        Self {
            bond_sigma_angstrom: 0.02,
            angle_sigma_degrees: 2.0,
            volume_sigma: 0.2,
            omega_sigma_degrees: 5.0,
            hbond_tolerance_angstrom: 0.3,
            hbond_sigma_angstrom: 0.2,
            clash_contact_angstrom: 3.2,
            clash_sigma_angstrom: 0.05,
            torsion_weight: 5.0,
            ideal_outlier_z: IDEAL_OUTLIER_Z,
        }
    }
}

/// A prior on a residue's backbone torsions: energy and its derivatives in φ and ψ (radians).
pub trait TorsionPrior: Send + Sync {
    /// `class` is what [`TorsionPrior::class_of`] said for the residue.
    fn energy(&self, class: u8, phi: f64, psi: f64) -> (f64, f64, f64);
    /// The residue's class from its name and the next residue's (pre-proline).
    fn class_of(&self, residue_name: &str, next_residue_name: Option<&str>) -> u8;
}

/// The energy of each restraint kind at one set of coordinates (χ² units).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RestraintEnergies {
    pub bonds: f64,
    pub angles: f64,
    pub volumes: f64,
    pub omega: f64,
    pub hbonds: f64,
    pub clashes: f64,
    pub torsions: f64,
}

impl RestraintEnergies {
    pub fn total(&self) -> f64 {
        self.bonds + self.angles + self.volumes + self.omega + self.hbonds + self.clashes + self.torsions
    }
}

struct Backbone {
    /// C(i−1), N, CA, C, N(i+1) of one residue, and its class for the torsion prior.
    atoms: [usize; 5],
    class: u8,
}

/// The restraints of one model, built from its start coordinates.
pub struct Restraints {
    options: RestraintOptions,
    start: Vec<[f64; 3]>,
    bonds: Vec<(usize, usize, f64)>,
    angles: Vec<([usize; 3], f64)>,
    volumes: Vec<([usize; 4], f64)>,
    omegas: Vec<([usize; 4], f64)>,
    hbonds: Vec<(usize, usize, f64)>,
    topology: Topology,
    backbones: Vec<Backbone>,
    torsion_prior: Option<std::sync::Arc<dyn TorsionPrior>>,
}

const BOND_ANGSTROM: f64 = 2.1;

/// A start's bond or angle further than this many σ from the ideal value is restrained to the
/// ideal value instead ([`Restraints::with_ideal_outliers`]).
pub const IDEAL_OUTLIER_Z: f64 = 3.0;
/// A start whose bond RMSZ against the ideal values exceeds this (the fit's own geometry target)
/// takes every target from the ideal values. On EMD-3488 with 4HHB (bond RMSZ 13) as the start,
/// the fit's bond RMSZ falls from 2.00 to 1.35; on the AdK starts (0.84) ideal values everywhere
/// cost accuracy (5 Å closed → open 0.47 → 0.77 Å), so a good start keeps its own values.
pub const POOR_START_BOND_RMSZ: f64 = 1.5;
const HBOND_ANGSTROM: f64 = 3.5;

/// Residues in order: (chain, number, insertion code, segment) runs of atom indices.
fn residue_runs(structure: &Structure) -> Vec<Vec<usize>> {
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let key = |i: usize| {
        let a = &structure.atoms[i];
        (&a.chain_id, a.residue_number, &a.insertion_code, &a.segment)
    };
    for i in 0..structure.atoms.len() {
        match runs.last_mut() {
            Some(run) if key(run[0]) == key(i) => run.push(i),
            _ => runs.push(vec![i]),
        }
    }
    runs
}

impl Restraints {
    /// Restraints of `structure`'s atoms (in order) at the coordinates `start`.
    pub fn from_start(structure: &Structure, start: &[[f64; 3]], options: RestraintOptions) -> Self {
        let bonds = close_pairs(start, BOND_ANGSTROM);
        let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); start.len()];
        for &(i, j, _) in &bonds {
            neighbours[i].push(j);
            neighbours[j].push(i);
        }
        let mut angles = Vec::new();
        let mut volumes = Vec::new();
        for (centre, list) in neighbours.iter().enumerate() {
            for (n, &a) in list.iter().enumerate() {
                for &c in &list[n + 1..] {
                    angles.push(([a, centre, c], angle(&start[a], &start[centre], &start[c])));
                }
            }
            if let [a, b, d] = list[..] {
                let ids = [a, b, centre, d];
                volumes.push((ids, chiral_volume(start, ids)));
            }
        }
        let runs = residue_runs(structure);
        let find = |run: &[usize], name: &str| run.iter().copied().find(|&i| structure.atoms[i].name == name);
        let bonded = |a: usize, b: usize| distance(&start[a], &start[b]) < BOND_ANGSTROM;
        let mut omegas = Vec::new();
        let mut backbones = Vec::new();
        let mut residue_of_n = HashMap::new();
        let mut residue_of_o = HashMap::new();
        for (r, run) in runs.iter().enumerate() {
            let (Some(n), Some(ca), Some(c)) = (find(run, "N"), find(run, "CA"), find(run, "C")) else {
                continue;
            };
            residue_of_n.insert(n, r);
            if let Some(o) = find(run, "O") {
                residue_of_o.insert(o, r);
            }
            let previous_c = r
                .checked_sub(1)
                .and_then(|p| find(&runs[p], "C"))
                .filter(|&pc| bonded(pc, n));
            let next = runs.get(r + 1);
            let next_n = next.and_then(|q| find(q, "N")).filter(|&nn| bonded(c, nn));
            if let (Some(nn), Some(next_ca)) = (next_n, next.and_then(|q| find(q, "CA"))) {
                let ids = [ca, c, nn, next_ca];
                omegas.push((ids, dihedral(start, ids).0));
            }
            if let (Some(pc), Some(nn)) = (previous_c, next_n) {
                backbones.push(Backbone {
                    atoms: [pc, n, ca, c, nn],
                    class: 0,
                });
            }
        }
        let mut hbonds = Vec::new();
        for (o, n, d) in close_pairs(start, HBOND_ANGSTROM) {
            for (o, n) in [(o, n), (n, o)] {
                if let (Some(&ro), Some(&rn)) = (residue_of_o.get(&o), residue_of_n.get(&n))
                    && ro.abs_diff(rn) >= 3
                {
                    hbonds.push((o, n, d));
                }
            }
        }
        let mut restraints = Self {
            topology: Topology::of(start),
            options,
            start: start.to_vec(),
            bonds,
            angles,
            volumes,
            omegas,
            hbonds,
            backbones,
            torsion_prior: None,
        };
        restraints.class_backbones(structure);
        restraints
    }

    /// Replaces the start's bond lengths and angles by ideal ones where the start's differ from
    /// them by more than `z` σ, and adds the bonds and angles of the residue templates that the
    /// start has broken (atoms further apart than a bond): a start with poor geometry (an old
    /// crystal structure) is not held to its own errors, while a good one keeps its own values.
    pub fn with_ideal_outliers(mut self, ideal: &crate::models::validation::IdealGeometry, z: f64) -> Self {
        let key2 = |a: usize, b: usize| (a.min(b), a.max(b));
        let mut present: HashMap<(usize, usize), usize> = self
            .bonds
            .iter()
            .enumerate()
            .map(|(k, &(i, j, _))| (key2(i, j), k))
            .collect();
        let mut added = false;
        for &([a, b], v, s) in &ideal.bonds {
            match present.get(&key2(a, b)) {
                Some(&k) if (self.bonds[k].2 - v).abs() > z * s => self.bonds[k].2 = v,
                Some(_) => {}
                None if a != b => {
                    present.insert(key2(a, b), self.bonds.len());
                    let (i, j) = key2(a, b);
                    self.bonds.push((i, j, v));
                    added = true;
                }
                None => {}
            }
        }
        let key3 = |a: usize, b: usize, c: usize| (a.min(c), b, a.max(c));
        let present: HashMap<(usize, usize, usize), usize> = self
            .angles
            .iter()
            .enumerate()
            .map(|(k, &([a, b, c], _))| (key3(a, b, c), k))
            .collect();
        for &([a, b, c], v, s) in &ideal.angles {
            let (v, s) = (v.to_radians(), s.to_radians());
            match present.get(&key3(a, b, c)) {
                Some(&k) if (self.angles[k].1 - v).abs() > z * s => self.angles[k].1 = v,
                Some(_) => {}
                None => self.angles.push(([a, b, c], v)),
            }
        }
        if added {
            // Atoms bonded now are no longer pushed apart as a clash.
            self.topology = Topology::from_bonds(self.bonds.clone());
        }
        self
    }

    /// Keeps only the bonds and angles of the residue templates and chain links (`ideal`), and no
    /// hydrogen bonds: for a model built from nothing, where atoms of two fragments within a bond's
    /// length of each other are a clash to push apart, not a bond to keep as it is.
    pub fn with_template_bonds_only(mut self, ideal: &crate::models::validation::IdealGeometry) -> Self {
        let key2 = |a: usize, b: usize| (a.min(b), a.max(b));
        let key3 = |[a, b, c]: [usize; 3]| (a.min(c), b, a.max(c));
        let bonds: std::collections::HashSet<(usize, usize)> =
            ideal.bonds.iter().map(|&([a, b], _, _)| key2(a, b)).collect();
        let angles: std::collections::HashSet<(usize, usize, usize)> =
            ideal.angles.iter().map(|&(abc, _, _)| key3(abc)).collect();
        self.bonds.retain(|&(i, j, _)| bonds.contains(&key2(i, j)));
        self.angles.retain(|&(abc, _)| angles.contains(&key3(abc)));
        self.hbonds.clear();
        self.topology = Topology::from_bonds(self.bonds.clone());
        self
    }

    /// Adds a φ/ψ prior (a Ramachandran density) to the restraints.
    pub fn with_torsion_prior(mut self, prior: std::sync::Arc<dyn TorsionPrior>, structure: &Structure) -> Self {
        self.torsion_prior = Some(prior);
        self.class_backbones(structure);
        self
    }

    fn class_backbones(&mut self, structure: &Structure) {
        let Some(prior) = &self.torsion_prior else {
            return;
        };
        for b in &mut self.backbones {
            let name = &structure.atoms[b.atoms[2]].residue_name;
            let next = &structure.atoms[b.atoms[4]].residue_name;
            b.class = prior.class_of(name, Some(next));
        }
    }

    /// How many restraints of each kind: bonds, angles, volumes, ω, hydrogen bonds, φ/ψ pairs.
    pub fn counts(&self) -> [usize; 6] {
        [
            self.bonds.len(),
            self.angles.len(),
            self.volumes.len(),
            self.omegas.len(),
            self.hbonds.len(),
            if self.torsion_prior.is_some() {
                self.backbones.len()
            } else {
                0
            },
        ]
    }

    /// The restraint energy at `x` (flat xyz), its gradient added into `gradient`.
    pub fn energy(&self, x: &[f64], gradient: &mut [f64]) -> RestraintEnergies {
        let p: Vec<[f64; 3]> = x.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        let mut g = vec![[0.0; 3]; p.len()];
        let o = &self.options;
        let mut e = RestraintEnergies::default();
        let wb = 1.0 / o.bond_sigma_angstrom.powi(2);
        for &(i, j, d0) in &self.bonds {
            e.bonds += stretch(&p, &mut g, i, j, d0, wb, Bound::Both);
        }
        let wa = 1.0 / o.angle_sigma_degrees.to_radians().powi(2);
        for &(ids, theta0) in &self.angles {
            let (theta, d) = angle_gradient(&p, ids);
            let dev = theta - theta0;
            e.angles += wa * dev * dev;
            for (k, &i) in ids.iter().enumerate() {
                add(&mut g[i], d[k], 2.0 * wa * dev);
            }
        }
        let wv = 1.0 / o.volume_sigma.powi(2);
        for &(ids, v0) in &self.volumes {
            let v = chiral_volume(&p, ids);
            let dev = v - v0;
            e.volumes += wv * dev * dev;
            for (k, d) in chiral_gradient(&p, ids).iter().enumerate() {
                add(&mut g[ids[k]], *d, 2.0 * wv * dev);
            }
        }
        let wo = 1.0 / o.omega_sigma_degrees.to_radians().powi(2);
        for &(ids, w0) in &self.omegas {
            let (w, d) = dihedral(&p, ids);
            let dev = wrap(w - w0);
            e.omega += wo * dev * dev;
            for (k, &i) in ids.iter().enumerate() {
                add(&mut g[i], d[k], 2.0 * wo * dev);
            }
        }
        let wh = 1.0 / o.hbond_sigma_angstrom.powi(2);
        for &(i, j, d0) in &self.hbonds {
            e.hbonds += stretch(&p, &mut g, i, j, d0 + o.hbond_tolerance_angstrom, wh, Bound::Upper);
        }
        let (clash, clash_gradient) = self.topology.repulsion(&self.start, &p, o.clash_contact_angstrom);
        let wc = 1.0 / o.clash_sigma_angstrom.powi(2);
        e.clashes = wc * clash;
        for (gi, ci) in g.iter_mut().zip(&clash_gradient) {
            add(gi, *ci, wc);
        }
        if let Some(prior) = &self.torsion_prior {
            for b in &self.backbones {
                let [pc, n, ca, c, nn] = b.atoms;
                let (phi, dphi) = dihedral(&p, [pc, n, ca, c]);
                let (psi, dpsi) = dihedral(&p, [n, ca, c, nn]);
                let (energy, de_dphi, de_dpsi) = prior.energy(b.class, phi, psi);
                e.torsions += o.torsion_weight * energy;
                for (k, &i) in [pc, n, ca, c].iter().enumerate() {
                    add(&mut g[i], dphi[k], o.torsion_weight * de_dphi);
                }
                for (k, &i) in [n, ca, c, nn].iter().enumerate() {
                    add(&mut g[i], dpsi[k], o.torsion_weight * de_dpsi);
                }
            }
        }
        for (out, gi) in gradient.chunks_exact_mut(3).zip(&g) {
            for k in 0..3 {
                out[k] += gi[k];
            }
        }
        e
    }

    /// Backbone φ and ψ (radians) of every residue with both neighbours bonded, in chain order.
    pub fn backbone_torsions(&self, positions: &[[f64; 3]]) -> Vec<(f64, f64)> {
        self.backbones
            .iter()
            .map(|b| {
                let [pc, n, ca, c, nn] = b.atoms;
                (
                    dihedral(positions, [pc, n, ca, c]).0,
                    dihedral(positions, [n, ca, c, nn]).0,
                )
            })
            .collect()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Bound {
    Both,
    Upper,
}

/// w·(d − d0)² (or only when d > d0 for an upper bound), its gradient added into `g`.
fn stretch(p: &[[f64; 3]], g: &mut [[f64; 3]], i: usize, j: usize, d0: f64, w: f64, bound: Bound) -> f64 {
    let d = distance(&p[i], &p[j]);
    let dev = d - d0;
    if d < 1e-9 || (bound == Bound::Upper && dev <= 0.0) {
        return 0.0;
    }
    let f = 2.0 * w * dev / d;
    for k in 0..3 {
        let v = f * (p[i][k] - p[j][k]);
        g[i][k] += v;
        g[j][k] -= v;
    }
    w * dev * dev
}

fn add(g: &mut [f64; 3], d: [f64; 3], scale: f64) {
    for k in 0..3 {
        g[k] += scale * d[k];
    }
}

fn sub(a: &[f64; 3], b: &[f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: &[f64; 3], b: &[f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn scaled(a: &[f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// The angle at `b` (radians).
pub fn angle(a: &[f64; 3], b: &[f64; 3], c: &[f64; 3]) -> f64 {
    let (u, v) = (sub(a, b), sub(c, b));
    let s = cross(&u, &v);
    dot(&s, &s).sqrt().atan2(dot(&u, &v))
}

/// The angle at the middle atom and its gradient with respect to the three atoms.
fn angle_gradient(p: &[[f64; 3]], [a, b, c]: [usize; 3]) -> (f64, [[f64; 3]; 3]) {
    let (u, v) = (sub(&p[a], &p[b]), sub(&p[c], &p[b]));
    let (lu, lv) = (dot(&u, &u).sqrt(), dot(&v, &v).sqrt());
    let theta = angle(&p[a], &p[b], &p[c]);
    let sin = theta.sin();
    if lu < 1e-9 || lv < 1e-9 || sin.abs() < 1e-6 {
        return (theta, [[0.0; 3]; 3]);
    }
    let (uh, vh) = (scaled(&u, 1.0 / lu), scaled(&v, 1.0 / lv));
    let cos = theta.cos();
    let da = scaled(&sub(&vh, &scaled(&uh, cos)), -1.0 / (lu * sin));
    let dc = scaled(&sub(&uh, &scaled(&vh, cos)), -1.0 / (lv * sin));
    let db = [-da[0] - dc[0], -da[1] - dc[1], -da[2] - dc[2]];
    (theta, [da, db, dc])
}

/// (a − c)·((b − c) × (d − c)) for atoms [a, b, c, d], c the centre.
fn chiral_volume(p: &[[f64; 3]], [a, b, c, d]: [usize; 4]) -> f64 {
    dot(&sub(&p[a], &p[c]), &cross(&sub(&p[b], &p[c]), &sub(&p[d], &p[c])))
}

fn chiral_gradient(p: &[[f64; 3]], [a, b, c, d]: [usize; 4]) -> [[f64; 3]; 4] {
    let (u, v, w) = (sub(&p[a], &p[c]), sub(&p[b], &p[c]), sub(&p[d], &p[c]));
    let (da, db, dd) = (cross(&v, &w), cross(&w, &u), cross(&u, &v));
    let dc = [-da[0] - db[0] - dd[0], -da[1] - db[1] - dd[1], -da[2] - db[2] - dd[2]];
    [da, db, dc, dd]
}

/// The torsion angle of four atoms (radians, IUPAC sign) and its gradient with respect to each.
pub fn dihedral(p: &[[f64; 3]], [i, j, k, l]: [usize; 4]) -> (f64, [[f64; 3]; 4]) {
    let f = sub(&p[i], &p[j]);
    let g = sub(&p[j], &p[k]);
    let h = sub(&p[l], &p[k]);
    let a = cross(&f, &g);
    let b = cross(&h, &g);
    let (a2, b2) = (dot(&a, &a), dot(&b, &b));
    let lg = dot(&g, &g).sqrt();
    if a2 < 1e-12 || b2 < 1e-12 || lg < 1e-9 {
        return (0.0, [[0.0; 3]; 4]);
    }
    let phi = dot(&cross(&b, &a), &g).atan2(lg * dot(&a, &b));
    let d1 = scaled(&a, -lg / a2);
    let d4 = scaled(&b, lg / b2);
    let fg = dot(&f, &g) / (a2 * lg);
    let hg = dot(&h, &g) / (b2 * lg);
    let d2 = [
        -d1[0] + fg * a[0] - hg * b[0],
        -d1[1] + fg * a[1] - hg * b[1],
        -d1[2] + fg * a[2] - hg * b[2],
    ];
    let d3 = [
        -d4[0] - fg * a[0] + hg * b[0],
        -d4[1] - fg * a[1] + hg * b[1],
        -d4[2] - fg * a[2] + hg * b[2],
    ];
    (phi, [d1, d2, d3, d4])
}

/// An angle difference folded into (−π, π].
pub fn wrap(a: f64) -> f64 {
    let t = std::f64::consts::TAU;
    a - t * ((a + std::f64::consts::PI) / t).floor()
}

#[cfg(test)]
#[path = "restraints_tests.rs"]
mod tests;
