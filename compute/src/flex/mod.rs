//! Per-residue flexibility (RMSF, Å) from a map and its model: the CryoProt row.
//!
//! Each estimator is reported on its own and then combined:
//! 1. `map_b`: one B-factor per residue refined against the map with the density kernel's width
//!    gradient ([`bfactor`]); the blur every residue shares (the resolution's) is taken out, and
//!    B becomes RMSF by B = 8π²·RMSF²/3.
//! 2. `local_resolution` (with half maps): the windowed half-map FSC at each Cα
//!    ([`local_resolution`]).
//! 3. `gnm` and `contact`: the Gaussian network model's fluctuations and the inverse weighted
//!    contact number of the Cα, from the model alone ([`network`]).
//!
//! The map-free and local-resolution columns carry relative values; each is put on the map
//! estimate's scale in Å (one factor, least squares through the origin) so that the columns can
//! be compared side by side. The combined RMSF is a weighted mean of the columns with the weights
//! of [`COMBINER`].

pub mod bfactor;
pub mod combiner;
pub mod local_resolution;
pub mod network;
mod output;
pub mod training;

use crate::formats::elements::electron_scattering;
use crate::formats::model::Structure;
use crate::maps::DensityMap;
use crate::maps::density::GaussianAtoms;
use crate::maps::tools::crop_around;
use bfactor::{BRefineOptions, EIGHT_PI2, fraction_inside, refine_b_factors};
use local_resolution::{LocalResolutionOptions, local_resolution};
use network::{GNM_CUTOFF, gnm_fluctuations, weighted_contact_number};

/// The combiner's weights per estimator column (those missing from a run drop out). The learned
/// combiner's column is reported beside them and is the combined value only when
/// [`FlexOptions::combine_learned`] asks: measured against `map_b` alone it gains at 4 Å and loses
/// at 3 Å (docs/science.md §4).
/// Measured by `scripts/flex_targets.sh` on its training families (see docs/science.md §6).
pub const COMBINER: &[(&str, f64)] = &[
    ("map_b", 1.0),
    ("local_resolution", 0.0),
    ("gnm", 0.0),
    ("contact", 0.0),
];

/// Why a flexibility estimate cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum FlexError {
    #[error("the model has no protein residues (amino acids with a CA atom)")]
    NoProtein,
    #[error(
        "the model lies outside the map: {inside:.0}% of its Cα atoms are inside the map's box (at least half must be)"
    )]
    OutsideMap { inside: f64 },
    #[error("the map holds no density around the model (it is flat inside the model's zone)")]
    EmptyDensity,
    #[error("the half maps are on different grids ({0})")]
    HalfMapGrids(String),
    #[error("cancelled before the B-factor refinement finished")]
    Cancelled,
}

/// How flexibility is estimated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlexOptions {
    pub resolution_angstrom: f32,
    pub b: BRefineOptions,
    pub gnm_cutoff: f64,
    /// Add the learned combiner's column (when cryoforge carries trained weights).
    pub learned: bool,
    /// Make the learned column the combined value (off by default: see [`COMBINER`]).
    pub combine_learned: bool,
}

impl FlexOptions {
    pub fn new(resolution_angstrom: f32) -> Self {
        Self {
            resolution_angstrom,
            b: BRefineOptions::new(resolution_angstrom),
            gnm_cutoff: GNM_CUTOFF,
            learned: true,
            combine_learned: false,
        }
    }
}

/// One protein residue of the model.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FlexResidue {
    pub chain_id: String,
    pub residue_number: i32,
    pub insertion_code: String,
    pub residue_name: String,
    /// Indices into the structure's atoms.
    #[serde(skip)]
    pub atoms: Vec<usize>,
}

/// One estimator's per-residue values: RMSF-like in Å (`rmsf`) and as computed (`raw`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Estimator {
    pub name: String,
    pub description: String,
    pub rmsf: Vec<f64>,
    pub raw: Vec<f64>,
}

/// The flexibility of every protein residue.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Flexibility {
    pub residues: Vec<FlexResidue>,
    /// The combined RMSF (Å) per residue.
    pub rmsf: Vec<f64>,
    pub estimators: Vec<Estimator>,
    /// How the combined value is made, in words.
    pub combiner: String,
    pub resolution_angstrom: f32,
    /// The B-factor refinement: correlation with the map before and after, the shared blur.
    pub correlation_start: f64,
    pub correlation: f64,
    pub blur_b: f64,
    pub zone_voxels: usize,
    /// L-BFGS iterations the B-factor refinement took.
    pub iterations: usize,
    pub seconds: f64,
}

impl Flexibility {
    /// One estimator's column by name.
    pub fn estimator(&self, name: &str) -> Option<&Estimator> {
        self.estimators.iter().find(|e| e.name == name)
    }
}

/// The protein residues of `structure` (those with a Cα), their heavy atoms, in file order.
pub fn protein_residues(structure: &Structure) -> Vec<FlexResidue> {
    let mut out: Vec<FlexResidue> = Vec::new();
    let mut last: Option<(String, i32, String)> = None;
    for (i, a) in structure.atoms.iter().enumerate() {
        if a.is_hydrogen() {
            continue;
        }
        let key = (a.chain_id.clone(), a.residue_number, a.insertion_code.clone());
        if last.as_ref() != Some(&key) {
            out.push(FlexResidue {
                chain_id: a.chain_id.clone(),
                residue_number: a.residue_number,
                insertion_code: a.insertion_code.clone(),
                residue_name: a.residue_name.clone(),
                atoms: Vec::new(),
            });
            last = Some(key);
        }
        if let Some(r) = out.last_mut() {
            r.atoms.push(i);
        }
    }
    out.retain(|r| {
        !structure.atoms[r.atoms[0]].hetero && r.atoms.iter().any(|&i| structure.atoms[i].is_alpha_carbon())
    });
    out
}

/// An amino-acid atom's distance from the main chain in bonds, by its name's remoteness letter
/// (N, CA, C, O, OXT 0; CB 1; CG, OG1, SG 2; CD 3; CE 4; CZ, NZ 5; CH, NH1 6).
fn side_chain_depth(name: &str) -> f32 {
    if matches!(name, "N" | "CA" | "C" | "O" | "OXT") {
        return 0.0;
    }
    match name.chars().nth(1) {
        Some('B') => 1.0,
        Some('G') => 2.0,
        Some('D') => 3.0,
        Some('E') => 4.0,
        Some('Z') => 5.0,
        Some('H') => 6.0,
        _ => 0.0,
    }
}

/// The atoms the B-factor refinement sees and the b each one shares: the protein residues'
/// heavy atoms, one b per residue, then every other heavy atom of the model (nucleic acids,
/// ligands, waters), one b per residue it belongs to.
struct BGroups {
    /// Structure atom indices.
    atoms: Vec<usize>,
    /// Per atom: its b's index, its protein residue (`usize::MAX` for the others), its depth.
    group_of: Vec<usize>,
    residue_of: Vec<usize>,
    depth: Vec<f32>,
    count: usize,
}

impl BGroups {
    fn new(structure: &Structure, residues: &[FlexResidue]) -> Self {
        let mut g = BGroups {
            atoms: Vec::new(),
            group_of: Vec::new(),
            residue_of: Vec::new(),
            depth: Vec::new(),
            count: residues.len(),
        };
        let mut taken = vec![false; structure.atoms.len()];
        for (r, residue) in residues.iter().enumerate() {
            for &i in &residue.atoms {
                g.atoms.push(i);
                g.group_of.push(r);
                g.residue_of.push(r);
                g.depth.push(side_chain_depth(&structure.atoms[i].name));
                taken[i] = true;
            }
        }
        let mut last = None;
        for (i, a) in structure.atoms.iter().enumerate() {
            if taken[i] || a.is_hydrogen() {
                continue;
            }
            let key = (&a.chain_id, a.residue_number, &a.insertion_code, &a.residue_name);
            if last != Some(key) {
                g.count += 1;
                last = Some(key);
            }
            g.atoms.push(i);
            g.group_of.push(g.count - 1);
            g.residue_of.push(usize::MAX);
            g.depth.push(0.0);
        }
        g
    }
}

/// The pairs of residues whose log b the refinement keeps close: chain neighbours (weight 1)
/// and residues in contact (Cα within [`bfactor::CONTACT_SMOOTHING_ANGSTROM`], weight
/// `contact`). B-factors vary smoothly in space as well as along the chain; at 4 Å the contact
/// pairs add 0.008 to the per-protein Pearson (docs/science.md §4).
fn smoothing_pairs(residues: &[FlexResidue], ca: &[[f32; 3]], contact: f64) -> Vec<(usize, usize, f64)> {
    let d2 = |p: usize, q: usize| (0..3).map(|k| (ca[p][k] - ca[q][k]).powi(2)).sum::<f32>();
    let mut pairs: Vec<(usize, usize, f64)> = (1..residues.len())
        .filter(|&r| residues[r].chain_id == residues[r - 1].chain_id && d2(r - 1, r) < 4.5 * 4.5)
        .map(|r| (r - 1, r, 1.0))
        .collect();
    if contact > 0.0 {
        let all: Vec<usize> = (0..ca.len()).collect();
        let cells = crate::geometry::CellList::new(ca, &all, f64::from(bfactor::CONTACT_SMOOTHING_ANGSTROM));
        let chained: std::collections::HashSet<(usize, usize)> = pairs.iter().map(|&(p, q, _)| (p, q)).collect();
        for p in 0..ca.len() {
            cells.for_each_near(ca, p, |q, _| {
                if q > p && !chained.contains(&(p, q)) {
                    pairs.push((p, q, contact));
                }
            });
        }
    }
    pairs
}

/// Puts `values` on `reference`'s scale: the factor minimising Σ (f·v − r)².
fn scaled_to(values: &[f64], reference: &[f64]) -> Vec<f64> {
    let vv: f64 = values.iter().map(|v| v * v).sum();
    let vr: f64 = values.iter().zip(reference).map(|(v, r)| v * r).sum();
    let f = if vv > 0.0 { vr / vv } else { 0.0 };
    values.iter().map(|v| f * v).collect()
}

/// How far an estimate has come: the fraction done, what it is doing, and the B-factor
/// refinement's correlation with the map while it runs.
#[derive(Clone, Copy, Debug)]
pub struct FlexProgress<'a> {
    pub fraction: f64,
    pub message: &'a str,
    pub correlation: Option<f64>,
}

/// Estimates per-residue flexibility of `structure` (frame 0) in `map`, with the local
/// resolution of `half_maps` when given. `progress` is called as the work proceeds; false
/// cancels.
pub fn estimate_flexibility(
    map: &DensityMap,
    half_maps: Option<(&DensityMap, &DensityMap)>,
    structure: &Structure,
    options: &FlexOptions,
    progress: &mut dyn FnMut(FlexProgress<'_>) -> bool,
) -> Result<Flexibility, FlexError> {
    let started = std::time::Instant::now();
    let residues = protein_residues(structure);
    if residues.is_empty() {
        return Err(FlexError::NoProtein);
    }
    let frame = &structure.frames[0];
    let ca: Vec<[f32; 3]> = residues
        .iter()
        .map(|r| {
            let i = r
                .atoms
                .iter()
                .copied()
                .find(|&i| structure.atoms[i].is_alpha_carbon())
                .unwrap_or(r.atoms[0]);
            frame[i]
        })
        .collect();
    let inside = fraction_inside(&map.grid, &ca);
    if inside < 0.5 {
        return Err(FlexError::OutsideMap { inside: 100.0 * inside });
    }
    if let Some((a, b)) = half_maps
        && (a.grid.dims != b.grid.dims
            || a.grid.voxel_size_angstrom != b.grid.voxel_size_angstrom
            || a.grid.first_voxel_angstrom() != b.grid.first_voxel_angstrom())
    {
        return Err(FlexError::HalfMapGrids(format!(
            "{:?} voxels of {:?} Å from {:?} against {:?} of {:?} Å from {:?}",
            a.grid.dims,
            a.grid.voxel_size_angstrom,
            a.grid.first_voxel_angstrom(),
            b.grid.dims,
            b.grid.voxel_size_angstrom,
            b.grid.first_voxel_angstrom()
        )));
    }

    // 1. B-factors against the map, in the box around the model. Every other heavy atom of the
    // model (nucleic acids, ligands, waters) is in the density too, with a b of its own residue,
    // so that its density is not read as a stiffer protein residue next to it.
    let groups = BGroups::new(structure, &residues);
    let mut atoms = GaussianAtoms::default();
    for &i in &groups.atoms {
        atoms.positions.push(frame[i]);
        let potential = electron_scattering(structure.atoms[i].atomic_number());
        atoms.amplitudes.push(potential.amplitude);
        atoms.sigmas.push((potential.width_b / EIGHT_PI2 as f32).sqrt());
    }
    let padding = options.b.zone_radius() as f32 + 3.0;
    let cropped = crop_around(map, &atoms.positions, padding).ok_or(FlexError::OutsideMap { inside: 0.0 })?;
    let neighbours = smoothing_pairs(&residues, &ca, options.b.contact_smoothness);
    let iterations = options.b.iterations.max(1);
    let mut stopped = false;
    let mut fit = refine_b_factors(
        &cropped,
        &atoms,
        &groups.group_of,
        &groups.depth,
        groups.count,
        &neighbours,
        &options.b,
        &mut |iteration, cc| {
            let go = progress(FlexProgress {
                fraction: (0.85 * iteration as f64 / iterations as f64).min(0.85),
                message: &format!("B-factors against the map: iteration {iteration}, cc {cc:.3}"),
                correlation: Some(cc),
            });
            stopped |= !go;
            go
        },
    );
    if stopped {
        return Err(FlexError::Cancelled);
    }
    if fit.correlation_start == 0.0 && fit.correlation == 0.0 {
        return Err(FlexError::EmptyDensity);
    }
    // A protein residue's b is the mean over its atoms; the other atoms' b are not reported.
    fit.b = bfactor::mean_per(&fit.atom_b, &groups.residue_of, residues.len());
    fit.floor_b = bfactor::shared_floor(&fit.b, options.resolution_angstrom);
    let map_b = fit.flexibility_b();
    let map_rmsf: Vec<f64> = map_b.iter().map(|b| (3.0 * b / EIGHT_PI2).sqrt()).collect();
    let mut estimators = vec![Estimator {
        name: "map_b".into(),
        description: "per-residue B refined against the map, the shared blur taken out".into(),
        rmsf: map_rmsf.clone(),
        raw: fit.b.clone(),
    }];

    // 2. Local resolution from the half maps.
    if let Some((a, b)) = half_maps {
        let lr_options = LocalResolutionOptions::for_map(a, options.resolution_angstrom);
        let total = ca.len().max(1);
        let mut cancelled = false;
        let res = local_resolution(a, b, &ca, &lr_options, &mut |i| {
            let go = progress(FlexProgress {
                fraction: 0.85 + 0.1 * i as f64 / total as f64,
                message: "local resolution from the half maps",
                correlation: None,
            });
            cancelled |= !go;
            go
        });
        if cancelled {
            return Err(FlexError::Cancelled);
        }
        let known: Vec<f64> = res.iter().flatten().copied().collect();
        let fill = if known.is_empty() {
            f64::from(options.resolution_angstrom)
        } else {
            bfactor::percentile(&known, 0.5)
        };
        let raw: Vec<f64> = (0..ca.len())
            .map(|i| res.get(i).copied().flatten().unwrap_or(fill))
            .collect();
        estimators.push(Estimator {
            name: "local_resolution".into(),
            description: "local resolution (Å) of the half maps at the Cα (windowed FSC = 0.5)".into(),
            rmsf: scaled_to(&raw, &map_rmsf),
            raw,
        });
    }

    // 3. The model alone.
    let _ = progress(FlexProgress {
        fraction: 0.95,
        message: "elastic network and contacts",
        correlation: None,
    });
    let nodes: Vec<[f64; 3]> = ca.iter().map(|p| p.map(f64::from)).collect();
    let gnm = gnm_fluctuations(&nodes, options.gnm_cutoff);
    let gnm_rmsf: Vec<f64> = gnm.iter().map(|v| v.max(0.0).sqrt()).collect();
    estimators.push(Estimator {
        name: "gnm".into(),
        description: format!(
            "Gaussian network model of the Cα ({} Å cutoff), √ of the fluctuation",
            options.gnm_cutoff
        ),
        rmsf: scaled_to(&gnm_rmsf, &map_rmsf),
        raw: gnm,
    });
    let wcn = weighted_contact_number(&nodes);
    let inverse: Vec<f64> = wcn.iter().map(|w| 1.0 / w.max(1e-6)).collect();
    estimators.push(Estimator {
        name: "contact".into(),
        description: "inverse weighted contact number of the Cα (1 / Σ 1/r²)".into(),
        rmsf: scaled_to(&inverse, &map_rmsf),
        raw: wcn,
    });

    let mut flex = Flexibility {
        residues,
        rmsf: Vec::new(),
        estimators,
        combiner: String::new(),
        resolution_angstrom: options.resolution_angstrom,
        correlation_start: fit.correlation_start,
        correlation: fit.correlation,
        blur_b: fit.floor_b,
        zone_voxels: fit.zone_voxels,
        iterations: fit.iterations,
        seconds: 0.0,
    };
    // 4. The learned combiner, when cryoforge carries one and the options ask for it.
    if options.learned
        && let Some(net) = combiner::bundled()
    {
        let learned = net.predict(
            &combiner::features(&flex, structure, map),
            &burn::tensor::Device::flex(),
        );
        flex.estimators.push(Estimator {
            name: "learned".into(),
            description: "the learned combiner of the estimators, the density and the residue type".into(),
            rmsf: learned.clone(),
            raw: learned,
        });
    }
    (flex.rmsf, flex.combiner) = combine(&flex.estimators, options.combine_learned);
    flex.seconds = started.elapsed().as_secs_f64();
    Ok(flex)
}

/// The weighted mean of the estimators' RMSF columns with [`COMBINER`]'s weights.
/// With `learned` and a learned column, that column alone (it already weighs the others).
fn combine(estimators: &[Estimator], learned: bool) -> (Vec<f64>, String) {
    let n = estimators.first().map_or(0, |e| e.rmsf.len());
    if learned && let Some(e) = estimators.iter().find(|e| e.name == "learned") {
        return (e.rmsf.clone(), "the learned combiner".into());
    }
    let mut out = vec![0.0; n];
    let mut total = 0.0;
    let mut words = Vec::new();
    for (name, w) in COMBINER {
        if *w <= 0.0 {
            continue;
        }
        if let Some(e) = estimators.iter().find(|e| e.name == *name) {
            for (o, v) in out.iter_mut().zip(&e.rmsf) {
                *o += w * v;
            }
            total += w;
            words.push(format!("{w}×{name}"));
        }
    }
    if total > 0.0 {
        out.iter_mut().for_each(|o| *o /= total);
    }
    (out, format!("weighted mean: {}", words.join(" + ")))
}

#[cfg(test)]
mod tests;
