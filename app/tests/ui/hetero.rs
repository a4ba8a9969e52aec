//! Heterogeneity from the particle inspector: training, the latent space, volumes, subsets.

use cryoforge::gui::hetero_panel::ScatterDevice;
use egui_kittest::kittest::Queryable as _;

use crate::*;

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
    // Start the encoder from the bundled pretrained prior.
    h.get_by_label("pretrained encoder").click();
    h.run_steps(1);
    assert!(h.state().hetero_settings.pretrained);
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
    let config = cryoforge_compute::hetero::RunConfig::read(&run).expect("config");
    assert!(config.shape.prior.is_some(), "the run starts from the pretrained prior");
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

#[test]
fn the_latent_panel_fits_a_model_into_every_state_and_walks_across_them() {
    use cryoforge_compute::hetero::explore::Exploration;
    let dir = tempfile::tempdir().expect("tempdir");
    let run = crate::common::two_state_run(dir.path());
    let mut h = harness_of_height(1300.0);
    h.state_mut().open(asset("models/adk_closed.pdb"));
    run_until(&mut h, "the model to load", loaded);
    {
        let app = h.state_mut();
        let exploration = Exploration::load(&run).expect("the run's analysis");
        app.latent = Some(cryoforge::gui::hetero_panel::LatentView::new(std::sync::Arc::new(
            exploration,
        )));
        for o in &mut app.objects {
            if let ObjectKind::Model(m) = &mut o.kind {
                m.guided_settings.steps = 40;
            }
        }
    }
    h.run_steps(2);
    h.get_by_label("Fit into every state").click();
    let states = |app: &CryoforgeApp| {
        app.objects.iter().find_map(|o| match &o.kind {
            ObjectKind::Model(m) => m.states.clone().map(|f| (m.model.clone(), f)),
            _ => None,
        })
    };
    run_until(&mut h, "the fit of both states", |app| states(app).is_some());
    let (model, fit) = states(h.state()).expect("states");
    assert_eq!(fit.states.len(), 2);
    assert_eq!(model.frames.len(), 2, "one frame per state");
    // The open cluster's frame has moved towards the open state; the closed one has not.
    let open = Structure::read(&asset("models/adk_open.pdb")).expect("open");
    let closed = Structure::read(&asset("models/adk_closed.pdb")).expect("closed");
    let rmsd =
        |frame: usize, r: &Structure| cryoforge_compute::models::compare::compare(&model, frame, r).ca_rmsd_angstrom;
    assert!(rmsd(1, &open) < 6.0, "{}", rmsd(1, &open));
    assert!(rmsd(0, &closed) < 1.0, "{}", rmsd(0, &closed));
    // The states' list in the new object's inspector.
    h.run_steps(2);
    h.render()
        .expect("render")
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("states.png"))
        .expect("save");
    h.get_by_label_contains("cluster 0 (2 particles): cc").click();
    h.run_steps(2);
    let frame = h.state().objects.iter().find_map(|o| match &o.kind {
        ObjectKind::Model(m) if m.states.is_some() => Some(m.frame),
        _ => None,
    });
    assert_eq!(frame, Some(1), "clicking a state shows its frame");
}
