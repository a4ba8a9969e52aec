//! Particle-driven refinement (the CoCoFold method, SCIENCE.md §4): the model, drawn as one
//! Gaussian per heavy atom, is projected at each particle's known pose, multiplied by its CTF and
//! compared with the raw image by a Fourier ring correlation loss averaged over rings up to a
//! maximum frequency. Per-atom amplitudes (bounded 1–20) and widths (σ² bounded 0.1–0.8 Å²) are
//! learned beside the structure with a quadratic penalty outside the bounds; Adam updates all of
//! them, one batch of particles at a time.
//!
//! The structure is not free coordinates: it moves in the basis of the elastic-network prior of
//! the guided sampler ([`crate::guided::ElasticPrior`]): x = x₀ + B·diag(√v)·q with whitened
//! coefficients q under a N(0, I) prior, so only protein-like collective motions are reachable,
//! and the prior is re-centred (residue geometry restored, modes rebuilt) every few steps so
//! large motions stay reachable. The loss runs coarse to fine: the highest ring rises from
//! `start_resolution` to `resolution` over the epochs.

pub mod forward;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Tensor, TensorData};

use crate::ctf::CtfParams;
use crate::density::{GaussianAtoms, GaussianOptions};
use crate::formats::cs::CsFile;
use crate::formats::model::Structure;
use crate::formats::particles::ParticleSet;
use crate::formats::stack::{ImageRef, ParticleStack};
use crate::formats::star::StarFile;
use crate::geometry::{Mat3, relion_matrix};
use crate::guided::{Denoiser, ElasticPrior, PriorOptions};
use crate::particle_sim::Rng;

pub use burn::tensor::Device;
pub use forward::{Batch, ForwardModel};

/// The device refinement trains on: burn's wgpu backend on a hardware GPU when cryoforge is built
/// with the `burn-wgpu` feature (and `CRYOFORGE_GPU` is not `0`), otherwise Flex on the CPU.
pub fn training_device() -> Device {
    #[cfg(feature = "burn-wgpu")]
    if crate::gpu::hardware_gpu_possible() && std::env::var("CRYOFORGE_GPU").map_or(true, |v| v != "0") {
        return Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    }
    Device::flex()
}

/// The centroid of a model's first frame: the box centre when nothing else says where it is.
pub fn centroid(structure: &Structure) -> [f64; 3] {
    let frame = structure.frames.first().map(Vec::as_slice).unwrap_or_default();
    let n = frame.len().max(1) as f64;
    std::array::from_fn(|k| frame.iter().map(|p| f64::from(p[k])).sum::<f64>() / n)
}

/// The STAR block where the simulator records the box centre in the model's frame.
pub const SIMULATION_BLOCK: &str = "cryoforge_simulation";
pub const CENTRE_KEYS: [&str; 3] = ["cryoforgeCentreX", "cryoforgeCentreY", "cryoforgeCentreZ"];

/// Particle images with their poses, shifts and CTFs.
pub struct ParticleData {
    pub set: ParticleSet,
    pub images: Vec<Vec<f32>>,
    pub box_size: usize,
    pub pixel_size: f64,
    /// Where the box centre sits in the model's frame, when the metadata says (simulated data).
    pub centre: Option<[f64; 3]>,
}

impl ParticleData {
    /// Reads a RELION STAR or cryoSPARC `.cs` file and every image it references.
    pub fn read(path: &Path) -> Result<Self, String> {
        let (set, centre) = read_particle_metadata(path)?;
        let stacks = StackReader::open(path, &set)?;
        let images = (0..set.particles.len())
            .map(|i| stacks.image(&set, i))
            .collect::<Result<Vec<_>, _>>()?;
        let (box_size, pixel_size) = stacks.geometry(path, &set)?;
        Ok(Self {
            set,
            images,
            box_size,
            pixel_size,
            centre,
        })
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Particle `i`'s RELION matrix, origin in pixels and CTF.
    pub fn view(&self, i: usize) -> (Mat3, [f64; 2], CtfParams) {
        let p = &self.set.particles[i];
        (
            relion_matrix(p.euler_deg[0], p.euler_deg[1], p.euler_deg[2]),
            p.shift_angstrom.map(|s| s / self.pixel_size),
            self.set.ctf(i),
        )
    }
}

/// Reads a RELION STAR or cryoSPARC `.cs` particle file without its images: the particles and,
/// for simulated data, where the box centre sits in the model's frame.
pub fn read_particle_metadata(path: &Path) -> Result<(ParticleSet, Option<[f64; 3]>), String> {
    let name = path.display();
    let is_cs = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("cs"));
    let (set, centre) = if is_cs {
        let cs = CsFile::read(path).map_err(|e| format!("{name}: {e}"))?;
        (
            ParticleSet::from_cs(path, &cs).map_err(|e| format!("{name}: {e}"))?,
            None,
        )
    } else {
        let star = StarFile::read(path).map_err(|e| format!("{name}: {e}"))?;
        let centre = star.block(SIMULATION_BLOCK).and_then(|b| {
            let values: Vec<f64> = CENTRE_KEYS
                .iter()
                .filter_map(|k| b.value(k).and_then(|v| v.parse().ok()))
                .collect();
            (values.len() == 3).then(|| [values[0], values[1], values[2]])
        });
        (
            ParticleSet::from_star(path, &star).map_err(|e| format!("{name}: {e}"))?,
            centre,
        )
    };
    if set.particles.is_empty() {
        return Err(format!("{name}: no particles"));
    }
    Ok((set, centre))
}

/// The stacks a particle file references, opened once and read image by image on demand, so
/// sets larger than memory can stream.
pub struct StackReader {
    stacks: std::collections::HashMap<String, ParticleStack>,
}

impl StackReader {
    /// Opens every stack `set` references (paths resolved beside `metadata_path`).
    pub fn open(metadata_path: &Path, set: &ParticleSet) -> Result<Self, String> {
        let mut stacks = std::collections::HashMap::new();
        for p in &set.particles {
            if !stacks.contains_key(&p.image_path) {
                let reference = ImageRef {
                    index_1based: p.image_index_1based,
                    path: p.image_path.clone(),
                };
                let stack_path: PathBuf = reference
                    .resolve(metadata_path)
                    .ok_or_else(|| format!("{}: stack {} not found", metadata_path.display(), p.image_path))?;
                let stack = ParticleStack::open(&stack_path).map_err(|e| format!("{}: {e}", stack_path.display()))?;
                stacks.insert(p.image_path.clone(), stack);
            }
        }
        Ok(Self { stacks })
    }

    /// Particle `i`'s image, x fastest.
    pub fn image(&self, set: &ParticleSet, i: usize) -> Result<Vec<f32>, String> {
        let p = &set.particles[i];
        let stack = &self.stacks[&p.image_path];
        stack
            .image(p.image_index_1based - 1)
            .map_err(|e| format!("{}: image {}: {e}", stack.path().display(), p.image_index_1based))
    }

    /// Box size and pixel size, checked against the optics table.
    pub fn geometry(&self, metadata_path: &Path, set: &ParticleSet) -> Result<(usize, f64), String> {
        let name = metadata_path.display();
        let first = set
            .particles
            .first()
            .map(|p| self.stacks[&p.image_path].box_size())
            .unwrap_or([0, 0]);
        if first[0] != first[1] || first[0] < 8 {
            return Err(format!(
                "{name}: images must be square and at least 8 px, got {}×{}",
                first[0], first[1]
            ));
        }
        if let Some(other) = self.stacks.values().find(|s| s.box_size() != first) {
            return Err(format!(
                "{}: {}×{} px images, but other stacks hold {}×{} px",
                other.path().display(),
                other.box_size()[0],
                other.box_size()[1],
                first[0],
                first[1]
            ));
        }
        let box_size = set.optics.first().and_then(|o| o.image_size).unwrap_or(first[0]);
        if box_size != first[0] {
            return Err(format!(
                "{name}: optics table says {box_size} px, the stack holds {} px images",
                first[0]
            ));
        }
        Ok((box_size, set.optics.first().map_or(1.0, |o| o.pixel_size_angstrom)))
    }
}

/// Everything a refinement needs besides the particles and the model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RefineOptions {
    /// Final resolution (Å): the FRC uses rings up to 1/resolution (at most Nyquist), and the
    /// atoms start with σ = 0.225 × resolution (within the width bounds).
    pub resolution_angstrom: f64,
    /// First epoch's resolution limit; the limit falls linearly to `resolution_angstrom` by the
    /// last epoch.
    pub start_resolution_angstrom: f64,
    pub epochs: usize,
    pub batch: usize,
    /// Adam learning rates: amplitudes and widths as published (1e-2, 5e-3); the structure's
    /// rate is per whitened mode coefficient (one prior standard deviation = 1).
    pub lr_amplitude: f64,
    pub lr_width: f64,
    pub lr_structure: f64,
    pub amplitude_bounds: (f64, f64),
    pub width_bounds: (f64, f64),
    /// Weight of the quadratic penalty outside the bounds.
    pub bound_penalty: f64,
    /// Weight of the prior term ½|q|² (per particle-batch loss, which is a mean FRC in [−1, 1]).
    pub prior_weight: f64,
    pub prior: PriorOptions,
    /// Re-centre the prior on the current model every this many steps (0: once per epoch).
    pub recentre_every: usize,
    /// Particles held out to score the model each epoch (FRC at the final resolution).
    pub validation_particles: usize,
    pub seed: u64,
}

/// Fewest optimisation steps the automatic epoch count allows: small particle sets get more
/// epochs (500 particles at batch 32 need ~43), large ones the published 10.
pub const AUTO_MIN_STEPS: usize = 600;

impl RefineOptions {
    /// The published 10 epochs, or more when a small set would give fewer than
    /// [`AUTO_MIN_STEPS`] steps.
    pub fn auto_epochs(particles: usize, batch: usize, validation_particles: usize) -> usize {
        let held = validation_particles.min(particles / 5);
        let steps_per_epoch = particles.saturating_sub(held).div_ceil(batch.max(1)).max(1);
        AUTO_MIN_STEPS.div_ceil(steps_per_epoch).max(10)
    }

    pub fn new(resolution_angstrom: f64) -> Self {
        Self {
            resolution_angstrom,
            start_resolution_angstrom: 12.0f64.max(resolution_angstrom),
            epochs: 10,
            batch: 32,
            lr_amplitude: 1e-2,
            lr_width: 5e-3,
            lr_structure: 0.05,
            amplitude_bounds: (1.0, 20.0),
            width_bounds: (0.1, 0.8),
            bound_penalty: 1.0,
            prior_weight: 1e-3,
            prior: PriorOptions {
                modes: 200,
                ..PriorOptions::default()
            },
            recentre_every: 20,
            validation_particles: 64,
            seed: 1,
        }
    }
}

/// Reported after every optimisation step.
pub struct RefineProgress<'a> {
    pub epoch: usize,
    pub epochs: usize,
    pub step: usize,
    pub steps_per_epoch: usize,
    /// This batch's mean FRC over its rings.
    pub frc: f64,
    /// The current ring limit in Å.
    pub resolution_angstrom: f64,
    /// Mean FRC of the held-out particles at the final resolution, after each epoch.
    pub validation_frc: Option<f64>,
    /// The current model (heavy atoms, in the model's frame).
    pub positions: &'a [[f64; 3]],
    pub amplitudes: &'a [f64],
    pub widths: &'a [f64],
}

/// A few particle images next to the current model's CTF-modulated projections at their poses.
#[derive(Clone, Debug, PartialEq)]
pub struct Gallery {
    pub box_size: usize,
    /// (particle index, image, projection), each box² values, x fastest.
    pub pairs: Vec<(usize, Vec<f32>, Vec<f32>)>,
}

impl Gallery {
    /// Projects the model (`positions` in the model's frame, with per-atom amplitudes and
    /// widths σ² in Å²) at the poses of `indices` with their CTFs.
    pub fn of(
        data: &ParticleData,
        indices: &[usize],
        positions: &[[f64; 3]],
        amplitudes: &[f64],
        widths: &[f64],
        centre: [f64; 3],
    ) -> Self {
        let atoms = GaussianAtoms {
            positions: positions.iter().map(|p| p.map(|v| v as f32)).collect(),
            amplitudes: amplitudes.iter().map(|&a| a as f32).collect(),
            sigmas: widths.iter().map(|&w| w.max(1e-4).sqrt() as f32).collect(),
        };
        let mut planner = rustfft::FftPlanner::new();
        let pairs = indices
            .iter()
            .filter(|&&i| i < data.len())
            .map(|&i| {
                let (rotation, origin, ctf) = data.view(i);
                let mut projection =
                    crate::particle_sim::project(&atoms, centre, &rotation, origin, data.box_size, data.pixel_size);
                crate::particle_sim::apply_ctf(
                    &mut projection,
                    data.box_size,
                    data.pixel_size,
                    &ctf,
                    false,
                    &mut planner,
                );
                (i, data.images[i].clone(), projection)
            })
            .collect();
        Self {
            box_size: data.box_size,
            pairs,
        }
    }
}

/// One epoch's record.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub resolution_angstrom: f64,
    pub mean_frc: f64,
    pub validation_frc: f64,
    pub seconds: f64,
}

/// The result: the refined heavy-atom model, the best one seen (by held-out FRC), the learned
/// amplitudes and widths, and the history.
#[derive(Debug)]
pub struct Refinement {
    pub start: Structure,
    pub refined: Structure,
    pub best: Structure,
    pub best_epoch: usize,
    pub amplitudes: Vec<f64>,
    pub widths: Vec<f64>,
    pub step_frc: Vec<f64>,
    pub epochs: Vec<EpochRecord>,
    pub completed: bool,
    pub seconds: f64,
    pub particles_per_second: f64,
    pub describe_prior: String,
}

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

/// Refines `structure` (frame 0, heavy atoms) against `data`. `centre` is where the box centre
/// sits in the model's frame. `on_step` is called after every step and stops the run when it
/// returns false; the model reached so far is kept.
pub fn refine_particles(
    structure: &Structure,
    data: &ParticleData,
    centre: [f64; 3],
    options: &RefineOptions,
    device: &Device,
    on_step: &mut dyn FnMut(&RefineProgress<'_>) -> bool,
) -> Result<Refinement, String> {
    crate::tune_allocator();
    let started = Instant::now();
    if !(options.resolution_angstrom.is_finite() && options.resolution_angstrom > 0.0) {
        return Err(format!(
            "resolution must be positive, got {}",
            options.resolution_angstrom
        ));
    }
    if structure.frames.is_empty() {
        return Err("the model has no coordinates".into());
    }
    if options.epochs == 0 || options.batch == 0 {
        return Err("epochs and batch must be at least 1".into());
    }
    let (gaussians, kept) = GaussianAtoms::from_structure(
        structure,
        0,
        GaussianOptions::molmap(options.resolution_angstrom as f32),
    );
    if gaussians.is_empty() {
        return Err("the model has no heavy atoms".into());
    }
    let heavy = Structure {
        name: structure.name.clone(),
        atoms: kept.iter().map(|&i| structure.atoms[i].clone()).collect(),
        frames: vec![gaussians.positions.clone()],
    };
    let n_atoms = heavy.atoms.len();
    let start: Vec<[f64; 3]> = gaussians.positions.iter().map(|p| p.map(f64::from)).collect();
    let all: Vec<usize> = (0..n_atoms).collect();
    let mut prior = ElasticPrior::new(&heavy, &all, &start, options.prior.clone());
    let mut basis = ModeBasis::new(&prior, device);
    let mut q = vec![0f64; basis.count];
    let mut amplitudes: Vec<f64> = gaussians
        .amplitudes
        .iter()
        .map(|&a| f64::from(a).clamp(options.amplitude_bounds.0, options.amplitude_bounds.1))
        .collect();
    let width0 = (0.225 * options.resolution_angstrom)
        .powi(2)
        .clamp(options.width_bounds.0, options.width_bounds.1);
    let mut widths = vec![width0; n_atoms];
    let (mut adam_q, mut adam_a, mut adam_w) = (Adam::new(q.len()), Adam::new(n_atoms), Adam::new(n_atoms));

    // Hold out a few particles to score each epoch; train on the rest in shuffled batches.
    let mut rng = Rng::new(options.seed);
    let mut order: Vec<usize> = (0..data.len()).collect();
    shuffle(&mut order, &mut rng);
    let held = options.validation_particles.min(data.len() / 5);
    let (validation, train) = order.split_at(held);
    let (validation, mut train) = (validation.to_vec(), train.to_vec());
    if train.is_empty() {
        return Err("no particles to train on".into());
    }
    let steps_per_epoch = train.len().div_ceil(options.batch);
    let final_ring = ForwardModel::ring_of_resolution(data.box_size, data.pixel_size, options.resolution_angstrom);
    let final_model = ForwardModel::new(device, data.box_size, data.pixel_size, final_ring);

    let mut positions = basis.mean.clone();
    let mut step_frc = Vec::new();
    let mut epochs = Vec::new();
    let mut best = (f64::NEG_INFINITY, positions.clone(), 0usize);
    let mut completed = true;
    let mut since_recentre = 0usize;
    let mut seen = 0usize;
    'epochs: for epoch in 0..options.epochs {
        let epoch_started = Instant::now();
        let t = if options.epochs > 1 {
            epoch as f64 / (options.epochs - 1) as f64
        } else {
            1.0
        };
        let inv_res = (1.0 - t) / options.start_resolution_angstrom + t / options.resolution_angstrom;
        let resolution = 1.0 / inv_res;
        let ring = ForwardModel::ring_of_resolution(data.box_size, data.pixel_size, resolution);
        let forward = ForwardModel::new(device, data.box_size, data.pixel_size, ring);
        shuffle(&mut train, &mut rng);
        let mut epoch_frc = 0.0;
        for (step, chunk) in train.chunks(options.batch).enumerate() {
            // The batch is split across threads (one autodiff graph each; burn's CPU kernels use
            // little more than one core on graphs this size), and their gradients combined.
            let parts = rayon::current_num_threads().clamp(1, chunk.len());
            let pieces: Vec<&[usize]> = chunk.chunks(chunk.len().div_ceil(parts)).collect();
            let state = StepState {
                forward: &forward,
                data,
                basis: &basis,
                q: &q,
                amplitudes: &amplitudes,
                widths: &widths,
                centre,
                device,
            };
            let results: Vec<FrcGradients> = if pieces.len() > 1 {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = pieces
                        .iter()
                        .map(|piece| scope.spawn(|| state.gradients(piece)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                        .collect()
                })
            } else {
                vec![state.gradients(chunk)]
            };
            let mut gq: Vec<f64> = q.iter().map(|v| options.prior_weight * v).collect();
            let penalty = |x: f64, (lo, hi): (f64, f64)| {
                options.bound_penalty / n_atoms as f64 * (2.0 * (x - hi).max(0.0) - 2.0 * (lo - x).max(0.0))
            };
            let mut ga: Vec<f64> = amplitudes
                .iter()
                .map(|&a| penalty(a, options.amplitude_bounds))
                .collect();
            let mut gw: Vec<f64> = widths.iter().map(|&w| penalty(w, options.width_bounds)).collect();
            let mut frc_value = 0.0;
            for (piece, r) in pieces.iter().zip(&results) {
                // −mean FRC of the batch = Σ over pieces of (piece size / batch size) × −mean of the piece.
                let share = piece.len() as f64 / chunk.len() as f64;
                frc_value += share * r.mean_frc;
                for (total, part) in [(&mut gq, &r.q), (&mut ga, &r.amplitudes), (&mut gw, &r.widths)] {
                    for (t, g) in total.iter_mut().zip(part) {
                        *t -= share * g;
                    }
                }
            }
            adam_q.step(&mut q, &gq, options.lr_structure);
            adam_a.step(&mut amplitudes, &ga, options.lr_amplitude);
            adam_w.step(&mut widths, &gw, options.lr_width);
            // Keep the parameters in a range where the Gaussians stay finite.
            widths.iter_mut().for_each(|w| *w = w.max(0.02));
            amplitudes.iter_mut().for_each(|a| *a = a.max(0.0));
            positions = basis.positions_host(&q, device);
            step_frc.push(frc_value);
            epoch_frc += frc_value;
            seen += chunk.len();
            since_recentre += 1;
            let every = if options.recentre_every == 0 {
                steps_per_epoch
            } else {
                options.recentre_every
            };
            if since_recentre >= every {
                prior.recentre(&positions);
                basis = ModeBasis::new(&prior, device);
                positions = basis.mean.clone();
                q = vec![0.0; basis.count];
                adam_q = Adam::new(q.len());
                since_recentre = 0;
            }
            let pts = points(&positions);
            let progress = RefineProgress {
                epoch,
                epochs: options.epochs,
                step,
                steps_per_epoch,
                frc: frc_value,
                resolution_angstrom: resolution,
                validation_frc: None,
                positions: &pts,
                amplitudes: &amplitudes,
                widths: &widths,
            };
            if !on_step(&progress) {
                completed = false;
                break 'epochs;
            }
        }
        let validation_frc = if validation.is_empty() {
            epoch_frc / steps_per_epoch as f64
        } else {
            StepState {
                forward: &final_model,
                data,
                basis: &basis,
                q: &q,
                amplitudes: &amplitudes,
                widths: &widths,
                centre,
                device,
            }
            .score(&validation, options.batch)
        };
        if validation_frc > best.0 {
            best = (validation_frc, positions.clone(), epoch);
        }
        epochs.push(EpochRecord {
            epoch,
            resolution_angstrom: resolution,
            mean_frc: epoch_frc / steps_per_epoch as f64,
            validation_frc,
            seconds: epoch_started.elapsed().as_secs_f64(),
        });
        let pts = points(&positions);
        let progress = RefineProgress {
            epoch,
            epochs: options.epochs,
            step: steps_per_epoch,
            steps_per_epoch,
            frc: epoch_frc / steps_per_epoch as f64,
            resolution_angstrom: resolution,
            validation_frc: Some(validation_frc),
            positions: &pts,
            amplitudes: &amplitudes,
            widths: &widths,
        };
        if !on_step(&progress) {
            completed = false;
            break;
        }
    }
    // The final model keeps each residue's own geometry.
    let finished = prior.restore_geometry(&points(&positions));
    let model_of = |pts: &[[f64; 3]]| Structure {
        name: heavy.name.clone(),
        atoms: heavy.atoms.clone(),
        frames: vec![pts.iter().map(|p| p.map(|v| v as f32)).collect()],
    };
    let best_positions = if best.0.is_finite() {
        prior.restore_geometry(&points(&best.1))
    } else {
        finished.clone()
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(Refinement {
        start: heavy.clone(),
        refined: model_of(&finished),
        best: model_of(&best_positions),
        best_epoch: best.2,
        amplitudes,
        widths,
        step_frc,
        epochs,
        completed,
        seconds,
        particles_per_second: seen as f64 / seconds.max(1e-9),
        describe_prior: prior.describe(),
    })
}

fn shuffle(v: &mut [usize], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.uniform() * (i + 1) as f64) as usize % (i + 1);
        v.swap(i, j);
    }
}
