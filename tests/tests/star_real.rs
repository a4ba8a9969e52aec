//! Real STAR files nobody on this project wrote, summarised as the `starfile` package reads them.
//!
//! `assets/star/` holds the test data of `starfile` 0.5.13 (RELION optimiser, sampling,
//! postprocess and pipeline files, subtomogram and multi-block particle tables; provenance in
//! its README). For each, `cryoforge info`'s summary must have `starfile`'s blocks in order, each
//! loop with the same columns, row count and cells, and each key-value block with the same pairs.
//! cryoDRGN's test data (GPL, so not committed; `scripts/particle-corpus.sh` caches it and
//! `CRYOFORGE_PARTICLE_CORPUS` points at it) adds RELION 3.0 tables without a pixel size, RELION
//! 3.1 with six optics groups, RELION 5 and cryoSPARC `.cs`; there the optics values must also
//! match `starfile`'s `data_optics`, and every file must be summarised, none refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use cryoforge_compute::formats::FileKind;
use cryoforge_compute::formats::particles::{ParticleOptions, ParticleSet};
use cryoforge_compute::formats::star::StarFile;
use cryoforge_compute::formats::summary::{Details, FileSummary, StarSummary, summarize};
use cryoforge_compute::particles::data::ParticleData;
use cryoforge_tests::asset;
use serde_json::Value;

fn files_in(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files_in(&path, keep, out);
        } else if keep(&path) {
            out.push(path);
        }
    }
}

fn star_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    files_in(dir, &|p| FileKind::from_path(p) == Some(FileKind::Star), &mut out);
    out
}

fn required() -> bool {
    std::env::var("CRYOFORGE_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// cryoDRGN's test data: `CRYOFORGE_PARTICLE_CORPUS`, else where `scripts/particle-corpus.sh`
/// puts it; None (a skip, or a failure under `CRYOFORGE_REQUIRE_PEERS=1`) when absent.
fn particle_corpus() -> Option<PathBuf> {
    let default = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/cryoforge-corpus/particles/cryodrgn-4.3.1/tests/data"));
    let dir = std::env::var_os("CRYOFORGE_PARTICLE_CORPUS")
        .map(PathBuf::from)
        .or(default)
        .filter(|d| d.is_dir());
    if dir.is_none() {
        assert!(!required(), "no particle corpus: run scripts/particle-corpus.sh");
        eprintln!("skipped: no particle corpus (run scripts/particle-corpus.sh)");
    }
    dir
}

const STARFILE_BLOCKS: &str = r#"
import json, math, sys, warnings
warnings.simplefilter("ignore")
import starfile

def plain(v):
    v = v.item() if hasattr(v, "item") else v
    return "nan" if isinstance(v, float) and math.isnan(v) else v

out = {}
for path in sys.argv[1:]:
    blocks = []
    for name, block in starfile.read(path, always_dict=True).items():
        if hasattr(block, "columns"):
            columns = [str(c) for c in block.columns]
            cells = [[plain(v) for v in block[c]] for c in block.columns]
            blocks.append({"name": name, "columns": columns, "rows": len(block), "cells": cells})
        else:
            blocks.append({"name": name, "pairs": [[k, plain(v)] for k, v in block.items()]})
    out[path] = blocks
print(json.dumps(out))
"#;

/// `starfile`'s reading of `paths`, or None to skip.
fn starfile_blocks(paths: &[PathBuf]) -> Option<serde_json::Map<String, Value>> {
    let interpreter = cryoforge_tests::peer_python("starfile")?;
    let output = Command::new(&interpreter)
        .arg("-c")
        .arg(STARFILE_BLOCKS)
        .args(paths)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "starfile failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    match serde_json::from_slice(&output.stdout).expect("starfile printed JSON") {
        Value::Object(map) => Some(map),
        other => panic!("starfile printed {other}"),
    }
}

/// A cell or value as cryoforge holds it (text) against `starfile`'s (a number where it parsed one).
fn same_value(ours: &str, theirs: &Value) -> bool {
    match theirs {
        // pandas reads an empty cell of a numeric column ('') as NaN.
        Value::String(s) => s == ours || (s == "nan" && (ours.eq_ignore_ascii_case("nan") || ours.is_empty())),
        Value::Number(n) => {
            let (Ok(a), Some(b)) = (ours.parse::<f64>(), n.as_f64()) else {
                return false;
            };
            (a - b).abs() <= 1e-9 * b.abs().max(1.0)
        }
        _ => false,
    }
}

fn star_summary(path: &Path) -> StarSummary {
    match summarize(path, None) {
        Ok(FileSummary {
            details: Details::Star(s),
            ..
        }) => s,
        Ok(other) => panic!("{}: summarised as {:?}", path.display(), other.kind),
        Err(e) => panic!("cryoforge refused {}: {e}", path.display()),
    }
}

/// The first difference between `starfile`'s blocks and cryoforge's summary of `path`.
fn difference(path: &Path, theirs: &[Value]) -> Option<String> {
    let ours = star_summary(path);
    let star = StarFile::read(path).expect("read");
    if ours.blocks.len() != theirs.len() {
        return Some(format!("{} blocks, starfile {}", ours.blocks.len(), theirs.len()));
    }
    for ((block, raw), t) in ours.blocks.iter().zip(&star.blocks).zip(theirs) {
        let name = &block.name;
        if t["name"].as_str() != Some(name) {
            return Some(format!("block data_{name}, starfile data_{}", t["name"]));
        }
        if let Some(columns) = t["columns"].as_array() {
            let theirs: Vec<&str> = columns.iter().filter_map(Value::as_str).collect();
            if block.columns != theirs || Some(block.rows as u64) != t["rows"].as_u64() {
                return Some(format!(
                    "data_{name}: {} rows × {:?}, starfile {} × {theirs:?}",
                    block.rows, block.columns, t["rows"]
                ));
            }
            let Some(table) = raw.table() else {
                return Some(format!("data_{name}: no loop"));
            };
            for (c, column) in t["cells"].as_array().into_iter().flatten().enumerate() {
                for (r, cell) in column.as_array().into_iter().flatten().enumerate() {
                    if !same_value(table.cell(r, c), cell) {
                        return Some(format!(
                            "data_{name} row {} _{}: '{}', starfile {cell}",
                            r + 1,
                            block.columns[c],
                            table.cell(r, c)
                        ));
                    }
                }
            }
        } else {
            let pairs = t["pairs"].as_array().cloned().unwrap_or_default();
            let same = pairs.len() == block.pairs.len()
                && pairs
                    .iter()
                    .zip(&block.pairs)
                    .all(|(p, ours)| p[0].as_str() == Some(&ours.key) && same_value(&ours.value, &p[1]));
            if !same {
                return Some(format!("data_{name}: pairs {:?}, starfile {pairs:?}", block.pairs));
            }
        }
    }
    None
}

fn assert_read_like_starfile(paths: &[PathBuf]) -> usize {
    let Some(theirs) = starfile_blocks(paths) else { return 0 };
    let mut failures = Vec::new();
    for path in paths {
        let blocks = theirs[&path.display().to_string()]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(why) = difference(path, &blocks) {
            failures.push(format!("{}: {why}", path.display()));
        }
    }
    assert!(failures.is_empty(), "read unlike starfile:\n{}", failures.join("\n"));
    paths.len()
}

#[test]
fn committed_star_files_are_summarised_as_starfile_reads_them() {
    let paths = star_files(&asset("star"));
    assert_eq!(paths.len(), 17, "assets/star holds starfile 0.5.13's 17 test files");
    let compared = assert_read_like_starfile(&paths);
    eprintln!(
        "{compared} of {} committed STAR files compared with starfile",
        paths.len()
    );
}

#[test]
fn committed_particle_tables_say_what_they_lack_and_read_with_a_pixel_size() {
    // Two particle blocks, no optics, no pixel size: described, and readable with --apix.
    for name in ["single_line_end_of_multiblock.star", "rln3.1_data_style.star"] {
        let path = asset(&format!("star/{name}"));
        let summary = star_summary(&path);
        assert!(
            summary.needs_pixel_size && summary.problem.is_none(),
            "{name}: {summary:?}"
        );
        // The first block with image names holds the particles.
        let first = summary
            .blocks
            .iter()
            .find(|b| b.columns.iter().any(|c| c == "rlnImageName"));
        assert_eq!(
            summary.particle_block.as_deref(),
            first.map(|b| b.name.as_str()),
            "{name}"
        );
        let star = StarFile::read(&path).expect("read");
        let err = ParticleSet::from_star(&path, &star).expect_err("no pixel size");
        assert!(
            err.to_string().contains(name) && err.to_string().contains("--apix"),
            "{err}"
        );
        let set = ParticleSet::from_star_with(&path, &star, &ParticleOptions::with_pixel_size(Some(1.04)))
            .expect("reads with a pixel size");
        assert_eq!(set.particles.len(), summary.particles.expect("count"));
        assert!((set.optics[0].pixel_size_angstrom - 1.04).abs() < 1e-12);
    }
    // One subtomogram per file, pixel size from detector pixel 5 µm at magnification 10,000.
    let path = asset("star/one_loop.star");
    let summary = star_summary(&path);
    assert!(
        summary.one_file_per_particle && !summary.needs_pixel_size,
        "{summary:?}"
    );
    assert_eq!((summary.particles, summary.image_files), (Some(16), 16));
    let set = ParticleSet::from_star(&path, &StarFile::read(&path).expect("read")).expect("particles");
    assert!((set.optics[0].pixel_size_angstrom - 5.0).abs() < 1e-9);
    assert!(
        set.particles
            .iter()
            .all(|p| p.image_whole_file && p.image_index_1based == 1)
    );
    // Files without particles have no layout.
    assert_eq!(star_summary(&asset("star/postprocess.star")).layout, None);
}

#[test]
fn cryodrgn_test_data_is_summarised_and_read_as_starfile_reads_it() {
    let Some(corpus) = particle_corpus() else { return };
    let mut all = Vec::new();
    files_in(&corpus, &|p| FileKind::from_path(p).is_some(), &mut all);
    let refused: Vec<String> = all
        .iter()
        .filter_map(|p| summarize(p, None).err().map(|e| e.to_string()))
        .collect();
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
    let stars = star_files(&corpus);
    let compared = assert_read_like_starfile(&stars);
    eprintln!(
        "cryoDRGN test data: {} files summarised, {compared} STAR files compared with starfile",
        all.len()
    );

    // Six optics groups with their own values, as data_optics lists them.
    let multi = star_summary(&corpus.join("relion31.6opticsgroups.star"));
    assert_eq!((multi.optics_groups, multi.particles), (6, Some(139)));
    let counted: usize = multi.optics.iter().map(|g| g.particles).sum();
    assert_eq!(counted, 139);
    if let Some(theirs) = starfile_blocks(&[corpus.join("relion31.6opticsgroups.star")]) {
        let optics = theirs.values().next().and_then(|b| b[0]["cells"].as_array().cloned());
        let columns = theirs.values().next().and_then(|b| b[0]["columns"].as_array().cloned());
        let (optics, columns) = (optics.expect("optics cells"), columns.expect("columns"));
        let column = |name: &str| {
            let c = columns.iter().position(|c| c == name).expect("column");
            optics[c].as_array().cloned().expect("cells")
        };
        for (i, g) in multi.optics.iter().enumerate() {
            assert_eq!(g.pixel_size_angstrom, column("rlnImagePixelSize")[i].as_f64());
            assert_eq!(g.voltage_kv, column("rlnVoltage")[i].as_f64());
            assert_eq!(g.spherical_aberration_mm, column("rlnSphericalAberration")[i].as_f64());
            assert_eq!(g.amplitude_contrast, column("rlnAmplitudeContrast")[i].as_f64());
            assert_eq!(g.image_size.map(|s| s as f64), column("rlnImageSize")[i].as_f64());
        }
    }

    // RELION 3.0 without a pixel size: refused with the fix named, read with --apix, images included.
    let toy = corpus.join("toy_projections.star");
    assert!(star_summary(&toy).needs_pixel_size);
    let err = ParticleData::read(&toy).err().expect("no pixel size").to_string();
    assert!(err.contains("toy_projections.star") && err.contains("--apix"), "{err}");
    let data = ParticleData::read_with(&toy, &ParticleOptions::with_pixel_size(Some(1.5))).expect("reads with --apix");
    assert_eq!((data.len(), data.pixel_size), (1000, 1.5));
    assert_eq!(data.images[0].len(), data.box_size * data.box_size);
}
