//! A training run on disk: the options it was started with, `config.json` (what is needed to
//! rebuild its network and data), `state.json` (its progress), and the checkpoints (weights,
//! optimizer state and latents), every file written to a temporary name and renamed.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::Device;

use super::error::{HeteroError, HeteroResult};
use super::prior::{self, PriorShape, PriorSource};
use super::{HeteroData, Network, NetworkShape, embed};
use crate::formats::error::FormatError;

/// Training options (cryoDRGN's defaults where docs/science.md §4 names none).
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
    /// The decoder fits the frequencies below this fraction of the training size's Nyquist
    /// (1: all, as cryoDRGN). Half is the default: on the AdK path at 32 px it keeps the latent
    /// ordering (|Spearman| 0.948 against 0.950 at 0.75) at twice the speed (docs/science.md §4).
    /// Runs saved before the option existed fitted every frequency.
    #[serde(default = "every_frequency")]
    pub decoder_frequency: f64,
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
    /// Pixel size (Å) of the particle images in place of the file's (needed when it gives none).
    #[serde(default)]
    pub pixel_size_angstrom: Option<f64>,
    /// Where the encoder starts: random weights on the image (and template scores) alone, or
    /// with the pretrained prior (bundled, or a file) in front, fine-tuned with the rest. Random
    /// is the default: on the AdK path and the five-protein mixture the bundled prior changes
    /// neither score beyond run-to-run spread (docs/science.md §4). Runs saved before the prior
    /// existed start random.
    #[serde(default = "random_encoder")]
    pub encoder: EncoderStart,
    pub seed: u64,
}

/// Where the encoder starts ([`HeteroOptions::encoder`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum EncoderStart {
    /// Random weights; the encoder sees the image and the template scores only (cryoDRGN's).
    Random,
    /// The pretrained prior ([`super::prior`]) in front of the encoder.
    Pretrained(PriorSource),
}

fn random_encoder() -> EncoderStart {
    EncoderStart::Random
}

/// The default [`HeteroOptions::decoder_frequency`].
pub const DECODER_FREQUENCY: f64 = 0.5;
/// The default Adam learning rate: on the AdK path at 32 px (20 epochs) |Spearman| 0.952 against
/// cryoDRGN's 1e-4's 0.943 (docs/science.md §4).
pub const LEARNING_RATE: f64 = 5e-4;
/// The default number of pose-aware encoder templates ([`HeteroOptions::templates`]).
pub const TEMPLATES: usize = 8;

fn every_frequency() -> f64 {
    1.0
}

impl Default for HeteroOptions {
    fn default() -> Self {
        Self {
            zdim: 8,
            epochs: 20,
            batch: 16,
            learning_rate: LEARNING_RATE,
            beta: None,
            image_size: 64,
            encoder_resolution: None,
            decoder_frequency: DECODER_FREQUENCY,
            decoder_layers: 3,
            decoder_width: 256,
            encoder_layers: 3,
            encoder_width: 256,
            checkpoint_every: 5,
            templates: TEMPLATES,
            lazy: false,
            max_particles: None,
            pixel_size_angstrom: None,
            encoder: EncoderStart::Random,
            seed: 1,
        }
    }
}

impl HeteroOptions {
    pub fn beta(&self) -> f64 {
        self.beta.unwrap_or(1.0 / self.zdim.max(1) as f64)
    }

    pub fn validate(&self) -> HeteroResult<()> {
        if self.zdim == 0
            || self.batch == 0
            || self.decoder_layers == 0
            || self.encoder_layers == 0
            || self.decoder_width == 0
            || self.encoder_width == 0
        {
            return Err(HeteroError::Invalid(
                "zdim, batch and layer sizes must be at least 1".into(),
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(HeteroError::Invalid(format!(
                "learning rate must be positive, got {}",
                self.learning_rate
            )));
        }
        if !(self.decoder_frequency > 0.0 && self.decoder_frequency <= 1.0) {
            return Err(HeteroError::Invalid(format!(
                "the decoder's frequency limit is a fraction of Nyquist in (0, 1], got {}",
                self.decoder_frequency
            )));
        }
        self.prior_shape()?;
        if self.image_size < 8 {
            return Err(HeteroError::Invalid(format!(
                "training image size must be at least 8 px, got {}",
                self.image_size
            )));
        }
        Ok(())
    }

    /// The shape of the prior the encoder starts from (read from its record), if any.
    pub(super) fn prior_shape(&self) -> HeteroResult<Option<PriorShape>> {
        match &self.encoder {
            EncoderStart::Random => Ok(None),
            EncoderStart::Pretrained(source) => Ok(Some(prior::record(source)?.shape)),
        }
    }

    /// The network's shape at `image_size` with `prior` in front of the encoder.
    pub(super) fn shape(&self, image_size: usize, prior: Option<PriorShape>) -> NetworkShape {
        NetworkShape {
            prior,
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
    pub fn read(run: &Path) -> HeteroResult<Self> {
        let path = run.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| HeteroError::json(path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(HeteroError::run(
                run,
                format!("no {CONFIG_FILE} (not a `hetero train` run folder?)"),
            )),
            Err(e) => Err(FormatError::io(&path, e).into()),
        }
    }

    /// The configuration of a run on `data`, trained with `options`.
    pub(super) fn new(particles: &Path, data: &HeteroData, options: &HeteroOptions, shape: &NetworkShape) -> Self {
        Self {
            particles: std::fs::canonicalize(particles).unwrap_or_else(|_| particles.to_owned()),
            particle_count: data.len(),
            options: options.clone(),
            shape: shape.clone(),
            box_size: data.box_size,
            pixel_size: data.pixel_size,
            image_scale: data.image_scale,
            spectrum_scale: data.spectrum_scale,
            centre: data.centre,
        }
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

pub const CONFIG_FILE: &str = "config.json";
pub const STATE_FILE: &str = "state.json";
pub const WEIGHTS_FILE: &str = "weights.bpk";
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
pub const LATENTS_FILE: &str = "z.npy";

/// Writes `value` as pretty JSON to `path`, through a temporary file and a rename.
pub(super) fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> HeteroResult<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| HeteroError::json(path, e))?;
    Ok(crate::io::write_atomically(path, |w| w.write_all(text.as_bytes()))?)
}

pub(super) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> HeteroResult<T> {
    let text = std::fs::read_to_string(path).map_err(|e| FormatError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| HeteroError::json(path, e))
}

/// `network` with the weights in `path`.
pub(super) fn load_weights(mut network: Network, path: &Path) -> HeteroResult<Network> {
    network.net = network
        .net
        .try_load_file(path)
        .map_err(|e| HeteroError::checkpoint(path, e))?;
    Ok(network)
}

/// Saves the latest weights and optimizer state (and, with `numbered`, a copy of the weights as
/// `weights.<epoch>.bpk`).
pub(super) fn save_weights(
    run: &Path,
    network: &Network,
    optimizer: &ModuleOptimizer,
    numbered: Option<usize>,
) -> HeteroResult<()> {
    let tmp = run.join("weights.bpk.tmp");
    network
        .net
        .clone()
        .save_file(&tmp)
        .map_err(|e| HeteroError::checkpoint(&tmp, e))?;
    if let Some(epoch) = numbered {
        let path = run.join(format!("weights.{epoch}.bpk"));
        std::fs::copy(&tmp, &path).map_err(|e| FormatError::io(&path, e))?;
    }
    rename(&tmp, &run.join(WEIGHTS_FILE))?;
    let tmp = run.join("optimizer.bpk.tmp");
    optimizer.save(&tmp).map_err(|e| HeteroError::checkpoint(&tmp, e))?;
    rename(&tmp, &run.join(OPTIMIZER_FILE))
}

fn rename(from: &Path, to: &Path) -> HeteroResult<()> {
    Ok(std::fs::rename(from, to).map_err(|e| FormatError::io(to, e))?)
}

/// The latents of `network` for every particle of `data`, written to the run's `z.npy`.
pub(super) fn save_latents(run: &Path, network: &Network, data: &HeteroData) -> HeteroResult<()> {
    let inference = network.to_device(&Device::flex());
    let z = embed(&inference, data, &mut |_| true)?;
    let shape = [data.len(), network.shape.zdim];
    Ok(crate::formats::npy::write_f32_array(
        &run.join(LATENTS_FILE),
        &z,
        &shape,
    )?)
}

/// A whole checkpoint after `epoch` epochs: numbered weights, optimizer, latents and state.
pub(super) fn checkpoint(
    run: &Path,
    network: &Network,
    optimizer: &ModuleOptimizer,
    data: &HeteroData,
    state: &RunState,
    epoch: usize,
) -> HeteroResult<()> {
    save_weights(run, network, optimizer, Some(epoch))?;
    save_latents(run, network, data)?;
    write_json(&run.join(STATE_FILE), state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_saved_before_the_frequency_limit_fitted_every_frequency_and_bad_limits_are_refused() {
        let mut json = serde_json::to_value(HeteroOptions::default()).unwrap();
        assert_eq!(json["decoder_frequency"], DECODER_FREQUENCY);
        json.as_object_mut().unwrap().remove("decoder_frequency");
        let old: HeteroOptions = serde_json::from_value(json).unwrap();
        assert_eq!(old.decoder_frequency, 1.0);
        assert!(old.validate().is_ok());
        for bad in [0.0, -0.5, 1.5, f64::NAN] {
            let options = HeteroOptions {
                decoder_frequency: bad,
                ..HeteroOptions::default()
            };
            assert!(options.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn runs_saved_before_the_prior_start_random_and_a_missing_prior_file_is_named() {
        let mut json = serde_json::to_value(HeteroOptions::default()).unwrap();
        json.as_object_mut().unwrap().remove("encoder");
        let old: HeteroOptions = serde_json::from_value(json).unwrap();
        assert_eq!(old.encoder, EncoderStart::Random);
        assert_eq!(old.prior_shape().unwrap(), None);
        // A run from the bundled prior takes the prior's shape.
        let new = HeteroOptions {
            encoder: EncoderStart::Pretrained(PriorSource::Bundled),
            ..HeteroOptions::default()
        };
        assert!(new.validate().is_ok());
        let shape = new.shape(32, new.prior_shape().unwrap());
        assert_eq!(shape.prior, Some(prior::record(&PriorSource::Bundled).unwrap().shape));
        let missing = HeteroOptions {
            encoder: EncoderStart::Pretrained(PriorSource::File("/nonexistent/prior.bpk".into())),
            ..HeteroOptions::default()
        };
        let error = missing.validate().unwrap_err().to_string();
        assert!(error.contains("/nonexistent/prior.json"), "{error}");
    }
}
