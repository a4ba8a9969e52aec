//! The heterogeneity network (docs/science.md §4, CryoDECO / cryoDRGN): an encoder from the particle
//! image to a latent z (mean and log-variance, a VAE), and a neural-field decoder, an MLP with
//! LayerNorm on Gaussian-Fourier-feature-encoded 3D frequency coordinates plus z, predicting the
//! real and imaginary parts of the volume's Fourier transform at those coordinates.
//!
//! Frequency coordinates are in cycles per pixel of the training box (−0.5…0.5). The decoder
//! sees only one half of frequency space: a coordinate k with k_z < 0 (ties broken on y, then x)
//! is evaluated at −k and the result conjugated, so every volume it describes is real.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

use super::prior::{Prior, PriorShape};
use crate::numeric::rng::Rng;

/// The network's shape; saved beside every checkpoint.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetworkShape {
    /// Side of the (downsampled) training images in pixels.
    pub image_size: usize,
    pub zdim: usize,
    /// Encoder hidden layers × width.
    pub encoder_layers: usize,
    pub encoder_width: usize,
    /// Decoder hidden layers × width.
    pub decoder_layers: usize,
    pub decoder_width: usize,
    /// Gaussian Fourier features: count and σ (cryoDRGN's units: σ × image_size/2 rad per cycle/px).
    pub features: usize,
    pub feature_sigma: f64,
    /// Seed of the Fourier-feature matrix (regenerated on load, never trained).
    pub feature_seed: u64,
    /// Learned 3D templates the pose-aware encoder correlates each particle's Fourier slice with
    /// (0: the encoder sees the image only, as cryoDRGN's).
    #[serde(default)]
    pub templates: usize,
    /// The pretrained prior in front of the encoder ([`super::prior`]); None: the image (and
    /// templates) only.
    #[serde(default)]
    pub prior: Option<PriorShape>,
}

impl NetworkShape {
    /// docs/science.md §4: decoder 3 × 256 with LayerNorm, 64 Gaussian features with σ 0.5.
    pub fn new(image_size: usize, zdim: usize) -> Self {
        Self {
            image_size,
            zdim,
            encoder_layers: 3,
            encoder_width: 256,
            decoder_layers: 3,
            decoder_width: 256,
            features: 64,
            feature_sigma: 0.5,
            feature_seed: 7,
            templates: 0,
            prior: None,
        }
    }
}

#[derive(Module, Debug)]
pub struct Encoder {
    layers: Vec<Linear>,
    norms: Vec<LayerNorm>,
    head: Linear,
    /// The pose-aware part: learned 3D functions of frequency (an MLP on the Fourier features),
    /// real and imaginary part per template.
    templates: Option<Templates>,
    /// The pretrained prior, whose features join the image and template scores.
    pub prior: Option<Prior>,
}

#[derive(Module, Debug)]
pub struct Templates {
    hidden: Linear,
    norm: LayerNorm,
    out: Linear,
}

#[derive(Module, Debug)]
pub struct Decoder {
    from_features: Linear,
    from_latent: Linear,
    layers: Vec<Linear>,
    norms: Vec<LayerNorm>,
    head: Linear,
}

#[derive(Module, Debug)]
pub struct HeteroNet {
    pub encoder: Encoder,
    pub decoder: Decoder,
}

/// The network with its fixed Fourier-feature matrix.
#[derive(Clone, Debug)]
pub struct Network {
    pub net: HeteroNet,
    pub shape: NetworkShape,
    /// [3, features], already scaled to radians per (cycle/px).
    features: Tensor<2>,
}

/// One batch of particles as the network sees them (host arrays, batch-major).
pub struct BatchInput {
    pub size: usize,
    /// Points per particle (the half-disk of frequencies).
    pub points: usize,
    /// Encoder inputs, [B, image_size²].
    pub images: Vec<f32>,
    /// The prior's inputs, [B, [`super::prior::input_len`]] (empty without a prior).
    pub prior_images: Vec<f32>,
    /// Canonical 3D frequency of each point, [B·P, 3].
    pub coords: Vec<f32>,
    /// +1, or −1 where the point was flipped to the canonical half (conjugate the output).
    pub signs: Vec<f32>,
    pub ctf: Vec<f32>,
    /// Observed spectrum, real and imaginary, [B·P] each.
    pub target_re: Vec<f32>,
    pub target_im: Vec<f32>,
}

/// Rotates 2D frequencies into 3D (k₃ = Aᵀ(k, 0): the rows of A weighted by kx, ky) and folds
/// them into the decoder's half space. Returns (coordinate, sign).
pub fn canonical(k: [f64; 3]) -> ([f32; 3], f32) {
    let flip = k[2] < 0.0 || (k[2] == 0.0 && (k[1] < 0.0 || (k[1] == 0.0 && k[0] < 0.0)));
    if flip {
        (k.map(|v| -v as f32), -1.0)
    } else {
        (k.map(|v| v as f32), 1.0)
    }
}

fn linear(input: usize, output: usize, device: &Device) -> Linear {
    LinearConfig::new(input, output).init(device)
}

impl Network {
    pub fn new(shape: &NetworkShape, device: &Device) -> Self {
        let ew = shape.encoder_width;
        let prior_features = shape.prior.as_ref().map_or(0, |p| p.features);
        let mut enc_layers = vec![linear(
            shape.image_size * shape.image_size + shape.templates + prior_features,
            ew,
            device,
        )];
        let templates = (shape.templates > 0).then(|| Templates {
            hidden: linear(2 * shape.features, ew, device),
            norm: LayerNormConfig::new(ew).init(device),
            out: linear(ew, 2 * shape.templates, device),
        });
        enc_layers.extend((1..shape.encoder_layers).map(|_| linear(ew, ew, device)));
        let encoder = Encoder {
            norms: (0..shape.encoder_layers)
                .map(|_| LayerNormConfig::new(ew).init(device))
                .collect(),
            layers: enc_layers,
            head: linear(ew, 2 * shape.zdim, device),
            templates,
            prior: shape.prior.as_ref().map(|p| Prior::new(p, device)),
        };
        let dw = shape.decoder_width;
        let decoder = Decoder {
            from_features: linear(2 * shape.features, dw, device),
            from_latent: LinearConfig::new(shape.zdim, dw).with_bias(false).init(device),
            layers: (1..shape.decoder_layers).map(|_| linear(dw, dw, device)).collect(),
            norms: (0..shape.decoder_layers)
                .map(|_| LayerNormConfig::new(dw).init(device))
                .collect(),
            head: linear(dw, 2, device),
        };
        let net = HeteroNet { encoder, decoder };
        Self {
            features: feature_matrix(shape, device),
            net,
            shape: shape.clone(),
        }
    }

    /// The same network on another device (the autodiff one for training, the plain one for
    /// inference).
    pub fn to_device(&self, device: &Device) -> Self {
        Self {
            net: self.net.clone().to_device(device),
            shape: self.shape.clone(),
            features: self.features.clone().to_device(device),
        }
    }

    pub fn device(&self) -> Device {
        self.features.device()
    }

    /// Latent mean and log-variance, each [B, zdim], of a batch. With templates, the encoder
    /// also sees the correlation of each particle's CTF-weighted spectrum with every learned 3D
    /// template on the particle's central slice (the known pose): template matching it can learn.
    pub fn encode(&self, batch: &BatchInput, encoded: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        let device = self.device();
        let (b, p) = (batch.size, batch.points);
        let d2 = self.shape.image_size * self.shape.image_size;
        let t2 = |v: &[f32], shape: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), shape), &device);
        let enc = &self.net.encoder;
        let mut h = t2(&batch.images, [b, d2]);
        if let Some(templates) = &enc.templates {
            let t = self.shape.templates;
            let encoded = encoded.unwrap_or_else(|| self.fourier_features(t2(&batch.coords, [b * p, 3])));
            let phi = templates
                .out
                .forward(relu(templates.norm.forward(templates.hidden.forward(encoded))))
                .reshape([b, p, 2 * t]);
            let weight = |values: &[f32], signed: bool| {
                let v: Vec<f32> = values
                    .iter()
                    .zip(&batch.ctf)
                    .zip(&batch.signs)
                    .map(|((v, c), s)| v * c * if signed { *s } else { 1.0 })
                    .collect();
                Tensor::<3>::from_data(TensorData::new(v, [b, 1, p]), &device)
            };
            let phi_re = phi.clone().slice([0..b, 0..p, 0..t]);
            let phi_im = phi.slice([0..b, 0..p, t..2 * t]);
            let scores = (weight(&batch.target_re, false).matmul(phi_re)
                + weight(&batch.target_im, true).matmul(phi_im))
            .reshape([b, t])
            .div_scalar((p as f64).sqrt());
            h = Tensor::cat(vec![h, scores], 1);
        }
        if let (Some(prior), Some(shape)) = (&enc.prior, &self.shape.prior) {
            let features = prior.forward(t2(&batch.prior_images, [b, super::prior::input_len(shape.size)]));
            h = Tensor::cat(vec![h, features], 1);
        }
        for (layer, norm) in enc.layers.iter().zip(&enc.norms) {
            h = relu(norm.forward(layer.forward(h)));
        }
        let out = enc.head.forward(h);
        let z = self.shape.zdim;
        let mean = out.clone().slice([0..b, 0..z]);
        let logvar = out.slice([0..b, z..2 * z]).clamp(-10.0, 10.0);
        (mean, logvar)
    }

    /// sin and cos of the Gaussian Fourier features of coordinates [N, 3]: [N, 2·features].
    pub fn fourier_features(&self, coords: Tensor<2>) -> Tensor<2> {
        let phase = coords.matmul(self.features.clone());
        Tensor::cat(vec![phase.clone().sin(), phase.cos()], 1)
    }

    /// The decoder at `coords` ([B·P, 3], canonical half) for latents `z` ([B, zdim]):
    /// (real, imaginary) of the canonical point, each [B, P].
    pub fn decode(&self, coords: Tensor<2>, z: Tensor<2>, batch: usize, points: usize) -> (Tensor<2>, Tensor<2>) {
        self.decode_features(self.fourier_features(coords), z, batch, points)
    }

    /// The decoder on already encoded coordinates ([`Self::fourier_features`]).
    pub fn decode_features(
        &self,
        encoded: Tensor<2>,
        z: Tensor<2>,
        batch: usize,
        points: usize,
    ) -> (Tensor<2>, Tensor<2>) {
        let dec = &self.net.decoder;
        let width = self.shape.decoder_width;
        let from_z = dec.from_latent.forward(z).reshape([batch, 1, width]);
        let mut h = dec.from_features.forward(encoded).reshape([batch, points, width]) + from_z;
        h = relu(dec.norms[0].forward(h));
        for (layer, norm) in dec.layers.iter().zip(&dec.norms[1..]) {
            h = relu(norm.forward(layer.forward(h)));
        }
        let out = dec.head.forward(h);
        let re = out.clone().slice([0..batch, 0..points, 0..1]).reshape([batch, points]);
        let im = out.slice([0..batch, 0..points, 1..2]).reshape([batch, points]);
        (re, im)
    }

    /// The training loss of one batch: mean ‖image − CTF·slice‖² over the points plus
    /// β·KL/P (cryoDRGN's weighting), with z drawn by the reparameterisation trick from
    /// `noise` ([B·zdim] standard normal). Returns (loss, reconstruction term as a tensor).
    pub fn loss(&self, batch: &BatchInput, noise: &[f32], beta: f64) -> (Tensor<1>, Tensor<1>) {
        let device = self.device();
        let (b, p) = (batch.size, batch.points);
        let t2 = |v: &[f32], shape: [usize; 2]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), shape), &device);
        let encoded = self.fourier_features(t2(&batch.coords, [b * p, 3]));
        let (mean, logvar) = self.encode(batch, Some(encoded.clone()));
        let eps = t2(noise, [b, self.shape.zdim]);
        let z = mean.clone() + eps * logvar.clone().mul_scalar(0.5).exp();
        let (re, im) = self.decode_features(encoded, z, b, p);
        let ctf = t2(&batch.ctf, [b, p]);
        let im = im * t2(&batch.signs, [b, p]);
        let dr = re * ctf.clone() - t2(&batch.target_re, [b, p]);
        let di = im * ctf - t2(&batch.target_im, [b, p]);
        let reconstruction = (dr.clone() * dr + di.clone() * di).mean();
        let kl = (logvar.clone().exp() + mean.clone() * mean - logvar)
            .sub_scalar(1.0)
            .sum()
            .mul_scalar(0.5 / b as f64);
        let loss = reconstruction.clone() + kl.mul_scalar(beta / p as f64);
        (loss, reconstruction)
    }
}

/// The fixed Gaussian Fourier-feature matrix, [3, features], in radians per (cycle/px).
fn feature_matrix(shape: &NetworkShape, device: &Device) -> Tensor<2> {
    let mut rng = Rng::new(shape.feature_seed);
    let scale = shape.feature_sigma * shape.image_size as f64 / 2.0 * std::f64::consts::TAU;
    let values: Vec<f32> = (0..3 * shape.features).map(|_| (rng.normal() * scale) as f32).collect();
    Tensor::from_data(TensorData::new(values, [3, shape.features]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_points_fold_into_one_half() {
        let (c, s) = canonical([0.1, 0.2, -0.3]);
        assert_eq!(s, -1.0);
        assert!(c[2] > 0.0 && (c[0] + 0.1).abs() < 1e-7);
        assert_eq!(canonical([0.1, -0.2, 0.0]).1, -1.0);
        assert_eq!(canonical([0.1, 0.2, 0.0]).1, 1.0);
        assert_eq!(canonical([-0.1, 0.0, 0.0]).1, -1.0);
    }

    #[test]
    fn shapes_flow_through_encoder_and_decoder() {
        let device = Device::flex();
        let shape = NetworkShape {
            encoder_width: 16,
            decoder_width: 16,
            features: 8,
            ..NetworkShape::new(8, 3)
        };
        let batch = BatchInput {
            size: 2,
            points: 5,
            images: vec![0.0; 128],
            prior_images: vec![0.5; 2 * super::super::prior::input_len(4)],
            coords: vec![0.1; 30],
            signs: vec![1.0; 10],
            ctf: vec![1.0; 10],
            target_re: vec![0.5; 10],
            target_im: vec![0.5; 10],
        };
        let prior = PriorShape {
            size: 4,
            width: 8,
            features: 3,
            ..PriorShape::default()
        };
        for (templates, prior) in [(0, None), (4, None), (4, Some(prior))] {
            let net = Network::new(
                &NetworkShape {
                    templates,
                    prior,
                    ..shape.clone()
                },
                &device,
            );
            let (mean, logvar) = net.encode(&batch, None);
            assert_eq!(mean.dims(), [2, 3]);
            assert_eq!(logvar.dims(), [2, 3]);
            let (re, im) = net.decode(Tensor::zeros([2 * 5, 3], &device), mean, 2, 5);
            assert_eq!(re.dims(), [2, 5]);
            assert_eq!(im.dims(), [2, 5]);
            let (loss, _) = net.loss(&batch, &[0.0; 6], 0.1);
            assert!(loss.into_data().try_to_vec::<f32>().expect("loss")[0].is_finite());
        }
    }
}
