//! The viewer: opening files, visibility, thresholds, map tools, rigid fitting, trajectories.

use egui_kittest::kittest::Queryable as _;

use crate::*;

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
fn a_segment_mask_for_an_open_model_becomes_a_map_at_its_edge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, map) = harness_with_map_and_model(dir.path());
    h.state_mut().selected = Some(map);
    // Contoured low enough that the surface holds the whole protein (the default, the level
    // enclosing 1 % of the box, shows pieces of it), the segments at that level hold the model.
    h.state_mut().set_level(map, 0.1);
    h.run_steps(2);
    let before = h.state().objects.len();
    h.get_by_label("mask for 1ake.pdb").click();
    run_until(&mut h, "the mask", |app| app.objects.len() == before + 1 && loaded(app));
    h.run_steps(3);
    h.render()
        .expect("render")
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("segment_mask.png"))
        .expect("save");
    let new = h.state().objects.last().expect("new object");
    assert!(new.name.contains("mask for 1ake.pdb"), "{}", new.name);
    let model = match &h
        .state()
        .objects
        .iter()
        .find(|o| o.name == "1ake.pdb")
        .expect("model")
        .kind
    {
        ObjectKind::Model(m) => m.model.clone(),
        _ => unreachable!(),
    };
    match &new.kind {
        ObjectKind::Map(m) => {
            assert_eq!(m.level, 0.5, "a 0/1 mask is drawn and used as a zone at its edge");
            // The mask holds the model: the mask's value at (nearly) every atom is 1.
            let inside = model.frames[0]
                .iter()
                .filter(|&&p| cryoforge_compute::maps::scores::interpolate(&m.map, p).is_some_and(|v| v > 0.5))
                .count();
            let fraction = inside as f64 / model.frames[0].len() as f64;
            assert!(fraction > 0.95, "{fraction}");
        }
        _ => panic!("the tool made a map"),
    }
}

#[test]
fn segments_are_drawn_one_colour_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, map) = harness_with_map_and_model(dir.path());
    h.state_mut().selected = Some(map);
    h.state_mut().set_level(map, 0.3);
    h.run_steps(2);
    let before = h.state().objects.len();
    h.get_by_label("segment").click();
    run_until(&mut h, "the label map", |app| {
        app.objects.len() == before + 1 && loaded(app)
    });
    let labels = h.state().objects.last().expect("label map").id;
    run_until(
        &mut h,
        "its surface",
        |app| matches!(&app.object(labels).map(|o| &o.kind), Some(ObjectKind::Map(m)) if m.mesh.is_some()),
    );
    h.run_steps(3);
    h.render()
        .expect("render")
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("segments.png"))
        .expect("save");
    match &h.state().object(labels).expect("labels").kind {
        ObjectKind::Map(m) => {
            assert_eq!(m.level, 0.5, "a label map is drawn around its labelled voxels");
            let regions = m.map.values.iter().copied().fold(0.0, f32::max) as usize;
            let (_, mesh) = m.mesh.as_ref().expect("mesh");
            let colours = mesh
                .vertex_colors
                .as_ref()
                .expect("a label map's surface is coloured by label");
            let mut distinct: Vec<[u32; 3]> = colours
                .iter()
                .map(|c| [c[0], c[1], c[2]].map(|v| (v * 255.0).round() as u32))
                .collect();
            distinct.sort_unstable();
            distinct.dedup();
            assert!(regions >= 3, "{regions} regions");
            assert_eq!(distinct.len(), regions, "one colour per region");
        }
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
    let model = select(&mut h, "1ake.pdb");
    h.run_steps(2);

    // A local fit from the model's own place finishes with a perfect placement.
    h.get_by_label("Fit into adk5.mrc").click();
    run_until(&mut h, "the local fit", |app| {
        app.jobs.iter().any(|j| matches!(j.state, JobState::Finished(_)))
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
