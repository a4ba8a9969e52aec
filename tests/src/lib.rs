//! Helpers shared by cryoforge's end-to-end tests (the tests themselves live in `tests/`).

use std::path::PathBuf;

/// Path of a bundled file under `assets/`. The package folder is taken from the environment
/// cargo gives the running test first: a build of this library cached from a checkout at
/// another path (a shared target folder) would otherwise point into that checkout.
pub fn asset(relative: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("..")
        .join("assets")
        .join(relative)
}

/// Reference values computed by the field's own tools (`assets/fixtures/expected.json`).
pub fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(asset("fixtures/expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The peer Python (`CRYOFORGE_PYTHON`, else `python3`) if it can import `modules` (`"numpy,
/// gemmi"`); otherwise None to skip, or a failure when `CRYOFORGE_REQUIRE_PEERS=1` (as CI sets).
pub fn peer_python(modules: &str) -> Option<String> {
    let required = std::env::var("CRYOFORGE_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    let interpreter = std::env::var("CRYOFORGE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = std::process::Command::new(&interpreter)
        .args(["-c", &format!("import {modules}")])
        .output();
    if probe.as_ref().is_ok_and(|o| o.status.success()) {
        return Some(interpreter);
    }
    assert!(!required, "peer tools missing: {interpreter} cannot import {modules}");
    eprintln!("skipped: {interpreter} lacks {modules} (run scripts/test.sh)");
    None
}
