//! The Cα likelihood network of model building (E3-CryoFold's first stage at small scale): a 3D
//! U-Net of a few 10⁵ parameters on the map resampled to 1 Å and normalised
//! ([`super::prepare`]), predicting for every voxel the log-odds that a Cα lies within half a
//! voxel of it, the vector to the next Cα along the chain (Å, N → C) and the residue type's
//! log-probabilities.
//!
//! Two levels of stride-2 convolutions down and transposed convolutions up, with skip
//! connections; GroupNorm (not BatchNorm: training runs data-parallel graphs) and ReLU.
//! Inference runs in overlapping tiles so any map size fits in bounded memory.

use burn::module::Module;
use burn::nn::conv::{Conv3d, Conv3dConfig, ConvTranspose3d, ConvTranspose3dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig3d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

/// Residue types the network tells apart, in this order (one-letter codes).
pub const AMINO_ACIDS: &str = "ACDEFGHIKLMNPQRSTVWY";
pub const AA_CLASSES: usize = 20;
/// Output channels: Cα log-odds, the vector to the next Cα (3), residue-type logits.
pub const OUTPUTS: usize = 1 + 3 + AA_CLASSES;
/// The next-Cα vector is predicted in units of this many Å (the Cα–Cα distance).
pub const NEXT_SCALE_ANGSTROM: f32 = 3.8;

/// The network's shape; saved beside the weights.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetShape {
    /// Channels at 1, 2 and 4 Å.
    pub channels: [usize; 3],
}

impl Default for NetShape {
    fn default() -> Self {
        Self { channels: [16, 32, 64] }
    }
}

#[derive(Module, Debug)]
struct Block {
    first: Conv3d,
    first_norm: GroupNorm,
    second: Conv3d,
    second_norm: GroupNorm,
}

fn conv3(input: usize, output: usize, device: &Device) -> Conv3d {
    Conv3dConfig::new([input, output], [3, 3, 3])
        .with_padding(PaddingConfig3d::Same)
        .init(device)
}

fn norm(channels: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new((channels / 8).max(1), channels).init(device)
}

impl Block {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        Self {
            first: conv3(input, output, device),
            first_norm: norm(output, device),
            second: conv3(output, output, device),
            second_norm: norm(output, device),
        }
    }

    fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let x = relu(self.first_norm.forward(self.first.forward(x)));
        relu(self.second_norm.forward(self.second.forward(x)))
    }
}

/// The U-Net. Input `[batch, 1, d, h, w]` with every side a multiple of 4; output
/// `[batch, OUTPUTS, d, h, w]`.
#[derive(Module, Debug)]
pub struct CaNet {
    encode0: Block,
    down1: Conv3d,
    encode1: Block,
    down2: Conv3d,
    bottom: Block,
    up1: ConvTranspose3d,
    decode1: Block,
    up0: ConvTranspose3d,
    decode0: Block,
    head: Conv3d,
}

impl CaNet {
    pub fn new(shape: &NetShape, device: &Device) -> Self {
        let [c0, c1, c2] = shape.channels;
        let down = |input: usize, output: usize| {
            Conv3dConfig::new([input, output], [3, 3, 3])
                .with_stride([2, 2, 2])
                .with_padding(PaddingConfig3d::Explicit(1, 1, 1))
                .init(device)
        };
        let up = |input: usize, output: usize| {
            ConvTranspose3dConfig::new([input, output], [2, 2, 2])
                .with_stride([2, 2, 2])
                .init(device)
        };
        Self {
            encode0: Block::new(1, c0, device),
            down1: down(c0, c1),
            encode1: Block::new(c1, c1, device),
            down2: down(c1, c2),
            bottom: Block::new(c2, c2, device),
            up1: up(c2, c1),
            decode1: Block::new(2 * c1, c1, device),
            up0: up(c1, c0),
            decode0: Block::new(2 * c0, c0, device),
            head: Conv3dConfig::new([c0, OUTPUTS], [1, 1, 1]).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let e0 = self.encode0.forward(x);
        let e1 = self.encode1.forward(relu(self.down1.forward(e0.clone())));
        let b = self.bottom.forward(relu(self.down2.forward(e1.clone())));
        let d1 = self
            .decode1
            .forward(Tensor::cat(vec![relu(self.up1.forward(b)), e1], 1));
        let d0 = self
            .decode0
            .forward(Tensor::cat(vec![relu(self.up0.forward(d1)), e0], 1));
        self.head.forward(d0)
    }

    /// Parameters of the network.
    pub fn parameter_count(&self) -> usize {
        self.num_params()
    }
}

/// The network's outputs on a grid (x fastest): the Cα log-odds at every voxel, and the other
/// channels (next-Cα vector, residue-type logits) only where the log-odds reach
/// `keep_logit`, so a 300³ map costs one float per voxel rather than [`OUTPUTS`].
#[derive(Clone, Debug, Default)]
pub struct Prediction {
    pub dims: [usize; 3],
    pub logit: Vec<f32>,
    pub others: std::collections::HashMap<usize, [f32; OUTPUTS - 1]>,
}

impl Prediction {
    pub fn voxels(&self) -> usize {
        self.dims.iter().product()
    }

    /// Output channel `c` (≥ 1) at `voxel`, 0 where it was not kept.
    pub fn at(&self, c: usize, voxel: usize) -> f32 {
        self.others.get(&voxel).map_or(0.0, |o| o[c - 1])
    }
}

/// Inference runs in tiles of at most this many voxels of core per axis, each with a margin
/// (thrown away) of [`TILE_MARGIN`] voxels; the network's receptive field reaches ~12 voxels.
pub const MAX_TILE_CORE: usize = 80;
pub const TILE_MARGIN: usize = 8;

/// The tiles along an axis of `n` voxels: (first core voxel, core length), and the tile length
/// (core + margins, rounded up to a multiple of 4).
fn tiles_along(n: usize) -> (Vec<(usize, usize)>, usize) {
    let count = n.div_ceil(MAX_TILE_CORE).max(1);
    let core = n.div_ceil(count);
    let tile = (core + 2 * TILE_MARGIN).div_ceil(4) * 4;
    ((0..count).map(|k| (k * core, core.min(n - k * core))).collect(), tile)
}

/// Runs `net` over a whole volume (`values`, x fastest, `dims` voxels) in overlapping tiles;
/// `progress` gets the fraction done and returns false to stop (None is returned then).
pub fn predict(
    net: &CaNet,
    values: &[f32],
    dims: [usize; 3],
    keep_logit: f32,
    device: &Device,
    progress: &mut dyn FnMut(f32) -> bool,
) -> Option<Prediction> {
    let axes = [tiles_along(dims[0]), tiles_along(dims[1]), tiles_along(dims[2])];
    let size = [axes[0].1, axes[1].1, axes[2].1];
    let total = axes[0].0.len() * axes[1].0.len() * axes[2].0.len();
    let voxels: usize = dims.iter().product();
    let tile_voxels: usize = size.iter().product();
    let mut logit = vec![0f32; voxels];
    let mut others = std::collections::HashMap::new();
    let mut done = 0;
    let inside = |p: [isize; 3]| (0..3).all(|a| p[a] >= 0 && (p[a] as usize) < dims[a]);
    for &(z0, zn) in &axes[2].0 {
        for &(y0, yn) in &axes[1].0 {
            for &(x0, xn) in &axes[0].0 {
                if !progress(done as f32 / total as f32) {
                    return None;
                }
                // The tile starts a margin before its core; voxels outside the volume read 0.
                let origin = [x0, y0, z0].map(|c| c as isize - TILE_MARGIN as isize);
                let mut tile = vec![0f32; tile_voxels];
                for k in 0..size[2] {
                    for j in 0..size[1] {
                        for i in 0..size[0] {
                            let p = [origin[0] + i as isize, origin[1] + j as isize, origin[2] + k as isize];
                            if inside(p) {
                                let [px, py, pz] = p.map(|c| c as usize);
                                tile[i + size[0] * (j + size[1] * k)] = values[px + dims[0] * (py + dims[1] * pz)];
                            }
                        }
                    }
                }
                // burn's layout is [batch, channel, d, h, w] with w fastest: d = z, w = x.
                let input = Tensor::<5>::from_data(TensorData::new(tile, [1, 1, size[2], size[1], size[0]]), device);
                let result = net.forward(input).into_data().try_to_vec::<f32>().unwrap_or_default();
                for k in TILE_MARGIN..TILE_MARGIN + zn {
                    for j in TILE_MARGIN..TILE_MARGIN + yn {
                        for i in TILE_MARGIN..TILE_MARGIN + xn {
                            let p = [origin[0] + i as isize, origin[1] + j as isize, origin[2] + k as isize];
                            if !inside(p) {
                                continue;
                            }
                            let [px, py, pz] = p.map(|c| c as usize);
                            let at = px + dims[0] * (py + dims[1] * pz);
                            let from = i + size[0] * (j + size[1] * k);
                            let value = |c: usize| result.get(c * tile_voxels + from).copied().unwrap_or(0.0);
                            logit[at] = value(0);
                            if logit[at] >= keep_logit {
                                others.insert(at, std::array::from_fn(|c| value(c + 1)));
                            }
                        }
                    }
                }
                done += 1;
            }
        }
    }
    progress(1.0);
    Some(Prediction { dims, logit, others })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_keeps_the_grid_and_has_a_few_hundred_thousand_parameters() {
        let device = Device::flex();
        let net = CaNet::new(&NetShape::default(), &device);
        let params = net.parameter_count();
        assert!((200_000..800_000).contains(&params), "{params}");
        let x = Tensor::<5>::zeros([1, 1, 8, 12, 16], &device);
        assert_eq!(net.forward(x).dims(), [1, OUTPUTS, 8, 12, 16]);
        // Tiled inference on a volume that is not a multiple of the tile.
        let dims = [37, 20, 9];
        let values: Vec<f32> = (0..dims.iter().product::<usize>())
            .map(|i| (i % 7) as f32 * 0.1)
            .collect();
        let prediction = predict(&net, &values, dims, f32::NEG_INFINITY, &device, &mut |_| true).expect("prediction");
        assert_eq!(prediction.logit.len(), values.len());
        assert_eq!(
            prediction.others.len(),
            values.len(),
            "every voxel kept below the lowest threshold"
        );
        assert!(prediction.logit.iter().all(|v| v.is_finite()));
    }

    /// Speed of one training step and of inference on this machine (not a benchmark of record:
    /// `cargo test --lib build::network -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn time_the_network() {
        use burn::optim::{AdamConfig, GradientsParams};
        for channels in [[8, 16, 32], [16, 32, 64]] {
            let device = Device::flex().autodiff();
            let mut net = CaNet::new(&NetShape { channels }, &device);
            let mut optim = AdamConfig::new().init();
            for size in [32usize, 48] {
                let started = std::time::Instant::now();
                let steps = 3;
                for _ in 0..steps {
                    let x = Tensor::<5>::random(
                        [2, 1, size, size, size],
                        burn::tensor::Distribution::Normal(0.0, 1.0),
                        &device,
                    );
                    let loss = net.forward(x).powf_scalar(2.0).mean();
                    let grads = GradientsParams::from_grads(loss.backward(), &net);
                    net = optim.step(1e-3, net, grads);
                }
                eprintln!(
                    "channels {channels:?}: training step (batch 2 × {size}³) {:.2} s",
                    started.elapsed().as_secs_f64() / steps as f64
                );
            }
            let inference = CaNet::new(&NetShape { channels }, &Device::flex());
            let dims = [72, 72, 72];
            let values = vec![0.1f32; dims.iter().product()];
            let started = std::time::Instant::now();
            predict(&inference, &values, dims, 0.0, &Device::flex(), &mut |_| true);
            eprintln!(
                "channels {channels:?}: inference on 72³ {:.2} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
}
