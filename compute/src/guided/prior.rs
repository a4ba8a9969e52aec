//! The built-in denoiser of guided sampling: the exact posterior mean of a Gaussian prior
//! N(x₀, Σ) over all atom coordinates, with Σ built from an elastic network of the model
//! (docs/science.md §4). The network's nodes are the Cα (and nucleic-acid P) atoms, clustered into at
//! most `max_nodes` nodes for large models; every atom follows the nodes around it through a
//! smooth, fixed interpolation, so one mode of the network is one collective motion of all atoms.
//!
//! Σ = B V Bᵀ + f I: the columns of B are the six rigid-body motions and the softest elastic
//! modes carried to the atoms (each normalised), V their variances (temperature / eigenvalue,
//! calibrated so the elastic part has a chosen RMS fluctuation), f a small per-coordinate floor
//! that frees every atom only at the lowest noise levels. By Woodbury,
//! E[x | xₜ] = xₜ − σ²(Σ + σ²I)⁻¹(xₜ − x₀) = xₜ − (σ²/s)[d − B (sV⁻¹ + BᵀB)⁻¹ Bᵀ d], s = f + σ²,
//! d = xₜ − x₀: one K×K solve per step, K the number of kept modes.
//!
//! Re-centring moves x₀ to the current estimate (after restoring every residue's own geometry)
//! and rebuilds the network there, so a run can follow motions far beyond the linear reach of
//! the starting model's modes (iterative normal-mode fitting).

use nalgebra::{DMatrix, DVector};

use super::network::{carry_weights, network_nodes, residue_groups};
use crate::formats::model::Structure;
use crate::geometry::distance2;
use crate::models::compare::superpose;
use crate::models::enm::NormalModes;

/// A denoiser for the guided sampler: E[x | xₜ] at noise level σ, over flattened x,y,z
/// coordinates (Å) of the sampled atoms. A learned model plugs in behind the same interface.
pub trait Denoiser: Send {
    fn denoise(&self, noisy: &[f64], sigma: f64) -> Vec<f64>;
    /// Re-centre a prior that linearises about a structure on `estimate`; false if the
    /// denoiser has no such notion.
    fn recentre(&mut self, _estimate: &[f64]) -> bool {
        false
    }
    /// The denoiser's Jacobian (transposed) applied to a gradient at the estimate: turns
    /// ∇L(x̂₀) into ∇ₓₜ L(x̂₀(xₜ)), the gradient diffusion posterior sampling steps along. The
    /// default treats the denoiser as the identity.
    fn pull_back(&self, gradient: &[f64], _sigma: f64) -> Vec<f64> {
        gradient.to_vec()
    }
    /// The final model with the prior's notion of good local geometry put back (identity
    /// unless the denoiser has one).
    fn restore_geometry(&self, positions: &[[f64; 3]]) -> Vec<[f64; 3]> {
        positions.to_vec()
    }
    /// A short description for reports.
    fn describe(&self) -> String;
}

/// Settings of the elastic-network prior.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PriorOptions {
    /// Elastic modes kept (beyond the six rigid-body motions).
    pub modes: usize,
    /// Network nodes at most; larger models are clustered.
    pub max_nodes: usize,
    /// Spring cutoff between Cα nodes, Å (scaled up with the node spacing of clustered nodes).
    pub cutoff_angstrom: f64,
    /// RMS displacement of the atoms (Å) that the elastic modes carry under the prior.
    pub elastic_rmsd_angstrom: f64,
    /// RMS displacement (Å) of the rigid-body motions under the prior.
    pub rigid_rmsd_angstrom: f64,
    /// Per-coordinate variance (Å²) every atom has on its own.
    pub floor_variance_angstrom2: f64,
}

impl Default for PriorOptions {
    fn default() -> Self {
        Self {
            modes: 300,
            max_nodes: 400,
            cutoff_angstrom: 15.0,
            elastic_rmsd_angstrom: 3.0,
            rigid_rmsd_angstrom: 3.0,
            floor_variance_angstrom2: 0.02,
        }
    }
}

/// The elastic-network prior and its exact denoiser.
pub struct ElasticPrior {
    options: PriorOptions,
    residues: Vec<Vec<usize>>,
    /// Per residue, the atom used as its node (Cα or P), if any.
    anchors: Vec<Option<usize>>,
    /// The starting model (residue geometry is restored from it when re-centring).
    reference: Vec<[f64; 3]>,
    /// Atom pairs within one residue or two sequence-adjacent ones, closer than
    /// [`LOCAL_PAIR_ANGSTROM`] in the start, with their start distances: the chain's local
    /// geometry (peptide bonds and angles) that re-centring keeps.
    local_pairs: Vec<(usize, usize, f64)>,
    mean: Vec<f64>,
    /// Columns of B (each 3N long, unit norm) and their variances.
    basis: Vec<Vec<f64>>,
    variances: Vec<f64>,
    gram: DMatrix<f64>,
    nodes: usize,
    recentred: usize,
}

impl ElasticPrior {
    /// The prior of `positions` (the sampled atoms of `structure`, listed by `atoms`).
    pub fn new(structure: &Structure, atoms: &[usize], positions: &[[f64; 3]], options: PriorOptions) -> Self {
        let residues = residue_groups(structure, atoms);
        let anchors = residues
            .iter()
            .map(|group| {
                group
                    .iter()
                    .copied()
                    .find(|&i| structure.atoms[atoms[i]].is_alpha_carbon())
                    .or_else(|| group.iter().copied().find(|&i| structure.atoms[atoms[i]].name == "P"))
            })
            .collect();
        let mut prior = Self {
            options,
            residues,
            anchors,
            reference: positions.to_vec(),
            local_pairs: Vec::new(),
            mean: Vec::new(),
            basis: Vec::new(),
            variances: Vec::new(),
            gram: DMatrix::zeros(0, 0),
            nodes: 0,
            recentred: 0,
        };
        prior.local_pairs = local_pairs(structure, atoms, positions, &prior.residues);
        prior.build(positions);
        prior
    }

    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The basis (columns 3N long, unit norm; the 6 rigid motions first) and each column's
    /// prior variance (Å²).
    pub fn modes(&self) -> (&[Vec<f64>], &[f64]) {
        (&self.basis, &self.variances)
    }

    pub fn node_count(&self) -> usize {
        self.nodes
    }

    pub fn recentre_count(&self) -> usize {
        self.recentred
    }

    /// Builds the network, the basis and the Gram matrix about `positions`.
    fn build(&mut self, positions: &[[f64; 3]]) {
        let n_atoms = positions.len();
        let (nodes, spacing) = network_nodes(positions, &self.residues, &self.anchors, self.options.max_nodes);
        let cutoff = self.options.cutoff_angstrom.max(2.5 * spacing);
        let network = NormalModes::anm(&nodes, cutoff, 1.0);
        let weights = carry_weights(positions, &nodes, spacing);
        let top = network.largest_magnitude();
        let elastic: Vec<(f64, &Vec<f64>)> = network
            .eigenvalues
            .iter()
            .zip(&network.modes)
            .filter(|(l, _)| **l > 1e-7 * top)
            .take(self.options.modes)
            .map(|(l, m)| (*l, m))
            .collect();

        let mut basis = rigid_motions(positions);
        let n = n_atoms as f64;
        let rigid_variance = self.options.rigid_rmsd_angstrom.powi(2) * n;
        let mut variances = vec![rigid_variance; basis.len()];
        // Elastic modes carried to the atoms: variance ∝ |carried mode|² / λ, scaled so the
        // elastic part's mean-square displacement per atom is elastic_rmsd².
        let mut raw_variances = Vec::new();
        for (lambda, mode) in &elastic {
            let mut column = vec![0f64; 3 * n_atoms];
            for (a, w) in weights.iter().enumerate() {
                for &(node, weight) in w {
                    for k in 0..3 {
                        column[3 * a + k] += weight * mode[3 * node + k];
                    }
                }
            }
            let norm2: f64 = column.iter().map(|v| v * v).sum();
            if norm2 <= 1e-12 {
                continue;
            }
            let norm = norm2.sqrt();
            column.iter_mut().for_each(|v| *v /= norm);
            basis.push(column);
            raw_variances.push(norm2 / lambda);
        }
        let raw_msd: f64 = raw_variances.iter().sum::<f64>() / n;
        let temperature = if raw_msd > 0.0 {
            self.options.elastic_rmsd_angstrom.powi(2) / raw_msd
        } else {
            0.0
        };
        variances.extend(raw_variances.iter().map(|v| v * temperature));

        let k = basis.len();
        let gram = DMatrix::from_fn(k, k, |i, j| basis[i].iter().zip(&basis[j]).map(|(a, b)| a * b).sum());
        self.mean = positions.iter().flatten().copied().collect();
        self.basis = basis;
        self.variances = variances;
        self.gram = gram;
        self.nodes = nodes.len();
    }

    /// s(Σ + σ²I)⁻¹ d = d − B (sV⁻¹ + BᵀB)⁻¹ Bᵀ d, with s = f + σ² (Woodbury).
    fn woodbury_residual(&self, mut d: Vec<f64>, sigma: f64) -> Vec<f64> {
        use rayon::prelude::*;
        let s = self.options.floor_variance_angstrom2 + sigma * sigma;
        let projections = DVector::from_vec(
            self.basis
                .par_iter()
                .map(|b| b.iter().zip(&d).map(|(u, v)| u * v).sum())
                .collect(),
        );
        let mut system = self.gram.clone();
        for (i, v) in self.variances.iter().enumerate() {
            system[(i, i)] += s / v.max(1e-300);
        }
        let coefficients = system
            .cholesky()
            .map(|c| c.solve(&projections))
            .unwrap_or_else(|| DVector::zeros(self.basis.len()));
        for (b, c) in self.basis.iter().zip(coefficients.iter()) {
            for (r, u) in d.iter_mut().zip(b) {
                *r -= c * u;
            }
        }
        d
    }

    /// Every residue of the reference model placed rigidly where `estimate` has it, then the
    /// links between residues relaxed towards their start distances, then the residues placed
    /// once more: residue geometry (bond lengths, angles, side-chain shapes) comes back exactly
    /// and the chain stays unbroken.
    pub fn restore_residue_geometry(&self, estimate: &[[f64; 3]]) -> Vec<[f64; 3]> {
        let placed = self.place_residues(estimate);
        let relaxed = relax_pairs(&placed, &self.local_pairs, 60);
        self.place_residues(&relaxed)
    }

    fn place_residues(&self, estimate: &[[f64; 3]]) -> Vec<[f64; 3]> {
        let mut out = estimate.to_vec();
        for group in &self.residues {
            if group.len() < 3 {
                continue;
            }
            let reference: Vec<[f64; 3]> = group.iter().map(|&i| self.reference[i]).collect();
            let current: Vec<[f64; 3]> = group.iter().map(|&i| estimate[i]).collect();
            let t = superpose(&reference, &current);
            for (&i, r) in group.iter().zip(&reference) {
                out[i] = t.apply(*r);
            }
        }
        out
    }
}

/// Pairs closer than this in the start model, within a residue or between sequence neighbours,
/// are the local geometry re-centring keeps.
pub const LOCAL_PAIR_ANGSTROM: f64 = 4.5;

fn local_pairs(
    structure: &Structure,
    atoms: &[usize],
    positions: &[[f64; 3]],
    residues: &[Vec<usize>],
) -> Vec<(usize, usize, f64)> {
    let mut out = Vec::new();
    for (r, group) in residues.iter().enumerate() {
        let mut partners: Vec<usize> = group.clone();
        if let Some(next) = residues.get(r + 1)
            && let (Some(&a), Some(&b)) = (group.first(), next.first())
            && structure.atoms[atoms[a]].chain_id == structure.atoms[atoms[b]].chain_id
        {
            partners.extend(next);
        }
        for &i in group {
            for &j in &partners {
                if j > i {
                    let d = distance2(&positions[i], &positions[j]).sqrt();
                    if d < LOCAL_PAIR_ANGSTROM {
                        out.push((i, j, d));
                    }
                }
            }
        }
    }
    out
}

/// Moves atoms so the pairs approach their target distances (averaged, Jacobi-style projections,
/// like position-based dynamics).
fn relax_pairs(positions: &[[f64; 3]], pairs: &[(usize, usize, f64)], iterations: usize) -> Vec<[f64; 3]> {
    let mut p = positions.to_vec();
    let mut shift = vec![[0f64; 3]; p.len()];
    let mut count = vec![0u32; p.len()];
    for _ in 0..iterations {
        shift.iter_mut().for_each(|s| *s = [0.0; 3]);
        count.iter_mut().for_each(|c| *c = 0);
        for &(i, j, target) in pairs {
            let d = [p[j][0] - p[i][0], p[j][1] - p[i][1], p[j][2] - p[i][2]];
            let length = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
            if length < 1e-9 {
                continue;
            }
            let k = 0.5 * (length - target) / length;
            for a in 0..3 {
                shift[i][a] += k * d[a];
                shift[j][a] -= k * d[a];
            }
            count[i] += 1;
            count[j] += 1;
        }
        for ((q, s), &c) in p.iter_mut().zip(&shift).zip(&count) {
            if c > 0 {
                for a in 0..3 {
                    q[a] += s[a] / f64::from(c);
                }
            }
        }
    }
    p
}

/// The six rigid-body motions of `positions` as unit vectors: translations along x, y, z and
/// rotations about the centroid.
fn rigid_motions(positions: &[[f64; 3]]) -> Vec<Vec<f64>> {
    let n = positions.len().max(1) as f64;
    let c: [f64; 3] = std::array::from_fn(|k| positions.iter().map(|p| p[k]).sum::<f64>() / n);
    let mut out = Vec::new();
    for axis in 0..3 {
        let mut v = vec![0f64; 3 * positions.len()];
        for a in 0..positions.len() {
            v[3 * a + axis] = 1.0;
        }
        out.push(v);
    }
    for axis in 0..3 {
        let mut v = vec![0f64; 3 * positions.len()];
        for (a, p) in positions.iter().enumerate() {
            let r = [p[0] - c[0], p[1] - c[1], p[2] - c[2]];
            let u = [
                f64::from(u8::from(axis == 0)),
                f64::from(u8::from(axis == 1)),
                f64::from(u8::from(axis == 2)),
            ];
            let cross = [
                u[1] * r[2] - u[2] * r[1],
                u[2] * r[0] - u[0] * r[2],
                u[0] * r[1] - u[1] * r[0],
            ];
            v[3 * a..3 * a + 3].copy_from_slice(&cross);
        }
        out.push(v);
    }
    for v in &mut out {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
    }
    out
}

impl Denoiser for ElasticPrior {
    fn denoise(&self, noisy: &[f64], sigma: f64) -> Vec<f64> {
        let s2 = sigma * sigma;
        let s = self.options.floor_variance_angstrom2 + s2;
        let d: Vec<f64> = noisy.iter().zip(&self.mean).map(|(x, m)| x - m).collect();
        let residual = self.woodbury_residual(d, sigma);
        noisy.iter().zip(&residual).map(|(x, r)| x - s2 / s * r).collect()
    }

    /// J = Σ(Σ + σ²I)⁻¹ = I − σ²(Σ + σ²I)⁻¹ (symmetric, so J = Jᵀ).
    fn pull_back(&self, gradient: &[f64], sigma: f64) -> Vec<f64> {
        let s2 = sigma * sigma;
        let s = self.options.floor_variance_angstrom2 + s2;
        let residual = self.woodbury_residual(gradient.to_vec(), sigma);
        gradient.iter().zip(&residual).map(|(g, r)| g - s2 / s * r).collect()
    }

    fn recentre(&mut self, estimate: &[f64]) -> bool {
        let positions: Vec<[f64; 3]> = estimate.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        let restored = self.restore_residue_geometry(&positions);
        self.build(&restored);
        self.recentred += 1;
        true
    }

    fn restore_geometry(&self, positions: &[[f64; 3]]) -> Vec<[f64; 3]> {
        self.restore_residue_geometry(positions)
    }

    fn describe(&self) -> String {
        format!(
            "elastic-network prior: {} nodes, {} modes + 6 rigid, elastic RMS {:.1} Å, floor {:.3} Å²",
            self.nodes,
            self.basis.len().saturating_sub(6),
            self.options.elastic_rmsd_angstrom,
            self.options.floor_variance_angstrom2
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::model::Atom;
    use crate::test_shapes::helix;

    fn helix_structure(n: usize) -> Structure {
        let atoms = (0..n)
            .flat_map(|i| {
                ["N", "CA", "C"].map(|name| Atom {
                    name: name.into(),
                    alt_loc: String::new(),
                    residue_name: "ALA".into(),
                    chain_id: "A".into(),
                    residue_number: i as i32,
                    insertion_code: String::new(),
                    element: name[..1].into(),
                    formal_charge: 0,
                    occupancy: 1.0,
                    b_factor: 0.0,
                    hetero: false,
                    ..Atom::default()
                })
            })
            .collect();
        let frame = helix(n)
            .iter()
            .flat_map(|p| {
                [
                    [p[0] as f32 - 0.8, p[1] as f32, p[2] as f32],
                    p.map(|v| v as f32),
                    [p[0] as f32 + 0.8, p[1] as f32 + 0.5, p[2] as f32],
                ]
            })
            .collect();
        Structure {
            name: "helix".into(),
            atoms,
            frames: vec![frame],
            info: Default::default(),
        }
    }

    fn prior_of(structure: &Structure, options: PriorOptions) -> (ElasticPrior, Vec<f64>) {
        let atoms: Vec<usize> = (0..structure.atoms.len()).collect();
        let positions: Vec<[f64; 3]> = structure.frames[0].iter().map(|p| p.map(f64::from)).collect();
        let prior = ElasticPrior::new(structure, &atoms, &positions, options);
        let flat = positions.iter().flatten().copied().collect();
        (prior, flat)
    }

    /// The Woodbury form against the dense posterior mean x₀ + Σ(Σ + σ²I)⁻¹(xₜ − x₀).
    #[test]
    fn the_denoiser_is_the_exact_posterior_mean() {
        let structure = helix_structure(12);
        let (prior, mean) = prior_of(
            &structure,
            PriorOptions {
                modes: 10,
                ..PriorOptions::default()
            },
        );
        let dim = mean.len();
        let mut sigma_matrix = DMatrix::<f64>::identity(dim, dim) * prior.options.floor_variance_angstrom2;
        for (b, v) in prior.basis.iter().zip(&prior.variances) {
            let col = DVector::from_column_slice(b);
            sigma_matrix += &col * col.transpose() * *v;
        }
        let mut rng = crate::numeric::rng::Rng::new(5);
        let noisy: Vec<f64> = mean.iter().map(|m| m + 2.0 * rng.normal()).collect();
        for sigma in [0.05, 1.0, 20.0] {
            let d = DVector::from_iterator(dim, noisy.iter().zip(&mean).map(|(x, m)| x - m));
            let a = &sigma_matrix + DMatrix::<f64>::identity(dim, dim) * (sigma * sigma);
            let dense = &sigma_matrix * a.lu().solve(&d).expect("solvable");
            let fast = prior.denoise(&noisy, sigma);
            for i in 0..dim {
                let expected = mean[i] + dense[i];
                assert!(
                    (fast[i] - expected).abs() < 1e-6 * (1.0 + expected.abs()),
                    "σ {sigma}, coordinate {i}: {} vs {expected}",
                    fast[i]
                );
            }
        }
    }

    #[test]
    fn rigid_motions_pass_and_residue_geometry_is_restored() {
        let structure = helix_structure(20);
        let (prior, mean) = prior_of(&structure, PriorOptions::default());
        let shifted: Vec<f64> = mean
            .iter()
            .enumerate()
            .map(|(i, m)| m + if i % 3 == 1 { 1.5 } else { 0.0 })
            .collect();
        let out = prior.denoise(&shifted, 0.5);
        assert!(
            out.iter().zip(&shifted).all(|(a, b)| (a - b).abs() < 0.05),
            "a small translation survives denoising"
        );
        // A distorted copy gets each residue's exact shape back.
        let positions: Vec<[f64; 3]> = mean.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
        let distorted: Vec<[f64; 3]> = positions
            .iter()
            .enumerate()
            .map(|(i, p)| [p[0] + 0.3 * (i as f64).sin(), p[1], p[2] + 2.0])
            .collect();
        let restored = prior.restore_residue_geometry(&distorted);
        let d = |p: &[[f64; 3]], i: usize, j: usize| distance2(&p[i], &p[j]).sqrt();
        for r in 0..20 {
            assert!((d(&restored, 3 * r, 3 * r + 1) - d(&positions, 3 * r, 3 * r + 1)).abs() < 1e-9);
        }
    }
}
