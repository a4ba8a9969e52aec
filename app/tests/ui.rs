//! The app driven like a user would, without a display (egui_kittest, rendering on llvmpipe):
//! open real files, toggle objects, move the threshold, run map tools, start and cancel a fit,
//! scrub a trajectory, and look at the viewport's pixels.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cryoforge::gui::hetero_panel::ScatterDevice;
use cryoforge::gui::{CryoforgeApp, JobState, ObjectKind};
use cryoforge_compute::density::{GaussianAtoms, GaussianOptions, molmap_grid, simulate};
use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::formats::mrc::DensityMap;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;

fn asset(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../assets")
        .join(relative)
}

fn harness() -> Harness<'static, CryoforgeApp> {
    harness_of_height(800.0)
}

/// A taller window, for inspectors whose lower buttons would otherwise be scrolled out of view.
fn harness_of_height(height: f32) -> Harness<'static, CryoforgeApp> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, height))
        .wgpu()
        .build_eframe(|cc| CryoforgeApp::new(cc.egui_ctx.clone()).expect("app starts"))
}

/// Steps the UI until `done` holds (the app's threads work in the background).
fn run_until(h: &mut Harness<'static, CryoforgeApp>, what: &str, done: impl Fn(&CryoforgeApp) -> bool) {
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
fn adk_map(dir: &std::path::Path) -> PathBuf {
    let s = Structure::read(&asset("models/1ake.pdb")).expect("read");
    let (atoms, _) = GaussianAtoms::from_structure(&s, 0, GaussianOptions::molmap(5.0));
    let grid = molmap_grid(&atoms.positions, 5.0);
    let path = dir.join("adk5.mrc");
    DensityMap {
        values: simulate(&grid, &atoms),
        grid,
        meta: Default::default(),
    }
    .write(&path)
    .expect("write map");
    path
}

fn loaded(app: &CryoforgeApp) -> bool {
    app.objects.iter().all(|o| !matches!(o.kind, ObjectKind::Loading))
}

/// The app with AdK's map (surface extracted) and model open; returns the map's id.
fn harness_with_map_and_model(dir: &std::path::Path) -> (Harness<'static, CryoforgeApp>, u64) {
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

fn map_id(app: &CryoforgeApp) -> u64 {
    app.objects
        .iter()
        .find(|o| matches!(o.kind, ObjectKind::Map(_)))
        .map(|o| o.id)
        .expect("a map")
}

#[test]
fn open_toggle_threshold_and_map_tools() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, map) = harness_with_map_and_model(dir.path());

    // Hide the model with its checkbox.
    h.get_by_label("show 1ake.pdb").click();
    h.run_steps(2);
    assert!(
        !h.state()
            .objects
            .iter()
            .find(|o| o.name == "1ake.pdb")
            .expect("model")
            .visible
    );

    // Move the threshold: the surface is re-extracted at the new level.
    let (old_level, old_triangles) = match &h.state().object(map).expect("map").kind {
        ObjectKind::Map(m) => (m.level, m.mesh.as_ref().map(|(_, mesh)| mesh.triangles.len())),
        _ => unreachable!(),
    };
    h.state_mut().selected = Some(map);
    let new_level = old_level * 0.3;
    h.state_mut().set_level(map, new_level);
    run_until(
        &mut h,
        "the new surface",
        |app| matches!(&app.object(map).map(|o| &o.kind), Some(ObjectKind::Map(m)) if m.mesh.as_ref().is_some_and(|(l, _)| *l == new_level)),
    );
    let new_triangles = match &h.state().object(map).expect("map").kind {
        ObjectKind::Map(m) => m.mesh.as_ref().map(|(_, mesh)| mesh.triangles.len()),
        _ => unreachable!(),
    };
    assert_ne!(new_triangles, old_triangles, "a lower level gives a different surface");

    // Export the selected map through the inspector's path field.
    let exported = dir.path().join("exported.mrc");
    h.state_mut().export_path = exported.display().to_string();
    h.run_steps(2);
    h.get_by_label("Export").click();
    h.run_steps(2);
    let reread = DensityMap::read(&exported).expect("the exported map reads back");
    assert_eq!(reread.grid.dims, [44, 46, 46]);

    // A map tool from the inspector makes a new map object.
    let before = h.state().objects.len();
    h.get_by_label("z-score").click();
    run_until(&mut h, "the z-scored map", |app| {
        app.objects.len() == before + 1 && loaded(app)
    });
    let new = h.state().objects.last().expect("new object");
    assert!(new.name.contains("z-score"), "{}", new.name);
    match &new.kind {
        ObjectKind::Map(m) => assert!(m.statistics.mean.abs() < 1e-4),
        _ => panic!("the tool made a map"),
    }
}

#[test]
fn fit_in_map_runs_streams_and_cancels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut h = harness();
    h.state_mut().open(adk_map(dir.path()));
    h.state_mut().open(asset("models/1ake.pdb"));
    run_until(&mut h, "files to load", loaded);
    let model = h
        .state()
        .objects
        .iter()
        .find(|o| o.name == "1ake.pdb")
        .map(|o| o.id)
        .expect("model");
    h.state_mut().selected = Some(model);
    h.run_steps(2);

    // A local fit from the model's own place finishes with a perfect placement.
    h.get_by_label("Fit into adk5.mrc").click();
    run_until(&mut h, "the local fit", |app| {
        app.jobs.iter().any(|j| j.state == JobState::Finished)
    });
    match &h.state().object(model).expect("model").kind {
        ObjectKind::Model(m) => assert!(m.placements.first().expect("placement").correlation > 0.99),
        _ => unreachable!(),
    }

    // A long global search is cancelled from the jobs panel and keeps what it found.
    if let Some(o) = h.state_mut().objects.iter_mut().find(|o| o.id == model)
        && let ObjectKind::Model(m) = &mut o.kind
    {
        m.fit_search = 400;
    }
    h.run_steps(2);
    h.get_by_label("Fit into adk5.mrc").click();
    run_until(&mut h, "the global search to step", |app| {
        app.jobs.iter().any(|j| j.state == JobState::Running && j.step >= 3)
    });
    // What a user sees mid-search: progress, the live plot, the model moving.
    let running = h.render().expect("render");
    running
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fit_running.png"))
        .expect("save");
    h.get_by_label("Cancel").click();
    run_until(&mut h, "the cancel", |app| {
        app.jobs.iter().any(|j| j.state == JobState::Cancelled)
    });
    let job = h
        .state()
        .jobs
        .iter()
        .find(|j| j.state == JobState::Cancelled)
        .expect("cancelled job");
    assert!(job.step < 400, "stopped early, after {} starts", job.step);
    match &h.state().object(model).expect("model").kind {
        ObjectKind::Model(m) => assert!(!m.placements.is_empty(), "cancel keeps the placements found"),
        _ => unreachable!(),
    }
}

#[test]
fn trajectory_scrubbing_and_the_viewport_draws() {
    let mut h = harness();
    h.state_mut().open(asset("models/adk_dims_trajectory.pdb.gz"));
    run_until(&mut h, "the trajectory", loaded);
    let id = h.state().objects[0].id;
    h.state_mut().selected = Some(id);
    h.run_steps(3);
    let first = h.render().expect("render");
    h.get_by_label("Play").click();
    run_until(
        &mut h,
        "frames to advance",
        |app| matches!(&app.object(id).map(|o| &o.kind), Some(ObjectKind::Model(m)) if m.frame >= 5),
    );
    h.get_by_label("Pause").click();
    h.run_steps(3);
    let later = h.render().expect("render");
    // The viewport shows the model: many pixels differ from the background, and the moved
    // frames change the picture.
    let background = egui::Color32::from_rgb(79, 79, 89);
    // The middle of the window is inside the viewport whatever the panel sizes.
    let middle = |img: &image::RgbaImage| -> Vec<[u8; 4]> {
        let (w, h) = img.dimensions();
        (h * 3 / 8..h * 5 / 8)
            .flat_map(|y| (w * 3 / 8..w * 5 / 8).map(move |x| (x, y)))
            .map(|(x, y)| img.get_pixel(x, y).0)
            .collect()
    };
    let (a, b) = (middle(&first), middle(&later));
    let drawn = a
        .iter()
        .filter(|p| (0..3).any(|k| (i32::from(p[k]) - i32::from(background[k])).abs() > 20))
        .count();
    assert!(
        drawn * 10 > a.len(),
        "the model covers the viewport's middle: {drawn} of {} pixels",
        a.len()
    );
    let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert!(changed > 500, "frames differ in {changed} pixels");
}

#[test]
fn slice_plane_and_bond_style_draw() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, _map) = harness_with_map_and_model(dir.path());
    h.run_steps(3);
    let before = h.render().expect("render");
    for o in &mut h.state_mut().objects {
        match &mut o.kind {
            ObjectKind::Map(m) => m.show_slice = true,
            ObjectKind::Model(m) => m.style = cryoforge::view::AtomStyle::Bonds,
            _ => {}
        }
    }
    h.state_mut().mark_scene_dirty();
    h.run_steps(3);
    let after = h.render().expect("render");
    after
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("slice_and_bonds.png"))
        .expect("save");
    let (w, hgt) = after.dimensions();
    let changed = (hgt / 4..hgt * 3 / 4)
        .flat_map(|y| (w / 3..w * 2 / 3).map(move |x| (x, y)))
        .filter(|&(x, y)| before.get_pixel(x, y) != after.get_pixel(x, y))
        .count();
    assert!(
        changed > 5_000,
        "the slice and bonds change the picture ({changed} pixels)"
    );
}

#[test]
fn guided_fit_streams_then_scrubs_and_exports_a_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut h = harness_of_height(1500.0);
    h.state_mut().open(adk_map(dir.path()));
    h.state_mut().open(asset("models/1ake.pdb"));
    run_until(&mut h, "files to load", loaded);
    let model = h
        .state()
        .objects
        .iter()
        .find(|o| o.name == "1ake.pdb")
        .map(|o| o.id)
        .expect("model");
    h.state_mut().selected = Some(model);
    if let Some(ObjectKind::Model(m)) = h.state_mut().object_mut(model).map(|o| &mut o.kind) {
        m.guided_settings.steps = 40;
    }
    h.run_steps(2);
    h.get_by_label("Guided fit into adk5.mrc").click();
    run_until(&mut h, "the guided fit to step", |app| {
        app.jobs.iter().any(|j| j.state == JobState::Running && j.step >= 25)
    });
    let fitted = h
        .state()
        .objects
        .iter()
        .find(|o| o.name.ends_with("(guided fit)"))
        .map(|o| o.id)
        .expect("a live object");
    h.run_steps(2);
    let running = h.render().expect("render");
    running
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("guided_running.png"))
        .expect("save");
    run_until(&mut h, "the guided fit to finish", |app| {
        app.jobs.iter().any(|j| j.state == JobState::Finished)
    });
    let frames = match &h.state().object(fitted).expect("fitted").kind {
        ObjectKind::Model(m) => {
            let view = m.guided.as_ref().expect("the fit is attached");
            assert!(
                view.fit.samples[0].correlation > 0.9,
                "the model stays in its own map: {}",
                view.fit.samples[0].correlation
            );
            m.model.frames.len()
        }
        _ => unreachable!(),
    };
    assert_eq!(frames, 40, "one frame per step");
    // Scrub to the middle of the trajectory and export that frame.
    if let Some(ObjectKind::Model(m)) = h.state_mut().object_mut(fitted).map(|o| &mut o.kind) {
        m.frame = 20;
    }
    h.state_mut().selected = Some(fitted);
    let out = dir.path().join("frame20.cif");
    h.state_mut().export_path = out.display().to_string();
    h.run_steps(3);
    // The inspector names the step the slider shows.
    let label = match &h.state().object(fitted).expect("fitted").kind {
        ObjectKind::Model(m) => {
            let sample = &m.guided.as_ref().expect("fit").fit.samples[0];
            let r = &sample.steps[sample.trajectory.steps[20]];
            format!(
                "step {}/40 · {} · σ {:.2} Å · cc {:.4}",
                r.step + 1,
                r.phase.label(),
                r.sigma,
                r.correlation
            )
        }
        _ => unreachable!(),
    };
    assert!(label.starts_with("step 21/40 · global guidance"), "{label}");
    h.get_by_label(&label);
    let shown = h.render().expect("render");
    shown
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("guided_scrubbed.png"))
        .expect("save");
    h.get_by_label("Export shown frame").click();
    h.run_steps(2);
    let written = Structure::read(&out)
        .unwrap_or_else(|e| panic!("the exported frame reads back ({e}); app says {:?}", h.state().message));
    assert_eq!(written.frames.len(), 1);
    match &h.state().object(fitted).expect("fitted").kind {
        ObjectKind::Model(m) => {
            // mmCIF keeps three decimals.
            let worst = written.frames[0]
                .iter()
                .zip(&m.model.frames[20])
                .flat_map(|(a, b)| (0..3).map(move |k| (a[k] - b[k]).abs()))
                .fold(0.0f32, f32::max);
            assert_eq!(written.frames[0].len(), m.model.frames[20].len());
            assert!(
                worst < 1e-3,
                "the exported frame is the shown one (largest difference {worst} Å)"
            );
        }
        _ => unreachable!(),
    }
}

#[test]
fn particle_refinement_shows_a_gallery_live_and_exports_the_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let star = dir.path().join("p.star");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_cryoforge"))
        .args([
            "simulate",
            "particles",
            "--model",
            asset("models/1ake.pdb").to_str().expect("utf-8"),
            "--count",
            "160",
            "--box",
            "48",
            "--apix",
            "2.0",
            "--snr",
            "1",
            "-o",
        ])
        .arg(&star)
        .status()
        .expect("simulate");
    assert!(status.success());
    let mut h = harness_of_height(1500.0);
    h.state_mut().open(asset("models/1ake.pdb"));
    h.state_mut().open(star);
    run_until(&mut h, "files to load", loaded);
    let model = h
        .state()
        .objects
        .iter()
        .find(|o| o.name == "1ake.pdb")
        .map(|o| o.id)
        .expect("model");
    h.state_mut().selected = Some(model);
    if let Some(ObjectKind::Model(m)) = h.state_mut().object_mut(model).map(|o| &mut o.kind) {
        m.refine_settings.epochs = 2;
        m.refine_settings.resolution = 6.0;
    }
    h.run_steps(2);
    h.get_by_label("Refine against p.star").click();
    let has_gallery = |app: &CryoforgeApp| {
        app.objects.iter().any(|o| {
            o.name.ends_with("(particle fit)") && matches!(&o.kind, ObjectKind::Model(m) if m.gallery.is_some())
        })
    };
    run_until(&mut h, "the live gallery", |app| {
        has_gallery(app) && app.jobs.iter().any(|j| j.state == JobState::Running)
    });
    let fitted = h
        .state()
        .objects
        .iter()
        .find(|o| o.name.ends_with("(particle fit)"))
        .map(|o| o.id)
        .expect("a live object");
    h.state_mut().selected = Some(fitted);
    h.run_steps(3);
    let running = h.render().expect("render");
    running
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("particles_running.png"))
        .expect("save");
    run_until(&mut h, "the refinement to finish", |app| {
        app.jobs.iter().any(|j| j.state == JobState::Finished)
    });
    h.run_steps(3);
    let atoms = match &h.state().object(fitted).expect("fitted").kind {
        ObjectKind::Model(m) => {
            let r = m.refinement.as_ref().expect("the refinement is attached");
            assert_eq!(r.epochs.len(), 2);
            assert!(
                r.epochs[1].validation_frc > 0.2,
                "the model fits its own particles: {:?}",
                r.epochs
            );
            let gallery = &m.gallery.as_ref().expect("gallery").gallery;
            assert_eq!(gallery.pairs.len(), 4);
            // The final gallery's projections look like their particles.
            for (_, image, projection) in &gallery.pairs {
                let cc = cryoforge_compute::scores::correlation(image, projection, true, None);
                assert!(cc > 0.3, "projection against its particle: cc {cc}");
            }
            r.refined.atoms.len()
        }
        _ => unreachable!(),
    };
    h.get_by_label("Export refined model");
    let finished = h.render().expect("render");
    finished
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("particles_finished.png"))
        .expect("save");
    let out = dir.path().join("refined.cif");
    h.state_mut().export_path = out.display().to_string();
    h.run_steps(1);
    h.get_by_label("Export refined model").click();
    h.run_steps(2);
    let written = Structure::read(&out)
        .unwrap_or_else(|e| panic!("the refined model reads back ({e}); app says {:?}", h.state().message));
    assert_eq!(written.frames[0].len(), atoms);
}

#[test]
fn heterogeneity_trains_shows_the_latent_space_decodes_a_point_and_exports_a_selection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let star = dir.path().join("mix.star");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_cryoforge"))
        .args([
            "simulate",
            "particles",
            "--model",
            asset("models/1ake.pdb").to_str().expect("utf-8"),
            "--model",
            asset("models/gemmi_1orc.pdb").to_str().expect("utf-8"),
        ])
        .args([
            "--count", "300", "--box", "48", "--apix", "2.0", "--snr", "0.5", "--seed", "3", "-o",
        ])
        .arg(&star)
        .status()
        .expect("simulate");
    assert!(status.success());
    let mut h = harness_of_height(1300.0);
    h.state_mut().open(star.clone());
    run_until(&mut h, "the particle file to load", loaded);
    let run = dir.path().join("run");
    {
        let app = h.state_mut();
        app.selected = app.objects.first().map(|o| o.id);
        app.hetero_settings.zdim = 2;
        app.hetero_settings.epochs = 2;
        app.hetero_settings.image_size = 24;
        app.hetero_settings.clusters = 2;
        app.hetero_settings.run = run.display().to_string();
    }
    h.run_steps(2);
    h.get_by_label("Train").click();
    run_until(&mut h, "training to report progress", |app| {
        app.jobs
            .iter()
            .any(|j| j.state == JobState::Running && !j.history.is_empty())
    });
    run_until(&mut h, "the latent space", |app| app.latent.is_some());
    // The GPU point pipeline even on llvmpipe, where Auto would pick the CPU rasteriser.
    h.state_mut().latent.as_mut().expect("latent view").scatter_device = ScatterDevice::Gpu;
    assert!(run.join("weights.bpk").exists() && run.join("analysis").join("umap.npy").exists());
    h.run_steps(3);
    let shown = h.render().expect("render");
    shown
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("latent_space.png"))
        .expect("save");
    {
        let view = h.state().latent.as_ref().expect("latent view");
        assert_eq!(view.exploration.len(), 300);
        assert_eq!(view.exploration.summary.clusters.len(), 2);
        assert!(view.drawn_on_gpu(), "the scatter is drawn by the wgpu point pipeline");
    }
    // The points are on screen: cluster 1's orange splats (nothing else in the window is orange).
    let orange = shown
        .pixels()
        .filter(|p| p[0] > 200 && (90..200).contains(&p[1]) && p[2] < 130)
        .count();
    assert!(orange > 30, "{orange} orange pixels: cluster 1's points are not drawn");
    // A click on the scatter decodes the nearest particle's volume into a new map.
    let maps = |app: &CryoforgeApp| {
        app.objects
            .iter()
            .filter(|o| matches!(o.kind, ObjectKind::Map(_)))
            .count()
    };
    h.get_by_label("Latent scatter").click();
    run_until(&mut h, "the decoded volume", |app| maps(app) == 1);
    let volume = h
        .state()
        .objects
        .iter()
        .find(|o| matches!(o.kind, ObjectKind::Map(_)))
        .expect("map");
    assert!(volume.name.contains("particle"), "{}", volume.name);
    if let ObjectKind::Map(m) = &volume.kind {
        assert_eq!(m.map.grid.dims, [24, 24, 24]);
        assert!(m.map.values.iter().any(|v| *v != 0.0));
    }
    // Select cluster 0 with its button, then export the selection as STAR.
    h.get_all_by_label("Select")
        .next()
        .expect("a cluster's Select button")
        .click();
    h.run_steps(2);
    let selected = h.state().latent.as_ref().expect("view").selection_count();
    let cluster0 = h.state().latent.as_ref().expect("view").exploration.summary.clusters[0].size;
    assert_eq!(selected, cluster0);
    // And a lasso around everything selects all.
    {
        let view = h.state_mut().latent.as_mut().expect("view");
        let b = cryoforge::scatter::bounds_of(&view.exploration.umap);
        view.select_polygon(&[[b[0], b[2]], [b[1], b[2]], [b[1], b[3]], [b[0], b[3]]]);
        assert_eq!(view.selection_count(), 300);
        view.select_cluster(0);
        view.export_path = dir.path().join("picked.star").display().to_string();
    }
    h.run_steps(2);
    h.get_by_label("Export selection").click();
    h.run_steps(2);
    let exported = cryoforge_compute::formats::star::StarFile::read(&dir.path().join("picked.star"))
        .unwrap_or_else(|e| panic!("the selection reads back ({e}); app says {:?}", h.state().message));
    let rows = exported
        .block("particles")
        .and_then(|b| b.table())
        .map_or(0, |t| t.row_count());
    assert_eq!(rows, cluster0);
    let finished = h.render().expect("render");
    finished
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("latent_selection.png"))
        .expect("save");
}
