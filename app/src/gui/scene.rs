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
                    let colors = model_colors(m);
                    match m.style {
                        AtomStyle::Spheres => scene.spheres.push(view::model_spheres(atoms, coords, &colors, 0.45)),
                        AtomStyle::Bonds => scene.spheres.push(view::model_bonds(atoms, coords, &colors)),
                        AtomStyle::Trace => scene.spheres.push(view::model_trace(atoms, coords, &colors)),
                        AtomStyle::Worm => scene.spheres.push(view::model_worm(atoms, coords, &colors)),
                        AtomStyle::Cartoon => {
                            match &m.cartoon.built {
                                // The cartoon for exactly these coordinates and colours.
                                Some((key, mesh)) if *key == cartoon_key(m, &colors) => {
                                    scene.meshes.push(cryoforge_renderer::MeshInstance {
                                        mesh: mesh.clone(),
                                        color: [1.0; 4],
                                    });
                                }
                                // Until the mesher has it: the Cα trace.
                                _ => scene.spheres.push(view::model_trace(atoms, coords, &colors)),
                            }
                            let others = view::outside_cartoon(atoms);
                            let kept: Vec<usize> = (0..atoms.len()).filter(|&i| others[i]).collect();
                            if !kept.is_empty() {
                                let sub_atoms: Vec<_> = kept.iter().map(|&i| atoms[i].clone()).collect();
                                let sub_coords: Vec<_> = kept.iter().map(|&i| coords[i]).collect();
                                let sub_colors: Vec<_> = kept.iter().map(|&i| colors[i]).collect();
                                scene
                                    .spheres
                                    .push(view::model_spheres(&sub_atoms, &sub_coords, &sub_colors, 0.45));
                            }
                        }
                    }
                    points.extend(m.coordinates().iter().copied());
                }
                _ => {}
            }
        }
        (scene, points)
    }

    /// Asks the mesher for the cartoon of every visible cartoon-style model whose coordinates or
    /// colours changed since its cartoon was built.
    pub(super) fn request_cartoons(&mut self) {
        for object in self.objects.iter_mut().filter(|o| o.visible) {
            let ObjectKind::Model(m) = &mut object.kind else {
                continue;
            };
            if m.style != AtomStyle::Cartoon {
                continue;
            }
            let colors = model_colors(m);
            let key = cartoon_key(m, &colors);
            if m.cartoon.built.as_ref().is_some_and(|(k, _)| *k == key) || m.cartoon.requested == Some(key) {
                continue;
            }
            m.cartoon.requested = Some(key);
            self.mesher.request_cartoon(
                object.id,
                objects::CartoonRequest {
                    model: m.model.clone(),
                    coordinates: m.coordinates().to_vec(),
                    colors,
                    key,
                },
            );
        }
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

/// Each atom's colour as the model is drawn (the selected residue highlighted).
fn model_colors(m: &ModelObject) -> Vec<[f32; 4]> {
    let mut colors = view::atom_colors(&m.model.atoms, m.color_by, [m.color[0], m.color[1], m.color[2], 1.0]);
    if let Some(flex) = &m.flex {
        for &i in flex.highlighted_atoms() {
            if let Some(c) = colors.get_mut(i) {
                *c = view::HIGHLIGHT;
            }
        }
    }
    colors
}

/// What a cartoon depends on: the model, its coordinates now and its colours.
fn cartoon_key(m: &ModelObject, colors: &[[f32; 4]]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (Arc::as_ptr(&m.model) as usize).hash(&mut hasher);
    for p in m.coordinates() {
        p.map(f32::to_bits).hash(&mut hasher);
    }
    for c in colors {
        c.map(f32::to_bits).hash(&mut hasher);
    }
    hasher.finish()
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
