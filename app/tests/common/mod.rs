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
