//! Proteins open as cartoons: ribbons built on the mesher thread, drawn by the mesh pipeline,
//! coloured as the model is (here by chain), with ligands and waters' absence as atoms.

use crate::*;

#[test]
fn a_protein_opens_as_a_cartoon_coloured_by_chain() {
    let mut h = harness();
    h.state_mut().open(asset("models/1ake_chimerax.cif"));
    run_until(&mut h, "the model", loaded);
    let id = h.state().objects[0].id;
    match &h.state().object(id).expect("model").kind {
        ObjectKind::Model(m) => assert_eq!(m.style, cryoforge::view::AtomStyle::Cartoon, "the default for proteins"),
        _ => panic!("a model"),
    }
    run_until(
        &mut h,
        "the cartoon mesh",
        |app| matches!(&app.object(id).map(|o| &o.kind), Some(ObjectKind::Model(m)) if m.cartoon.built.is_some()),
    );
    h.run_steps(3);
    let image = h.render().expect("render");
    image
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cartoon.png"))
        .expect("save");
    let (mesh, chains) = match &h.state().object(id).expect("model").kind {
        ObjectKind::Model(m) => {
            let (_, mesh) = m.cartoon.built.as_ref().expect("cartoon");
            let chains: std::collections::BTreeSet<String> = m.model.atoms.iter().map(|a| a.chain_id.clone()).collect();
            (mesh.clone(), chains)
        }
        _ => unreachable!(),
    };
    // Two protein chains (A and B, 214 residues each): two ribbons of 8 rings per residue.
    assert!(
        mesh.triangles.len() > 2 * 200 * 8 * 12,
        "{} triangles",
        mesh.triangles.len()
    );
    assert!(chains.contains("A") && chains.contains("B"));
    // The ribbons carry the chain colours: at least two distinct vertex colours.
    let mut colours: Vec<[u32; 3]> = mesh
        .vertex_colors
        .as_ref()
        .expect("per-vertex colours")
        .iter()
        .map(|c| [c[0], c[1], c[2]].map(|v| (v * 255.0).round() as u32))
        .collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() >= 2, "{colours:?}");
    // And the viewport shows them: the middle of the window holds pixels of both chain colours.
    let (w, hgt) = image.dimensions();
    let near = |p: [u8; 4], c: [u32; 3]| (0..3).all(|k| (i64::from(p[k]) - i64::from(c[k])).abs() < 60);
    let middle: Vec<[u8; 4]> = (hgt / 4..hgt * 3 / 4)
        .flat_map(|y| (w / 3..w * 2 / 3).map(move |x| (x, y)))
        .map(|(x, y)| image.get_pixel(x, y).0)
        .collect();
    for c in &colours[..2] {
        let n = middle.iter().filter(|p| near(**p, *c)).count();
        assert!(n > 200, "{n} pixels near {c:?}");
    }
}
