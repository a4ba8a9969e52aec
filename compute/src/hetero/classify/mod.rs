//! 3D classification with known poses, seeded by latent clusters: the expectation–maximisation
//! of RELION's 3D classification.
//!
//! Each round
//! 1. reconstructs every class in Fourier space from its particles, each weighted by its share
//!    in the class: each particle's spectrum, re-centred, is inserted at its pose with trilinear
//!    weights, Σ CTF·F / (Σ CTF² + λ). λ per shell is a Wiener term from the Fourier shell
//!    correlation of two half-set reconstructions inside the class's envelope:
//!    λ = ⟨Σ CTF²⟩ / (T·SSNR), SSNR = 2·FSC/(1 − FSC), with RELION's T = 4 for classification;
//! 2. masks each reconstruction by its own envelope (15 Å low-pass, soft threshold), so that
//!    noise outside the particle takes no part in the comparison (nor in the FSC above);
//! 3. scores every particle against every class: Σ |F − CTF·V(k)|² / σ²(shell) − ln(class
//!    fraction), the noise power σ² per shell measured from the previous round's residuals. A
//!    particle is compared with its own classes *without its own contribution* (leave one out);
//!    otherwise its noise, inside the reference, holds it where it is. Its shares for the next
//!    round are the posterior probabilities exp(−score), normalised (soft assignment), once
//!    rounds of hard assignment to the best class (which break the symmetry of poor seeds) have
//!    settled to fewer than 0.5 % of particles moving.
//!
//! All frequencies below Nyquist of the particle box (or of `image_size` when smaller) take part,
//! which is what lets it separate states that a latent space learned at a coarser size mixes.

mod reconstruction;

use rayon::prelude::*;
use rustfft::num_complex::Complex32;

use self::reconstruction::{
    ClassVolume, ParticlePoints, corners, padding, particle_points, point_shells, reconstruct_sums, to_map,
    voxel_shells, wiener,
};
use super::data::HeteroData;
use super::error::{HeteroError, HeteroResult};
use crate::maps::DensityMap;

/// The result of [`classify`].
pub struct Classification {
    pub labels: Vec<usize>,
    /// Particles that changed class, per round.
    pub changes: Vec<usize>,
    /// Σ over particles of |F − CTF·V|² against their best class in the last round: lower is a
    /// better explanation of the images (comparable between classifications of the same data).
    pub residual: f64,
    /// The class reconstructions of the final labels, masked by their envelopes (empty classes:
    /// all zero).
    pub volumes: Vec<DensityMap>,
}

/// A particle's share in each class it may belong to: (class, weight), weights summing to 1.
type Shares = Vec<(usize, f32)>;

/// One chunk's assignment: each particle's shares, and the residual power and point count per
/// shell (for the noise estimate).
type ChunkAssignment = (Vec<Shares>, Vec<f64>, Vec<f64>);

/// 3D classification of `data` from `initial` labels (0…k−1), for up to `rounds` rounds (it
/// stops early when no particle's most likely class changes). The labels returned are each
/// particle's most likely class. `progress(round, changed)` after each round
/// returns false to stop (an error: the labels of a stopped classification are not kept).
pub fn classify(
    data: &HeteroData,
    initial: &[usize],
    rounds: usize,
    progress: &dyn Fn(usize, usize) -> bool,
) -> HeteroResult<Classification> {
    let n = initial.len().min(data.len());
    let k = initial[..n].iter().copied().max().map_or(0, |m| m + 1);
    if k == 0 {
        return Err(HeteroError::Invalid("no particles to classify".into()));
    }
    let d = data.image_size;
    let pad = padding(d);
    let pixel = data.training_pixel_size();
    let vshells = voxel_shells(pad * d, pad);
    let pshells = point_shells(data);
    let mut labels = initial[..n].to_vec();
    let mut shares: Vec<Shares> = labels.iter().map(|&l| vec![(l, 1.0)]).collect();
    // Hard assignment first: from poor seeds every class starts as nearly the same mixture, each
    // particle's posterior is then close to its prior, and soft shares would stay at that
    // symmetric point; winner-takes-all lets the classes' small differences grow.
    let mut soft = false;
    let mut inverse_noise = vec![1f32; d / 2 + 1];
    let mut changes = Vec::new();
    let mut total_residual = f64::INFINITY;
    for round in 0..rounds {
        let sums = reconstruct_sums(data, &shares, k)?;
        let classes: Vec<ClassVolume> = (0..k)
            .map(|c| wiener(&sums[2 * c..2 * c + 2], &vshells, d, pixel))
            .collect();
        let assignment = Round {
            data,
            classes: &classes,
            shares: &shares,
            log_prior: log_prior(&shares, k, n),
            inverse_noise: &inverse_noise,
            vshells: &vshells,
            pshells: &pshells,
            soft,
        }
        .assign(n)?;
        total_residual = assignment.residual.iter().sum();
        // σ² per shell: mean residual power of a frequency there.
        for (s, noise) in inverse_noise.iter_mut().enumerate() {
            if assignment.counts[s] > 0.0 && assignment.residual[s] > 0.0 {
                *noise = (assignment.counts[s] / assignment.residual[s]) as f32;
            }
        }
        let next_labels: Vec<usize> = assignment
            .shares
            .iter()
            .map(|s| s.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map_or(0, |m| m.0))
            .collect();
        let changed = next_labels.iter().zip(&labels).filter(|(a, b)| a != b).count();
        labels = next_labels;
        shares = assignment.shares;
        changes.push(changed);
        if !progress(round + 1, changed) {
            return Err(HeteroError::Cancelled("cancelled"));
        }
        if !soft && changed * 200 <= n {
            // Hard assignment has settled (fewer than 0.5 % moved): refine with soft shares.
            soft = true;
        } else if changed == 0 {
            break;
        }
    }
    // Final volumes from the final labels.
    let hard: Vec<Shares> = labels.iter().map(|&l| vec![(l, 1.0)]).collect();
    let sums = reconstruct_sums(data, &hard, k)?;
    let volumes = (0..k)
        .map(|c| to_map(data, wiener(&sums[2 * c..2 * c + 2], &vshells, d, pixel).grid))
        .collect();
    Ok(Classification {
        labels,
        changes,
        residual: total_residual,
        volumes,
    })
}

/// ln of each class's fraction of the particles (its prior).
fn log_prior(shares: &[Shares], k: usize, n: usize) -> Vec<f32> {
    let mut sizes = vec![0f32; k];
    for share in shares {
        for &(class, w) in share {
            sizes[class] += w;
        }
    }
    sizes.iter().map(|&s| (s.max(1.0) / n as f32).ln()).collect()
}

/// What one round of assignment found: each particle's shares for the next round, and the
/// residual power against its best class and the point count per shell (for the noise).
struct Assignment {
    shares: Vec<Shares>,
    residual: Vec<f64>,
    counts: Vec<f64>,
}

/// One round's assignment of particles to the round's class volumes.
struct Round<'a> {
    data: &'a HeteroData,
    classes: &'a [ClassVolume],
    /// Each particle's shares in the round's reconstructions.
    shares: &'a [Shares],
    log_prior: Vec<f32>,
    /// 1 / σ² per shell, from the previous round.
    inverse_noise: &'a [f32],
    vshells: &'a [usize],
    pshells: &'a [usize],
    soft: bool,
}

impl Round<'_> {
    /// Scores particles 0‥n in parallel chunks and gathers the chunks in order.
    fn assign(&self, n: usize) -> HeteroResult<Assignment> {
        let all: Vec<usize> = (0..n).collect();
        let chunks: Vec<HeteroResult<ChunkAssignment>> = all.par_chunks(256).map(|chunk| self.chunk(chunk)).collect();
        let shell_count = self.inverse_noise.len();
        let mut out = Assignment {
            shares: Vec::with_capacity(n),
            residual: vec![0f64; shell_count],
            counts: vec![0f64; shell_count],
        };
        for part in chunks {
            let (shares, r, c) = part?;
            out.shares.extend(shares);
            out.residual.iter_mut().zip(r).for_each(|(a, b)| *a += b);
            out.counts.iter_mut().zip(c).for_each(|(a, b)| *a += b);
        }
        Ok(out)
    }

    /// Scores the particles of `chunk` against every class; their next shares and the residual
    /// power per shell of the class each fits best.
    fn chunk(&self, chunk: &[usize]) -> HeteroResult<ChunkAssignment> {
        let (data, k) = (self.data, self.classes.len());
        let shell_count = self.inverse_noise.len();
        let pad = padding(data.image_size);
        let prepared = data.prepared(chunk)?;
        let mut next = Vec::with_capacity(chunk.len());
        let mut residual = vec![0f64; shell_count];
        let mut counts = vec![0f64; shell_count];
        let mut per_class = vec![vec![0f32; shell_count]; k];
        for (&i, prep) in chunk.iter().zip(&prepared) {
            let points = particle_points(data, i, &prep.spectrum, pad);
            per_class
                .iter_mut()
                .for_each(|row| row.iter_mut().for_each(|v| *v = 0.0));
            self.residuals(&points, &self.shares[i], pad * data.image_size, &mut per_class);
            let score = |class: usize| -> f32 {
                per_class[class]
                    .iter()
                    .zip(self.inverse_noise)
                    .map(|(e, w)| e * w)
                    .sum::<f32>()
                    - self.log_prior[class]
            };
            let scores: Vec<f32> = (0..k).map(score).collect();
            let best = (0..k).min_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap_or(0);
            next.push(self.next_shares(&scores, best));
            for (s, e) in per_class[best].iter().enumerate() {
                residual[s] += f64::from(*e);
            }
            for &s in self.pshells {
                counts[s] += 1.0;
            }
        }
        Ok((next, residual, counts))
    }

    /// Adds to `per_class[class][shell]` the residual power |F − CTF·V| of one particle's points
    /// against every class, each class's model at a point leaving the particle itself out.
    fn residuals(&self, points: &ParticlePoints, own: &Shares, g: usize, per_class: &mut [Vec<f32>]) {
        for (j, (pos, (&c, &v))) in points
            .positions
            .iter()
            .zip(points.ctf.iter().zip(&points.values))
            .enumerate()
        {
            let cs = corners(*pos, g);
            for (class, volume) in self.classes.iter().enumerate() {
                let mut model: Complex32 = cs.iter().map(|&(index, w)| volume.grid[index] * w).sum();
                if let Some(&(_, share)) = own.iter().find(|(c, _)| *c == class) {
                    model -= self.own_term(volume, &cs, v, c, share) * volume.mask_mean;
                }
                per_class[class][self.pshells[j]] += (v - model * c).norm_sqr();
            }
        }
    }

    /// The particle's own contribution (observed `v`, CTF `c`, weight `share`) to `volume` at a
    /// point with trilinear corners `cs`. Left out of its own class: otherwise its noise, inside
    /// the reference, holds it where it is. The mask spreads the particle's own term over
    /// neighbouring voxels and keeps about its mean of it at the point.
    fn own_term(&self, volume: &ClassVolume, cs: &[(usize, f32); 8], v: Complex32, c: f32, share: f32) -> Complex32 {
        cs.iter()
            .map(|&(index, w)| {
                let (num, den, lambda) = (
                    volume.sums.num[index],
                    volume.sums.den[index],
                    volume.lambda[self.vshells[index]],
                );
                let without = (num - v * (share * w * c)) / ((den - share * w * c * c).max(0.0) + lambda);
                (num / (den + lambda) - without) * w
            })
            .sum()
    }

    /// A particle's shares for the next round from its `scores`: all in the `best` class while
    /// assignment is hard, otherwise the posterior probabilities exp(−score) above 10⁻³.
    fn next_shares(&self, scores: &[f32], best: usize) -> Shares {
        if !self.soft {
            return vec![(best, 1.0)];
        }
        let weights: Vec<f32> = scores.iter().map(|s| (scores[best] - s).exp()).collect();
        let kept: Vec<(usize, f32)> = weights.iter().copied().enumerate().filter(|(_, w)| *w > 1e-3).collect();
        let total: f32 = kept.iter().map(|(_, w)| w).sum();
        kept.into_iter().map(|(c, w)| (c, w / total)).collect()
    }
}
