//! The reverse-diffusion schedule of guided sampling: EDM noise levels with Boltz-1's constants
//! and the four phases of map guidance (docs/science.md §4): unguided warm-up, global guidance
//! (Sinkhorn to the map's point cloud, scale annealed by a cosine), local guidance (density L2,
//! constant scale) and an unguided relax.

/// Which phase a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    WarmUp,
    Global,
    Local,
    Relax,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Self::WarmUp => "warm-up",
            Self::Global => "global guidance",
            Self::Local => "local guidance",
            Self::Relax => "relax",
        }
    }
}

/// The sampler's constants (Boltz-1's defaults) and the guidance phases.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// Steps of each phase, in order: warm-up, global, local, relax.
    pub warm_up_steps: usize,
    pub global_steps: usize,
    pub local_steps: usize,
    pub relax_steps: usize,
    /// Noise levels are σ_data × (σ_max^(1/ρ) + t (σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ, in Å.
    pub sigma_max: f64,
    pub sigma_min: f64,
    pub rho: f64,
    pub sigma_data: f64,
    /// Stochastic "churn": σ is raised by (1 + γ₀) while σ > γ_min, with noise scaled by
    /// `noise_scale`.
    pub gamma_0: f64,
    pub gamma_min: f64,
    pub noise_scale: f64,
    /// Multiplies every ODE step (> 1 sharpens the sample towards the prior's mode).
    pub step_scale: f64,
    /// Global guidance scale, annealed from start to end by a half cosine.
    pub global_scale_start: f64,
    pub global_scale_end: f64,
    /// Local guidance scale (constant).
    pub local_scale: f64,
}

/// Named schedules, as `--schedule` takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// For maps simulated from a model: the map is used as it is.
    Synthetic,
    /// For experimental (noisy) maps: the map is low-passed to the stated resolution before
    /// the point cloud and the density target are made from it.
    Experimental,
}

impl ScheduleKind {
    /// Whether guidance sees the map low-passed to the stated resolution.
    pub fn low_pass_map(self) -> bool {
        matches!(self, Self::Experimental)
    }
}

impl Schedule {
    /// docs/science.md §4: 200 steps, 1–100 warm-up, 101–150 global (0.25 → 0.05), 151–175 local
    /// (0.5), 176–200 relax. The experimental-map variant uses the same 100/50/25/25 split.
    pub fn published() -> Self {
        Self {
            warm_up_steps: 100,
            global_steps: 50,
            local_steps: 25,
            relax_steps: 25,
            sigma_max: 160.0,
            sigma_min: 4e-4,
            rho: 7.0,
            sigma_data: 16.0,
            gamma_0: 0.605,
            gamma_min: 1.107,
            noise_scale: 0.901,
            step_scale: 1.638,
            global_scale_start: 0.25,
            global_scale_end: 0.05,
            local_scale: 0.5,
        }
    }

    /// The published phases stretched or shrunk to `steps` in all (same proportions).
    pub fn with_total_steps(mut self, steps: usize) -> Self {
        let total = self.total_steps().max(1);
        if steps == total || steps == 0 {
            return self;
        }
        let part = |n: usize| ((n * steps) as f64 / total as f64).round() as usize;
        self.warm_up_steps = part(self.warm_up_steps);
        self.global_steps = part(self.global_steps).max(1);
        self.local_steps = part(self.local_steps).max(1);
        self.relax_steps = steps.saturating_sub(self.warm_up_steps + self.global_steps + self.local_steps);
        self
    }

    pub fn total_steps(&self) -> usize {
        self.warm_up_steps + self.global_steps + self.local_steps + self.relax_steps
    }

    /// σ before each step and after the last: `total_steps + 1` values, the last 0.
    pub fn sigmas(&self) -> Vec<f64> {
        let n = self.total_steps();
        let inv_rho = 1.0 / self.rho;
        let (hi, lo) = (self.sigma_max.powf(inv_rho), self.sigma_min.powf(inv_rho));
        let mut sigmas: Vec<f64> = (0..n)
            .map(|i| {
                let t = if n > 1 { i as f64 / (n - 1) as f64 } else { 0.0 };
                self.sigma_data * (hi + t * (lo - hi)).powf(self.rho)
            })
            .collect();
        sigmas.push(0.0);
        sigmas
    }

    /// The phase of step `step` (0-based).
    pub fn phase(&self, step: usize) -> Phase {
        let global = self.warm_up_steps;
        let local = global + self.global_steps;
        let relax = local + self.local_steps;
        match step {
            s if s < global => Phase::WarmUp,
            s if s < local => Phase::Global,
            s if s < relax => Phase::Local,
            _ => Phase::Relax,
        }
    }

    /// The guidance scale at step `step` (0 outside the guided phases).
    pub fn guidance_scale(&self, step: usize) -> f64 {
        match self.phase(step) {
            Phase::Global => {
                let i = step - self.warm_up_steps;
                let t = if self.global_steps > 1 {
                    i as f64 / (self.global_steps - 1) as f64
                } else {
                    0.0
                };
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                self.global_scale_end + (self.global_scale_start - self.global_scale_end) * cosine
            }
            Phase::Local => self.local_scale,
            Phase::WarmUp | Phase::Relax => 0.0,
        }
    }

    /// γ for the step that starts at noise level σ.
    pub fn gamma(&self, sigma: f64) -> f64 {
        if sigma > self.gamma_min { self.gamma_0 } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_schedule_spans_boltz_noise_levels_and_phases() {
        let s = Schedule::published();
        assert_eq!(s.total_steps(), 200);
        let sigmas = s.sigmas();
        assert_eq!(sigmas.len(), 201);
        assert!((sigmas[0] - 160.0 * 16.0).abs() < 1e-9);
        assert!((sigmas[199] - 4e-4 * 16.0).abs() < 1e-9);
        assert!(sigmas.windows(2).all(|w| w[0] > w[1]), "strictly decreasing");
        assert_eq!(
            (
                s.phase(99),
                s.phase(100),
                s.phase(149),
                s.phase(150),
                s.phase(174),
                s.phase(175)
            ),
            (
                Phase::WarmUp,
                Phase::Global,
                Phase::Global,
                Phase::Local,
                Phase::Local,
                Phase::Relax
            )
        );
        assert!((s.guidance_scale(100) - 0.25).abs() < 1e-12);
        assert!((s.guidance_scale(149) - 0.05).abs() < 1e-12);
        assert!(s.guidance_scale(125) < 0.25 && s.guidance_scale(125) > 0.05);
        assert_eq!(s.guidance_scale(160), 0.5);
        assert_eq!(s.guidance_scale(10), 0.0);
        assert_eq!(s.guidance_scale(190), 0.0);
    }

    #[test]
    fn fewer_steps_keep_the_proportions() {
        let s = Schedule::published().with_total_steps(100);
        assert_eq!(
            (s.warm_up_steps, s.global_steps, s.local_steps, s.relax_steps),
            (50, 25, 13, 12)
        );
        assert_eq!(s.total_steps(), 100);
    }
}
