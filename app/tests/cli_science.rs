//! `simulate`, `score`, `compare`, `fit rigid`, `fit particles` and `map` from the command line, on AdK.

mod common;

use common::{asset, failure, fit, json, run, s};

use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::formats::model_write::write_structure;
use cryoforge_compute::geometry::matrix_from_rotvec;
use cryoforge_compute::maps::DensityMap;
use cryoforge_compute::models::compare::RigidTransform;

#[test]
fn simulate_then_score_prefers_the_right_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let map = dir.path().join("open5.mrc");
    let (open, closed) = (asset("models/adk_open.pdb"), asset("models/adk_closed.pdb"));
    run(&[
        "simulate",
        "map",
        "--model",
        s(&open),
        "--resolution",
        "5",
        "-o",
        s(&map),
    ]);
    let right = json(&[
        "score",
        "--map",
        s(&map),
        "--model",
        s(&open),
        "--resolution",
        "5",
        "--json",
    ]);
    let wrong = json(&[
        "score",
        "--map",
        s(&map),
        "--model",
        s(&closed),
        "--resolution",
        "5",
        "--json",
    ]);
    assert!(right["correlation_about_mean"].as_f64().expect("cc") > 0.999);
    assert!(wrong["correlation_about_mean"].as_f64().expect("cc") < 0.8);
    assert!(right["fraction_atoms_inside_contour"].as_f64() > wrong["fraction_atoms_inside_contour"].as_f64());

    let boxed = dir.path().join("boxed.mrc");
    run(&[
        "simulate",
        "map",
        "--model",
        s(&open),
        "--resolution",
        "6",
        "--apix",
        "2.0",
        "--box",
        "40",
        "-o",
        s(&boxed),
    ]);
    let m = DensityMap::read(&boxed).expect("read");
    assert_eq!((m.grid.dims, m.grid.voxel_size_angstrom), ([40; 3], [2.0; 3]));
}

#[test]
fn compare_reports_the_known_closed_to_open_rmsd() {
    let c = json(&[
        "compare",
        s(&asset("models/adk_closed.pdb")),
        s(&asset("models/adk_open.pdb")),
        "--json",
    ]);
    // The shared data's README gives 6.91 Å for this pair.
    assert!(
        (c["ca_rmsd_angstrom"].as_f64().expect("rmsd") - 6.91).abs() < 0.01,
        "{c}"
    );
    assert_eq!(c["matched_residues"], 214);
    let tm = c["tm_score"].as_f64().expect("tm");
    assert!(tm > 0.5 && tm < 0.8, "same fold, different state: {tm}");
    let same = json(&[
        "compare",
        s(&asset("models/adk_open.pdb")),
        s(&asset("models/adk_open.pdb")),
        "--json",
    ]);
    assert!(same["ca_rmsd_angstrom"].as_f64().expect("rmsd") < 1e-6);
    assert!((same["tm_score"].as_f64().expect("tm") - 1.0).abs() < 1e-9);
}

#[test]
fn fit_rigid_puts_a_displaced_model_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = asset("models/1ake.pdb");
    let map = dir.path().join("1ake5.mrc");
    run(&[
        "simulate",
        "map",
        "--model",
        s(&original),
        "--resolution",
        "5",
        "-o",
        s(&map),
    ]);
    let mut model = Structure::read(&original).expect("read");
    let t = RigidTransform {
        rotation: matrix_from_rotvec([0.0, 0.35, 0.0]),
        translation: [6.0, -3.0, 4.0],
    };
    for p in &mut model.frames[0] {
        *p = t.apply(p.map(f64::from)).map(|v| v as f32);
    }
    let displaced = dir.path().join("displaced.pdb");
    write_structure(&model, &displaced).expect("write");
    let before = json(&["compare", s(&displaced), s(&original), "--json"]);
    assert!(
        before["ca_rmsd_angstrom"].as_f64().expect("rmsd") < 1e-3,
        "superposed RMSD ignores placement"
    );
    let fitted = dir.path().join("fitted.cif");
    let report = json(&fit(
        "rigid",
        s(&map),
        s(&displaced),
        "5",
        &["-o", s(&fitted), "--json"],
    ));
    assert!(
        report["placements"][0]["correlation"].as_f64().expect("cc") > 0.999,
        "{report}"
    );
    // Without superposition: the fitted model sits where the original does.
    let a = Structure::read(&fitted).expect("read fitted");
    let b = Structure::read(&original).expect("read original");
    let worst = a.frames[0]
        .iter()
        .zip(&b.frames[0])
        .map(|(p, q)| (0..3).map(|k| (p[k] - q[k]).powi(2)).sum::<f32>().sqrt())
        .fold(0.0, f32::max);
    assert!(worst < 0.5, "largest atom displacement after fit {worst} Å");
}

#[test]
fn map_tools_write_maps_that_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = asset("maps/emd_5170.map");
    let original = DensityMap::read(&input).expect("read");
    for (tool, extra) in [
        ("threshold", vec!["--level", "0.5"]),
        ("dust", vec!["--level", "0.5", "--min-volume", "500"]),
        ("crop", vec!["--padding", "4"]),
        ("resample", vec!["--apix", "3.0"]),
        ("lowpass", vec!["--resolution", "15"]),
        ("flip", vec![]),
        ("zscore", vec![]),
    ] {
        let out = dir.path().join(format!("{tool}.mrc"));
        let mut args = vec!["map", tool, s(&input), "-o", s(&out)];
        args.extend(extra);
        run(&args);
        let m = DensityMap::read(&out).expect("reopen");
        match tool {
            "crop" => assert!(m.grid.voxel_count() < original.grid.voxel_count()),
            "resample" => assert_eq!(m.grid.voxel_size_angstrom, [3.0; 3]),
            "zscore" => assert!(m.statistics().mean.abs() < 1e-4),
            "threshold" => assert!(m.values.iter().all(|&v| v == 0.0 || v >= 0.5)),
            _ => assert_eq!(m.grid.dims, original.grid.dims),
        }
    }
}

#[test]
fn simulated_particles_reconstruct_into_the_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let star = dir.path().join("p.star");
    let open = asset("models/adk_open.pdb");
    let closed = asset("models/adk_closed.pdb");
    run(&[
        "simulate",
        "particles",
        "--model",
        s(&open),
        "--model",
        s(&closed),
        "--count",
        "300",
        "--box",
        "48",
        "--apix",
        "2.0",
        "--snr",
        "1",
        "--seed",
        "4",
        "-o",
        s(&star),
    ]);
    let info = json(&["info", "--json", s(&star), s(&dir.path().join("p.mrcs"))]);
    assert_eq!(info[0]["particles"], 300);
    assert!(
        info[0]["blocks"][1]["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .any(|c| c == "cryoforgeModelIndex")
    );
    assert_eq!(info[1]["count"], 300);
    // Both models were drawn.
    let table = cryoforge_compute::formats::star::StarFile::read(&star).expect("star");
    let particles = table.block("particles").and_then(|b| b.table()).expect("table");
    let column = particles.column_index("cryoforgeModelIndex").expect("truth column");
    let ones = (0..particles.row_count())
        .filter(|&r| particles.cell(r, column) == "1")
        .count();
    assert!(ones > 100 && ones < 200, "{ones} of 300 from the second model");

    let map = dir.path().join("rec.mrc");
    run(&["reconstruct", "--particles", s(&star), "-o", s(&map)]);
    let score = json(&[
        "score",
        "--map",
        s(&map),
        "--model",
        s(&open),
        "--resolution",
        "10",
        "--json",
    ]);
    assert!(score["correlation_about_mean"].as_f64().expect("cc") > 0.7, "{score}");
}

#[test]
fn score_in_the_model_zone_ignores_a_neighbour_in_the_map() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = asset("models/adk_open.pdb");
    // The map holds the model and a second copy 50 Å along x.
    let mut pair = Structure::read(&open).expect("read");
    let copy: Vec<_> = pair
        .atoms
        .iter()
        .map(|a| {
            let mut b = a.clone();
            b.chain_id = "B".into();
            b
        })
        .collect();
    let shifted: Vec<[f32; 3]> = pair.frames[0].iter().map(|p| [p[0] + 50.0, p[1], p[2]]).collect();
    pair.atoms.extend(copy);
    pair.frames[0].extend(shifted);
    let pair_path = dir.path().join("pair.pdb");
    write_structure(&pair, &pair_path).expect("write");
    let map = dir.path().join("pair5.mrc");
    run(&[
        "simulate",
        "map",
        "--model",
        s(&pair_path),
        "--resolution",
        "5",
        "-o",
        s(&map),
    ]);
    let score = json(&[
        "score",
        "--map",
        s(&map),
        "--model",
        s(&open),
        "--resolution",
        "5",
        "--json",
    ]);
    let whole = score["correlation_about_mean"].as_f64().expect("cc");
    let zone = score["correlation_in_zone"].as_f64().expect("zone cc");
    assert!(
        whole < 0.8,
        "over the box the neighbour's density is unexplained: {whole}"
    );
    assert!(zone > 0.99, "in the model's zone it is not there: {zone}");
    let zone_fsc = score["zone_fsc_resolution_angstrom"].as_f64();
    assert!(zone_fsc.is_none_or(|r| r < 5.5), "masked FSC {zone_fsc:?}");
    assert_eq!(score["zone_radius_angstrom"].as_f64(), Some(6.25));
}

#[test]
fn fit_particles_moves_the_closed_state_towards_the_open_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let star = dir.path().join("open.star");
    run(&[
        "simulate",
        "particles",
        "--model",
        s(&asset("models/adk_open.pdb")),
        "--count",
        "400",
        "--box",
        "64",
        "--apix",
        "1.5",
        "--snr",
        "0.1",
        "--seed",
        "2",
        "-o",
        s(&star),
    ]);
    let out = dir.path().join("refined.cif");
    let summary = json(&fit(
        "particles",
        s(&star),
        s(&asset("models/adk_closed.pdb")),
        "5",
        &[
            "--epochs",
            "3",
            "--batch",
            "8",
            "--reference",
            s(&asset("models/adk_open.pdb")),
            "-o",
            s(&out),
            "--json",
        ],
    ));
    let start = summary["start"]["reference"]["ca_rmsd_angstrom"]
        .as_f64()
        .expect("start rmsd");
    let refined = summary["refined"]["reference"]["ca_rmsd_angstrom"]
        .as_f64()
        .expect("refined rmsd");
    assert!((start - 6.91).abs() < 0.05, "{start}");
    assert!(
        refined < start - 2.0,
        "three short epochs (126 steps) on 400 noisy particles move the model towards the open state: {start} → {refined} Å"
    );
    let epochs = summary["epochs"].as_array().expect("epochs");
    assert_eq!(epochs.len(), 3);
    let first = epochs[0]["validation_frc"].as_f64().expect("frc");
    let last = epochs[2]["validation_frc"].as_f64().expect("frc");
    assert!(last > first, "held-out FRC rises: {first} → {last}");
    let model = Structure::read(&out).expect("refined model");
    assert_eq!(model.atoms.len(), 1656, "heavy atoms");
    assert!(dir.path().join("refined_best.cif").exists());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("refined_report.json")).expect("report"))
            .expect("JSON");
    assert_eq!(report["amplitudes"].as_array().map(Vec::len), Some(1656));
    assert_eq!(
        report["step_frc"].as_array().map(Vec::len),
        Some(3 * 42),
        "one FRC per step: 336 training particles in batches of 8"
    );

    // The same particles as cryoSPARC .cs (which has no simulation block) with the centre given.
    let cs = dir.path().join("open.cs");
    run(&["convert", s(&star), s(&cs)]);
    let centre = summary["centre"]
        .as_array()
        .expect("centre")
        .iter()
        .map(|v| v.as_f64().expect("number").to_string())
        .collect::<Vec<_>>()
        .join(",");
    let from_cs = json(&[
        "fit",
        "particles",
        "--particles",
        s(&cs),
        &format!("--centre={centre}"),
        "--model",
        s(&asset("models/adk_closed.pdb")),
        "--resolution",
        "5",
        "--epochs",
        "1",
        "--batch",
        "8",
        "--reference",
        s(&asset("models/adk_open.pdb")),
        "-o",
        s(&dir.path().join("cs.cif")),
        "--json",
    ]);
    let moved = from_cs["refined"]["reference"]["ca_rmsd_angstrom"]
        .as_f64()
        .expect("rmsd");
    assert!(
        moved < start - 0.5,
        "one epoch from the .cs file moves the model too: {moved}"
    );
}

#[test]
fn fit_particles_names_missing_files_and_bad_options() {
    let model = asset("models/1ake.pdb");
    let err = failure(&fit("particles", "missing.star", s(&model), "4", &["-o", "x.cif"]));
    assert!(err.contains("missing.star"), "{err}");
    let err = failure(&fit("particles", "missing.star", s(&model), "0", &["-o", "x.cif"]));
    assert!(err.contains("--resolution"), "{err}");
    let err = failure(&fit(
        "particles",
        "missing.star",
        s(&model),
        "4",
        &["--centre", "1,2", "-o", "x.cif"],
    ));
    assert!(err.contains("three finite numbers"), "{err}");
    // A STAR file whose stack is absent: the error names the stack.
    let dir = tempfile::tempdir().expect("tempdir");
    let star = dir.path().join("p.star");
    run(&[
        "simulate",
        "particles",
        "--model",
        s(&model),
        "--count",
        "5",
        "--box",
        "32",
        "-o",
        s(&star),
    ]);
    std::fs::remove_file(dir.path().join("p.mrcs")).expect("remove the stack");
    let err = failure(&fit(
        "particles",
        s(&star),
        s(&model),
        "4",
        &["-o", s(&dir.path().join("x.cif"))],
    ));
    assert!(err.contains("p.mrcs"), "{err}");
}

#[test]
fn flex_writes_rmsf_as_b_factors_and_a_table_and_names_bad_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (map, coarse) = (dir.path().join("adk4.mrc"), dir.path().join("adk6.mrc"));
    let model = asset("models/1ake.pdb");
    for (out, res) in [(&map, "4"), (&coarse, "6")] {
        run(&[
            "simulate",
            "map",
            "--model",
            s(&model),
            "--resolution",
            res,
            "-o",
            s(out),
        ]);
    }
    let out = dir.path().join("flex.cif");
    let base = [
        "flex",
        "--map",
        s(&map),
        "--model",
        s(&model),
        "--resolution",
        "4",
        "-o",
        s(&out),
    ];
    let summary = json(&[&base[..], &["--json"]].concat());
    assert_eq!(summary["residues"], 214);
    assert!(summary["correlation"].as_f64().expect("cc") > 0.9, "{summary}");
    let written = Structure::read(&out).expect("the model reads back");
    let ca: Vec<f32> = written
        .atoms
        .iter()
        .filter(|a| a.is_alpha_carbon() && !a.hetero)
        .map(|a| a.b_factor)
        .collect();
    assert_eq!(ca.len(), 214);
    assert!(ca.iter().all(|b| b.is_finite() && *b > 0.0));
    let table = std::fs::read_to_string(dir.path().join("flex.csv")).expect("csv beside the output");
    assert_eq!(table.lines().count(), 215);
    assert!(table.starts_with("chain,residue_number,insertion_code,residue_name,rmsf_angstrom,map_b_rmsf_angstrom"));
    // The map estimate is the combined value unless --learned asks for the bundled combiner's.
    assert!(
        summary["combiner"].as_str().expect("combiner").contains("map_b"),
        "{summary}"
    );
    if table.lines().next().expect("header").contains("learned_rmsf_angstrom") {
        let learned = json(&[&base[..], &["--json", "--learned"]].concat());
        assert_eq!(learned["combiner"], "the learned combiner", "{learned}");
    }
    // Half maps on different grids: the error names the second half map.
    let err = failure(&[&base[..], &["--half-maps", s(&map), s(&coarse)]].concat());
    assert!(err.contains("adk6.mrc") && err.contains("different grids"), "{err}");
    // A model with no protein.
    let water = dir.path().join("water.pdb");
    std::fs::write(
        &water,
        "HETATM    1  O   HOH A   1       1.000   2.000   3.000  1.00 20.00           O\nEND\n",
    )
    .expect("write");
    let err = failure(&[
        "flex",
        "--map",
        s(&map),
        "--model",
        s(&water),
        "--resolution",
        "4",
        "-o",
        s(&out),
    ]);
    assert!(err.contains("water.pdb") && err.contains("no protein"), "{err}");
}
