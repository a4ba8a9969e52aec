//! Training data for the learned combiner (`cryoforge flex-train`): maps cryoforge simulates from
//! X-ray chains of the model-building data set with their own B-factors (each atom the
//! Coulomb potential of its element, [`electron_scattering`], blurred by its B on top of the
//! resolution's Gaussian), at 3–5 Å with noise low-passed at the resolution
//! (SNR 0.5–5), each estimated by `estimate_flexibility` on the chain with flat B; the truth is
//! every residue's mean B as RMSF. Families of `scripts/flex_targets.py`'s test proteins (LDH,
//! trypsin, cytochromes, ubiquitin, crambin, 3MHT, adenylate kinase) are left out.

use super::combiner::{Combiner, CombinerExample, features, train_combiner};
use super::{EIGHT_PI2, FlexOptions, estimate_flexibility};
use crate::build::train::{TrainingChain, with_filtered_noise};
use crate::formats::elements::electron_scattering;
use crate::maps::DensityMap;
use crate::maps::density::{GaussianAtoms, SIGMA_PER_RESOLUTION, molmap_grid, simulate};
use crate::numeric::rng::Rng;

/// Sources whose families the combiner never trains on (the flexibility test set).
pub const HELD_OUT_SOURCES: &[&str] = &[
    "ldh/",
    "trypsins/",
    "cytochromes/",
    "pdb1ubi",
    "pdb1ejg",
    "pdb3mht",
    "1ake",
    "adk",
];

/// The chains a combiner may train on: X-ray chains (B-factors that vary) of families with no
/// held-out member.
pub fn training_chains(chains: &[TrainingChain]) -> Vec<&TrainingChain> {
    let held_out_families: std::collections::HashSet<usize> = chains
        .iter()
        .filter(|c| HELD_OUT_SOURCES.iter().any(|h| c.source.to_lowercase().contains(h)))
        .map(|c| c.family)
        .collect();
    chains
        .iter()
        .filter(|c| !held_out_families.contains(&c.family))
        .filter(|c| {
            let n = c.b_factors.len().max(1) as f32;
            let mean = c.b_factors.iter().sum::<f32>() / n;
            let sd = (c.b_factors.iter().map(|b| (b - mean).powi(2)).sum::<f32>() / n).sqrt();
            sd > 2.0 && c.alphas.len() >= 40
        })
        .collect()
}

/// One simulated case of `chain`, estimated: the combiner's features and the truth.
pub fn training_example(chain: &TrainingChain, rng: &mut Rng) -> Option<CombinerExample> {
    let resolution = 3.0 + 2.0 * rng.uniform() as f32;
    let snr = 0.5 * 10f64.powf(rng.uniform());
    let sigma_res = SIGMA_PER_RESOLUTION * resolution;
    // The resolution's σ is a carbon's width (molmap's convention); other elements are wider or
    // narrower by their form factors.
    let carbon = electron_scattering(6).width_b;
    let potential: Vec<_> = chain
        .amplitudes
        .iter()
        .map(|&z| electron_scattering(z as u32))
        .collect();
    let atoms = GaussianAtoms {
        positions: chain.positions.clone(),
        amplitudes: potential.iter().map(|p| p.amplitude).collect(),
        sigmas: chain
            .b_factors
            .iter()
            .zip(&potential)
            .map(|(b, p)| {
                (sigma_res * sigma_res + (b + p.width_b - carbon) / EIGHT_PI2 as f32)
                    .max(0.01)
                    .sqrt()
            })
            .collect(),
    };
    let grid = molmap_grid(&chain.positions, resolution);
    let signal = simulate(&grid, &atoms);
    let values = with_filtered_noise(&grid, &signal, resolution, snr, rng);
    let map = DensityMap {
        grid,
        values,
        meta: Default::default(),
    };
    let mut model = chain.structure.clone();
    model.atoms.iter_mut().for_each(|a| a.b_factor = 20.0);
    // The estimators the combiner reads, without a bundled combiner's own column.
    let mut options = FlexOptions::new(resolution);
    options.learned = false;
    let flex = estimate_flexibility(&map, None, &model, &options, &mut |_| true).ok()?;
    let log_rmsf = flex
        .residues
        .iter()
        .map(|r| {
            let b =
                r.atoms.iter().map(|&i| chain.structure.atoms[i].b_factor).sum::<f32>() / r.atoms.len().max(1) as f32;
            (3.0 * b.max(1.0) / EIGHT_PI2 as f32).sqrt().ln()
        })
        .collect();
    Some(CombinerExample {
        features: features(&flex, &model, &map),
        log_rmsf,
    })
}

/// What training the combiner did, with its ablation on held-out families.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CombinerReport {
    pub command: String,
    pub usable_chains: usize,
    pub train_maps: usize,
    pub validation_maps: usize,
    pub loss_per_epoch: Vec<f64>,
    /// Mean per-protein Pearson with the true RMSF on the validation maps: the learned column
    /// and the map estimate alone.
    pub validation_pearson_learned: f64,
    pub validation_pearson_map_b: f64,
    pub seconds: f64,
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().max(1) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt().max(1e-12)
}

/// Simulates `maps` cases from the usable chains of `chains`, trains the combiner on the
/// families whose id ends in anything but 3 and validates on those that do. `progress` gets the
/// number of maps made.
pub fn train_on_dataset(
    chains: &[TrainingChain],
    maps: usize,
    epochs: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize),
) -> Result<(Combiner, CombinerReport), String> {
    let started = std::time::Instant::now();
    let usable = training_chains(chains);
    if usable.is_empty() {
        return Err("no X-ray chain outside the held-out families".into());
    }
    let validates = |family: usize| family % 10 == 3;
    let mut rng = Rng::new(seed);
    let (mut train, mut validation) = (Vec::new(), Vec::new());
    for done in 0..maps {
        let chain = usable[rng.below(usable.len())];
        if let Some(example) = training_example(chain, &mut rng) {
            if validates(chain.family) {
                validation.push(example);
            } else {
                train.push(example);
            }
        }
        progress(done + 1);
    }
    let (net, history) = train_combiner(&train, epochs, seed);
    let device = burn::tensor::Device::flex();
    let (mut learned, mut baseline) = (Vec::new(), Vec::new());
    for e in &validation {
        let truth: Vec<f64> = e.log_rmsf.iter().map(|v| f64::from(v.exp())).collect();
        let map_only: Vec<f64> = e.features.iter().map(|f| f64::from(f[1].exp())).collect();
        learned.push(pearson(&net.predict(&e.features, &device), &truth));
        baseline.push(pearson(&map_only, &truth));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let report = CombinerReport {
        command: String::new(),
        usable_chains: usable.len(),
        train_maps: train.len(),
        validation_maps: validation.len(),
        loss_per_epoch: history,
        validation_pearson_learned: mean(&learned),
        validation_pearson_map_b: mean(&baseline),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((net, report))
}

/// Saves a combiner's weights to `path` through a temporary file.
pub fn save_combiner(net: &Combiner, path: &std::path::Path) -> std::io::Result<()> {
    use burn::module::Module;
    let tmp = path.with_extension("bpk.tmp");
    net.clone()
        .save_file(&tmp)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path)
}
