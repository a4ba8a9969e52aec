//! The scene the viewport draws, built from the visible objects, and framing the camera on it.

use super::*;

impl CryoforgeApp {
    pub(super) fn build_scene(&self) -> (SceneData, Vec<[f32; 3]>) {
        let mut scene = SceneData {
            background: crate::cli::render::BACKGROUND,
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
                    let mut colors = view::atom_colors(atoms, m.color_by, [m.color[0], m.color[1], m.color[2], 1.0]);
                    if let Some(flex) = &m.flex {
                        for &i in flex.highlighted_atoms() {
                            if let Some(c) = colors.get_mut(i) {
                                *c = view::HIGHLIGHT;
                            }
                        }
                    }
                    match m.style {
                        AtomStyle::Spheres => scene.spheres.push(view::model_spheres(atoms, coords, &colors, 0.45)),
                        AtomStyle::Bonds => scene.spheres.push(view::model_bonds(atoms, coords, &colors)),
                        AtomStyle::Trace => scene.spheres.push(view::model_trace(atoms, coords, &colors)),
                        AtomStyle::Worm => scene.spheres.push(view::model_worm(atoms, coords, &colors)),
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
}

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
