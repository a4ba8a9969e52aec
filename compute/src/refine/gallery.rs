//! The refinement gallery: a few particle images beside the current model's CTF-modulated
//! projections at their poses, for the app to show as the model moves.

use crate::maps::density::GaussianAtoms;
use crate::particles::data::ParticleData;
use crate::particles::simulate::{apply_ctf, project};

/// A few particle images next to the current model's CTF-modulated projections at their poses.
#[derive(Clone, Debug, PartialEq)]
pub struct Gallery {
    pub box_size: usize,
    /// (particle index, image, projection), each box² values, x fastest.
    pub pairs: Vec<(usize, Vec<f32>, Vec<f32>)>,
}

impl Gallery {
    /// Projects the model (`positions` in the model's frame, with per-atom amplitudes and
    /// widths σ² in Å²) at the poses of `indices` with their CTFs.
    pub fn of(
        data: &ParticleData,
        indices: &[usize],
        positions: &[[f64; 3]],
        amplitudes: &[f64],
        widths: &[f64],
        centre: [f64; 3],
    ) -> Self {
        let atoms = GaussianAtoms {
            positions: positions.iter().map(|p| p.map(|v| v as f32)).collect(),
            amplitudes: amplitudes.iter().map(|&a| a as f32).collect(),
            sigmas: widths.iter().map(|&w| w.max(1e-4).sqrt() as f32).collect(),
        };
        let mut planner = rustfft::FftPlanner::new();
        let pairs = indices
            .iter()
            .filter(|&&i| i < data.len())
            .map(|&i| {
                let (rotation, origin, ctf) = data.view(i);
                let mut projection = project(&atoms, centre, &rotation, origin, data.box_size, data.pixel_size);
                apply_ctf(
                    &mut projection,
                    data.box_size,
                    data.pixel_size,
                    &ctf,
                    false,
                    &mut planner,
                );
                (i, data.images[i].clone(), projection)
            })
            .collect();
        Self {
            box_size: data.box_size,
            pairs,
        }
    }
}
