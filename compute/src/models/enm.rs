//! An elastic network model (ANM) of a structure's Cα atoms and the Gaussian prior it defines:
//! soft collective modes get large variance, stiff local ones small, rigid-body motions are
//! free. The prior's exact denoiser E[x | xₜ] = x₀ + Σ(Σ + σ²I)⁻¹(xₜ − x₀) is cheap in the mode
//! basis; guided sampling uses it as its built-in denoiser (docs/science.md §4).

use crate::numeric::eigen::symmetric_eigen;

/// Normal modes of an anisotropic network: eigenvalues ascending, orthonormal eigenvectors
/// (each 3N long, x,y,z per node).
#[derive(Clone, Debug)]
pub struct NormalModes {
    pub reference: Vec<[f64; 3]>,
    pub eigenvalues: Vec<f64>,
    pub modes: Vec<Vec<f64>>,
}

/// The ANM Hessian (3N × 3N, row-major): springs of stiffness `gamma` between nodes closer than
/// `cutoff_angstrom`.
pub fn anm_hessian(nodes: &[[f64; 3]], cutoff_angstrom: f64, gamma: f64) -> Vec<f64> {
    let n = nodes.len();
    let dim = 3 * n;
    let mut h = vec![0f64; dim * dim];
    for i in 0..n {
        for j in i + 1..n {
            let d = [
                nodes[j][0] - nodes[i][0],
                nodes[j][1] - nodes[i][1],
                nodes[j][2] - nodes[i][2],
            ];
            let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
            if r2 > cutoff_angstrom * cutoff_angstrom || r2 == 0.0 {
                continue;
            }
            for a in 0..3 {
                for b in 0..3 {
                    let k = -gamma * d[a] * d[b] / r2;
                    h[(3 * i + a) * dim + 3 * j + b] += k;
                    h[(3 * j + a) * dim + 3 * i + b] += k;
                    h[(3 * i + a) * dim + 3 * i + b] -= k;
                    h[(3 * j + a) * dim + 3 * j + b] -= k;
                }
            }
        }
    }
    h
}

impl NormalModes {
    /// The ANM of `nodes` (15 Å cutoff and unit springs are the usual choice).
    pub fn anm(nodes: &[[f64; 3]], cutoff_angstrom: f64, gamma: f64) -> Self {
        let dim = 3 * nodes.len();
        let (eigenvalues, modes) = symmetric_eigen(anm_hessian(nodes, cutoff_angstrom, gamma), dim);
        Self {
            reference: nodes.to_vec(),
            eigenvalues,
            modes,
        }
    }

    /// The largest |eigenvalue| (at least 1e-300): the scale below which a mode counts as rigid.
    pub fn largest_magnitude(&self) -> f64 {
        self.eigenvalues.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300)
    }

    /// Squared overlap of displacement `d` (3N) with each mode, as a fraction of |d|².
    pub fn overlaps(&self, d: &[f64]) -> Vec<f64> {
        let norm2: f64 = d.iter().map(|x| x * x).sum::<f64>().max(1e-300);
        self.modes
            .iter()
            .map(|m| m.iter().zip(d).map(|(a, b)| a * b).sum::<f64>().powi(2) / norm2)
            .collect()
    }
}

/// The Gaussian prior N(x₀, Σ) of a network: variance `temperature / λ` along each elastic mode
/// (capped at `max_variance`), `max_variance` along the six rigid-body modes, and
/// `floor_variance` along whatever the kept modes do not span.
#[derive(Clone, Debug)]
pub struct ModePrior {
    pub mean: Vec<f64>,
    pub modes: Vec<Vec<f64>>,
    pub variances: Vec<f64>,
    pub floor_variance: f64,
}

impl ModePrior {
    /// Keeps the `kept` softest modes (rigid-body ones included).
    pub fn new(network: &NormalModes, kept: usize, temperature: f64, max_variance: f64, floor_variance: f64) -> Self {
        let top = network.largest_magnitude();
        let kept = kept.min(network.modes.len());
        let variances = network.eigenvalues[..kept]
            .iter()
            .map(|&lambda| {
                if lambda <= 1e-9 * top {
                    max_variance
                } else {
                    (temperature / lambda).min(max_variance)
                }
            })
            .collect();
        Self {
            mean: network.reference.iter().flatten().copied().collect(),
            modes: network.modes[..kept].to_vec(),
            variances,
            floor_variance,
        }
    }

    /// E[x | xₜ] for xₜ = x + σ·noise: each mode's component shrunk by s/(s + σ²).
    pub fn denoise(&self, noisy: &[f64], sigma: f64) -> Vec<f64> {
        let s2 = sigma * sigma;
        let d: Vec<f64> = noisy.iter().zip(&self.mean).map(|(x, m)| x - m).collect();
        let floor_gain = self.floor_variance / (self.floor_variance + s2);
        // Start from the floor's shrinkage of everything, then correct inside the kept modes.
        let mut out: Vec<f64> = self.mean.iter().zip(&d).map(|(m, di)| m + floor_gain * di).collect();
        for (mode, &variance) in self.modes.iter().zip(&self.variances) {
            let c: f64 = mode.iter().zip(&d).map(|(a, b)| a * b).sum();
            let gain = variance / (variance + s2) - floor_gain;
            for (o, m) in out.iter_mut().zip(mode) {
                *o += gain * c * m;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_shapes::helix;

    #[test]
    fn six_rigid_modes_and_orthonormal_vectors() {
        let network = NormalModes::anm(&helix(30), 15.0, 1.0);
        let top = network.eigenvalues[network.eigenvalues.len() - 1];
        assert!(
            network.eigenvalues[..6].iter().all(|v| v.abs() < 1e-9 * top),
            "{:?}",
            &network.eigenvalues[..8]
        );
        assert!(network.eigenvalues[6] > 1e-6 * top, "the seventh mode is elastic");
        for (i, a) in network.modes.iter().enumerate().step_by(7) {
            for (j, b) in network.modes.iter().enumerate().step_by(5) {
                let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((dot - expected).abs() < 1e-9, "modes {i}, {j}: {dot}");
            }
        }
    }

    #[test]
    fn the_denoiser_interpolates_between_the_sample_and_the_prior() {
        let nodes = helix(25);
        let network = NormalModes::anm(&nodes, 15.0, 1.0);
        let prior = ModePrior::new(&network, 20, 1.0, 1e4, 1e-3);
        let soft = &network.modes[6];
        let stiff = &network.modes[network.modes.len() - 1];
        let noisy: Vec<f64> = prior
            .mean
            .iter()
            .zip(soft.iter().zip(stiff))
            .map(|(m, (a, b))| m + 3.0 * a + 3.0 * b)
            .collect();
        let tiny = prior.denoise(&noisy, 1e-6);
        assert!(
            tiny.iter().zip(&noisy).all(|(a, b)| (a - b).abs() < 1e-6),
            "no noise: keep the sample"
        );
        let denoised = prior.denoise(&noisy, 1.0);
        let along = |v: &[f64], m: &[f64]| {
            v.iter()
                .zip(&prior.mean)
                .zip(m)
                .map(|((x, c), mm)| (x - c) * mm)
                .sum::<f64>()
        };
        assert!(
            along(&denoised, soft) > 2.0,
            "a soft mode survives: {}",
            along(&denoised, soft)
        );
        assert!(
            along(&denoised, stiff).abs() < 0.1,
            "a stiff mode is suppressed: {}",
            along(&denoised, stiff)
        );
        // Rigid translations are free.
        let moved: Vec<f64> = prior
            .mean
            .iter()
            .enumerate()
            .map(|(i, m)| m + if i % 3 == 0 { 5.0 } else { 0.0 })
            .collect();
        let kept = prior.denoise(&moved, 10.0);
        assert!(kept.iter().zip(&moved).all(|(a, b)| (a - b).abs() < 0.05));
    }
}
