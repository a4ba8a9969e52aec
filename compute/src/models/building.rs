//! Model-building metrics (docs/science.md §6, as E3-CryoFold, ModelAngelo and EModelX report
//! them), for a model built into the same map as the reference, so both share one frame: built
//! Cα are matched one to one with reference Cα, nearest pairs first.
//! - coverage: the share of reference Cα with a built Cα within 3 Å;
//! - sequence recall: of those pairs, the share with the same residue type;
//! - RMSD over those pairs;
//! - TM-score of an order-preserving alignment, as TM-align's dynamic programming makes it: the
//!   model's residues in file order (chains one after another) against the reference's, scored
//!   by 1/(1 + (d/d0)²) in the shared frame with TM-align's gap penalty (−0.6), then maximised
//!   over superpositions of the aligned pairs and normalised by the reference length. A trace
//!   that runs the wrong way or jumps between pieces of the chain scores as TM-align scores it;
//! - chain breaks: continuous Cα runs of the model (Cα–Cα ≤ 4.2 Å) beyond the reference's;
//! - false positives: the share of built Cα with no reference Cα within 3 Å.

use std::collections::HashMap;

use crate::formats::model::Structure;
use crate::geometry::distance2;
use crate::models::compare::{Residue, alpha_carbons, tm_score};

/// The metrics of a built model against a reference.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BuildingMetrics {
    pub reference_residues: usize,
    pub model_residues: usize,
    pub coverage: f64,
    pub sequence_recall: f64,
    pub tm_score: f64,
    pub rmsd_angstrom: f64,
    pub chain_breaks: usize,
    pub false_positives: f64,
}

/// One-to-one pairs (model, reference) closer than `cutoff`, nearest first.
fn matched_pairs(model: &[Residue], reference: &[Residue], cutoff: f64) -> Vec<(usize, usize)> {
    let cell = |p: &[f64; 3]| p.map(|v| (v / cutoff).floor() as i64);
    let mut grid: HashMap<[i64; 3], Vec<usize>> = HashMap::new();
    for (j, r) in reference.iter().enumerate() {
        grid.entry(cell(&r.ca)).or_default().push(j);
    }
    let mut candidates = Vec::new();
    for (i, m) in model.iter().enumerate() {
        let [x, y, z] = cell(&m.ca);
        for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    for &j in grid.get(&[x + dx, y + dy, z + dz]).map_or(&[][..], |v| v.as_slice()) {
                        let d2 = distance2(&m.ca, &reference[j].ca);
                        if d2 < cutoff * cutoff {
                            candidates.push((d2, i, j));
                        }
                    }
                }
            }
        }
    }
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut used_model, mut used_reference) = (vec![false; model.len()], vec![false; reference.len()]);
    let mut pairs = Vec::new();
    for (_, i, j) in candidates {
        if !used_model[i] && !used_reference[j] {
            used_model[i] = true;
            used_reference[j] = true;
            pairs.push((i, j));
        }
    }
    pairs
}

/// The order-preserving alignment of model and reference residues that maximises the sum of
/// 1/(1 + (d/d0)²) less 0.6 per gap opened (TM-align's dynamic programming, in the shared frame).
fn ordered_alignment(model: &[Residue], reference: &[Residue]) -> Vec<(usize, usize)> {
    let (m, n) = (model.len(), reference.len());
    if m == 0 || n == 0 {
        return Vec::new();
    }
    let l = n as f64;
    let d0 = if n > 21 {
        (1.24 * (l - 15.0).cbrt() - 1.8).max(0.5)
    } else {
        0.5
    };
    const GAP: f64 = -0.6;
    // score[i][j]: best alignment of model[..i] and reference[..j]; moves: 0 match, 1 skip model
    // residue, 2 skip reference residue (a gap costs when it opens).
    let width = n + 1;
    let mut score = vec![0f64; (m + 1) * width];
    let mut from = vec![0u8; (m + 1) * width];
    for i in 1..=m {
        from[i * width] = 1;
    }
    from[1..=n].iter_mut().for_each(|f| *f = 2);
    for i in 1..=m {
        for j in 1..=n {
            let d2 = distance2(&model[i - 1].ca, &reference[j - 1].ca);
            let matched = score[(i - 1) * width + j - 1] + 1.0 / (1.0 + d2 / (d0 * d0));
            let up = score[(i - 1) * width + j] + if from[(i - 1) * width + j] == 1 { 0.0 } else { GAP };
            let left = score[i * width + j - 1] + if from[i * width + j - 1] == 2 { 0.0 } else { GAP };
            let (best, way) = if matched >= up && matched >= left {
                (matched, 0)
            } else if up >= left {
                (up, 1)
            } else {
                (left, 2)
            };
            score[i * width + j] = best;
            from[i * width + j] = way;
        }
    }
    let (mut i, mut j) = (m, n);
    let mut pairs = Vec::new();
    while i > 0 && j > 0 {
        match from[i * width + j] {
            0 => {
                pairs.push((i - 1, j - 1));
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    pairs.reverse();
    pairs
}

/// Continuous Cα runs: a new run starts at a new chain or after a Cα–Cα step over 4.2 Å.
fn runs(residues: &[Residue]) -> usize {
    let mut count = 0;
    for (k, r) in residues.iter().enumerate() {
        let continues =
            k > 0 && residues[k - 1].chain_id == r.chain_id && distance2(&residues[k - 1].ca, &r.ca) <= 4.2 * 4.2;
        if !continues {
            count += 1;
        }
    }
    count
}

/// The metrics of `model` (frame 0) against `reference` (frame 0), both in the map's frame.
pub fn building_metrics(model: &Structure, reference: &Structure) -> BuildingMetrics {
    let m = alpha_carbons(model, 0);
    let r = alpha_carbons(reference, 0);
    let close = matched_pairs(&m, &r, 3.0);
    let n_ref = r.len().max(1) as f64;
    let same = close.iter().filter(|&&(i, j)| m[i].name == r[j].name).count();
    let rmsd = if close.is_empty() {
        0.0
    } else {
        (close.iter().map(|&(i, j)| distance2(&m[i].ca, &r[j].ca)).sum::<f64>() / close.len() as f64).sqrt()
    };
    let aligned = ordered_alignment(&m, &r);
    let mobile: Vec<[f64; 3]> = aligned.iter().map(|&(i, _)| m[i].ca).collect();
    let target: Vec<[f64; 3]> = aligned.iter().map(|&(_, j)| r[j].ca).collect();
    let false_positive = m.len() - close.len();
    BuildingMetrics {
        reference_residues: r.len(),
        model_residues: m.len(),
        coverage: close.len() as f64 / n_ref,
        sequence_recall: if close.is_empty() {
            0.0
        } else {
            same as f64 / close.len() as f64
        },
        tm_score: tm_score(&mobile, &target, r.len()),
        rmsd_angstrom: rmsd,
        chain_breaks: runs(&m).saturating_sub(runs(&r)),
        false_positives: if m.is_empty() {
            0.0
        } else {
            false_positive as f64 / m.len() as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_shapes::adk_1ake as adk;

    #[test]
    fn a_model_against_itself_and_against_a_broken_shifted_half() {
        let reference = adk();
        let same = building_metrics(&reference, &reference);
        assert_eq!(
            (same.coverage, same.sequence_recall, same.false_positives),
            (1.0, 1.0, 0.0)
        );
        assert!((same.tm_score - 1.0).abs() < 1e-9 && same.rmsd_angstrom < 1e-9);
        assert_eq!(same.chain_breaks, 0);
        // Keep the Cα of residues 1–100 only, rename them all ALA, cut the chain at 50 (a new
        // chain id), and move residues 1–20 100 Å away (no longer covered).
        let mut model = reference.clone();
        let keep: Vec<usize> = (0..model.atoms.len())
            .filter(|&i| model.atoms[i].is_alpha_carbon() && model.atoms[i].residue_number <= 100)
            .collect();
        model.atoms = keep.iter().map(|&i| model.atoms[i].clone()).collect();
        model.frames = vec![keep.iter().map(|&i| reference.frames[0][i]).collect()];
        for (a, p) in model.atoms.iter_mut().zip(model.frames[0].iter_mut()) {
            a.residue_name = "ALA".into();
            if a.residue_number > 50 {
                a.chain_id = "B".into();
            }
            if a.residue_number <= 20 {
                p[0] += 100.0;
            }
        }
        let m = building_metrics(&model, &reference);
        let alanines = reference
            .atoms
            .iter()
            .filter(|a| {
                a.is_alpha_carbon() && a.residue_number > 20 && a.residue_number <= 100 && a.residue_name == "ALA"
            })
            .count();
        assert!((m.coverage - 80.0 / 214.0).abs() < 1e-9, "{m:?}");
        assert!((m.sequence_recall - alanines as f64 / 80.0).abs() < 1e-9, "{m:?}");
        assert!((m.false_positives - 0.2).abs() < 1e-9, "{m:?}");
        assert_eq!(m.chain_breaks, 2, "the cut and the moved piece");
        assert!(m.tm_score > 0.3 && m.tm_score < 0.5, "{m:?}");
    }
}
