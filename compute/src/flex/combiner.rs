//! The learned combiner of the flexibility estimators (CryoProt's idea at small scale): every
//! residue is a token of its estimators (map B, elastic network, contacts, local resolution), its
//! map density, its size and type; tokens exchange information through a few latent tokens
//! (cross-attention in, self-attention among the latents, cross-attention back: a latent
//! bottleneck, so every residue sees the whole protein at a cost linear in its length), and a
//! head predicts a correction to the map estimate's log RMSF. Trained on maps cryoforge simulates
//! from X-ray chains with their own B-factors (`cryoforge flex-train`), families held out from
//! `scripts/flex_targets.py`'s test proteins.

use burn::module::{Module, Param};
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor, TensorData};

use super::Flexibility;
use crate::build::sequence::residue_index_of_name;
use crate::formats::model::Structure;
use crate::maps::DensityMap;
use crate::maps::scores::interpolate;

/// Features per residue.
pub const FEATURES: usize = 8 + 20;
const WIDTH: usize = 32;
const LATENTS: usize = 8;
const HEADS: usize = 2;

fn z_scores(values: &[f64]) -> Vec<f64> {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n)
        .sqrt()
        .max(1e-9);
    values.iter().map(|v| (v - mean) / sd).collect()
}

/// The features of every residue of an estimate (`flex`) of `structure` in `map`.
pub fn features(flex: &Flexibility, structure: &Structure, map: &DensityMap) -> Vec<[f32; FEATURES]> {
    let column = |name: &str| flex.estimator(name).map(|e| e.rmsf.clone());
    let log = |v: &[f64]| v.iter().map(|x| x.max(1e-3).ln()).collect::<Vec<_>>();
    let map_rmsf = column("map_b").unwrap_or_else(|| vec![1.0; flex.residues.len()]);
    let map_log = log(&map_rmsf);
    let map_z = z_scores(&map_log);
    let gnm = column("gnm")
        .map(|v| z_scores(&log(&v)))
        .unwrap_or_else(|| vec![0.0; map_z.len()]);
    let contact = column("contact")
        .map(|v| z_scores(&log(&v)))
        .unwrap_or_else(|| vec![0.0; map_z.len()]);
    let local = column("local_resolution").map(|v| z_scores(&v));
    let frame = &structure.frames[0];
    // The map at each residue's atoms, relative to the protein's mean there.
    let density: Vec<f64> = flex
        .residues
        .iter()
        .map(|r| {
            let values: Vec<f64> = r
                .atoms
                .iter()
                .filter_map(|&i| interpolate(map, frame[i]))
                .map(f64::from)
                .collect();
            values.iter().sum::<f64>() / values.len().max(1) as f64
        })
        .collect();
    let density_z = z_scores(&density);
    let size_z = z_scores(&flex.residues.iter().map(|r| r.atoms.len() as f64).collect::<Vec<_>>());
    flex.residues
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let mut f = [0f32; FEATURES];
            f[0] = map_z[k] as f32;
            f[1] = map_log[k] as f32;
            f[2] = gnm[k] as f32;
            f[3] = contact[k] as f32;
            if let Some(l) = &local {
                f[4] = l[k] as f32;
                f[5] = 1.0;
            }
            f[6] = density_z[k] as f32;
            f[7] = size_z[k] as f32;
            if let Some(t) = residue_index_of_name(&r.residue_name) {
                f[8 + t as usize] = 1.0;
            }
            f
        })
        .collect()
}

#[derive(Module, Debug)]
pub struct Combiner {
    embed: Linear,
    embed2: Linear,
    latents: Param<Tensor<2>>,
    read: MultiHeadAttention,
    read_norm: LayerNorm,
    mix: MultiHeadAttention,
    mix_norm: LayerNorm,
    write: MultiHeadAttention,
    write_norm: LayerNorm,
    head: Linear,
    out: Linear,
}

impl Combiner {
    pub fn new(device: &Device) -> Self {
        let attention = || {
            MultiHeadAttentionConfig::new(WIDTH, HEADS)
                .with_dropout(0.0)
                .init(device)
        };
        Self {
            embed: LinearConfig::new(FEATURES, WIDTH).init(device),
            embed2: LinearConfig::new(WIDTH, WIDTH).init(device),
            latents: Param::from_tensor(Tensor::random([LATENTS, WIDTH], Distribution::Normal(0.0, 0.5), device)),
            read: attention(),
            read_norm: LayerNormConfig::new(WIDTH).init(device),
            mix: attention(),
            mix_norm: LayerNormConfig::new(WIDTH).init(device),
            write: attention(),
            write_norm: LayerNormConfig::new(WIDTH).init(device),
            head: LinearConfig::new(WIDTH, WIDTH).init(device),
            out: LinearConfig::new(WIDTH, 1).init(device),
        }
    }

    /// Predicted log RMSF for one protein's residues ([1, n, FEATURES] → [n]).
    pub fn forward(&self, features: Tensor<3>) -> Tensor<1> {
        let n = features.dims()[1];
        let base = features.clone().narrow(2, 1, 1).reshape([n]);
        let tokens = self.embed2.forward(relu(self.embed.forward(features)));
        let latents = self.latents.val().unsqueeze::<3>();
        let read = self
            .read
            .forward(MhaInput::new(latents.clone(), tokens.clone(), tokens.clone()))
            .context;
        let latents = self.read_norm.forward(latents + read);
        let mixed = self.mix.forward(MhaInput::self_attn(latents.clone())).context;
        let latents = self.mix_norm.forward(latents + mixed);
        let written = self
            .write
            .forward(MhaInput::new(tokens.clone(), latents.clone(), latents))
            .context;
        let tokens = self.write_norm.forward(tokens + written);
        let correction = self.out.forward(relu(self.head.forward(tokens))).reshape([n]);
        base + correction
    }

    /// log RMSF → RMSF for `features` on the CPU.
    pub fn predict(&self, features: &[[f32; FEATURES]], device: &Device) -> Vec<f64> {
        let n = features.len();
        if n == 0 {
            return Vec::new();
        }
        let flat: Vec<f32> = features.iter().flatten().copied().collect();
        let input = Tensor::<3>::from_data(TensorData::new(flat, [1, n, FEATURES]), device);
        self.forward(input)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default()
            .iter()
            .map(|v| f64::from(v.exp()))
            .collect()
    }
}

const BUNDLED: &[u8] = include_bytes!("../../../assets/flex/combiner.bpk");

/// Whether cryoforge was built with a trained combiner.
pub fn bundled_available() -> bool {
    !BUNDLED.is_empty()
}

/// The bundled combiner, when cryoforge was built with one.
pub fn bundled() -> Option<Combiner> {
    static LOADED: std::sync::OnceLock<Option<Combiner>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            if BUNDLED.is_empty() {
                return None;
            }
            let bytes = burn::tensor::Bytes::from_bytes_vec(BUNDLED.to_vec());
            let record = burn::store::ModuleRecord::from_bytes(bytes).ok()?;
            Combiner::new(&Device::flex()).try_load_record(record).ok()
        })
        .clone()
}

/// One training example: a protein's features and its true log RMSF.
pub struct CombinerExample {
    pub features: Vec<[f32; FEATURES]>,
    pub log_rmsf: Vec<f32>,
}

/// Trains a combiner on `examples` (Adam, one protein a step, `epochs` passes); returns it with
/// the mean squared error per epoch.
pub fn train_combiner(examples: &[CombinerExample], epochs: usize, seed: u64) -> (Combiner, Vec<f64>) {
    use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
    let device = Device::flex().autodiff();
    let mut net = Combiner::new(&device);
    let mut optimizer: ModuleOptimizer = AdamConfig::new().init();
    let mut rng = crate::numeric::rng::Rng::new(seed);
    let mut history = Vec::new();
    for epoch in 0..epochs {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        rng.shuffle(&mut order);
        let mut total = 0.0;
        for &k in &order {
            let e = &examples[k];
            let n = e.features.len();
            if n == 0 {
                continue;
            }
            let flat: Vec<f32> = e.features.iter().flatten().copied().collect();
            let input = Tensor::<3>::from_data(TensorData::new(flat, [1, n, FEATURES]), &device);
            let target = Tensor::<1>::from_data(TensorData::new(e.log_rmsf.clone(), [n]), &device);
            let loss = (net.forward(input) - target).powf_scalar(2.0).mean();
            total += f64::from(
                loss.clone()
                    .into_data()
                    .try_to_vec::<f32>()
                    .ok()
                    .and_then(|v| v.first().copied())
                    .unwrap_or(0.0),
            );
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            let lr = 2e-3 * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / epochs as f64).cos());
            net = optimizer.step(lr.max(1e-5), net, grads);
        }
        history.push(total / examples.len().max(1) as f64);
    }
    (net.to_device(&Device::flex()), history)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A correction the features carry (the truth is the map estimate plus a residue-type term)
    /// is learned: the error falls well below the map estimate's own.
    #[test]
    fn training_learns_a_correction_the_features_carry() {
        let mut rng = crate::numeric::rng::Rng::new(3);
        let examples: Vec<CombinerExample> = (0..6)
            .map(|_| {
                let features: Vec<[f32; FEATURES]> = (0..40)
                    .map(|_| {
                        let mut f = [0f32; FEATURES];
                        f[1] = (rng.uniform() as f32) - 0.2;
                        f[0] = f[1] * 2.0;
                        f[8 + rng.below(20)] = 1.0;
                        f
                    })
                    .collect();
                let log_rmsf = features
                    .iter()
                    .map(|f| f[1] + if f[8] > 0.5 { 0.8 } else { 0.0 })
                    .collect();
                CombinerExample { features, log_rmsf }
            })
            .collect();
        let baseline: f64 = examples
            .iter()
            .flat_map(|e| {
                e.features
                    .iter()
                    .zip(&e.log_rmsf)
                    .map(|(f, t)| f64::from((f[1] - t).powi(2)))
            })
            .sum::<f64>()
            / 240.0;
        let (net, history) = train_combiner(&examples, 60, 1);
        assert!(history.iter().all(|l| l.is_finite()));
        let last = *history.last().unwrap();
        assert!(
            last < 0.5 * baseline,
            "loss {last} against the map estimate's {baseline}"
        );
        let predicted = net.predict(&examples[0].features, &Device::flex());
        assert!(predicted.iter().all(|v| v.is_finite() && *v > 0.0));
    }
}
