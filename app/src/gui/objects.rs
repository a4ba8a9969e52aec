//! The objects the user has open (maps, models, particle metadata) and the background threads
//! that load files and extract isosurfaces, so the UI thread never blocks on either.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};
use cryoforge_compute::formats::FileKind;
use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::formats::summary::{FileSummary, summarize};
use cryoforge_compute::maps::{DensityMap, Statistics};
use cryoforge_compute::rigid_fit::Placement;
use cryoforge_renderer::MeshData;

use crate::view::{self, AtomStyle, ColorBy};

pub type ObjectId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SurfaceStyle {
    Surface,
    Transparent,
    Mesh,
}

pub struct MapObject {
    pub map: Arc<DensityMap>,
    pub statistics: Statistics,
    pub level: f32,
    pub style: SurfaceStyle,
    pub color: [f32; 3],
    pub show_box: bool,
    /// Axis-aligned slice: (axis 0..3, voxel index), drawn when `show_slice`.
    pub show_slice: bool,
    pub slice_axis: usize,
    pub slice_index: usize,
    /// The surface and the level it was made at (it lags the slider while extraction runs).
    pub mesh: Option<(f32, Arc<MeshData>)>,
    /// The "Build model" section's settings (boxed: the enum of objects stays small).
    pub build: Box<super::build_panel::BuildSettings>,
}

impl MapObject {
    /// Computes statistics and the default level: O(voxels), so call it off the UI thread.
    pub fn new(map: DensityMap) -> Self {
        Self::from_arc(Arc::new(map))
    }

    pub fn from_arc(map: Arc<DensityMap>) -> Self {
        let statistics = map.statistics();
        let level = view::default_level(&map);
        let slice_index = map.grid.dims[2] / 2;
        Self {
            map,
            statistics,
            level,
            style: SurfaceStyle::Surface,
            color: [0.45, 0.62, 0.9],
            show_box: true,
            show_slice: false,
            slice_axis: 2,
            slice_index,
            mesh: None,
            build: Default::default(),
        }
    }

    /// The level in σ above the mean.
    pub fn level_sigma(&self) -> f32 {
        if self.statistics.rms > 0.0 {
            (self.level - self.statistics.mean) / self.statistics.rms
        } else {
            0.0
        }
    }
}

pub struct ModelObject {
    /// The first conformer of the file's model: what the viewer draws and jobs use.
    pub model: Arc<Structure>,
    /// Atoms of alternate conformations beyond the first, left out of `model`.
    pub alternate_atoms: usize,
    pub frame: usize,
    pub playing: bool,
    pub frames_per_second: f32,
    pub style: AtomStyle,
    pub color_by: ColorBy,
    pub color: [f32; 3],
    /// Coordinates streamed by a running job, drawn instead of the frame.
    pub live_coordinates: Option<Vec<[f32; 3]>>,
    /// Ranked placements of the last fit, and which one is previewed.
    pub placements: Vec<Placement>,
    pub previewed: Option<usize>,
    pub fit_resolution: f32,
    pub fit_search: usize,
    pub guided_settings: Box<super::guided_panel::GuidedSettings>,
    /// The guided fit that made this object, once finished.
    pub guided: Option<super::guided_panel::GuidedView>,
    pub refine_settings: super::particle_panel::RefineSettings,
    /// Particle images beside this model's projections, while and after it is refined.
    pub gallery: Option<super::particle_panel::GalleryView>,
    /// The particle refinement that made this object, once finished.
    pub refinement: Option<std::sync::Arc<cryoforge_compute::refine::Refinement>>,
    /// The per-state fits that made this object (one frame per state), once finished.
    pub states: Option<std::sync::Arc<cryoforge_compute::guided::states::StatesFit>>,
    /// Boxed, as the other sections' results: the enum of objects stays small.
    pub flex_settings: Box<super::flex_panel::FlexSettings>,
    /// The last flexibility estimate on this model, once finished.
    pub flex: Option<Box<super::flex_panel::FlexView>>,
    /// The build that made this object, once finished.
    pub build: Option<Arc<cryoforge_compute::build::BuildResult>>,
    /// The cartoon drawn for this model (boxed: the enum of objects stays small).
    pub cartoon: Box<CartoonState>,
}

/// A model's cartoon and the key (model, coordinates, colours) it was built for; the key of the
/// request the mesher is working on.
#[derive(Default)]
pub struct CartoonState {
    pub built: Option<(u64, Arc<MeshData>)>,
    pub requested: Option<u64>,
}

impl ModelObject {
    pub fn new(model: Structure) -> Self {
        let alternate_atoms = model.counts().alternate_atoms;
        let model = if alternate_atoms > 0 {
            model.first_conformer()
        } else {
            model
        };
        let style = view::default_style(&model);
        Self {
            model: Arc::new(model),
            alternate_atoms,
            frame: 0,
            playing: false,
            frames_per_second: 10.0,
            style,
            color_by: ColorBy::Chain,
            color: [0.9, 0.8, 0.5],
            live_coordinates: None,
            placements: Vec::new(),
            previewed: None,
            fit_resolution: 5.0,
            fit_search: 0,
            guided_settings: Default::default(),
            guided: None,
            refine_settings: Default::default(),
            gallery: None,
            refinement: None,
            states: None,
            flex_settings: Default::default(),
            flex: None,
            build: None,
            cartoon: Box::default(),
        }
    }

    /// What reading the file left out or had to guess: alternate conformers, warnings.
    pub fn reading_notes_ui(&self, ui: &mut egui::Ui, id: super::ObjectId) {
        if self.alternate_atoms > 0 {
            ui.label(format!(
                "{} atoms of alternate conformations: the first conformer is shown and used",
                self.alternate_atoms
            ));
        }
        let warnings = &self.model.info.warnings;
        if !warnings.is_empty() {
            egui::CollapsingHeader::new(format!("{} reading warning(s)", warnings.len()))
                .id_salt(("model warnings", id))
                .show(ui, |ui| {
                    for w in warnings {
                        ui.label(w);
                    }
                });
        }
    }

    /// Coordinates to draw now.
    pub fn coordinates(&self) -> &[[f32; 3]] {
        match &self.live_coordinates {
            Some(c) => c,
            None => &self.model.frames[self.frame.min(self.model.frames.len() - 1)],
        }
    }
}

pub enum ObjectKind {
    Loading,
    Failed(String),
    Map(MapObject),
    Model(ModelObject),
    /// Particle stacks and metadata: shown as a summary.
    Info(Box<FileSummary>),
}

pub struct Object {
    pub id: ObjectId,
    pub name: String,
    pub path: Option<PathBuf>,
    pub visible: bool,
    pub kind: ObjectKind,
}

impl Object {
    pub fn label(&self) -> &'static str {
        match &self.kind {
            ObjectKind::Loading => "loading…",
            ObjectKind::Failed(_) => "failed",
            ObjectKind::Map(_) => "map",
            ObjectKind::Model(m) if m.model.frames.len() > 1 => "trajectory",
            ObjectKind::Model(_) => "model",
            ObjectKind::Info(s) => s.kind.label(),
        }
    }
}

/// What a loader thread hands back.
pub enum Loaded {
    /// A map with its statistics and default level already computed.
    Map(Box<MapObject>),
    Model(Structure),
    Info(FileSummary),
}

/// Reads `path` fully (maps and models) or summarises it (everything else).
pub fn load_file(path: &Path) -> Result<Loaded, String> {
    match FileKind::from_path(path) {
        Some(FileKind::Map) => DensityMap::read(path)
            .map(|m| Loaded::Map(Box::new(MapObject::new(m))))
            .map_err(|e| e.to_string()),
        Some(kind) if kind.is_model() => Structure::read(path).map(Loaded::Model).map_err(|e| e.to_string()),
        _ => summarize(path, None).map(Loaded::Info).map_err(|e| e.to_string()),
    }
}

/// A request to the mesher thread.
struct MeshRequest {
    map: Arc<DensityMap>,
    level: f32,
}

/// A cartoon to build: the model, the coordinates and per-atom colours to build it with, and
/// the key the result is stored under.
pub struct CartoonRequest {
    pub model: Arc<Structure>,
    pub coordinates: Vec<[f32; 3]>,
    pub colors: Vec<[f32; 4]>,
    pub key: u64,
}

/// Isosurface extraction and cartoon building off the UI thread; while a slider moves or a job
/// streams coordinates, only the newest request per object is worked on: requests go into
/// latest-value maps, and the thread is woken through a one-slot channel.
pub struct Mesher {
    pending: Arc<Mutex<HashMap<ObjectId, MeshRequest>>>,
    pending_cartoons: Arc<Mutex<HashMap<ObjectId, CartoonRequest>>>,
    wake_mesher: Sender<()>,
    pub results: Receiver<(ObjectId, f32, MeshData)>,
    pub cartoons: Receiver<(ObjectId, u64, Arc<MeshData>)>,
}

impl Mesher {
    pub fn spawn(wake: Arc<dyn Fn() + Send + Sync>) -> std::io::Result<Self> {
        let pending: Arc<Mutex<HashMap<ObjectId, MeshRequest>>> = Arc::default();
        let pending_cartoons: Arc<Mutex<HashMap<ObjectId, CartoonRequest>>> = Arc::default();
        let (wake_tx, wake_rx) = crossbeam_channel::bounded::<()>(1);
        let (result_tx, result_rx) = crossbeam_channel::bounded(16);
        let (cartoon_tx, cartoon_rx) = crossbeam_channel::bounded(16);
        let (queue, cartoon_queue) = (pending.clone(), pending_cartoons.clone());
        std::thread::Builder::new()
            .name("cryoforge-mesher".into())
            .spawn(move || {
                while wake_rx.recv().is_ok() {
                    let latest = queue.lock().map(|mut q| std::mem::take(&mut *q)).unwrap_or_default();
                    for (id, request) in latest {
                        let mesh = view::map_mesh(&request.map, request.level);
                        if result_tx.send((id, request.level, mesh)).is_err() {
                            return;
                        }
                        wake();
                    }
                    let cartoons = cartoon_queue
                        .lock()
                        .map(|mut q| std::mem::take(&mut *q))
                        .unwrap_or_default();
                    for (id, r) in cartoons {
                        let mesh = crate::cartoon::cartoon_mesh(&r.model, &r.coordinates, &r.colors);
                        if cartoon_tx.send((id, r.key, Arc::new(mesh))).is_err() {
                            return;
                        }
                        wake();
                    }
                }
            })?;
        Ok(Self {
            pending,
            pending_cartoons,
            wake_mesher: wake_tx,
            results: result_rx,
            cartoons: cartoon_rx,
        })
    }

    /// Asks for the cartoon of a model object (replacing any request not yet worked on).
    pub fn request_cartoon(&self, id: ObjectId, request: CartoonRequest) {
        if let Ok(mut pending) = self.pending_cartoons.lock() {
            pending.insert(id, request);
        }
        let _ = self.wake_mesher.try_send(());
    }

    pub fn request(&self, id: ObjectId, map: Arc<DensityMap>, level: f32) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id, MeshRequest { map, level });
        }
        // Full means a wake-up is already waiting; the request is in the map either way.
        let _ = self.wake_mesher.try_send(());
    }
}
