//! The Ramachandran term of the restraints: the validation's φ/ψ tables (smoothed densities of
//! real structures, `assets/validation/`) as an energy that is zero inside the favoured region
//! and grows as −2 ln(density) beyond it, so residues in favoured regions keep their torsions
//! and only those that stray are pulled back (as real-space refinement programs restrain
//! outliers rather than every residue).

use crate::models::validation::{RamaClass, tables};

use super::restraints::TorsionPrior;

/// The favoured-region Ramachandran prior of the validation tables.
pub struct RamaPrior;

/// Step of the central differences on the tables (degrees): a little under their bin width.
const STEP_DEGREES: f64 = 2.0;

impl RamaPrior {
    fn excess(class: RamaClass, phi_deg: f64, psi_deg: f64) -> f64 {
        let Some(table) = tables().rama(class) else {
            return 0.0;
        };
        // The table holds L = −100 ln(density / max); χ² = −2 ln(density) above the favoured level.
        (0.02 * (table.level(phi_deg, psi_deg) - table.favoured_level)).max(0.0)
    }
}

impl TorsionPrior for RamaPrior {
    fn energy(&self, class: u8, phi: f64, psi: f64) -> (f64, f64, f64) {
        let class = RamaClass::ALL[usize::from(class).min(RamaClass::ALL.len() - 1)];
        let (p, s) = (phi.to_degrees(), psi.to_degrees());
        let e = Self::excess(class, p, s);
        if e == 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let h = STEP_DEGREES;
        let per_radian = 1.0 / (2.0 * h.to_radians());
        let d_phi = (Self::excess(class, p + h, s) - Self::excess(class, p - h, s)) * per_radian;
        let d_psi = (Self::excess(class, p, s + h) - Self::excess(class, p, s - h)) * per_radian;
        (e, d_phi, d_psi)
    }

    fn class_of(&self, residue_name: &str, next_residue_name: Option<&str>) -> u8 {
        let class = RamaClass::of(residue_name, next_residue_name);
        RamaClass::ALL.iter().position(|c| *c == class).unwrap_or(0) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn favoured_torsions_cost_nothing_and_outliers_are_pulled_back() {
        let prior = RamaPrior;
        let general = prior.class_of("ALA", Some("LEU"));
        let (helix, _, _) = prior.energy(general, (-63f64).to_radians(), (-43f64).to_radians());
        assert_eq!(helix, 0.0);
        // φ = +60°, ψ = −120° is disallowed for a general residue: costly, and a step down the
        // gradient lowers the cost.
        let (phi, psi) = (60f64.to_radians(), (-120f64).to_radians());
        let (e, dphi, dpsi) = prior.energy(general, phi, psi);
        assert!(e > 1.0, "{e}");
        let step = 0.02 / (dphi * dphi + dpsi * dpsi).sqrt();
        let (after, _, _) = prior.energy(general, phi - step * dphi, psi - step * dpsi);
        assert!(after < e, "{after} !< {e}");
        assert_ne!(prior.class_of("GLY", None), general);
    }
}
