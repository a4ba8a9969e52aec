//! MRC/CCP4 maps: every mode, both byte orders, non-standard axis order, round trips, and bad
//! inputs that must fail with the file's name and never panic or allocate what a header claims.

use std::io::Write;

use cryoforge_compute::FormatError;
use cryoforge_compute::formats::mrc::MrcMode;
use cryoforge_compute::maps::DensityMap;
use cryoforge_tests::{asset, expected, max_abs_diff};

fn ramp() -> Vec<f32> {
    let mut v = Vec::new();
    for z in 0..2 {
        for y in 0..3 {
            for x in 0..4 {
                v.push((x + 10 * y + 100 * z) as f32);
            }
        }
    }
    v
}

#[test]
fn every_mode_written_by_mrcfile_reads_the_same_values_and_place() {
    for (mode, expected_mode) in [
        (0, MrcMode::Int8),
        (1, MrcMode::Int16),
        (2, MrcMode::Float32),
        (6, MrcMode::Uint16),
        (12, MrcMode::Float16),
    ] {
        let map = DensityMap::read(&asset(&format!("fixtures/mode{mode}.mrc"))).expect("read");
        assert_eq!(map.meta.source_mode, expected_mode);
        assert_eq!(map.grid.dims, [4, 3, 2]);
        assert_eq!(map.values, ramp(), "mode {mode}");
        assert_eq!(map.grid.voxel_size_angstrom, [1.5, 2.0, 2.5], "mode {mode}");
        assert_eq!(map.grid.first_voxel_angstrom(), [10.0, 20.0, 30.0], "mode {mode}");
    }
}

#[test]
fn big_endian_file_reads_like_its_little_endian_twin() {
    let le = DensityMap::read(&asset("fixtures/mode2.mrc")).expect("le");
    let be = DensityMap::read(&asset("fixtures/mode2_big_endian.mrc")).expect("be");
    assert_eq!(le.values, be.values);
    assert_eq!(le.grid, be.grid);
}

#[test]
fn emd_3001_axis_order_3_1_2_matches_gemmi() {
    let map = DensityMap::read(&asset("maps/EMD-3001.map")).expect("read");
    let reference = &expected()["emd3001"];
    let dims: Vec<usize> = reference["dims_xyz"]
        .as_array()
        .expect("dims")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect();
    assert_eq!(map.grid.dims.to_vec(), dims);
    assert_eq!(map.meta.source_axis_order, [3, 1, 2]);
    for probe in reference["probes"].as_array().expect("probes") {
        let p: Vec<usize> = probe[0]
            .as_array()
            .expect("xyz")
            .iter()
            .map(|v| v.as_u64().expect("i") as usize)
            .collect();
        let want = probe[1].as_f64().expect("value") as f32;
        let got = map.values[map.grid.index(p[0], p[1], p[2])];
        assert_eq!(got, want, "voxel {p:?}");
    }
    let mean = map.statistics().mean;
    let want_mean = reference["mean"].as_f64().expect("mean") as f32;
    assert!((mean - want_mean).abs() < 1e-6, "{mean} vs {want_mean}");
}

#[test]
fn written_maps_reopen_in_the_same_place_with_the_same_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (source, out) in [
        ("maps/EMD-3001.map", "a.mrc"),
        ("maps/emd_5170.map", "b.map.gz"),
        ("maps/EMD-3197.map", "c.ccp4"),
        ("fixtures/mode2_big_endian.mrc", "d.mrc"),
    ] {
        let original = DensityMap::read(&asset(source)).expect("read");
        let path = dir.path().join(out);
        original.write(&path).expect("write");
        let again = DensityMap::read(&path).expect("reread");
        assert_eq!(again.values, original.values, "{source}");
        assert_eq!(again.grid, original.grid, "{source}");
        assert_eq!(again.grid.first_voxel_angstrom(), original.grid.first_voxel_angstrom());
        assert_eq!(again.meta.source_axis_order, [1, 2, 3]);
        // The header statistics must describe the data.
        let header = cryoforge_compute::formats::mrc::read_header(&path);
        if !out.ends_with(".gz") {
            let header = header.expect("header");
            let stats = again.statistics();
            assert_eq!((header.dmin, header.dmax), (stats.min, stats.max));
            assert!((header.dmean - stats.mean).abs() < 1e-6 && (header.rms - stats.rms).abs() < 1e-6);
        }
    }
}

#[test]
fn emd_5170_placement_uses_nxstart_when_origin_is_zero() {
    let map = DensityMap::read(&asset("maps/emd_5170.map")).expect("read");
    assert_eq!(map.grid.start_voxel, [-49, -49, -49]);
    let first = map.grid.first_voxel_angstrom();
    assert!(first.iter().all(|&c| (c - -49.0 * 2.38).abs() < 1e-3), "{first:?}");
}

fn assert_error_names_file(result: Result<DensityMap, FormatError>, path: &std::path::Path) -> String {
    let err = result.expect_err("bad input must be an error");
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "message must name the file: {message}"
    );
    message
}

#[test]
fn truncated_map_is_an_error_with_both_sizes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(asset("maps/emd_5170.map")).expect("read");
    let path = dir.path().join("truncated.map");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    let message = assert_error_names_file(DensityMap::read(&path), &path);
    assert!(
        message.contains("4001024") && message.contains(&(bytes.len() / 2).to_string()),
        "{message}"
    );

    let gz_path = dir.path().join("truncated.map.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes[..bytes.len() - 100]).expect("gz");
    std::fs::write(&gz_path, gz.finish().expect("gz")).expect("write");
    assert_error_names_file(DensityMap::read(&gz_path), &gz_path);

    let short = dir.path().join("short.mrc");
    std::fs::write(&short, &bytes[..500]).expect("write");
    assert_error_names_file(DensityMap::read(&short), &short);
}

#[test]
fn garbage_and_empty_files_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = cryoforge_compute::numeric::rng::Rng::new(12345);
    let garbage: Vec<u8> = (0..5000).map(|_| (rng.next_u64() >> 56) as u8).collect();
    for (name, content) in [
        ("garbage.mrc", garbage.as_slice()),
        ("empty.map", &[][..]),
        ("zeros.mrc", &[0u8; 2048][..]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        assert_error_names_file(DensityMap::read(&path), &path);
    }
}

#[test]
fn wrong_endian_stamp_is_an_error_not_a_giant_allocation() {
    // A little-endian file whose stamp claims big-endian: dimensions become enormous.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bytes = std::fs::read(asset("maps/emd_5170.map")).expect("read");
    bytes[212..216].copy_from_slice(&[0x11, 0x11, 0, 0]);
    let path = dir.path().join("wrong_endian.map");
    std::fs::write(&path, &bytes).expect("write");
    assert_error_names_file(DensityMap::read(&path), &path);

    // A header that claims 1000³ voxels over a tiny file, plain and gzipped.
    let mut header = std::fs::read(asset("fixtures/mode2.mrc")).expect("read");
    for word in 0..3 {
        header[word * 4..word * 4 + 4].copy_from_slice(&1000i32.to_le_bytes());
    }
    let huge = dir.path().join("huge.mrc");
    std::fs::write(&huge, &header).expect("write");
    let message = assert_error_names_file(DensityMap::read(&huge), &huge);
    assert!(message.contains("4000001024"), "{message}");
    let huge_gz = dir.path().join("huge.mrc.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&header).expect("gz");
    std::fs::write(&huge_gz, gz.finish().expect("gz")).expect("write");
    assert_error_names_file(DensityMap::read(&huge_gz), &huge_gz);
}

#[test]
fn unsupported_mode_and_bad_axis_order_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = std::fs::read(asset("fixtures/mode2.mrc")).expect("read");
    let mut bad_mode = original.clone();
    bad_mode[12..16].copy_from_slice(&4i32.to_le_bytes());
    let path = dir.path().join("mode4.mrc");
    std::fs::write(&path, &bad_mode).expect("write");
    let message = assert_error_names_file(DensityMap::read(&path), &path);
    assert!(message.contains("mode 4"), "{message}");

    let mut bad_axes = original;
    bad_axes[64..68].copy_from_slice(&2i32.to_le_bytes());
    let path = dir.path().join("axes.mrc");
    std::fs::write(&path, &bad_axes).expect("write");
    let message = assert_error_names_file(DensityMap::read(&path), &path);
    assert!(message.contains("axis order"), "{message}");
}

#[test]
fn mode_values_match_after_float32_rewrite() {
    // Integer and half-precision maps are promoted to float32 exactly.
    let dir = tempfile::tempdir().expect("tempdir");
    for mode in [0, 1, 6, 12] {
        let map = DensityMap::read(&asset(&format!("fixtures/mode{mode}.mrc"))).expect("read");
        let path = dir.path().join(format!("m{mode}.mrc"));
        map.write(&path).expect("write");
        let again = DensityMap::read(&path).expect("reread");
        assert_eq!(again.meta.source_mode, MrcMode::Float32);
        assert_eq!(max_abs_diff(&again.values, &map.values), 0.0);
    }
}
