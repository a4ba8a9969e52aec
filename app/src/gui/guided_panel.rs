//! The guided-fit section of a model's inspector: start map-guided sampling of the model into an
//! open map (a new object shows the fit live), then pick any sample, scrub its trajectory with
//! the frame slider while its loss curves mark the current step, and export any frame. Guidance
//! sees the model's own zone of the map by default, or the whole map, or the inside of another
//! open map's surface (a mask).

use std::path::PathBuf;
use std::sync::Arc;

use cryoforge_compute::formats::model_write::write_structure;
use cryoforge_compute::guided::{
    FreeOptions, GuidedFit, GuidedFitOptions, ScheduleKind, ZoneOptions, heavy_atom_model,
};
use cryoforge_compute::jobs::JobSpec;

use super::widgets::{count_ui, fixed_plot};
use super::{CryoforgeApp, Object, ObjectId, ObjectKind};
use crate::view::ColorBy;

/// What the next guided fit of a model will use.
#[derive(Clone, Debug)]
pub struct GuidedSettings {
    pub samples: usize,
    pub steps: usize,
    /// Rounds: each later one (half the steps) starts again from the previous round's best.
    pub rounds: usize,
    pub experimental: bool,
    pub guidance: bool,
    pub zone: GuidedZone,
    /// End with the restrained relaxation (stereochemistry plus the map).
    pub relax: bool,
    /// Hold out a tenth of the map's Fourier coefficients as a free score.
    pub free: bool,
}

/// Which density of the map guidance sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuidedZone {
    /// The density around the model, following it (neighbours in the map do not pull it).
    Model,
    WholeMap,
    /// The inside of another open map's surface, at the level it is shown at.
    Mask(ObjectId),
}

impl GuidedZone {
    fn label(self, maps: &[(ObjectId, String)]) -> String {
        match self {
            Self::Model => "the model's zone".into(),
            Self::WholeMap => "the whole map".into(),
            Self::Mask(id) => {
                let name = maps
                    .iter()
                    .find(|(m, _)| *m == id)
                    .map_or("(closed)", |(_, n)| n.as_str());
                format!("mask: inside {name}")
            }
        }
    }
}

impl Default for GuidedSettings {
    fn default() -> Self {
        Self {
            samples: cryoforge_compute::guided::DEFAULT_SAMPLES,
            steps: cryoforge_compute::guided::DEFAULT_STEPS,
            rounds: cryoforge_compute::guided::DEFAULT_ROUNDS,
            experimental: false,
            guidance: true,
            zone: GuidedZone::Model,
            relax: true,
            free: true,
        }
    }
}

/// A finished guided fit attached to the model object it made.
pub struct GuidedView {
    pub fit: Arc<GuidedFit>,
    /// Which sample (index into `fit.samples`, best first) is shown.
    pub sample: usize,
    /// Show the noisy sample rather than the denoised estimate.
    pub noisy: bool,
}

/// The fit options of `settings` at `resolution` (guidance sees the model's zone).
pub fn guided_options(settings: &GuidedSettings, resolution: f32) -> GuidedFitOptions {
    let kind = if settings.experimental {
        ScheduleKind::Experimental
    } else {
        ScheduleKind::Synthetic
    };
    let mut options = GuidedFitOptions::new(resolution, kind);
    options.schedule = options.schedule.with_total_steps(settings.steps);
    options.samples = settings.samples.max(1);
    options.rounds = settings.rounds.max(1);
    options.guidance_enabled = settings.guidance;
    options.relax.enabled = settings.relax;
    if !settings.free {
        options.free = FreeOptions::Off;
    }
    options.guidance.zone = ZoneOptions::around_model(resolution);
    options
}

/// Starts a guided fit of model `id` into map `map_id`; the fit streams into a new object.
pub fn start_guided_fit(app: &mut CryoforgeApp, id: ObjectId, map_id: ObjectId) {
    let Some(Object {
        kind: ObjectKind::Model(m),
        name,
        ..
    }) = app.object(id)
    else {
        return;
    };
    let Some(Object {
        kind: ObjectKind::Map(map),
        ..
    }) = app.object(map_id)
    else {
        return;
    };
    let settings = m.guided_settings.clone();
    let resolution = m.fit_resolution;
    let mut options = guided_options(&settings, resolution);
    options.guidance.zone = match settings.zone {
        GuidedZone::Model => ZoneOptions::around_model(resolution),
        GuidedZone::WholeMap => ZoneOptions::WholeMap,
        GuidedZone::Mask(mask_id) => match app.object(mask_id) {
            Some(Object {
                kind: ObjectKind::Map(mask),
                ..
            }) => ZoneOptions::mask(mask.map.clone(), mask.level),
            _ => {
                app.message = Some("the mask map is no longer open; pick another zone".into());
                return;
            }
        },
    };
    let start = m.model.single_frame(m.frame).unwrap_or_else(|| (*m.model).clone());
    let title = format!("{name} (guided fit)");
    let map = map.map.clone();
    start_fit_object(app, title, &start, resolution, [0.95, 0.55, 0.2], |model| {
        JobSpec::GuidedFit {
            map,
            model,
            options: Box::new(options),
        }
    });
}

/// Starts the job `spec` makes of `start` with a new object for it to stream into: the start's
/// heavy atoms (what guided sampling moves) in one colour.
pub fn start_fit_object(
    app: &mut CryoforgeApp,
    title: String,
    start: &cryoforge_compute::formats::model::Structure,
    resolution: f32,
    color: [f32; 3],
    spec: impl FnOnce(Arc<cryoforge_compute::formats::model::Structure>) -> JobSpec,
) {
    let mut object = super::ModelObject::new(heavy_atom_model(start, resolution));
    object.color_by = ColorBy::Uniform;
    object.color = color;
    object.fit_resolution = resolution;
    let id = app.add_model_object(title, object);
    app.start_job(spec(Arc::new(start.clone())), Some(id));
}

/// Attaches a finished fit to its object: the object becomes the best sample's trajectory.
pub fn adopt_guided_fit(app: &mut CryoforgeApp, id: Option<ObjectId>, fit: Arc<GuidedFit>) {
    let Some(Object {
        kind: ObjectKind::Model(m),
        ..
    }) = id.and_then(|id| app.object_mut(id))
    else {
        return;
    };
    m.guided = Some(GuidedView {
        fit,
        sample: 0,
        noisy: false,
    });
    show_sample(m);
    app.mark_scene_dirty();
}

fn show_sample(m: &mut super::ModelObject) {
    let Some(view) = &m.guided else { return };
    let Some(sample) = view.fit.samples.get(view.sample) else {
        return;
    };
    let trajectory = view.fit.trajectory_model(sample, view.noisy);
    if trajectory.frames.is_empty() {
        return;
    }
    m.frame = trajectory.frames.len() - 1;
    m.model = Arc::new(trajectory);
    m.live_coordinates = None;
    m.playing = false;
}

/// Settings and start buttons for a new fit, or the results of the last one.
pub fn guided_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui, id: ObjectId, maps: &[(ObjectId, String)]) {
    let Some(m) = app.model_mut(id) else {
        return;
    };
    ui.separator();
    ui.label("Guided fit (map-guided sampling)");
    let mut start = None;
    if maps.is_empty() {
        ui.weak("Open a map to fit into.");
    } else {
        ui.horizontal(|ui| {
            count_ui(ui, &mut m.guided_settings.samples, 1..=16, "samples: ");
            count_ui(ui, &mut m.guided_settings.steps, 20..=1000, "steps: ");
            count_ui(ui, &mut m.guided_settings.rounds, 1..=5, "rounds: ");
        });
        ui.checkbox(
            &mut m.guided_settings.experimental,
            "experimental map (low-pass to the resolution)",
        );
        ui.checkbox(&mut m.guided_settings.guidance, "map guidance (off: control run)");
        ui.checkbox(
            &mut m.guided_settings.relax,
            "restrained relaxation at the end (geometry + map)",
        );
        ui.checkbox(
            &mut m.guided_settings.free,
            "free score: hold out 10% of the map's Fourier coefficients",
        );
        zone_ui(ui, &mut m.guided_settings.zone, maps);
        for (map_id, map_name) in maps {
            if ui.button(format!("Guided fit into {map_name}")).clicked() {
                start = Some(*map_id);
            }
        }
    }
    let mut export = None;
    let mut recolour = false;
    if let Some(view) = &mut m.guided {
        let mut changed = false;
        ui.label("Samples (best first)");
        for (rank, s) in view.fit.samples.iter().enumerate() {
            let moved = s.steps.last().map_or(0.0, |r| r.rmsd_to_start_angstrom);
            let free = s.free_score.map_or(String::new(), |f| format!(", free {f:.3}"));
            let text = format!(
                "#{} sample {}: cc {:.4}{free}, moved {:.1} Å{}",
                rank + 1,
                s.index + 1,
                s.correlation,
                moved,
                if s.complete { "" } else { " (cancelled)" }
            );
            if ui.selectable_label(view.sample == rank, text).clicked() {
                view.sample = rank;
                changed = true;
            }
        }
        if let Some(f) = view.fit.start_free_score {
            ui.label(format!(
                "start: cc {:.4}, free {f:.3} ({})",
                view.fit.start_correlation, view.fit.free
            ));
        }
        if view.fit.start_is_best {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "Every sample scores worse than the start by the free score: keep the start.",
            );
        }
        changed |= ui
            .checkbox(&mut view.noisy, "show the noisy sample (not the estimate)")
            .changed();
        if let Some(sample) = view.fit.samples.get(view.sample) {
            let step = sample.trajectory.steps.get(m.frame).copied().unwrap_or(0);
            if let Some(r) = sample.steps.get(step) {
                ui.monospace(format!(
                    "step {}/{} · {} · σ {:.2} Å · cc {:.4}",
                    step + 1,
                    sample.steps.len(),
                    r.phase.label(),
                    r.sigma,
                    r.correlation
                ));
            } else {
                ui.monospace(format!("final model · cc {:.4}", sample.correlation));
            }
            loss_plot_ui(ui, sample, step);
            ui.label(format!(
                "bonds rms {:.3} Å (start {:.3}), {} clashes (start {})",
                sample.geometry.bond_rmsd_angstrom,
                view.fit.start_geometry.bond_rmsd_angstrom,
                sample.geometry.clashes,
                view.fit.start_geometry.clashes
            ));
            ui.label(format!("validation: {}", sample.validation.summary_line()));
            ui.weak(format!("start: {}", view.fit.start_validation.summary_line()));
            if let Some(r) = &sample.relax {
                ui.label(format!(
                    "relaxation: restraints χ² from {:.0} to {:.0}, map loss from {:.3} to {:.3} ({} iterations)",
                    r.before.total(),
                    r.after.total(),
                    r.map_loss_before,
                    r.map_loss_after,
                    r.iterations
                ));
            }
            if ui
                .button("Colour by confidence (per-residue map correlation)")
                .clicked()
            {
                m.color_by = ColorBy::BFactor;
                recolour = true;
            }
            ui.horizontal(|ui| {
                if ui.button("Export shown frame").clicked() {
                    let mut frame = view.fit.model.clone();
                    frame.frames = vec![m.model.frames[m.frame.min(m.model.frames.len() - 1)].clone()];
                    export = Some(frame);
                }
                if ui.button("Export this sample's final model").clicked() {
                    export = Some(view.fit.sample_model(sample));
                }
                if view.fit.start_is_best && ui.button("Export the start").clicked() {
                    export = Some(view.fit.start_model());
                }
            });
        }
        if changed {
            show_sample(m);
        }
        if changed || recolour {
            app.mark_scene_dirty();
        }
    }
    if let Some(model) = export {
        export_model(app, &model);
    }
    if let Some(map_id) = start {
        start_guided_fit(app, id, map_id);
    }
}

/// The choice of what guidance sees: the model's zone, the whole map, or any open map as a mask.
fn zone_ui(ui: &mut egui::Ui, zone: &mut GuidedZone, maps: &[(ObjectId, String)]) {
    ui.horizontal_wrapped(|ui| {
        ui.label("guidance sees:");
        for choice in [GuidedZone::Model, GuidedZone::WholeMap]
            .into_iter()
            .chain(maps.iter().map(|(id, _)| GuidedZone::Mask(*id)))
        {
            ui.selectable_value(zone, choice, choice.label(maps));
        }
    });
}

pub fn export_model(app: &mut CryoforgeApp, model: &cryoforge_compute::formats::model::Structure) {
    if app.export_path.is_empty() {
        app.message = Some("type a .cif or .pdb path in 'Export to' below first".into());
        return;
    }
    let path = PathBuf::from(&app.export_path);
    app.message = Some(match write_structure(model, &path) {
        Ok(()) => format!("wrote {}", path.display()),
        Err(e) => e.to_string(),
    });
}

/// Correlation, Sinkhorn divergence and density L2 over the steps (the last two scaled to the
/// correlation's range), with the shown step marked.
fn loss_plot_ui(ui: &mut egui::Ui, sample: &cryoforge_compute::guided::Sample, step: usize) {
    use egui_plot::{Legend, Line, PlotPoints, VLine};
    let correlation: Vec<[f64; 2]> = sample.steps.iter().map(|r| [r.step as f64, r.correlation]).collect();
    let scaled = |values: Vec<[f64; 2]>| {
        let max = values.iter().map(|p| p[1]).fold(0.0f64, f64::max).max(1e-12);
        values.into_iter().map(|p| [p[0], p[1] / max]).collect::<Vec<_>>()
    };
    let sinkhorn = scaled(
        sample
            .steps
            .iter()
            .filter_map(|r| r.sinkhorn.map(|v| [r.step as f64, v]))
            .collect(),
    );
    let l2 = scaled(
        sample
            .steps
            .iter()
            .filter_map(|r| r.density_l2.map(|v| [r.step as f64, v]))
            .collect(),
    );
    fixed_plot(("guided losses", sample.index))
        .height(120.0)
        .legend(Legend::default())
        .show(ui, |plot| {
            plot.line(Line::new("correlation", PlotPoints::from(correlation)));
            if !sinkhorn.is_empty() {
                plot.line(Line::new("Sinkhorn (scaled)", PlotPoints::from(sinkhorn)));
            }
            if !l2.is_empty() {
                plot.line(Line::new("density L2 (scaled)", PlotPoints::from(l2)));
            }
            plot.vline(VLine::new("shown step", step as f64));
        });
}
