//! The heterogeneity explorer in the app: a section in a particle file's inspector trains the
//! latent model (or loads a finished run), and a "Latent space" panel docked beside the viewport
//! shows every particle as a point of the UMAP (or PCA) of its latent (GPU point splats through
//! wgpu; a CPU-rasterised image where there is no wgpu renderer), coloured by cluster, by local
//! density or by a numeric particle column. Clicking a point decodes its volume into the
//! viewport; lasso or rectangle select points; clusters are listed with their sizes and volumes;
//! the selection exports as STAR/.cs that keep every original column.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cryoforge_compute::hetero::HeteroOptions;
use cryoforge_compute::hetero::explore::{
    ANALYSIS_DIR, AnalyzeOptions, Exploration, SUMMARY_FILE, export_subset, particle_column,
};
use cryoforge_compute::jobs::JobSpec;
use cryoforge_renderer::{PointsRenderer, PointsView};

use super::CryoforgeApp;
use crate::scatter::{
    Bounds, ScatterStyle, bounds_of, cluster_colour, from_pixel, inside_polygon, rasterise, to_pixel, value_colour,
};

/// What the next training run of a particle file uses.
#[derive(Clone, Debug)]
pub struct HeteroSettings {
    pub zdim: usize,
    pub epochs: usize,
    pub image_size: usize,
    pub clusters: usize,
    /// Pose-aware encoder templates (0: image only).
    pub templates: usize,
    /// Rounds of 3D classification after clustering, seeded by the clusters.
    pub classify: usize,
    /// The run directory ("" = beside the particle file).
    pub run: String,
    /// The run folder whose saved options the fields were last filled from.
    pub loaded_from: Option<PathBuf>,
}

impl Default for HeteroSettings {
    fn default() -> Self {
        let o = HeteroOptions::default();
        Self {
            zdim: o.zdim,
            epochs: o.epochs,
            image_size: o.image_size,
            clusters: AnalyzeOptions::default().clusters,
            templates: o.templates,
            classify: 0,
            run: String::new(),
            loaded_from: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Umap,
    Pca,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Colouring {
    Cluster,
    Density,
    /// A numeric column of the particle file.
    Column(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Click,
    Lasso,
    Rectangle,
}

/// The latent-space window's state.
pub struct LatentView {
    pub exploration: Arc<Exploration>,
    pub layout: Layout,
    pub colouring: Colouring,
    pub tool: Tool,
    pub selected: Vec<bool>,
    /// Numeric columns of the particle file that can colour the points (name, values).
    pub columns: Vec<(String, Vec<f64>)>,
    pub export_path: String,
    pub open: bool,
    texture: Option<egui::TextureHandle>,
    texture_key: Option<(Layout, Colouring, usize, [usize; 2], ScatterDevice)>,
    /// Where the scatter is drawn.
    pub scatter_device: ScatterDevice,
    /// The GPU scatter (point splats drawn by wgpu), once drawn there.
    gpu: Option<GpuScatter>,
    bounds: Bounds,
    drag: Vec<[f32; 2]>,
    /// The particle whose volume was asked for last.
    pub clicked: Option<usize>,
}

/// Where the latent scatter is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScatterDevice {
    /// GPU point splats on a hardware GPU; the CPU rasteriser on a software adapter (llvmpipe),
    /// where it is 10–25× faster (`scripts/bench.sh hetero`) — the policy of the compute kernels.
    Auto,
    Gpu,
    Cpu,
}

/// The points drawn on the GPU and the texture the UI shows them through.
struct GpuScatter {
    renderer: PointsRenderer,
    texture: Option<egui::TextureId>,
}

/// The particle file a run was trained on.
fn particles_of(exploration: &Exploration) -> Option<PathBuf> {
    cryoforge_compute::hetero::RunConfig::read(&exploration.run)
        .ok()
        .map(|c| c.particles)
}

impl LatentView {
    pub fn new(exploration: Arc<Exploration>) -> Self {
        let n = exploration.len();
        let mut columns = Vec::new();
        if let Some(particles) = particles_of(&exploration) {
            let truth = exploration.summary.options.truth_column.clone();
            for name in truth.iter().map(String::as_str).chain(["rlnDefocusU", "rlnAngleTilt"]) {
                if let Ok(Some(values)) = particle_column(&particles, name, n)
                    && values.len() == n
                    && !columns.iter().any(|(c, _)| c == name)
                {
                    columns.push((name.to_owned(), values));
                }
            }
        }
        let export_path = exploration.run.join("selection.star").display().to_string();
        let bounds = bounds_of(&exploration.umap);
        Self {
            exploration,
            layout: Layout::Umap,
            colouring: Colouring::Cluster,
            tool: Tool::Click,
            selected: vec![false; n],
            columns,
            export_path,
            open: true,
            texture: None,
            texture_key: None,
            scatter_device: ScatterDevice::Auto,
            gpu: None,
            bounds,
            drag: Vec::new(),
            clicked: None,
        }
    }

    /// Whether the scatter was last drawn by the GPU point pipeline (not the CPU fallback).
    pub fn drawn_on_gpu(&self) -> bool {
        self.gpu.as_ref().is_some_and(|g| g.texture.is_some())
    }

    fn points(&self) -> &[f32] {
        match self.layout {
            Layout::Umap => &self.exploration.umap,
            Layout::Pca => &self.exploration.pca,
        }
    }

    pub fn selection_count(&self) -> usize {
        self.selected.iter().filter(|s| **s).count()
    }

    pub fn selected_indices(&self) -> Vec<usize> {
        (0..self.selected.len()).filter(|&i| self.selected[i]).collect()
    }

    /// Per-point colours for the current colouring; unselected points fade when there is a
    /// selection.
    fn colours(&self) -> Vec<[u8; 3]> {
        let n = self.exploration.len();
        let mut colours: Vec<[u8; 3]> = match &self.colouring {
            Colouring::Cluster => self.exploration.labels.iter().map(|&l| cluster_colour(l)).collect(),
            Colouring::Density => {
                // Points per cell of a 64² grid over the layout, on a log scale.
                let points = self.points();
                let mut counts = vec![0u32; 64 * 64];
                let cell = |i: usize| {
                    let [x, y] = to_pixel([points[2 * i], points[2 * i + 1]], &self.bounds, 64, 64);
                    (y.clamp(0.0, 63.0) as usize) * 64 + x.clamp(0.0, 63.0) as usize
                };
                for i in 0..n {
                    counts[cell(i)] += 1;
                }
                let max = (*counts.iter().max().unwrap_or(&1)).max(1) as f32;
                (0..n)
                    .map(|i| value_colour((1.0 + counts[cell(i)] as f32).ln() / (1.0 + max).ln()))
                    .collect()
            }
            Colouring::Column(name) => match self.columns.iter().find(|(c, _)| c == name) {
                Some((_, values)) => {
                    let (lo, hi) = values
                        .iter()
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
                    values
                        .iter()
                        .map(|&v| value_colour(((v - lo) / (hi - lo).max(1e-12)) as f32))
                        .collect()
                }
                None => vec![[90, 90, 90]; n],
            },
        };
        if self.selection_count() > 0 {
            for (c, &s) in colours.iter_mut().zip(&self.selected) {
                if !s {
                    *c = [
                        (c[0] as u16 / 4 + 180) as u8,
                        (c[1] as u16 / 4 + 180) as u8,
                        (c[2] as u16 / 4 + 180) as u8,
                    ];
                }
            }
        }
        colours
    }

    /// The particle nearest a point of the layout.
    fn nearest(&self, p: [f32; 2]) -> Option<usize> {
        let points = self.points();
        (0..points.len() / 2).min_by(|&a, &b| {
            let d = |i: usize| (points[2 * i] - p[0]).powi(2) + (points[2 * i + 1] - p[1]).powi(2);
            d(a).total_cmp(&d(b))
        })
    }

    /// Selects the points inside a polygon of the layout (replacing the selection).
    pub fn select_polygon(&mut self, polygon: &[[f32; 2]]) {
        let points = match self.layout {
            Layout::Umap => &self.exploration.umap,
            Layout::Pca => &self.exploration.pca,
        };
        for (i, s) in self.selected.iter_mut().enumerate() {
            *s = inside_polygon([points[2 * i], points[2 * i + 1]], polygon);
        }
        self.texture_key = None;
    }

    pub fn select_cluster(&mut self, cluster: usize) {
        for (s, &l) in self.selected.iter_mut().zip(&self.exploration.labels) {
            *s = l == cluster;
        }
        self.texture_key = None;
    }

    pub fn clear_selection(&mut self) {
        self.selected.iter_mut().for_each(|s| *s = false);
        self.texture_key = None;
    }
}

/// The run directory a particle file trains into by default: `<stem>_hetero` beside it.
pub fn default_run_dir(particles: &Path) -> PathBuf {
    let stem = particles
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "particles".into());
    particles.with_file_name(format!("{stem}_hetero"))
}

/// The section of a STAR/.cs file's inspector.
pub fn particle_file_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui, path: &Path) {
    ui.separator();
    ui.label("Heterogeneity (latent model of the particles' states)");
    let settings = &mut app.hetero_settings;
    // A folder that already holds a run shows that run's options (resuming keeps them).
    let run = if settings.run.is_empty() {
        default_run_dir(path)
    } else {
        PathBuf::from(&settings.run)
    };
    if settings.loaded_from.as_ref() != Some(&run) {
        if let Ok(config) = cryoforge_compute::hetero::RunConfig::read(&run) {
            let o = &config.options;
            (settings.zdim, settings.epochs, settings.image_size, settings.templates) =
                (o.zdim, o.epochs, o.image_size, o.templates);
        }
        settings.loaded_from = Some(run.clone());
    }
    ui.horizontal(|ui| {
        ui.add(egui::DragValue::new(&mut settings.zdim).range(1..=256).prefix("zdim: "));
        ui.add(
            egui::DragValue::new(&mut settings.epochs)
                .range(1..=500)
                .prefix("epochs: "),
        );
        ui.add(
            egui::DragValue::new(&mut settings.image_size)
                .range(16..=256)
                .prefix("train at: ")
                .suffix(" px"),
        );
    });
    ui.horizontal(|ui| {
        ui.add(egui::DragValue::new(&mut settings.templates).range(0..=256).prefix("encoder templates: "))
            .on_hover_text("Pose-aware encoder: correlations of each particle's slice with learned 3D templates (0: image only)");
        ui.add(egui::DragValue::new(&mut settings.clusters).range(1..=50).prefix("clusters: "));
        ui.add(egui::DragValue::new(&mut settings.classify).range(0..=50).prefix("3D classification rounds: "))
            .on_hover_text("After clustering: rounds of 3D classification with the known poses, seeded by the clusters (each cluster reconstructed from its particles at full size; each particle moved to the reconstruction that explains its image best). 0: keep the fitted clusters");
    });
    ui.horizontal(|ui| {
        ui.label("Run folder");
        let mut text = run.display().to_string();
        if ui.text_edit_singleline(&mut text).changed() {
            settings.run = text;
        }
    });
    let analyze = AnalyzeOptions {
        clusters: settings.clusters.max(1),
        classify_rounds: settings.classify,
        ..AnalyzeOptions::default()
    };
    let options = HeteroOptions {
        zdim: settings.zdim,
        epochs: settings.epochs,
        image_size: settings.image_size,
        templates: settings.templates,
        ..HeteroOptions::default()
    };
    let has_checkpoint = run.join(cryoforge_compute::hetero::STATE_FILE).exists();
    let has_analysis = run.join(ANALYSIS_DIR).join(SUMMARY_FILE).exists();
    let mut spec = None;
    ui.horizontal(|ui| {
        let label = if has_checkpoint { "Resume training" } else { "Train" };
        if ui
            .button(label)
            .on_hover_text(
                "Train the encoder and decoder (checkpoints every few epochs; resumes from the last), then analyse",
            )
            .clicked()
        {
            spec = Some(JobSpec::HeteroTrain {
                particles: path.to_owned(),
                run: run.clone(),
                options: Box::new(options),
                analyze: Box::new(analyze.clone()),
            });
        }
        if has_checkpoint
            && ui
                .button("Analyse")
                .on_hover_text("PCA, UMAP, clusters and their volumes")
                .clicked()
        {
            spec = Some(JobSpec::HeteroAnalyze {
                run: run.clone(),
                analyze: Box::new(analyze.clone()),
            });
        }
        if has_analysis && ui.button("Open latent space").clicked() {
            match Exploration::load(&run) {
                Ok(e) => app.latent = Some(LatentView::new(Arc::new(e))),
                Err(e) => app.message = Some(e),
            }
        }
    });
    if let Some(spec) = spec {
        app.start_job(spec, None);
    }
}

/// The "Latent space" panel, docked between the viewport and the inspector when a run is loaded.
pub fn latent_panel(app: &mut CryoforgeApp, ui: &mut egui::Ui, render_state: Option<&eframe::egui_wgpu::RenderState>) {
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
                actions = latent_ui(view, ui, render_state);
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
            Action::Message(m) => app.message = Some(m),
        }
    }
}

/// Draws the scatter with wgpu into the view's GPU target (selected points last, on top) and
/// registers it with egui.
fn draw_on_gpu(view: &mut LatentView, rs: &eframe::egui_wgpu::RenderState, size: [u32; 2]) {
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
        bounds: [b[0], b[2], b[1], b[3]],
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

enum Action {
    Volume { z: Vec<f32>, label: String },
    OpenFile(PathBuf),
    Message(String),
}

fn latent_ui(
    view: &mut LatentView,
    ui: &mut egui::Ui,
    render_state: Option<&eframe::egui_wgpu::RenderState>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let e = view.exploration.clone();
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
    // The plot.
    let side = ui.available_width().clamp(200.0, 900.0);
    let size = [side as usize, side as usize];
    let key = (
        view.layout,
        view.colouring.clone(),
        view.selection_count(),
        size,
        view.scatter_device,
    );
    if view.texture_key.as_ref() != Some(&key) {
        // Bounds, colours and the image only change with the layout, colouring or selection.
        view.bounds = bounds_of(view.points());
        let pixels_per_point = ui.ctx().pixels_per_point();
        let hardware = |rs: &eframe::egui_wgpu::RenderState| {
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
    let texture_id = match (&view.gpu, &view.texture) {
        (Some(GpuScatter { texture: Some(id), .. }), _) => *id,
        (_, Some(texture)) => texture.id(),
        _ => return actions,
    };
    let response = ui.add(egui::Image::new((texture_id, egui::vec2(side, side))).sense(egui::Sense::click_and_drag()));
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "Latent scatter"));
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
    // Clusters.
    ui.separator();
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
    ui.separator();
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
        let message = match particles_of(&e) {
            Some(source) => match export_subset(&source, &rows, &output) {
                Ok(n) => {
                    // The indices too, for `cryoforge hetero export --selection`.
                    let list: String = rows.iter().map(|r| format!("{r}\n")).collect();
                    let _ =
                        cryoforge_compute::hetero::write_atomic(&output.with_extension("indices.txt"), list.as_bytes());
                    format!("wrote {n} particles to {}", output.display())
                }
                Err(err) => err,
            },
            None => format!("{}: cannot read the run's configuration", e.run.display()),
        };
        actions.push(Action::Message(message));
    }
    actions
}
