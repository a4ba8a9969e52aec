//! Pretraining of the encoder's prior ([`super::prior`]) by contrast (SimCLR's NT-Xent loss):
//! every step draws one chain from each of `pairs` different protein families of the training
//! split, scales it to fill a random share of the box, and simulates two particle images of it
//! (random pose, shift, defocus, astigmatism and noise level; the CTF applied, then the same
//! CTF-matched filter and resampling the heterogeneity data use). The prior learns to give the
//! two views of one chain the nearest features among all the batch's views.
//!
//! Data: the family-split chain set of `scripts/build_dataset.py` (public structures of Debian,
//! PyPI and Biopython packages); families can be held out by number, so the benchmark proteins'
//! families are never seen. The validation score is top-1 retrieval on the validation and test splits'
//! families: the share of views whose nearest other view is their partner.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;
use rustfft::FftPlanner;

use super::HeteroData;
use super::analysis::{adjusted_rand_index, gmm};
use super::data::prepare_image;
use super::error::{HeteroError, HeteroResult};
use super::explore::{TRUTH_COLUMN, particle_column};
use super::prior::{Prior, PriorShape, input_len};
use crate::build::train::TrainingChain;
use crate::maps::density::GaussianAtoms;
use crate::numeric::rng::Rng;
use crate::particles::ctf::CtfParams;
use crate::particles::simulate::{apply_ctf, project};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PretrainOptions {
    pub shape: PriorShape,
    pub steps: usize,
    /// Chains (one per family) per step; each gives two views.
    pub pairs: usize,
    pub learning_rate: f64,
    /// NT-Xent temperature.
    pub temperature: f64,
    /// Box of the simulated particles (px).
    pub box_size: usize,
    /// SNR per image, drawn log-uniformly in this range.
    pub snr: (f64, f64),
    pub defocus_angstrom: (f64, f64),
    /// The chain's diameter as a share of the box, drawn uniformly in this range.
    pub fill: (f64, f64),
    /// Families never trained on (the benchmark proteins').
    pub exclude_families: Vec<usize>,
    /// Validation every this many steps.
    pub validate_every: usize,
    pub seed: u64,
}

impl Default for PretrainOptions {
    fn default() -> Self {
        Self {
            shape: PriorShape::default(),
            steps: 2000,
            pairs: 64,
            learning_rate: 1e-3,
            temperature: 0.2,
            box_size: 64,
            snr: (0.005, 0.3),
            defocus_angstrom: (8_000.0, 30_000.0),
            fill: (0.35, 0.9),
            exclude_families: Vec::new(),
            validate_every: 250,
            seed: 1,
        }
    }
}

pub struct PretrainProgress {
    pub step: usize,
    pub steps: usize,
    pub loss: f64,
    /// Top-1 retrieval on the validation families, when it was measured at this step.
    pub validation: Option<f64>,
}

pub struct PretrainOutcome {
    pub prior: Prior,
    pub train_chains: usize,
    pub train_families: usize,
    pub validation_chains: usize,
    /// Top-1 retrieval on the validation families after training (and before it, at random
    /// weights).
    pub validation_accuracy: f64,
    pub initial_accuracy: f64,
    pub seconds: f64,
    pub cancelled: bool,
}

/// A chain ready to project: its atoms (centred) and its diameter (Å).
struct Source {
    atoms: GaussianAtoms,
    diameter: f64,
    family: usize,
}

fn source(chain: &TrainingChain) -> Source {
    let n = chain.positions.len().max(1) as f64;
    let c: [f64; 3] = std::array::from_fn(|k| chain.positions.iter().map(|p| f64::from(p[k])).sum::<f64>() / n);
    let positions: Vec<[f32; 3]> = chain
        .positions
        .iter()
        .map(|p| std::array::from_fn(|k| (f64::from(p[k]) - c[k]) as f32))
        .collect();
    let radius = positions
        .iter()
        .map(|p| p.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt())
        .fold(0.0, f64::max);
    Source {
        atoms: GaussianAtoms {
            sigmas: vec![0.0; positions.len()],
            positions,
            amplitudes: chain.amplitudes.clone(),
        },
        diameter: 2.0 * radius.max(5.0),
        family: chain.family,
    }
}

/// One simulated view of `atoms` (centred, with their widths) at `pixel` Å/px: the prior's input.
fn view(
    atoms: &GaussianAtoms,
    pixel: f64,
    options: &PretrainOptions,
    seed: u64,
    planner: &mut FftPlanner<f32>,
) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let b = options.box_size;
    let rotation = rng.rotation();
    let shift = [(rng.uniform() * 2.0 - 1.0) * 3.0, (rng.uniform() * 2.0 - 1.0) * 3.0];
    let mut image = project(atoms, [0.0; 3], &rotation, shift, b, pixel);
    let (lo, hi) = options.defocus_angstrom;
    let defocus = lo + rng.uniform() * (hi - lo);
    let astigmatism = rng.uniform() * 500.0;
    let ctf = CtfParams {
        voltage_kv: 300.0,
        spherical_aberration_mm: 2.7,
        amplitude_contrast: 0.1,
        defocus_u_angstrom: defocus + astigmatism / 2.0,
        defocus_v_angstrom: defocus - astigmatism / 2.0,
        defocus_angle_deg: rng.uniform() * 180.0 - 90.0,
        phase_shift_deg: 0.0,
        b_factor: 0.0,
    };
    apply_ctf(&mut image, b, pixel, &ctf, false, planner);
    let stats = crate::maps::Statistics::of(&image);
    let (slo, shi) = options.snr;
    let snr = (slo.ln() + rng.uniform() * (shi.ln() - slo.ln())).exp();
    let noise = f64::from(stats.rms) / snr.sqrt();
    for v in &mut image {
        *v += (noise * rng.normal()) as f32;
    }
    // The shift as a refinement would give it: within a pixel of the truth.
    let origin = [shift[0] + rng.uniform() - 0.5, shift[1] + rng.uniform() - 0.5];
    let freq = 1.0 / (b as f64 * pixel);
    let filter = |kx: i32, ky: i32| ctf.value(f64::from(kx) * freq, f64::from(ky) * freq) as f32;
    prepare_image(&image, b, 8, origin, &[], &filter, options.shape.size, planner).prior
}

/// Two views of each of `chosen` (each at its own random scale): prior inputs [2N, input length],
/// the first views then the second.
fn pair_views(sources: &[&Source], options: &PretrainOptions, rng: &mut Rng) -> Vec<f32> {
    let jobs: Vec<(usize, f64, u64, u64)> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (lo, hi) = options.fill;
            let fill = lo + rng.uniform() * (hi - lo);
            let pixel = s.diameter / (fill * options.box_size as f64);
            (i, pixel, rng.next_u64(), rng.next_u64())
        })
        .collect();
    let views: Vec<(Vec<f32>, Vec<f32>)> = jobs
        .par_iter()
        .map_init(FftPlanner::new, |planner, &(i, pixel, a, b)| {
            // Both views at one scale, so the atoms' widths (3 Å, or wider than a pixel) once.
            let sigma = (0.225 * 3.0f64).max(0.45 * pixel) as f32;
            let atoms = GaussianAtoms {
                sigmas: vec![sigma; sources[i].atoms.len()],
                ..sources[i].atoms.clone()
            };
            (
                view(&atoms, pixel, options, a, planner),
                view(&atoms, pixel, options, b, planner),
            )
        })
        .collect();
    let mut out = Vec::with_capacity(2 * views.len() * input_len(options.shape.size));
    for (a, _) in &views {
        out.extend_from_slice(a);
    }
    for (_, b) in &views {
        out.extend_from_slice(b);
    }
    out
}

/// The NT-Xent loss of features [2N, F] whose rows i and i + N are views of one chain.
fn contrastive_loss(features: Tensor<2>, temperature: f64) -> Tensor<1> {
    let [n2, _] = features.dims();
    let device = features.device();
    let norm = features.clone().powf_scalar(2.0).sum_dim(1).add_scalar(1e-8).sqrt();
    let z = features / norm;
    let mut mask = vec![0f32; n2 * n2];
    let mut target = vec![0f32; n2 * n2];
    for i in 0..n2 {
        mask[i * n2 + i] = -1e4;
        target[i * n2 + (i + n2 / 2) % n2] = 1.0;
    }
    let logits = z.clone().matmul(z.transpose()).div_scalar(temperature)
        + Tensor::<2>::from_data(TensorData::new(mask, [n2, n2]), &device);
    let target = Tensor::<2>::from_data(TensorData::new(target, [n2, n2]), &device);
    (log_softmax(logits, 1) * target).sum().neg().div_scalar(n2 as f64)
}

/// Features of prior inputs [B, [`input_len`]] by `prior`, host rows.
fn features_of(prior: &Prior, inputs: &[f32], size: usize, device: &Device) -> HeteroResult<Vec<f32>> {
    let len = input_len(size);
    let b = inputs.len() / len.max(1);
    let x = Tensor::<2>::from_data(TensorData::new(inputs.to_vec(), [b, len]), device);
    Ok(prior.forward(x).into_data().try_to_vec::<f32>()?)
}

/// Top-1 retrieval: the share of rows whose most cosine-similar other row is their partner
/// (row i and i + N).
pub fn retrieval_accuracy(features: &[f32], dim: usize) -> f64 {
    let n2 = features.len() / dim.max(1);
    let unit: Vec<Vec<f64>> = features
        .chunks(dim)
        .map(|r| {
            let norm = r.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt().max(1e-12);
            r.iter().map(|v| f64::from(*v) / norm).collect()
        })
        .collect();
    let hits = (0..n2)
        .filter(|&i| {
            let best = (0..n2)
                .filter(|&j| j != i)
                .max_by(|&a, &b| {
                    let dot = |j: usize| unit[i].iter().zip(&unit[j]).map(|(x, y)| x * y).sum::<f64>();
                    dot(a).total_cmp(&dot(b))
                })
                .unwrap_or(i);
            best == (i + n2 / 2) % n2
        })
        .count();
    hits as f64 / n2.max(1) as f64
}

/// Pretrains a prior on `chains` (their `train` split minus the excluded families; validation on
/// the `validation` and `test` splits). `on_step` sees every step and returns false to stop.
pub fn pretrain(
    chains: &[TrainingChain],
    options: &PretrainOptions,
    on_step: &mut dyn FnMut(&PretrainProgress) -> bool,
) -> HeteroResult<PretrainOutcome> {
    let started = Instant::now();
    let usable = |c: &&TrainingChain| !c.positions.is_empty() && !options.exclude_families.contains(&c.family);
    let train: Vec<Source> = chains
        .iter()
        .filter(|c| c.split == "train")
        .filter(usable)
        .map(source)
        .collect();
    let validation: Vec<Source> = chains
        .iter()
        .filter(|c| c.split == "validation" || c.split == "test")
        .filter(usable)
        .map(source)
        .collect();
    let mut families: Vec<usize> = train.iter().map(|s| s.family).collect();
    families.sort_unstable();
    families.dedup();
    if families.len() < 2 {
        return Err(HeteroError::Invalid(format!(
            "pretraining needs chains of at least two families in the train split; found {}",
            families.len()
        )));
    }
    // Each family's chains, in family order.
    let mut groups: Vec<Vec<&Source>> = families
        .iter()
        .map(|&f| train.iter().filter(|s| s.family == f).collect())
        .collect();
    let size = options.shape.size;
    let device = crate::refine::training_device().autodiff();
    let mut prior = Prior::new(&options.shape, &device);
    let mut optimizer: ModuleOptimizer = AdamConfig::new().init();
    // A fixed validation batch: the first 128 chains of the validation and test splits.
    let mut vrng = Rng::new(options.seed ^ 0x5eed);
    let vsources: Vec<&Source> = validation.iter().take(128).collect();
    let vimages = (!vsources.is_empty()).then(|| pair_views(&vsources, options, &mut vrng));
    let validate = |prior: &Prior| -> HeteroResult<f64> {
        match &vimages {
            Some(images) => Ok(retrieval_accuracy(
                &features_of(prior, images, size, &device)?,
                options.shape.features,
            )),
            None => Ok(f64::NAN),
        }
    };
    let initial_accuracy = validate(&prior)?;
    let mut rng = Rng::new(options.seed);
    let mut cancelled = false;
    for step in 0..options.steps {
        rng.shuffle(&mut groups);
        let chosen: Vec<&Source> = groups
            .iter()
            .take(options.pairs.max(2))
            .map(|members| members[rng.below(members.len())])
            .collect();
        let images = pair_views(&chosen, options, &mut rng);
        let x = Tensor::<2>::from_data(TensorData::new(images, [2 * chosen.len(), input_len(size)]), &device);
        let loss = contrastive_loss(prior.forward(x), options.temperature);
        let value = f64::from(loss.clone().into_data().try_to_vec::<f32>()?[0]);
        let grads = GradientsParams::from_grads(loss.backward(), &prior);
        prior = optimizer.step(options.learning_rate, prior, grads);
        let last = step + 1 == options.steps;
        let validation = ((step + 1) % options.validate_every.max(1) == 0 || last)
            .then(|| validate(&prior))
            .transpose()?;
        if !on_step(&PretrainProgress {
            step,
            steps: options.steps,
            loss: value,
            validation,
        }) {
            cancelled = true;
            break;
        }
    }
    let validation_accuracy = validate(&prior)?;
    Ok(PretrainOutcome {
        prior: prior.to_device(&Device::flex()),
        train_chains: train.len(),
        train_families: families.len(),
        validation_chains: vsources.len(),
        validation_accuracy,
        initial_accuracy,
        seconds: started.elapsed().as_secs_f64(),
        cancelled,
    })
}

/// How well the prior's features alone separate a particle set's true states: the ARI of a GMM
/// (one component per state) on the features of its first `max_particles` against the set's
/// [`TRUTH_COLUMN`]. None when the set has no truth column.
pub fn check_on_particles(
    prior: &Prior,
    shape: &PriorShape,
    path: &std::path::Path,
    max_particles: usize,
) -> HeteroResult<Option<f64>> {
    let data = HeteroData::open(
        path,
        8,
        None,
        1.0,
        false,
        Some(max_particles),
        None,
        shape.size,
        &mut |_, _| true,
    )?;
    let Some(truth) = particle_column(path, TRUTH_COLUMN, data.len())? else {
        return Ok(None);
    };
    let labels: Vec<usize> = truth.iter().map(|v| v.max(0.0).round() as usize).collect();
    let states = labels.iter().copied().max().map_or(1, |m| m + 1);
    let device = Device::flex();
    let mut features = Vec::with_capacity(data.len() * shape.features);
    let all: Vec<usize> = (0..data.len()).collect();
    for chunk in all.chunks(256) {
        let batch = data.batch(chunk)?;
        features.extend(features_of(prior, &batch.prior_images, shape.size, &device)?);
    }
    let fitted = gmm(&features, shape.features, states, 1);
    Ok(Some(adjusted_rand_index(&fitted.labels, &labels)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieval_counts_partners_that_are_nearest() {
        // Rows 0, 1 and their partners 2, 3: 0 and 2 are each other's nearest, 3's nearest is
        // its partner 1, but 1's nearest is 2 (a miss): 3 of 4.
        let f = [1.0, 0.0, 0.7, 0.7, 1.0, 0.05, 0.0, 1.0];
        let acc = retrieval_accuracy(&f, 2);
        assert!((acc - 0.75).abs() < 1e-9, "{acc}");
    }

    #[test]
    fn the_contrastive_loss_is_low_when_partners_agree_and_high_when_they_do_not() {
        let device = Device::flex();
        let t = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [4, 2]), &device);
        let value = |l: Tensor<1>| l.into_data().try_to_vec::<f32>().unwrap()[0];
        let agree = value(contrastive_loss(t(vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]), 0.2));
        let swapped = value(contrastive_loss(t(vec![1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]), 0.2));
        assert!(agree < 0.1 && swapped > 4.0, "{agree} {swapped}");
    }

    #[test]
    fn two_views_of_one_chain_differ() {
        // A helix of 120 carbons with a heavier tail.
        let positions: Vec<[f32; 3]> = (0..120)
            .map(|i| {
                let t = i as f32 * 1.7;
                [6.0 * t.cos(), 6.0 * t.sin(), 0.4 * i as f32 - 24.0]
            })
            .collect();
        let amplitudes = (0..120).map(|i| if i > 100 { 16.0 } else { 6.0 }).collect();
        let s = Source {
            atoms: GaussianAtoms {
                sigmas: vec![0.0; 120],
                positions,
                amplitudes,
            },
            diameter: 50.0,
            family: 0,
        };
        let options = PretrainOptions {
            shape: PriorShape {
                size: 16,
                ..PriorShape::default()
            },
            box_size: 32,
            ..PretrainOptions::default()
        };
        let mut rng = Rng::new(3);
        let images = pair_views(&[&s], &options, &mut rng);
        let len = input_len(16);
        assert_eq!(images.len(), 2 * len);
        let (a, b) = images.split_at(len);
        assert!(a.iter().all(|v| v.is_finite()));
        assert!(a.iter().zip(b).any(|(x, y)| (x - y).abs() > 0.05));
    }
}
