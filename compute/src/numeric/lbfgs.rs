//! Limited-memory BFGS with a backtracking (Armijo) line search, for smooth energies of a few
//! thousand coordinates (the restrained relaxation of a guided fit).

/// How long a minimisation may run and when it has converged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LbfgsOptions {
    pub iterations: usize,
    /// Pairs of past steps kept for the inverse-Hessian estimate.
    pub memory: usize,
    /// Stop when the largest gradient component falls below this.
    pub gradient_tolerance: f64,
    /// The largest move of one coordinate in one step (keeps a first step on a stiff energy sane).
    pub max_step: f64,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        Self {
            iterations: 200,
            memory: 7,
            gradient_tolerance: 1e-4,
            max_step: 0.2,
        }
    }
}

/// What a minimisation did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LbfgsResult {
    pub iterations: usize,
    pub evaluations: usize,
    pub start_energy: f64,
    pub energy: f64,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises `f` from `x` in place. `f(x, gradient)` returns the energy and writes ∂E/∂x.
/// `keep_going()` is asked once an iteration; false stops with the best point so far.
pub fn minimise(
    x: &mut [f64],
    options: &LbfgsOptions,
    f: &mut dyn FnMut(&[f64], &mut [f64]) -> f64,
    keep_going: &mut dyn FnMut() -> bool,
) -> LbfgsResult {
    let n = x.len();
    let mut gradient = vec![0.0; n];
    let mut energy = f(x, &mut gradient);
    let start_energy = energy;
    let mut evaluations = 1;
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> = Default::default();
    let mut trial = vec![0.0; n];
    let mut trial_gradient = vec![0.0; n];
    let mut iterations = 0;
    while iterations < options.iterations && energy.is_finite() {
        if gradient.iter().fold(0.0f64, |m, g| m.max(g.abs())) < options.gradient_tolerance || !keep_going() {
            break;
        }
        iterations += 1;
        // Two-loop recursion: direction = −H·g.
        let mut q = gradient.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        if let Some((s, y, _)) = history.back() {
            let gamma = dot(s, y) / dot(y, y).max(f64::MIN_POSITIVE);
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
        }
        let mut direction: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&direction, &gradient);
        if slope >= 0.0 || slope.is_nan() {
            // Not a descent direction: restart from steepest descent.
            history.clear();
            direction = gradient.iter().map(|g| -g).collect();
            slope = dot(&direction, &gradient);
        }
        let largest = direction.iter().fold(0.0f64, |m, d| m.max(d.abs()));
        let mut step = if largest > options.max_step {
            options.max_step / largest
        } else {
            1.0
        };
        let mut accepted = false;
        for _ in 0..30 {
            trial
                .iter_mut()
                .zip(x.iter())
                .zip(&direction)
                .for_each(|((t, xi), d)| *t = xi + step * d);
            let e = f(&trial, &mut trial_gradient);
            evaluations += 1;
            if e.is_finite() && e <= energy + 1e-4 * step * slope {
                let s: Vec<f64> = direction.iter().map(|d| step * d).collect();
                let y: Vec<f64> = trial_gradient.iter().zip(&gradient).map(|(a, b)| a - b).collect();
                let sy = dot(&s, &y);
                if sy > 1e-12 {
                    if history.len() == options.memory {
                        history.pop_front();
                    }
                    history.push_back((s, y, 1.0 / sy));
                }
                x.copy_from_slice(&trial);
                gradient.copy_from_slice(&trial_gradient);
                energy = e;
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
    }
    LbfgsResult {
        iterations,
        evaluations,
        start_energy,
        energy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_the_rosenbrock_valley() {
        let mut x = vec![-1.2, 1.0];
        let mut f = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        };
        let options = LbfgsOptions {
            iterations: 500,
            gradient_tolerance: 1e-8,
            max_step: 1.0,
            ..LbfgsOptions::default()
        };
        let result = minimise(&mut x, &options, &mut f, &mut || true);
        assert!(
            (x[0] - 1.0).abs() < 1e-4 && (x[1] - 1.0).abs() < 1e-4,
            "{x:?} {result:?}"
        );
        assert!(result.energy < 1e-8);
    }

    #[test]
    fn stops_when_asked() {
        let mut x = vec![3.0; 4];
        let mut f = |x: &[f64], g: &mut [f64]| {
            g.iter_mut().zip(x).for_each(|(gi, xi)| *gi = 2.0 * xi);
            x.iter().map(|v| v * v).sum()
        };
        let result = minimise(&mut x, &LbfgsOptions::default(), &mut f, &mut || false);
        assert_eq!(result.iterations, 0);
        assert_eq!(x, vec![3.0; 4]);
    }
}
