//! The training loop: epochs of shuffled batches, each batch's gradients computed data-parallel
//! ([`crate::training::DataParallel`], one autodiff graph per part) and applied by Adam, a
//! checkpoint every few epochs, and resumption from the last one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};

use super::error::{HeteroError, HeteroResult};
use super::prior::{self, PriorShape};
use super::run::EncoderStart;
use super::run::{
    CONFIG_FILE, LATENTS_FILE, OPTIMIZER_FILE, RunConfig, RunState, STATE_FILE, WEIGHTS_FILE, checkpoint, load_weights,
    read_json, save_latents, save_weights, write_json,
};
use super::{HeteroData, HeteroNet, HeteroOptions, Network};
use crate::formats::error::FormatError;
use crate::numeric::rng::Rng;
use crate::training::DataParallel;

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
) -> HeteroResult<TrainOutcome> {
    options.validate()?;
    crate::tune_allocator();
    std::fs::create_dir_all(run).map_err(|e| FormatError::io(run, e))?;
    let (options, mut state, prior_shape) = saved_progress(run, options, resume)?;
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
    let prior_size = prior_shape.as_ref().map_or(0, |p| p.size);
    let data = HeteroData::open(
        particles,
        options.image_size,
        options.encoder_resolution,
        options.decoder_frequency,
        options.lazy,
        options.max_particles,
        options.pixel_size_angstrom,
        prior_size,
        &mut reading,
    )?;
    let shape = options.shape(data.image_size, prior_shape);
    write_json(
        &run.join(CONFIG_FILE),
        &RunConfig::new(particles, &data, &options, &shape),
    )?;
    let device = crate::refine::training_device().autodiff();
    let mut network = Network::new(&shape, &device);
    let mut optimizer: ModuleOptimizer = AdamConfig::new().init();
    if let (EncoderStart::Pretrained(source), 0) = (&options.encoder, state.epochs_done) {
        network.net.encoder.prior = Some(prior::load(source, &device)?);
    }
    if state.epochs_done > 0 {
        network = load_weights(network, &run.join(WEIGHTS_FILE))?;
        let saved = run.join(OPTIMIZER_FILE);
        if saved.exists() {
            optimizer = optimizer.load(&saved).map_err(|e| HeteroError::checkpoint(&saved, e))?;
        }
    }
    let steps_per_epoch = data.len().div_ceil(options.batch);
    let mut cancelled = false;
    for epoch in state.epochs_done..options.epochs {
        let started = Instant::now();
        let (trained, seen) = train_epoch(network, &mut optimizer, &data, &options, epoch, on_step)?;
        network = trained;
        let Some((sum, count)) = seen else {
            // Keep the last whole checkpoint: a part-epoch is not saved.
            cancelled = true;
            break;
        };
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
    // The latents of whatever was last saved.
    if (!run.join(LATENTS_FILE).exists() || cancelled) && state.epochs_done > 0 {
        save_latents(run, &network, &data)?;
    }
    write_json(&run.join(STATE_FILE), &state)?;
    Ok(TrainOutcome {
        run: run.to_owned(),
        state,
        cancelled,
    })
}

/// The options, progress and prior shape to train with: with `resume` and a saved state, the
/// saved options (except the number of epochs, to train further), that state and the saved
/// network's prior (its weights are in the checkpoint, so the prior file is no longer needed);
/// otherwise `options` afresh with the shape of the prior they name.
fn saved_progress(
    run: &Path,
    options: &HeteroOptions,
    resume: bool,
) -> HeteroResult<(HeteroOptions, RunState, Option<PriorShape>)> {
    if resume && run.join(STATE_FILE).exists() {
        let config: RunConfig = read_json(&run.join(CONFIG_FILE))?;
        let state: RunState = read_json(&run.join(STATE_FILE))?;
        let options = HeteroOptions {
            epochs: options.epochs,
            ..config.options
        };
        Ok((options, state, config.shape.prior))
    } else {
        Ok((options.clone(), RunState::default(), options.prior_shape()?))
    }
}

/// One epoch of shuffled batches: the network after it, with (Σ batch loss × batch size,
/// particles seen), or None when `on_step` asked to stop.
fn train_epoch(
    mut network: Network,
    optimizer: &mut ModuleOptimizer,
    data: &HeteroData,
    options: &HeteroOptions,
    epoch: usize,
    on_step: &mut dyn FnMut(&HeteroProgress) -> bool,
) -> HeteroResult<(Network, Option<(f64, usize)>)> {
    let n = data.len();
    let steps_per_epoch = n.div_ceil(options.batch);
    let beta = options.beta();
    let zdim = network.shape.zdim;
    let mut rng = Rng::new(options.seed.wrapping_add(epoch as u64 * 7919));
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let (mut sum, mut count) = (0.0, 0usize);
    for (step, indices) in order.chunks(options.batch).enumerate() {
        let noise: Vec<f32> = (0..indices.len() * zdim).map(|_| rng.normal() as f32).collect();
        let (grads, value) = batch_gradients(&network, data, indices, &noise, beta)?;
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
            return Ok((network, None));
        }
    }
    Ok((network, Some((sum, count))))
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
) -> HeteroResult<(GradientsParams, f64)> {
    let zdim = network.shape.zdim;
    let parts = DataParallel::per_thread().run(indices, |part| -> HeteroResult<(GradientsParams, f64)> {
        // Each part gets its own autodiff graph (`fork`): graphs that share parameter nodes
        // merge, and the first backward would consume the other's tape.
        let mut network = network.clone();
        let device = network.device();
        network.net = network.net.fork(&device);
        let batch = data.batch(part.items)?;
        let noise = &noise[part.offset * zdim..(part.offset + part.items.len()) * zdim];
        let (loss, reconstruction) = network.loss(&batch, noise, beta);
        let value = reconstruction
            .into_data()
            .try_to_vec::<f32>()
            .ok()
            .and_then(|v| v.first().copied())
            .unwrap_or(f32::NAN) as f64;
        let grads = GradientsParams::from_grads(loss.mul_scalar(part.share).backward(), &network.net);
        Ok((grads, value * part.share))
    })?;
    let mut accumulator = GradientsAccumulator::<HeteroNet>::new();
    let mut value = 0.0;
    for part in parts {
        let (grads, v) = part?;
        accumulator.accumulate(&network.net, grads);
        value += v;
    }
    Ok((accumulator.grads(), value))
}
