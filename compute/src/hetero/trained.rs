//! A trained run's network on the inference device: the latent of every particle ([`embed`])
//! and the volume at any latent point ([`Trained::volume`]).

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use rustfft::num_complex::Complex32;

use super::error::{HeteroError, HeteroResult};
use super::run::{LATENTS_FILE, RunConfig, RunState, STATE_FILE, WEIGHTS_FILE, load_weights, read_json};
use super::{HeteroData, Network};
use crate::maps::{DensityMap, MapGrid};

/// A trained network, with what is needed to decode volumes.
#[derive(Clone, Debug)]
pub struct Trained {
    pub network: Network,
    pub config: RunConfig,
}

impl Trained {
    /// Loads a run's latest weights onto the inference device.
    pub fn load(run: &Path) -> HeteroResult<Self> {
        let config = RunConfig::read(run)?;
        let network = load_weights(Network::new(&config.shape, &Device::flex()), &run.join(WEIGHTS_FILE))?;
        Ok(Self { network, config })
    }

    pub fn state(run: &Path) -> HeteroResult<RunState> {
        read_json(&run.join(STATE_FILE))
    }

    /// The latents of a run (the latest `z.npy`): values row-major, and zdim.
    pub fn latents(run: &Path) -> HeteroResult<(Vec<f32>, usize)> {
        let (values, _, cols) = crate::formats::npy::read_f32_array(&run.join(LATENTS_FILE))?;
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
        crate::numeric::fft::fft3_in_place([d; 3], &mut grid, true);
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

/// Latent means of every particle of `data`, row-major [N, zdim]. `on_chunk` hears how many
/// are done and returns false to stop.
pub fn embed(network: &Network, data: &HeteroData, on_chunk: &mut dyn FnMut(usize) -> bool) -> HeteroResult<Vec<f32>> {
    let mut out = Vec::with_capacity(data.len() * network.shape.zdim);
    let all: Vec<usize> = (0..data.len()).collect();
    for chunk in all.chunks(256) {
        let batch = data.batch(chunk)?;
        let (mean, _) = network.encode(&batch, None);
        out.extend(mean.into_data().try_to_vec::<f32>()?);
        if !on_chunk(out.len() / network.shape.zdim) {
            return Err(HeteroError::Cancelled("cancelled"));
        }
    }
    Ok(out)
}
