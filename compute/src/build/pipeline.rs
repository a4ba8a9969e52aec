//! The build, step by step: check the inputs, prepare the map, the Cα likelihood, candidates,
//! traces, threading, the backbone, refinement and confidence. Each step reports progress and
//! what it has found (candidates as points, traces as chains, then the model) so a viewer can
//! draw the build as it grows; a `false` from the progress callback stops the build after the
//! step at hand, with an `Input` error saying so.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;

use super::backbone::{PeptideLibrary, build_backbone};
use super::candidates::{Candidate, pick_candidates};
use super::graph::{RunScore, VoxelGrid, graph_trace};
use super::network::{AA_CLASSES, CaNet, NEXT_SCALE_ANGSTROM, predict};
use super::prepare::{HEAVY_ATOMS_PER_RESIDUE, PreparedMap, prepare};
use super::sequence::{ChainSequence, residue_name};
use super::thread::{Placement, thread};
use super::trace::{Fragment, trace, uncrowded};
use super::{BuildError, BuildInput, BuildOptions, Likelihood, Tracer};
use crate::formats::model::{Atom, Structure};
use crate::guided::guidance::{GuidanceOptions, MapGuidance};
use crate::guided::rama_prior::RamaPrior;
use crate::guided::relax::{RelaxOptions, RelaxReport, default_map_weight, relax};
use crate::guided::restraints::{RestraintOptions, Restraints};
use crate::guided::zone::mask_on_grid;
use crate::maps::DensityMap;
use crate::maps::density::{GaussianAtoms, GaussianOptions};
use crate::maps::local::{residue_correlations, residue_radius};
use crate::maps::scores::VOLUME_PER_HEAVY_ATOM_ANGSTROM3;
use crate::maps::tools::crop_around;
use crate::models::validation::{ValidationReport, Validator};

/// What a step has found, for a viewer to draw.
#[derive(Clone, Debug)]
pub enum BuildSnapshot {
    Candidates(Vec<[f32; 3]>),
    Traces(Vec<Vec<[f32; 3]>>),
    Model(Box<Structure>),
}

/// Progress of a build: the step, the fraction of the whole build done, and what the step found.
pub struct BuildProgress<'a> {
    pub stage: &'static str,
    pub fraction: f32,
    pub snapshot: Option<&'a BuildSnapshot>,
}

/// One built residue's report.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ResidueConfidence {
    pub chain_id: String,
    pub number: i32,
    pub name: String,
    /// Placed on the sequence by threading (false: named by the network's most likely type).
    pub threaded: bool,
    /// The Cα likelihood at the candidate (0–1) and the local map–model correlation.
    pub likelihood: f32,
    pub correlation: f32,
    /// The confidence written as the B-factor: 100 × the mean of the two (correlation ≥ 0).
    pub confidence: f32,
}

/// What a build made.
#[derive(Clone, Debug)]
pub struct BuildResult {
    pub model: Structure,
    pub likelihood: Likelihood,
    pub candidates: usize,
    /// The Cα candidates (position, probability) and the traced fragments (candidate indices).
    pub candidate_points: Vec<([f32; 3], f32)>,
    pub traced: Vec<Vec<usize>>,
    pub fragments: usize,
    pub residues: Vec<ResidueConfidence>,
    /// Correlation of the model's density with the map in the model's zone.
    pub correlation: f64,
    pub refinement: Option<RelaxReport>,
    pub validation: ValidationReport,
    /// Seconds per step, in order.
    pub seconds: Vec<(String, f64)>,
}

impl BuildResult {
    pub fn threaded_residues(&self) -> usize {
        self.residues.iter().filter(|r| r.threaded).count()
    }
}

fn stopped() -> BuildError {
    BuildError::Input("the build was cancelled".into())
}

/// Builds a model of `input.sequences` into `input.map`. `net` is the Cα network (required for
/// [`Likelihood::Network`]).
pub fn build_model(
    input: &BuildInput<'_>,
    options: &BuildOptions,
    net: Option<&CaNet>,
    progress: &mut dyn FnMut(BuildProgress<'_>) -> bool,
) -> Result<BuildResult, BuildError> {
    let mut seconds = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name: &str, clock: &mut Instant| {
        seconds.push((name.to_owned(), clock.elapsed().as_secs_f64()));
        *clock = Instant::now();
    };
    let resolution = options.resolution_angstrom;
    if !(resolution.is_finite() && resolution > 0.0) {
        return Err(BuildError::Input(format!(
            "the resolution must be positive, got {resolution}"
        )));
    }
    if input.sequences.is_empty() {
        return Err(BuildError::Input("no sequence given".into()));
    }
    let residues: usize = input.sequences.iter().map(|s| s.residues.len() * s.copies.max(1)).sum();
    let map = masked(input, options.mask_level)?;
    check_capacity(&map, residues)?;
    let mut report = |stage: &'static str, fraction: f32, snapshot: Option<&BuildSnapshot>| {
        progress(BuildProgress {
            stage,
            fraction,
            snapshot,
        })
    };
    if !report("preparing the map", 0.0, None) {
        return Err(stopped());
    }
    let prepared = prepare(&map, residues).ok_or(BuildError::FlatMap)?;
    lap("prepare", &mut clock);

    // The Cα likelihood (and, from the network, directions and residue types).
    let dims = prepared.grid.dims;
    let (probability, outputs) = match options.likelihood {
        Likelihood::Network => {
            let net = net.ok_or_else(|| BuildError::Weights("no network was given".into()))?;
            let device = Device::flex();
            // Directions and types are kept where a candidate can be (probability ≥ the floor).
            let floor = options.candidates.min_score.clamp(1e-6, 1.0 - 1e-6);
            let keep_logit = (floor / (1.0 - floor)).ln();
            let prediction = predict(net, &prepared.values, dims, keep_logit, &device, &mut |f| {
                report("predicting Cα", 0.05 + 0.45 * f, None)
            })
            .ok_or_else(stopped)?;
            let probability: Vec<f32> = prediction.logit.iter().map(|&l| 1.0 / (1.0 + (-l).exp())).collect();
            (probability, Some(prediction))
        }
        Likelihood::Density => (
            prepared.values.iter().map(|&v| (0.5 * v).clamp(0.0, 1.0)).collect(),
            None,
        ),
    };
    lap("likelihood", &mut clock);

    let origin = prepared.grid.first_voxel_angstrom();
    let density = |p: [f64; 3]| density_at(&prepared, p);
    let (candidates, fragments, per_candidate, next) = match options.tracer {
        Tracer::Links => {
            let candidates = pick_candidates(&probability, dims, origin, 1.0, residues, &options.candidates);
            if candidates.is_empty() {
                return Err(BuildError::NoDensity {
                    min_score: options.candidates.min_score,
                });
            }
            let snapshot = BuildSnapshot::Candidates(candidates.iter().map(|c| c.position.map(|v| v as f32)).collect());
            if !report("placing Cα", 0.55, Some(&snapshot)) {
                return Err(stopped());
            }
            let per_candidate = outputs.as_ref().map(|p| candidate_outputs(p, &prepared, &candidates));
            lap("candidates", &mut clock);
            let next: Option<Vec<[f64; 3]>> = per_candidate.as_ref().map(|c| c.iter().map(|(n, _)| *n).collect());
            let fragments = trace(&candidates, next.as_deref(), &density, &options.trace);
            (candidates, fragments, per_candidate, next)
        }
        Tracer::Graph => {
            let mut going = true;
            let grid = VoxelGrid {
                values: &prepared.values,
                dims,
                origin,
                voxel_angstrom: 1.0,
            };
            let fit = |ca: &[[f64; 3]]| backbone_fit(ca, &density);
            let registering = f64::from(resolution) < options.graph.register_finer_than_angstrom;
            let register = registering.then_some(&fit as &RunScore<'_>);
            let traced = graph_trace(&grid, residues, &density, register, &options.graph, &mut || {
                going = going && report("tracing the density", 0.55, None);
                going
            });
            if !going {
                return Err(stopped());
            }
            let snapshot = BuildSnapshot::Candidates(traced.points.iter().map(|p| p.map(|v| v as f32)).collect());
            if !report("placing Cα", 0.58, Some(&snapshot)) {
                return Err(stopped());
            }
            lap("candidates", &mut clock);
            let candidates = traced.calpha;
            let per_candidate = outputs.as_ref().map(|p| candidate_outputs(p, &prepared, &candidates));
            let next: Option<Vec<[f64; 3]>> = per_candidate.as_ref().map(|c| c.iter().map(|(n, _)| *n).collect());
            let mut fragments = traced.fragments;
            if let Some(next) = next.as_ref().filter(|_| !registering) {
                for fragment in &mut fragments {
                    orient(fragment, &candidates, next);
                }
            }
            let fragments = uncrowded(fragments, &candidates, &options.trace);
            (candidates, fragments, per_candidate, next)
        }
    };
    let snapshot = BuildSnapshot::Traces(
        fragments
            .iter()
            .map(|f| f.iter().map(|&k| candidates[k].position.map(|v| v as f32)).collect())
            .collect(),
    );
    if !report("tracing", 0.6, Some(&snapshot)) {
        return Err(stopped());
    }
    lap("trace", &mut clock);

    if fragments.is_empty() {
        return Err(BuildError::NoDensity {
            min_score: options.candidates.min_score,
        });
    }
    let logp: Option<Vec<[f32; AA_CLASSES]>> = per_candidate.map(|c| c.into_iter().map(|(_, l)| l).collect());
    let placements = thread(
        &fragments,
        logp.as_deref(),
        next.is_some(),
        input.sequences,
        &options.thread,
    );
    let (mut model, groups, flags) = assemble(&candidates, &placements, logp.as_deref(), input.sequences);
    let snapshot = BuildSnapshot::Model(Box::new(model.clone()));
    if !report("threading", 0.7, Some(&snapshot)) {
        return Err(stopped());
    }
    lap("thread and backbone", &mut clock);

    // Refinement against the (masked) map with ideal stereochemistry, in a box around the model:
    // the guidance's cost grows with the box (a 300³ box cost 111 s where its 100³ middle cost 10).
    let map = crop_around(&map, &model.frames[0], 3.0 * resolution + 5.0).map_or(Cow::Borrowed(&map), Cow::Owned);
    let (atoms, _) = GaussianAtoms::from_structure(&model, 0, GaussianOptions::molmap(resolution));
    // A model too small to have density of its own in its zone is left as built.
    let guidance = MapGuidance::new(&map, &atoms, &GuidanceOptions::new(resolution)).ok();
    let start: Vec<[f64; 3]> = model.frames[0].iter().map(|p| p.map(f64::from)).collect();
    let validator = Validator::new(&model);
    let mut refinement = None;
    if options.refine
        && let Some(guidance) = &guidance
    {
        let ideal = validator.ideal_geometry();
        let restraints = Restraints::from_start(&model, &start, RestraintOptions::default())
            .with_ideal_outliers(&ideal, 0.0)
            .with_template_bonds_only(&ideal)
            .with_torsion_prior(Arc::new(RamaPrior), &model);
        let relax_options = RelaxOptions {
            enabled: true,
            restraints: RestraintOptions::default(),
            map_weight: default_map_weight(resolution),
            iterations: options.refine_iterations,
        };
        let mut keep_going = || report("refining", 0.8, None);
        let (positions, relaxed) = relax(&restraints, guidance, &atoms, &start, &relax_options, &mut keep_going);
        model.frames[0] = positions.iter().map(|p| p.map(|v| v as f32)).collect();
        refinement = Some(relaxed);
    }
    lap("refine", &mut clock);

    let (atoms, _) = GaussianAtoms::from_structure(&model, 0, GaussianOptions::molmap(resolution));
    let correlation = guidance.as_ref().map_or(0.0, |g| g.correlation(&atoms));
    let local = residue_correlations(&map, &atoms, &groups, residue_radius(resolution));
    let mut confidences = Vec::with_capacity(groups.len());
    for ((group, (threaded, likelihood)), cc) in groups.iter().zip(&flags).zip(&local) {
        let cc = *cc as f32;
        let confidence = 100.0 * 0.5 * (likelihood + cc.max(0.0));
        for &i in group {
            model.atoms[i].b_factor = confidence;
        }
        let first = &model.atoms[group[0]];
        confidences.push(ResidueConfidence {
            chain_id: first.chain_id.clone(),
            number: first.residue_number,
            name: first.residue_name.clone(),
            threaded: *threaded,
            likelihood: *likelihood,
            correlation: cc,
            confidence,
        });
    }
    let validation = validator.report(&model.frames[0]);
    lap("confidence", &mut clock);
    let snapshot = BuildSnapshot::Model(Box::new(model.clone()));
    report("done", 1.0, Some(&snapshot));
    Ok(BuildResult {
        model,
        likelihood: options.likelihood,
        candidates: candidates.len(),
        candidate_points: candidates
            .iter()
            .map(|c| (c.position.map(|v| v as f32), c.score))
            .collect(),
        fragments: fragments.len(),
        traced: fragments,
        residues: confidences,
        correlation,
        refinement,
        validation,
        seconds,
    })
}

/// How well the backbone built on a run of Cα (N → C) sits in the density: the sum of the
/// normalised map at its N, Cα, C, O and Cβ, each clamped to [−1, 1.5] (protein reads about 1) so
/// that no atom in a dense spot outweighs one in solvent. Summing without the clamp, or over O and
/// Cβ alone, gained at 4 Å and lost at 3 Å.
fn backbone_fit(ca: &[[f64; 3]], density: &dyn Fn([f64; 3]) -> f64) -> f64 {
    build_backbone(PeptideLibrary::bundled(), ca, &vec![true; ca.len()])
        .iter()
        .map(|r| {
            [r.n, r.ca, r.c, r.o, r.cb.unwrap_or(r.ca)]
                .iter()
                .map(|&p| density(p).clamp(-1.0, 1.5))
                .sum::<f64>()
        })
        .sum()
}

/// Runs `fragment` the way the predicted next-Cα vectors point on the whole.
fn orient(fragment: &mut Fragment, candidates: &[Candidate], next: &[[f64; 3]]) {
    let agreement: f64 = fragment
        .windows(2)
        .map(|w| {
            let step: [f64; 3] = std::array::from_fn(|a| candidates[w[1]].position[a] - candidates[w[0]].position[a]);
            (0..3).map(|a| step[a] * next[w[0]][a]).sum::<f64>()
        })
        .sum();
    if agreement < 0.0 {
        fragment.reverse();
    }
}

/// The map with everything outside the mask set to its median (solvent), or the map itself.
fn masked(input: &BuildInput<'_>, level: f32) -> Result<DensityMap, BuildError> {
    let map = input.map;
    if map.values.iter().all(|v| *v == map.values[0]) {
        return Err(BuildError::FlatMap);
    }
    let Some(mask) = input.mask else {
        return Ok(map.clone());
    };
    let inside = mask_on_grid(mask, &map.grid, level);
    if !inside.contains(&true) {
        return Err(BuildError::MaskOutside { level });
    }
    let mut sorted = map.values.clone();
    sorted.sort_unstable_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    let mut out = map.clone();
    for (v, i) in out.values.iter_mut().zip(&inside) {
        if !i {
            *v = median;
        }
    }
    Ok(out)
}

/// Refuses a sequence the map cannot hold: more protein than the whole box, or more than three
/// times the volume of the density above median + 1 robust σ (protein voxels of a noisy map
/// clear it; a sixth of pure noise does too, so only a gross mismatch is refused).
fn check_capacity(map: &DensityMap, residues: usize) -> Result<(), BuildError> {
    let voxel_volume: f64 = map.grid.voxel_size_angstrom.iter().map(|&h| f64::from(h)).product();
    let needed = residues as f64 * f64::from(HEAVY_ATOMS_PER_RESIDUE * VOLUME_PER_HEAVY_ATOM_ANGSTROM3);
    let mut sorted = map.values.clone();
    sorted.sort_unstable_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    let mut deviations: Vec<f32> = sorted.iter().map(|v| (v - median).abs()).collect();
    deviations.sort_unstable_by(f32::total_cmp);
    let sigma = 1.4826 * deviations[deviations.len() / 2];
    let above = map.values.iter().filter(|&&v| v > median + sigma).count();
    let available = above as f64 * voxel_volume;
    let box_volume = map.values.len() as f64 * voxel_volume;
    if needed > box_volume || needed > 3.0 * available {
        return Err(BuildError::SequenceTooLong {
            residues,
            needed_angstrom3: needed,
            available_angstrom3: available,
        });
    }
    Ok(())
}

/// The normalised map at a point (trilinear; −2 outside).
fn density_at(prepared: &PreparedMap, p: [f64; 3]) -> f64 {
    let first = prepared.grid.first_voxel_angstrom();
    let [nx, ny, nz] = prepared.grid.dims;
    let f: [f64; 3] =
        std::array::from_fn(|a| (p[a] - f64::from(first[a])) / f64::from(prepared.grid.voxel_size_angstrom[a]));
    if f.iter().zip([nx, ny, nz]).any(|(&c, n)| c < 0.0 || c > (n - 1) as f64) {
        return -2.0;
    }
    let base = f.map(|c| c.floor() as usize);
    let t: [f64; 3] = std::array::from_fn(|a| f[a] - base[a] as f64);
    let mut value = 0.0;
    for corner in 0..8usize {
        let v: [usize; 3] = std::array::from_fn(|a| (base[a] + (corner >> a & 1)).min([nx, ny, nz][a] - 1));
        let w: f64 = (0..3)
            .map(|a| if corner >> a & 1 == 1 { t[a] } else { 1.0 - t[a] })
            .product();
        value += w * f64::from(prepared.values[v[0] + nx * (v[1] + ny * v[2])]);
    }
    value
}

/// Per candidate, the predicted vector (Å) from its position to the next Cα and the residue
/// types' log-probabilities, read at its voxel.
fn candidate_outputs(
    prediction: &super::network::Prediction,
    prepared: &PreparedMap,
    candidates: &[Candidate],
) -> Vec<([f64; 3], [f32; AA_CLASSES])> {
    candidates
        .iter()
        .map(|c| {
            let voxel_centre = prepared.position(c.voxel).map(f64::from);
            let next: [f64; 3] = std::array::from_fn(|a| {
                voxel_centre[a] + f64::from(prediction.at(1 + a, c.voxel) * NEXT_SCALE_ANGSTROM) - c.position[a]
            });
            let logits: [f32; AA_CLASSES] = std::array::from_fn(|k| prediction.at(4 + k, c.voxel));
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
            (next, logits.map(|l| l - max - total.ln()))
        })
        .collect()
}

/// The model from the placements: threaded fragments become chains of their record's copy,
/// numbered by sequence position; the others become chains of their own, named by the network's
/// most likely residue types (alanine without a network). Returns the model, each residue's atom
/// indices, and each residue's (threaded, Cα likelihood).
fn assemble(
    candidates: &[Candidate],
    placements: &[Placement],
    logp: Option<&[[f32; AA_CLASSES]]>,
    sequences: &[ChainSequence],
) -> (Structure, Vec<Vec<usize>>, Vec<(bool, f32)>) {
    let library = PeptideLibrary::bundled();
    let mut threaded: Vec<&Placement> = placements.iter().filter(|p| p.slot.is_some()).collect();
    threaded.sort_by_key(|p| p.slot);
    let others: Vec<&Placement> = placements.iter().filter(|p| p.slot.is_none()).collect();
    // Chain ids: one per (record, copy) that holds residues, then one per other fragment.
    let mut slots: Vec<(usize, usize)> = threaded.iter().filter_map(|p| p.slot.map(|(r, c, _)| (r, c))).collect();
    slots.dedup();
    let chain_name = |k: usize| -> String {
        const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let letters = LETTERS.as_bytes();
        if k < letters.len() {
            (letters[k] as char).to_string()
        } else {
            format!(
                "{}{}",
                letters[k / letters.len() % letters.len()] as char,
                letters[k % letters.len()] as char
            )
        }
    };
    let mut model = Structure {
        name: "build".into(),
        ..Structure::default()
    };
    let mut positions: Vec<[f32; 3]> = Vec::new();
    let mut groups = Vec::new();
    let mut flags = Vec::new();
    let mut add_fragment =
        |chain: &str, residues: &[usize], names: &[&'static str], first_number: i32, threaded: bool| {
            let ca: Vec<[f64; 3]> = residues.iter().map(|&k| candidates[k].position).collect();
            let has_cb: Vec<bool> = names.iter().map(|n| *n != "GLY").collect();
            let built = build_backbone(library, &ca, &has_cb);
            for (k, (b, name)) in built.iter().zip(names).enumerate() {
                let mut group = Vec::new();
                let mut atoms = vec![("N", "N", b.n), ("CA", "C", b.ca), ("C", "C", b.c), ("O", "O", b.o)];
                if let Some(cb) = b.cb {
                    atoms.push(("CB", "C", cb));
                }
                for (atom_name, element, p) in atoms {
                    group.push(model.atoms.len());
                    model.atoms.push(Atom {
                        name: atom_name.into(),
                        residue_name: (*name).into(),
                        chain_id: chain.into(),
                        residue_number: first_number + k as i32,
                        element: element.into(),
                        occupancy: 1.0,
                        ..Atom::default()
                    });
                    positions.push(p.map(|v| v as f32));
                }
                groups.push(group);
                flags.push((threaded, candidates[residues[k]].score));
            }
        };
    for p in &threaded {
        let Some((record, copy, offset)) = p.slot else { continue };
        let slot = slots.iter().position(|s| *s == (record, copy)).unwrap_or(0);
        let names: Vec<&'static str> = (0..p.residues.len())
            .map(|k| residue_name(sequences[record].residues[offset + k]))
            .collect();
        add_fragment(&chain_name(slot), &p.residues, &names, offset as i32 + 1, true);
    }
    for (k, p) in others.iter().enumerate() {
        let names: Vec<&'static str> = p
            .residues
            .iter()
            .map(|&c| match logp {
                Some(l) => {
                    let best = (0..AA_CLASSES)
                        .max_by(|&a, &b| l[c][a].total_cmp(&l[c][b]))
                        .unwrap_or(0);
                    residue_name(best as u8)
                }
                None => "ALA",
            })
            .collect();
        add_fragment(&chain_name(slots.len() + k), &p.residues, &names, 1, false);
    }
    model.frames = vec![positions];
    (model, groups, flags)
}
