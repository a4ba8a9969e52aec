//! The desktop app: a data panel of open objects, the 3D viewport, an inspector for the
//! selected object, a jobs panel, and a status bar. Files load on background threads,
//! isosurfaces are extracted on the mesher thread, and jobs run on the compute thread, whose
//! progress and snapshots stream into the viewport.

mod build_panel;
mod events;
mod flex_panel;
mod guided_panel;
pub mod hetero_panel;
mod objects;
mod panels;
mod particle_file;
mod particle_panel;
mod scene;
mod segment_panel;
mod states_panel;
mod viewport;
mod widgets;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use crossbeam_channel::{Receiver, Sender};
use cryoforge_compute::jobs::{ComputeThread, Event, JobId, JobResult, JobSpec, Series, Snapshot};
use cryoforge_renderer::SceneData;

use crate::view::{self, AtomStyle};
pub use guided_panel::GuidedZone;
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
    /// Every series the job reports: (step, value) points, in the order they first came.
    pub history: Vec<(Series, Vec<[f64; 2]>)>,
    pub state: JobState,
    pub started: Instant,
}

#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    Queued,
    Running,
    /// Finished after this many seconds.
    Finished(f32),
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
    /// Pixel sizes (Å) set for particle files, replacing the files' own (`--apix`).
    pub particle_pixel_sizes: std::collections::BTreeMap<PathBuf, f64>,
}

impl CryoforgeApp {
    pub fn new(ctx: egui::Context) -> anyhow::Result<Self> {
        // Loaders block on a full channel; the UI drains it every frame.
        let (loads_tx, loads_rx) = crossbeam_channel::bounded(64);
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
            particle_pixel_sizes: std::collections::BTreeMap::new(),
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

    /// Adds an object and returns its id.
    fn push_object(&mut self, name: String, path: Option<PathBuf>, kind: ObjectKind) -> ObjectId {
        let id = self.new_id();
        self.objects.push(Object {
            id,
            name,
            path,
            visible: true,
            kind,
        });
        id
    }

    /// Runs `load` on a loader thread; its result becomes object `id`'s kind.
    fn load_in_background(
        &mut self,
        id: ObjectId,
        load: impl FnOnce() -> Result<objects::Loaded, String> + Send + 'static,
    ) {
        let tx = self.loads_tx.clone();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("cryoforge-loader".into())
            .spawn(move || {
                let _ = tx.send((id, load()));
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            self.set_kind(id, ObjectKind::Failed(format!("could not start a loader: {e}")));
        }
    }

    /// Starts loading `path` in the background.
    pub fn open(&mut self, path: PathBuf) {
        let id = self.push_object(view::display_name(&path), Some(path.clone()), ObjectKind::Loading);
        self.selected.get_or_insert(id);
        self.load_in_background(id, move || objects::load_file(&path));
    }

    /// Adds a map made by a job; its statistics and default level are computed on a loader
    /// thread, like a file's.
    fn adopt_map(&mut self, name: String, map: Arc<cryoforge_compute::maps::DensityMap>) {
        let id = self.push_object(name, None, ObjectKind::Loading);
        self.selected = Some(id);
        self.load_in_background(id, move || Ok(objects::Loaded::Map(Box::new(MapObject::from_arc(map)))));
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
        if let Some(m) = self.model_mut(model) {
            m.fit_resolution = resolution;
        }
        guided_panel::start_guided_fit(self, model, map);
    }

    /// Adds a model made in the app (not read from a file) and selects it.
    pub fn add_model_object(&mut self, name: String, model: ModelObject) -> ObjectId {
        let id = self.push_object(name, None, ObjectKind::Model(model));
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

    /// Object `id`'s model, if it is one.
    pub fn model_mut(&mut self, id: ObjectId) -> Option<&mut ModelObject> {
        match self.object_mut(id) {
            Some(Object {
                kind: ObjectKind::Model(m),
                ..
            }) => Some(m),
            _ => None,
        }
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
            self.request_cartoons();
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
