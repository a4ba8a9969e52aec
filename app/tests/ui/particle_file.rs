//! A particle file that gives no pixel size (RELION 3.0 without optics columns): its inspector
//! says so, a refinement against it fails naming the fix, and with the pixel size set in the
//! file's "Pixel size" field the same refinement runs.

use cryoforge_compute::formats::star::{StarFile, StarTable};
use egui_kittest::kittest::Queryable as _;

use super::{CryoforgeApp, JobState, asset, harness_of_height, loaded, run_until, select};

/// The 12-particle RELION 3.0 fixture without its detector pixel and magnification columns,
/// beside a copy of its stack.
fn star_without_pixel_size(dir: &std::path::Path) -> std::path::PathBuf {
    let mut star = StarFile::read(&asset("fixtures/particles_relion30.star")).expect("read");
    let table = star.blocks[0].table_mut().expect("table");
    let keep: Vec<usize> = (0..table.columns.len())
        .filter(|&c| !["rlnDetectorPixelSize", "rlnMagnification"].contains(&table.columns[c].as_str()))
        .collect();
    let mut edited = StarTable::new(keep.iter().map(|&c| table.columns[c].clone()).collect());
    for r in 0..table.row_count() {
        edited.push_row(keep.iter().map(|&c| table.cell(r, c).to_owned()).collect());
    }
    *table = edited;
    let path = dir.join("no_apix.star");
    star.write(&path).expect("write");
    std::fs::copy(asset("fixtures/particles.mrcs"), dir.join("particles.mrcs")).expect("copy stack");
    path
}

fn last_job(app: &CryoforgeApp) -> Option<&JobState> {
    app.jobs.last().map(|j| &j.state)
}

#[test]
fn a_particle_file_without_pixel_size_asks_for_one_and_refines_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let star = star_without_pixel_size(dir.path());
    let mut h = harness_of_height(1500.0);
    h.state_mut().open(asset("models/1ake.pdb"));
    h.state_mut().open(star.clone());
    run_until(&mut h, "files to load", loaded);
    select(&mut h, "no_apix.star");
    h.run_steps(2);
    h.get_by_label("This file gives no pixel size: set it to refine or train on its particles.");

    let model = select(&mut h, "1ake.pdb");
    if let Some(m) = h.state_mut().model_mut(model) {
        m.refine_settings.epochs = 1;
        m.refine_settings.resolution = 6.0;
    }
    h.run_steps(2);
    h.get_by_label("Refine against no_apix.star").click();
    run_until(&mut h, "the refinement to fail", |app| {
        !app.jobs.is_empty() && matches!(last_job(app), Some(JobState::Failed(_)))
    });
    let Some(JobState::Failed(why)) = last_job(h.state()) else {
        unreachable!()
    };
    assert!(
        why.contains("no_apix.star") && why.contains("pixel-size field"),
        "{why}"
    );

    // The field: ticking it takes a value (1 Å/px when the file has none), which is then edited.
    select(&mut h, "no_apix.star");
    h.run_steps(2);
    h.get_by_label("Pixel size").click();
    h.run_steps(2);
    assert_eq!(h.state().particle_pixel_sizes.get(&star), Some(&1.0));
    h.state_mut().particle_pixel_sizes.insert(star.clone(), 1.5);
    select(&mut h, "1ake.pdb");
    h.run_steps(2);
    let jobs_before = h.state().jobs.len();
    h.get_by_label("Refine against no_apix.star").click();
    run_until(&mut h, "the refinement with the pixel size to finish", |app| {
        app.jobs.len() > jobs_before && matches!(last_job(app), Some(JobState::Finished(_) | JobState::Failed(_)))
    });
    assert!(matches!(last_job(h.state()), Some(JobState::Finished(_))));
}
