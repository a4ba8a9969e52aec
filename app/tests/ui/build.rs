//! Model building from the map inspector: a sequence pasted, the build streaming into a new object,
//! the result scored against the deposited model.

use egui_kittest::kittest::Queryable as _;

use crate::*;

#[test]
fn a_protein_is_built_from_its_map_and_sequence_and_scores_against_its_model() {
    let mut h = harness_of_height(1200.0);
    h.state_mut().open(asset("build/example/2sdf_4A.mrc"));
    run_until(&mut h, "the map to load", loaded);
    let map = map_id(h.state());
    h.state_mut().selected = Some(map);
    let fasta = std::fs::read_to_string(asset("build/example/2sdf.fasta")).expect("fasta");
    if let Some(ObjectKind::Map(m)) = h.state_mut().object_mut(map).map(|o| &mut o.kind) {
        m.build.sequence = fasta;
        m.build.resolution = 4.0;
    }
    h.run_steps(3);
    h.get_by_label("Build model (map and sequence to a backbone model)")
        .click();
    h.run_steps(3);
    h.render()
        .expect("render")
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("build_section.png"))
        .expect("save");
    h.get_by_label("Build model into 2sdf_4A.mrc").click();
    let built = |app: &CryoforgeApp| {
        app.objects
            .iter()
            .find(|o| o.name == "build (2sdf_4A.mrc)")
            .map(|o| o.id)
    };
    run_until(&mut h, "the build object", |app| built(app).is_some());
    let id = built(h.state()).expect("build object");
    // The build streams: candidates or traces appear before it finishes.
    run_until(
        &mut h,
        "the first findings",
        |app| matches!(&app.object(id).map(|o| &o.kind), Some(ObjectKind::Model(m)) if !m.model.atoms.is_empty()),
    );
    run_until(&mut h, "the build to finish", |app| {
        app.jobs
            .iter()
            .any(|j| matches!(j.state, JobState::Finished(_) | JobState::Failed(_)))
    });
    let failed: Vec<String> = h
        .state()
        .jobs
        .iter()
        .filter_map(|j| match &j.state {
            JobState::Failed(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    h.state_mut().selected = Some(id);
    h.run_steps(4);
    h.render()
        .expect("render")
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("build.png"))
        .expect("save");
    let model = match &h.state().object(id).expect("built").kind {
        ObjectKind::Model(m) => {
            assert!(m.build.is_some(), "the result is attached");
            m.model.clone()
        }
        _ => unreachable!(),
    };
    let reference = Structure::read(&asset("build/example/2sdf_model1.pdb")).expect("reference");
    let metrics = cryoforge_compute::models::building::building_metrics(&model, &reference);
    eprintln!("{metrics:?}");
    // The section starts on the default likelihood and tracer (the map's density as a tree, the measured best).
    let floor = if cryoforge_compute::build::Likelihood::default_for_this_build()
        == cryoforge_compute::build::Likelihood::Network
    {
        NETWORK_TM_FLOOR
    } else {
        DENSITY_TM_FLOOR
    };
    assert!(
        metrics.tm_score > floor,
        "TM-score {} (floor {floor})",
        metrics.tm_score
    );
}

/// The TM-scores the example's build reaches at least, traced as a density tree: from the map alone
/// (measured 0.27; linked map peaks reached 0.18) and with the bundled network, were it the default
/// (measured 0.26).
const DENSITY_TM_FLOOR: f64 = 0.2;
const NETWORK_TM_FLOOR: f64 = 0.2;
