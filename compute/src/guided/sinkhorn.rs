//! The debiased Sinkhorn divergence between two weighted point clouds (a model's atoms and a
//! map's point cloud), balanced or unbalanced (a "reach" beyond which mass is destroyed rather
//! than moved), with its gradient with respect to the first cloud's points. Guided sampling uses
//! it as global guidance.
//!
//! Cost ½|x − y|², entropic blur ε = blur², log-domain symmetric Sinkhorn updates with
//! ε-scaling from the clouds' diameter down to the blur. S(α, β) = OT(α, β) − ½OT(α, α) −
//! ½OT(β, β), each OT the full dual objective at its fixed point, so by the envelope theorem
//! ∇ₓᵢ S = Σⱼ πᵅᵝᵢⱼ (xᵢ − yⱼ) − Σₖ πᵅᵅᵢₖ (xᵢ − xₖ).

use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SinkhornOptions {
    /// Entropic blur in Å (ε = blur²).
    pub blur_angstrom: f64,
    /// Unbalanced reach in Å (ρ = reach²); None for balanced transport.
    pub reach_angstrom: Option<f64>,
    /// ε shrinks by scaling² per step.
    pub scaling: f64,
    /// Extra iterations at the final ε (stops early once converged).
    pub final_iterations: usize,
    /// Converged when no potential moves by more than this × ε in an iteration.
    pub tolerance: f64,
}

impl Default for SinkhornOptions {
    fn default() -> Self {
        Self {
            blur_angstrom: 1.0,
            reach_angstrom: Some(10.0),
            scaling: 0.5,
            final_iterations: 1000,
            tolerance: 1e-12,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SinkhornResult {
    pub divergence: f64,
    /// ∂S/∂xᵢ for every point of the first cloud.
    pub gradient: Vec<[f64; 3]>,
}

fn cost(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    0.5 * ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2))
}

/// hᵢ = −λ ε log Σⱼ exp(log wⱼ + (pⱼ − C(xᵢ, yⱼ))/ε).
fn softmin(eps: f64, damping: f64, x: &[[f64; 3]], y: &[[f64; 3]], log_w: &[f64], potential: &[f64]) -> Vec<f64> {
    x.par_iter()
        .map(|xi| {
            let terms = y
                .iter()
                .zip(log_w)
                .zip(potential)
                .map(|((yj, lw), p)| lw + (p - cost(xi, yj)) / eps);
            let max = terms.clone().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = terms.map(|t| (t - max).exp()).sum();
            -damping * eps * (max + sum.ln())
        })
        .collect()
}

/// ε values from the diameter² down to blur².
fn epsilon_schedule(x: &[[f64; 3]], y: &[[f64; 3]], options: &SinkhornOptions) -> Vec<f64> {
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for p in x.iter().chain(y) {
        for k in 0..3 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    let diameter2 = (0..3).map(|k| (hi[k] - lo[k]).powi(2)).sum::<f64>().max(1e-12);
    let target = options.blur_angstrom.powi(2);
    let ratio = options.scaling.clamp(0.05, 0.95).powi(2);
    let mut eps = vec![diameter2.max(target)];
    while *eps.last().unwrap_or(&target) * ratio > target {
        let next = eps[eps.len() - 1] * ratio;
        eps.push(next);
    }
    eps.push(target);
    eps
}

fn damping(eps: f64, options: &SinkhornOptions) -> f64 {
    options
        .reach_angstrom
        .map_or(1.0, |reach| 1.0 / (1.0 + eps / (reach * reach)))
}

/// Fixed-point potentials (f on x, g on y) of OT_ε(α, β). With `warm` potentials of the right
/// sizes (from a previous, nearby problem) the ε annealing is skipped.
fn solve(
    x: &[[f64; 3]],
    la: &[f64],
    y: &[[f64; 3]],
    lb: &[f64],
    schedule: &[f64],
    options: &SinkhornOptions,
    warm: Option<(Vec<f64>, Vec<f64>)>,
) -> (Vec<f64>, Vec<f64>) {
    let last = schedule.len() - 1;
    let (mut f, mut g, annealing) = match warm {
        Some((f, g)) if f.len() == x.len() && g.len() == y.len() => (f, g, &schedule[..0]),
        _ => {
            let first = schedule[0];
            let lambda = damping(first, options);
            let f = softmin(first, lambda, x, y, lb, &vec![0.0; y.len()]);
            let g = softmin(first, lambda, y, x, la, &vec![0.0; x.len()]);
            (f, g, &schedule[..last])
        }
    };
    // Annealing: one symmetric (averaged) update per ε, as in ε-scaling.
    for &eps in annealing {
        let lambda = damping(eps, options);
        let f_new = softmin(eps, lambda, x, y, lb, &g);
        let g_new = softmin(eps, lambda, y, x, la, &f);
        f = f.iter().zip(&f_new).map(|(a, b)| 0.5 * (a + b)).collect();
        g = g.iter().zip(&g_new).map(|(a, b)| 0.5 * (a + b)).collect();
    }
    // At the final ε, plain alternating Sinkhorn until the potentials stop moving.
    let eps = schedule[last];
    let lambda = damping(eps, options);
    for _ in 0..options.final_iterations.max(1) {
        let f_new = softmin(eps, lambda, x, y, lb, &g);
        let g_new = softmin(eps, lambda, y, x, la, &f_new);
        let change = f_new
            .iter()
            .zip(&f)
            .chain(g_new.iter().zip(&g))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        f = f_new;
        g = g_new;
        if change < options.tolerance * eps.max(1.0) {
            break;
        }
    }
    // A last full update makes (f, g) exact conjugates at the final ε.
    let eps = schedule[last];
    let lambda = damping(eps, options);
    let f_final = softmin(eps, lambda, x, y, lb, &g);
    let g_final = softmin(eps, lambda, y, x, la, &f_final);
    (f_final, g_final)
}

/// The potential of the symmetric problem OT_ε(α, α) (f = g at the fixed point), by the
/// averaged update f ← ½(f + softmin(f)), which converges in a few iterations.
fn solve_symmetric(
    x: &[[f64; 3]],
    la: &[f64],
    schedule: &[f64],
    options: &SinkhornOptions,
    warm: Option<Vec<f64>>,
) -> Vec<f64> {
    let last = schedule.len() - 1;
    let (mut f, annealing) = match warm {
        Some(f) if f.len() == x.len() => (f, &schedule[..0]),
        _ => (
            softmin(
                schedule[0],
                damping(schedule[0], options),
                x,
                x,
                la,
                &vec![0.0; x.len()],
            ),
            &schedule[..last],
        ),
    };
    for &eps in annealing {
        let f_new = softmin(eps, damping(eps, options), x, x, la, &f);
        f = f.iter().zip(&f_new).map(|(a, b)| 0.5 * (a + b)).collect();
    }
    let eps = schedule[last];
    let lambda = damping(eps, options);
    for _ in 0..options.final_iterations.max(1) {
        let f_new: Vec<f64> = softmin(eps, lambda, x, x, la, &f)
            .iter()
            .zip(&f)
            .map(|(a, b)| 0.5 * (a + b))
            .collect();
        let change = f_new.iter().zip(&f).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        f = f_new;
        if change < options.tolerance * eps.max(1.0) {
            break;
        }
    }
    // One plain update: the fixed point of softmin itself.
    softmin(eps, lambda, x, x, la, &f)
}

/// A weighted cloud and its dual potential.
#[derive(Clone, Copy)]
struct Side<'a> {
    points: &'a [[f64; 3]],
    weights: &'a [f64],
    potential: &'a [f64],
}

/// The dual objective at (f, g): Σ aφ(f) + Σ bφ(g) − ε Σ ab(e^{(f+g−C)/ε} − 1).
fn dual_value(alpha: Side<'_>, beta: Side<'_>, eps: f64, options: &SinkhornOptions) -> f64 {
    let (x, a, f) = (alpha.points, alpha.weights, alpha.potential);
    let (y, b, g) = (beta.points, beta.weights, beta.potential);
    let phi = |t: f64| match options.reach_angstrom {
        Some(reach) => {
            let rho = reach * reach;
            rho * (1.0 - (-t / rho).exp())
        }
        None => t,
    };
    let linear: f64 =
        a.iter().zip(f).map(|(w, t)| w * phi(*t)).sum::<f64>() + b.iter().zip(g).map(|(w, t)| w * phi(*t)).sum::<f64>();
    let coupling: f64 = x
        .par_iter()
        .zip(a)
        .zip(f)
        .map(|((xi, ai), fi)| {
            y.iter()
                .zip(b)
                .zip(g)
                .map(|((yj, bj), gj)| ai * bj * (((fi + gj - cost(xi, yj)) / eps).exp() - 1.0))
                .sum::<f64>()
        })
        .sum();
    linear - eps * coupling
}

/// Σⱼ πᵢⱼ (xᵢ − yⱼ), πᵢⱼ = aᵢ bⱼ e^{(fᵢ + gⱼ − Cᵢⱼ)/ε}.
fn plan_displacement(alpha: Side<'_>, beta: Side<'_>, eps: f64) -> Vec<[f64; 3]> {
    let (x, a, f) = (alpha.points, alpha.weights, alpha.potential);
    let (y, b, g) = (beta.points, beta.weights, beta.potential);
    x.par_iter()
        .zip(a)
        .zip(f)
        .map(|((xi, ai), fi)| {
            let mut d = [0.0; 3];
            for ((yj, bj), gj) in y.iter().zip(b).zip(g) {
                let pi = ai * bj * ((fi + gj - cost(xi, yj)) / eps).exp();
                for k in 0..3 {
                    d[k] += pi * (xi[k] - yj[k]);
                }
            }
            d
        })
        .collect()
}

/// Dual potentials kept between calls on slowly moving clouds (guided sampling calls the
/// divergence once per step on atoms that moved a little).
#[derive(Clone, Debug, Default)]
pub struct SinkhornWarmStart {
    ab: Option<(Vec<f64>, Vec<f64>)>,
    aa: Option<Vec<f64>>,
    bb: Option<Vec<f64>>,
}

/// S(α, β) and ∂S/∂x for α = Σ aᵢ δ(xᵢ), β = Σ bⱼ δ(yⱼ) (weights are normalised to sum to 1).
pub fn sinkhorn_divergence(
    x: &[[f64; 3]],
    a: &[f64],
    y: &[[f64; 3]],
    b: &[f64],
    options: &SinkhornOptions,
) -> SinkhornResult {
    sinkhorn_divergence_warm(x, a, y, b, options, &mut SinkhornWarmStart::default())
}

/// [`sinkhorn_divergence`], starting from (and updating) the potentials in `warm`.
pub fn sinkhorn_divergence_warm(
    x: &[[f64; 3]],
    a: &[f64],
    y: &[[f64; 3]],
    b: &[f64],
    options: &SinkhornOptions,
    warm: &mut SinkhornWarmStart,
) -> SinkhornResult {
    if x.is_empty() || y.is_empty() {
        return SinkhornResult {
            divergence: 0.0,
            gradient: vec![[0.0; 3]; x.len()],
        };
    }
    let normalise = |w: &[f64]| {
        let total: f64 = w.iter().sum();
        w.iter().map(|v| v / total).collect::<Vec<f64>>()
    };
    let (a, b) = (normalise(a), normalise(b));
    let (la, lb): (Vec<f64>, Vec<f64>) = (a.iter().map(|v| v.ln()).collect(), b.iter().map(|v| v.ln()).collect());
    let schedule = epsilon_schedule(x, y, options);
    let eps = schedule[schedule.len() - 1];
    let (f_ab, g_ab) = solve(x, &la, y, &lb, &schedule, options, warm.ab.take());
    let f_aa = solve_symmetric(x, &la, &schedule, options, warm.aa.take());
    let f_bb = solve_symmetric(y, &lb, &schedule, options, warm.bb.take());
    let (g_aa, g_bb) = (&f_aa, &f_bb);
    let side = |points, weights, potential| Side {
        points,
        weights,
        potential,
    };
    let ot_ab = dual_value(side(x, &a, &f_ab), side(y, &b, &g_ab), eps, options);
    let ot_aa = dual_value(side(x, &a, &f_aa), side(x, &a, g_aa), eps, options);
    let ot_bb = dual_value(side(y, &b, &f_bb), side(y, &b, g_bb), eps, options);
    let cross = plan_displacement(side(x, &a, &f_ab), side(y, &b, &g_ab), eps);
    // OT(α, α) depends on x through both arguments; the two halves of the symmetric plan
    // contribute equally, and the ½ in S cancels the 2.
    // (f = g for the symmetric problem, so both halves are the same displacement.)
    let own = plan_displacement(side(x, &a, &f_aa), side(x, &a, g_aa), eps);
    let gradient = (0..x.len())
        .map(|i| std::array::from_fn(|k| cross[i][k] - own[i][k]))
        .collect();
    *warm = SinkhornWarmStart {
        ab: Some((f_ab, g_ab)),
        aa: Some(f_aa.clone()),
        bb: Some(f_bb.clone()),
    };
    SinkhornResult {
        divergence: ot_ab - 0.5 * ot_aa - 0.5 * ot_bb,
        gradient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::rng::Rng;

    fn cloud(n: usize, seed: u64, spread: f64) -> (Vec<[f64; 3]>, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let points = (0..n)
            .map(|_| [spread * rng.normal(), spread * rng.normal(), spread * rng.normal()])
            .collect();
        let weights = (0..n).map(|_| 0.5 + rng.uniform()).collect();
        (points, weights)
    }

    #[test]
    fn a_cloud_is_at_zero_divergence_from_itself_and_positive_from_a_shifted_copy() {
        let (x, a) = cloud(30, 1, 3.0);
        let options = SinkhornOptions::default();
        let same = sinkhorn_divergence(&x, &a, &x, &a, &options);
        assert!(same.divergence.abs() < 1e-8, "{}", same.divergence);
        assert!(same.gradient.iter().flatten().all(|g| g.abs() < 1e-6));
        let shifted: Vec<[f64; 3]> = x.iter().map(|p| [p[0] + 2.0, p[1], p[2]]).collect();
        let s = sinkhorn_divergence(&x, &a, &shifted, &a, &options);
        assert!(s.divergence > 0.5, "{}", s.divergence);
        // The gradient pulls x towards the shifted copy (+x), i.e. ∂S/∂x points along −x.
        let mean_gx: f64 = s.gradient.iter().map(|g| g[0]).sum::<f64>();
        assert!(mean_gx < 0.0);
    }

    #[test]
    fn balanced_divergence_of_a_translation_is_half_the_squared_shift() {
        let (x, a) = cloud(40, 2, 3.0);
        let t = 3.0;
        let y: Vec<[f64; 3]> = x.iter().map(|p| [p[0] + t, p[1], p[2]]).collect();
        let options = SinkhornOptions {
            blur_angstrom: 0.3,
            reach_angstrom: None,
            ..SinkhornOptions::default()
        };
        let s = sinkhorn_divergence(&x, &a, &y, &a, &options);
        assert!(
            (s.divergence - 0.5 * t * t).abs() < 0.1 * 0.5 * t * t,
            "{} vs {}",
            s.divergence,
            0.5 * t * t
        );
    }

    #[test]
    fn gradients_match_finite_differences_balanced_and_unbalanced() {
        let (x, a) = cloud(12, 3, 2.5);
        let (mut y, b) = cloud(15, 4, 2.5);
        for p in &mut y {
            p[1] += 1.5;
        }
        for options in [
            SinkhornOptions {
                blur_angstrom: 1.0,
                reach_angstrom: None,
                ..SinkhornOptions::default()
            },
            SinkhornOptions {
                blur_angstrom: 1.0,
                reach_angstrom: Some(4.0),
                ..SinkhornOptions::default()
            },
        ] {
            let base = sinkhorn_divergence(&x, &a, &y, &b, &options);
            let h = 1e-4;
            for i in [0, 5, 11] {
                for k in 0..3 {
                    let mut plus = x.clone();
                    plus[i][k] += h;
                    let mut minus = x.clone();
                    minus[i][k] -= h;
                    let fd = (sinkhorn_divergence(&plus, &a, &y, &b, &options).divergence
                        - sinkhorn_divergence(&minus, &a, &y, &b, &options).divergence)
                        / (2.0 * h);
                    let an = base.gradient[i][k];
                    assert!(
                        (fd - an).abs() < 1e-4 + 1e-3 * fd.abs(),
                        "reach {:?}, point {i} axis {k}: fd {fd} analytic {an}",
                        options.reach_angstrom
                    );
                }
            }
        }
    }
}
