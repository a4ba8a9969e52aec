//! `cryoforge hetero` end to end: simulate a two-protein mixture, train, resume, analyse, and
//! export subsets that keep every column.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cryoforge_compute::formats::cs::CsFile;
use cryoforge_compute::formats::star::StarFile;

fn asset(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../assets")
        .join(relative)
}

fn cryoforge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cryoforge"))
        .args(args)
        .output()
        .expect("run cryoforge")
}

fn run(args: &[&str]) -> Output {
    let out = cryoforge(args);
    assert!(
        out.status.success(),
        "cryoforge {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn failure(args: &[&str]) -> String {
    let out = cryoforge(args);
    assert!(!out.status.success(), "cryoforge {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn particle_rows(star: &Path) -> usize {
    let file = StarFile::read(star).expect("STAR");
    file.block("particles")
        .and_then(|b| b.table())
        .map_or(0, |t| t.row_count())
}

#[test]
fn hetero_separates_two_proteins_resumes_and_exports_subsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let star = dir.path().join("mix.star");
    run(&[
        "simulate",
        "particles",
        "--model",
        s(&asset("models/1ake.pdb")),
        "--model",
        s(&asset("models/gemmi_1orc.pdb")),
        "--count",
        "600",
        "--box",
        "48",
        "--apix",
        "2.0",
        "--snr",
        "0.5",
        "--seed",
        "3",
        "-o",
        s(&star),
    ]);
    let run_dir = dir.path().join("run");
    let train = |epochs: &str, resume: bool| {
        let mut args = vec![
            "hetero",
            "train",
            "--particles",
            s(&star),
            "--zdim",
            "4",
            "--epochs",
            epochs,
            "--downsample",
            "24",
            "--batch",
            "16",
            "--lr",
            "5e-4",
            "-o",
            s(&run_dir),
        ];
        if resume {
            args.push("--resume");
        }
        run(&args);
    };
    train("2", false);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("state.json")).expect("state")).expect("JSON");
    assert_eq!(state["epochs_done"], 2);
    assert!(
        run_dir.join("weights.bpk").exists()
            && run_dir.join("optimizer.bpk").exists()
            && run_dir.join("z.npy").exists()
    );
    // Resume to 6 epochs: the loss history continues, it does not restart.
    train("6", true);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("state.json")).expect("state")).expect("JSON");
    let losses: Vec<f64> = state["epoch_loss"]
        .as_array()
        .expect("losses")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    assert_eq!(losses.len(), 6, "{losses:?}");
    assert!(losses[5] < losses[0], "the loss falls over training: {losses:?}");

    let out = run(&[
        "hetero",
        "analyze",
        s(&run_dir),
        "--clusters",
        "2",
        "--traversal",
        "2",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ari = summary["truth"]["ari"]
        .as_f64()
        .expect("ARI against the simulator's model index");
    let ami = summary["truth"]["ami"].as_f64().expect("AMI");
    assert!(
        ari > 0.9 && ami > 0.8,
        "AdK and Cro particles fall into separate clusters: ARI {ari}, AMI {ami}"
    );
    let analysis = run_dir.join("analysis");
    for file in [
        "umap.png",
        "pca.png",
        "umap_truth.png",
        "labels.txt",
        "umap.npy",
        "cluster_0.mrc",
        "cluster_1.mrc",
        "pc1_0.mrc",
        "pc2_1.mrc",
    ] {
        assert!(analysis.join(file).exists(), "{file}");
    }
    let sizes: Vec<u64> = summary["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| c["size"].as_u64().expect("size"))
        .collect();
    assert_eq!(sizes.iter().sum::<u64>(), 600);

    // Cluster 0 as STAR: its rows, every original column, the optics table, one true model.
    let subset = dir.path().join("subset.star");
    run(&["hetero", "export", s(&run_dir), "--clusters", "0", "-o", s(&subset)]);
    assert_eq!(particle_rows(&subset) as u64, sizes[0]);
    let original = StarFile::read(&star).expect("STAR");
    let exported = StarFile::read(&subset).expect("STAR");
    let columns = |f: &StarFile| {
        f.block("particles")
            .and_then(|b| b.table())
            .map(|t| t.columns.clone())
            .unwrap_or_default()
    };
    assert_eq!(columns(&exported), columns(&original));
    assert_eq!(
        exported.block("optics").and_then(|b| b.table()),
        original.block("optics").and_then(|b| b.table())
    );
    let table = exported.block("particles").and_then(|b| b.table()).expect("table");
    let truth = table
        .column_f64(&subset, "cryoforgeModelIndex")
        .expect("numbers")
        .expect("column kept");
    let majority = truth.iter().filter(|&&t| t == truth[0]).count();
    assert!(
        majority as f64 > 0.95 * truth.len() as f64,
        "a cluster holds one protein"
    );
    // The exported file reads as particles with their images.
    run(&["info", s(&subset)]);
    run(&[
        "reconstruct",
        "--particles",
        s(&subset),
        "-o",
        s(&dir.path().join("cluster0.mrc")),
    ]);

    // A selection file to cryoSPARC .cs.
    let selection = dir.path().join("pick.txt");
    std::fs::write(&selection, "0\n5\n7\n").expect("write");
    let cs = dir.path().join("pick.cs");
    run(&[
        "hetero",
        "export",
        s(&run_dir),
        "--selection",
        s(&selection),
        "-o",
        s(&cs),
    ]);
    assert_eq!(CsFile::read(&cs).expect(".cs").rows, 3);

    // Lazy loading (images read from the stack batch by batch) trains the same way.
    let lazy = dir.path().join("lazy");
    run(&[
        "hetero",
        "train",
        "--particles",
        s(&star),
        "--zdim",
        "4",
        "--epochs",
        "1",
        "--downsample",
        "24",
        "--lazy",
        "--max-particles",
        "100",
        "-o",
        s(&lazy),
    ]);
    let z = std::fs::read(lazy.join("z.npy")).expect("latents");
    assert_eq!(
        z.len(),
        128 + 100 * 4 * 4,
        "a 100 × 4 float32 array after the 128-byte header"
    );

    // Clear errors.
    assert!(failure(&["hetero", "export", s(&run_dir), "--clusters", "9", "-o", s(&subset)]).contains("cluster 9"));
    assert!(failure(&["hetero", "analyze", s(&dir.path().join("nothing"))]).contains("nothing"));
    assert!(failure(&["hetero", "train", "--particles", "missing.star", "-o", s(&run_dir)]).contains("missing.star"));
}

#[test]
fn classification_separates_proteins_that_a_briefly_trained_latent_space_mixes() {
    // Three epochs at SNR 0.02 leave the latents' clusters mixed (ARI 0.2–0.3 when this was
    // written); 3D classification at the full 48 px, seeded by them, sorts AdK from Cro.
    let dir = tempfile::tempdir().expect("tempdir");
    let star = dir.path().join("mix.star");
    run(&[
        "simulate",
        "particles",
        "--model",
        s(&asset("models/1ake.pdb")),
        "--model",
        s(&asset("models/gemmi_1orc.pdb")),
        "--count",
        "600",
        "--box",
        "48",
        "--apix",
        "2.0",
        "--snr",
        "0.02",
        "--seed",
        "3",
        "-o",
        s(&star),
    ]);
    let run_dir = dir.path().join("run");
    run(&[
        "hetero",
        "train",
        "--particles",
        s(&star),
        "--zdim",
        "4",
        "--epochs",
        "3",
        "--downsample",
        "24",
        "--lr",
        "5e-4",
        "-o",
        s(&run_dir),
    ]);
    let analyse = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "hetero",
            "analyze",
            s(&run_dir),
            "--clusters",
            "2",
            "--traversal",
            "0",
            "--json",
        ];
        args.extend_from_slice(extra);
        serde_json::from_slice(&run(&args).stdout).expect("JSON")
    };
    let fitted = analyse(&[]);
    let fitted_ari = fitted["truth"]["ari"].as_f64().expect("ARI");
    let classified = analyse(&["--classify", "30"]);
    let ari = classified["truth"]["ari"].as_f64().expect("ARI");
    let ami = classified["truth"]["ami"].as_f64().expect("AMI");
    assert!(
        ari > 0.95 && ami > 0.9 && ari > fitted_ari,
        "classification separates AdK and Cro: ARI {ari}, AMI {ami} (the latent clusters alone: ARI {fitted_ari})"
    );
    assert_eq!(
        classified["truth"]["before_classification"][0].as_f64(),
        Some(fitted_ari),
        "the fitted clusters' score is reported beside"
    );
    let moves = classified["classification_moves"].as_array().expect("moves per round");
    assert!(!moves.is_empty() && moves.len() <= 30, "{moves:?}");
    // The cluster volumes are the class reconstructions at the particles' full size.
    let map = cryoforge_compute::maps::DensityMap::read(&run_dir.join("analysis/cluster_0.mrc")).expect("cluster map");
    assert_eq!(map.grid.dims, [48; 3]);
    assert!(map.values.iter().any(|v| *v != 0.0));
}

#[test]
fn a_prior_pretrained_on_a_small_chain_set_starts_training_and_bad_encoders_are_named() {
    // A chain set of three families (two in train, one held out for validation), as
    // scripts/build_dataset.py writes it.
    let dir = tempfile::tempdir().expect("tempdir");
    let set = dir.path().join("chains");
    std::fs::create_dir_all(&set).expect("mkdir");
    let chains = [
        ("adk", "models/1ake.pdb", 0, "train"),
        ("cro", "models/gemmi_1orc.pdb", 1, "train"),
        ("open", "models/adk_open.pdb", 2, "validation"),
    ];
    let entries: Vec<String> = chains
        .iter()
        .map(|(name, file, family, split)| {
            std::fs::copy(asset(file), set.join(format!("{name}.pdb"))).expect("copy");
            format!(
                r#"{{"name": "{name}", "file": "{name}.pdb", "family": {family}, "split": "{split}", "residues": 1}}"#
            )
        })
        .collect();
    std::fs::write(
        set.join("manifest.json"),
        format!(r#"{{"chains": [{}]}}"#, entries.join(", ")),
    )
    .expect("manifest");
    let prior = dir.path().join("prior.bpk");
    run(&[
        "hetero",
        "pretrain",
        "--structures",
        s(&set),
        "--steps",
        "3",
        "--pairs",
        "2",
        "-o",
        s(&prior),
    ]);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("prior.json")).expect("record")).expect("JSON");
    assert!(
        record["trained_with"]
            .as_str()
            .expect("text")
            .contains("2 training chains of 2 families")
    );
    // Holding out one of the two training families leaves too few to contrast.
    assert!(
        failure(&[
            "hetero",
            "pretrain",
            "--structures",
            s(&set),
            "--exclude-families",
            "1",
            "-o",
            s(&prior)
        ])
        .contains("at least two families")
    );

    let star = dir.path().join("p.star");
    run(&[
        "simulate",
        "particles",
        "--model",
        s(&asset("models/1ake.pdb")),
        "--count",
        "40",
        "--box",
        "32",
        "--apix",
        "3.0",
        "--seed",
        "5",
        "-o",
        s(&star),
    ]);
    let train = |encoder: &str, out: &str| {
        cryoforge(&[
            "hetero",
            "train",
            "--particles",
            s(&star),
            "--zdim",
            "2",
            "--epochs",
            "1",
            "--downsample",
            "16",
            "--encoder",
            encoder,
            "-o",
            s(&dir.path().join(out)),
        ])
    };
    for (encoder, out, has_prior) in [
        (s(&prior), "with", true),
        ("pretrained", "bundled", true),
        ("random", "without", false),
    ] {
        let output = train(encoder, out);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(out).join("config.json")).expect("config"))
                .expect("JSON");
        assert_eq!(!config["shape"]["prior"].is_null(), has_prior, "{encoder}");
    }
    // The prior's weights are in the run's checkpoint: resuming needs no prior file.
    std::fs::remove_file(&prior).expect("remove the prior");
    std::fs::remove_file(prior.with_extension("json")).expect("remove its record");
    run(&[
        "hetero",
        "train",
        "--particles",
        s(&star),
        "--epochs",
        "2",
        "--resume",
        "-o",
        s(&dir.path().join("with")),
    ]);
    let missing = train("no_such_prior.bpk", "missing");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no_such_prior.bpk"));
}
