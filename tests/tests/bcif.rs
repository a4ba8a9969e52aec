//! BinaryCIF written by another program (biotite, in the peer venv) reads with the atoms of the
//! mmCIF it was made from. Skips without biotite unless `CRYOFORGE_REQUIRE_PEERS=1`.

use std::path::Path;
use std::process::Command;

use cryoforge_compute::formats::model::Structure;
use cryoforge_tests::asset;

/// Converts `source` to BinaryCIF at `out` with biotite; false to skip.
fn biotite_bcif(source: &Path, out: &Path) -> bool {
    let Some(interpreter) = cryoforge_tests::peer_python("biotite, msgpack") else {
        return false;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/corpus/to_bcif.py");
    let output = Command::new(&interpreter)
        .arg(script)
        .arg(source)
        .arg(out)
        .output()
        .expect("run biotite");
    assert!(
        output.status.success(),
        "biotite failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    true
}

#[test]
fn binary_cif_from_biotite_reads_like_its_mmcif() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in [
        "models/1ake_chimerax.cif",
        "models/gemmi_5i55.cif",
        "models/6zu5.cif.gz",
    ] {
        let source = asset(name);
        let bcif = dir.path().join("model.bcif");
        if !biotite_bcif(&source, &bcif) {
            return;
        }
        let text = Structure::read(&source).expect("mmCIF");
        let binary = Structure::read(&bcif).unwrap_or_else(|e| panic!("{name} as BinaryCIF: {e}"));
        assert_eq!(binary.atoms.len(), text.atoms.len(), "{name}");
        assert_eq!(binary.frames.len(), text.frames.len(), "{name}");
        for (i, (a, b)) in text.atoms.iter().zip(&binary.atoms).enumerate() {
            let same = a.name == b.name
                && a.alt_loc == b.alt_loc
                && a.residue_name == b.residue_name
                && a.chain_id == b.chain_id
                && a.residue_number == b.residue_number
                && a.element == b.element
                && a.label_asym_id == b.label_asym_id
                && a.label_seq_id == b.label_seq_id
                && (a.occupancy - b.occupancy).abs() < 1e-3
                && (a.b_factor - b.b_factor).abs() < 1e-2;
            assert!(same, "{name}: atom {i}: {a:?} vs {b:?}");
        }
        for (fa, fb) in text.frames.iter().zip(&binary.frames) {
            let worst = fa
                .iter()
                .zip(fb)
                .flat_map(|(p, q)| (0..3).map(move |k| (p[k] - q[k]).abs()))
                .fold(0.0, f32::max);
            assert!(worst < 1e-3, "{name}: coordinates differ by {worst} Å");
        }
    }
}
