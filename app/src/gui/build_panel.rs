//! The map inspector's "Build model" section: a backbone model from the map and a sequence
//! (pasted, or opened from a FASTA file), on the compute thread. A new object shows the build as
//! it grows: Cα candidates as points, then the traces, then the threaded and refined model,
//! coloured by each residue's confidence (B-factor column).

use std::sync::Arc;

use cryoforge_compute::build::sequence::{ChainSequence, parse_fasta};
use cryoforge_compute::build::{BuildOptions, BuildResult, Likelihood, Tracer, weights};
use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::jobs::JobSpec;
use cryoforge_compute::maps::DensityMap;

use super::{CryoforgeApp, Object, ObjectId, ObjectKind};
use crate::view::{AtomStyle, ColorBy};

/// The section's settings, per map.
#[derive(Clone, Debug)]
pub struct BuildSettings {
    /// FASTA, or bare one-letter codes (one chain).
    pub sequence: String,
    pub resolution: f32,
    pub likelihood: Likelihood,
    pub tracer: Tracer,
    pub mask: Option<ObjectId>,
}

impl Default for BuildSettings {
    fn default() -> Self {
        Self {
            sequence: String::new(),
            resolution: 4.0,
            likelihood: Likelihood::default_for_this_build(),
            tracer: Tracer::default(),
            mask: None,
        }
    }
}

/// The sequences of the text box: FASTA, or one chain of bare letters.
pub fn sequences_of(text: &str) -> Result<Vec<ChainSequence>, String> {
    let text = text.trim();
    let fasta = if text.starts_with('>') {
        text.to_owned()
    } else {
        format!(">A\n{text}")
    };
    parse_fasta(&fasta).map_err(|e| e.to_string())
}

/// The section in a map's inspector.
pub fn build_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui, id: ObjectId, map: Arc<DensityMap>, map_name: &str) {
    let maps: Vec<(ObjectId, String)> = app
        .objects
        .iter()
        .filter(|o| o.id != id && matches!(o.kind, ObjectKind::Map(_)))
        .map(|o| (o.id, o.name.clone()))
        .collect();
    let Some(Object {
        kind: ObjectKind::Map(m),
        ..
    }) = app.object_mut(id)
    else {
        return;
    };
    let settings = &mut m.build;
    ui.separator();
    let mut open_fasta = false;
    let mut clicked = false;
    let mut parsed = Err(String::new());
    egui::CollapsingHeader::new("Build model (map and sequence to a backbone model)")
        .id_salt(("build", id))
        .show(ui, |ui| {
            ui.add(
                egui::TextEdit::multiline(&mut settings.sequence)
                    .hint_text("sequence: FASTA (one record per chain, '>name x2' for copies) or one-letter codes")
                    .desired_rows(3)
                    .font(egui::TextStyle::Monospace),
            );
            ui.horizontal(|ui| {
                open_fasta = ui.button("Open FASTA…").clicked();
                ui.add(
                    egui::DragValue::new(&mut settings.resolution)
                        .range(1.5..=12.0)
                        .speed(0.1)
                        .suffix(" Å resolution"),
                );
            });
            ui.horizontal(|ui| {
                ui.add_enabled_ui(weights::bundled_available(), |ui| {
                    ui.radio_value(&mut settings.likelihood, Likelihood::Network, "Cα network")
                        .on_disabled_hover_text("this build of cryoforge has no trained weights");
                });
                ui.radio_value(&mut settings.likelihood, Likelihood::Density, "map density (no network)");
            });
            ui.horizontal(|ui| {
                ui.label("trace:");
                ui.radio_value(&mut settings.tracer, Tracer::Graph, "density tree")
                    .on_hover_text("the minimum spanning tree of points sampled from the densest voxels; Cα every 3.8 Å along its longest paths");
                ui.radio_value(&mut settings.tracer, Tracer::Links, "linked Cα peaks")
                    .on_hover_text("Cα candidates from the likelihood's maxima, joined by greedy links");
            });
            let mask_name = settings
                .mask
                .and_then(|k| maps.iter().find(|(i, _)| *i == k))
                .map_or("none".to_owned(), |(_, n)| n.clone());
            egui::ComboBox::from_id_salt(("build mask", id))
                .selected_text(format!("mask: {mask_name}"))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut settings.mask, None, "none");
                    for (k, name) in &maps {
                        ui.selectable_value(&mut settings.mask, Some(*k), name.as_str());
                    }
                });
            parsed = sequences_of(&settings.sequence);
            match &parsed {
                Ok(chains) => {
                    let residues: usize = chains.iter().map(|c| c.len() * c.copies).sum();
                    let count: usize = chains.iter().map(|c| c.copies).sum();
                    ui.weak(format!("{count} chain(s), {residues} residues"));
                }
                Err(e) if !settings.sequence.trim().is_empty() => {
                    ui.colored_label(ui.visuals().warn_fg_color, e);
                }
                Err(_) => {}
            }
            clicked = ui
                .add_enabled(
                    parsed.is_ok(),
                    egui::Button::new(format!("Build model into {map_name}")),
                )
                .clicked();
        });
    let settings = settings.clone();
    if open_fasta
        && let Some(path) = rfd::FileDialog::new()
            .add_filter("FASTA", &["fasta", "fa", "faa", "seq", "txt"])
            .pick_file()
    {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                if let Some(Object {
                    kind: ObjectKind::Map(m),
                    ..
                }) = app.object_mut(id)
                {
                    m.build.sequence = text;
                }
            }
            Err(e) => app.message = Some(format!("{}: {e}", path.display())),
        }
    }
    if clicked && let Ok(sequences) = parsed {
        start_build(app, map, map_name, sequences, &settings);
    }
}

fn start_build(
    app: &mut CryoforgeApp,
    map: Arc<DensityMap>,
    map_name: &str,
    sequences: Vec<ChainSequence>,
    settings: &BuildSettings,
) {
    let mask = settings.mask.and_then(|k| match app.object(k) {
        Some(Object {
            kind: ObjectKind::Map(m),
            ..
        }) => Some(m.map.clone()),
        _ => None,
    });
    let mut options = BuildOptions::new(settings.resolution);
    options.likelihood = settings.likelihood;
    options.tracer = settings.tracer;
    let mut object = super::ModelObject::new(Structure {
        name: "build".into(),
        frames: vec![Vec::new()],
        ..Structure::default()
    });
    object.style = AtomStyle::Spheres;
    object.color_by = ColorBy::Uniform;
    object.color = [0.95, 0.75, 0.3];
    object.fit_resolution = settings.resolution;
    let id = app.add_model_object(format!("build ({map_name})"), object);
    app.start_job(
        JobSpec::Build {
            map,
            sequences,
            mask,
            options: Box::new(options),
            weights: None,
        },
        Some(id),
    );
}

/// Shows a step's findings in the build's object: candidates as spheres, traces and the model as
/// Cα traces.
pub fn show_snapshot(m: &mut super::ModelObject, model: Arc<Structure>) {
    if m.build.is_some() {
        // The finished build is in place (its last snapshot can arrive after it).
        return;
    }
    m.style = match model.name.as_str() {
        "candidates" => AtomStyle::Spheres,
        _ => AtomStyle::Trace,
    };
    m.color_by = if model.name == "traces" {
        ColorBy::Chain
    } else {
        ColorBy::Uniform
    };
    m.model = model;
    m.frame = 0;
    m.live_coordinates = None;
}

/// Attaches a finished build to its object: the model, coloured by confidence.
pub fn adopt_build(app: &mut CryoforgeApp, id: Option<ObjectId>, result: Arc<BuildResult>) {
    let Some(Object {
        kind: ObjectKind::Model(m),
        ..
    }) = id.and_then(|id| app.object_mut(id))
    else {
        return;
    };
    m.model = Arc::new(result.model.clone());
    m.frame = 0;
    m.style = AtomStyle::Trace;
    m.color_by = ColorBy::BFactor;
    m.build = Some(result);
    app.mark_scene_dirty();
}

/// What a finished build says, in its model's inspector.
pub fn build_summary_ui(ui: &mut egui::Ui, result: &BuildResult) {
    ui.separator();
    ui.label("Built model");
    ui.label(format!(
        "{} residues ({} threaded onto the sequence), {} Cα candidates, {} fragments",
        result.residues.len(),
        result.threaded_residues(),
        result.candidates,
        result.fragments
    ));
    ui.label(format!("correlation in its zone {:.3}", result.correlation));
    ui.weak(result.validation.summary_line());
    ui.weak("colour: confidence (B-factor column: 100 × mean of Cα likelihood and local correlation)");
}
