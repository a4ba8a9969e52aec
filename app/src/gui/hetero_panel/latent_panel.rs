//! The "Latent space" panel: the run's summary, the layout and colouring controls, the scatter
//! (clicked for a particle's volume, lassoed or boxed for a selection), the clusters with their
//! volumes, and the export of the selection.

use std::path::PathBuf;

use cryoforge_compute::formats::particles::ParticleOptions;
use cryoforge_compute::hetero::RunConfig;
use cryoforge_compute::hetero::explore::{ANALYSIS_DIR, Exploration, StateSource};
use cryoforge_compute::hetero::export::export_subset;
use cryoforge_compute::jobs::JobSpec;
use cryoforge_renderer::{PointsRenderer, PointsView};

use super::latent::{Colouring, GpuScatter, LatentView, Layout, ScatterDevice, Tool};
use crate::gui::states_panel::{StatesRequest, start_states_fit};
use crate::gui::{CryoforgeApp, ObjectId, ObjectKind};
use crate::scatter::{ScatterStyle, bounds_of, cluster_colour, edges, from_pixel, rasterise, to_pixel};

type RenderState = eframe::egui_wgpu::RenderState;

/// The "Latent space" panel, docked between the viewport and the inspector when a run is loaded.
pub fn latent_panel(app: &mut CryoforgeApp, ui: &mut egui::Ui, render_state: Option<&RenderState>) {
    let models: Vec<(ObjectId, String)> = app
        .objects
        .iter()
        .filter(|o| matches!(o.kind, ObjectKind::Model(_)))
        .map(|o| (o.id, o.name.clone()))
        .collect();
    let Some(view) = &mut app.latent else { return };
    if !view.open {
        return;
    }
    let mut actions = Vec::new();
    egui::Panel::right("latent space")
        .resizable(true)
        .default_size(440.0)
        .min_size(260.0)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.strong("Latent space");
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui
                        .button("Close")
                        .on_hover_text(
                            "Hide the latent space (reopen it from the particle file's Heterogeneity section)",
                        )
                        .clicked()
                    {
                        view.open = false;
                    }
                });
            });
            egui::ScrollArea::vertical().show(ui, |ui| {
                actions = latent_ui(view, ui, render_state, &models);
            });
        });
    let run = view.exploration.run.clone();
    for action in actions {
        match action {
            Action::Volume { z, label } => {
                app.start_job(
                    JobSpec::HeteroVolume {
                        run: run.clone(),
                        z,
                        label,
                    },
                    None,
                );
            }
            Action::OpenFile(path) => app.open(path),
            Action::FitStates(request) => start_states_fit(app, request),
            Action::Message(m) => app.message = Some(m),
        }
    }
}

/// Draws the scatter with wgpu into the view's GPU target (selected points last, on top) and
/// registers it with egui.
fn draw_on_gpu(view: &mut LatentView, rs: &RenderState, size: [u32; 2]) {
    let colours = view.colours();
    let points = view.points();
    let n = points.len() / 2;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| view.selected.get(i).copied().unwrap_or(false));
    let positions: Vec<[f32; 2]> = order.iter().map(|&i| [points[2 * i], points[2 * i + 1]]).collect();
    let rgba: Vec<[u8; 4]> = order
        .iter()
        .map(|&i| {
            let [r, g, b] = colours[i];
            [r, g, b, 255]
        })
        .collect();
    let gpu = view.gpu.get_or_insert_with(|| GpuScatter {
        renderer: PointsRenderer::new(&rs.device),
        texture: None,
    });
    gpu.renderer.set_points(&rs.device, &positions, &rgba);
    // Larger, more transparent splats when there are few points; one-pixel dots for millions.
    let (radius_px, alpha) = if n > 200_000 {
        (1.2, 0.35)
    } else if n > 20_000 {
        (2.0, 0.5)
    } else {
        (3.0, 0.8)
    };
    let b = view.bounds;
    let style = PointsView {
        bounds: edges(&b),
        radius_px,
        alpha,
        background: [0.97, 0.97, 0.97, 1.0],
    };
    let recreated = gpu.renderer.render(&rs.device, &rs.queue, &style, size);
    if let Some(texture_view) = gpu.renderer.color_view() {
        let mut egui_renderer = rs.renderer.write();
        match gpu.texture {
            Some(id) if recreated => egui_renderer.update_egui_texture_from_wgpu_texture(
                &rs.device,
                texture_view,
                wgpu::FilterMode::Linear,
                id,
            ),
            Some(_) => {}
            None => {
                gpu.texture =
                    Some(egui_renderer.register_native_texture(&rs.device, texture_view, wgpu::FilterMode::Linear))
            }
        }
    }
}

/// What the panel asks the app to do once it is drawn.
enum Action {
    Volume { z: Vec<f32>, label: String },
    OpenFile(PathBuf),
    Message(String),
    FitStates(StatesRequest),
}

fn latent_ui(
    view: &mut LatentView,
    ui: &mut egui::Ui,
    render_state: Option<&RenderState>,
    models: &[(ObjectId, String)],
) -> Vec<Action> {
    let mut actions = Vec::new();
    let e = view.exploration.clone();
    summary_ui(&e, ui);
    controls_ui(view, ui);
    // The plot.
    let side = ui.available_width().clamp(200.0, 900.0);
    update_texture(view, ui, render_state, side);
    let texture_id = match (&view.gpu, &view.texture) {
        (Some(GpuScatter { texture: Some(id), .. }), _) => *id,
        (_, Some(texture)) => texture.id(),
        _ => return actions,
    };
    let response = ui.add(egui::Image::new((texture_id, egui::vec2(side, side))).sense(egui::Sense::click_and_drag()));
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "Latent scatter"));
    plot_interaction(view, ui, &response, side, &e, &mut actions);
    // Clusters.
    ui.separator();
    clusters_ui(view, ui, &e, &mut actions);
    ui.separator();
    selection_ui(view, ui, &e, &mut actions);
    ui.separator();
    states_ui(view, ui, &e, models, &mut actions);
    actions
}

/// Fit an open model into every state: the cluster volumes or the volumes along a principal axis.
fn states_ui(
    view: &mut LatentView,
    ui: &mut egui::Ui,
    e: &Exploration,
    models: &[(ObjectId, String)],
    actions: &mut Vec<Action>,
) {
    ui.label("Fit a model into the states (guided fit, one model per state)");
    if models.is_empty() {
        ui.weak("Open a model (a structure of one state, placed like the volumes) to fit.");
        return;
    }
    if view.states_model.is_none_or(|id| !models.iter().any(|(m, _)| *m == id)) {
        view.states_model = models.first().map(|(id, _)| *id);
    }
    let chosen = models
        .iter()
        .find(|(id, _)| Some(*id) == view.states_model)
        .map_or("", |(_, n)| n.as_str());
    egui::ComboBox::from_label("model")
        .selected_text(chosen)
        .show_ui(ui, |ui| {
            for (id, name) in models {
                ui.selectable_value(&mut view.states_model, Some(*id), name);
            }
        });
    let has_path = |axis: usize| {
        e.summary
            .traversal_volumes
            .iter()
            .any(|n| n.starts_with(&format!("pc{axis}_")))
    };
    ui.horizontal(|ui| {
        ui.label("states:");
        ui.selectable_value(&mut view.states_source, StateSource::Clusters, "clusters");
        for axis in [1, 2] {
            if has_path(axis) {
                ui.selectable_value(
                    &mut view.states_source,
                    StateSource::Path { axis },
                    format!("path along PC{axis}"),
                );
            }
        }
    });
    ui.checkbox(
        &mut view.states_chain,
        "each state starts from the previous state's model",
    );
    ui.add(
        egui::DragValue::new(&mut view.states_resolution)
            .range(1.0..=50.0)
            .speed(0.1)
            .suffix(" Å resolution"),
    );
    ui.weak("Samples, steps and the other settings are the model's guided-fit settings.");
    if ui
        .button("Fit into every state")
        .on_hover_text(
            "Guided fit of the model into each state's volume; the results form one trajectory across the states",
        )
        .clicked()
        && let Some(model) = view.states_model
    {
        actions.push(Action::FitStates(StatesRequest {
            model,
            run: e.run.clone(),
            source: view.states_source,
            chained: view.states_chain,
            resolution: view.states_resolution,
        }));
    }
}

/// The run's size and its scores against the truth.
fn summary_ui(e: &Exploration, ui: &mut egui::Ui) {
    ui.label(format!(
        "{} particles, zdim {}, {} clusters",
        e.len(),
        e.zdim,
        e.summary.clusters.len()
    ));
    if let Some(t) = &e.summary.truth {
        ui.weak(format!(
            "against {}: ARI {:.3}, AMI {:.3}, |Spearman| PC1 {:.3}",
            t.column, t.ari, t.ami, t.spearman_pc1
        ));
    }
}

/// Layout, colouring and tool.
fn controls_ui(view: &mut LatentView, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.selectable_value(&mut view.layout, Layout::Umap, "UMAP");
        ui.selectable_value(&mut view.layout, Layout::Pca, "PCA");
        ui.separator();
        let label = match &view.colouring {
            Colouring::Cluster => "cluster".to_owned(),
            Colouring::Density => "density".to_owned(),
            Colouring::Column(c) => c.clone(),
        };
        egui::ComboBox::from_id_salt("colour by")
            .selected_text(format!("colour: {label}"))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut view.colouring, Colouring::Cluster, "cluster");
                ui.selectable_value(&mut view.colouring, Colouring::Density, "density");
                for (name, _) in view.columns.clone() {
                    ui.selectable_value(&mut view.colouring, Colouring::Column(name.clone()), name);
                }
            });
    });
    ui.horizontal(|ui| {
        ui.selectable_value(&mut view.tool, Tool::Click, "Click: volume");
        ui.selectable_value(&mut view.tool, Tool::Lasso, "Lasso");
        ui.selectable_value(&mut view.tool, Tool::Rectangle, "Rectangle");
    });
}

/// Redraws the scatter (`side` points square) when the layout, colouring, selection, size or
/// device changed: GPU point splats, or the CPU rasteriser.
fn update_texture(view: &mut LatentView, ui: &egui::Ui, render_state: Option<&RenderState>, side: f32) {
    let size = [side as usize, side as usize];
    let key = (
        view.layout,
        view.colouring.clone(),
        view.selection_count(),
        size,
        view.scatter_device,
    );
    if view.texture_key.as_ref() == Some(&key) {
        return;
    }
    // Bounds, colours and the image only change with the layout, colouring or selection.
    view.bounds = bounds_of(view.points());
    let pixels_per_point = ui.ctx().pixels_per_point();
    let hardware = |rs: &RenderState| {
        !matches!(
            rs.adapter.get_info().device_type,
            wgpu::DeviceType::Cpu | wgpu::DeviceType::Other
        )
    };
    let gpu = render_state.filter(|rs| match view.scatter_device {
        ScatterDevice::Auto => hardware(rs),
        ScatterDevice::Gpu => true,
        ScatterDevice::Cpu => false,
    });
    match gpu {
        // GPU point splats: the points are uploaded and drawn in one instanced call.
        Some(rs) => draw_on_gpu(view, rs, [(side * pixels_per_point).round() as u32; 2]),
        None => {
            view.gpu = None;
            let pixels = rasterise(
                view.points(),
                &view.colours(),
                size[0],
                size[1],
                Some(view.bounds),
                &ScatterStyle::default(),
            );
            let image = egui::ColorImage::from_rgba_unmultiplied(size, &pixels);
            view.texture = Some(
                ui.ctx()
                    .load_texture("latent scatter", image, egui::TextureOptions::LINEAR),
            );
        }
    }
    view.texture_key = Some(key);
}

/// The tools on the plot (`side` points square): a click asks for the nearest particle's
/// volume, a lasso or rectangle drag selects; the clicked particle is ringed.
fn plot_interaction(
    view: &mut LatentView,
    ui: &egui::Ui,
    response: &egui::Response,
    side: f32,
    e: &Exploration,
    actions: &mut Vec<Action>,
) {
    let size = [side as usize, side as usize];
    let rect = response.rect;
    let bounds = view.bounds;
    let to_data = |pos: egui::Pos2| from_pixel([pos.x - rect.left(), pos.y - rect.top()], &bounds, size[0], size[1]);
    let to_screen = |p: [f32; 2]| {
        let [x, y] = to_pixel(p, &bounds, size[0], size[1]);
        egui::pos2(rect.left() + x, rect.top() + y)
    };
    match view.tool {
        Tool::Click => {
            if response.clicked()
                && let Some(pos) = response.interact_pointer_pos()
                && let Some(i) = view.nearest(to_data(pos))
            {
                view.clicked = Some(i);
                actions.push(Action::Volume {
                    z: e.latent(i).to_vec(),
                    label: format!("particle {}, cluster {}", i + 1, e.labels[i]),
                });
            }
        }
        Tool::Lasso | Tool::Rectangle => {
            if response.drag_started() {
                view.drag.clear();
            }
            if response.dragged()
                && let Some(pos) = response.interact_pointer_pos()
            {
                let p = to_data(pos);
                match view.tool {
                    Tool::Rectangle => {
                        let start = view.drag.first().copied().unwrap_or(p);
                        view.drag = vec![start, [p[0], start[1]], p, [start[0], p[1]]];
                    }
                    _ => view.drag.push(p),
                }
            }
            if response.drag_stopped() && view.drag.len() >= 3 {
                let polygon = std::mem::take(&mut view.drag);
                view.select_polygon(&polygon);
            }
            if view.drag.len() >= 2 {
                let mut line: Vec<egui::Pos2> = view.drag.iter().map(|&p| to_screen(p)).collect();
                line.push(line[0]);
                ui.painter()
                    .add(egui::Shape::line(line, egui::Stroke::new(1.5, egui::Color32::BLACK)));
            }
        }
    }
    if let Some(i) = view.clicked {
        let points = view.points();
        let centre = to_screen([points[2 * i], points[2 * i + 1]]);
        ui.painter()
            .circle_stroke(centre, 6.0, egui::Stroke::new(2.0, egui::Color32::BLACK));
    }
}

/// The clusters, each with its colour, size, volume and a button selecting it.
fn clusters_ui(view: &mut LatentView, ui: &mut egui::Ui, e: &Exploration, actions: &mut Vec<Action>) {
    let dir = e.run.join(ANALYSIS_DIR);
    egui::Grid::new("clusters").striped(true).show(ui, |ui| {
        for c in &e.summary.clusters {
            let [r, g, b] = cluster_colour(c.index);
            ui.horizontal(|ui| {
                let (swatch, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
                ui.painter()
                    .circle_filled(swatch.center(), 5.0, egui::Color32::from_rgb(r, g, b));
                ui.label(format!("cluster {}", c.index));
            });
            ui.label(format!("{} particles", c.size));
            if ui.small_button("Volume").clicked() {
                actions.push(Action::OpenFile(dir.join(&c.volume)));
            }
            if ui.small_button("Select").clicked() {
                view.select_cluster(c.index);
            }
            ui.end_row();
        }
    });
}

/// The selection's size, and its export as STAR/.cs (with its indices beside).
fn selection_ui(view: &mut LatentView, ui: &mut egui::Ui, e: &Exploration, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        ui.label(format!("{} selected", view.selection_count()));
        if ui.small_button("Clear").clicked() {
            view.clear_selection();
        }
    });
    ui.horizontal(|ui| {
        ui.label("Export to");
        ui.text_edit_singleline(&mut view.export_path);
    });
    if ui
        .button("Export selection")
        .on_hover_text("STAR or .cs by the extension; the same format as the input keeps every column")
        .clicked()
    {
        let output = PathBuf::from(&view.export_path);
        let rows = view.selected_indices();
        let message = match RunConfig::read(&e.run).ok() {
            Some(config) => match export_subset(
                &config.particles,
                &rows,
                &output,
                &ParticleOptions::with_pixel_size(config.options.pixel_size_angstrom),
            ) {
                Ok(n) => {
                    // The indices too, for `cryoforge hetero export --selection`.
                    let list: String = rows.iter().map(|r| format!("{r}\n")).collect();
                    let _ = cryoforge_compute::io::write_atomically(&output.with_extension("indices.txt"), |w| {
                        w.write_all(list.as_bytes())
                    });
                    format!("wrote {n} particles to {}", output.display())
                }
                Err(err) => err.to_string(),
            },
            None => format!("{}: cannot read the run's configuration", e.run.display()),
        };
        actions.push(Action::Message(message));
    }
}
