//! The desktop app: a data panel of open objects, the 3D viewport, an inspector for the
//! selected object, a jobs panel, and a status bar. Files load on background threads,
//! isosurfaces are extracted on the mesher thread, and jobs run on the compute thread, whose
//! progress and snapshots stream into the viewport.

mod guided_panel;
pub mod hetero_panel;
mod objects;
mod panels;
mod particle_panel;
mod viewport;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use crossbeam_channel::{Receiver, Sender};
use cryoforge_compute::jobs::{ComputeThread, Event, JobId, JobResult, JobSpec, Snapshot};
use cryoforge_renderer::SceneData;

use crate::view::{self, AtomStyle};
pub use objects::{MapObject, ModelObject, Object, ObjectId, ObjectKind, SurfaceStyle};

/// Opens the window with `files` loading; returns when the window closes. With
/// `guided_fit_resolution`, a guided fit of the first model into the first map starts as soon as
/// both have loaded.
pub fn run(files: Vec<PathBuf>, guided_fit_resolution: Option<f32>) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("cryoforge")
            .with_inner_size([1280.0, 820.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "cryoforge",
        options,
        Box::new(move |cc| {
            let mut app = CryoforgeApp::new(cc.egui_ctx.clone())?;
            if let Some(storage) = cc.storage {
                app.restore(storage);
            }
            for file in files {
                app.open(file);
            }
            app.pending_guided_fit = guided_fit_resolution;
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("could not open the cryoforge window (no display? run under xvfb-run, or use `cryoforge info FILE` / `cryoforge render`)")
}

const SESSION_KEY: &str = "cryoforge.session_files";
const EXPORT_KEY: &str = "cryoforge.export_path";

/// A job as the jobs panel shows it.
pub struct JobView {
    pub id: JobId,
    pub title: String,
    /// The model a fit moves (its snapshots are drawn on it).
    pub model: Option<ObjectId>,
    pub step: usize,
    pub total: Option<usize>,
    pub message: String,
    pub history: Vec<f64>,
    pub state: JobState,
    pub started: Instant,
}

#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    Queued,
    Running,
    Finished,
    Cancelled,
    Failed(String),
}

pub struct CryoforgeApp {
    ctx: egui::Context,
    pub objects: Vec<Object>,
    pub selected: Option<ObjectId>,
    next_id: ObjectId,
    loads_tx: Sender<(ObjectId, Result<objects::Loaded, String>)>,
    loads_rx: Receiver<(ObjectId, Result<objects::Loaded, String>)>,
    mesher: objects::Mesher,
    pub compute: ComputeThread,
    pub jobs: Vec<JobView>,
    viewport: viewport::Viewport,
    scene_dirty: bool,
    hover: viewport::Hover,
    pub export_path: String,
    pub message: Option<String>,
    /// The atom last clicked in the viewport.
    pub picked_atom: Option<String>,
    /// Files open when the app last closed.
    pub last_session: Vec<PathBuf>,
    last_tick: Instant,
    /// Start a guided fit (at this resolution) once a map and a model have loaded.
    pub pending_guided_fit: Option<f32>,
    /// Settings of the next heterogeneity run, and the loaded run's latent space.
    pub hetero_settings: hetero_panel::HeteroSettings,
    pub latent: Option<hetero_panel::LatentView>,
}

impl CryoforgeApp {
    pub fn new(ctx: egui::Context) -> anyhow::Result<Self> {
        let (loads_tx, loads_rx) = crossbeam_channel::unbounded();
        let wake_ctx = ctx.clone();
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || wake_ctx.request_repaint());
        Ok(Self {
            mesher: objects::Mesher::spawn(wake.clone()).context("starting the mesher thread")?,
            compute: ComputeThread::spawn(wake).context("starting the compute thread")?,
            ctx,
            objects: Vec::new(),
            selected: None,
            next_id: 1,
            loads_tx,
            loads_rx,
            jobs: Vec::new(),
            viewport: viewport::Viewport::new(),
            scene_dirty: true,
            hover: viewport::Hover::default(),
            export_path: String::new(),
            message: None,
            picked_atom: None,
            last_session: Vec::new(),
            last_tick: Instant::now(),
            pending_guided_fit: None,
            hetero_settings: hetero_panel::HeteroSettings::default(),
            latent: None,
        })
    }

    /// Settings and the last session's files from eframe's storage.
    fn restore(&mut self, storage: &dyn eframe::Storage) {
        if let Some(files) = storage.get_string(SESSION_KEY) {
            self.last_session = files.lines().map(PathBuf::from).collect();
        }
        if let Some(path) = storage.get_string(EXPORT_KEY) {
            self.export_path = path;
        }
    }

    /// Reopens the files of the previous session.
    pub fn reopen_last_session(&mut self) {
        for path in std::mem::take(&mut self.last_session) {
            self.open(path);
        }
    }

    fn new_id(&mut self) -> ObjectId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Starts loading `path` in the background.
    pub fn open(&mut self, path: PathBuf) {
        let id = self.new_id();
        self.objects.push(Object {
            id,
            name: view::display_name(&path),
            path: Some(path.clone()),
            visible: true,
            kind: ObjectKind::Loading,
        });
        self.selected.get_or_insert(id);
        let tx = self.loads_tx.clone();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("cryoforge-loader".into())
            .spawn(move || {
                let _ = tx.send((id, objects::load_file(&path)));
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            self.set_kind(id, ObjectKind::Failed(format!("could not start a loader: {e}")));
        }
    }

    /// Adds a map made by a job; its statistics and default level are computed on a loader
    /// thread, like a file's.
    fn adopt_map(&mut self, name: String, map: Arc<cryoforge_compute::formats::mrc::DensityMap>) {
        let id = self.new_id();
        self.objects.push(Object {
            id,
            name,
            path: None,
            visible: true,
            kind: ObjectKind::Loading,
        });
        self.selected = Some(id);
        let tx = self.loads_tx.clone();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("cryoforge-loader".into())
            .spawn(move || {
                let _ = tx.send((id, Ok(objects::Loaded::Map(Box::new(MapObject::from_arc(map))))));
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            self.set_kind(id, ObjectKind::Failed(format!("could not start a loader: {e}")));
        }
    }

    /// Starts the guided fit asked for on the command line, once its inputs are loaded.
    pub fn start_pending_guided_fit(&mut self) {
        let Some(resolution) = self.pending_guided_fit else {
            return;
        };
        if self.objects.iter().any(|o| matches!(o.kind, ObjectKind::Loading)) {
            return;
        }
        self.pending_guided_fit = None;
        let map = self
            .objects
            .iter()
            .find(|o| matches!(o.kind, ObjectKind::Map(_)))
            .map(|o| o.id);
        let model = self
            .objects
            .iter()
            .find(|o| matches!(o.kind, ObjectKind::Model(_)))
            .map(|o| o.id);
        let (Some(map), Some(model)) = (map, model) else {
            self.message = Some("a guided fit needs a map and a model among the files".into());
            return;
        };
        if let Some(Object {
            kind: ObjectKind::Model(m),
            ..
        }) = self.object_mut(model)
        {
            m.fit_resolution = resolution;
        }
        guided_panel::start_guided_fit(self, model, map);
    }

    /// Adds a model made in the app (not read from a file) and selects it.
    pub fn add_model_object(&mut self, name: String, model: ModelObject) -> ObjectId {
        let id = self.new_id();
        self.objects.push(Object {
            id,
            name,
            path: None,
            visible: true,
            kind: ObjectKind::Model(model),
        });
        self.selected = Some(id);
        self.scene_dirty = true;
        id
    }

    fn set_kind(&mut self, id: ObjectId, kind: ObjectKind) {
        if let Some(o) = self.objects.iter_mut().find(|o| o.id == id) {
            o.kind = kind;
        }
        self.scene_dirty = true;
    }

    pub fn object(&self, id: ObjectId) -> Option<&Object> {
        self.objects.iter().find(|o| o.id == id)
    }

    pub fn object_mut(&mut self, id: ObjectId) -> Option<&mut Object> {
        self.objects.iter_mut().find(|o| o.id == id)
    }

    /// Sets a map's level and asks for its surface.
    pub fn set_level(&mut self, id: ObjectId, level: f32) {
        let Some(Object {
            kind: ObjectKind::Map(m),
            ..
        }) = self.objects.iter_mut().find(|o| o.id == id)
        else {
            return;
        };
        m.level = level;
        let map = m.map.clone();
        self.mesher.request(id, map, level);
    }

    pub fn mark_scene_dirty(&mut self) {
        self.scene_dirty = true;
    }

    /// Starts a job on the compute thread.
    pub fn start_job(&mut self, spec: JobSpec, model: Option<ObjectId>) -> JobId {
        let title = spec.title();
        let id = self.compute.start(spec);
        self.jobs.push(JobView {
            id,
            title,
            model,
            step: 0,
            total: None,
            message: "queued".into(),
            history: Vec::new(),
            state: JobState::Queued,
            started: Instant::now(),
        });
        id
    }

    fn receive(&mut self, ctx: &egui::Context) {
        while let Ok((id, result)) = self.loads_rx.try_recv() {
            let kind = match result {
                Ok(objects::Loaded::Map(m)) => {
                    self.mesher.request(id, m.map.clone(), m.level);
                    ObjectKind::Map(*m)
                }
                Ok(objects::Loaded::Model(model)) => ObjectKind::Model(ModelObject::new(model)),
                Ok(objects::Loaded::Info(summary)) => ObjectKind::Info(Box::new(summary)),
                Err(message) => ObjectKind::Failed(message),
            };
            self.set_kind(id, kind);
            self.viewport.camera_fitted = false;
        }
        while let Ok((id, level, mesh)) = self.mesher.results.try_recv() {
            if let Some(Object {
                kind: ObjectKind::Map(m),
                ..
            }) = self.objects.iter_mut().find(|o| o.id == id)
            {
                m.mesh = Some((level, Arc::new(mesh)));
                self.scene_dirty = true;
            }
        }
        while let Ok(event) = self.compute.events.try_recv() {
            self.on_event(event);
        }
        if let Some(snapshot) = self.compute.snapshots.take() {
            let (job, frame, gallery) = match snapshot {
                Snapshot::Coordinates { job, frame } => (job, frame, None),
                Snapshot::Particles { job, frame, gallery } => (job, frame, gallery),
            };
            let model = self.jobs.iter().find(|j| j.id == job).and_then(|j| j.model);
            if let Some(Object {
                kind: ObjectKind::Model(m),
                ..
            }) = model.and_then(|id| self.objects.iter_mut().find(|o| o.id == id))
                && frame.len() == m.model.atoms.len()
            {
                m.live_coordinates = Some(frame);
                if let Some(gallery) = gallery {
                    particle_panel::receive_gallery(ctx, m, gallery);
                }
                self.scene_dirty = true;
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Started { job, .. } => self.update_job(job, |j| j.state = JobState::Running),
            Event::Progress {
                job,
                step,
                total,
                message,
                losses,
            } => self.update_job(job, |j| {
                j.step = step;
                j.total = total;
                j.message = message;
                if let Some((_, v)) = losses.first() {
                    j.history.push(*v);
                }
            }),
            Event::Failed { job, message } => {
                self.update_job(job, |j| j.state = JobState::Failed(message.clone()));
                self.clear_live(job);
            }
            Event::Finished { job, result, cancelled } => {
                self.update_job(job, |j| {
                    j.state = if cancelled {
                        JobState::Cancelled
                    } else {
                        JobState::Finished
                    }
                });
                let model_id = self.jobs.iter().find(|j| j.id == job).and_then(|j| j.model);
                match result {
                    JobResult::Placements { placements, .. } => {
                        if let Some(Object {
                            kind: ObjectKind::Model(m),
                            ..
                        }) = model_id.and_then(|id| self.objects.iter_mut().find(|o| o.id == id))
                        {
                            m.placements = placements;
                            m.previewed = Some(0);
                        }
                        self.preview_placement(model_id, 0);
                    }
                    JobResult::GuidedFit(fit) => guided_panel::adopt_guided_fit(self, model_id, fit),
                    JobResult::ParticleFit(refinement) => particle_panel::adopt_refinement(self, model_id, refinement),
                    JobResult::Hetero(exploration) => self.latent = Some(hetero_panel::LatentView::new(exploration)),
                    JobResult::Map { map, label } => {
                        let source = self
                            .jobs
                            .iter()
                            .find(|j| j.id == job)
                            .map(|j| j.title.clone())
                            .unwrap_or_default();
                        let name = format!("{} ({label})", source.trim_start_matches("Map: "));
                        self.adopt_map(name, map);
                    }
                }
            }
        }
    }

    fn update_job(&mut self, job: JobId, f: impl FnOnce(&mut JobView)) {
        if let Some(j) = self.jobs.iter_mut().find(|j| j.id == job) {
            f(j);
        }
    }

    fn clear_live(&mut self, job: JobId) {
        let model = self.jobs.iter().find(|j| j.id == job).and_then(|j| j.model);
        if let Some(Object {
            kind: ObjectKind::Model(m),
            ..
        }) = model.and_then(|id| self.objects.iter_mut().find(|o| o.id == id))
        {
            m.live_coordinates = None;
        }
        self.scene_dirty = true;
    }

    /// Shows placement `index` of a model's last fit (without changing the model yet).
    pub fn preview_placement(&mut self, model: Option<ObjectId>, index: usize) {
        let Some(Object {
            kind: ObjectKind::Model(m),
            ..
        }) = model.and_then(|id| self.objects.iter_mut().find(|o| o.id == id))
        else {
            return;
        };
        if let Some(p) = m.placements.get(index) {
            let t = p.transform;
            m.live_coordinates = Some(
                m.model.frames[m.frame.min(m.model.frames.len() - 1)]
                    .iter()
                    .map(|q| t.apply(q.map(f64::from)).map(|v| v as f32))
                    .collect(),
            );
            m.previewed = Some(index);
        }
        self.scene_dirty = true;
    }

    /// Builds the scene from visible objects.
    fn build_scene(&self) -> (SceneData, Vec<[f32; 3]>) {
        let mut scene = SceneData {
            background: crate::render_cmd::BACKGROUND,
            ..Default::default()
        };
        let mut points = Vec::new();
        let has_model = self
            .objects
            .iter()
            .any(|o| o.visible && matches!(o.kind, ObjectKind::Model(_)));
        for object in self.objects.iter().filter(|o| o.visible) {
            match &object.kind {
                ObjectKind::Map(m) => {
                    if let Some((_, mesh)) = &m.mesh {
                        let alpha = match m.style {
                            SurfaceStyle::Transparent => 0.4,
                            _ if has_model => 0.55,
                            _ => 1.0,
                        };
                        let color = [m.color[0], m.color[1], m.color[2], alpha];
                        if m.style == SurfaceStyle::Mesh {
                            scene.lines.push(mesh_edges(mesh, color));
                        } else {
                            scene.meshes.push(cryoforge_renderer::MeshInstance {
                                mesh: mesh.clone(),
                                color,
                            });
                        }
                        points.extend(mesh.positions.iter().copied());
                    }
                    if m.show_slice {
                        scene.meshes.push(cryoforge_renderer::MeshInstance {
                            mesh: Arc::new(view::map_slice(&m.map, m.slice_axis, m.slice_index)),
                            color: [1.0; 4],
                        });
                    }
                    if m.show_box {
                        let b = view::map_box(&m.map, [0.55, 0.55, 0.55, 1.0]);
                        if m.mesh.as_ref().is_none_or(|(_, mesh)| mesh.positions.is_empty()) {
                            points.extend(b.points.iter().copied());
                        }
                        scene.lines.push(b);
                    }
                }
                ObjectKind::Model(m) => {
                    let (atoms, coords) = (&m.model.atoms, m.coordinates());
                    let colors = view::atom_colors(atoms, m.color_by, [m.color[0], m.color[1], m.color[2], 1.0]);
                    match m.style {
                        AtomStyle::Spheres => scene.spheres.push(view::model_spheres(atoms, coords, &colors, 0.45)),
                        AtomStyle::Bonds => scene.spheres.push(view::model_bonds(atoms, coords, &colors)),
                        AtomStyle::Trace => scene.spheres.push(view::model_trace(atoms, coords, &colors)),
                    }
                    points.extend(m.coordinates().iter().copied());
                }
                _ => {}
            }
        }
        (scene, points)
    }

    /// Points the camera at object `id` (or everything when None) and frames it.
    pub fn fit_view(&mut self, id: Option<ObjectId>) {
        let points: Vec<[f32; 3]> = self
            .objects
            .iter()
            .filter(|o| id.is_none_or(|id| o.id == id))
            .flat_map(|o| match &o.kind {
                ObjectKind::Model(m) => m.coordinates().to_vec(),
                ObjectKind::Map(m) => match &m.mesh {
                    Some((_, mesh)) if !mesh.positions.is_empty() => mesh.positions.clone(),
                    _ => view::map_box(&m.map, [0.0; 4]).points,
                },
                _ => Vec::new(),
            })
            .collect();
        if let Some((c, r)) = view::bounds(points) {
            self.viewport.camera.fit(c.into(), r);
            self.viewport.needs_render = true;
        }
    }

    /// Back to the default orientation, framing everything.
    pub fn reset_view(&mut self) {
        self.viewport.camera = cryoforge_renderer::OrbitCamera::default();
        self.fit_view(None);
    }

    /// Advances playing trajectories.
    fn tick(&mut self) {
        let dt = self.last_tick.elapsed().as_secs_f32();
        let mut any_playing = false;
        for o in &mut self.objects {
            if let ObjectKind::Model(m) = &mut o.kind {
                if m.playing && m.model.frames.len() > 1 && dt * m.frames_per_second >= 1.0 {
                    m.frame = (m.frame + 1) % m.model.frames.len();
                    self.scene_dirty = true;
                }
                any_playing |= m.playing;
            }
        }
        if self.scene_dirty || !any_playing {
            self.last_tick = Instant::now();
        }
        if any_playing {
            self.ctx.request_repaint_after(std::time::Duration::from_millis(30));
        }
    }
}

/// Triangle edges as lines (the "mesh" style; no line-mode rasterisation needed).
fn mesh_edges(mesh: &cryoforge_renderer::MeshData, color: [f32; 4]) -> cryoforge_renderer::LinesData {
    let mut points = Vec::with_capacity(mesh.triangles.len() * 4);
    for t in &mesh.triangles {
        // Each quad's diagonal is skipped: surface nets emit quads as triangle pairs.
        points.extend([
            mesh.positions[t[0] as usize],
            mesh.positions[t[1] as usize],
            mesh.positions[t[1] as usize],
            mesh.positions[t[2] as usize],
        ]);
    }
    cryoforge_renderer::LinesData {
        colors: vec![[color[0], color[1], color[2], 1.0]; points.len()],
        points,
    }
}

impl eframe::App for CryoforgeApp {
    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        let files: Vec<String> = self
            .objects
            .iter()
            .filter_map(|o| o.path.as_ref())
            .map(|p| p.display().to_string())
            .collect();
        storage.set_string(SESSION_KEY, files.join("\n"));
        storage.set_string(EXPORT_KEY, self.export_path.clone());
    }

    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.receive(ctx);
        self.start_pending_guided_fit();
        self.tick();
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_owned())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        for path in dropped {
            self.open(path);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let render_state = frame.wgpu_render_state();
        if self.scene_dirty {
            let (scene, points) = self.build_scene();
            if !self.viewport.camera_fitted
                && let Some((c, r)) = view::bounds(points)
            {
                self.viewport.camera.fit(c.into(), r);
                self.viewport.camera_fitted = true;
            }
            self.viewport.set_scene(render_state, &scene);
            self.scene_dirty = false;
        }
        egui::Panel::top("menu").show(ui, |ui| panels::menu_ui(self, ui));
        egui::Panel::bottom("status").show(ui, |ui| panels::status_ui(self, ui));
        egui::Panel::bottom("jobs")
            .resizable(true)
            .default_size(170.0)
            .min_size(110.0)
            .show(ui, |ui| panels::jobs_ui(self, ui));
        egui::Panel::left("data")
            .resizable(true)
            .default_size(230.0)
            .show(ui, |ui| panels::data_ui(self, ui));
        egui::Panel::right("inspector")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| panels::inspector_ui(self, ui));
        hetero_panel::latent_panel(self, ui, render_state);
        egui::CentralPanel::no_frame().show(ui, |ui| {
            let hover = self.viewport.ui(ui, render_state, &self.objects);
            if hover.clicked
                && let (Some((object, _)), Some(atom)) = (hover.atom_index, &hover.atom)
            {
                self.selected = Some(object);
                self.picked_atom = Some(atom.clone());
            }
            self.hover = hover;
        });
        if !self.viewport.camera_fitted && !self.objects.is_empty() {
            self.scene_dirty = true;
        }
    }
}
