//! One sample of a guided fit: the reverse diffusion with guidance, then the residue geometry
//! put back, the restrained relaxation and the per-residue confidence.

use std::time::Instant;

use super::{
    Denoiser, GuidedFitOptions, MapGuidance, Phase, Sample, StepProgress, StepRecord, Timings, Trajectory,
    geometry_check, norm, relax, restraints, to_f32, to_points,
};
use crate::maps::density::GaussianAtoms;
use crate::maps::local::residue_correlations;
use crate::models::compare::{superpose, superposed_rmsd};
use crate::numeric::rng::Rng;

pub(super) struct SampleRun<'a> {
    pub(super) options: &'a GuidedFitOptions,
    pub(super) start: &'a [[f64; 3]],
    /// What `rmsd_to_start` is measured from: the first round's start.
    pub(super) origin: &'a [[f64; 3]],
    pub(super) atoms: &'a GaussianAtoms,
    pub(super) guidance: &'a mut MapGuidance,
    pub(super) index: usize,
    pub(super) samples: usize,
    pub(super) stride: usize,
    pub(super) restraints: &'a restraints::Restraints,
    pub(super) residues: &'a [Vec<usize>],
    pub(super) residue_radius: f64,
    pub(super) free: Option<&'a super::FreeScore>,
    pub(super) validator: &'a crate::models::validation::Validator,
}

impl SampleRun<'_> {
    fn gaussians_at(&self, positions: &[[f64; 3]]) -> GaussianAtoms {
        GaussianAtoms {
            positions: to_f32(positions),
            amplitudes: self.atoms.amplitudes.clone(),
            sigmas: self.atoms.sigmas.clone(),
        }
    }

    /// The guidance gradient at the denoised estimate, or None outside guided steps.
    fn guidance_gradient(&mut self, phase: Phase, estimate: &[[f64; 3]], sigma: f64) -> Option<(f64, Vec<[f64; 3]>)> {
        if !self.options.guidance_enabled {
            return None;
        }
        let value = match phase {
            Phase::Global => self.guidance.global(estimate),
            Phase::Local => self
                .guidance
                .local(&self.gaussians_at(estimate), self.options.local_blur_per_sigma * sigma),
            Phase::WarmUp | Phase::Relax => return None,
        };
        Some((value.loss, value.gradient))
    }

    pub(super) fn sample(
        &mut self,
        prior: &mut dyn Denoiser,
        seed: u64,
        topology: &geometry_check::Topology,
        on_step: &mut dyn FnMut(&StepProgress<'_>) -> bool,
    ) -> Sample {
        let started = Instant::now();
        // Every sample starts from the zone around the start model.
        self.guidance.follow(self.start);
        let schedule = &self.options.schedule;
        let sigmas = schedule.sigmas();
        let steps = schedule.total_steps();
        let mut rng = Rng::new(seed);
        let start_flat: Vec<f64> = self.start.iter().flatten().copied().collect();
        let mut x: Vec<f64> = start_flat.iter().map(|m| m + sigmas[0] * rng.normal()).collect();
        let mut records = Vec::with_capacity(steps);
        let mut trajectory = Trajectory::default();
        let mut complete = true;
        let mut guided_steps = 0usize;
        let mut timings = Timings::default();
        // Free-score annealing of the local guidance (see `AnnealOptions`).
        let anneal = &self.options.anneal;
        let (mut anneal_factor, mut best_free, mut stale, mut local_steps) =
            (1.0f64, f64::NEG_INFINITY, 0usize, 0usize);
        for step in 0..steps {
            let (sigma, sigma_next) = (sigmas[step], sigmas[step + 1]);
            let phase = schedule.phase(step);
            let sigma_hat = sigma * (1.0 + schedule.gamma(sigma));
            let churn = schedule.noise_scale * (sigma_hat * sigma_hat - sigma * sigma).max(0.0).sqrt();
            let mut noisy: Vec<f64> = x.iter().map(|v| v + churn * rng.normal()).collect();
            let clock = Instant::now();
            let mut denoised = prior.denoise(&noisy, sigma_hat);
            if self.options.guidance_enabled && matches!(phase, Phase::Global | Phase::Local) {
                denoised = relax::polish(
                    self.restraints,
                    &denoised,
                    self.options.denoiser_tether_angstrom,
                    self.options.denoiser_restraint_iterations,
                );
            }
            timings.denoise_seconds += clock.elapsed().as_secs_f64();
            let scale = if self.options.guidance_enabled {
                let factor = if phase == Phase::Local { anneal_factor } else { 1.0 };
                schedule.guidance_scale(step) * factor
            } else {
                0.0
            };
            if matches!(phase, Phase::Global | Phase::Local) && guided_steps == 0 && self.options.guidance_enabled {
                // Keep the sample in the map's frame: superpose the estimate on the start.
                let t = superpose(&to_points(&denoised), self.start);
                for v in [&mut noisy, &mut denoised] {
                    for c in v.chunks_exact_mut(3) {
                        c.copy_from_slice(&t.apply([c[0], c[1], c[2]]));
                    }
                }
            }
            let update: Vec<f64> = noisy
                .iter()
                .zip(&denoised)
                .map(|(n, d)| schedule.step_scale * (sigma_next - sigma_hat) / sigma_hat * (n - d))
                .collect();
            let mut record = StepRecord {
                step,
                phase,
                sigma,
                sigma_hat,
                guidance_scale: scale,
                sinkhorn: None,
                density_l2: None,
                correlation: 0.0,
                rmsd_to_start_angstrom: 0.0,
                free_score: None,
            };
            // The push acts on the sample only: the next step's denoiser keeps what the prior
            // allows of it (soft collective motions) and removes the rest, so the estimate
            // stays a projection onto the prior and is what gets recorded and re-centred on.
            let estimate = to_points(&denoised);
            let mut next: Vec<f64> = noisy.iter().zip(&update).map(|(n, u)| n + u).collect();
            let clock = Instant::now();
            if scale > 0.0
                && self.options.guidance_enabled
                && matches!(phase, Phase::Global | Phase::Local)
                && let Some(every) = self.guidance.zone_follows_every()
                && guided_steps.is_multiple_of(every)
            {
                // The zone moves with the estimate: density beside where the model has got to
                // comes into view, so large motions stay reachable.
                self.guidance.follow(&estimate);
            }
            if scale > 0.0
                && let Some((loss, gradient)) = self.guidance_gradient(phase, &estimate, sigma_hat)
            {
                match phase {
                    Phase::Global => record.sinkhorn = Some(loss),
                    _ => record.density_l2 = Some(loss),
                }
                let mut flat: Vec<f64> = gradient.iter().flatten().copied().collect();
                if self.options.clash_weight > 0.0 {
                    // The map's push at unit size, plus the repulsion at its own scale (Å).
                    let g = norm(&flat);
                    if g > 0.0 {
                        flat.iter_mut().for_each(|v| *v /= g);
                    }
                    let (_, repulsion) = topology.repulsion(self.start, &estimate, self.options.contact_angstrom);
                    for (v, r) in flat.iter_mut().zip(repulsion.iter().flatten()) {
                        *v += self.options.clash_weight * r;
                    }
                }
                let flat = if self.options.pull_back_gradient {
                    prior.pull_back(&flat, sigma_hat)
                } else {
                    flat
                };
                let g_norm = norm(&flat);
                if g_norm > 0.0 && g_norm.is_finite() {
                    let push = scale * norm(&update) / g_norm;
                    for (n, g) in next.iter_mut().zip(&flat) {
                        *n -= push * g;
                    }
                }
                guided_steps += 1;
                timings.guidance_seconds += clock.elapsed().as_secs_f64();
                if self.options.recentre_every > 0 && guided_steps.is_multiple_of(self.options.recentre_every) {
                    let clock = Instant::now();
                    prior.recentre(&denoised);
                    timings.recentre_seconds += clock.elapsed().as_secs_f64();
                }
            }
            let clock = Instant::now();
            record.correlation = self.guidance.correlation(&self.gaussians_at(&estimate));
            record.rmsd_to_start_angstrom = superposed_rmsd(&estimate, self.origin);
            if phase == Phase::Local && scale > 0.0 {
                local_steps += 1;
                if anneal.enabled
                    && anneal.every_steps > 0
                    && local_steps.is_multiple_of(anneal.every_steps)
                    && let Some(free) = self.free
                {
                    let f = free.score(&self.gaussians_at(&estimate));
                    record.free_score = Some(f);
                    if f > best_free + anneal.min_gain {
                        best_free = f;
                        stale = 0;
                    } else {
                        stale += 1;
                        if stale >= anneal.patience.max(1) {
                            anneal_factor *= anneal.factor.clamp(0.0, 1.0);
                            stale = 0;
                        }
                    }
                }
            }
            timings.scoring_seconds += clock.elapsed().as_secs_f64();
            if step % self.stride == 0 || step + 1 == steps {
                trajectory.steps.push(step);
                trajectory.noisy.push(to_f32(&to_points(&noisy)));
                trajectory.denoised.push(to_f32(&estimate));
            }
            x = next;
            let keep_going = on_step(&StepProgress {
                sample: self.index,
                samples: self.samples,
                total_steps: steps,
                record: &record,
                denoised: &estimate,
            });
            records.push(record);
            if !keep_going {
                complete = false;
                // Stop with the current estimate rather than a half-denoised sample.
                x = estimate.iter().flatten().copied().collect();
                break;
            }
        }
        let mut positions = to_points(&x);
        if self.options.restore_residue_geometry {
            positions = prior.restore_geometry(&positions);
        }
        let mut relax_report = None;
        if self.options.relax.enabled && complete {
            let atoms = self.gaussians_at(&positions);
            let mut relax_options = self.options.relax.clone();
            if self.options.guidance_enabled {
                if self.guidance.zone_follows_every().is_some() {
                    self.guidance.follow(&positions);
                }
            } else {
                relax_options.map_weight = 0.0;
            }
            let (relaxed, report) = relax::relax(
                self.restraints,
                self.guidance,
                &atoms,
                &positions,
                &relax_options,
                &mut || true,
            );
            positions = relaxed;
            relax_report = Some(report);
        }
        if complete && (self.options.restore_residue_geometry || relax_report.is_some()) {
            // The trajectory ends on the final model, so scrubbing to its end shows the result.
            trajectory.steps.push(steps);
            trajectory.noisy.push(to_f32(&positions));
            trajectory.denoised.push(to_f32(&positions));
        }
        let final_atoms = self.gaussians_at(&positions);
        let correlation = self.guidance.correlation(&final_atoms);
        let residue_correlation: Vec<f32> =
            residue_correlations(&self.guidance.map, &final_atoms, self.residues, self.residue_radius)
                .into_iter()
                .map(|v| v as f32)
                .collect();
        let free_score = self.free.map(|f| f.score(&final_atoms));
        let validation = self.validator.report(&final_atoms.positions);
        Sample {
            index: self.index,
            seed,
            geometry: topology.check(&positions),
            positions: to_f32(&positions),
            correlation,
            steps: records,
            trajectory,
            seconds: started.elapsed().as_secs_f64(),
            timings,
            relax: relax_report,
            residue_correlation,
            free_score,
            validation,
            complete,
        }
    }
}
