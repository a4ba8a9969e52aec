//! The 3D viewport: the renderer's offscreen image shown as an egui texture, mouse camera
//! control (drag to orbit, right- or shift-drag to pan, scroll to zoom, double-click to fit),
//! and picking of the atom under the cursor.

use cryoforge_compute::formats::model::Atom;
use cryoforge_compute::maps::scores::interpolate;
use cryoforge_renderer::{OrbitCamera, SceneData, SceneRenderer};
use glam::Vec3;

use super::objects::{Object, ObjectKind};

/// The viewport's GPU side, made on the first frame that has a wgpu render state.
pub struct Viewport {
    pub camera: OrbitCamera,
    renderer: Option<SceneRenderer>,
    texture: Option<egui::TextureId>,
    /// Rendered size and whether the scene or camera changed since.
    rendered: Option<[u32; 2]>,
    pub needs_render: bool,
    pub unavailable: Option<String>,
    pub camera_fitted: bool,
}

/// What is under the cursor.
#[derive(Clone, Debug, Default)]
pub struct Hover {
    pub position_angstrom: Option<[f32; 3]>,
    pub map_value: Option<f32>,
    pub atom: Option<String>,
    /// (object, atom index) of the hovered atom.
    pub atom_index: Option<(u64, usize)>,
    /// The viewport was clicked this frame (selects the hovered atom).
    pub clicked: bool,
}

impl Viewport {
    pub fn new() -> Self {
        Self {
            camera: OrbitCamera::default(),
            renderer: None,
            texture: None,
            rendered: None,
            needs_render: true,
            unavailable: None,
            camera_fitted: false,
        }
    }

    /// Uploads a changed scene.
    pub fn set_scene(&mut self, render_state: Option<&eframe::egui_wgpu::RenderState>, scene: &SceneData) {
        let Some(rs) = render_state else { return };
        let renderer = self.renderer.get_or_insert_with(|| SceneRenderer::new(&rs.device));
        renderer.set_scene(&rs.device, scene);
        self.needs_render = true;
    }

    /// Draws the viewport into `ui` and handles camera input; returns what is hovered.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        render_state: Option<&eframe::egui_wgpu::RenderState>,
        objects: &[Object],
    ) -> Hover {
        let (rect, response) = ui.allocate_exact_size(ui.available_size(), egui::Sense::click_and_drag());
        let Some(rs) = render_state else {
            self.unavailable
                .get_or_insert_with(|| "no wgpu renderer: the 3D view is off".to_owned());
            ui.put(
                rect,
                egui::Label::new("3D view unavailable (no GPU renderer); files and jobs still work."),
            );
            return Hover::default();
        };
        self.handle_input(ui, &response, rect);
        let pixels_per_point = ui.ctx().pixels_per_point();
        let size = [
            (rect.width() * pixels_per_point).round().max(1.0) as u32,
            (rect.height() * pixels_per_point).round().max(1.0) as u32,
        ];
        if self.renderer.is_none() {
            self.renderer = Some(SceneRenderer::new(&rs.device));
        }
        if self.needs_render || self.rendered != Some(size) {
            if let Some(renderer) = &mut self.renderer {
                let recreated = renderer.render(&rs.device, &rs.queue, &self.camera, size);
                if let Some(view) = renderer.color_view() {
                    let mut egui_renderer = rs.renderer.write();
                    match self.texture {
                        Some(id) if recreated => egui_renderer.update_egui_texture_from_wgpu_texture(
                            &rs.device,
                            view,
                            wgpu::FilterMode::Linear,
                            id,
                        ),
                        Some(_) => {}
                        None => {
                            self.texture =
                                Some(egui_renderer.register_native_texture(&rs.device, view, wgpu::FilterMode::Linear))
                        }
                    }
                }
            }
            self.rendered = Some(size);
            self.needs_render = false;
        }
        if let Some(texture) = self.texture {
            ui.painter().image(
                texture,
                rect,
                egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                egui::Color32::WHITE,
            );
        }
        let mut hover = match response.hover_pos() {
            Some(pos) => self.pick(pos - rect.min, rect.size(), objects),
            None => Hover::default(),
        };
        hover.clicked = response.clicked();
        hover
    }

    fn handle_input(&mut self, ui: &egui::Ui, response: &egui::Response, rect: egui::Rect) {
        let delta = response.drag_delta();
        let shift = ui.input(|i| i.modifiers.shift);
        if response.dragged_by(egui::PointerButton::Primary) && !shift {
            self.camera.orbit(delta.x, delta.y);
            self.needs_render = true;
        } else if response.dragged_by(egui::PointerButton::Secondary)
            || response.dragged_by(egui::PointerButton::Middle)
            || (shift && response.dragged())
        {
            self.camera.pan(delta.x, delta.y, rect.height());
            self.needs_render = true;
        }
        if response.hovered() {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y);
            if scroll != 0.0 {
                self.camera.zoom((-scroll * 0.002).exp());
                self.needs_render = true;
            }
        }
        if response.double_clicked() {
            self.camera_fitted = false;
        }
    }

    /// The nearest atom along the cursor's ray, or the point at the target's depth.
    fn pick(&self, pos: egui::Vec2, size: egui::Vec2, objects: &[Object]) -> Hover {
        let (origin, dir) = self.camera.ray(pos.x, pos.y, size.x, size.y);
        let mut best: Option<(f32, u64, usize, &Atom, [f32; 3])> = None;
        for object in objects.iter().filter(|o| o.visible) {
            let ObjectKind::Model(m) = &object.kind else { continue };
            for (i, (atom, p)) in m.model.atoms.iter().zip(m.coordinates()).enumerate() {
                let to = Vec3::from(*p) - origin;
                let t = to.dot(dir);
                if t <= 0.0 || best.is_some_and(|b| t >= b.0) {
                    continue;
                }
                if (to - dir * t).length_squared() < 1.0 {
                    best = Some((t, object.id, i, atom, *p));
                }
            }
        }
        let position = match best {
            Some((_, _, _, _, p)) => p,
            None => {
                // Where the ray crosses the plane through the target facing the camera.
                let normal = (self.camera.eye_world() - self.camera.target_world).normalize();
                let denom = dir.dot(normal);
                let t = if denom.abs() > 1e-6 {
                    (self.camera.target_world - origin).dot(normal) / denom
                } else {
                    0.0
                };
                (origin + dir * t).to_array()
            }
        };
        let map_value = objects.iter().filter(|o| o.visible).find_map(|o| match &o.kind {
            ObjectKind::Map(m) => interpolate(&m.map, position),
            _ => None,
        });
        Hover {
            position_angstrom: Some(position),
            map_value,
            atom: best.map(|(_, _, _, a, _)| {
                format!(
                    "{} {} {}{} {}",
                    if a.chain_id.is_empty() { "-" } else { &a.chain_id },
                    a.residue_name,
                    a.residue_number,
                    a.insertion_code,
                    a.name
                )
            }),
            atom_index: best.map(|(_, id, i, _, _)| (id, i)),
            clicked: false,
        }
    }
}
