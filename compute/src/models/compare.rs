//! Model–model comparison on Cα atoms: residues matched by chain and number (or by sequence
//! alignment when numbering differs), RMSD after optimal (Kabsch) superposition, TM-score
//! maximised over superpositions, and Cα lDDT.

use crate::formats::model::Structure;
use crate::geometry::distance;
use crate::geometry::{Mat3, matrix_from_quaternion};

/// One Cα per residue: (chain, number, insertion code) identifies it.
#[derive(Clone, Debug)]
pub struct Residue {
    pub chain_id: String,
    pub number: i32,
    pub insertion_code: String,
    pub name: String,
    pub ca: [f64; 3],
}

/// The Cα atoms of frame `frame`, in file order.
pub fn alpha_carbons(structure: &Structure, frame: usize) -> Vec<Residue> {
    let coords = &structure.frames[frame];
    let mut out: Vec<Residue> = Vec::new();
    for (atom, pos) in structure.atoms.iter().zip(coords) {
        if !atom.is_alpha_carbon() || !(atom.alt_loc.is_empty() || atom.alt_loc == "A") {
            continue;
        }
        out.push(Residue {
            chain_id: atom.chain_id.clone(),
            number: atom.residue_number,
            insertion_code: atom.insertion_code.clone(),
            name: atom.residue_name.clone(),
            ca: pos.map(f64::from),
        });
    }
    out
}

/// Pairs (model index, reference index): by chain and number when most residues match that way,
/// otherwise by a global sequence alignment of residue names.
pub fn match_residues(model: &[Residue], reference: &[Residue]) -> (Vec<(usize, usize)>, MatchMethod) {
    let key = |r: &Residue| (r.chain_id.clone(), r.number, r.insertion_code.clone());
    let index: std::collections::HashMap<_, usize> = reference.iter().enumerate().map(|(i, r)| (key(r), i)).collect();
    let by_number: Vec<(usize, usize)> = model
        .iter()
        .enumerate()
        .filter_map(|(i, r)| index.get(&key(r)).map(|&j| (i, j)))
        .collect();
    let same_name = by_number
        .iter()
        .filter(|&&(i, j)| model[i].name == reference[j].name)
        .count();
    if by_number.len() * 2 >= model.len().min(reference.len()) && same_name * 10 >= by_number.len() * 9 {
        return (by_number, MatchMethod::ChainAndNumber);
    }
    (align_sequences(model, reference), MatchMethod::SequenceAlignment)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum MatchMethod {
    ChainAndNumber,
    SequenceAlignment,
}

/// Needleman–Wunsch on residue names (match 2, mismatch −1, gap −2); returns aligned pairs.
fn align_sequences(a: &[Residue], b: &[Residue]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    let mut score = vec![0i32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in 0..=n {
        score[at(i, 0)] = -2 * i as i32;
    }
    for j in 0..=m {
        score[at(0, j)] = -2 * j as i32;
    }
    for i in 1..=n {
        for j in 1..=m {
            let s = if a[i - 1].name == b[j - 1].name { 2 } else { -1 };
            score[at(i, j)] = (score[at(i - 1, j - 1)] + s)
                .max(score[at(i - 1, j)] - 2)
                .max(score[at(i, j - 1)] - 2);
        }
    }
    let (mut i, mut j) = (n, m);
    let mut pairs = Vec::new();
    while i > 0 && j > 0 {
        let s = if a[i - 1].name == b[j - 1].name { 2 } else { -1 };
        if score[at(i, j)] == score[at(i - 1, j - 1)] + s {
            if s > 0 {
                pairs.push((i - 1, j - 1));
            }
            i -= 1;
            j -= 1;
        } else if score[at(i, j)] == score[at(i - 1, j)] - 2 {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    pairs.reverse();
    pairs
}

/// The rigid motion x ↦ R·x + t.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RigidTransform {
    pub rotation: Mat3,
    pub translation: [f64; 3],
}

impl RigidTransform {
    pub const IDENTITY: Self = Self {
        rotation: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        translation: [0.0; 3],
    };

    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let r = &self.rotation;
        std::array::from_fn(|i| r[i][0] * p[0] + r[i][1] * p[1] + r[i][2] * p[2] + self.translation[i])
    }

    /// The rotation `rotation` about `centre`, followed by the shift that takes `centre` to `to`.
    pub fn rotation_about(rotation: Mat3, centre: [f64; 3], to: [f64; 3]) -> Self {
        let rc = Self {
            rotation,
            translation: [0.0; 3],
        }
        .apply(centre);
        Self {
            rotation,
            translation: [0, 1, 2].map(|k| to[k] - rc[k]),
        }
    }
}

fn centroid(points: &[[f64; 3]]) -> [f64; 3] {
    let n = points.len().max(1) as f64;
    let mut c = [0.0; 3];
    for p in points {
        for k in 0..3 {
            c[k] += p[k] / n;
        }
    }
    c
}

/// The rotation and translation that best superpose `mobile` onto `target` (least squares;
/// Horn's quaternion form of the Kabsch problem, so the result is always a proper rotation).
pub fn superpose(mobile: &[[f64; 3]], target: &[[f64; 3]]) -> RigidTransform {
    let (cm, ct) = (centroid(mobile), centroid(target));
    let mut s = [[0.0f64; 3]; 3];
    for (p, q) in mobile.iter().zip(target) {
        for i in 0..3 {
            for j in 0..3 {
                s[i][j] += (p[i] - cm[i]) * (q[j] - ct[j]);
            }
        }
    }
    let n = [
        [
            s[0][0] + s[1][1] + s[2][2],
            s[1][2] - s[2][1],
            s[2][0] - s[0][2],
            s[0][1] - s[1][0],
        ],
        [
            s[1][2] - s[2][1],
            s[0][0] - s[1][1] - s[2][2],
            s[0][1] + s[1][0],
            s[2][0] + s[0][2],
        ],
        [
            s[2][0] - s[0][2],
            s[0][1] + s[1][0],
            -s[0][0] + s[1][1] - s[2][2],
            s[1][2] + s[2][1],
        ],
        [
            s[0][1] - s[1][0],
            s[2][0] + s[0][2],
            s[1][2] + s[2][1],
            -s[0][0] - s[1][1] + s[2][2],
        ],
    ];
    let [w, x, y, z] = largest_eigenvector(n);
    RigidTransform::rotation_about(matrix_from_quaternion([w, x, y, z]), cm, ct)
}

/// Eigenvector of the largest eigenvalue of a symmetric 4×4 matrix (cyclic Jacobi).
// Row and column indices read as the textbook rotation; iterators would hide it.
#[allow(clippy::needless_range_loop)]
fn largest_eigenvector(mut a: [[f64; 4]; 4]) -> [f64; 4] {
    let mut v = [[0.0; 4]; 4];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for _sweep in 0..50 {
        let off: f64 = (0..4)
            .flat_map(|i| (0..4).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-22 {
            break;
        }
        for p in 0..3 {
            for q in p + 1..4 {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..4 {
                    let (akp, akq) = (a[k][p], a[k][q]);
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for k in 0..4 {
                    let (apk, aqk) = (a[p][k], a[q][k]);
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for row in &mut v {
                    let (vp, vq) = (row[p], row[q]);
                    row[p] = c * vp - s * vq;
                    row[q] = s * vp + c * vq;
                }
            }
        }
    }
    let best = (0..4).fold(0, |b, i| if a[i][i] > a[b][b] { i } else { b });
    std::array::from_fn(|k| v[k][best])
}

/// RMSD of `mobile` to `target` after optimal superposition.
pub fn superposed_rmsd(mobile: &[[f64; 3]], target: &[[f64; 3]]) -> f64 {
    let t = superpose(mobile, target);
    let sum: f64 = mobile
        .iter()
        .zip(target)
        .map(|(&p, &q)| distance(&t.apply(p), &q).powi(2))
        .sum();
    (sum / mobile.len().max(1) as f64).sqrt()
}

/// TM-score normalised by `reference_length`, maximised over superpositions seeded on fragments.
pub fn tm_score(mobile: &[[f64; 3]], target: &[[f64; 3]], reference_length: usize) -> f64 {
    let n = mobile.len();
    if n < 3 || reference_length == 0 {
        return 0.0;
    }
    let l = reference_length as f64;
    let d0 = if reference_length > 21 {
        (1.24 * (l - 15.0).cbrt() - 1.8).max(0.5)
    } else {
        0.5
    };
    let d0_search = d0.clamp(4.5, 8.0);
    let score_of = |t: &RigidTransform| -> f64 {
        mobile
            .iter()
            .zip(target)
            .map(|(&p, &q)| 1.0 / (1.0 + (distance(&t.apply(p), &q) / d0).powi(2)))
            .sum::<f64>()
            / l
    };
    let mut best = 0.0f64;
    let mut fragment = n;
    loop {
        let starts = (n - fragment + 1).min(20);
        let stride = ((n - fragment) / starts.max(1)).max(1);
        for s in (0..=n - fragment).step_by(stride).take(starts) {
            let mut selected: Vec<usize> = (s..s + fragment).collect();
            for _ in 0..20 {
                let sm: Vec<[f64; 3]> = selected.iter().map(|&i| mobile[i]).collect();
                let st: Vec<[f64; 3]> = selected.iter().map(|&i| target[i]).collect();
                let t = superpose(&sm, &st);
                best = best.max(score_of(&t));
                let mut cutoff = d0_search;
                let mut next: Vec<usize> = Vec::new();
                while next.len() < 3 {
                    next = (0..n)
                        .filter(|&i| distance(&t.apply(mobile[i]), &target[i]) < cutoff)
                        .collect();
                    cutoff += 0.5;
                }
                if next == selected {
                    break;
                }
                selected = next;
            }
        }
        if fragment <= 4 {
            break;
        }
        fragment = (fragment / 2).max(4);
    }
    best
}

/// Cα lDDT: the fraction of reference Cα–Cα distances under 15 Å kept within 0.5, 1, 2 and 4 Å,
/// averaged over the four; pairs whose residues are missing from the model count as lost.
pub fn lddt(model: &[Residue], reference: &[Residue], pairs: &[(usize, usize)]) -> f64 {
    let mut model_of_ref: Vec<Option<usize>> = vec![None; reference.len()];
    for &(i, j) in pairs {
        model_of_ref[j] = Some(i);
    }
    let (mut kept, mut total) = (0f64, 0f64);
    for a in 0..reference.len() {
        for b in a + 1..reference.len() {
            let d_ref = distance(&reference[a].ca, &reference[b].ca);
            if d_ref >= 15.0 {
                continue;
            }
            total += 4.0;
            if let (Some(ma), Some(mb)) = (model_of_ref[a], model_of_ref[b]) {
                let diff = (distance(&model[ma].ca, &model[mb].ca) - d_ref).abs();
                kept += [0.5, 1.0, 2.0, 4.0].iter().filter(|&&t| diff < t).count() as f64;
            }
        }
    }
    if total == 0.0 { 0.0 } else { kept / total }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Comparison {
    pub matched_residues: usize,
    pub model_residues: usize,
    pub reference_residues: usize,
    pub match_method: MatchMethod,
    pub ca_rmsd_angstrom: f64,
    pub tm_score: f64,
    pub lddt_ca: f64,
}

/// Compares frame `frame` of `model` with frame 0 of `reference`.
pub fn compare(model: &Structure, frame: usize, reference: &Structure) -> Comparison {
    let m = alpha_carbons(model, frame);
    let r = alpha_carbons(reference, 0);
    let (pairs, match_method) = match_residues(&m, &r);
    let mobile: Vec<[f64; 3]> = pairs.iter().map(|&(i, _)| m[i].ca).collect();
    let target: Vec<[f64; 3]> = pairs.iter().map(|&(_, j)| r[j].ca).collect();
    Comparison {
        matched_residues: pairs.len(),
        model_residues: m.len(),
        reference_residues: r.len(),
        match_method,
        ca_rmsd_angstrom: superposed_rmsd(&mobile, &target),
        tm_score: tm_score(&mobile, &target, r.len()),
        lddt_ca: lddt(&m, &r, &pairs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::relion_matrix;
    use crate::test_shapes::helix;

    #[test]
    fn superpose_recovers_a_known_motion() {
        let target = helix(40);
        let r = relion_matrix(30.0, 70.0, -120.0);
        let moved: Vec<[f64; 3]> = target
            .iter()
            .map(|&p| {
                RigidTransform {
                    rotation: r,
                    translation: [5.0, -3.0, 8.0],
                }
                .apply(p)
            })
            .collect();
        assert!(superposed_rmsd(&moved, &target) < 1e-9);
        assert!((tm_score(&moved, &target, 40) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn tm_score_finds_the_conserved_half() {
        // Half the chain moved rigidly by 20 Å: TM-score near 0.5 (the better half), RMSD large.
        let target = helix(100);
        let mut model = target.clone();
        for p in &mut model[50..] {
            p[0] += 20.0;
        }
        let tm = tm_score(&model, &target, 100);
        assert!(tm > 0.45 && tm < 0.6, "{tm}");
        assert!(superposed_rmsd(&model, &target) > 5.0);
    }

    #[test]
    fn sequence_alignment_matches_renumbered_residues() {
        let names = ["MET", "ARG", "ILE", "ILE", "LEU", "LEU", "GLY", "ALA", "PRO", "GLY"];
        let make = |offset: i32| -> Vec<Residue> {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| Residue {
                    chain_id: "A".into(),
                    number: i as i32 + offset,
                    insertion_code: String::new(),
                    name: (*n).into(),
                    ca: [i as f64 * 3.8, 0.0, 0.0],
                })
                .collect()
        };
        let (pairs, method) = match_residues(&make(101), &make(1));
        assert_eq!(method, MatchMethod::SequenceAlignment);
        assert_eq!(pairs, (0..10).map(|i| (i, i)).collect::<Vec<_>>());
        let (pairs, method) = match_residues(&make(1), &make(1));
        assert_eq!((pairs.len(), method), (10, MatchMethod::ChainAndNumber));
        assert!((lddt(&make(1), &make(1), &pairs) - 1.0).abs() < 1e-12);
    }
}
