//! The particle-refinement section of a model's inspector: refine the model against an open
//! particle file (STAR or .cs with poses and CTFs). The refined model streams into a new object;
//! its inspector shows a gallery of particle images next to the current model's projections,
//! the FRC per epoch, and exports the result.

use std::sync::Arc;

use cryoforge_compute::formats::FileKind;
use cryoforge_compute::guided::heavy_atom_model;
use cryoforge_compute::jobs::JobSpec;
use cryoforge_compute::refine::{Gallery, RefineOptions, Refinement};

use super::widgets::{count_ui, fixed_plot};
use super::{CryoforgeApp, Object, ObjectId, ObjectKind};
use crate::view::ColorBy;

/// What the next refinement of a model will use.
#[derive(Clone, Debug)]
pub struct RefineSettings {
    pub resolution: f64,
    /// 0: automatic (see [`RefineOptions::auto_epochs`]), decided when the particles are read.
    pub epochs: usize,
    pub batch: usize,
}

impl Default for RefineSettings {
    fn default() -> Self {
        Self {
            resolution: 4.0,
            epochs: 0,
            batch: 32,
        }
    }
}

/// The gallery of a model being (or having been) refined, with its textures.
pub struct GalleryView {
    pub gallery: Arc<Gallery>,
    textures: Vec<(egui::TextureHandle, egui::TextureHandle)>,
}

/// Open particle files (STAR or .cs) as (path, name).
pub fn particle_files(app: &CryoforgeApp) -> Vec<(std::path::PathBuf, String)> {
    app.objects
        .iter()
        .filter_map(|o| match (&o.kind, &o.path) {
            (ObjectKind::Info(s), Some(path)) if matches!(s.kind, FileKind::Star | FileKind::Cs) => {
                Some((path.clone(), o.name.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Starts refining model `id` against `particles`; the model streams into a new object.
pub fn start_particle_fit(app: &mut CryoforgeApp, id: ObjectId, particles: std::path::PathBuf) {
    let pixel_size_angstrom = super::particle_file::pixel_size_of(app, &particles);
    let Some(Object {
        kind: ObjectKind::Model(m),
        name,
        ..
    }) = app.object(id)
    else {
        return;
    };
    let settings = m.refine_settings.clone();
    let mut options = RefineOptions::new(settings.resolution);
    options.epochs = settings.epochs;
    options.batch = settings.batch.max(1);
    let start = m.model.single_frame(m.frame).unwrap_or_else(|| (*m.model).clone());
    let heavy = heavy_atom_model(&start, settings.resolution as f32);
    let spec = JobSpec::ParticleFit {
        particles,
        pixel_size_angstrom,
        model: Arc::new(start),
        centre: None,
        options: Box::new(options),
    };
    let title = format!("{name} (particle fit)");
    let mut object = super::ModelObject::new(heavy);
    object.color_by = ColorBy::Uniform;
    object.color = [0.3, 0.75, 0.95];
    object.refine_settings = settings;
    let new_id = app.add_model_object(title, object);
    app.start_job(spec, Some(new_id));
}

/// Keeps the newest gallery of the job's object.
pub fn receive_gallery(ctx: &egui::Context, m: &mut super::ModelObject, gallery: Arc<Gallery>) {
    if m.gallery.as_ref().is_some_and(|g| Arc::ptr_eq(&g.gallery, &gallery)) {
        return;
    }
    let texture = |name: String, values: &[f32]| {
        let stats = cryoforge_compute::maps::Statistics::of(values);
        let (lo, hi) = (
            stats.mean - 3.0 * stats.rms.max(1e-12),
            stats.mean + 3.0 * stats.rms.max(1e-12),
        );
        let pixels: Vec<u8> = values
            .iter()
            .map(|v| (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0) as u8)
            .collect();
        let image = egui::ColorImage::from_gray([gallery.box_size, gallery.box_size], &pixels);
        ctx.load_texture(name, image, egui::TextureOptions::NEAREST)
    };
    let textures = gallery
        .pairs
        .iter()
        .map(|(i, image, projection)| {
            (
                texture(format!("particle {i}"), image),
                texture(format!("projection {i}"), projection),
            )
        })
        .collect();
    m.gallery = Some(GalleryView { gallery, textures });
}

/// Attaches a finished refinement to its object.
pub fn adopt_refinement(app: &mut CryoforgeApp, id: Option<ObjectId>, refinement: Arc<Refinement>) {
    let Some(Object {
        kind: ObjectKind::Model(m),
        ..
    }) = id.and_then(|id| app.object_mut(id))
    else {
        return;
    };
    m.model = Arc::new(refinement.refined.clone());
    m.frame = 0;
    m.live_coordinates = None;
    m.refinement = Some(refinement);
    app.mark_scene_dirty();
}

/// Settings and start buttons, or the gallery and results of a refinement.
pub fn particle_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui, id: ObjectId) {
    let files = particle_files(app);
    let Some(m) = app.model_mut(id) else {
        return;
    };
    ui.separator();
    ui.label("Particle refinement (FRC against raw particles)");
    let mut start = None;
    if files.is_empty() {
        ui.weak("Open a STAR or .cs particle file with poses and CTFs.");
    } else {
        ui.horizontal(|ui| {
            ui.add(
                egui::DragValue::new(&mut m.refine_settings.resolution)
                    .range(2.0..=30.0)
                    .speed(0.1)
                    .prefix("resolution: ")
                    .suffix(" Å"),
            );
            ui.add(
                egui::DragValue::new(&mut m.refine_settings.epochs)
                    .range(0..=500)
                    .prefix("epochs: ")
                    .custom_formatter(|v, _| if v < 0.5 { "auto".to_owned() } else { format!("{v:.0}") }),
            );
            count_ui(ui, &mut m.refine_settings.batch, 1..=512, "batch: ");
        });
        for (path, name) in &files {
            if ui.button(format!("Refine against {name}")).clicked() {
                start = Some(path.clone());
            }
        }
    }
    if let Some(view) = &m.gallery {
        ui.label("Particles (left) and the model's projections with their CTF (right)");
        egui::Grid::new(("gallery", id)).spacing([4.0, 4.0]).show(ui, |ui| {
            for ((i, _, _), (image, projection)) in view.gallery.pairs.iter().zip(&view.textures) {
                ui.add(egui::Image::new(image).fit_to_exact_size(egui::vec2(88.0, 88.0)));
                ui.add(egui::Image::new(projection).fit_to_exact_size(egui::vec2(88.0, 88.0)));
                ui.weak(format!("#{}", i + 1));
                ui.end_row();
            }
        });
    }
    let mut export = None;
    if let Some(r) = &m.refinement {
        let frc: Vec<[f64; 2]> = r
            .epochs
            .iter()
            .map(|e| [e.epoch as f64 + 1.0, e.validation_frc])
            .collect();
        fixed_plot(("refinement FRC", id)).height(100.0).show(ui, |plot| {
            plot.line(egui_plot::Line::new(
                "held-out FRC per epoch",
                egui_plot::PlotPoints::from(frc),
            ));
        });
        if let Some(last) = r.epochs.last() {
            ui.label(format!(
                "{} epoch(s){}; held-out FRC {:.4} (best epoch {}); {:.0} particles/s",
                r.epochs.len(),
                if r.completed {
                    ""
                } else {
                    " (cancelled: the model so far)"
                },
                last.validation_frc,
                r.best_epoch + 1,
                r.particles_per_second
            ));
        }
        ui.horizontal(|ui| {
            if ui.button("Export refined model").clicked() {
                export = Some(r.refined.clone());
            }
            if ui.button("Export best epoch's model").clicked() {
                export = Some(r.best.clone());
            }
        });
    }
    if let Some(model) = export {
        super::guided_panel::export_model(app, &model);
    }
    if let Some(path) = start {
        start_particle_fit(app, id, path);
    }
}
