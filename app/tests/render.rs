//! Images of the viewport's scene rendered headless on llvmpipe (`cryoforge render`), checked
//! by what they show: how much of the picture the surface covers, and that it responds to the
//! threshold and to the model. Every tolerance is in [`expect_fraction`].

use std::path::{Path, PathBuf};
use std::process::Command;

fn asset(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../assets")
        .join(relative)
}

/// The one place image tolerances live: a covered fraction within [lo, hi].
fn expect_fraction(what: &str, fraction: f64, lo: f64, hi: f64) {
    assert!(
        (lo..=hi).contains(&fraction),
        "{what}: {:.1}% of pixels, expected {:.1}–{:.1}%",
        100.0 * fraction,
        100.0 * lo,
        100.0 * hi
    );
}

/// Renders `files` to a PNG and returns the fraction of pixels that are not background.
fn render(out: &Path, files: &[PathBuf], extra: &[&str]) -> f64 {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cryoforge"));
    cmd.arg("render")
        .arg("--out")
        .arg(out)
        .args(["--width", "320", "--height", "240"])
        .args(extra)
        .args(files);
    let output = cmd.output().expect("run cryoforge render");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let image = image::open(out).expect("a PNG").to_rgba8();
    assert_eq!(image.dimensions(), (320, 240));
    cryoforge::cli::render::coverage(image.as_raw())
}

#[test]
fn bundled_map_renders_a_surface_that_follows_the_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let map = asset("maps/emd_5170.map");
    let default = render(&dir.path().join("default.png"), std::slice::from_ref(&map), &[]);
    expect_fraction("EMD-5170 at the 1% level (surface + box)", default, 0.02, 0.6);
    let low = render(
        &dir.path().join("low.png"),
        std::slice::from_ref(&map),
        &["--threshold", "0.3"],
    );
    let high = render(
        &dir.path().join("high.png"),
        std::slice::from_ref(&map),
        &["--threshold", "1.2"],
    );
    assert!(low > high, "a lower threshold encloses more: {low} vs {high}");
}

#[test]
fn map_and_model_together_cover_more_than_the_map() {
    let dir = tempfile::tempdir().expect("tempdir");
    let map = dir.path().join("adk.mrc");
    let status = Command::new(env!("CARGO_BIN_EXE_cryoforge"))
        .args(["simulate", "map", "--model"])
        .arg(asset("models/1ake.pdb"))
        .args(["--resolution", "6", "-o"])
        .arg(&map)
        .status()
        .expect("simulate");
    assert!(status.success());
    let map_only = render(&dir.path().join("map.png"), std::slice::from_ref(&map), &[]);
    let both = render(
        &dir.path().join("both.png"),
        &[map.clone(), asset("models/1ake.pdb")],
        &[],
    );
    expect_fraction("AdK map", map_only, 0.02, 0.7);
    expect_fraction("AdK map with model", both, 0.05, 0.8);
    // The model (a cartoon, inside the see-through surface) changes the picture.
    let (a, b) = (
        image::open(dir.path().join("map.png")).expect("png").to_rgba8(),
        image::open(dir.path().join("both.png")).expect("png").to_rgba8(),
    );
    let changed = a.pixels().zip(b.pixels()).filter(|(p, q)| p != q).count() as f64 / (320.0 * 240.0);
    expect_fraction("pixels the model changes", changed, 0.02, 0.8);
    let model_only = render(&dir.path().join("model.png"), &[asset("models/1ake.pdb")], &[]);
    expect_fraction("AdK cartoon", model_only, 0.02, 0.6);
}
