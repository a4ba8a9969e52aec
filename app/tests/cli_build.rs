//! `cryoforge build` from the command line: a model from the bundled example's map and sequence,
//! scored by `compare`'s model-building metrics, and every bad input named.

mod common;

use common::{asset, failure, json, s};

use cryoforge_compute::maps::DensityMap;

#[test]
fn build_writes_a_model_and_compare_scores_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (map, fasta, reference) = (
        asset("build/example/2sdf_4A.mrc"),
        asset("build/example/2sdf.fasta"),
        asset("build/example/2sdf_model1.pdb"),
    );
    let build = |out: &std::path::Path, extra: &[&str]| {
        let base = [
            "build",
            "--map",
            s(&map),
            "--sequence",
            s(&fasta),
            "--resolution",
            "4",
            "--json",
            "-o",
        ];
        json(&[&base[..], &[s(out)], extra].concat())
    };
    // The default (the map's density traced as a tree, the measured best) on any build of cryoforge.
    let out = dir.path().join("built.cif");
    let summary = build(&out, &[]);
    assert_eq!(summary["likelihood"], "density", "{summary}");
    assert!(summary["built_residues"].as_u64().expect("residues") > 20, "{summary}");
    assert!(dir.path().join("built_report.json").exists());
    let scores = json(&["compare", s(&out), s(&reference), "--json"]);
    let building = &scores["building"];
    for key in [
        "coverage",
        "sequence_recall",
        "tm_score",
        "rmsd_angstrom",
        "chain_breaks",
        "false_positives",
    ] {
        assert!(building[key].is_number(), "{key}: {scores}");
    }
    // Measured on the example: 81 % coverage, TM 0.27, 21 % false.
    let coverage = building["coverage"].as_f64().expect("coverage");
    assert!(coverage > 0.6, "{scores}");
    // The tree covers more than linked peaks of the map (42 %, TM 0.18, 28 % false).
    let links = dir.path().join("links.cif");
    build(&links, &["--tracer", "links"]);
    let linked = json(&["compare", s(&links), s(&reference), "--json"]);
    let linked = &linked["building"];
    assert!(
        coverage > linked["coverage"].as_f64().expect("coverage") + 0.2,
        "{scores} against {linked}"
    );
    assert!(
        building["tm_score"].as_f64().expect("tm") > linked["tm_score"].as_f64().expect("tm"),
        "{scores} against {linked}"
    );
    // The bundled network's peaks, where there is one: fewer Cα, but few of them false (measured on
    // the example: 19 % false against 28 % for the map's peaks).
    if cryoforge_compute::build::weights::bundled_available() {
        let net = dir.path().join("net.cif");
        let summary = build(&net, &["--likelihood", "network", "--tracer", "links"]);
        assert_eq!(summary["likelihood"], "network", "{summary}");
        assert!(summary["built_residues"].as_u64().expect("residues") >= 8, "{summary}");
        let scores = json(&["compare", s(&net), s(&reference), "--json"]);
        let false_positives = scores["building"]["false_positives"].as_f64().expect("false positives");
        let density_false = linked["false_positives"].as_f64().expect("false positives");
        assert!(
            false_positives < density_false,
            "{false_positives} against {density_false}"
        );
    }
}

#[test]
fn build_names_every_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let map = asset("build/example/2sdf_4A.mrc");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let build = |map: &std::path::Path, sequence: &std::path::Path, extra: &[&str]| {
        let out = dir.path().join("x.cif");
        let mut args = vec![
            "build",
            "--map",
            s(map),
            "--sequence",
            s(sequence),
            "--likelihood",
            "density",
            "-o",
            s(&out),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(extra.iter().map(|e| e.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let error = failure(&args);
        assert!(!out.exists(), "nothing is written on failure");
        error
    };
    let not_fasta = write("plain.txt", "MKV\n");
    let error = build(&map, &not_fasta, &[]);
    assert!(error.contains("plain.txt") && error.contains("not FASTA"), "{error}");
    let letters = write("bad.fasta", ">a\nMKVJ\n");
    let error = build(&map, &letters, &[]);
    assert!(error.contains("bad.fasta") && error.contains("'J'"), "{error}");
    let long = write("long.fasta", &format!(">a\n{}\n", "A".repeat(5000)));
    let error = build(&map, &long, &[]);
    assert!(
        error.contains("5000 residues") && error.contains("longer than the map"),
        "{error}"
    );
    // A mask 1000 Å away from the map.
    let mut far = DensityMap::read(&map).expect("map");
    far.grid = cryoforge_compute::maps::MapGrid::new(far.grid.dims, far.grid.voxel_size_angstrom, [1000.0; 3]);
    far.values.iter_mut().for_each(|v| *v = 1.0);
    let mask = dir.path().join("far_mask.mrc");
    far.write(&mask).expect("write mask");
    let fasta = asset("build/example/2sdf.fasta");
    let error = build(&map, &fasta, &["--mask", s(&mask)]);
    assert!(error.contains("mask does not overlap"), "{error}");
    // A flat map.
    let mut flat = DensityMap::read(&map).expect("map");
    flat.values.iter_mut().for_each(|v| *v = 0.5);
    let flat_path = dir.path().join("flat.mrc");
    flat.write(&flat_path).expect("write");
    let error = build(&flat_path, &fasta, &[]);
    assert!(error.contains("flat.mrc") && error.contains("flat"), "{error}");
}
