//! Helpers shared by the command-line tests: run the binary, parse its JSON, name assets.
#![allow(dead_code)] // Each test binary uses some of them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of a bundled file under `assets/`.
pub fn asset(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../assets")
        .join(relative)
}

/// Runs cryoforge expecting success.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_cryoforge"))
        .args(args)
        .output()
        .expect("run cryoforge");
    assert!(
        out.status.success(),
        "cryoforge {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs cryoforge and parses its standard output as JSON.
pub fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&run(args).stdout).expect("JSON")
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `fit KIND --map INPUT` (`--particles INPUT` for particles) `--model M --resolution R`, then
/// `extra`.
pub fn fit<'a>(kind: &'a str, input: &'a str, model: &'a str, resolution: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let input_flag = if kind == "particles" { "--particles" } else { "--map" };
    let mut args = vec![
        "fit",
        kind,
        input_flag,
        input,
        "--model",
        model,
        "--resolution",
        resolution,
    ];
    args.extend_from_slice(extra);
    args
}

/// Runs cryoforge expecting failure; returns its error output.
pub fn failure(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cryoforge"))
        .args(args)
        .output()
        .expect("run cryoforge");
    assert!(!out.status.success(), "cryoforge {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A heterogeneity run's analysis as `hetero analyze` writes it, by hand: two clusters whose
/// volumes are maps of the open (cluster 0) and closed (cluster 1) states, cluster 1 lower on
/// PC1 so it comes first.
pub fn two_state_run(dir: &std::path::Path) -> std::path::PathBuf {
    let run_dir = dir.join("run");
    let analysis = run_dir.join("analysis");
    std::fs::create_dir_all(&analysis).expect("analysis folder");
    for (k, model) in ["models/adk_open.pdb", "models/adk_closed.pdb"].iter().enumerate() {
        run(&[
            "simulate",
            "map",
            "--model",
            s(&asset(model)),
            "--resolution",
            "6",
            "--snr",
            "2",
            "--seed",
            &format!("{}", k + 1),
            "-o",
            s(&analysis.join(format!("cluster_{k}.mrc"))),
        ]);
    }
    std::fs::write(analysis.join("labels.txt"), "0\n0\n1\n1\n1\n").expect("labels");
    cryoforge_compute::formats::npy::write_f32_array(
        &analysis.join("pca.npy"),
        &[1.0, 0.0, 1.2, 0.0, -1.0, 0.0, -0.8, 0.0, -1.1, 0.0],
        &[5, 2],
    )
    .expect("pca");
    let clusters: Vec<serde_json::Value> = (0..2)
        .map(|k| serde_json::json!({"index": k, "size": 2 + k, "representative": 0, "volume": format!("cluster_{k}.mrc")}))
        .collect();
    let summary = serde_json::json!({
        "particles": 5, "zdim": 2,
        "options": {"clusters": 2, "method": "Gmm", "space": null, "traversal_volumes": 0, "truth_column": null, "seed": 1},
        "space": "Latent", "clusters": clusters, "pca_variance": [1.0, 0.0], "traversal_volumes": [],
        "truth": null, "seconds_umap": 0.0, "seconds_total": 0.0,
    });
    std::fs::write(analysis.join("analysis.json"), summary.to_string()).expect("summary");
    // The latents and layouts the latent-space panel loads.
    let layout = [0.0f32, 1.0, 0.1, 1.2, 1.0, 0.0, 1.1, 0.2, 0.9, 0.1];
    cryoforge_compute::formats::npy::write_f32_array(&run_dir.join("z.npy"), &layout, &[5, 2]).expect("z");
    cryoforge_compute::formats::npy::write_f32_array(&analysis.join("umap.npy"), &layout, &[5, 2]).expect("umap");
    run_dir
}
