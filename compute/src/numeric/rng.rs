//! The one random number generator: splitmix64, small, seedable and the same on every machine,
//! so simulated data sets, k-means starts and batch orders are reproducible. Its output mix is
//! also a bijection on u64, which makes well-spread unique ids ([`mix64`]).

use crate::geometry::{Mat3, matrix_from_quaternion};

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function: a bijection on u64 that spreads nearby inputs apart.
pub fn mix64(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small, seedable generator (splitmix64) so data sets are reproducible everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix64(self.0)
    }

    /// Uniform in [0, n) (n > 0; the modulo bias is below 2⁻⁴⁰ for any n a data set has).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// Fisher–Yates shuffle drawing each index from [`Self::uniform`] (the order particle
    /// refinement's recorded results were measured with).
    pub fn shuffle_by_uniform<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.uniform() * (i + 1) as f64) as usize % (i + 1);
            items.swap(i, j);
        }
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A uniformly random rotation (Shoemake).
    pub fn rotation(&mut self) -> Mat3 {
        let (u1, u2, u3) = (self.uniform(), self.uniform(), self.uniform());
        let tau = std::f64::consts::TAU;
        let (w, x, y, z) = (
            (u1.sqrt()) * (tau * u3).cos(),
            (1.0 - u1).sqrt() * (tau * u2).sin(),
            (1.0 - u1).sqrt() * (tau * u2).cos(),
            u1.sqrt() * (tau * u3).sin(),
        );
        matrix_from_quaternion([w, x, y, z])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_and_normal_have_the_right_moments() {
        let mut rng = Rng::new(7);
        let n = 100_000;
        let u: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
        let mean = u.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "uniform mean {mean}");
        let g: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let var = g.iter().map(|v| v * v).sum::<f64>() / n as f64;
        assert!((var - 1.0).abs() < 0.02, "normal variance {var}");
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..100).collect();
        Rng::new(3).shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}
