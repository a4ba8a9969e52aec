//! The heterogeneity explorer (the CryoDECO method, docs/science.md §4, with cryoDRGN's training
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
pub mod error;
pub mod explore;
pub mod export;
pub mod model;
pub mod pretrain;
pub mod prior;
mod run;
pub mod states;
mod train;
mod trained;

pub use data::HeteroData;
pub use error::{HeteroError, HeteroResult};
pub use model::{HeteroNet, Network, NetworkShape};
pub use run::{
    CONFIG_FILE, DECODER_FREQUENCY, EncoderStart, HeteroOptions, LATENTS_FILE, LEARNING_RATE, OPTIMIZER_FILE,
    RunConfig, RunState, STATE_FILE, TEMPLATES, WEIGHTS_FILE,
};
pub use train::{HeteroProgress, TrainOutcome, train};
pub use trained::{Trained, embed};

#[cfg(test)]
mod tests {
    use crate::formats::npy::{read_f32_array, write_f32_array};

    #[test]
    fn npy_round_trip() {
        let dir = std::env::temp_dir().join(format!("cryoforge-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("z.npy");
        let values: Vec<f32> = (0..12).map(|v| v as f32 * 0.5).collect();
        write_f32_array(&path, &values, &[4, 3]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize) % 64, 0);
        assert_eq!(read_f32_array(&path).unwrap(), (values, 4, 3));
        std::fs::remove_dir_all(&dir).ok();
    }
}
