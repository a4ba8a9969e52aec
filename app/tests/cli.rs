//! The `cryoforge` command line, run as a user would: `info` (text and JSON), `convert` between
//! formats, and errors that name the file and exit non-zero.

use std::path::PathBuf;
use std::process::{Command, Output};

fn asset(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../assets")
        .join(relative)
}

fn cryoforge(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cryoforge"))
        .args(args)
        .output()
        .expect("run cryoforge")
}

fn os(path: &std::path::Path) -> &std::ffi::OsStr {
    path.as_os_str()
}

#[test]
fn info_json_describes_every_kind_of_file() {
    let files = [
        asset("maps/EMD-3001.map"),
        asset("fixtures/particles.mrcs"),
        asset("fixtures/particles_relion31.star"),
        asset("fixtures/particles.cs"),
        asset("models/1ake_chimerax.cif"),
    ];
    let mut args: Vec<&std::ffi::OsStr> = vec!["info".as_ref(), "--json".as_ref()];
    args.extend(files.iter().map(|f| os(f)));
    let out = cryoforge(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let items = json.as_array().expect("array");
    assert_eq!(items.len(), 5);
    assert_eq!(items[0]["kind"], "map");
    assert_eq!(items[0]["dims"], serde_json::json!([43, 25, 73]));
    assert_eq!(items[0]["axis_order"], serde_json::json!([3, 1, 2]));
    assert_eq!(items[1]["count"], 12);
    assert_eq!(items[1]["box_size"], serde_json::json!([16, 16]));
    assert_eq!(items[2]["layout"], "Relion31");
    assert_eq!(items[2]["particles"], 12);
    assert_eq!(items[2]["optics_groups"], 1);
    assert_eq!(items[3]["rows"], 12);
    assert_eq!(items[4]["chains"], 2);
    // ChimeraX's 1AKE holds 3,816 atom sites; atoms shared by alternate conformers count once.
    assert_eq!(items[4]["atoms"], 3816);
}

#[test]
fn info_text_names_the_axis_order_and_chains() {
    let out = cryoforge(&[
        "info".as_ref(),
        os(&asset("maps/EMD-3001.map")),
        os(&asset("models/1ake.pdb")),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("43 × 25 × 73") && text.contains("[3, 1, 2]"), "{text}");
    assert!(text.contains("214") && text.contains("chains         1 (A)"), "{text}");
}

#[test]
fn convert_between_formats_and_read_the_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (asset("models/1ake.pdb"), dir.path().join("1ake.cif")),
        (dir.path().join("1ake.cif"), dir.path().join("back.pdb")),
        (asset("maps/EMD-3197.map"), dir.path().join("small.map.gz")),
        (dir.path().join("small.map.gz"), dir.path().join("small.mrc")),
        (asset("fixtures/particles_relion30.star"), dir.path().join("p.cs")),
        (dir.path().join("p.cs"), dir.path().join("p.star")),
    ];
    for (input, output) in &cases {
        let out = cryoforge(&["convert".as_ref(), os(input), os(output)]);
        assert!(
            out.status.success(),
            "{} → {}: {}",
            input.display(),
            output.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let info = cryoforge(&["info".as_ref(), "--json".as_ref(), os(output)]);
        assert!(info.status.success(), "info {}", output.display());
    }
    let info = cryoforge(&["info".as_ref(), "--json".as_ref(), os(&dir.path().join("p.star"))]);
    let json: serde_json::Value = serde_json::from_slice(&info.stdout).expect("JSON");
    assert_eq!(json[0]["layout"], "Relion31", "STAR written from .cs is RELION 3.1");
    assert_eq!(json[0]["particles"], 12);
}

#[test]
fn errors_name_the_file_and_exit_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("broken.mrc");
    std::fs::write(&garbage, b"definitely not a map").expect("write");
    let out = cryoforge(&["info".as_ref(), os(&garbage)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.mrc"));

    let out = cryoforge(&[
        "convert".as_ref(),
        os(&asset("models/6zu5.cif.gz")),
        os(&dir.path().join("big.pdb")),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("big.pdb") && stderr.contains("mmCIF"), "{stderr}");

    let out = cryoforge(&[
        "convert".as_ref(),
        os(&asset("maps/EMD-3197.map")),
        os(&dir.path().join("x.pdb")),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot convert"));

    let out = cryoforge(&["info".as_ref(), os(&dir.path().join("missing.star"))]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.star"));
}
