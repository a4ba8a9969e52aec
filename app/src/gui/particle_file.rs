//! The pixel size a particle file's images are read with in the app: a field in a STAR/.cs
//! file's inspector, off for the file's own value. RELION 3.0 tables without optics give none;
//! refinement and heterogeneity training need it set here (the command line's `--apix`).

use std::path::Path;

use cryoforge_compute::formats::summary::{Details, FileSummary};

use super::CryoforgeApp;

/// What a particle file's summary says about its pixel size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FilePixelSize {
    /// The file gives none for some of its particles.
    pub missing: bool,
    /// The first optics group's, when the file gives it.
    pub first_angstrom: Option<f64>,
}

impl FilePixelSize {
    /// None for files that are not STAR or `.cs`.
    pub fn of(summary: &FileSummary) -> Option<Self> {
        let (missing, optics) = match &summary.details {
            Details::Star(s) => (s.needs_pixel_size, &s.optics),
            Details::Cs(c) => (c.needs_pixel_size, &c.optics),
            _ => return None,
        };
        Some(Self {
            missing,
            first_angstrom: optics.iter().find_map(|g| g.pixel_size_angstrom),
        })
    }
}

/// The sections of a STAR/.cs file's inspector: its pixel size, then heterogeneity training.
pub fn particle_file_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui, path: &Path, file: FilePixelSize) {
    pixel_size_ui(app, ui, path, file);
    super::hetero_panel::particle_file_ui(app, ui, path);
}

/// The pixel size `path`'s particles are read with (None: the file's own).
pub fn pixel_size_of(app: &CryoforgeApp, path: &Path) -> Option<f64> {
    app.particle_pixel_sizes.get(path).copied()
}

/// The "Pixel size" checkbox and value of a particle file's inspector.
fn pixel_size_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui, path: &Path, file: FilePixelSize) {
    let mut set = app.particle_pixel_sizes.contains_key(path);
    ui.horizontal(|ui| {
        ui.checkbox(&mut set, "Pixel size")
            .on_hover_text("The particle images' pixel size, replacing the file's (needed when it gives none)");
        if set {
            let value = app
                .particle_pixel_sizes
                .entry(path.to_owned())
                .or_insert_with(|| file.first_angstrom.unwrap_or(1.0));
            ui.add(
                egui::DragValue::new(value)
                    .range(0.01..=100.0)
                    .speed(0.001)
                    .max_decimals(4)
                    .suffix(" Å/px"),
            );
        } else {
            app.particle_pixel_sizes.remove(path);
            ui.weak(match file.first_angstrom {
                Some(a) => format!("from the file: {a:.4} Å/px"),
                None => "the file gives none".to_owned(),
            });
        }
    });
    if file.missing && !set {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            "This file gives no pixel size: set it to refine or train on its particles.",
        );
    }
}
