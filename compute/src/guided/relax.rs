//! The guided fit's final relaxation: a restrained real-space refinement of the last sample,
//! minimising the stereochemistry restraints ([`super::restraints`]) plus the local map term
//! (z-scored density L2 inside the model's zone) by L-BFGS. The map term's weight is set once,
//! at the start, so that its mean force on an atom is `map_weight` (χ² per Å): the same weight
//! gives the same balance on any map scale, model size or zone.

use crate::maps::density::GaussianAtoms;
use crate::numeric::lbfgs::{LbfgsOptions, minimise};

use super::guidance::MapGuidance;
use super::restraints::{RestraintEnergies, RestraintOptions, Restraints};

/// How the final relaxation runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RelaxOptions {
    /// Off: the sample ends as the sampler leaves it (after the residue geometry is restored).
    pub enabled: bool,
    pub restraints: RestraintOptions,
    /// The map term's mean force on an atom at the start of the relaxation (χ²/Å); 0 relaxes
    /// the geometry alone.
    pub map_weight: f64,
    pub iterations: usize,
}

/// The map term's default weight at a resolution: 60 χ²/Å at 8 Å and coarser, rising as 1/d to
/// 96 at 5 Å and finer (finer maps hold more information per atom). On the gemmi-made AdK maps at
/// 5 Å, 96 takes closed → open from 1.09 to 0.47 Å (0.98 to 0.70 Å with a neighbour) with the
/// geometry targets kept; 120 broke them at 8 Å (docs/science.md §4).
pub fn default_map_weight(resolution_angstrom: f32) -> f64 {
    60.0 * (8.0 / f64::from(resolution_angstrom.max(0.1))).clamp(1.0, 1.6)
}

impl Default for RelaxOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            restraints: RestraintOptions::default(),
            map_weight: default_map_weight(8.0),
            iterations: 500,
        }
    }
}

/// What the relaxation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RelaxReport {
    pub iterations: usize,
    pub before: RestraintEnergies,
    pub after: RestraintEnergies,
    /// The local map loss (2 − 2·correlation inside the zone) before and after.
    pub map_loss_before: f64,
    pub map_loss_after: f64,
    pub seconds: f64,
}

/// Relaxes `positions` under `restraints` and the map term of `guidance`.
pub fn relax(
    restraints: &Restraints,
    guidance: &MapGuidance,
    atoms: &GaussianAtoms,
    positions: &[[f64; 3]],
    options: &RelaxOptions,
    keep_going: &mut dyn FnMut() -> bool,
) -> (Vec<[f64; 3]>, RelaxReport) {
    let started = std::time::Instant::now();
    let at = |x: &[f64]| GaussianAtoms {
        positions: x
            .chunks_exact(3)
            .map(|c| [c[0] as f32, c[1] as f32, c[2] as f32])
            .collect(),
        amplitudes: atoms.amplitudes.clone(),
        sigmas: atoms.sigmas.clone(),
    };
    let mut x: Vec<f64> = positions.iter().flatten().copied().collect();
    let mut scratch = vec![0.0; x.len()];
    let before = restraints.energy(&x, &mut scratch);
    let first = guidance.local(&at(&x), 0.0);
    let force = (first.gradient.iter().flatten().map(|g| g * g).sum::<f64>() / positions.len().max(1) as f64).sqrt();
    let weight = if options.map_weight > 0.0 && force > 0.0 && force.is_finite() {
        options.map_weight / force
    } else {
        0.0
    };
    let mut f = |x: &[f64], g: &mut [f64]| {
        g.iter_mut().for_each(|v| *v = 0.0);
        let e = restraints.energy(x, g).total();
        if weight == 0.0 {
            return e;
        }
        let map = guidance.local(&at(x), 0.0);
        for (gi, mi) in g.iter_mut().zip(map.gradient.iter().flatten()) {
            *gi += weight * mi;
        }
        e + weight * map.loss
    };
    let lbfgs = LbfgsOptions {
        iterations: options.iterations,
        gradient_tolerance: 1e-3,
        max_step: 0.1,
        ..LbfgsOptions::default()
    };
    let result = minimise(&mut x, &lbfgs, &mut f, keep_going);
    let after = restraints.energy(&x, &mut scratch);
    let map_loss_after = guidance.local(&at(&x), 0.0).loss;
    (
        x.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
        RelaxReport {
            iterations: result.iterations,
            before,
            after,
            map_loss_before: first.loss,
            map_loss_after,
            seconds: started.elapsed().as_secs_f64(),
        },
    )
}

/// Stereochemistry inside the sampler: `iterations` L-BFGS steps on the restraints plus a tether
/// of every coordinate to `estimate` (σ = `tether_angstrom`), so a denoised estimate keeps its
/// collective placement and gets protein-like local geometry back before the map pushes it.
pub fn polish(restraints: &Restraints, estimate: &[f64], tether_angstrom: f64, iterations: usize) -> Vec<f64> {
    let mut x = estimate.to_vec();
    if iterations == 0 {
        return x;
    }
    let tether = 1.0 / tether_angstrom.max(1e-3).powi(2);
    let mut f = |x: &[f64], g: &mut [f64]| {
        g.iter_mut().for_each(|v| *v = 0.0);
        let mut e = restraints.energy(x, g).total();
        for ((gi, xi), ei) in g.iter_mut().zip(x).zip(estimate) {
            let d = xi - ei;
            e += tether * d * d;
            *gi += 2.0 * tether * d;
        }
        e
    };
    let lbfgs = LbfgsOptions {
        iterations,
        gradient_tolerance: 1e-3,
        max_step: 0.1,
        ..LbfgsOptions::default()
    };
    minimise(&mut x, &lbfgs, &mut f, &mut || true);
    x
}
