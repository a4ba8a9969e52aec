//! φ/ψ of protein residues and their Ramachandran class (favoured, allowed, outlier) against
//! the smoothed corpus distributions of [`super::tables`].

use super::ideal::dihedral_deg;
use super::tables::{RamaClass, tables};
use super::topology::Residue;
use super::{RamaOutlier, RamachandranReport};

/// Where a residue's (φ, ψ) falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RamaRegion {
    /// Inside the contour enclosing 98 % of the reference residues of its class.
    Favoured,
    /// Outside that, inside the one enclosing 99.8 %.
    Allowed,
    Outlier,
}

/// (φ, ψ) in degrees of residue `k`, each None where the residue is not bonded to the previous
/// (φ) or next (ψ) residue or lacks an atom.
pub(crate) fn phi_psi(residues: &[Residue], k: usize, positions: &[[f32; 3]]) -> (Option<f64>, Option<f64>) {
    let r = &residues[k];
    let at = |i: Option<usize>| i.and_then(|i| positions.get(i)).map(|p| p.map(f64::from));
    let (n, ca, c) = (at(r.atom("N")), at(r.atom("CA")), at(r.atom("C")));
    let (Some(n), Some(ca), Some(c)) = (n, ca, c) else {
        return (None, None);
    };
    let phi = if r.prev_linked {
        at(residues[k - 1].atom("C")).map(|c_prev| dihedral_deg(c_prev, n, ca, c))
    } else {
        None
    };
    let psi = if r.next_linked {
        at(residues[k + 1].atom("N")).map(|n_next| dihedral_deg(n, ca, c, n_next))
    } else {
        None
    };
    (phi, psi)
}

/// The region of (φ, ψ) for `class`; None if its table did not load.
pub fn region(class: RamaClass, phi_deg: f64, psi_deg: f64) -> Option<RamaRegion> {
    let table = tables().rama(class)?;
    let level = table.level(phi_deg, psi_deg);
    Some(if level <= table.favoured_level {
        RamaRegion::Favoured
    } else if level <= table.allowed_level {
        RamaRegion::Allowed
    } else {
        RamaRegion::Outlier
    })
}

fn percent(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| 100.0 * part as f64 / whole as f64)
}

pub(crate) fn ramachandran(residues: &[Residue], positions: &[[f32; 3]]) -> RamachandranReport {
    let mut report = RamachandranReport::default();
    for (k, r) in residues.iter().enumerate() {
        if !r.protein {
            continue;
        }
        let (Some(phi), Some(psi)) = phi_psi(residues, k, positions) else {
            continue;
        };
        if !(phi.is_finite() && psi.is_finite()) {
            continue;
        }
        let Some(region) = region(r.class, phi, psi) else {
            continue;
        };
        report.evaluated += 1;
        match region {
            RamaRegion::Favoured => report.favoured += 1,
            RamaRegion::Allowed => report.allowed += 1,
            RamaRegion::Outlier => {
                report.outliers += 1;
                report.outlier_list.push(RamaOutlier {
                    residue: r.id.clone(),
                    class: r.class,
                    phi_deg: phi,
                    psi_deg: psi,
                });
            }
        }
    }
    report.favoured_percent = percent(report.favoured, report.evaluated);
    report.outliers_percent = percent(report.outliers, report.evaluated);
    report
}
