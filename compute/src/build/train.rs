//! Training the Cα network on maps simulated from real structures (`cryoforge build train`).
//! A data set is a folder with `manifest.json` (made by `scripts/build_dataset.py`: protein
//! chains of public packages, split into train/validation/test by protein family) and the chains'
//! files. Every step draws a family, a chain of it and a random orientation, simulates its map
//! at a random resolution (2.5–7 Å) with the atoms' own B-factors plus a random overall B (0–30),
//! adds noise low-passed at the resolution at a random SNR (0.3–5: the map's variance over the
//! noise's, both over the box), normalises it as a user's map is
//! ([`super::prepare`]) and cuts a crop around a random Cα. The targets at every voxel: a
//! Gaussian bump (σ 0.5 Å) at each Cα, and within 1.5 Å of a Cα its residue type and the vector
//! to the next Cα. Loss: binary cross-entropy on the bumps (positives weighted up), squared error
//! on the vectors and cross-entropy on the types.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::network::{CaNet, NEXT_SCALE_ANGSTROM, NetShape, OUTPUTS};
use super::prepare::normalise_values;
use super::sequence::residue_index_of_name;
use crate::formats::model::Structure;
use crate::maps::density::{GaussianAtoms, SIGMA_PER_RESOLUTION, simulate};
use crate::maps::tools::low_pass;
use crate::maps::{DensityMap, MapGrid};
use crate::numeric::rng::Rng;

/// One training chain, as the manifest lists it.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct ManifestChain {
    pub name: String,
    pub file: String,
    /// The public file the chain comes from (relative to the corpus).
    #[serde(default)]
    pub source: String,
    pub family: usize,
    pub split: String,
    pub residues: usize,
}

#[derive(Clone, Debug, serde::Deserialize)]
struct Manifest {
    chains: Vec<ManifestChain>,
}

/// A chain ready for simulation: its heavy atoms (with B-factors) and its Cα.
#[derive(Clone, Debug)]
pub struct TrainingChain {
    pub name: String,
    pub source: String,
    pub family: usize,
    pub split: String,
    pub positions: Vec<[f32; 3]>,
    pub amplitudes: Vec<f32>,
    pub b_factors: Vec<f32>,
    /// Per residue: Cα position, residue type, index of the next residue's Cα when linked.
    pub alphas: Vec<([f32; 3], u8, Option<usize>)>,
    pub structure: Structure,
}

/// Reads the data set in `dir` (its manifest and chain files).
pub fn load_dataset(dir: &Path) -> Result<Vec<TrainingChain>, String> {
    let manifest_path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let mut chains = Vec::new();
    for c in manifest.chains {
        let path = dir.join(&c.file);
        let structure = Structure::read(&path).map_err(|e| e.to_string())?;
        chains.push(training_chain(&c, structure));
    }
    Ok(chains)
}

fn training_chain(c: &ManifestChain, structure: Structure) -> TrainingChain {
    let frame = &structure.frames[0];
    let (mut positions, mut amplitudes, mut b_factors, mut alphas) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (atom, p) in structure.atoms.iter().zip(frame) {
        if atom.is_hydrogen() {
            continue;
        }
        positions.push(*p);
        amplitudes.push(atom.atomic_number() as f32);
        b_factors.push(atom.b_factor.clamp(0.0, 150.0));
        if atom.is_alpha_carbon() {
            let kind = residue_index_of_name(&atom.residue_name).unwrap_or(0);
            alphas.push((*p, kind, None));
        }
    }
    for k in 0..alphas.len().saturating_sub(1) {
        let (a, b) = (alphas[k].0, alphas[k + 1].0);
        let d2: f32 = (0..3).map(|i| (a[i] - b[i]).powi(2)).sum();
        if d2 < 4.2 * 4.2 {
            alphas[k].2 = Some(k + 1);
        }
    }
    TrainingChain {
        name: c.name.clone(),
        source: c.source.clone(),
        family: c.family,
        split: c.split.clone(),
        positions,
        amplitudes,
        b_factors,
        alphas,
        structure,
    }
}

/// How training runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainOptions {
    pub shape: NetShape,
    pub steps: usize,
    pub batch: usize,
    /// Side of the training crops, voxels of 1 Å (a multiple of 4).
    pub crop: usize,
    pub learning_rate: f64,
    pub resolution_range: [f32; 2],
    pub snr_range: [f64; 2],
    /// Weight of Cα voxels against the rest in the cross-entropy.
    pub positive_weight: f32,
    pub seed: u64,
    /// Validation crops scored every `validate_every` steps.
    pub validation_crops: usize,
    pub validate_every: usize,
    /// Where the network is saved at every validation (None: only at the end, by the caller).
    #[serde(skip)]
    pub checkpoint: Option<PathBuf>,
    /// Weights to start from (a checkpoint or an earlier run) instead of a random start; their
    /// shape must be `shape`.
    #[serde(default)]
    pub init: Option<PathBuf>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            shape: NetShape::default(),
            steps: 3000,
            batch: 2,
            crop: 32,
            learning_rate: 2e-3,
            resolution_range: [2.5, 7.0],
            snr_range: [0.3, 5.0],
            positive_weight: 20.0,
            seed: 1,
            validation_crops: 16,
            validate_every: 250,
            checkpoint: None,
            init: None,
        }
    }
}

/// A training example: the normalised crop and its targets, each `crop³` long (x fastest).
pub struct Example {
    pub input: Vec<f32>,
    pub bump: Vec<f32>,
    /// Voxels within 1.5 Å of a Cα: its residue type (−1 elsewhere) and the vector to the next
    /// Cα in units of 3.8 Å (where there is one).
    pub kind: Vec<i64>,
    pub next: [Vec<f32>; 3],
    pub next_mask: Vec<f32>,
}

/// Simulates one example of `chain` from `rng`.
pub fn example(chain: &TrainingChain, options: &TrainOptions, rng: &mut Rng) -> Example {
    let rotation = rng.rotation();
    let centre = centroid(&chain.positions);
    let rotate = |p: [f32; 3]| -> [f32; 3] {
        let d = [0, 1, 2].map(|k| f64::from(p[k] - centre[k]));
        std::array::from_fn(|r| (0..3).map(|c| rotation[r][c] * d[c]).sum::<f64>() as f32)
    };
    let positions: Vec<[f32; 3]> = chain.positions.iter().map(|&p| rotate(p)).collect();
    let [lo_res, hi_res] = options.resolution_range;
    let resolution = lo_res * (hi_res / lo_res).powf(rng.uniform() as f32);
    let extra_b = 30.0 * rng.uniform() as f32;
    let sigma_res = SIGMA_PER_RESOLUTION * resolution;
    let sigmas: Vec<f32> = chain
        .b_factors
        .iter()
        .map(|b| (sigma_res * sigma_res + (b + extra_b) / (8.0 * std::f32::consts::PI.powi(2))).sqrt())
        .collect();
    // The whole chain's map on a 1 Å grid, with noise, low-passed, normalised as at inference.
    let (lo, hi) = bounds(&positions);
    let pad = 3.0 * resolution + 4.0;
    let jitter: [f32; 3] = std::array::from_fn(|_| rng.uniform() as f32);
    let first: [f32; 3] = std::array::from_fn(|a| (lo[a] - pad).floor() + jitter[a]);
    let dims: [usize; 3] = std::array::from_fn(|a| ((hi[a] - lo[a] + 2.0 * pad).ceil() as usize).max(options.crop));
    let grid = MapGrid::new(dims, [1.0; 3], first);
    let atoms = GaussianAtoms {
        positions: positions.clone(),
        amplitudes: chain.amplitudes.clone(),
        sigmas,
    };
    let signal = simulate(&grid, &atoms);
    let [lo_snr, hi_snr] = options.snr_range;
    let snr = lo_snr * (hi_snr / lo_snr).powf(rng.uniform());
    let values = with_filtered_noise(&grid, &signal, resolution, snr, rng);
    let normalised = normalise_values(&values, chain.alphas.len()).unwrap_or_else(|| vec![0.0; values.len()]);
    // A crop around a random Cα, moved by up to a quarter of its side.
    let n = options.crop;
    let anchor = rotate(chain.alphas[rng.below(chain.alphas.len().max(1))].0);
    let start: [usize; 3] = std::array::from_fn(|a| {
        let wobble = (rng.uniform() - 0.5) * 0.5 * n as f64;
        let c = f64::from(anchor[a] - first[a]) + wobble - n as f64 / 2.0;
        (c.round().max(0.0) as usize).min(dims[a] - n)
    });
    let mut input = vec![0f32; n * n * n];
    for z in 0..n {
        for y in 0..n {
            for x in 0..n {
                input[x + n * (y + n * z)] =
                    normalised[(start[0] + x) + dims[0] * ((start[1] + y) + dims[1] * (start[2] + z))];
            }
        }
    }
    let crop_first: [f32; 3] = std::array::from_fn(|a| first[a] + start[a] as f32);
    let mut example = Example {
        input,
        bump: vec![0.0; n * n * n],
        kind: vec![-1; n * n * n],
        next: [vec![0.0; n * n * n], vec![0.0; n * n * n], vec![0.0; n * n * n]],
        next_mask: vec![0.0; n * n * n],
    };
    for &(p, kind, next) in &chain.alphas {
        let p = rotate(p);
        let local: [f32; 3] = std::array::from_fn(|a| p[a] - crop_first[a]);
        let next_p = next.map(|k| rotate(chain.alphas[k].0));
        for dz in -2i32..=2 {
            for dy in -2i32..=2 {
                for dx in -2i32..=2 {
                    let v = [
                        local[0].round() as i32 + dx,
                        local[1].round() as i32 + dy,
                        local[2].round() as i32 + dz,
                    ];
                    if v.iter().any(|&c| c < 0 || c >= n as i32) {
                        continue;
                    }
                    let d2: f32 = (0..3).map(|a| (v[a] as f32 - local[a]).powi(2)).sum();
                    if d2 > 1.5 * 1.5 {
                        continue;
                    }
                    let i = v[0] as usize + n * (v[1] as usize + n * v[2] as usize);
                    example.bump[i] = example.bump[i].max((-d2 / (2.0 * 0.5 * 0.5)).exp());
                    example.kind[i] = i64::from(kind);
                    if let Some(q) = next_p {
                        for a in 0..3 {
                            let voxel_world = crop_first[a] + v[a] as f32;
                            example.next[a][i] = (q[a] - voxel_world) / NEXT_SCALE_ANGSTROM;
                        }
                        example.next_mask[i] = 1.0;
                    }
                }
            }
        }
    }
    example
}

/// `signal` plus Gaussian noise low-passed at `resolution_angstrom` (as a map's noise is), scaled
/// so var(signal)/var(noise) over the box is `snr`.
pub fn with_filtered_noise(
    grid: &MapGrid,
    signal: &[f32],
    resolution_angstrom: f32,
    snr: f64,
    rng: &mut Rng,
) -> Vec<f32> {
    let white: Vec<f32> = (0..signal.len()).map(|_| rng.normal() as f32).collect();
    let noise = low_pass(
        &DensityMap {
            grid: grid.clone(),
            values: white,
            meta: Default::default(),
        },
        resolution_angstrom,
    )
    .values;
    let signal_sd = crate::maps::Statistics::of(signal).rms;
    let noise_sd = crate::maps::Statistics::of(&noise).rms.max(1e-12);
    let scale = signal_sd / noise_sd / (snr as f32).sqrt();
    signal.iter().zip(&noise).map(|(s, n)| s + scale * n).collect()
}

fn centroid(p: &[[f32; 3]]) -> [f32; 3] {
    let n = p.len().max(1) as f32;
    std::array::from_fn(|a| p.iter().map(|q| q[a]).sum::<f32>() / n)
}

fn bounds(p: &[[f32; 3]]) -> ([f32; 3], [f32; 3]) {
    let mut lo = [f32::INFINITY; 3];
    let mut hi = [f32::NEG_INFINITY; 3];
    for q in p {
        for a in 0..3 {
            lo[a] = lo[a].min(q[a]);
            hi[a] = hi[a].max(q[a]);
        }
    }
    (lo, hi)
}

/// The loss of a batch and its parts (bump cross-entropy, vector error, type cross-entropy).
fn batch_loss(net: &CaNet, examples: &[Example], options: &TrainOptions, device: &Device) -> (Tensor<1>, [f64; 3]) {
    let n = options.crop;
    let b = examples.len();
    let shape = [b, 1, n, n, n];
    let cat = |f: &dyn Fn(&Example) -> &[f32]| -> Tensor<5> {
        let data: Vec<f32> = examples.iter().flat_map(|e| f(e).iter().copied()).collect();
        Tensor::<5>::from_data(TensorData::new(data, shape), device)
    };
    let input = cat(&|e| &e.input);
    let bump = cat(&|e| &e.bump);
    let out = net.forward(input);
    let logit = out.clone().narrow(1, 0, 1);
    // Binary cross-entropy with logits, soft targets, positives weighted up.
    let weight = bump.clone().mul_scalar(options.positive_weight - 1.0).add_scalar(1.0);
    let bce =
        logit.clone().clamp_min(0.0) - logit.clone() * bump.clone() + logit.abs().neg().exp().add_scalar(1.0).log();
    let bce = (bce * weight.clone()).sum() / weight.sum();
    // The vector to the next Cα, where there is one.
    let mask = cat(&|e| &e.next_mask);
    let count = mask.clone().sum().add_scalar(1e-3);
    let mut vector = Tensor::<1>::zeros([1], device);
    for a in 0..3 {
        let target = cat(&|e| &e.next[a]);
        let diff = out.clone().narrow(1, 1 + a, 1) - target;
        vector = vector + (diff.powf_scalar(2.0) * mask.clone()).sum();
    }
    let vector = vector / count.clone();
    // Residue types at voxels near a Cα.
    let kinds: Vec<i64> = examples.iter().flat_map(|e| e.kind.iter().copied()).collect();
    let valid: Vec<f32> = kinds.iter().map(|&k| if k >= 0 { 1.0 } else { 0.0 }).collect();
    let clamped: Vec<i64> = kinds.iter().map(|&k| k.max(0)).collect();
    let index = Tensor::<5, Int>::from_data(TensorData::new(clamped, shape), device);
    let valid = Tensor::<5>::from_data(TensorData::new(valid, shape), device);
    let logp = log_softmax(out.narrow(1, 4, OUTPUTS - 4), 1).gather(1, index);
    let kind = (logp * valid.clone()).sum().neg() / valid.sum().add_scalar(1e-3);
    let value = |t: &Tensor<1>| {
        t.clone()
            .into_data()
            .try_to_vec::<f32>()
            .ok()
            .and_then(|v| v.first().copied())
            .unwrap_or(f32::NAN) as f64
    };
    let parts = [value(&bce), value(&vector), value(&kind)];
    (bce + vector + kind.mul_scalar(0.5), parts)
}

/// Progress of training: step, the batch's loss parts, and validation when taken.
pub struct TrainProgress {
    pub step: usize,
    pub steps: usize,
    pub loss: [f64; 3],
    pub validation: Option<[f64; 3]>,
}

/// What training did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainReport {
    pub options: TrainOptions,
    pub train_chains: usize,
    pub train_families: usize,
    pub validation_chains: usize,
    pub parameters: usize,
    /// (step, bump, vector, type) on the validation crops.
    pub validation: Vec<(usize, [f64; 3])>,
    pub seconds: f64,
}

/// Trains a network on `chains` (their `train` split; `validation` for the validation crops).
/// `progress` is called after every step and stops training when it returns false.
pub fn train(
    chains: &[TrainingChain],
    options: &TrainOptions,
    progress: &mut dyn FnMut(&TrainProgress) -> bool,
) -> Result<(CaNet, TrainReport), String> {
    let started = std::time::Instant::now();
    let train: Vec<&TrainingChain> = chains
        .iter()
        .filter(|c| c.split == "train" && !c.alphas.is_empty())
        .collect();
    let validation: Vec<&TrainingChain> = chains
        .iter()
        .filter(|c| c.split == "validation" && !c.alphas.is_empty())
        .collect();
    if train.is_empty() {
        return Err("the data set has no training chains".into());
    }
    if !options.crop.is_multiple_of(4) || options.crop < 16 {
        return Err(format!(
            "the crop must be a multiple of 4 of at least 16, got {}",
            options.crop
        ));
    }
    let mut families: Vec<usize> = train.iter().map(|c| c.family).collect();
    families.sort_unstable();
    families.dedup();
    // burn's wgpu backend on a hardware GPU (built with `burn-wgpu`), else Flex; validation runs on
    // the CPU either way.
    let device = crate::refine::training_device().autodiff();
    let mut net = match &options.init {
        None => CaNet::new(&options.shape, &device),
        Some(path) => {
            let shape = super::weights::load_record(path).map_err(|e| e.to_string())?;
            if shape.shape != options.shape {
                return Err(format!(
                    "{}: the network has channels {:?}, the training asks for {:?}",
                    path.display(),
                    shape.shape.channels,
                    options.shape.channels
                ));
            }
            super::weights::load_on(path, &device).map_err(|e| e.to_string())?
        }
    };
    let mut optimizer: ModuleOptimizer = AdamConfig::new().init();
    let mut rng = Rng::new(options.seed);
    // Fixed validation crops.
    let mut validation_rng = Rng::new(options.seed ^ 0x5eed);
    let validation_examples: Vec<Example> = (0..options.validation_crops)
        .filter(|_| !validation.is_empty())
        .map(|_| {
            let chain = validation[validation_rng.below(validation.len())];
            example(chain, options, &mut validation_rng)
        })
        .collect();
    let mut report = TrainReport {
        options: options.clone(),
        train_chains: train.len(),
        train_families: families.len(),
        validation_chains: validation.len(),
        parameters: net.parameter_count(),
        validation: Vec::new(),
        seconds: 0.0,
    };
    for step in 0..options.steps {
        // A family, then a chain of it: the two large families do not drown the others.
        let examples: Vec<Example> = (0..options.batch.max(1))
            .map(|_| {
                let family = families[rng.below(families.len())];
                let members: Vec<&&TrainingChain> = train.iter().filter(|c| c.family == family).collect();
                example(members[rng.below(members.len())], options, &mut rng)
            })
            .collect();
        let (loss, parts) = batch_loss(&net, &examples, options, &device);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let progress_fraction = step as f64 / options.steps as f64;
        let lr = options.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress_fraction).cos());
        net = optimizer.step(lr.max(1e-5), net, grads);
        let mut validated = None;
        if !validation_examples.is_empty() && ((step + 1) % options.validate_every == 0 || step + 1 == options.steps) {
            let inference = net.clone().to_device(&Device::flex());
            let cpu = Device::flex();
            let mut sums = [0f64; 3];
            for e in validation_examples.chunks(options.batch.max(1)) {
                let (_, p) = batch_loss(&inference, e, options, &cpu);
                for k in 0..3 {
                    sums[k] += p[k] / (validation_examples.len() as f64 / e.len() as f64);
                }
            }
            report.validation.push((step + 1, sums));
            validated = Some(sums);
            if let Some(path) = &options.checkpoint {
                let record = super::weights::WeightsRecord {
                    shape: options.shape.clone(),
                    trained_with: format!("checkpoint at step {} of {}", step + 1, options.steps),
                };
                super::weights::save(&inference, &record, path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        if !progress(&TrainProgress {
            step: step + 1,
            steps: options.steps,
            loss: parts,
            validation: validated,
        }) {
            break;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok((net.to_device(&Device::flex()), report))
}

/// Where `cryoforge build train` writes the network (`-o`), beside it the record.
pub fn default_output() -> PathBuf {
    PathBuf::from("ca_net.bpk")
}
