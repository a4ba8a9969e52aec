//! Files cryoforge writes, read back by the field's reference tools: gemmi for mmCIF and PDB
//! (chains, entities, label/auth fields, models), mrcfile for MRC (validation, geometry), numpy
//! for `.cs`. `scripts/test.sh` provides them in a venv (`CRYOFORGE_PYTHON`); without it these
//! tests skip unless `CRYOFORGE_REQUIRE_PEERS=1`, which CI sets.

use std::path::Path;
use std::process::Command;

use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::formats::model_write::write_structure;
use cryoforge_compute::formats::particles::ParticleSet;
use cryoforge_compute::formats::star::StarFile;
use cryoforge_compute::maps::DensityMap;
use cryoforge_tests::asset;

/// Runs `script` with the peer Python, returning its stdout parsed as JSON, or None to skip.
fn python(script: &str, args: &[&Path]) -> Option<serde_json::Value> {
    let interpreter = cryoforge_tests::peer_python("numpy, mrcfile, gemmi")?;
    let output = Command::new(&interpreter)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "peer script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("peer printed JSON"))
}

const GEMMI_MODEL: &str = r#"
import gemmi, json, sys
st = gemmi.read_structure(sys.argv[1])
m = st[0]
entities = [{"name": e.name, "type": str(e.entity_type).split(".")[-1], "subchains": list(e.subchains)} for e in st.entities]
polymer_label_seq = {}
for ch in m:
    poly = ch.get_polymer()
    if len(poly):
        polymer_label_seq[ch.name] = [r.label_seq for r in poly]
print(json.dumps({
    "models": len(st),
    "chains": [ch.name for ch in m],
    "atoms": m.count_atom_sites(),
    "entities": entities,
    "subchains": sorted({r.subchain for ch in m for r in ch}),
    "polymer_label_seq": polymer_label_seq,
    "first_b": m[0][0][0].b_iso,
}))
"#;

fn gemmi_model(path: &Path) -> Option<serde_json::Value> {
    python(GEMMI_MODEL, &[path])
}

#[test]
fn gemmi_reads_our_mmcif_with_the_same_chains_entities_and_labels() {
    let s = Structure::read(&asset("models/1ake_chimerax.cif")).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("1ake.cif");
    write_structure(&s, &path).expect("write");
    let Some(g) = gemmi_model(&path) else { return };
    assert_eq!(g["chains"], serde_json::json!(["A", "B"]));
    assert_eq!(g["atoms"].as_u64(), Some(s.atoms.len() as u64));
    // Two identical protein chains share one polymer entity; AP5 and water are their own.
    let entities = g["entities"].as_array().expect("entities");
    let types: Vec<&str> = entities.iter().map(|e| e["type"].as_str().expect("type")).collect();
    assert_eq!(types.iter().filter(|t| **t == "Polymer").count(), 1, "{entities:?}");
    assert!(types.contains(&"NonPolymer") && types.contains(&"Water"), "{types:?}");
    let polymer = entities.iter().find(|e| e["type"] == "Polymer").expect("polymer");
    assert_eq!(polymer["subchains"].as_array().map(Vec::len), Some(2));
    for chain in ["A", "B"] {
        let seq: Vec<i64> = g["polymer_label_seq"][chain]
            .as_array()
            .expect("seq")
            .iter()
            .map(|v| v.as_i64().expect("i"))
            .collect();
        assert_eq!(seq, (1..=214).collect::<Vec<i64>>(), "chain {chain} label_seq_id");
    }
    assert!((g["first_b"].as_f64().expect("b") - f64::from(s.atoms[0].b_factor)).abs() < 0.01);
}

#[test]
fn gemmi_reads_our_large_mmcif_trajectory_and_pdb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ribosome = Structure::read(&asset("models/6zu5.cif.gz")).expect("read");
    let path = dir.path().join("6zu5.cif");
    write_structure(&ribosome, &path).expect("write");
    let Some(g) = gemmi_model(&path) else { return };
    assert_eq!(g["atoms"].as_u64(), Some(165_175));
    assert_eq!(g["chains"].as_array().map(Vec::len), Some(74));

    let trajectory = Structure::read(&asset("models/adk_dims_trajectory.pdb.gz")).expect("read");
    for name in ["traj.cif", "traj.pdb"] {
        let path = dir.path().join(name);
        write_structure(&trajectory, &path).expect("write");
        let g = gemmi_model(&path).expect("peer");
        assert_eq!(g["models"].as_u64(), Some(98), "{name}");
        assert_eq!(g["atoms"].as_u64(), Some(1656), "{name}");
    }

    let closed = Structure::read(&asset("models/adk_closed.pdb")).expect("read");
    let path = dir.path().join("closed.pdb");
    write_structure(&closed, &path).expect("write");
    let g = gemmi_model(&path).expect("peer");
    assert_eq!(g["atoms"].as_u64(), Some(3341));
    // The chain keeps its blank id, as gemmi reads the source.
    assert_eq!(g["polymer_label_seq"][""].as_array().map(Vec::len), Some(214));
}

const MRCFILE_MAP: &str = r#"
import gemmi, json, mrcfile, sys, io, contextlib
log = io.StringIO()
with contextlib.redirect_stdout(log):
    valid = mrcfile.validate(sys.argv[1])
with mrcfile.open(sys.argv[1]) as mrc:
    shape = list(mrc.data.shape)
    voxel = [float(mrc.voxel_size.x), float(mrc.voxel_size.y), float(mrc.voxel_size.z)]
    start = [int(mrc.header.nxstart), int(mrc.header.nystart), int(mrc.header.nzstart)]
m = gemmi.read_ccp4_map(sys.argv[1])
m.setup(float("nan"), gemmi.MapSetup.ReorderOnly)
probes = [[x, y, z, m.grid.get_value(x, y, z)] for x, y, z in [(0, 0, 0), (5, 7, 11), (42, 24, 72), (20, 3, 40)]]
print(json.dumps({"valid": bool(valid), "log": log.getvalue(), "shape_zyx": shape, "voxel": voxel, "start": start, "probes": probes}))
"#;

#[test]
fn mrcfile_validates_our_map_and_gemmi_sees_the_same_voxels() {
    let map = DensityMap::read(&asset("maps/EMD-3001.map")).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("emd3001_rewritten.mrc");
    map.write(&path).expect("write");
    let Some(p) = python(MRCFILE_MAP, &[&path]) else { return };
    assert_eq!(p["valid"], serde_json::json!(true), "mrcfile.validate: {}", p["log"]);
    assert_eq!(p["shape_zyx"], serde_json::json!([73, 25, 43]));
    for (axis, want) in map.grid.voxel_size_angstrom.iter().enumerate() {
        assert!((p["voxel"][axis].as_f64().expect("v") - f64::from(*want)).abs() < 1e-4);
    }
    assert_eq!(p["start"], serde_json::json!(map.grid.start_voxel));
    for probe in p["probes"].as_array().expect("probes") {
        let [x, y, z] = [0, 1, 2].map(|k| probe[k].as_u64().expect("i") as usize);
        assert_eq!(
            map.values[map.grid.index(x, y, z)],
            probe[3].as_f64().expect("v") as f32
        );
    }
}

const NUMPY_CS: &str = r#"
import json, sys, numpy as np
a = np.load(sys.argv[1])
print(json.dumps({
    "n": len(a),
    "fields": list(a.dtype.names),
    "uid_unique": len(set(a["uid"].tolist())) == len(a),
    "idx": a["blob/idx"].tolist(),
    "path": a["blob/path"][0].decode(),
    "pose0": a["alignments3D/pose"][0].tolist(),
    "df1": a["ctf/df1_A"].tolist(),
}))
"#;

#[test]
fn numpy_reads_the_cs_we_convert_from_star() {
    let star_path = asset("fixtures/particles_relion31.star");
    let set = ParticleSet::from_star(&star_path, &StarFile::read(&star_path).expect("read")).expect("particles");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("converted.cs");
    let cs = set.to_cs();
    cs.write(&path).expect("write");
    let Some(p) = python(NUMPY_CS, &[&path]) else { return };
    assert_eq!(p["n"].as_u64(), Some(12));
    assert_eq!(p["uid_unique"], serde_json::json!(true));
    assert_eq!(p["idx"], serde_json::json!((0..12).collect::<Vec<u32>>()));
    assert_eq!(p["path"], "particles.mrcs");
    for field in [
        "uid",
        "blob/path",
        "blob/idx",
        "ctf/df1_A",
        "alignments3D/pose",
        "alignments3D/shift",
    ] {
        assert!(
            p["fields"].as_array().expect("fields").iter().any(|f| f == field),
            "{field}"
        );
    }
    let ours = cs.column_f64("alignments3D/pose", 0).expect("pose");
    assert!((p["pose0"][0].as_f64().expect("p") - ours[0]).abs() < 1e-6);
    let df: Vec<f64> = p["df1"]
        .as_array()
        .expect("df")
        .iter()
        .map(|v| v.as_f64().expect("f"))
        .collect();
    for (a, b) in df.iter().zip(&set.particles) {
        assert!((a - b.defocus_u_angstrom).abs() < 0.01);
    }
}
