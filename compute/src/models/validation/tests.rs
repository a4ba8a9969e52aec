//! Unit tests on poly-alanine chains built from φ/ψ with Engh & Huber geometry, each broken in
//! one known way.

use super::ideal::{self, BackboneKind, Vec3};
use super::*;

/// Places d so that |cd| = `bond`, angle b–c–d = `angle_deg`, dihedral a–b–c–d = `torsion_deg`.
fn place(a: Vec3, b: Vec3, c: Vec3, bond: f64, angle_deg: f64, torsion_deg: f64) -> Vec3 {
    let bc = ideal::unit(ideal::sub(c, b));
    let n = ideal::unit(ideal::cross(ideal::sub(b, a), bc));
    let m = ideal::cross(n, bc);
    let (theta, tau) = (angle_deg.to_radians(), torsion_deg.to_radians());
    let d = [
        -bond * theta.cos(),
        bond * theta.sin() * tau.cos(),
        bond * theta.sin() * tau.sin(),
    ];
    [0, 1, 2].map(|k| c[k] + d[0] * bc[k] + d[1] * m[k] + d[2] * n[k])
}

/// Poly-Ala, chain A, residues 1..=n, trans peptides, with (φ, ψ) per residue.
fn chain(phi_psi: &[(f64, f64)]) -> Structure {
    let mut atoms = Vec::new();
    let mut frame = Vec::new();
    let (mut n, mut ca) = ([0.0, 0.0, 0.0], [1.459, 0.0, 0.0]);
    let mut c = place([0.0, 1.0, 0.0], n, ca, 1.525, 111.0, -60.0);
    for (k, &(_, psi)) in phi_psi.iter().enumerate() {
        let next_n = place(n, ca, c, 1.336, 117.2, psi);
        let o = place(next_n, ca, c, 1.229, 120.1, 180.0);
        let cb = ideal::ideal_cbeta(BackboneKind::Alanine, n, ca, c);
        for (name, element, p) in [
            ("N", "N", n),
            ("CA", "C", ca),
            ("C", "C", c),
            ("O", "O", o),
            ("CB", "C", cb),
        ] {
            atoms.push(Atom {
                name: name.into(),
                residue_name: "ALA".into(),
                chain_id: "A".into(),
                residue_number: k as i32 + 1,
                element: element.into(),
                occupancy: 1.0,
                ..Default::default()
            });
            frame.push(p.map(|v| v as f32));
        }
        if let Some(&(phi_next, _)) = phi_psi.get(k + 1) {
            let next_ca = place(ca, c, next_n, 1.459, 121.7, 180.0);
            let next_c = place(c, next_n, next_ca, 1.525, 111.0, phi_next);
            (n, ca, c) = (next_n, next_ca, next_c);
        }
    }
    Structure {
        name: "test".into(),
        atoms,
        frames: vec![frame],
        ..Default::default()
    }
}

fn index(s: &Structure, residue: i32, name: &str) -> usize {
    s.atoms
        .iter()
        .position(|a| a.residue_number == residue && a.name == name)
        .expect("atom")
}

/// The point `distance` Å from `atom`, straight away from the atoms it is bonded to.
fn outward(s: &Structure, atom: usize, bonded: &[usize], distance: f64) -> [f32; 3] {
    let p = s.frames[0][atom].map(f64::from);
    let mut dir = [0.0; 3];
    for &b in bonded {
        let u = ideal::unit(ideal::sub(p, s.frames[0][b].map(f64::from)));
        dir = [0, 1, 2].map(|k| dir[k] + u[k]);
    }
    let dir = ideal::unit(dir);
    [0, 1, 2].map(|k| (p[k] + distance * dir[k]) as f32)
}

const HELIX: (f64, f64) = (-57.0, -47.0);
const STRAND: (f64, f64) = (-120.0, 130.0);

#[test]
fn the_chain_builder_gives_the_angles_it_was_asked_for() {
    let s = chain(&[STRAND; 6]);
    let v = Validator::new(&s);
    let (phi, psi) = rama::phi_psi(&v.topology.residues, 2, &s.frames[0]);
    assert!((phi.expect("phi") - STRAND.0).abs() < 0.01, "{phi:?}");
    assert!((psi.expect("psi") - STRAND.1).abs() < 0.01, "{psi:?}");
}

#[test]
fn ideal_helix_and_strand_are_favoured_and_have_ideal_geometry() {
    for (what, angles) in [("helix", HELIX), ("strand", STRAND)] {
        let r = validate(&chain(&[angles; 12]), 0);
        assert_eq!(r.residues, 12);
        assert_eq!(r.ramachandran.evaluated, 10, "{what}: the two ends have no φ or no ψ");
        assert_eq!(r.ramachandran.favoured, 10, "{what}: {:?}", r.ramachandran);
        assert!(r.bonds.rmsz.expect("bonds") < 0.05, "{what}: {:?}", r.bonds);
        assert!(r.angles.rmsz.expect("angles") < 0.05, "{what}: {:?}", r.angles);
        assert_eq!(r.clashes, 0, "{what}: {:?}", r.worst_clashes);
        assert_eq!(r.cbeta.deviations, 0);
        assert!(
            r.summary_line()
                .starts_with("Ramachandran 100.0% favoured, 0.0% outliers")
        );
    }
}

#[test]
fn a_general_residue_at_phi_60_psi_minus_120_is_an_outlier() {
    let mut angles = [STRAND; 9];
    angles[4] = (60.0, -120.0);
    let r = validate(&chain(&angles), 0);
    assert_eq!(r.ramachandran.outliers, 1, "{:?}", r.ramachandran);
    let o = &r.ramachandran.outlier_list[0];
    assert_eq!((o.residue.number, o.class), (5, RamaClass::General));
    assert!(
        (o.phi_deg - 60.0).abs() < 0.01 && (o.psi_deg + 120.0).abs() < 0.01,
        "{o:?}"
    );
}

#[test]
fn a_bond_stretched_by_0_2_angstrom_raises_the_rmsz_and_is_an_outlier() {
    let s = chain(&[HELIX; 10]);
    let before = validate(&s, 0);
    let mut stretched = s.clone();
    let (c, o) = (index(&s, 5, "C"), index(&s, 5, "O"));
    let (pc, po) = (s.frames[0][c].map(f64::from), s.frames[0][o].map(f64::from));
    let dir = ideal::unit(ideal::sub(po, pc));
    stretched.frames[0][o] = [0, 1, 2].map(|k| (po[k] + 0.2 * dir[k]) as f32);
    let after = validate(&stretched, 0);
    assert_eq!(before.bonds.outliers, 0);
    assert_eq!(after.bonds.outliers, 1, "{:?}", after.bonds);
    assert!(after.bonds.rmsz.expect("rmsz") > before.bonds.rmsz.expect("rmsz") + 1.0);
    let worst = &after.bonds.worst[0];
    assert!((worst.value - 1.429).abs() < 1e-3 && worst.z > 10.0, "{worst:?}");
}

#[test]
fn two_non_bonded_atoms_at_2_angstrom_clash() {
    let s = chain(&[STRAND; 10]);
    assert_eq!(validate(&s, 0).clashes, 0);
    let mut moved = s.clone();
    let (o, cb) = (index(&s, 2, "O"), index(&s, 9, "CB"));
    moved.frames[0][o] = outward(&s, cb, &[index(&s, 9, "CA")], 2.0);
    let r = validate(&moved, 0);
    assert_eq!(r.clashes, 1, "{:?}", r.worst_clashes);
    let c = &r.worst_clashes[0];
    assert!((c.distance_angstrom - 2.0).abs() < 1e-4, "{c:?}");
    assert!((c.overlap_angstrom - (1.70 + 1.40 - 2.0)).abs() < 1e-4, "{c:?}");
    assert!(r.clashscore.expect("clashscore") > 0.0);
}

#[test]
fn bonded_and_hydrogen_bonding_neighbours_do_not_clash() {
    let s = chain(&[STRAND; 10]);
    let (n, o) = (index(&s, 3, "N"), index(&s, 8, "O"));
    let mut moved = s.clone();
    let bonded = [index(&s, 3, "CA"), index(&s, 2, "C")];
    // An N–O pair at 2.7 Å is a hydrogen bond, not a clash; at 2.3 Å it clashes.
    moved.frames[0][o] = outward(&s, n, &bonded, 2.7);
    let r = validate(&moved, 0);
    assert_eq!(r.clashes, 0, "{:?}", r.worst_clashes);
    moved.frames[0][o] = outward(&s, n, &bonded, 2.3);
    let r = validate(&moved, 0);
    assert_eq!(r.clashes, 1, "{:?}", r.worst_clashes);
    assert!(
        (r.worst_clashes[0].overlap_angstrom - 0.6).abs() < 1e-3,
        "{:?}",
        r.worst_clashes
    );
    // Within three bonds nothing clashes, however close: O(i) and N(i+1) are 2.25 Å apart.
    assert_eq!(validate(&s, 0).clashes, 0);
}

#[test]
fn a_cbeta_moved_by_half_an_angstrom_is_a_deviation() {
    let s = chain(&[HELIX; 8]);
    let mut moved = s.clone();
    let cb = index(&s, 4, "CB");
    moved.frames[0][cb][1] += 0.5;
    let r = validate(&moved, 0);
    assert_eq!(r.cbeta.checked, 8);
    assert_eq!(r.cbeta.deviations, 1, "{:?}", r.cbeta);
    assert_eq!(r.cbeta.outliers[0].residue.number, 4);
    assert!((r.cbeta.outliers[0].deviation_angstrom - 0.5).abs() < 1e-3);
}

#[test]
fn a_chain_break_leaves_phi_and_psi_undefined() {
    let s = chain(&[STRAND; 10]);
    let mut broken = s.clone();
    for (atom, p) in broken.atoms.iter().zip(broken.frames[0].iter_mut()) {
        if atom.residue_number >= 6 {
            p[2] += 5.0;
        }
    }
    let v = Validator::new(&broken);
    let residues = &v.topology.residues;
    assert!(!residues[4].next_linked && !residues[5].prev_linked);
    assert_eq!(rama::phi_psi(residues, 4, &broken.frames[0]).1, None);
    assert_eq!(rama::phi_psi(residues, 5, &broken.frames[0]).0, None);
    let r = v.report(&broken.frames[0]);
    assert_eq!(r.ramachandran.evaluated, 6, "ends of both pieces are unevaluated");
    // No peptide bond across the break, so no stretched-bond outlier either.
    assert_eq!(r.bonds.outliers, 0);
}

#[test]
fn deposited_1ake_has_near_ideal_cbeta_positions() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/models/1ake.pdb");
    let s = Structure::read(&path).expect("1ake.pdb");
    let r = validate(&s, 0);
    assert!(r.cbeta.checked > 180, "{:?}", r.cbeta.checked);
    // A Cβ on the wrong side of the N–CA–C plane would be ~2.5 Å off.
    assert!(r.cbeta.deviations <= 2, "{:?}", r.cbeta.outliers);
}

#[test]
fn no_protein_gives_an_empty_report_without_nan() {
    let mut s = chain(&[STRAND; 3]);
    for a in &mut s.atoms {
        a.residue_name = "HOH".into();
        a.name = "O".into();
        a.element = "O".into();
        a.residue_number += 100;
    }
    let r = validate(&s, 0);
    assert_eq!((r.residues, r.ramachandran.evaluated), (0, 0));
    assert_eq!(r.ramachandran.favoured_percent, None);
    assert_eq!(r.summary_line(), "no protein residues to validate");
    assert!(!serde_json::to_string(&r).expect("json").contains("NaN"));
}
