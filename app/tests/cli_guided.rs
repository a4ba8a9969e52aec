//! `fit guided` from the command line, on AdK: outputs, report, free score, validation,
//! confidence, half maps and errors.

mod common;

use common::{asset, failure, fit, json, run, s, two_state_run};
use cryoforge_compute::formats::model::Structure;

#[test]
fn fit_guided_writes_models_trajectories_and_a_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let map = dir.path().join("open5.mrc");
    run(&[
        "simulate",
        "map",
        "--model",
        s(&asset("models/adk_open.pdb")),
        "--resolution",
        "5",
        "-o",
        s(&map),
    ]);
    let out = dir.path().join("fit.cif");
    let summary = json(&fit(
        "guided",
        s(&map),
        s(&asset("models/adk_closed.pdb")),
        "5",
        &[
            "--steps",
            "60",
            "--samples",
            "2",
            "--reference",
            s(&asset("models/adk_open.pdb")),
            "-o",
            s(&out),
            "--json",
        ],
    ));
    let samples = summary["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 2);
    let free = |k: usize| samples[k]["free_score"].as_f64().expect("free score");
    assert!(free(0) >= free(1), "ranked best first by the free score");
    let start_free = summary["start"]["free_score"].as_f64().expect("start free score");
    assert!(
        free(0) > start_free,
        "the fit raises the free score: {start_free} → {}",
        free(0)
    );
    assert_eq!(summary["start_is_best"], false);
    // Validation of start and samples, and the relaxation that ran.
    for v in [&summary["start"]["validation"], &samples[0]["validation"]] {
        assert_eq!(v["residues"], 214, "{v}");
        assert!(
            v["ramachandran"]["outliers_percent"].as_f64().expect("rama") <= 5.0,
            "{v}"
        );
        assert!(v["bonds"]["rmsz"].as_f64().expect("bond rmsz") < 2.0, "{v}");
    }
    assert!(samples[0]["relax"]["iterations"].as_u64().expect("relaxed") > 0);
    let start_rmsd = summary["start"]["reference"]["ca_rmsd_angstrom"]
        .as_f64()
        .expect("start rmsd");
    assert!((start_rmsd - 6.91).abs() < 0.05, "{start_rmsd}");
    let best_rmsd = samples[0]["reference"]["ca_rmsd_angstrom"].as_f64().expect("rmsd");
    assert!(
        best_rmsd < start_rmsd - 1.0,
        "even a short run moves towards the open state: {best_rmsd}"
    );
    let rounds = summary["rounds"].as_u64().expect("rounds") as usize;
    assert!((1..=2).contains(&rounds), "{rounds}");
    // Files: best, each sample, each trajectory (one model per step), and the report.
    let best = Structure::read(&out).expect("best");
    assert_eq!(best.atoms.len(), 1656, "heavy atoms");
    // The per-residue confidence (local correlation with the map) is in the B-factor column.
    let b: Vec<f32> = best.atoms.iter().map(|a| a.b_factor).collect();
    assert!(b.iter().all(|v| (-1.0..=1.0).contains(v)), "correlations");
    assert!(
        b.iter().any(|v| *v > 0.5) && b.iter().any(|v| (v - b[0]).abs() > 0.01),
        "varies per residue"
    );
    for n in [1, 2] {
        assert!(dir.path().join(format!("fit_sample{n}.cif")).exists());
        let traj = Structure::read(&dir.path().join(format!("fit_trajectory_sample{n}.pdb"))).expect("trajectory");
        assert_eq!(
            traj.frames.len(),
            61 + (rounds - 1) * 31,
            "one frame a step, then the final model, in each round kept"
        );
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("fit_report.json")).expect("report"))
            .expect("JSON");
    let steps = report["steps"][0]["steps"].as_array().expect("per-step records");
    assert_eq!(steps.len(), 60 + (rounds - 1) * 30);
    assert!(steps.iter().any(|r| r["sinkhorn"].is_number()) && steps.iter().any(|r| r["density_l2"].is_number()));

    // The control: no guidance, the model stays where it started.
    let control = json(&fit(
        "guided",
        s(&map),
        s(&asset("models/adk_closed.pdb")),
        "5",
        &[
            "--steps",
            "60",
            "--no-guidance",
            "--reference",
            s(&asset("models/adk_open.pdb")),
            "-o",
            s(&dir.path().join("control.cif")),
            "--json",
        ],
    ));
    let moved = control["samples"][0]["rmsd_to_start_angstrom"].as_f64().expect("moved");
    let still = control["samples"][0]["reference"]["ca_rmsd_angstrom"]
        .as_f64()
        .expect("rmsd");
    assert!(
        moved < 3.0 && still > 6.0,
        "unguided samples stay near the start: moved {moved} Å, {still} Å from the open state"
    );
    assert!(
        best_rmsd < still - 2.0,
        "guidance does the work: {best_rmsd} vs {still}"
    );
}

#[test]
fn fit_guided_names_a_bad_resolution_and_a_missing_file() {
    let model = asset("models/1ake.pdb");
    let guided = |resolution: &str| failure(&fit("guided", "missing.mrc", s(&model), resolution, &["-o", "x.cif"]));
    assert!(guided("-3").contains("--resolution"));
    assert!(guided("5").contains("missing.mrc"));
}

#[test]
fn fit_guided_scores_on_the_other_half_map_and_refuses_halves_on_different_grids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = asset("models/adk_open.pdb");
    let half = |name: &str, seed: &str, extra: &[&str]| {
        let path = dir.path().join(name);
        let mut args = vec![
            "simulate",
            "map",
            "--model",
            s(&open),
            "--resolution",
            "6",
            "--snr",
            "1",
            "--seed",
            seed,
            "-o",
            s(&path),
        ];
        args.extend_from_slice(extra);
        run(&args);
        path
    };
    let (a, b) = (half("a.mrc", "1", &[]), half("b.mrc", "2", &[]));
    let model = asset("models/adk_closed.pdb");
    let out = dir.path().join("fit.cif");
    let report = json(&[
        "fit",
        "guided",
        "--half-maps",
        s(&a),
        s(&b),
        "--model",
        s(&model),
        "--resolution",
        "6",
        "--steps",
        "40",
        "-o",
        s(&out),
        "--json",
    ]);
    assert_eq!(report["free"], "the other half map", "{report}");
    assert!(report["samples"][0]["free_score"].is_number());
    let other = half("c.mrc", "3", &["--apix", "1.5"]);
    let error = failure(&[
        "fit",
        "guided",
        "--half-maps",
        s(&a),
        s(&other),
        "--model",
        s(&model),
        "--resolution",
        "6",
        "-o",
        s(&dir.path().join("x.cif")),
    ]);
    assert!(error.contains("different grids") && error.contains("a.mrc"), "{error}");
}

#[test]
fn fit_guided_into_every_state_of_a_run_gives_one_model_per_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = two_state_run(dir.path());
    let (closed, open) = (asset("models/adk_closed.pdb"), asset("models/adk_open.pdb"));
    let out = dir.path().join("states.pdb");
    let report = json(&[
        "fit",
        "guided",
        "--run",
        s(&run_dir),
        "--model",
        s(&closed),
        "--resolution",
        "6",
        "--steps",
        "60",
        "--reference",
        s(&closed),
        "--reference",
        s(&open),
        "-o",
        s(&out),
        "--json",
    ]);
    let states = report["states"].as_array().expect("states");
    assert_eq!(states.len(), 2, "{report}");
    // Path order: cluster 1 (mean PC1 −0.97) before cluster 0 (1.1).
    assert_eq!(states[0]["label"], "cluster 1");
    assert_eq!(states[1]["label"], "cluster 0");
    assert_eq!(states[0]["particles"], 3);
    let rmsd = |state: usize, reference: usize| {
        states[state]["references"][reference]["ca_rmsd_angstrom"]
            .as_f64()
            .expect("rmsd")
    };
    let start_to_open = states[1]["start"]["references"][1]["ca_rmsd_angstrom"]
        .as_f64()
        .expect("start rmsd");
    assert!(
        rmsd(1, 1) < start_to_open - 1.0,
        "the open cluster's model moves towards the open state: {} from {start_to_open}",
        rmsd(1, 1)
    );
    assert!(
        rmsd(0, 0) < 1.0,
        "the closed cluster's model stays closed: {}",
        rmsd(0, 0)
    );
    // One model per state in the trajectory, and each state's model beside it.
    let trajectory = Structure::read(&out).expect("trajectory");
    assert_eq!(trajectory.frames.len(), 2);
    for k in [1, 2] {
        let state = Structure::read(&dir.path().join(format!("states_state{k}.pdb"))).expect("state model");
        assert_eq!(state.atoms.len(), trajectory.atoms.len());
    }
    // A run with no analysis says so.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("folder");
    let error = failure(&[
        "fit",
        "guided",
        "--run",
        s(&empty),
        "--model",
        s(&closed),
        "--resolution",
        "6",
        "-o",
        s(&dir.path().join("x.pdb")),
    ]);
    assert!(error.contains("hetero analyze") && error.contains("empty"), "{error}");
}
