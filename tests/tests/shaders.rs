//! Every WGSL file in `shaders/` parses and validates with naga, so a broken shader fails the
//! tests on machines without a GPU.

use std::path::PathBuf;

#[test]
fn every_wgsl_file_validates() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shaders");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("shaders folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("read shader");
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
        assert!(!module.entry_points.is_empty(), "{} has no entry point", path.display());
        checked += 1;
    }
    assert!(checked >= 1, "no shaders found in {}", dir.display());
}
