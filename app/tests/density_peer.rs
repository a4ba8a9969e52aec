//! cryoforge's simulated maps against gemmi's on the same model and grid (the benchmark script
//! `benches/density_vs_gemmi.py`, whose timings are not asserted here, only the agreement).

use std::process::Command;

#[test]
fn simulated_maps_correlate_with_gemmi_above_0_99() {
    let required = std::env::var("CRYOFORGE_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    let python = std::env::var("CRYOFORGE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let has_gemmi = Command::new(&python)
        .args(["-c", "import gemmi, mrcfile, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_gemmi {
        assert!(!required, "{python} cannot import gemmi/mrcfile/numpy");
        eprintln!("skipped: no gemmi (run scripts/test.sh)");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/density_vs_gemmi.py");
    let out = Command::new(&python)
        .arg(script)
        .arg("--json")
        .env("CRYOFORGE_BIN", env!("CARGO_BIN_EXE_cryoforge"))
        .output()
        .expect("run the comparison");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for (name, r) in results.as_object().expect("object") {
        let cc = r["correlation"].as_f64().expect("correlation");
        eprintln!("{name}: correlation with gemmi {cc:.4}");
        assert!(cc > 0.99, "{name}: correlation with gemmi {cc}");
    }
}
