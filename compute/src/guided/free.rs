//! The free score that tells a fit from an overfit (as R-free does in crystallography and the
//! half-map scores of Servalcat do in cryo-EM). Two sources:
//! - **Held-out Fourier coefficients** of the one map: a random tenth of the coefficients within
//!   the resolution (Friedel pairs together) are taken out of the map guidance sees, and the
//!   free score is the correlation of the model's density with the map over those coefficients
//!   only. Noise in the coefficients guidance sees is independent of the held-out ones, so
//!   fitting it does not raise the free score.
//! - **Half maps**: guidance sees one half, the free score is the correlation with the other.
//!
//! Either way the score is a correlation (higher is better), computed on the whole box.

use rustfft::num_complex::Complex;

use crate::maps::density::{GaussianAtoms, simulate};
use crate::maps::{DensityMap, MapGrid};
use crate::numeric::fft::{fft3, for_each_frequency};
use crate::numeric::rng::mix64;

/// Share of the coefficients within the resolution held out for the free score.
pub const FREE_FRACTION: f64 = 0.1;

/// Which free score a guided fit keeps.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreeOptions {
    /// None: samples are ranked by their correlation with the map guidance sees.
    #[default]
    Off,
    /// Hold out a random tenth of the map's coefficients within the resolution (drawn by `seed`).
    HeldOut { seed: u64 },
    /// Score against the other half map (guidance sees the map given to the fit). The map is not
    /// serialised.
    HalfMap {
        #[serde(skip)]
        other: Option<std::sync::Arc<DensityMap>>,
    },
}

/// Where a fit's free score comes from.
pub enum FreeSource {
    /// The held-out coefficients of the map (indices into its FFT, and the map's values there).
    HeldOut {
        indices: Vec<usize>,
        values: Vec<Complex<f32>>,
    },
    /// The other half map, on the guided map's grid.
    HalfMap {
        other: DensityMap,
        zone_radius_angstrom: f64,
    },
}

/// The free score of a fit: prepared once, evaluated for any coordinates of the atoms.
pub struct FreeScore {
    grid: MapGrid,
    resolution_angstrom: f32,
    pub source: FreeSource,
}

/// Whether the coefficient at signed frequency indices (x, y, z) is held out: a hash of the
/// Friedel pair's canonical member, so k and −k go together.
fn held_out(k: [i64; 3], seed: u64) -> bool {
    let flip = k.iter().find(|v| **v != 0).is_some_and(|v| *v < 0);
    let c = if flip { k.map(|v| -v) } else { k };
    let h = mix64(seed ^ mix64((c[0] as u64) ^ mix64((c[1] as u64) ^ mix64(c[2] as u64))));
    (h >> 11) as f64 / (1u64 << 53) as f64 <= FREE_FRACTION
}

impl FreeScore {
    /// Holds out a random tenth of `map`'s coefficients within `resolution_angstrom`; returns
    /// the map without them (what guidance sees) and the free score.
    pub fn hold_out(map: &DensityMap, resolution_angstrom: f32, seed: u64) -> (DensityMap, Self) {
        let grid = &map.grid;
        let mut spectrum = fft3(grid, &map.values, false);
        let limit = 1.0 / f64::from(resolution_angstrom);
        let mut indices = Vec::new();
        let mut values = Vec::new();
        for_each_frequency(grid, &mut |i, s, k| {
            if s > 0.0 && s <= limit && held_out(k, seed) {
                indices.push(i);
                values.push(spectrum[i]);
                spectrum[i] = Complex::new(0.0, 0.0);
            }
        });
        let mut work = map.clone();
        let n = grid.voxel_count() as f32;
        crate::numeric::fft::fft3_in_place(grid.dims, &mut spectrum, true);
        for (v, c) in work.values.iter_mut().zip(&spectrum) {
            *v = c.re / n;
        }
        let free = Self {
            grid: grid.clone(),
            resolution_angstrom,
            source: FreeSource::HeldOut { indices, values },
        };
        (work, free)
    }

    /// The free score against the other half map (resampled onto the guided map's grid).
    pub fn half_map(other: DensityMap, resolution_angstrom: f32, zone_radius_angstrom: f64) -> Self {
        Self {
            grid: other.grid.clone(),
            resolution_angstrom,
            source: FreeSource::HalfMap {
                other,
                zone_radius_angstrom,
            },
        }
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        match &self.source {
            FreeSource::HeldOut { indices, .. } => format!(
                "{} held-out Fourier coefficients ({:.0}% within {} Å)",
                indices.len(),
                100.0 * FREE_FRACTION,
                self.resolution_angstrom
            ),
            FreeSource::HalfMap { .. } => "the other half map".into(),
        }
    }

    /// The free correlation of `atoms` (their density on the map's grid).
    pub fn score(&self, atoms: &GaussianAtoms) -> f64 {
        let simulated = simulate(&self.grid, atoms);
        match &self.source {
            FreeSource::HeldOut { indices, values } => {
                let spectrum = fft3(&self.grid, &simulated, false);
                let (mut cross, mut pm, mut pa) = (0f64, 0f64, 0f64);
                for (&i, v) in indices.iter().zip(values) {
                    let u = spectrum[i];
                    cross += f64::from(u.re * v.re + u.im * v.im);
                    pm += f64::from(v.norm_sqr());
                    pa += f64::from(u.norm_sqr());
                }
                if pm > 0.0 && pa > 0.0 {
                    cross / (pm * pa).sqrt()
                } else {
                    0.0
                }
            }
            FreeSource::HalfMap {
                other,
                zone_radius_angstrom,
            } => {
                let at: Vec<[f64; 3]> = atoms.positions.iter().map(|p| p.map(f64::from)).collect();
                let zone = crate::maps::local::voxels_near(&self.grid, &at, *zone_radius_angstrom);
                crate::maps::scores::correlation(&other.values, &simulated, true, Some(&zone))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::MapMeta;
    use crate::numeric::rng::Rng;

    fn blob_atoms(positions: &[[f32; 3]]) -> GaussianAtoms {
        GaussianAtoms {
            positions: positions.to_vec(),
            amplitudes: vec![1.0; positions.len()],
            sigmas: vec![1.2; positions.len()],
        }
    }

    #[test]
    fn fitting_noise_raises_the_work_correlation_but_not_the_free_one() {
        let grid = MapGrid::new([32, 32, 32], [1.0; 3], [-16.0; 3]);
        let mut rng = Rng::new(11);
        let truth: Vec<[f32; 3]> = (0..40)
            .map(|_| {
                [
                    (6.0 * rng.normal()) as f32,
                    (6.0 * rng.normal()) as f32,
                    (6.0 * rng.normal()) as f32,
                ]
            })
            .collect();
        let clean = simulate(&grid, &blob_atoms(&truth));
        let sd = (clean.iter().map(|v| v * v).sum::<f32>() / clean.len() as f32).sqrt();
        let noisy: Vec<f32> = clean.iter().map(|v| v + sd * rng.normal() as f32).collect();
        let map = DensityMap {
            grid: grid.clone(),
            values: noisy,
            meta: MapMeta::default(),
        };
        let (work, free) = FreeScore::hold_out(&map, 3.0, 5);
        let FreeSource::HeldOut { indices, .. } = &free.source else {
            panic!("held out");
        };
        assert!(!indices.is_empty());
        // The true model scores well on the free set, a displaced one worse.
        let right = free.score(&blob_atoms(&truth));
        let shifted: Vec<[f32; 3]> = truth.iter().map(|p| [p[0] + 2.0, p[1], p[2]]).collect();
        let wrong = free.score(&blob_atoms(&shifted));
        assert!(right > 0.3 && right > wrong + 0.2, "right {right}, wrong {wrong}");
        // A "model" that is the work map itself fits the work set's noise perfectly; on the
        // free set it holds nothing (its held-out coefficients are zero).
        let spectrum = fft3(&grid, &work.values, false);
        assert!(
            indices.iter().all(|&i| spectrum[i].norm() < 1e-2),
            "held-out coefficients removed"
        );
    }

    #[test]
    fn friedel_pairs_are_held_out_together() {
        for k in [[1, 2, 3], [0, -4, 7], [-5, 0, 0], [3, -3, 2]] {
            assert_eq!(held_out(k, 9), held_out(k.map(|v: i64| -v), 9), "{k:?}");
        }
        let n = (-8..8)
            .flat_map(|x| (-8..8).flat_map(move |y| (-8..8).map(move |z| [x, y, z])))
            .filter(|k| held_out(*k, 9))
            .count();
        let share = n as f64 / 4096.0;
        assert!((share - FREE_FRACTION).abs() < 0.03, "{share}");
    }
}
