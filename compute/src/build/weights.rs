//! The Cα network's weights: the bundled ones (`assets/build/ca_net.bpk` with its shape in
//! `ca_net.json`, made by `cryoforge build train`; `assets/build/README.md` says from what) or a
//! file the user trained.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;

use super::BuildError;
use super::network::{CaNet, NetShape};

#[allow(
    clippy::large_include_file,
    reason = "the trained network (1.9 MB) ships inside cryoforge so a build needs no download"
)]
const BUNDLED_WEIGHTS: &[u8] = include_bytes!("../../../assets/build/ca_net.bpk");
const BUNDLED_SHAPE: &str = include_str!("../../../assets/build/ca_net.json");

/// The network's shape and where its weights came from, as saved beside them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WeightsRecord {
    pub shape: NetShape,
    /// The training command and data, for the record.
    #[serde(default)]
    pub trained_with: String,
}

/// Whether cryoforge was built with trained weights.
pub fn bundled_available() -> bool {
    !BUNDLED_WEIGHTS.is_empty() && serde_json::from_str::<WeightsRecord>(BUNDLED_SHAPE).is_ok()
}

/// The bundled network, on the CPU.
pub fn bundled() -> Result<CaNet, BuildError> {
    let device = &Device::flex();
    if !bundled_available() {
        return Err(BuildError::Weights(
            "this build of cryoforge has no trained weights (assets/build/ca_net.bpk is empty); train them with \
             `cryoforge build train` and give them with --weights, or build with --likelihood density"
                .into(),
        ));
    }
    let record: WeightsRecord =
        serde_json::from_str(BUNDLED_SHAPE).map_err(|e| BuildError::Weights(format!("ca_net.json: {e}")))?;
    let bytes = burn::tensor::Bytes::from_bytes_vec(BUNDLED_WEIGHTS.to_vec());
    let module_record =
        burn::store::ModuleRecord::from_bytes(bytes).map_err(|e| BuildError::Weights(format!("ca_net.bpk: {e}")))?;
    CaNet::new(&record.shape, device)
        .try_load_record(module_record)
        .map_err(|e| BuildError::Weights(format!("ca_net.bpk: {e}")))
}

/// The path of the shape record saved beside weights at `path` (`x.bpk` → `x.json`).
pub fn record_path(path: &Path) -> std::path::PathBuf {
    path.with_extension("json")
}

/// A network trained by `cryoforge build train` (`path` and its `.json` beside it), on the CPU.
pub fn load(path: &Path) -> Result<CaNet, BuildError> {
    load_on(path, &Device::flex())
}

/// The record saved beside weights at `path`.
pub fn load_record(path: &Path) -> Result<WeightsRecord, BuildError> {
    let shape_path = record_path(path);
    let text = std::fs::read_to_string(&shape_path)
        .map_err(|e| BuildError::Weights(format!("{}: {e}", shape_path.display())))?;
    serde_json::from_str(&text).map_err(|e| BuildError::Weights(format!("{}: {e}", shape_path.display())))
}

/// As [`load`], on `device` (an autodiff device to train on from these weights).
pub fn load_on(path: &Path, device: &Device) -> Result<CaNet, BuildError> {
    let record = load_record(path)?;
    CaNet::new(&record.shape, device)
        .try_load_file(path)
        .map_err(|e| BuildError::Weights(format!("{}: {e}", path.display())))
}

/// Saves `net` to `path` (and its record beside it), each through a temporary file.
pub fn save(net: &CaNet, record: &WeightsRecord, path: &Path) -> std::io::Result<()> {
    let tmp = path.with_extension("bpk.tmp");
    net.clone()
        .save_file(&tmp)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path)?;
    let json = serde_json::to_string_pretty(record).map_err(std::io::Error::other)?;
    crate::io::write_atomically(&record_path(path), |w| w.write_all(json.as_bytes()))
        .map_err(|e| std::io::Error::other(e.to_string()))
}
