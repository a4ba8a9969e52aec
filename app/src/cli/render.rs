//! `cryoforge render`: the viewer's scene drawn headless into a PNG (figures, tests).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use cryoforge_compute::formats::FileKind;
use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::gpu::{AdapterChoice, GpuContext};
use cryoforge_compute::maps::DensityMap;
use cryoforge_renderer::{MeshInstance, OrbitCamera, SceneData, SceneRenderer};

use crate::view;

pub const MAP_COLOR: [f32; 4] = [0.45, 0.62, 0.90, 1.0];
pub const BACKGROUND: [f32; 4] = [0.08, 0.08, 0.1, 1.0];

/// Maps and models read for a scene.
#[derive(Default)]
pub struct LoadedScene {
    pub maps: Vec<DensityMap>,
    pub models: Vec<Structure>,
}

pub fn load(files: &[PathBuf]) -> anyhow::Result<LoadedScene> {
    let mut scene = LoadedScene::default();
    for path in files {
        match FileKind::from_path(path) {
            Some(FileKind::Map) => scene.maps.push(DensityMap::read(path)?),
            Some(kind) if kind.is_model() => scene.models.push(Structure::read(path)?.first_conformer()),
            _ => bail!("{}: render draws maps and models only", path.display()),
        }
    }
    Ok(scene)
}

/// The scene for these maps and models, and the camera that frames it.
pub fn build(loaded: &LoadedScene, threshold: Option<f32>) -> (SceneData, OrbitCamera) {
    let mut scene = SceneData {
        background: BACKGROUND,
        ..Default::default()
    };
    let mut points: Vec<[f32; 3]> = Vec::new();
    // With a model inside, the map is see-through so the model shows.
    let alpha = if loaded.models.is_empty() { 1.0 } else { 0.45 };
    for map in &loaded.maps {
        let level = threshold.unwrap_or_else(|| view::default_level(map));
        let mut color = MAP_COLOR;
        color[3] = alpha;
        let mesh = view::map_mesh(map, level);
        points.extend(mesh.positions.iter().copied());
        scene.meshes.push(MeshInstance {
            mesh: std::sync::Arc::new(mesh),
            color,
        });
        scene.lines.push(view::map_box(map, [0.6, 0.6, 0.6, 1.0]));
    }
    for model in &loaded.models {
        let colors = view::atom_colors(&model.atoms, view::ColorBy::Chain, [1.0; 4]);
        let coords = &model.frames[0];
        points.extend(coords.iter().copied());
        // As the window draws a model when it opens: proteins as cartoons, the rest as atoms.
        if view::default_style(model) == view::AtomStyle::Cartoon {
            scene.meshes.push(MeshInstance {
                mesh: std::sync::Arc::new(crate::cartoon::cartoon_mesh(model, coords, &colors)),
                color: [1.0; 4],
            });
            let others = view::outside_cartoon(&model.atoms);
            let kept: Vec<usize> = (0..model.atoms.len()).filter(|&i| others[i]).collect();
            let atoms: Vec<_> = kept.iter().map(|&i| model.atoms[i].clone()).collect();
            let at: Vec<_> = kept.iter().map(|&i| coords[i]).collect();
            let c: Vec<_> = kept.iter().map(|&i| colors[i]).collect();
            scene.spheres.push(view::model_spheres(&atoms, &at, &c, 0.45));
        } else {
            scene
                .spheres
                .push(view::model_spheres(&model.atoms, coords, &colors, 0.45));
        }
    }
    let mut camera = OrbitCamera::default();
    if let Some((c, r)) = view::bounds(points) {
        camera.fit(c.into(), r);
    }
    camera.orbit(60.0, -30.0);
    (scene, camera)
}

/// Renders `loaded` headless; returns RGBA8 pixels.
pub fn render_pixels(loaded: &LoadedScene, threshold: Option<f32>, width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    let context = GpuContext::new(AdapterChoice::AllowSoftware).context("no graphics adapter")?;
    let mut renderer = SceneRenderer::new(&context.device);
    let (scene, camera) = build(loaded, threshold);
    renderer.set_scene(&context.device, &scene);
    renderer.render(&context.device, &context.queue, &camera, [width, height]);
    let (_, _, pixels) = renderer.read_pixels(&context.device, &context.queue)?;
    Ok(pixels)
}

/// Fraction of pixels that differ from the background.
pub fn coverage(pixels: &[u8]) -> f64 {
    let bg = BACKGROUND.map(|c| (linear_to_srgb(c) * 255.0).round() as i32);
    let covered = pixels
        .chunks_exact(4)
        .filter(|p| (0..3).any(|k| (i32::from(p[k]) - bg[k]).abs() > 3))
        .count();
    covered as f64 / (pixels.len() / 4).max(1) as f64
}

fn linear_to_srgb(c: f32) -> f32 {
    if c <= 0.0031308 {
        12.92 * c
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

pub fn render_cmd(
    out: &Path,
    files: &[PathBuf],
    width: u32,
    height: u32,
    threshold: Option<f32>,
) -> anyhow::Result<()> {
    if files.is_empty() {
        bail!("nothing to render: give at least one map or model");
    }
    let loaded = load(files)?;
    let pixels = render_pixels(&loaded, threshold, width, height)?;
    let image = image::RgbaImage::from_raw(width, height, pixels).context("pixel buffer has the wrong size")?;
    // Write beside the target and rename, so a failure never leaves half a PNG.
    let tmp = out.with_extension("tmp.png");
    image
        .save(&tmp)
        .with_context(|| format!("{}: could not write the image", out.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("{}: could not write the image", out.display()))?;
    eprintln!(
        "wrote {width}×{height} to {} ({:.1}% of pixels covered)",
        out.display(),
        100.0 * coverage(image.as_raw())
    );
    Ok(())
}
