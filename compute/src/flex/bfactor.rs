//! Per-residue B-factor refinement against a map: the first flexibility estimator.
//!
//! Every heavy atom is a Gaussian of its Coulomb potential (the shared density kernel, with the
//! amplitude and intrinsic width σ₀ of its element's electron form factor,
//! [`crate::formats::elements::electron_scattering`]); the atoms of residue r share one added
//! blur, σ² = σ₀² + b_r/8π² + g·depth/8π², where depth counts the bonds from the main chain
//! (0 for N, CA, C, O; 1 for CB; 2 for CG, OG, SG; …) and g ≥ 0 is one side-chain gradient
//! fitted with the b_r (side chains move more than the backbone they hang from, in every
//! X-ray structure; one b per residue had to compromise between both). A residue's b is the
//! mean over its atoms, as a residue's B in a model is. The b_r are
//! found by L-BFGS on log b (so they stay positive) minimising the squared difference between
//! the map and k·model + c inside the model's zone, where the scale k and offset c are solved in
//! closed form at every evaluation; a weak penalty on the difference of log b between residues
//! that follow each other along a chain keeps noise from splitting neighbours apart. The
//! resolution's own blur is in every b_r alike; it is taken out afterwards: the blur the
//! resolution implies by the molmap convention, or the smallest b_r when that is lower (see
//! [`BRefinement::flexibility_b`]). Taking out a fixed blur rather than each map's own lowest
//! b keeps the overall B level, so RMSF compares across maps (pooled Pearson on the X-ray set
//! 0.62 → 0.91, `scripts/flex_targets.sh`).

use crate::formats::elements::electron_scattering;
use crate::maps::density::{GaussianAtoms, simulate, simulate_backward};
use crate::maps::local::voxels_near;
use crate::maps::tools::low_pass;
use crate::maps::{DensityMap, MapGrid};
use crate::numeric::lbfgs::{LbfgsOptions, minimise};

/// 8π²: B = 8π²·⟨u²⟩.
pub const EIGHT_PI2: f64 = 8.0 * std::f64::consts::PI * std::f64::consts::PI;

/// The B (Å²) of a carbon's form factor as one Gaussian: the width the molmap convention's
/// σ = 0.225 × resolution already holds for a carbon (gemmi's calculators blur by the same rule).
fn carbon_width_b() -> f64 {
    f64::from(electron_scattering(6).width_b)
}

/// How the B-factors are refined.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BRefineOptions {
    pub resolution_angstrom: f32,
    pub iterations: usize,
    /// Weight of the penalty on (log b_r − log b_next)² between chain neighbours, relative to
    /// the map term (whose scale is the map's variance in the zone, set to 1).
    pub smoothness: f64,
    /// Low-pass the model's density at the resolution before comparing (as the map was
    /// filtered), so that widths below the resolution are not asked to explain the map's shape.
    pub low_pass: bool,
    /// Weight of the same penalty between residues in contact (Cα within
    /// [`CONTACT_SMOOTHING_ANGSTROM`], not chain neighbours), relative to `smoothness`.
    pub contact_smoothness: f64,
}

/// Residues whose Cα are this close (Å) share the contact penalty.
pub const CONTACT_SMOOTHING_ANGSTROM: f32 = 6.5;

impl BRefineOptions {
    pub fn new(resolution_angstrom: f32) -> Self {
        Self {
            resolution_angstrom,
            iterations: 80,
            smoothness: 1e-3,
            low_pass: true,
            contact_smoothness: 0.1,
        }
    }

    /// The zone the fit sees: voxels within this radius of an atom.
    pub fn zone_radius(&self) -> f64 {
        (0.6 * f64::from(self.resolution_angstrom) + 1.5).clamp(3.0, 6.0)
    }
}

/// What the refinement found.
#[derive(Clone, Debug, PartialEq)]
pub struct BRefinement {
    /// The fitted b per residue (Å²), the resolution's blur included.
    pub b: Vec<f64>,
    /// The fitted b of every atom (Å²).
    pub atom_b: Vec<f64>,
    /// The blur every residue shares (Å²): the resolution's ([`resolution_blur_b`]), or less
    /// when some residue's b is below it (a sharpened map).
    pub floor_b: f64,
    /// Correlation with the map inside the zone, at the start (one b for all) and at the end.
    pub correlation_start: f64,
    pub correlation: f64,
    pub iterations: usize,
    pub zone_voxels: usize,
    pub cancelled: bool,
}

impl BRefinement {
    /// Each residue's B with the shared blur taken out (≥ a small floor of 1 Å²).
    pub fn flexibility_b(&self) -> Vec<f64> {
        self.b.iter().map(|b| (b - self.floor_b).max(1.0)).collect()
    }
}

/// The fraction of `positions` inside the map's box.
pub fn fraction_inside(grid: &MapGrid, positions: &[[f32; 3]]) -> f64 {
    if positions.is_empty() {
        return 0.0;
    }
    let first = grid.first_voxel_angstrom();
    let inside = positions
        .iter()
        .filter(|p| {
            (0..3).all(|a| {
                let v = (p[a] - first[a]) / grid.voxel_size_angstrom[a];
                v >= 0.0 && v <= grid.dims[a] as f32 - 1.0
            })
        })
        .count();
    inside as f64 / positions.len() as f64
}

/// Refines one b per residue. `atoms` are the heavy atoms (positions, amplitudes, and each
/// atom's intrinsic width σ₀, to which the residue's blur is added), `residue_of` the residue
/// (or group of atoms sharing one b) of each, `neighbours` the pairs of residues whose log b
/// differences are penalised, each with its weight relative to
/// [`BRefineOptions::smoothness`]. `keep_going(iteration, correlation)` is asked once an
/// iteration; false stops with the b found so far. `depth` is each atom's distance from the
/// main chain in bonds (empty: all 0, no side-chain gradient).
#[allow(clippy::too_many_arguments)]
pub fn refine_b_factors(
    map: &DensityMap,
    atoms: &GaussianAtoms,
    residue_of: &[usize],
    depth: &[f32],
    residues: usize,
    neighbours: &[(usize, usize, f64)],
    options: &BRefineOptions,
    keep_going: &mut dyn FnMut(usize, f64) -> bool,
) -> BRefinement {
    // What the map holds beyond its resolution is noise: with the model low-passed, the map is
    // too, or that noise, cut by the zone's edge, leaks into the fit's gradient.
    let filtered_map;
    let map = if options.low_pass {
        filtered_map = DensityMap {
            grid: map.grid.clone(),
            values: filtered(&map.grid, map.values.clone(), options.resolution_angstrom),
            meta: Default::default(),
        };
        &filtered_map
    } else {
        map
    };
    let positions64: Vec<[f64; 3]> = atoms.positions.iter().map(|p| p.map(f64::from)).collect();
    let zone = voxels_near(&map.grid, &positions64, options.zone_radius());
    let zone_index: Vec<usize> = (0..zone.len()).filter(|&v| zone[v]).collect();
    // The map inside the zone, about its mean and in units of its σ there.
    let n = zone_index.len().max(1) as f64;
    let mean = zone_index.iter().map(|&v| f64::from(map.values[v])).sum::<f64>() / n;
    let var = zone_index
        .iter()
        .map(|&v| (f64::from(map.values[v]) - mean).powi(2))
        .sum::<f64>()
        / n;
    let sd = var.sqrt().max(1e-12);
    let target: Vec<f64> = zone_index
        .iter()
        .map(|&v| (f64::from(map.values[v]) - mean) / sd)
        .collect();

    // Start every residue at the blur the resolution implies (molmap's σ) plus 20 Å².
    let sigma_res = 0.225 * f64::from(options.resolution_angstrom);
    let b_start = (EIGHT_PI2 * sigma_res * sigma_res - carbon_width_b()).max(1.0) + 20.0;
    // θ: log b per residue, then log g (the side-chain gradient, Å² per bond) when there is one.
    let gradient_term = depth.iter().any(|&d| d > 0.0);
    let mut theta = vec![b_start.ln(); residues];
    if gradient_term {
        theta.push(5f64.ln());
    }
    let depth_of = |i: usize| depth.get(i).copied().map_or(0.0, f64::from);
    // Atom i's b (residue r's plus its side-chain depth's), and g, under θ.
    let gradient_of = |theta: &[f64]| if gradient_term { theta[residues].exp() } else { 0.0 };
    let atom_b = |theta: &[f64], i: usize, r: usize| theta[r].exp() + gradient_of(theta) * depth_of(i);
    let intrinsic: Vec<f64> = atoms.sigmas.iter().map(|&s| f64::from(s) * f64::from(s)).collect();
    let mut work = atoms.clone();
    let mut dloss = vec![0f32; map.grid.voxel_count()];
    let grid = map.grid.clone();
    let mut last_cc = 0.0;
    let mut evaluate = |theta: &[f64], gradient: &mut [f64], cc_out: &mut f64| -> f64 {
        let g = gradient_of(theta);
        for (i, &r) in residue_of.iter().enumerate() {
            work.sigmas[i] = (intrinsic[i] + atom_b(theta, i, r) / EIGHT_PI2).sqrt() as f32;
        }
        let mut sim = simulate(&grid, &work);
        if options.low_pass {
            sim = filtered(&grid, sim, options.resolution_angstrom);
        }
        // k and c minimising Σ (k·s + c − t)² over the zone.
        let s: Vec<f64> = zone_index.iter().map(|&v| f64::from(sim[v])).collect();
        let sm = s.iter().sum::<f64>() / n;
        let tm = target.iter().sum::<f64>() / n;
        let (mut sst, mut sss, mut ttt) = (0.0, 0.0, 0.0);
        for (a, b) in s.iter().zip(&target) {
            sst += (a - sm) * (b - tm);
            sss += (a - sm) * (a - sm);
            ttt += (b - tm) * (b - tm);
        }
        let k = if sss > 0.0 { sst / sss } else { 0.0 };
        let c = tm - k * sm;
        *cc_out = if sss > 0.0 && ttt > 0.0 {
            sst / (sss * ttt).sqrt()
        } else {
            0.0
        };
        let mut energy = 0.0;
        dloss.iter_mut().for_each(|d| *d = 0.0);
        for ((&v, a), t) in zone_index.iter().zip(&s).zip(&target) {
            let r = k * a + c - t;
            energy += r * r / n;
            // k and c are optimal: ∂E/∂s = 2k·r/n (the envelope theorem).
            dloss[v] = (2.0 * k * r / n) as f32;
        }
        // The filter is real and symmetric: its adjoint is itself.
        let back = if options.low_pass {
            filtered(&grid, std::mem::take(&mut dloss), options.resolution_angstrom)
        } else {
            std::mem::take(&mut dloss)
        };
        let back_sigmas = simulate_backward(&grid, &work, &back).sigmas;
        dloss = back;
        gradient.iter_mut().for_each(|x| *x = 0.0);
        for (i, &r) in residue_of.iter().enumerate() {
            let sigma = f64::from(work.sigmas[i]);
            // σ² = σ₀² + (e^θ + g·depth)/8π²: ∂σ/∂θ = e^θ / (16π²σ), ∂σ/∂log g = g·depth / (16π²σ).
            let dsigma = f64::from(back_sigmas[i]) / (2.0 * EIGHT_PI2 * sigma);
            gradient[r] += dsigma * theta[r].exp();
            if gradient_term {
                gradient[residues] += dsigma * g * depth_of(i);
            }
        }
        for &(p, q, w) in neighbours {
            let d = theta[p] - theta[q];
            let w = w * options.smoothness;
            energy += w * d * d;
            gradient[p] += 2.0 * w * d;
            gradient[q] -= 2.0 * w * d;
        }
        energy
    };
    let mut scratch = vec![0.0; theta.len()];
    let mut correlation_start = 0.0;
    evaluate(&theta, &mut scratch, &mut correlation_start);
    // The map term is a fraction of the zone's variance, so its gradients are tiny; scale the
    // energy so the first gradient's largest component is 1 (L-BFGS's first step and its
    // curvature test then work on numbers of order one).
    let largest = scratch.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let scale = if largest > 0.0 { 1.0 / largest } else { 1.0 };
    let lbfgs = LbfgsOptions {
        iterations: options.iterations,
        memory: 7,
        gradient_tolerance: 1e-9,
        max_step: 0.5,
    };
    let mut iteration = 0;
    let mut cancelled = false;
    let cc_now = std::cell::Cell::new(correlation_start);
    let result = minimise(
        &mut theta,
        &lbfgs,
        &mut |x, grad| {
            let e = evaluate(x, grad, &mut last_cc);
            cc_now.set(last_cc);
            grad.iter_mut().for_each(|g| *g *= scale);
            e * scale
        },
        &mut || {
            iteration += 1;
            let go = keep_going(iteration, cc_now.get());
            cancelled |= !go;
            go
        },
    );
    let mut correlation = 0.0;
    evaluate(&theta, &mut scratch, &mut correlation);
    let atom_bs: Vec<f64> = residue_of
        .iter()
        .enumerate()
        .map(|(i, &r)| atom_b(&theta, i, r))
        .collect();
    let b = mean_per(&atom_bs, residue_of, residues);
    BRefinement {
        floor_b: shared_floor(&b, options.resolution_angstrom),
        b,
        atom_b: atom_bs,
        correlation_start,
        correlation,
        iterations: result.iterations,
        zone_voxels: zone_index.len(),
        cancelled,
    }
}

/// The mean of `values` over the items of each of `groups` groups (`group_of` per item).
pub fn mean_per(values: &[f64], group_of: &[usize], groups: usize) -> Vec<f64> {
    let mut sum = vec![0.0; groups];
    let mut count = vec![0usize; groups];
    for (v, &g) in values.iter().zip(group_of) {
        if g < groups {
            sum[g] += v;
            count[g] += 1;
        }
    }
    sum.iter().zip(&count).map(|(s, &c)| s / c.max(1) as f64).collect()
}

/// The blur every residue of `b` shares: the resolution's ([`resolution_blur_b`]), or less when
/// some residue's b is below it (a sharpened map).
pub fn shared_floor(b: &[f64], resolution_angstrom: f32) -> f64 {
    resolution_blur_b(resolution_angstrom).min(b.iter().copied().fold(f64::INFINITY, f64::min) - 1.0)
}

/// The blur (Å²) a map at `resolution` carries by the molmap convention (σ = 0.225 × resolution
/// for a carbon), above the atoms' intrinsic width.
pub fn resolution_blur_b(resolution_angstrom: f32) -> f64 {
    let sigma = 0.225 * f64::from(resolution_angstrom);
    (EIGHT_PI2 * sigma * sigma - carbon_width_b()).max(0.0)
}

/// `values` on `grid` low-passed at `resolution` (the map tools' filter).
fn filtered(grid: &MapGrid, values: Vec<f32>, resolution: f32) -> Vec<f32> {
    let map = DensityMap {
        grid: grid.clone(),
        values,
        meta: Default::default(),
    };
    low_pass(&map, resolution).values
}

/// The `q` quantile (0–1) of `values` (nearest rank).
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::MapMeta;

    /// A helix-like chain of residues, three atoms each.
    fn chain(residues: usize) -> (GaussianAtoms, Vec<usize>) {
        let mut atoms = GaussianAtoms::default();
        let mut residue_of = Vec::new();
        for r in 0..residues {
            let t = r as f32 * 1.75;
            let centre = [2.3 * t.cos(), 2.3 * t.sin(), 1.5 * r as f32];
            for (k, off) in [[0.0, 0.0, 0.0], [1.2, 0.4, 0.3], [-0.5, 1.1, -0.4]].iter().enumerate() {
                atoms
                    .positions
                    .push([centre[0] + off[0], centre[1] + off[1], centre[2] + off[2]]);
                atoms.amplitudes.push([6.0, 7.0, 8.0][k]);
                atoms.sigmas.push(0.3);
                residue_of.push(r);
            }
        }
        (atoms, residue_of)
    }

    #[test]
    fn recovers_which_residues_are_blurred() {
        let (intrinsic, residue_of) = chain(12);
        let mut atoms = intrinsic.clone();
        // Truth: residues 0–3 rigid (B 10), 4–7 medium (B 60), 8–11 floppy (B 150), over a 3 Å
        // resolution blur.
        let truth: Vec<f64> = (0..12).map(|r| [10.0, 60.0, 150.0][r / 4]).collect();
        let blur = 0.225 * 3.0f64;
        for (i, &r) in residue_of.iter().enumerate() {
            atoms.sigmas[i] = (blur * blur + truth[r] / EIGHT_PI2).sqrt() as f32;
        }
        let grid = MapGrid::new([40, 40, 48], [0.8; 3], [-16.0, -16.0, -12.0]);
        let map = DensityMap {
            values: simulate(&grid, &atoms),
            grid,
            meta: MapMeta::default(),
        };
        let neighbours: Vec<(usize, usize, f64)> = (1..12).map(|r| (r - 1, r, 1.0)).collect();
        let fit = refine_b_factors(
            &map,
            &intrinsic,
            &residue_of,
            &[],
            12,
            &neighbours,
            &BRefineOptions {
                low_pass: false,
                ..BRefineOptions::new(3.0)
            },
            &mut |_, _| true,
        );
        assert!(fit.correlation > 0.995, "cc {}", fit.correlation);
        let mean = |range: std::ops::Range<usize>| range.clone().map(|r| fit.b[r]).sum::<f64>() / range.len() as f64;
        let (rigid, medium, floppy) = (mean(0..4), mean(4..8), mean(8..12));
        // Differences between groups come back within 20 % of the truth's.
        assert!(((medium - rigid) - 50.0).abs() < 10.0, "{rigid} {medium} {floppy}");
        assert!(((floppy - medium) - 90.0).abs() < 18.0, "{rigid} {medium} {floppy}");
    }
}
