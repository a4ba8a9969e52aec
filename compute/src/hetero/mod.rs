//! The heterogeneity explorer (the CryoDECO method, SCIENCE.md §4, with cryoDRGN's training
//! recipe): an encoder maps every particle image to a latent z, a neural-field decoder predicts
//! the central slice of the volume at the particle's known pose from z, the CTF multiplies it,
//! and the loss is the squared difference with the image in Fourier space. After training, the
//! latent means are the particles' coordinates in the space of states: [`analysis`] reduces them
//! (PCA, UMAP), clusters them (GMM, k-means) and scores them against a ground truth; the decoder
//! turns any latent point into a volume ([`Trained::volume`]).
//!
//! A run lives in a directory: `config.json` (particles, options, network shape, data scales),
//! `weights.bpk` and `optimizer.bpk` (the latest checkpoint), `weights.<epoch>.bpk` every few
//! epochs, `state.json` (epochs done, loss history) and `z.npy` (latent means, float32 [N, zdim],
//! written with each checkpoint). Every file is written to a temporary name and renamed, so a
//! crash leaves the last checkpoint whole and `train` with `resume` continues from it.

pub mod analysis;
pub mod classify;
pub mod data;
pub mod explore;
pub mod model;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use rustfft::num_complex::Complex32;

use crate::formats::mrc::{DensityMap, MapGrid};
use crate::particle_sim::Rng;

pub use data::HeteroData;
pub use model::{HeteroNet, Network, NetworkShape};

/// Training options (cryoDRGN's defaults where SCIENCE.md names none).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeteroOptions {
    /// Latent size: 8 by default, 128 for compositional mixtures.
    pub zdim: usize,
    pub epochs: usize,
    pub batch: usize,
    pub learning_rate: f64,
    /// KL weight β; None for cryoDRGN's 1/zdim.
    pub beta: Option<f64>,
    /// Training image size (px): particles are downsampled in Fourier space to this.
    pub image_size: usize,
    /// The encoder sees the CTF-multiplied image low-passed to this resolution (Å); None keeps
    /// every frequency of the training size.
    #[serde(default)]
    pub encoder_resolution: Option<f64>,
    /// Decoder hidden layers and width (3 × 256).
    pub decoder_layers: usize,
    pub decoder_width: usize,
    pub encoder_layers: usize,
    pub encoder_width: usize,
    /// A numbered checkpoint every this many epochs (the latest is always kept).
    pub checkpoint_every: usize,
    /// Learned 3D templates of the pose-aware encoder (0: image only, as cryoDRGN).
    #[serde(default)]
    pub templates: usize,
    /// Read particles from their stacks per batch instead of holding them.
    pub lazy: bool,
    pub max_particles: Option<usize>,
    pub seed: u64,
}

impl Default for HeteroOptions {
    fn default() -> Self {
        Self {
            zdim: 8,
            epochs: 20,
            batch: 16,
            learning_rate: 1e-4,
            beta: None,
            image_size: 64,
            encoder_resolution: None,
            decoder_layers: 3,
            decoder_width: 256,
            encoder_layers: 3,
            encoder_width: 256,
            checkpoint_every: 5,
            templates: 0,
            lazy: false,
            max_particles: None,
            seed: 1,
        }
    }
}

impl HeteroOptions {
    pub fn beta(&self) -> f64 {
        self.beta.unwrap_or(1.0 / self.zdim.max(1) as f64)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.zdim == 0
            || self.batch == 0
            || self.decoder_layers == 0
            || self.encoder_layers == 0
            || self.decoder_width == 0
            || self.encoder_width == 0
        {
            return Err("zdim, batch and layer sizes must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(format!("learning rate must be positive, got {}", self.learning_rate));
        }
        if self.image_size < 8 {
            return Err(format!(
                "training image size must be at least 8 px, got {}",
                self.image_size
            ));
        }
        Ok(())
    }

    fn shape(&self, image_size: usize) -> NetworkShape {
        NetworkShape {
            encoder_layers: self.encoder_layers,
            encoder_width: self.encoder_width,
            decoder_layers: self.decoder_layers,
            decoder_width: self.decoder_width,
            templates: self.templates,
            ..NetworkShape::new(image_size, self.zdim)
        }
    }
}

/// What a run directory's `config.json` holds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    /// The particle file, absolute.
    pub particles: PathBuf,
    pub particle_count: usize,
    pub options: HeteroOptions,
    pub shape: NetworkShape,
    pub box_size: usize,
    pub pixel_size: f64,
    pub image_scale: f32,
    pub spectrum_scale: f32,
    /// Where the box centre sits in the model frame (simulated data), for placing volumes.
    pub centre: Option<[f64; 3]>,
}

impl RunConfig {
    /// The `config.json` of run folder `run`.
    pub fn read(run: &Path) -> Result<Self, String> {
        read_json(&run.join(CONFIG_FILE)).map_err(|e| format!("{e} (not a `hetero train` run folder?)"))
    }
}

/// What `state.json` holds: progress of the run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunState {
    pub epochs_done: usize,
    /// Mean reconstruction loss per epoch.
    pub epoch_loss: Vec<f64>,
    /// Seconds and particles per second per epoch.
    pub epoch_seconds: Vec<f64>,
    pub particles_per_second: Vec<f64>,
}

/// Progress of a training run, for the CLI bar and the job's plot.
pub struct HeteroProgress {
    pub epoch: usize,
    pub epochs: usize,
    pub step: usize,
    pub steps_per_epoch: usize,
    pub loss: f64,
    /// Set at the end of an epoch, with that epoch's mean loss.
    pub epoch_loss: Option<f64>,
}

pub const CONFIG_FILE: &str = "config.json";
pub const STATE_FILE: &str = "state.json";
pub const WEIGHTS_FILE: &str = "weights.bpk";
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
pub const LATENTS_FILE: &str = "z.npy";

/// Writes `bytes` to `path` through a temporary file and a rename ([`crate::io::write_atomically`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    crate::io::write_atomically(path, |w| w.write_all(bytes)).map_err(|e| e.to_string())
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| format!("{}: {e}", path.display()))?;
    write_atomic(path, text.as_bytes())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A float32 `.npy` file of shape `shape` (C order), as numpy and cryoDRGN read it.
pub fn write_npy(path: &Path, values: &[f32], shape: &[usize]) -> Result<(), String> {
    let dims = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let dims = if shape.len() == 1 { format!("{dims},") } else { dims };
    let mut bytes = crate::formats::npy_header::encode_header(&format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}"
    ));
    bytes.reserve(4 * values.len());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    write_atomic(path, &bytes)
}

/// Reads a float32 `.npy` of two dimensions: (values, rows, columns).
pub fn read_npy(path: &Path) -> Result<(Vec<f32>, usize, usize), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |why: &str| format!("{}: {why}", path.display());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file"));
    }
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = std::str::from_utf8(
        bytes
            .get(start..start + header_len)
            .ok_or_else(|| bad("truncated header"))?,
    )
    .map_err(|_| bad("header is not text"))?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(bad("expected little-endian float32 in C order"));
    }
    let shape_text = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape_text.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let (rows, cols) = match dims.as_slice() {
        [r] => (*r, 1),
        [r, c] => (*r, *c),
        _ => return Err(bad("expected a 1- or 2-dimensional array")),
    };
    let body = &bytes[start + header_len..];
    if body.len() < rows * cols * 4 {
        return Err(bad("truncated data"));
    }
    Ok((
        body.chunks_exact(4)
            .take(rows * cols)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        rows,
        cols,
    ))
}

/// A trained network, with what is needed to decode volumes.
#[derive(Clone, Debug)]
pub struct Trained {
    pub network: Network,
    pub config: RunConfig,
}

impl Trained {
    /// Loads a run's latest weights onto the inference device.
    pub fn load(run: &Path) -> Result<Self, String> {
        let config = RunConfig::read(run)?;
        let device = Device::flex();
        let network = Network::new(&config.shape, &device);
        let weights = run.join(WEIGHTS_FILE);
        let net = network
            .net
            .clone()
            .try_load_file(&weights)
            .map_err(|e| format!("{}: {e}", weights.display()))?;
        let mut network = network;
        network.net = net;
        Ok(Self { network, config })
    }

    pub fn state(run: &Path) -> Result<RunState, String> {
        read_json(&run.join(STATE_FILE))
    }

    /// The latents of a run (the latest `z.npy`): values row-major, and zdim.
    pub fn latents(run: &Path) -> Result<(Vec<f32>, usize), String> {
        let (values, _, cols) = read_npy(&run.join(LATENTS_FILE))?;
        Ok((values, cols))
    }

    /// Voxel size of decoded volumes (Å).
    pub fn voxel_size(&self) -> f64 {
        self.config.pixel_size * self.config.box_size as f64 / self.config.shape.image_size as f64
    }

    /// The volume at latent `z`: the decoder on the 3D frequency grid of the training size (the
    /// ball below Nyquist, one half evaluated, the other by conjugate symmetry), then an inverse
    /// FFT. Cubic, training size per side, centred where the particles were.
    pub fn volume(&self, z: &[f32]) -> DensityMap {
        let d = self.config.shape.image_size;
        let r = d as i32 / 2;
        let mut canonical_points: Vec<[i32; 3]> = Vec::new();
        for l in 0..r {
            for j in -r + 1..r {
                for i in -r + 1..r {
                    if l == 0 && (j < 0 || (j == 0 && i < 0)) {
                        continue;
                    }
                    if i * i + j * j + l * l < r * r {
                        canonical_points.push([i, j, l]);
                    }
                }
            }
        }
        let device = self.network.device();
        let z_tensor = Tensor::<2>::from_data(TensorData::new(z.to_vec(), [1, z.len()]), &device);
        let mut grid = vec![Complex32::default(); d * d * d];
        let index = |p: [i32; 3]| -> usize {
            p[0].rem_euclid(d as i32) as usize
                + d * (p[1].rem_euclid(d as i32) as usize + d * p[2].rem_euclid(d as i32) as usize)
        };
        // Chunks in parallel (inference graphs are independent), then placed in the grid.
        use rayon::prelude::*;
        let decoded: Vec<(Vec<f32>, Vec<f32>)> = canonical_points
            .par_chunks(4096)
            .map(|chunk| {
                let coords: Vec<f32> = chunk.iter().flat_map(|p| p.map(|v| v as f32 / d as f32)).collect();
                let coords = Tensor::<2>::from_data(TensorData::new(coords, [chunk.len(), 3]), &device);
                let (re, im) = self.network.decode(coords, z_tensor.clone(), 1, chunk.len());
                (
                    re.into_data().try_to_vec::<f32>().unwrap_or_default(),
                    im.into_data().try_to_vec::<f32>().unwrap_or_default(),
                )
            })
            .collect();
        for (chunk, (re, im)) in canonical_points.chunks(4096).zip(decoded) {
            for ((p, re), im) in chunk.iter().zip(re).zip(im) {
                // The particle's centre at voxel 0 → shift to the box centre: (−1)^(i+j+l).
                let sign = if (p[0] + p[1] + p[2]).rem_euclid(2) == 0 {
                    1.0
                } else {
                    -1.0
                };
                grid[index(*p)] = Complex32::new(re, im) * sign;
                grid[index(p.map(|v| -v))] = Complex32::new(re, -im) * sign;
            }
        }
        crate::scores::fft3_in_place([d; 3], &mut grid, true);
        let values: Vec<f32> = grid.iter().map(|v| v.re).collect();
        let voxel = self.voxel_size() as f32;
        let centre = self.config.centre.unwrap_or([0.0; 3]);
        let first = centre.map(|c| c as f32 - voxel * (d / 2) as f32);
        DensityMap {
            grid: MapGrid::new([d; 3], [voxel; 3], first),
            values,
            meta: Default::default(),
        }
    }
}

/// Latent means of particles `indices` (all when None), row-major [N, zdim].
pub fn embed(
    network: &Network,
    data: &HeteroData,
    on_chunk: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<f32>, String> {
    let mut out = Vec::with_capacity(data.len() * network.shape.zdim);
    let all: Vec<usize> = (0..data.len()).collect();
    for chunk in all.chunks(256) {
        let batch = data.batch(chunk)?;
        let (mean, _) = network.encode(&batch, None);
        out.extend(mean.into_data().try_to_vec::<f32>().map_err(|e| format!("{e:?}"))?);
        if !on_chunk(out.len() / network.shape.zdim) {
            return Err("cancelled".into());
        }
    }
    Ok(out)
}

/// What a finished (or cancelled) training run returns.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    pub run: PathBuf,
    pub state: RunState,
    pub cancelled: bool,
}

/// Trains (or, with `resume`, continues) the run in `run` on the particles of `particles`.
/// `on_step` sees every step; returning false stops after saving a checkpoint.
pub fn train(
    particles: &Path,
    run: &Path,
    options: &HeteroOptions,
    resume: bool,
    on_step: &mut dyn FnMut(&HeteroProgress) -> bool,
) -> Result<TrainOutcome, String> {
    options.validate()?;
    crate::tune_allocator();
    std::fs::create_dir_all(run).map_err(|e| format!("{}: {e}", run.display()))?;
    let (options, mut state) = if resume && run.join(STATE_FILE).exists() {
        let config: RunConfig = read_json(&run.join(CONFIG_FILE))?;
        let state: RunState = read_json(&run.join(STATE_FILE))?;
        // The saved options win, except the number of epochs (to train further).
        (
            HeteroOptions {
                epochs: options.epochs,
                ..config.options
            },
            state,
        )
    } else {
        (options.clone(), RunState::default())
    };
    let mut reading = |done: usize, total: usize| {
        on_step(&HeteroProgress {
            epoch: 0,
            epochs: options.epochs,
            step: done,
            steps_per_epoch: total,
            loss: f64::NAN,
            epoch_loss: None,
        })
    };
    let data = HeteroData::open(
        particles,
        options.image_size,
        options.encoder_resolution,
        options.lazy,
        options.max_particles,
        &mut reading,
    )?;
    let shape = options.shape(data.image_size);
    let particles_abs = std::fs::canonicalize(particles).unwrap_or_else(|_| particles.to_owned());
    let config = RunConfig {
        particles: particles_abs,
        particle_count: data.len(),
        options: options.clone(),
        shape: shape.clone(),
        box_size: data.box_size,
        pixel_size: data.pixel_size,
        image_scale: data.image_scale,
        spectrum_scale: data.spectrum_scale,
        centre: data.centre,
    };
    write_json(&run.join(CONFIG_FILE), &config)?;
    let device = crate::refine::training_device().autodiff();
    let mut network = Network::new(&shape, &device);
    let mut optimizer: ModuleOptimizer = AdamConfig::new().init();
    if state.epochs_done > 0 {
        let weights = run.join(WEIGHTS_FILE);
        network.net = network
            .net
            .try_load_file(&weights)
            .map_err(|e| format!("{}: {e}", weights.display()))?;
        let saved = run.join(OPTIMIZER_FILE);
        if saved.exists() {
            optimizer = optimizer
                .load(&saved)
                .map_err(|e| format!("{}: {e}", saved.display()))?;
        }
    }
    let beta = options.beta();
    let n = data.len();
    let steps_per_epoch = n.div_ceil(options.batch);
    let mut cancelled = false;
    for epoch in state.epochs_done..options.epochs {
        let started = Instant::now();
        let mut rng = Rng::new(options.seed.wrapping_add(epoch as u64 * 7919));
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let (mut sum, mut count) = (0.0, 0usize);
        for (step, indices) in order.chunks(options.batch).enumerate() {
            let noise: Vec<f32> = (0..indices.len() * shape.zdim).map(|_| rng.normal() as f32).collect();
            let (grads, value) = batch_gradients(&network, &data, indices, &noise, beta)?;
            network.net = optimizer.step(options.learning_rate, network.net, grads);
            sum += value * indices.len() as f64;
            count += indices.len();
            if !on_step(&HeteroProgress {
                epoch,
                epochs: options.epochs,
                step,
                steps_per_epoch,
                loss: value,
                epoch_loss: None,
            }) {
                cancelled = true;
                break;
            }
        }
        if cancelled {
            // Keep the last whole checkpoint: a part-epoch is not saved.
            break;
        }
        let seconds = started.elapsed().as_secs_f64();
        let mean = sum / count.max(1) as f64;
        state.epochs_done = epoch + 1;
        state.epoch_loss.push(mean);
        state.epoch_seconds.push(seconds);
        state.particles_per_second.push(count as f64 / seconds.max(1e-9));
        let last = epoch + 1 == options.epochs;
        if last || (epoch + 1) % options.checkpoint_every.max(1) == 0 {
            checkpoint(run, &network, &optimizer, &data, &state, epoch + 1)?;
        } else {
            write_json(&run.join(STATE_FILE), &state).ok();
            save_weights(run, &network, &optimizer, None)?;
        }
        if !on_step(&HeteroProgress {
            epoch,
            epochs: options.epochs,
            step: steps_per_epoch,
            steps_per_epoch,
            loss: mean,
            epoch_loss: Some(mean),
        }) {
            cancelled = true;
            break;
        }
    }
    if !run.join(LATENTS_FILE).exists() || cancelled {
        // The latents of whatever was last saved.
        if state.epochs_done > 0 {
            let inference = network.to_device(&Device::flex());
            let z = embed(&inference, &data, &mut |_| true)?;
            write_npy(&run.join(LATENTS_FILE), &z, &[data.len(), shape.zdim])?;
        }
    }
    write_json(&run.join(STATE_FILE), &state)?;
    Ok(TrainOutcome {
        run: run.to_owned(),
        state,
        cancelled,
    })
}

/// Gradients of one batch and its mean reconstruction loss. Flex runs one autodiff graph on
/// about one core, so the batch is split across the machine's threads, one graph each, and
/// the gradients (each part's loss weighted by its share) summed.
fn batch_gradients(
    network: &Network,
    data: &HeteroData,
    indices: &[usize],
    noise: &[f32],
    beta: f64,
) -> Result<(GradientsParams, f64), String> {
    let threads = rayon::current_num_threads().clamp(1, indices.len().max(1));
    let part = indices.len().div_ceil(threads);
    let zdim = network.shape.zdim;
    let total = indices.len() as f64;
    let results: Vec<Result<(GradientsParams, f64), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = indices
            .chunks(part)
            .zip(noise.chunks(part * zdim))
            .map(|(part, noise)| {
                // Each part gets its own autodiff graph (`fork`): graphs that share parameter
                // nodes merge, and the first backward would consume the other's tape.
                let mut network = network.clone();
                let device = network.device();
                network.net = network.net.fork(&device);
                scope.spawn(move || -> Result<(GradientsParams, f64), String> {
                    let batch = data.batch(part)?;
                    let share = part.len() as f64 / total;
                    let (loss, reconstruction) = network.loss(&batch, noise, beta);
                    let value = reconstruction
                        .into_data()
                        .try_to_vec::<f32>()
                        .ok()
                        .and_then(|v| v.first().copied())
                        .unwrap_or(f32::NAN) as f64;
                    let grads = GradientsParams::from_grads(loss.mul_scalar(share).backward(), &network.net);
                    Ok((grads, value * share))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a training thread panicked".into())))
            .collect()
    });
    let mut accumulator = GradientsAccumulator::<HeteroNet>::new();
    let mut value = 0.0;
    for result in results {
        let (grads, v) = result?;
        accumulator.accumulate(&network.net, grads);
        value += v;
    }
    Ok((accumulator.grads(), value))
}

fn save_weights(
    run: &Path,
    network: &Network,
    optimizer: &ModuleOptimizer,
    numbered: Option<usize>,
) -> Result<(), String> {
    let tmp = run.join("weights.bpk.tmp");
    network
        .net
        .clone()
        .save_file(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    if let Some(epoch) = numbered {
        let path = run.join(format!("weights.{epoch}.bpk"));
        std::fs::copy(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    std::fs::rename(&tmp, run.join(WEIGHTS_FILE)).map_err(|e| format!("{}: {e}", run.display()))?;
    let tmp = run.join("optimizer.bpk.tmp");
    optimizer.save(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, run.join(OPTIMIZER_FILE)).map_err(|e| format!("{}: {e}", run.display()))
}

fn checkpoint(
    run: &Path,
    network: &Network,
    optimizer: &ModuleOptimizer,
    data: &HeteroData,
    state: &RunState,
    epoch: usize,
) -> Result<(), String> {
    save_weights(run, network, optimizer, Some(epoch))?;
    let inference = network.to_device(&Device::flex());
    let z = embed(&inference, data, &mut |_| true)?;
    write_npy(&run.join(LATENTS_FILE), &z, &[data.len(), network.shape.zdim])?;
    write_json(&run.join(STATE_FILE), state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip() {
        let dir = std::env::temp_dir().join(format!("cryoforge-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("z.npy");
        let values: Vec<f32> = (0..12).map(|v| v as f32 * 0.5).collect();
        write_npy(&path, &values, &[4, 3]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize) % 64, 0);
        assert_eq!(read_npy(&path).unwrap(), (values, 4, 3));
        std::fs::remove_dir_all(&dir).ok();
    }
}
