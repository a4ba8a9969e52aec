//! Atomic models: PDB and mmCIF round trips on real entries (including the 165k-atom ribosome and
//! a 98-frame trajectory), per-atom values in the B-factor column, and PDB's limits.

use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::formats::model_write::write_structure;
use cryoforge_tests::asset;

/// Same topology and coordinates within the written precision.
fn assert_same_structure(a: &Structure, b: &Structure, what: &str) {
    assert_eq!(a.atoms.len(), b.atoms.len(), "{what}: atom count");
    assert_eq!(a.frames.len(), b.frames.len(), "{what}: frame count");
    for (i, (x, y)) in a.atoms.iter().zip(&b.atoms).enumerate() {
        assert_eq!(
            (
                &x.name,
                &x.residue_name,
                &x.chain_id,
                x.residue_number,
                &x.insertion_code,
                &x.alt_loc,
                &x.element,
                x.hetero
            ),
            (
                &y.name,
                &y.residue_name,
                &y.chain_id,
                y.residue_number,
                &y.insertion_code,
                &y.alt_loc,
                &y.element,
                y.hetero
            ),
            "{what}: atom {i}"
        );
        assert!(
            (x.b_factor - y.b_factor).abs() < 0.006,
            "{what}: atom {i} B {} vs {}",
            x.b_factor,
            y.b_factor
        );
        assert!((x.occupancy - y.occupancy).abs() < 0.006, "{what}: atom {i} occupancy");
    }
    for (f, (fa, fb)) in a.frames.iter().zip(&b.frames).enumerate() {
        let worst = fa
            .iter()
            .zip(fb)
            .map(|(p, q)| (0..3).map(|k| (p[k] - q[k]).abs()).fold(0.0f32, f32::max))
            .fold(0.0f32, f32::max);
        assert!(worst <= 0.0006, "{what}: frame {f} moved by {worst} Å");
    }
}

fn round_trip(source: &str, out_name: &str) -> (Structure, Structure) {
    let original = Structure::read(&asset(source)).expect("read source");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(out_name);
    write_structure(&original, &path).expect("write");
    let again = Structure::read(&path).expect("read written file");
    (original, again)
}

#[test]
fn pdb_and_mmcif_round_trips_of_real_entries() {
    for (source, out) in [
        ("models/1ake.pdb", "1ake.pdb"),
        ("models/1ake.pdb", "1ake.cif"),
        ("models/1ake_chimerax.cif", "1ake_full.cif"),
        ("models/1ake_chimerax.cif", "1ake_full.pdb"),
        ("models/gemmi_5i55.cif", "5i55.cif"),
        ("models/gemmi_1orc.pdb", "1orc.cif.gz"),
    ] {
        let (a, b) = round_trip(source, out);
        assert_same_structure(&a, &b, &format!("{source} → {out}"));
    }
}

#[test]
fn the_1ake_entry_keeps_both_chains_and_its_ligand() {
    let (a, b) = round_trip("models/1ake_chimerax.cif", "1ake.cif");
    let counts = b.counts();
    assert_eq!(counts.chain_ids, vec!["A", "B"]);
    assert_eq!(counts, a.counts());
    assert!(
        b.atoms
            .iter()
            .any(|at| at.residue_name == "AP5" && at.chain_id == "B" && at.hetero)
    );
}

#[test]
fn the_165k_atom_ribosome_round_trips_through_mmcif_and_is_refused_by_pdb() {
    let (a, b) = round_trip("models/6zu5.cif.gz", "6zu5.cif");
    assert_eq!(a.atoms.len(), 165_175);
    assert_eq!(b.counts().chains, 74);
    assert!(
        b.counts().chain_ids.iter().any(|c| c.len() == 3),
        "multi-character chain ids survive"
    );
    assert_same_structure(&a, &b, "6ZU5");

    let dir = tempfile::tempdir().expect("tempdir");
    let pdb_path = dir.path().join("6zu5.pdb");
    let err = write_structure(&a, &pdb_path).expect_err("PDB cannot hold 165k atoms");
    let message = err.to_string();
    assert!(
        message.contains("6zu5.pdb") && message.contains("99,999") && message.contains("mmCIF"),
        "{message}"
    );
    assert!(!pdb_path.exists(), "a refused write leaves no file");
}

#[test]
fn multi_model_files_are_trajectories_and_write_back_as_such() {
    let original = Structure::read(&asset("models/adk_dims_trajectory.pdb.gz")).expect("read");
    assert_eq!(original.frame_count(), 98);
    assert_eq!(original.atoms.len(), 1656);
    // The trajectory moves: first and last frames differ by many Å somewhere.
    let moved = original.frames[0]
        .iter()
        .zip(&original.frames[97])
        .map(|(p, q)| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt())
        .fold(0.0f32, f32::max);
    assert!(moved > 10.0, "max displacement {moved}");
    for out in ["traj.pdb", "traj.cif"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(out);
        write_structure(&original, &path).expect("write");
        assert_same_structure(&original, &Structure::read(&path).expect("reread"), out);
    }
}

#[test]
fn charmm_file_without_chain_or_element_columns_reads() {
    let closed = Structure::read(&asset("models/adk_closed.pdb")).expect("read");
    let open = Structure::read(&asset("models/adk_open.pdb")).expect("read");
    assert_eq!(closed.atoms.len(), 3341);
    assert_eq!(open.atoms.len(), 3341);
    assert_eq!(closed.atoms.iter().filter(|a| a.is_alpha_carbon()).count(), 214);
    assert!(
        closed.atoms.iter().any(|a| a.is_hydrogen()),
        "hydrogens recognised from names"
    );
    let (a, b) = round_trip("models/adk_closed.pdb", "closed.cif");
    assert_same_structure(&a, &b, "CHARMM → mmCIF");
}

#[test]
fn per_atom_values_travel_in_the_b_factor_column() {
    let mut s = Structure::read(&asset("models/1ake.pdb")).expect("read");
    for (i, atom) in s.atoms.iter_mut().enumerate() {
        atom.b_factor = (i % 1000) as f32 * 0.37;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for out in ["flex.pdb", "flex.cif"] {
        let path = dir.path().join(out);
        write_structure(&s, &path).expect("write");
        let again = Structure::read(&path).expect("reread");
        assert_same_structure(&s, &again, out);
    }
}

#[test]
fn bad_model_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in [
        ("garbage.pdb", "this is not a structure\n\u{1}\u{2}\n".to_owned()),
        ("empty.cif", String::new()),
        (
            "truncated.cif",
            std::fs::read_to_string(asset("models/gemmi_5i55.cif")).expect("read")[..3000].to_owned(),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        let err = Structure::read(&path).expect_err(name);
        assert!(err.to_string().contains(name), "{err}");
    }
    // What gemmi writes for a chain without an id (an empty quoted value) reads as that chain.
    let path = dir.path().join("empty_chain.cif");
    let text = "data_x\nloop_\n_atom_site.group_PDB\n_atom_site.id\n_atom_site.type_symbol\n_atom_site.label_atom_id\n_atom_site.label_comp_id\n_atom_site.label_asym_id\n_atom_site.label_seq_id\n_atom_site.Cartn_x\n_atom_site.Cartn_y\n_atom_site.Cartn_z\n_atom_site.auth_asym_id\nATOM 1 N N MET '' 1 1.0 2.0 3.0 ''\n";
    std::fs::write(&path, text).expect("write");
    let s = Structure::read(&path).expect("a chain without an id");
    assert_eq!((s.atoms.len(), s.atoms[0].chain_id.as_str()), (1, ""));
}
