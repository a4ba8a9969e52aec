//! Small synthetic shapes shared by the unit tests, and the bundled 1AKE they read.

/// Adenylate kinase, closed (assets/models/1ake.pdb, PDB 1AKE chain A).
pub fn adk_1ake() -> crate::formats::model::Structure {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/models/1ake.pdb");
    crate::formats::model::Structure::read(&path).expect("1ake.pdb reads")
}

/// Cα-like points on an ideal α-helix: 100° and 1.5 Å rise per residue, radius 2.3 Å.
pub fn helix(n: usize) -> Vec<[f64; 3]> {
    (0..n)
        .map(|i| {
            let t = i as f64 * 100f64.to_radians();
            [2.3 * t.cos(), 2.3 * t.sin(), 1.5 * i as f64]
        })
        .collect()
}

/// A Cα atom of alanine `residue_number` in chain A (the element may be changed to weigh it).
pub fn ca_atom(residue_number: i32, element: &str) -> crate::formats::model::Atom {
    crate::formats::model::Atom {
        name: "CA".into(),
        alt_loc: String::new(),
        residue_name: "ALA".into(),
        chain_id: "A".into(),
        residue_number,
        insertion_code: String::new(),
        element: element.into(),
        formal_charge: 0,
        occupancy: 1.0,
        b_factor: 0.0,
        hetero: false,
        ..Default::default()
    }
}

/// A chain of Cα atoms at `frame`, the element of residue i given by `element`.
pub fn ca_chain(
    name: &str,
    frame: Vec<[f32; 3]>,
    element: impl Fn(i32) -> &'static str,
) -> crate::formats::model::Structure {
    crate::formats::model::Structure {
        name: name.into(),
        atoms: (0..frame.len() as i32).map(|i| ca_atom(i, element(i))).collect(),
        frames: vec![frame],
        info: Default::default(),
    }
}
