//! The panels around the viewport: menu, data list, inspector (with map tools, trajectory
//! controls and fitting), jobs with progress and cancel, and the status bar.

use std::path::PathBuf;
use std::sync::Arc;

use cryoforge_compute::formats::model_write::write_structure;
use cryoforge_compute::jobs::{JobSpec, MapTool, Series};

use super::widgets::{count_ui, fixed_plot};
use super::{CryoforgeApp, JobState, Object, ObjectId, ObjectKind, SurfaceStyle};
use crate::view::{AtomStyle, ColorBy};

pub fn menu_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui.button("Open…").clicked() {
                ui.close();
                let extensions = cryoforge_compute::formats::KNOWN_EXTENSIONS;
                match rfd::FileDialog::new()
                    .add_filter("cryo-EM files", extensions)
                    .pick_files()
                {
                    Some(paths) => {
                        for p in paths {
                            app.open(p);
                        }
                    }
                    // Cancelled, or no desktop file-chooser portal on this system.
                    None => {
                        app.message = Some(
                            "no file chosen (files can also be dropped on the window or given on the command line)"
                                .into(),
                        )
                    }
                }
            }
            let reopen = ui.add_enabled(
                !app.last_session.is_empty(),
                egui::Button::new(format!("Reopen last session ({} files)", app.last_session.len())),
            );
            if reopen.clicked() {
                ui.close();
                app.reopen_last_session();
            }
            if ui.button("Export selected…").clicked() {
                ui.close();
                if let Some(path) = rfd::FileDialog::new()
                    .add_filter("model or map", &["cif", "pdb", "mrc", "map"])
                    .save_file()
                {
                    export_selected(app, path);
                }
            }
            if ui.button("Quit").clicked() {
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            }
        });
        ui.menu_button("View", |ui| {
            if ui.button("Fit all").clicked() {
                ui.close();
                app.fit_view(None);
            }
            if ui.button("Reset view").clicked() {
                ui.close();
                app.reset_view();
            }
        });
    });
}

/// Writes the selected model (PDB/mmCIF) or map (MRC) to `path`.
pub fn export_selected(app: &mut CryoforgeApp, path: PathBuf) {
    let Some(object) = app.selected.and_then(|id| app.object(id)) else {
        app.message = Some("select a map or model to export".into());
        return;
    };
    let result = match &object.kind {
        ObjectKind::Model(m) => {
            let mut model = (*m.model).clone();
            if let Some(c) = &m.live_coordinates {
                model.frames = vec![c.clone()];
            }
            write_structure(&model, &path).map_err(|e| e.to_string())
        }
        ObjectKind::Map(m) => m.map.write(&path).map_err(|e| e.to_string()),
        _ => Err("only maps and models can be exported".into()),
    };
    app.message = Some(match result {
        Ok(()) => format!("wrote {}", path.display()),
        Err(e) => e,
    });
}

pub fn status_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        if let Some(p) = app.hover.position_angstrom {
            ui.monospace(format!("({:8.2}, {:8.2}, {:8.2}) Å", p[0], p[1], p[2]));
        }
        if let Some(v) = app.hover.map_value {
            ui.monospace(format!("map {v:.4}"));
        }
        if let Some(a) = &app.hover.atom {
            ui.monospace(a);
        }
        if let Some(a) = &app.picked_atom {
            ui.separator();
            ui.monospace(format!("selected {a}"));
        }
        ui.separator();
        if let Some(m) = &app.message {
            ui.label(m);
        }
        if let Some(why) = &app.viewport.unavailable {
            ui.colored_label(ui.visuals().warn_fg_color, why);
        }
    });
}

pub fn data_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui) {
    ui.heading("Data");
    if app.objects.is_empty() {
        ui.weak("Open files with File > Open…, by dropping them here, or on the command line.");
    }
    let mut changed = false;
    egui::ScrollArea::vertical().show(ui, |ui| {
        for o in &mut app.objects {
            ui.horizontal(|ui| {
                let visible = o.visible;
                let response = ui
                    .add(egui::Checkbox::without_text(&mut o.visible))
                    .on_hover_text("show or hide");
                let name = format!("show {}", o.name);
                response.widget_info(|| egui::WidgetInfo::selected(egui::Role::CheckBox, true, visible, name.clone()));
                changed |= response.changed();
                let selected = app.selected == Some(o.id);
                if ui
                    .selectable_label(selected, format!("{}\n{}", o.name, o.label()))
                    .clicked()
                {
                    app.selected = Some(o.id);
                }
            });
        }
    });
    if changed {
        app.mark_scene_dirty();
    }
}

pub fn jobs_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.heading("Jobs");
        if ui.button("Clear finished").clicked() {
            app.jobs
                .retain(|j| matches!(j.state, JobState::Running | JobState::Queued));
        }
    });
    let mut cancel = None;
    let mut pause = None;
    egui::ScrollArea::vertical().show(ui, |ui| {
        for job in app.jobs.iter().rev() {
            ui.horizontal(|ui| {
                ui.label(&job.title);
                match &job.state {
                    JobState::Queued => {
                        ui.weak("queued");
                    }
                    JobState::Running => {
                        let fraction = job.total.map(|t| job.step as f32 / t.max(1) as f32);
                        let bar = match fraction {
                            Some(f) => egui::ProgressBar::new(f).show_percentage(),
                            None => egui::ProgressBar::new(0.0)
                                .animate(true)
                                .text(format!("step {}", job.step)),
                        };
                        ui.add_sized([180.0, 16.0], bar);
                        if ui.button("Cancel").clicked() {
                            cancel = Some(job.id);
                        }
                        if ui.button("Pause").clicked() {
                            pause = Some(true);
                        }
                        if ui.button("Resume").clicked() {
                            pause = Some(false);
                        }
                    }
                    JobState::Finished(seconds) => {
                        ui.label(format!("done in {seconds:.1} s"));
                    }
                    JobState::Cancelled => {
                        ui.label("cancelled (kept the best so far)");
                    }
                    JobState::Failed(why) => {
                        ui.colored_label(ui.visuals().error_fg_color, format!("failed: {why}"));
                    }
                }
                ui.monospace(&job.message);
            });
            plot_ui(ui, job.id, &job.history);
        }
    });
    if let Some(id) = cancel {
        app.compute.cancel(id);
    }
    if let Some(p) = pause {
        app.compute.set_paused(p);
    }
}

/// A small live plot of every series a job reports (egui_plot). Series of different units
/// share the plot, so each is drawn scaled to its own range; the legend gives its latest value.
fn plot_ui(ui: &mut egui::Ui, job_id: u64, history: &[(Series, Vec<[f64; 2]>)]) {
    if history.iter().all(|(_, points)| points.len() < 2) {
        return;
    }
    fixed_plot(("job plot", job_id))
        .width(ui.available_width().min(640.0))
        .height(72.0)
        .show_axes([true, false])
        .legend(egui_plot::Legend::default().position(egui_plot::Corner::LeftTop))
        .show(ui, |plot| {
            for (series, points) in history {
                let (lo, hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                    (lo.min(p[1]), hi.max(p[1]))
                });
                let range = if hi > lo { hi - lo } else { 1.0 };
                let scaled: Vec<[f64; 2]> = points.iter().map(|p| [p[0], (p[1] - lo) / range]).collect();
                let latest = points.last().map_or(f64::NAN, |p| p[1]);
                let name = format!("{} {latest:.4}", series.label());
                plot.line(egui_plot::Line::new(name, egui_plot::PlotPoints::from(scaled)));
            }
        });
}

pub fn inspector_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui) {
    ui.heading("Inspector");
    let Some(id) = app.selected else {
        ui.weak("Select an object.");
        return;
    };
    egui::ScrollArea::vertical().show(ui, |ui| {
        let maps: Vec<(ObjectId, String)> = app
            .objects
            .iter()
            .filter(|o| matches!(o.kind, ObjectKind::Map(_)))
            .map(|o| (o.id, o.name.clone()))
            .collect();
        let Some(index) = app.objects.iter().position(|o| o.id == id) else {
            return;
        };
        let mut fit = false;
        let name = app.objects[index].name.clone();
        ui.horizontal(|ui| {
            ui.strong(&name);
            if ui.small_button("Fit view").clicked() {
                fit = true;
            }
        });
        if let Some(p) = &app.objects[index].path {
            ui.weak(p.display().to_string());
        }
        match &mut app.objects[index].kind {
            ObjectKind::Loading => {
                ui.spinner();
            }
            ObjectKind::Failed(why) => {
                ui.colored_label(ui.visuals().error_fg_color, why.as_str());
            }
            ObjectKind::Info(summary) => {
                let text = summary.to_string();
                let particle_file = super::particle_file::FilePixelSize::of(summary);
                if let (Some(file), Some(path)) = (particle_file, app.objects[index].path.clone()) {
                    super::particle_file::particle_file_ui(app, ui, &path, file);
                }
                // Tables (optics groups, loops) keep their columns: scroll rather than wrap.
                egui::ScrollArea::both().id_salt(("summary", id)).show(ui, |ui| {
                    ui.add(
                        egui::Label::new(egui::RichText::new(text).monospace()).wrap_mode(egui::TextWrapMode::Extend),
                    );
                });
            }
            ObjectKind::Map(_) => map_inspector_ui(app, ui, id),
            ObjectKind::Model(_) => model_inspector_ui(app, ui, id, &maps),
        }
        if fit {
            app.fit_view(Some(id));
        }
        ui.separator();
        ui.horizontal(|ui| {
            ui.label("Export to");
            ui.text_edit_singleline(&mut app.export_path);
        });
        if ui.button("Export").clicked() && !app.export_path.is_empty() {
            let path = PathBuf::from(app.export_path.clone());
            export_selected(app, path);
        }
    });
}

fn map_inspector_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui, id: ObjectId) {
    let Some(Object {
        name,
        kind: ObjectKind::Map(m),
        ..
    }) = app.object_mut(id)
    else {
        return;
    };
    let source = name.clone();
    let stats = m.statistics;
    let g = m.map.grid.clone();
    ui.label(format!(
        "{} × {} × {} voxels, {:.3} Å",
        g.dims[0], g.dims[1], g.dims[2], g.voxel_size_angstrom[0]
    ));
    ui.label(format!(
        "min {:.3}  max {:.3}  mean {:.3}  σ {:.3}",
        stats.min, stats.max, stats.mean, stats.rms
    ));
    let mut level = m.level;
    let mut sigma = m.level_sigma();
    let level_changed = ui
        .add(egui::Slider::new(&mut level, stats.min..=stats.max).text("level"))
        .changed();
    let sigma_changed = ui
        .add(egui::DragValue::new(&mut sigma).speed(0.05).suffix(" σ"))
        .changed();
    if let Some((mesh_level, mesh)) = &m.mesh {
        ui.weak(format!(
            "surface at {mesh_level:.4}: {} triangles",
            mesh.triangles.len()
        ));
    }
    let mut restyle = false;
    ui.horizontal(|ui| {
        for (style, label) in [
            (SurfaceStyle::Surface, "surface"),
            (SurfaceStyle::Mesh, "mesh"),
            (SurfaceStyle::Transparent, "transparent"),
        ] {
            restyle |= ui.radio_value(&mut m.style, style, label).changed();
        }
    });
    restyle |= ui.color_edit_button_rgb(&mut m.color).changed();
    restyle |= ui.checkbox(&mut m.show_box, "bounding box").changed();
    ui.horizontal(|ui| {
        restyle |= ui.checkbox(&mut m.show_slice, "slice").changed();
        for (axis, label) in ["x", "y", "z"].iter().enumerate() {
            if ui.radio_value(&mut m.slice_axis, axis, *label).changed() {
                m.slice_index = g.dims[axis] / 2;
                restyle = true;
            }
        }
    });
    if m.show_slice {
        let last = g.dims[m.slice_axis].saturating_sub(1);
        restyle |= ui
            .add(egui::Slider::new(&mut m.slice_index, 0..=last).text("slice"))
            .changed();
    }
    let current_level = m.level;
    let map = m.map.clone();
    if level_changed {
        app.set_level(id, level);
    } else if sigma_changed {
        app.set_level(id, stats.mean + sigma * stats.rms);
    }
    if restyle {
        app.mark_scene_dirty();
    }
    ui.separator();
    ui.label("Map tools (new map)");
    let mut tool = None;
    let (models, resolution) = super::segment_panel::open_models(app);
    ui.horizontal_wrapped(|ui| {
        if ui.button("z-score").clicked() {
            tool = Some(MapTool::ZScore);
        }
        if ui.button("flip hand").clicked() {
            tool = Some(MapTool::FlipHand);
        }
        if ui.button("threshold at level").clicked() {
            tool = Some(MapTool::Threshold { level: current_level });
        }
        if ui.button("remove dust").clicked() {
            tool = Some(MapTool::Dust {
                level: current_level,
                min_volume_angstrom3: 1000.0,
            });
        }
        if ui.button("crop to level").clicked() {
            tool = Some(MapTool::Crop {
                level: current_level,
                padding_angstrom: 5.0,
            });
        }
        if ui.button("low-pass 8 Å").clicked() {
            tool = Some(MapTool::LowPass {
                resolution_angstrom: 8.0,
            });
        }
        if ui.button("resample ×2 coarser").clicked() {
            tool = Some(MapTool::Resample {
                voxel_size_angstrom: g.voxel_size_angstrom[0] * 2.0,
            });
        }
        super::segment_panel::segment_tool_ui(ui, &mut tool, current_level, &models, resolution);
    });
    if let Some(tool) = tool {
        app.start_job(
            JobSpec::MapTool {
                map: map.clone(),
                source: source.clone(),
                tool,
            },
            None,
        );
    }
    super::build_panel::build_ui(app, ui, id, map, &source);
}

fn model_inspector_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui, id: ObjectId, maps: &[(ObjectId, String)]) {
    let Some(m) = app.model_mut(id) else {
        return;
    };
    let counts = m.model.counts();
    ui.label(format!(
        "{} chains, {} residues, {} atoms, {} model(s)",
        counts.chains, counts.residues, counts.atoms, counts.models
    ));
    m.reading_notes_ui(ui, id);
    let mut restyle = false;
    ui.horizontal(|ui| {
        restyle |= ui.radio_value(&mut m.style, AtomStyle::Cartoon, "cartoon").changed();
        restyle |= ui.radio_value(&mut m.style, AtomStyle::Spheres, "atoms").changed();
        restyle |= ui.radio_value(&mut m.style, AtomStyle::Bonds, "sticks").changed();
        restyle |= ui.radio_value(&mut m.style, AtomStyle::Trace, "Cα tube").changed();
        restyle |= ui
            .radio_value(&mut m.style, AtomStyle::Worm, "worm")
            .on_hover_text("a Cα tube whose radius follows each residue's B-factor (RMSF)")
            .changed();
    });
    ui.horizontal(|ui| {
        ui.label("colour by");
        for (c, label) in [
            (ColorBy::Chain, "chain"),
            (ColorBy::Element, "element"),
            (ColorBy::BFactor, "B-factor"),
            (ColorBy::Uniform, "uniform"),
        ] {
            restyle |= ui.radio_value(&mut m.color_by, c, label).changed();
        }
    });
    if m.color_by == ColorBy::Uniform {
        restyle |= ui.color_edit_button_rgb(&mut m.color).changed();
    }
    if m.color_by == ColorBy::BFactor {
        let (lo, hi) = m
            .model
            .atoms
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), at| {
                (a.min(at.b_factor), b.max(at.b_factor))
            });
        super::widgets::b_factor_legend_ui(ui, lo, hi);
    }
    let frames = m.model.frames.len();
    if frames > 1 {
        ui.separator();
        ui.label(format!("Trajectory: {frames} frames"));
        let mut frame = m.frame;
        if ui
            .add(egui::Slider::new(&mut frame, 0..=frames - 1).text("frame"))
            .changed()
        {
            m.frame = frame;
            m.live_coordinates = None;
            restyle = true;
        }
        ui.horizontal(|ui| {
            if ui.button(if m.playing { "Pause" } else { "Play" }).clicked() {
                m.playing = !m.playing;
            }
            ui.add(egui::Slider::new(&mut m.frames_per_second, 1.0..=60.0).text("frames/s"));
        });
    }
    ui.separator();
    ui.label("Fit in map");
    let mut start = None;
    if maps.is_empty() {
        ui.weak("Open a map to fit into.");
    } else {
        ui.add(
            egui::DragValue::new(&mut m.fit_resolution)
                .range(1.0..=50.0)
                .suffix(" Å resolution"),
        );
        count_ui(ui, &mut m.fit_search, 0..=500, "global starts: ");
        for (map_id, map_name) in maps {
            if ui.button(format!("Fit into {map_name}")).clicked() {
                start = Some(*map_id);
            }
        }
    }
    let mut preview = None;
    let mut accept = None;
    if !m.placements.is_empty() {
        ui.label("Placements (best first)");
        for (i, p) in m.placements.iter().enumerate().take(20) {
            ui.horizontal(|ui| {
                if ui
                    .selectable_label(
                        m.previewed == Some(i),
                        format!(
                            "#{} cc {:.4}  shift {:.1} Å  rot {:.1}°",
                            i + 1,
                            p.correlation,
                            p.shift_angstrom,
                            p.rotation_deg
                        ),
                    )
                    .clicked()
                {
                    preview = Some(i);
                }
            });
        }
        if ui.button("Accept shown placement").clicked() {
            accept = m.previewed;
        }
    }
    let (resolution, starts, model) = (m.fit_resolution, m.fit_search, m.model.clone());
    if restyle {
        app.mark_scene_dirty();
    }
    if let Some(map_id) = start
        && let Some(Object {
            kind: ObjectKind::Map(map),
            ..
        }) = app.object(map_id)
    {
        let spec = JobSpec::RigidFit {
            map: map.map.clone(),
            model,
            resolution_angstrom: resolution,
            search_starts: starts,
        };
        app.start_job(spec, Some(id));
    }
    if let Some(i) = preview {
        app.preview_placement(Some(id), i);
    }
    if let Some(i) = accept {
        accept_placement(app, id, i);
    }
    if let Some(result) = app.model_mut(id).and_then(|m| m.build.clone()) {
        super::build_panel::build_summary_ui(ui, &result);
    }
    super::states_panel::states_ui(app, ui, id);
    super::guided_panel::guided_ui(app, ui, id, maps);
    super::flex_panel::flex_ui(app, ui, id, maps);
    super::particle_panel::particle_ui(app, ui, id);
}

/// Applies a placement to the model for good (all frames), clearing the fit results.
fn accept_placement(app: &mut CryoforgeApp, id: ObjectId, index: usize) {
    let Some(Object {
        kind: ObjectKind::Model(m),
        name,
        ..
    }) = app.object_mut(id)
    else {
        return;
    };
    let Some(p) = m.placements.get(index) else { return };
    let mut model = (*m.model).clone();
    for frame in &mut model.frames {
        for q in frame.iter_mut() {
            *q = p.transform.apply(q.map(f64::from)).map(|v| v as f32);
        }
    }
    m.model = Arc::new(model);
    m.placements.clear();
    m.previewed = None;
    m.live_coordinates = None;
    if !name.ends_with(" (fitted)") {
        name.push_str(" (fitted)");
    }
    app.mark_scene_dirty();
}
