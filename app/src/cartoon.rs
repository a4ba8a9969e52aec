//! The cartoon of a protein: a ribbon along a spline through the Cα of each chain, wide and flat
//! in helices, flat with an arrowhead at the end of each strand, a thin tube in coil (as ChimeraX
//! and PyMOL draw it). Secondary structure comes from the file or DSSP's rules
//! ([`cryoforge_compute::models::secondary`]); the ribbon's face follows each peptide's C=O so it
//! turns with the backbone. Built on the mesher thread (`gui::objects::Mesher`) into a mesh the
//! renderer's mesh pipeline (`shaders/mesh.wgsl`) draws with per-vertex colours.

use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::models::secondary::{Secondary, secondary_structure};
use cryoforge_renderer::MeshData;

/// Spline samples per residue and vertices around the ribbon.
const SAMPLES: usize = 8;
const RING: usize = 12;

/// Half-width and half-height (Å) of the ribbon in each kind of secondary structure.
fn section(kind: Secondary) -> (f32, f32) {
    match kind {
        Secondary::Helix => (1.3, 0.3),
        Secondary::Strand => (1.1, 0.3),
        Secondary::Coil => (0.3, 0.3),
    }
}

type V = [f32; 3];

fn add(a: V, b: V) -> V {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
fn sub(a: V, b: V) -> V {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn scale(a: V, s: f32) -> V {
    [a[0] * s, a[1] * s, a[2] * s]
}
fn dot(a: V, b: V) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: V, b: V) -> V {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn unit(a: V) -> V {
    let l = dot(a, a).sqrt();
    if l > 1e-6 { scale(a, 1.0 / l) } else { [1.0, 0.0, 0.0] }
}

/// Catmull-Rom through p1 → p2 (p0 and p3 the neighbours) at t, and its derivative.
fn catmull_rom(p0: V, p1: V, p2: V, p3: V, t: f32) -> (V, V) {
    let (t2, t3) = (t * t, t * t * t);
    let point = std::array::from_fn(|k| {
        0.5 * (2.0 * p1[k]
            + (p2[k] - p0[k]) * t
            + (2.0 * p0[k] - 5.0 * p1[k] + 4.0 * p2[k] - p3[k]) * t2
            + (3.0 * p1[k] - p0[k] - 3.0 * p2[k] + p3[k]) * t3)
    });
    let tangent = std::array::from_fn(|k| {
        0.5 * ((p2[k] - p0[k])
            + 2.0 * (2.0 * p0[k] - 5.0 * p1[k] + 4.0 * p2[k] - p3[k]) * t
            + 3.0 * (3.0 * p1[k] - p0[k] - 3.0 * p2[k] + p3[k]) * t2)
    });
    (point, tangent)
}

/// The cartoon of `structure` at `coords`, each residue in the colour of its Cα (`colors` per
/// atom). Empty when the model has no chain of two or more linked Cα.
pub fn cartoon_mesh(structure: &Structure, coords: &[[f32; 3]], colors: &[[f32; 4]]) -> MeshData {
    let mut with_coords = Structure {
        frames: vec![coords.to_vec()],
        ..Structure::default()
    };
    with_coords.atoms.clone_from(&structure.atoms);
    with_coords.info.clone_from(&structure.info);
    let (residues, kinds) = secondary_structure(&with_coords, 0);
    let mut mesh = MeshData::default();
    let mut colours = Vec::new();
    // Chains of linked residues (Cα within 4.5 Å, same chain).
    let mut start = 0;
    for k in 1..=residues.len() {
        let linked = k < residues.len()
            && residues[k].chain_id == residues[k - 1].chain_id
            && dot(
                sub(coords[residues[k].ca], coords[residues[k - 1].ca]),
                sub(coords[residues[k].ca], coords[residues[k - 1].ca]),
            ) < 4.5 * 4.5;
        if !linked {
            if k - start >= 2 {
                let run = &residues[start..k];
                let points: Vec<V> = run.iter().map(|r| coords[r.ca]).collect();
                let guides: Vec<Option<V>> = run.iter().map(|r| r.o.map(|o| sub(coords[o], coords[r.ca]))).collect();
                let run_colours: Vec<[f32; 4]> = run
                    .iter()
                    .map(|r| colors.get(r.ca).copied().unwrap_or([1.0; 4]))
                    .collect();
                ribbon(
                    &mut mesh,
                    &mut colours,
                    &points,
                    &guides,
                    &kinds[start..k],
                    &run_colours,
                );
            }
            start = k;
        }
    }
    mesh.vertex_colors = Some(colours);
    mesh
}

/// One chain's ribbon.
fn ribbon(
    mesh: &mut MeshData,
    colours: &mut Vec<[f32; 4]>,
    points: &[V],
    guides: &[Option<V>],
    kinds: &[Secondary],
    residue_colours: &[[f32; 4]],
) {
    let m = points.len();
    // Side vectors: each peptide's C=O orthogonal to the chain, kept from flipping.
    let mut sides: Vec<V> = Vec::with_capacity(m);
    for k in 0..m {
        let tangent = unit(sub(points[(k + 1).min(m - 1)], points[k.saturating_sub(1)]));
        let raw = guides[k].unwrap_or_else(|| {
            let mid = scale(add(points[k.saturating_sub(1)], points[(k + 1).min(m - 1)]), 0.5);
            sub(points[k], mid)
        });
        let mut side = unit(sub(raw, scale(tangent, dot(raw, tangent))));
        if let Some(previous) = sides.last()
            && dot(side, *previous) < 0.0
        {
            side = scale(side, -1.0);
        }
        sides.push(side);
    }
    // The last residue of each strand carries the arrowhead.
    let arrow_end = |k: usize| kinds[k] == Secondary::Strand && kinds.get(k + 1) != Some(&Secondary::Strand);
    let first_ring = mesh.positions.len() as u32;
    let mut rings = 0u32;
    for k in 0..m - 1 {
        let (p0, p1, p2, p3) = (
            points[k.saturating_sub(1)],
            points[k],
            points[k + 1],
            points[(k + 2).min(m - 1)],
        );
        let samples = if k + 2 == m { SAMPLES + 1 } else { SAMPLES };
        for s in 0..samples {
            let t = s as f32 / SAMPLES as f32;
            let (centre, tangent) = catmull_rom(p0, p1, p2, p3, t);
            let tangent = unit(tangent);
            let guide = add(scale(sides[k], 1.0 - t), scale(sides[k + 1], t));
            let side = unit(sub(guide, scale(tangent, dot(guide, tangent))));
            let up = cross(tangent, side);
            // Width: the section of the nearer residue, blended across kind changes; an arrow
            // narrows from 1.6× the strand's width to a point over its last residue.
            let (w0, h0) = section(kinds[k]);
            let (w1, h1) = section(kinds[k + 1]);
            let (mut w, h) = (w0 + (w1 - w0) * t * t * (3.0 - 2.0 * t), h0 + (h1 - h0) * t);
            if arrow_end(k) {
                w = 1.6 * w0 * (1.0 - t) + 0.3 * t;
            }
            let colour = if t < 0.5 {
                residue_colours[k]
            } else {
                residue_colours[k + 1]
            };
            for r in 0..RING {
                let angle = std::f32::consts::TAU * r as f32 / RING as f32;
                let (c, s) = (angle.cos(), angle.sin());
                mesh.positions
                    .push(add(centre, add(scale(side, w * c), scale(up, h * s))));
                mesh.normals
                    .push(unit(add(scale(side, c / w.max(0.05)), scale(up, s / h.max(0.05)))));
                colours.push(colour);
            }
            rings += 1;
        }
    }
    let ring = RING as u32;
    for q in 0..rings.saturating_sub(1) {
        for r in 0..ring {
            let a = first_ring + q * ring + r;
            let b = first_ring + q * ring + (r + 1) % ring;
            let (c, d) = (a + ring, b + ring);
            mesh.triangles.push([a, b, d]);
            mesh.triangles.push([a, d, c]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adk_gets_a_closed_ribbon_with_flat_helices_and_thin_coil() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/models/1ake.pdb");
        let structure = Structure::read(&path).expect("1ake.pdb");
        let colors = vec![[0.5, 0.5, 0.5, 1.0]; structure.atoms.len()];
        let mesh = cartoon_mesh(&structure, &structure.frames[0], &colors);
        // 214 residues in one chain: 213 intervals of 8 rings (plus one) of 12 vertices.
        assert_eq!(mesh.positions.len(), (213 * SAMPLES + 1) * RING);
        assert_eq!(mesh.triangles.len(), (213 * SAMPLES) * RING * 2);
        assert!(mesh.normals.iter().all(|n| (dot(*n, *n) - 1.0).abs() < 1e-3));
        assert!(
            mesh.triangles
                .iter()
                .flatten()
                .all(|&i| (i as usize) < mesh.positions.len())
        );
        // The ribbon stays near the Cα trace.
        let ca: Vec<V> = structure
            .atoms
            .iter()
            .zip(&structure.frames[0])
            .filter(|(a, _)| a.is_alpha_carbon())
            .map(|(_, p)| *p)
            .collect();
        let farthest = mesh
            .positions
            .iter()
            .map(|p| {
                ca.iter()
                    .map(|q| dot(sub(*p, *q), sub(*p, *q)))
                    .fold(f32::INFINITY, f32::min)
                    .sqrt()
            })
            .fold(0.0, f32::max);
        assert!(farthest < 3.5, "{farthest}");
    }
}
