//! Atoms → density: the forward model every method shares, with its analytic gradient.
//!
//! Each atom is an isotropic, normalised 3D Gaussian (it integrates to its amplitude) with the
//! molmap convention of ChimeraX: amplitude = atomic number, σ = 0.225 × resolution, truncated at
//! 5σ; an optional B-factor adds B/(8π²) to σ². New grids use spacing resolution/3 and 3 ×
//! resolution of padding. The kernel is separable, so each z-plane of an atom's box costs one
//! outer product; planes are filled in parallel (no two threads write one voxel). The gradient
//! pass runs in parallel over atoms and only reads the grid.

use rayon::prelude::*;

use crate::formats::model::Structure;
use crate::maps::MapGrid;

/// ChimeraX molmap: σ = resolution / (π√2) ≈ 0.225 × resolution.
pub const SIGMA_PER_RESOLUTION: f32 = 0.225;
/// Gaussians are truncated at this many σ.
pub const CUTOFF_SIGMAS: f32 = 5.0;

/// Atoms as Gaussians: positions in Å, amplitudes, widths σ in Å (one per atom).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GaussianAtoms {
    pub positions: Vec<[f32; 3]>,
    pub amplitudes: Vec<f32>,
    pub sigmas: Vec<f32>,
}

/// Which atoms and widths to use when turning a model into Gaussians.
#[derive(Clone, Copy, Debug)]
pub struct GaussianOptions {
    pub resolution_angstrom: f32,
    /// Widen each atom by its B-factor (σ² += B / 8π²).
    pub use_b_factors: bool,
    /// Leave hydrogens out (models and maps rarely agree on them).
    pub skip_hydrogens: bool,
}

impl GaussianOptions {
    pub fn molmap(resolution_angstrom: f32) -> Self {
        Self {
            resolution_angstrom,
            use_b_factors: false,
            skip_hydrogens: true,
        }
    }
}

impl GaussianAtoms {
    /// Gaussians for frame `frame` of `structure`; also returns which atoms were kept.
    pub fn from_structure(structure: &Structure, frame: usize, options: GaussianOptions) -> (Self, Vec<usize>) {
        let sigma = SIGMA_PER_RESOLUTION * options.resolution_angstrom;
        let coords = &structure.frames[frame.min(structure.frames.len().saturating_sub(1))];
        let mut out = Self::default();
        let mut kept = Vec::new();
        for (i, (atom, pos)) in structure.atoms.iter().zip(coords).enumerate() {
            if options.skip_hydrogens && atom.is_hydrogen() {
                continue;
            }
            let extra = if options.use_b_factors {
                atom.b_factor.max(0.0) / (8.0 * std::f32::consts::PI.powi(2))
            } else {
                0.0
            };
            out.positions.push(*pos);
            out.amplitudes.push(atom.atomic_number() as f32);
            out.sigmas.push((sigma * sigma + extra).sqrt());
            kept.push(i);
        }
        (out, kept)
    }

    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

/// The smallest and largest coordinate along each axis (infinities when `positions` is empty).
pub fn bounding_box(positions: &[[f32; 3]]) -> ([f32; 3], [f32; 3]) {
    let mut lo = [f32::INFINITY; 3];
    let mut hi = [f32::NEG_INFINITY; 3];
    for p in positions {
        for a in 0..3 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    (lo, hi)
}

/// A new grid around `positions` as molmap makes it: spacing resolution/3, padding 3×resolution.
pub fn molmap_grid(positions: &[[f32; 3]], resolution_angstrom: f32) -> MapGrid {
    let spacing = resolution_angstrom / 3.0;
    let pad = 3.0 * resolution_angstrom;
    let (mut lo, mut hi) = bounding_box(positions);
    if positions.is_empty() {
        lo = [0.0; 3];
        hi = [0.0; 3];
    }
    let dims = std::array::from_fn(|a| (((hi[a] - lo[a]) + 2.0 * pad) / spacing).ceil() as usize + 1);
    let first = std::array::from_fn(|a| lo[a] - pad);
    MapGrid::new(dims, [spacing; 3], first)
}

/// Per-atom box on the grid: voxel index ranges and the atom's position in voxel units.
struct AtomBox {
    lo: [usize; 3],
    hi: [usize; 3],
    pos_voxel: [f32; 3],
}

fn atom_box(grid: &MapGrid, first: [f32; 3], pos: [f32; 3], sigma: f32) -> Option<AtomBox> {
    let reach = CUTOFF_SIGMAS * sigma;
    let mut lo = [0usize; 3];
    let mut hi = [0usize; 3];
    let mut pos_voxel = [0f32; 3];
    for a in 0..3 {
        let h = grid.voxel_size_angstrom[a];
        let p = (pos[a] - first[a]) / h;
        pos_voxel[a] = p;
        let l = ((pos[a] - reach - first[a]) / h).ceil().max(0.0);
        let u = ((pos[a] + reach - first[a]) / h).floor().min(grid.dims[a] as f32 - 1.0);
        // Also true when a coordinate is NaN: such an atom touches no voxel.
        if l.partial_cmp(&u).is_none_or(|o| o.is_gt()) {
            return None;
        }
        lo[a] = l as usize;
        hi[a] = u as usize;
    }
    Some(AtomBox { lo, hi, pos_voxel })
}

/// 1D Gaussian factors exp(−d²/2σ²) along one axis of an atom's box.
fn axis_factors(lo: usize, hi: usize, pos_voxel: f32, h: f32, inv_two_sigma2: f32, out: &mut Vec<f32>) {
    out.clear();
    for i in lo..=hi {
        let d = (i as f32 - pos_voxel) * h;
        out.push((-d * d * inv_two_sigma2).exp());
    }
}

fn normalisation(sigma: f32) -> f32 {
    1.0 / ((2.0 * std::f32::consts::PI).powf(1.5) * sigma * sigma * sigma)
}

/// Sums the Gaussians onto `grid`; values x fastest.
pub fn simulate(grid: &MapGrid, atoms: &GaussianAtoms) -> Vec<f32> {
    let [nx, ny, nz] = grid.dims;
    let first = grid.first_voxel_angstrom();
    let boxes: Vec<Option<AtomBox>> = (0..atoms.len())
        .map(|i| atom_box(grid, first, atoms.positions[i], atoms.sigmas[i]))
        .collect();
    // Atoms listed under each z-plane they touch, so every plane is filled by one thread.
    let mut per_plane: Vec<Vec<u32>> = vec![Vec::new(); nz];
    for (i, b) in boxes.iter().enumerate() {
        if let Some(b) = b {
            for plane in &mut per_plane[b.lo[2]..=b.hi[2]] {
                plane.push(i as u32);
            }
        }
    }
    let mut values = vec![0f32; nx * ny * nz];
    values
        .par_chunks_mut(nx * ny)
        .zip(per_plane.par_iter())
        .enumerate()
        .for_each(|(k, (plane, list))| {
            let mut ex = Vec::new();
            let mut ey = Vec::new();
            for &i in list {
                let i = i as usize;
                let Some(b) = &boxes[i] else { continue };
                let sigma = atoms.sigmas[i];
                let inv = 1.0 / (2.0 * sigma * sigma);
                let dz = (k as f32 - b.pos_voxel[2]) * grid.voxel_size_angstrom[2];
                let scale = atoms.amplitudes[i] * normalisation(sigma) * (-dz * dz * inv).exp();
                axis_factors(
                    b.lo[0],
                    b.hi[0],
                    b.pos_voxel[0],
                    grid.voxel_size_angstrom[0],
                    inv,
                    &mut ex,
                );
                axis_factors(
                    b.lo[1],
                    b.hi[1],
                    b.pos_voxel[1],
                    grid.voxel_size_angstrom[1],
                    inv,
                    &mut ey,
                );
                for (jj, &fy) in ey.iter().enumerate() {
                    let row = (b.lo[1] + jj) * nx + b.lo[0];
                    let s = scale * fy;
                    for (v, &fx) in plane[row..row + ex.len()].iter_mut().zip(&ex) {
                        *v += s * fx;
                    }
                }
            }
        });
    values
}

/// Gradients of a loss L with respect to every atom's parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GaussianGradients {
    pub positions: Vec<[f32; 3]>,
    pub amplitudes: Vec<f32>,
    pub sigmas: Vec<f32>,
}

/// Back-propagates `dloss_dmap` (∂L/∂value for every voxel of `grid`) to the atoms.
pub fn simulate_backward(grid: &MapGrid, atoms: &GaussianAtoms, dloss_dmap: &[f32]) -> GaussianGradients {
    let [nx, ny, _] = grid.dims;
    let first = grid.first_voxel_angstrom();
    let h = grid.voxel_size_angstrom;
    let per_atom: Vec<([f32; 3], f32, f32)> = (0..atoms.len())
        .into_par_iter()
        .map_init(
            || (Vec::new(), Vec::new()),
            |(ex, ey), i| {
                let sigma = atoms.sigmas[i];
                let Some(b) = atom_box(grid, first, atoms.positions[i], sigma) else {
                    return ([0.0; 3], 0.0, 0.0);
                };
                let inv = 1.0 / (2.0 * sigma * sigma);
                axis_factors(b.lo[0], b.hi[0], b.pos_voxel[0], h[0], inv, ex);
                axis_factors(b.lo[1], b.hi[1], b.pos_voxel[1], h[1], inv, ey);
                // Accumulate Σ G·g, Σ G·g·d and Σ G·g·r² in f64: many small terms.
                let (mut s0, mut sx, mut sy, mut sz, mut sr2) = (0f64, 0f64, 0f64, 0f64, 0f64);
                for k in b.lo[2]..=b.hi[2] {
                    let dz = (k as f32 - b.pos_voxel[2]) * h[2];
                    let gz = (-dz * dz * inv).exp();
                    for (jj, &fy) in ey.iter().enumerate() {
                        let j = b.lo[1] + jj;
                        let dy = (j as f32 - b.pos_voxel[1]) * h[1];
                        let row = &dloss_dmap[(k * ny + j) * nx + b.lo[0]..][..ex.len()];
                        for (ii, (&g, &fx)) in row.iter().zip(ex.iter()).enumerate() {
                            let dx = ((b.lo[0] + ii) as f32 - b.pos_voxel[0]) * h[0];
                            let w = f64::from(g * fx * fy * gz);
                            s0 += w;
                            sx += w * f64::from(dx);
                            sy += w * f64::from(dy);
                            sz += w * f64::from(dz);
                            sr2 += w * f64::from(dx * dx + dy * dy + dz * dz);
                        }
                    }
                }
                let norm = f64::from(normalisation(sigma));
                let amp = f64::from(atoms.amplitudes[i]);
                let s2 = f64::from(sigma * sigma);
                // value = A·N(σ)·exp(−r²/2σ²), r = voxel − atom: ∂/∂atom = value·(voxel − atom)/σ².
                let dpos = [sx, sy, sz].map(|v| (amp * norm * v / s2) as f32);
                let damp = (norm * s0) as f32;
                // ∂/∂σ of N(σ)·exp(−r²/2σ²) = N·exp(·)·(r²/σ³ − 3/σ).
                let sig = f64::from(sigma);
                let dsigma = (amp * norm * (sr2 / (s2 * sig) - 3.0 * s0 / sig)) as f32;
                (dpos, damp, dsigma)
            },
        )
        .collect();
    GaussianGradients {
        positions: per_atom.iter().map(|g| g.0).collect(),
        amplitudes: per_atom.iter().map(|g| g.1).collect(),
        sigmas: per_atom.iter().map(|g| g.2).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_atoms() -> GaussianAtoms {
        GaussianAtoms {
            positions: vec![[1.3, 2.1, 0.7], [3.9, 1.2, 2.6], [2.2, 3.3, 3.1]],
            amplitudes: vec![6.0, 7.0, 8.0],
            sigmas: vec![0.9, 1.1, 1.0],
        }
    }

    fn grid() -> MapGrid {
        MapGrid::new([40, 36, 32], [0.4, 0.45, 0.5], [-5.0, -5.0, -5.0])
    }

    #[test]
    fn each_gaussian_integrates_to_its_amplitude() {
        let atoms = three_atoms();
        let g = grid();
        let values = simulate(&g, &atoms);
        let voxel_volume: f32 = g.voxel_size_angstrom.iter().product();
        let total: f64 = values.iter().map(|&v| f64::from(v)).sum::<f64>() * f64::from(voxel_volume);
        assert!((total - 21.0).abs() < 0.05, "integral {total}");
        // Peak where the first atom sits relative to a far voxel.
        let near = values[g.index(16, 16, 11)];
        assert!(near > values[g.index(0, 0, 0)] * 100.0 + 1e-3);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let atoms = three_atoms();
        let g = grid();
        // L = Σ w·value with fixed random weights w: ∂L/∂value = w.
        let mut rng = crate::numeric::rng::Rng::new(99);
        let weights: Vec<f32> = (0..g.voxel_count()).map(|_| rng.uniform() as f32 - 0.5).collect();
        let loss = |a: &GaussianAtoms| -> f64 {
            simulate(&g, a)
                .iter()
                .zip(&weights)
                .map(|(&v, &w)| f64::from(v) * f64::from(w))
                .sum()
        };
        let grads = simulate_backward(&g, &atoms, &weights);
        let eps = 1e-2f32;
        for i in 0..atoms.len() {
            for axis in 0..3 {
                let mut plus = atoms.clone();
                plus.positions[i][axis] += eps;
                let mut minus = atoms.clone();
                minus.positions[i][axis] -= eps;
                let fd = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(eps));
                let an = f64::from(grads.positions[i][axis]);
                assert!(
                    (fd - an).abs() < 2e-3 + 2e-2 * fd.abs(),
                    "atom {i} axis {axis}: fd {fd} analytic {an}"
                );
            }
            let mut plus = atoms.clone();
            plus.amplitudes[i] += eps;
            let mut minus = atoms.clone();
            minus.amplitudes[i] -= eps;
            let fd = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(eps));
            assert!(
                (fd - f64::from(grads.amplitudes[i])).abs() < 1e-4 + 1e-3 * fd.abs(),
                "amplitude {i}"
            );
            let mut plus = atoms.clone();
            plus.sigmas[i] += eps;
            let mut minus = atoms.clone();
            minus.sigmas[i] -= eps;
            let fd = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(eps));
            let an = f64::from(grads.sigmas[i]);
            assert!(
                (fd - an).abs() < 2e-3 + 3e-2 * fd.abs(),
                "sigma {i}: fd {fd} analytic {an}"
            );
        }
    }

    #[test]
    fn molmap_grid_pads_three_resolutions() {
        let g = molmap_grid(&[[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]], 6.0);
        assert_eq!(g.voxel_size_angstrom, [2.0; 3]);
        assert_eq!(g.first_voxel_angstrom(), [-18.0; 3]);
        assert!(g.world_from_voxel([(g.dims[0] - 1) as f32, 0.0, 0.0])[0] >= 28.0);
    }
}
