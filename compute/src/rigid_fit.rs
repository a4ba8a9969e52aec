//! Rigid fitting of a model into a map, in the style of ChimeraX's fitmap: steepest ascent of
//! the correlation (about the mean) between the map and the model's simulated density, over
//! rotation about the model's centre and translation, with a step that starts at 0.5 voxel and
//! halves on every failed move until it is below 0.01 voxel. A global search starts the local
//! fit from many orientations spread over SO(3), clusters the results (6°, 3 Å) and ranks them.

use rayon::prelude::*;

use crate::geometry::{Mat3, matrix_from_rotvec, mul, rotvec_from_matrix, transpose};
use crate::maps::DensityMap;
use crate::maps::density::{GaussianAtoms, simulate, simulate_backward};
use crate::models::compare::RigidTransform;
use crate::numeric::rng::Rng;

#[derive(Clone, Copy, Debug)]
pub struct RigidFitOptions {
    pub initial_step_voxels: f32,
    pub final_step_voxels: f32,
    pub max_evaluations: usize,
}

impl Default for RigidFitOptions {
    fn default() -> Self {
        Self {
            initial_step_voxels: 0.5,
            final_step_voxels: 0.01,
            max_evaluations: 2000,
        }
    }
}

/// A placement: `transform` maps the input coordinates to the fitted ones.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Placement {
    #[serde(skip)]
    pub transform: RigidTransform,
    pub correlation: f64,
    pub evaluations: usize,
    /// How far the model's centre moved, Å.
    pub shift_angstrom: f64,
    /// Rotation angle relative to the input, degrees.
    pub rotation_deg: f64,
}

/// Correlation about the mean of `map` with `simulated`, and its gradient with respect to
/// every simulated value.
fn correlation_and_gradient(map: &[f32], map_mean: f64, map_norm: f64, simulated: &[f32]) -> (f64, Vec<f32>) {
    let n = simulated.len() as f64;
    let sim_mean = simulated.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (mut cov, mut var) = (0f64, 0f64);
    for (&a, &s) in map.iter().zip(simulated) {
        let (x, y) = (f64::from(a) - map_mean, f64::from(s) - sim_mean);
        cov += x * y;
        var += y * y;
    }
    if var <= 0.0 || map_norm <= 0.0 {
        return (0.0, vec![0.0; simulated.len()]);
    }
    let sim_norm = var.sqrt();
    let cc = cov / (map_norm * sim_norm);
    // ∂cc/∂s_v = A_v/(|A||S|) − cc·S_v/|S|² (mean terms vanish since ΣA = ΣS = 0).
    let grad = map
        .iter()
        .zip(simulated)
        .map(|(&a, &s)| {
            ((f64::from(a) - map_mean) / (map_norm * sim_norm) - cc * (f64::from(s) - sim_mean) / var) as f32
        })
        .collect();
    (cc, grad)
}

/// Everything that stays fixed while one model is fitted into one map.
pub struct RigidFitter<'a> {
    map: &'a DensityMap,
    atoms: &'a GaussianAtoms,
    centre: [f64; 3],
    radius_of_gyration: f64,
    map_mean: f64,
    map_norm: f64,
}

impl<'a> RigidFitter<'a> {
    pub fn new(map: &'a DensityMap, atoms: &'a GaussianAtoms) -> Self {
        let n = atoms.len().max(1) as f64;
        let mut centre = [0f64; 3];
        for p in &atoms.positions {
            for k in 0..3 {
                centre[k] += f64::from(p[k]) / n;
            }
        }
        let rg = (atoms
            .positions
            .iter()
            .map(|p| (0..3).map(|k| (f64::from(p[k]) - centre[k]).powi(2)).sum::<f64>())
            .sum::<f64>()
            / n)
            .sqrt();
        let map_mean = map.values.iter().map(|&v| f64::from(v)).sum::<f64>() / map.values.len().max(1) as f64;
        let map_norm = map
            .values
            .iter()
            .map(|&v| (f64::from(v) - map_mean).powi(2))
            .sum::<f64>()
            .sqrt();
        Self {
            map,
            atoms,
            centre,
            radius_of_gyration: rg.max(1.0),
            map_mean,
            map_norm,
        }
    }

    /// The atoms placed by `transform`.
    pub fn placed(&self, transform: &RigidTransform) -> GaussianAtoms {
        let mut out = self.atoms.clone();
        for p in &mut out.positions {
            let q = transform.apply(p.map(f64::from));
            *p = q.map(|v| v as f32);
        }
        out
    }

    /// Correlation of the placed model, and the gradient in (translation, torque) about the
    /// placed centre.
    fn evaluate(&self, transform: &RigidTransform) -> (f64, [f64; 3], [f64; 3]) {
        let placed = self.placed(transform);
        let simulated = simulate(&self.map.grid, &placed);
        let (cc, dsim) = correlation_and_gradient(&self.map.values, self.map_mean, self.map_norm, &simulated);
        let grads = simulate_backward(&self.map.grid, &placed, &dsim);
        let c = transform.apply(self.centre);
        let (mut force, mut torque) = ([0f64; 3], [0f64; 3]);
        for (p, g) in placed.positions.iter().zip(&grads.positions) {
            let r = [0, 1, 2].map(|k| f64::from(p[k]) - c[k]);
            let g = g.map(f64::from);
            for k in 0..3 {
                force[k] += g[k];
            }
            torque[0] += r[1] * g[2] - r[2] * g[1];
            torque[1] += r[2] * g[0] - r[0] * g[2];
            torque[2] += r[0] * g[1] - r[1] * g[0];
        }
        (cc, force, torque)
    }

    /// `transform` followed by a rotation of `rotvec` about the placed centre and a shift.
    fn step(&self, transform: &RigidTransform, shift: [f64; 3], rotvec: [f64; 3]) -> RigidTransform {
        let c = transform.apply(self.centre);
        let r: Mat3 = matrix_from_rotvec(rotvec);
        let rotation = mul(&r, &transform.rotation);
        let moved = RigidTransform::rotation_about(r, c, [0, 1, 2].map(|k| c[k] + shift[k]));
        let t = moved.apply(transform.translation);
        RigidTransform {
            rotation,
            translation: t,
        }
    }

    /// Local steepest ascent from `start`; `on_step(evaluations, correlation, transform)` may
    /// return false to stop early (cancel), keeping the best so far.
    pub fn fit_local(
        &self,
        start: RigidTransform,
        options: RigidFitOptions,
        on_step: &mut dyn FnMut(usize, f64, &RigidTransform) -> bool,
    ) -> Placement {
        let voxel = f64::from(
            self.map
                .grid
                .voxel_size_angstrom
                .iter()
                .copied()
                .fold(f32::INFINITY, f32::min),
        );
        let initial = f64::from(options.initial_step_voxels) * voxel;
        let mut step = initial;
        let stop = f64::from(options.final_step_voxels) * voxel;
        let mut current = start;
        let (mut cc, mut force, mut torque) = self.evaluate(&current);
        let mut evaluations = 1;
        while step >= stop && evaluations < options.max_evaluations {
            // One "Å of motion" per unit: torque/Rg moves atoms at the radius of gyration.
            let rg = self.radius_of_gyration;
            let u = [
                force[0],
                force[1],
                force[2],
                torque[0] / rg,
                torque[1] / rg,
                torque[2] / rg,
            ];
            let norm = u.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm <= 0.0 {
                break;
            }
            let shift = [0, 1, 2].map(|k| step * u[k] / norm);
            let rotvec = [3, 4, 5].map(|k| step * u[k] / norm / rg);
            let candidate = self.step(&current, shift, rotvec);
            let (c2, f2, t2) = self.evaluate(&candidate);
            evaluations += 1;
            if c2 > cc {
                (current, cc, force, torque) = (candidate, c2, f2, t2);
                step = (step * 1.5).min(initial);
            } else {
                step *= 0.5;
            }
            if !on_step(evaluations, cc, &current) {
                break;
            }
        }
        self.placement(current, cc, evaluations, &start)
    }

    fn placement(
        &self,
        transform: RigidTransform,
        correlation: f64,
        evaluations: usize,
        start: &RigidTransform,
    ) -> Placement {
        let c0 = start.apply(self.centre);
        let c1 = transform.apply(self.centre);
        let relative = mul(&transform.rotation, &transpose(&start.rotation));
        let angle = rotvec_from_matrix(&relative)
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt()
            .to_degrees();
        Placement {
            transform,
            correlation,
            evaluations,
            shift_angstrom: (0..3).map(|k| (c1[k] - c0[k]).powi(2)).sum::<f64>().sqrt(),
            rotation_deg: angle,
        }
    }

    /// Global search: `starts` orientations spread over SO(3), each centred on the map's
    /// density centre, fitted locally; distinct solutions (beyond 6° or 3 Å) best first.
    pub fn fit_global(
        &self,
        starts: usize,
        seed: u64,
        options: RigidFitOptions,
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Vec<Placement> {
        let target = density_centre(self.map);
        let rotations = spread_rotations(starts, seed);
        let results: Vec<Placement> = rotations
            .par_iter()
            .filter_map(|rotvec| {
                if cancel() {
                    return None;
                }
                let r = matrix_from_rotvec(*rotvec);
                let rc = RigidTransform {
                    rotation: r,
                    translation: [0.0; 3],
                }
                .apply(self.centre);
                let start = RigidTransform {
                    rotation: r,
                    translation: [0, 1, 2].map(|k| target[k] - rc[k]),
                };
                Some(self.fit_local(start, options, &mut |_, _, _| !cancel()))
            })
            .collect();
        cluster_placements(results, self)
    }
}

/// Placements best first, keeping only those beyond 6° and 3 Å (at the model's centre) of a
/// better one.
pub fn cluster_placements(mut placements: Vec<Placement>, fitter: &RigidFitter<'_>) -> Vec<Placement> {
    placements.sort_by(|a, b| b.correlation.total_cmp(&a.correlation));
    let mut distinct: Vec<Placement> = Vec::new();
    for p in placements {
        let same = distinct.iter().any(|q| {
            let rel = mul(&p.transform.rotation, &transpose(&q.transform.rotation));
            let angle = rotvec_from_matrix(&rel)
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
                .to_degrees();
            let (a, b) = (p.transform.apply(fitter.centre), q.transform.apply(fitter.centre));
            let d = (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt();
            angle < 6.0 && d < 3.0
        });
        if !same {
            distinct.push(p);
        }
    }
    distinct
}

/// Centre of the map's positive density above its mean (where a model should go).
pub fn density_centre(map: &DensityMap) -> [f64; 3] {
    let mean = map.values.iter().map(|&v| f64::from(v)).sum::<f64>() / map.values.len().max(1) as f64;
    let [nx, ny, nz] = map.grid.dims;
    let (mut w, mut c) = (0f64, [0f64; 3]);
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let v = f64::from(map.values[map.grid.index(x, y, z)]) - mean;
                if v > 0.0 {
                    let p = map.grid.world_from_voxel([x as f32, y as f32, z as f32]);
                    w += v;
                    for k in 0..3 {
                        c[k] += v * f64::from(p[k]);
                    }
                }
            }
        }
    }
    if w > 0.0 {
        c.map(|v| v / w)
    } else {
        map.grid
            .world_from_voxel(map.grid.dims.map(|d| d as f32 / 2.0))
            .map(f64::from)
    }
}

/// `n` rotations (as rotation vectors) spread over SO(3): the identity first, then uniformly
/// random unit quaternions from a fixed seed.
pub fn spread_rotations(n: usize, seed: u64) -> Vec<[f64; 3]> {
    let mut rng = Rng::new(seed);
    let mut out = vec![[0.0; 3]];
    while out.len() < n {
        out.push(rotvec_from_matrix(&rng.rotation()));
    }
    out.truncate(n.max(1));
    out
}
