//! The app driven like a user would, without a display (egui_kittest, rendering on llvmpipe):
//! open real files, toggle objects, move the threshold, run map tools, start and cancel a fit,
//! scrub a trajectory, and look at the viewport's pixels.

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub(crate) use cryoforge::gui::{CryoforgeApp, GuidedZone, JobState, ObjectKind};
use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::maps::DensityMap;
use cryoforge_compute::maps::density::{GaussianAtoms, GaussianOptions, molmap_grid, simulate};
use egui_kittest::Harness;

pub fn asset(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../assets")
        .join(relative)
}

pub fn harness() -> Harness<'static, CryoforgeApp> {
    harness_of_height(800.0)
}

/// A taller window, for inspectors whose lower buttons would otherwise be scrolled out of view.
pub fn harness_of_height(height: f32) -> Harness<'static, CryoforgeApp> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, height))
        .wgpu()
        .build_eframe(|cc| CryoforgeApp::new(cc.egui_ctx.clone()).expect("app starts"))
}

/// Steps the UI until `done` holds (the app's threads work in the background).
pub fn run_until(h: &mut Harness<'static, CryoforgeApp>, what: &str, done: impl Fn(&CryoforgeApp) -> bool) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}

/// AdK's own 5 Å map, written to a temporary file.
pub fn adk_map(dir: &std::path::Path) -> PathBuf {
    adk_map_with(dir, "adk5.mrc", GaussianOptions::molmap(5.0))
}

/// 1AKE's density made with `options`, written to `dir/name`.
pub fn adk_map_with(dir: &std::path::Path, name: &str, options: GaussianOptions) -> PathBuf {
    let s = Structure::read(&asset("models/1ake.pdb")).expect("read");
    let (atoms, _) = GaussianAtoms::from_structure(&s, 0, options);
    let grid = molmap_grid(&atoms.positions, options.resolution_angstrom);
    let path = dir.join(name);
    DensityMap {
        values: simulate(&grid, &atoms),
        grid,
        meta: Default::default(),
    }
    .write(&path)
    .expect("write map");
    path
}

pub fn loaded(app: &CryoforgeApp) -> bool {
    app.objects.iter().all(|o| !matches!(o.kind, ObjectKind::Loading))
}

/// The app with AdK's map (surface extracted) and model open; returns the map's id.
pub fn harness_with_map_and_model(dir: &std::path::Path) -> (Harness<'static, CryoforgeApp>, u64) {
    let mut h = harness();
    h.state_mut().open(adk_map(dir));
    h.state_mut().open(asset("models/1ake.pdb"));
    run_until(&mut h, "files to load", loaded);
    let map = map_id(h.state());
    run_until(
        &mut h,
        "the first surface",
        |app| matches!(&app.object(map).map(|o| &o.kind), Some(ObjectKind::Map(m)) if m.mesh.is_some()),
    );
    (h, map)
}

pub fn map_id(app: &CryoforgeApp) -> u64 {
    app.objects
        .iter()
        .find(|o| matches!(o.kind, ObjectKind::Map(_)))
        .map(|o| o.id)
        .expect("a map")
}

/// Selects the object called `name` and returns its id.
pub fn select(h: &mut Harness<'static, CryoforgeApp>, name: &str) -> u64 {
    let id = h
        .state()
        .objects
        .iter()
        .find(|o| o.name == name)
        .map(|o| o.id)
        .unwrap_or_else(|| panic!("no object {name}"));
    h.state_mut().selected = Some(id);
    id
}

mod build;
mod cartoon;
#[path = "../common/mod.rs"]
mod common;
mod flex;
mod hetero;
mod methods;
mod particle_file;
mod viewer;
