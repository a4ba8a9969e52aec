//! The state a refinement carries between steps ([`Refiner`]) and the step itself: the model
//! in the prior's whitened mode basis as burn tensors, the FRC and its gradients for a part of
//! a batch on its own autodiff graph, the combination of the parts and the Adam updates.

use burn::tensor::{Tensor, TensorData};

use super::{Batch, Device, ForwardModel, RefineError, RefineOptions};
use crate::formats::model::Structure;
use crate::geometry::Mat3;
use crate::guided::{Denoiser, ElasticPrior};
use crate::maps::density::{GaussianAtoms, GaussianOptions};
use crate::particles::ctf::CtfParams;
use crate::particles::data::ParticleData;
use crate::training::DataParallel;

/// Adam on a flat parameter vector.
struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    fn new(n: usize) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    fn step(&mut self, params: &mut [f64], grad: &[f64], lr: f64) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        self.t += 1;
        let (c1, c2) = (1.0 - B1.powi(self.t), 1.0 - B2.powi(self.t));
        for (((p, g), m), v) in params.iter_mut().zip(grad).zip(&mut self.m).zip(&mut self.v) {
            *m = B1 * *m + (1.0 - B1) * g;
            *v = B2 * *v + (1.0 - B2) * g * g;
            *p -= lr * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
        }
    }
}

fn tensor1(values: &[f64], device: &Device) -> Tensor<1> {
    Tensor::from_data(
        TensorData::new(values.iter().map(|&v| v as f32).collect::<Vec<_>>(), [values.len()]),
        device,
    )
}

fn to_vec(t: Tensor<1>) -> Vec<f64> {
    t.into_data()
        .try_to_vec::<f32>()
        .unwrap_or_default()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// The structure in the prior's whitened mode basis, as burn tensors.
struct ModeBasis {
    mean: Vec<f64>,
    /// [3N, K]: B·diag(√v).
    scaled: Tensor<2>,
    mean_t: Tensor<1>,
    count: usize,
}

impl ModeBasis {
    fn new(prior: &ElasticPrior, device: &Device) -> Self {
        let (basis, variances) = prior.modes();
        let k = basis.len();
        let n3 = prior.mean().len();
        let mut values = vec![0f32; n3 * k];
        for (j, (column, v)) in basis.iter().zip(variances).enumerate() {
            let s = v.sqrt();
            for (i, b) in column.iter().enumerate() {
                values[i * k + j] = (b * s) as f32;
            }
        }
        Self {
            mean: prior.mean().to_vec(),
            scaled: Tensor::from_data(TensorData::new(values, [n3, k]), device),
            mean_t: tensor1(prior.mean(), device),
            count: k,
        }
    }

    fn positions(&self, q: Tensor<1>) -> Tensor<1> {
        self.mean_t.clone()
            + self
                .scaled
                .clone()
                .matmul(q.unsqueeze_dim::<2>(1))
                .reshape([self.mean.len()])
    }

    fn positions_host(&self, q: &[f64], device: &Device) -> Vec<f64> {
        to_vec(self.positions(tensor1(q, device)))
    }
}

/// ∂(mean FRC)/∂parameters of one piece of a batch, and that mean.
struct FrcGradients {
    mean_frc: f64,
    q: Vec<f64>,
    amplitudes: Vec<f64>,
    widths: Vec<f64>,
}

/// What every piece of a step reads.
struct StepState<'a> {
    forward: &'a ForwardModel,
    data: &'a ParticleData,
    basis: &'a ModeBasis,
    q: &'a [f64],
    amplitudes: &'a [f64],
    widths: &'a [f64],
    centre: [f64; 3],
    device: &'a Device,
}

impl StepState<'_> {
    /// Mean FRC of `indices` at the forward model's ring limit, without gradients.
    fn score(&self, indices: &[usize], batch: usize) -> f64 {
        let n = self.amplitudes.len();
        let centre = Tensor::<1>::from_data(
            TensorData::new(self.centre.map(|c| c as f32).to_vec(), [3]),
            self.device,
        );
        // The model is the same for every chunk: place it once.
        let pos = self.basis.positions(tensor1(self.q, self.device)).reshape([n, 3]) - centre.unsqueeze_dim::<2>(0);
        let (amplitudes, widths) = (tensor1(self.amplitudes, self.device), tensor1(self.widths, self.device));
        let mut total = 0.0;
        for chunk in indices.chunks(batch.max(1)) {
            let b = make_batch(self.forward, self.data, chunk);
            let frc = self.forward.frc(
                self.forward
                    .project(pos.clone(), amplitudes.clone(), widths.clone(), &b),
                &b,
            );
            total += f64::from(frc.sum().into_scalar::<f32>());
        }
        total / (indices.len().max(1) * self.forward.ring_count) as f64
    }

    fn gradients(&self, indices: &[usize]) -> FrcGradients {
        let autodiff = self.device.clone().autodiff();
        let batch = make_batch(self.forward, self.data, indices);
        let q_t = tensor1(self.q, &autodiff).require_grad();
        let a_t = tensor1(self.amplitudes, &autodiff).require_grad();
        let w_t = tensor1(self.widths, &autodiff).require_grad();
        let basis = ModeBasis {
            mean: Vec::new(),
            scaled: self.basis.scaled.clone().autodiff(),
            mean_t: self.basis.mean_t.clone().autodiff(),
            count: self.basis.count,
        };
        let n_atoms = self.amplitudes.len();
        let centre = Tensor::<1>::from_data(TensorData::new(self.centre.map(|c| c as f32).to_vec(), [3]), &autodiff);
        let pos = basis.positions(q_t.clone()).reshape([n_atoms, 3]) - centre.unsqueeze_dim::<2>(0);
        let mean_frc = self
            .forward
            .frc(self.forward.project(pos, a_t.clone(), w_t.clone(), &batch), &batch)
            .mean();
        let grads = mean_frc.backward();
        let read = |t: &Tensor<1>, n: usize| t.grad(&grads).map(to_vec).unwrap_or_else(|| vec![0.0; n]);
        FrcGradients {
            q: read(&q_t, self.q.len()),
            amplitudes: read(&a_t, n_atoms),
            widths: read(&w_t, n_atoms),
            mean_frc: f64::from(mean_frc.inner().into_scalar::<f32>()),
        }
    }
}

fn points(flat: &[f64]) -> Vec<[f64; 3]> {
    flat.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
}

fn make_batch(forward: &ForwardModel, data: &ParticleData, indices: &[usize]) -> Batch {
    let views: Vec<(Mat3, [f64; 2], CtfParams)> = indices.iter().map(|&i| data.view(i)).collect();
    let rotations: Vec<Mat3> = views.iter().map(|v| v.0).collect();
    let origins: Vec<[f64; 2]> = views.iter().map(|v| v.1).collect();
    let ctfs: Vec<CtfParams> = views.iter().map(|v| v.2).collect();
    let images: Vec<&[f32]> = indices.iter().map(|&i| data.images[i].as_slice()).collect();
    forward.batch(&rotations, &origins, &ctfs, &images)
}

/// The state of a refinement between steps: the prior, its mode basis, the parameters (whitened
/// mode coefficients, per-atom amplitudes and widths) and their optimisers.
pub(super) struct Refiner<'a> {
    options: &'a RefineOptions,
    device: &'a Device,
    /// The heavy atoms being refined, as they started.
    pub heavy: Structure,
    prior: ElasticPrior,
    basis: ModeBasis,
    q: Vec<f64>,
    pub amplitudes: Vec<f64>,
    pub widths: Vec<f64>,
    adam_q: Adam,
    adam_a: Adam,
    adam_w: Adam,
    /// Current heavy-atom positions, flat (x, y, z per atom).
    pub positions: Vec<f64>,
    since_recentre: usize,
}

impl<'a> Refiner<'a> {
    /// The heavy atoms of `structure`'s first frame under the prior, with amplitudes from the
    /// density kernel and widths from the resolution, both within their bounds.
    pub(super) fn new(
        structure: &Structure,
        options: &'a RefineOptions,
        device: &'a Device,
    ) -> Result<Self, RefineError> {
        if structure.frames.is_empty() {
            return Err(RefineError::Input("the model has no coordinates".into()));
        }
        let (gaussians, kept) = GaussianAtoms::from_structure(
            structure,
            0,
            GaussianOptions::molmap(options.resolution_angstrom as f32),
        );
        if gaussians.is_empty() {
            return Err(RefineError::Input("the model has no heavy atoms".into()));
        }
        let heavy = Structure {
            name: structure.name.clone(),
            atoms: kept.iter().map(|&i| structure.atoms[i].clone()).collect(),
            frames: vec![gaussians.positions.clone()],
            info: structure.info.clone(),
        };
        let n_atoms = heavy.atoms.len();
        let start: Vec<[f64; 3]> = gaussians.positions.iter().map(|p| p.map(f64::from)).collect();
        let all: Vec<usize> = (0..n_atoms).collect();
        let prior = ElasticPrior::new(&heavy, &all, &start, options.prior.clone());
        let basis = ModeBasis::new(&prior, device);
        let amplitudes: Vec<f64> = gaussians
            .amplitudes
            .iter()
            .map(|&a| f64::from(a).clamp(options.amplitude_bounds.0, options.amplitude_bounds.1))
            .collect();
        let width0 = (0.225 * options.resolution_angstrom)
            .powi(2)
            .clamp(options.width_bounds.0, options.width_bounds.1);
        Ok(Self {
            options,
            device,
            q: vec![0f64; basis.count],
            adam_q: Adam::new(basis.count),
            adam_a: Adam::new(n_atoms),
            adam_w: Adam::new(n_atoms),
            positions: basis.mean.clone(),
            heavy,
            prior,
            basis,
            amplitudes,
            widths: vec![width0; n_atoms],
            since_recentre: 0,
        })
    }

    fn state<'b>(&'b self, forward: &'b ForwardModel, data: &'b ParticleData, centre: [f64; 3]) -> StepState<'b> {
        StepState {
            forward,
            data,
            basis: &self.basis,
            q: &self.q,
            amplitudes: &self.amplitudes,
            widths: &self.widths,
            centre,
            device: self.device,
        }
    }

    /// One optimisation step on the particles `chunk`, split across `parallel`'s workers;
    /// returns the batch's mean FRC. Every `recentre_every` steps the prior is re-centred on
    /// the current model.
    pub(super) fn step(
        &mut self,
        forward: &ForwardModel,
        data: &ParticleData,
        centre: [f64; 3],
        chunk: &[usize],
        parallel: &DataParallel,
        steps_per_epoch: usize,
    ) -> Result<f64, RefineError> {
        let options = self.options;
        let state = self.state(forward, data, centre);
        let results = parallel.run(chunk, |part| (part.share, state.gradients(part.items)))?;
        let n_atoms = self.amplitudes.len();
        let mut gq: Vec<f64> = self.q.iter().map(|v| options.prior_weight * v).collect();
        let penalty = |x: f64, (lo, hi): (f64, f64)| {
            options.bound_penalty / n_atoms as f64 * (2.0 * (x - hi).max(0.0) - 2.0 * (lo - x).max(0.0))
        };
        let mut ga: Vec<f64> = self
            .amplitudes
            .iter()
            .map(|&a| penalty(a, options.amplitude_bounds))
            .collect();
        let mut gw: Vec<f64> = self.widths.iter().map(|&w| penalty(w, options.width_bounds)).collect();
        let mut frc_value = 0.0;
        for (share, r) in &results {
            // −mean FRC of the batch = Σ over parts of (part share) × −mean of the part.
            frc_value += share * r.mean_frc;
            for (total, part) in [(&mut gq, &r.q), (&mut ga, &r.amplitudes), (&mut gw, &r.widths)] {
                for (t, g) in total.iter_mut().zip(part) {
                    *t -= share * g;
                }
            }
        }
        self.adam_q.step(&mut self.q, &gq, options.lr_structure);
        self.adam_a.step(&mut self.amplitudes, &ga, options.lr_amplitude);
        self.adam_w.step(&mut self.widths, &gw, options.lr_width);
        // Keep the parameters in a range where the Gaussians stay finite.
        self.widths.iter_mut().for_each(|w| *w = w.max(0.02));
        self.amplitudes.iter_mut().for_each(|a| *a = a.max(0.0));
        self.positions = self.basis.positions_host(&self.q, self.device);
        self.since_recentre += 1;
        let every = if options.recentre_every == 0 {
            steps_per_epoch
        } else {
            options.recentre_every
        };
        if self.since_recentre >= every {
            self.prior.recentre(&self.positions);
            self.basis = ModeBasis::new(&self.prior, self.device);
            self.positions = self.basis.mean.clone();
            self.q = vec![0.0; self.basis.count];
            self.adam_q = Adam::new(self.q.len());
            self.since_recentre = 0;
        }
        Ok(frc_value)
    }

    /// Mean FRC of the particles `indices` under `forward` (no gradients).
    pub(super) fn score(
        &self,
        forward: &ForwardModel,
        data: &ParticleData,
        centre: [f64; 3],
        indices: &[usize],
    ) -> f64 {
        self.state(forward, data, centre).score(indices, self.options.batch)
    }

    /// The current model as points.
    pub(super) fn points(&self) -> Vec<[f64; 3]> {
        points(&self.positions)
    }

    /// `positions` (flat) as a model with each residue's own geometry restored.
    pub(super) fn model_of(&self, positions: &[f64]) -> Structure {
        let restored = self.prior.restore_geometry(&points(positions));
        Structure {
            name: self.heavy.name.clone(),
            atoms: self.heavy.atoms.clone(),
            frames: vec![restored.iter().map(|p| p.map(|v| v as f32)).collect()],
            info: self.heavy.info.clone(),
        }
    }

    pub(super) fn describe_prior(&self) -> String {
        self.prior.describe()
    }
}
