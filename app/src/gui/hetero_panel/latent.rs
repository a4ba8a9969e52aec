//! The latent-space window's state: the loaded exploration, how its points are laid out and
//! coloured, the selection, and the scatter's texture (GPU point splats or a CPU raster).

use std::path::PathBuf;
use std::sync::Arc;

use cryoforge_compute::hetero::RunConfig;
use cryoforge_compute::hetero::explore::{Exploration, StateSource, particle_column};
use cryoforge_renderer::PointsRenderer;

use crate::scatter::{Bounds, bounds_of, cluster_colour, inside_polygon, to_pixel, value_colour};

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
    pub(super) texture: Option<egui::TextureHandle>,
    /// What the texture was drawn for; None: it must be redrawn.
    pub(super) texture_key: Option<TextureKey>,
    /// Where the scatter is drawn.
    pub scatter_device: ScatterDevice,
    /// The GPU scatter (point splats drawn by wgpu), once drawn there.
    pub(super) gpu: Option<GpuScatter>,
    pub(super) bounds: Bounds,
    /// The lasso or rectangle being drawn, in layout coordinates.
    pub(super) drag: Vec<[f32; 2]>,
    /// The particle whose volume was asked for last.
    pub clicked: Option<usize>,
    /// The next fit of a model into the states: which open model, which volumes, whether each
    /// state starts from the previous one, and the resolution guidance assumes.
    pub states_model: Option<crate::gui::ObjectId>,
    pub states_source: StateSource,
    pub states_chain: bool,
    pub states_resolution: f32,
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

/// What the scatter's texture shows: layout, colouring, selection size, size and device.
pub(super) type TextureKey = (Layout, Colouring, usize, [usize; 2], ScatterDevice);

/// The points drawn on the GPU and the texture the UI shows them through.
pub(super) struct GpuScatter {
    pub(super) renderer: PointsRenderer,
    pub(super) texture: Option<egui::TextureId>,
}

/// The particle file a run was trained on.
pub(super) fn particles_of(exploration: &Exploration) -> Option<PathBuf> {
    RunConfig::read(&exploration.run).ok().map(|c| c.particles)
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
        // Decoded volumes hold frequencies to their Nyquist limit: twice their voxel size.
        let states_resolution = RunConfig::read(&exploration.run).map_or(6.0, |c| {
            (2.0 * c.pixel_size * c.box_size as f64 / c.shape.image_size.max(1) as f64) as f32
        });
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
            states_model: None,
            states_source: StateSource::Clusters,
            states_chain: false,
            states_resolution,
        }
    }

    /// Whether the scatter was last drawn by the GPU point pipeline (not the CPU fallback).
    pub fn drawn_on_gpu(&self) -> bool {
        self.gpu.as_ref().is_some_and(|g| g.texture.is_some())
    }

    pub(super) fn points(&self) -> &[f32] {
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
    pub(super) fn colours(&self) -> Vec<[u8; 3]> {
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
    pub(super) fn nearest(&self, p: [f32; 2]) -> Option<usize> {
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
