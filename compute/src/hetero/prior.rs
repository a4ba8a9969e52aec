//! The encoder's pretrained prior (CryoDECO's idea, with cryoforge's own weights): a small
//! network from a particle image to a feature vector, pretrained by [`super::pretrain`] on
//! simulated particles of hundreds of public structures so that two images of one structure, in
//! different poses and under different CTFs and noise, give near features and images of different
//! structures far ones. `hetero train` puts it in front of the encoder's first layer (its features
//! beside the image and the template scores) and fine-tunes it with the rest.
//!
//! Its input is the particle's CTF-filtered image ([`super::data::prepare_image`]) at a fixed
//! [`PriorShape::size`] across the whole box, whatever the training size, each image scaled to
//! zero mean and unit RMS inside the circle, so one set of weights serves every data set.

use std::path::Path;

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::error::{HeteroError, HeteroResult};
use crate::formats::error::FormatError;

/// The prior's shape; saved beside its weights and inside every run that uses it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PriorShape {
    /// Side of its input image (px across the whole box).
    pub size: usize,
    pub layers: usize,
    pub width: usize,
    pub features: usize,
}

impl Default for PriorShape {
    fn default() -> Self {
        Self {
            size: 32,
            layers: 2,
            width: 256,
            features: 32,
        }
    }
}

#[derive(Module, Debug)]
pub struct Prior {
    layers: Vec<Linear>,
    norms: Vec<LayerNorm>,
    head: Linear,
}

impl Prior {
    pub fn new(shape: &PriorShape, device: &Device) -> Self {
        let w = shape.width;
        let layers = (0..shape.layers.max(1))
            .map(|i| LinearConfig::new(if i == 0 { input_len(shape.size) } else { w }, w).init(device))
            .collect();
        Self {
            layers,
            norms: (0..shape.layers.max(1))
                .map(|_| LayerNormConfig::new(w).init(device))
                .collect(),
            head: LinearConfig::new(w, shape.features).init(device),
        }
    }

    /// Features [B, features] of inputs [B, [`input_len`]] ([`prior_input`]).
    pub fn forward(&self, images: Tensor<2>) -> Tensor<2> {
        let mut h = images;
        for (layer, norm) in self.layers.iter().zip(&self.norms) {
            h = relu(norm.forward(layer.forward(h)));
        }
        self.head.forward(h)
    }
}

/// Angular samples per ring of [`prior_input`].
pub const ANGLES: usize = 32;

/// Length of the prior's input for images of side `size`: one value per ring and angular harmonic.
pub fn input_len(size: usize) -> usize {
    (size / 2) * (ANGLES / 2 + 1)
}

/// The prior's input from a particle image of side `size` (particle at pixel size/2): the image
/// standardised ([`standardise`]), sampled on rings one pixel apart (bilinear, [`ANGLES`] angles),
/// and the magnitude of each ring's angular Fourier harmonics. Magnitudes do not change when the
/// image turns in its plane (or is mirrored), so the prior need not learn in-plane rotations.
pub fn prior_input(mut image: Vec<f32>, size: usize) -> Vec<f32> {
    standardise(&mut image, size);
    let c = size as f64 / 2.0;
    let at = |x: f64, y: f64| -> f64 {
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let value = |xi: f64, yi: f64| -> f64 {
            if xi < 0.0 || yi < 0.0 || xi >= size as f64 || yi >= size as f64 {
                0.0
            } else {
                f64::from(image[yi as usize * size + xi as usize])
            }
        };
        value(x0, y0) * (1.0 - fx) * (1.0 - fy)
            + value(x0 + 1.0, y0) * fx * (1.0 - fy)
            + value(x0, y0 + 1.0) * (1.0 - fx) * fy
            + value(x0 + 1.0, y0 + 1.0) * fx * fy
    };
    let harmonics = ANGLES / 2 + 1;
    let mut out = Vec::with_capacity(input_len(size));
    let mut ring = [0f64; ANGLES];
    for k in 0..size / 2 {
        let r = k as f64 + 0.5;
        for (j, v) in ring.iter_mut().enumerate() {
            let t = std::f64::consts::TAU * j as f64 / ANGLES as f64;
            *v = at(c + r * t.cos(), c + r * t.sin());
        }
        for m in 0..harmonics {
            let (mut re, mut im) = (0.0, 0.0);
            for (j, v) in ring.iter().enumerate() {
                let t = std::f64::consts::TAU * (m * j) as f64 / ANGLES as f64;
                re += v * t.cos();
                im -= v * t.sin();
            }
            out.push((re.hypot(im) / ANGLES as f64) as f32);
        }
    }
    out
}

/// Scales an image to zero mean and unit RMS inside its inscribed circle (zero outside).
pub fn standardise(image: &mut [f32], size: usize) {
    let r2 = (size as f64 / 2.0).powi(2);
    let inside = |i: usize| {
        let (x, y) = (
            (i % size) as f64 - size as f64 / 2.0,
            (i / size) as f64 - size as f64 / 2.0,
        );
        x * x + y * y < r2
    };
    let (mut sum, mut count) = (0f64, 0usize);
    for (i, v) in image.iter().enumerate() {
        if inside(i) {
            sum += f64::from(*v);
            count += 1;
        }
    }
    let mean = sum / count.max(1) as f64;
    let var = image
        .iter()
        .enumerate()
        .filter(|(i, _)| inside(*i))
        .map(|(_, v)| (f64::from(*v) - mean).powi(2))
        .sum::<f64>()
        / count.max(1) as f64;
    let scale = 1.0 / var.sqrt().max(1e-12);
    for (i, v) in image.iter_mut().enumerate() {
        *v = if inside(i) {
            ((f64::from(*v) - mean) * scale) as f32
        } else {
            0.0
        };
    }
}

/// The prior's weights and where they came from, as saved beside them (`x.bpk` → `x.json`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PriorRecord {
    pub shape: PriorShape,
    /// The pretraining command and data, and its validation scores, for the record.
    #[serde(default)]
    pub trained_with: String,
}

#[allow(
    clippy::large_include_file,
    reason = "the pretrained prior (1.1 MB) ships inside cryoforge so training needs no download"
)]
const BUNDLED_WEIGHTS: &[u8] = include_bytes!("../../../assets/hetero/prior.bpk");
const BUNDLED_RECORD: &str = include_str!("../../../assets/hetero/prior.json");

/// Whether cryoforge was built with pretrained prior weights.
pub fn bundled_available() -> bool {
    !BUNDLED_WEIGHTS.is_empty() && serde_json::from_str::<PriorRecord>(BUNDLED_RECORD).is_ok()
}

/// Where the prior's weights come from.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum PriorSource {
    /// The weights bundled with cryoforge (`assets/hetero/prior.bpk`).
    Bundled,
    /// Weights written by `cryoforge hetero pretrain`.
    File(std::path::PathBuf),
}

/// The record (shape and provenance) of `source`.
pub fn record(source: &PriorSource) -> HeteroResult<PriorRecord> {
    let (text, name) = match source {
        PriorSource::Bundled => {
            if !bundled_available() {
                return Err(HeteroError::Invalid(
                    "this build of cryoforge has no pretrained encoder (assets/hetero/prior.bpk is empty); make one \
                     with `cryoforge hetero pretrain` and give it with --encoder FILE, or train with --encoder random"
                        .into(),
                ));
            }
            (BUNDLED_RECORD.to_owned(), "assets/hetero/prior.json".to_owned())
        }
        PriorSource::File(path) => {
            let json = path.with_extension("json");
            let text = std::fs::read_to_string(&json).map_err(|e| {
                HeteroError::Invalid(format!(
                    "{}: {e} (the prior's record beside its weights)",
                    json.display()
                ))
            })?;
            (text, json.display().to_string())
        }
    };
    serde_json::from_str(&text).map_err(|e| HeteroError::Invalid(format!("{name}: {e}")))
}

/// The prior of `source` on `device`.
pub fn load(source: &PriorSource, device: &Device) -> HeteroResult<Prior> {
    let rec = record(source)?;
    let prior = Prior::new(&rec.shape, device);
    match source {
        PriorSource::Bundled => {
            let bytes = burn::tensor::Bytes::from_bytes_vec(BUNDLED_WEIGHTS.to_vec());
            let module = burn::store::ModuleRecord::from_bytes(bytes)
                .map_err(|e| HeteroError::Invalid(format!("assets/hetero/prior.bpk: {e}")))?;
            prior
                .try_load_record(module)
                .map_err(|e| HeteroError::Invalid(format!("assets/hetero/prior.bpk: {e}")))
        }
        PriorSource::File(path) => prior
            .try_load_file(path)
            .map_err(|e| HeteroError::Invalid(format!("{}: {e}", path.display()))),
    }
}

/// Saves `prior` to `path` and its record beside it, each through a temporary file.
pub fn save(prior: &Prior, record: &PriorRecord, path: &Path) -> HeteroResult<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| FormatError::io(dir, e))?;
    }
    let partial = path.with_extension("bpk.partial");
    prior
        .clone()
        .save_file(&partial)
        .map_err(|e| HeteroError::checkpoint(&partial, e))?;
    std::fs::rename(&partial, path).map_err(|e| FormatError::io(path, e))?;
    let json = serde_json::to_string_pretty(record).map_err(|e| HeteroError::Invalid(e.to_string()))?;
    let json_path = path.with_extension("json");
    crate::io::write_atomically(&json_path, |w| w.write_all(json.as_bytes()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardised_images_have_zero_mean_and_unit_rms_inside_the_circle() {
        let size = 16;
        let mut image: Vec<f32> = (0..size * size).map(|i| 3.0 + (i % 7) as f32).collect();
        standardise(&mut image, size);
        let inside: Vec<f32> = image
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                let (x, y) = ((i % size) as f64 - 8.0, (i / size) as f64 - 8.0);
                x * x + y * y < 64.0
            })
            .map(|(_, v)| *v)
            .collect();
        let mean = inside.iter().sum::<f32>() / inside.len() as f32;
        let rms = (inside.iter().map(|v| v * v).sum::<f32>() / inside.len() as f32).sqrt();
        assert!(mean.abs() < 1e-5 && (rms - 1.0).abs() < 1e-4, "{mean} {rms}");
        assert_eq!(image[0], 0.0);
    }

    #[test]
    fn the_priors_input_does_not_change_when_the_image_turns_in_its_plane() {
        let size = 32;
        // An asymmetric pattern of three blobs, and the same turned by 90° about the centre.
        let blobs = |turn: bool| -> Vec<f32> {
            let centres = [(5.0, 0.0), (-3.0, 4.0), (0.0, -7.0)];
            (0..size * size)
                .map(|i| {
                    let (x, y) = ((i % size) as f64 - 16.0, (i / size) as f64 - 16.0);
                    let (x, y) = if turn { (y, -x) } else { (x, y) };
                    centres
                        .iter()
                        .enumerate()
                        .map(|(k, (cx, cy))| (k + 1) as f64 * (-((x - cx).powi(2) + (y - cy).powi(2)) / 4.0).exp())
                        .sum::<f64>() as f32
                })
                .collect()
        };
        let a = prior_input(blobs(false), size);
        let b = prior_input(blobs(true), size);
        assert_eq!(a.len(), input_len(size));
        let scale = a.iter().map(|v| v.abs()).fold(0.0, f32::max);
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(worst < 0.02 * scale, "{worst} of {scale}");
        // A different pattern gives a different input.
        let mut other = blobs(false);
        other.reverse();
        other
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v *= 1.0 + (i % 5) as f32);
        let c = prior_input(other, size);
        assert!(a.iter().zip(&c).any(|(x, y)| (x - y).abs() > 0.1 * scale));
    }

    #[test]
    fn a_saved_prior_loads_back_with_the_same_features() {
        let device = Device::flex();
        let shape = PriorShape {
            size: 8,
            width: 16,
            features: 4,
            ..PriorShape::default()
        };
        let prior = Prior::new(&shape, &device);
        let dir = std::env::temp_dir().join(format!("cryoforge-prior-{}", std::process::id()));
        let path = dir.join("prior.bpk");
        let record = PriorRecord {
            shape: shape.clone(),
            trained_with: "test".into(),
        };
        save(&prior, &record, &path).unwrap();
        let loaded = load(&PriorSource::File(path.clone()), &device).unwrap();
        let input = Tensor::<2>::ones([2, input_len(8)], &device);
        let a = prior.forward(input.clone()).into_data().try_to_vec::<f32>().unwrap();
        let b = loaded.forward(input).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(a, b);
        // A file with no record beside it names the missing record.
        std::fs::remove_file(path.with_extension("json")).unwrap();
        let error = load(&PriorSource::File(path), &device).unwrap_err().to_string();
        assert!(error.contains("prior.json"), "{error}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
