//! The contrast transfer function in RELION's convention (docs/science.md §3).
//!
//! λ = 12.2643247 / √(V(1 + 0.978466e-6·V)) Å, Δf(α) = ½[(U+V) + (U−V)cos 2(α − θ)],
//! γ = −πλΔf|k|² + (π/2)Cs λ³|k|⁴ − φ, and CTF = −(√(1−w²) sin γ − w cos γ): the exact negative of
//! cryoDRGN's, so at k = 0 it is +w and extracted particles (contrast inverted, as RELION extracts
//! them) are bright on a dark background.

/// CTF parameters of one particle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CtfParams {
    pub voltage_kv: f64,
    pub spherical_aberration_mm: f64,
    pub amplitude_contrast: f64,
    pub defocus_u_angstrom: f64,
    pub defocus_v_angstrom: f64,
    pub defocus_angle_deg: f64,
    pub phase_shift_deg: f64,
    /// Envelope exp(−B|k|²/4); 0 for none.
    pub b_factor: f64,
}

/// Electron wavelength in Å for an accelerating voltage in kV.
pub fn wavelength_angstrom(voltage_kv: f64) -> f64 {
    let v = voltage_kv * 1e3;
    12.2643247 / (v * (1.0 + 0.978466e-6 * v)).sqrt()
}

impl CtfParams {
    /// CTF at spatial frequency (kx, ky) in 1/Å.
    pub fn value(&self, kx: f64, ky: f64) -> f64 {
        let lambda = wavelength_angstrom(self.voltage_kv);
        let k2 = kx * kx + ky * ky;
        let alpha = ky.atan2(kx);
        let theta = self.defocus_angle_deg.to_radians();
        let defocus = 0.5
            * ((self.defocus_u_angstrom + self.defocus_v_angstrom)
                + (self.defocus_u_angstrom - self.defocus_v_angstrom) * (2.0 * (alpha - theta)).cos());
        let cs = self.spherical_aberration_mm * 1e7;
        let gamma = -std::f64::consts::PI * lambda * defocus * k2
            + 0.5 * std::f64::consts::PI * cs * lambda.powi(3) * k2 * k2
            - self.phase_shift_deg.to_radians();
        let w = self.amplitude_contrast;
        let ctf = -((1.0 - w * w).sqrt() * gamma.sin() - w * gamma.cos());
        ctf * (-self.b_factor * k2 / 4.0).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(defocus: f64) -> CtfParams {
        CtfParams {
            voltage_kv: 300.0,
            spherical_aberration_mm: 2.7,
            amplitude_contrast: 0.1,
            defocus_u_angstrom: defocus,
            defocus_v_angstrom: defocus,
            defocus_angle_deg: 0.0,
            phase_shift_deg: 0.0,
            b_factor: 0.0,
        }
    }

    #[test]
    fn wavelength_at_300_kv_is_0_0197_angstrom() {
        assert!((wavelength_angstrom(300.0) - 0.019687).abs() < 1e-5);
    }

    #[test]
    fn sign_is_relions_positive_amplitude_contrast_at_zero_frequency() {
        let p = params(15_000.0);
        assert!((p.value(0.0, 0.0) - 0.1).abs() < 1e-12);
        // Just past zero frequency an underfocused CTF grows positive (phase contrast adds to w).
        assert!(p.value(0.005, 0.0) > 0.1);
    }

    #[test]
    fn first_zero_is_where_gamma_reaches_the_amplitude_phase() {
        // Ignoring Cs, the first zero of −(√(1−w²) sin γ − w cos γ) is at γ = −(π − atan(w/√(1−w²)))... find it numerically
        // and compare with the closed form at Cs = 0.
        let mut p = params(20_000.0);
        p.spherical_aberration_mm = 0.0;
        let lambda = wavelength_angstrom(300.0);
        let w: f64 = 0.1;
        // sin γ·√(1−w²) = w cos γ → tan γ = w/√(1−w²); first solution below zero: γ = atan(...) − π.
        let gamma = (w / (1.0 - w * w).sqrt()).atan() - std::f64::consts::PI;
        let k = (-gamma / (std::f64::consts::PI * lambda * 20_000.0)).sqrt();
        assert!(
            p.value(k, 0.0).abs() < 1e-9,
            "CTF at the predicted zero {}",
            p.value(k, 0.0)
        );
        assert!(p.value(0.9 * k, 0.0) > 0.0 && p.value(1.1 * k, 0.0) < 0.0);
    }

    #[test]
    fn astigmatism_follows_the_angle() {
        let mut p = params(15_000.0);
        p.defocus_u_angstrom = 20_000.0;
        p.defocus_v_angstrom = 10_000.0;
        p.defocus_angle_deg = 90.0;
        // Along y (α = 90° = θ) the defocus is U; along x it is V.
        let along_y = p.value(0.0, 0.02);
        let mut u_only = params(20_000.0);
        u_only.defocus_angle_deg = 0.0;
        assert!((along_y - u_only.value(0.02, 0.0)).abs() < 1e-9);
        assert!((p.value(0.02, 0.0) - params(10_000.0).value(0.02, 0.0)).abs() < 1e-9);
    }
}
