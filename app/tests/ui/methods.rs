//! The methods from the model inspector: guided fitting and particle refinement, live.

use egui_kittest::kittest::Queryable as _;

use crate::*;

/// A tall window with AdK's map and 1AKE open, 1AKE selected, its guided fit set to `steps`.
fn guided_setup(dir: &std::path::Path, steps: usize) -> (egui_kittest::Harness<'static, CryoforgeApp>, u64) {
    let mut h = harness_of_height(1500.0);
    h.state_mut().open(adk_map(dir));
    h.state_mut().open(asset("models/1ake.pdb"));
    run_until(&mut h, "files to load", loaded);
    let model = select(&mut h, "1ake.pdb");
    if let Some(m) = h.state_mut().model_mut(model) {
        m.guided_settings.steps = steps;
    }
    h.run_steps(2);
    (h, model)
}

#[test]
fn guided_fit_streams_then_scrubs_and_exports_a_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, _) = guided_setup(dir.path(), 40);
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
        app.jobs.iter().any(|j| matches!(j.state, JobState::Finished(_)))
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
    assert_eq!(frames, 41, "one frame per step, then the final model");
    // Scrub to the middle of the trajectory and export that frame.
    if let Some(m) = h.state_mut().model_mut(fitted) {
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
    let model = select(&mut h, "1ake.pdb");
    if let Some(m) = h.state_mut().model_mut(model) {
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
        app.jobs.iter().any(|j| matches!(j.state, JobState::Finished(_)))
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
                let cc = cryoforge_compute::maps::scores::correlation(image, projection, true, None);
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
fn guided_fit_sees_the_zone_the_user_picks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut h, model) = guided_setup(dir.path(), 20);
    let zone = |h: &egui_kittest::Harness<'static, CryoforgeApp>| {
        h.state().object(model).and_then(|o| match &o.kind {
            ObjectKind::Model(m) => Some(m.guided_settings.zone),
            _ => None,
        })
    };
    assert_eq!(zone(&h), Some(GuidedZone::Model), "the model's zone by default");
    h.get_by_label("the whole map").click();
    h.run_steps(2);
    assert_eq!(zone(&h), Some(GuidedZone::WholeMap));
    // The map itself as a mask: guidance sees the inside of its surface as shown.
    h.get_by_label("mask: inside adk5.mrc").click();
    h.run_steps(2);
    assert!(matches!(zone(&h), Some(GuidedZone::Mask(_))), "{:?}", zone(&h));
    h.get_by_label("Guided fit into adk5.mrc").click();
    run_until(&mut h, "the guided fit to finish", |app| {
        app.jobs.iter().any(|j| matches!(j.state, JobState::Finished(_)))
    });
    let fit = h
        .state()
        .objects
        .iter()
        .find_map(|o| match &o.kind {
            ObjectKind::Model(m) if o.name.ends_with("(guided fit)") => m.guided.as_ref().map(|v| v.fit.clone()),
            _ => None,
        })
        .expect("the fit is attached");
    assert!(fit.zone.starts_with("the mask"), "{}", fit.zone);
    let map_voxels = h
        .state()
        .objects
        .iter()
        .find_map(|o| match &o.kind {
            ObjectKind::Map(m) => Some(m.map.values.len()),
            _ => None,
        })
        .expect("map");
    assert!(
        fit.zone_voxels > 0 && fit.zone_voxels < map_voxels / 2,
        "the mask is the inside of the surface: {} of {map_voxels} voxels",
        fit.zone_voxels
    );
}
