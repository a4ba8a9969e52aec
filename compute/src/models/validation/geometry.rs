//! Covalent geometry: bond and angle z-scores against their targets (RMSZ, |z| > 4 outliers)
//! and Cβ deviations from the ideal Cβ.

use super::ideal::{self, Vec3};
use super::topology::{Residue, Restraint};
use super::{CbetaDeviation, CbetaReport, RestraintOutlier, RestraintReport};
use crate::formats::model::Structure;

/// σ floors: refined structures sit so close to their restraint targets that the corpus spread
/// of some side-chain bonds (aromatic rings) is a few thousandths of an Å; without a floor an
/// ordinary model would score huge z-scores there.
pub const BOND_SIGMA_FLOOR_ANGSTROM: f64 = 0.01;
pub const ANGLE_SIGMA_FLOOR_DEG: f64 = 1.0;
/// |z| above this is an outlier.
pub const Z_OUTLIER: f64 = 4.0;
/// Cβ this far from ideal is a deviation, as MolProbity counts them (Å).
pub const CBETA_DEVIATION_ANGSTROM: f64 = 0.25;
/// How many of the worst restraints a report lists.
pub const WORST_LISTED: usize = 10;

fn at(positions: &[[f32; 3]], i: usize) -> Option<Vec3> {
    let p = positions.get(i)?.map(f64::from);
    p.iter().all(|c| c.is_finite()).then_some(p)
}

fn label(structure_atoms: &[crate::formats::model::Atom], i: usize) -> String {
    structure_atoms.get(i).map_or_else(String::new, |a| {
        format!(
            "{}/{}{}{}/{}",
            a.chain_id, a.residue_name, a.residue_number, a.insertion_code, a.name
        )
    })
}

/// RMSZ and outliers of restraints measured by `measure`.
fn summarise<const N: usize>(
    structure: &Structure,
    restraints: &[Restraint<N>],
    positions: &[[f32; 3]],
    floor: f64,
    measure: impl Fn([Vec3; N]) -> f64,
) -> RestraintReport {
    let mut sum_z2 = 0.0;
    let mut count = 0;
    let mut worst: Vec<RestraintOutlier> = Vec::new();
    for r in restraints {
        let Some(points) = r.atoms.iter().map(|&i| at(positions, i)).collect::<Option<Vec<_>>>() else {
            continue;
        };
        let Ok(points) = <[Vec3; N]>::try_from(points) else {
            continue;
        };
        let value = measure(points);
        let z = (value - r.target.ideal) / r.target.sigma.max(floor);
        sum_z2 += z * z;
        count += 1;
        if z.abs() > Z_OUTLIER {
            worst.push(RestraintOutlier {
                atoms: r.atoms.iter().map(|&i| label(&structure.atoms, i)).collect(),
                value,
                ideal: r.target.ideal,
                z,
            });
        }
    }
    let outliers = worst.len();
    worst.sort_by(|a, b| b.z.abs().total_cmp(&a.z.abs()));
    worst.truncate(WORST_LISTED);
    RestraintReport {
        count,
        rmsz: (count > 0).then(|| (sum_z2 / count as f64).sqrt()),
        outliers,
        worst,
    }
}

pub(crate) fn bonds(structure: &Structure, restraints: &[Restraint<2>], positions: &[[f32; 3]]) -> RestraintReport {
    summarise(structure, restraints, positions, BOND_SIGMA_FLOOR_ANGSTROM, |[a, b]| {
        ideal::norm(ideal::sub(a, b))
    })
}

pub(crate) fn angles(structure: &Structure, restraints: &[Restraint<3>], positions: &[[f32; 3]]) -> RestraintReport {
    summarise(structure, restraints, positions, ANGLE_SIGMA_FLOOR_DEG, |[a, b, c]| {
        ideal::angle_deg(a, b, c)
    })
}

pub(crate) fn cbeta(residues: &[Residue], positions: &[[f32; 3]]) -> CbetaReport {
    let mut report = CbetaReport::default();
    for r in residues {
        if !r.protein || r.kind == ideal::BackboneKind::Glycine {
            continue;
        }
        let get = |name: &str| r.atom(name).and_then(|i| at(positions, i));
        let (Some(n), Some(ca), Some(c), Some(cb)) = (get("N"), get("CA"), get("C"), get("CB")) else {
            continue;
        };
        let deviation = ideal::norm(ideal::sub(ideal::ideal_cbeta(r.kind, n, ca, c), cb));
        report.checked += 1;
        report.max_deviation_angstrom = report.max_deviation_angstrom.max(deviation);
        if deviation >= CBETA_DEVIATION_ANGSTROM {
            report.deviations += 1;
            report.outliers.push(CbetaDeviation {
                residue: r.id.clone(),
                deviation_angstrom: deviation,
            });
        }
    }
    report
        .outliers
        .sort_by(|a, b| b.deviation_angstrom.total_cmp(&a.deviation_angstrom));
    report
}
