//! Turns loaded maps and models into the renderer's scene: isosurfaces at each map's level,
//! atoms as spheres coloured by chain or element, Cα traces, and map bounding boxes. Shared by
//! the window and `cryoforge render`, so both draw the same thing.

use std::path::Path;

use cryoforge_compute::formats::model::{Atom, Structure};
use cryoforge_compute::maps::DensityMap;
use cryoforge_compute::maps::isosurface::surface_nets;
use cryoforge_compute::maps::scores::level_enclosing_fraction;
use cryoforge_renderer::{LinesData, MeshData, SpheresData};

/// How atoms are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AtomStyle {
    Spheres,
    /// Sticks between bonded atoms.
    Bonds,
    Trace,
    /// A Cα tube whose radius follows the B-factor (RMSF) of each residue.
    Worm,
    /// Ribbons: helices, strands with arrows, coil ([`crate::cartoon`]); other atoms (ligands,
    /// nucleic acids) as spheres.
    Cartoon,
}

/// How a model is drawn when it opens: as a cartoon when it holds a protein chain (ChimeraX's
/// default), else as atoms.
pub fn default_style(model: &Structure) -> AtomStyle {
    let alphas = model
        .atoms
        .iter()
        .filter(|a| a.is_alpha_carbon() && a.residue_name != "CA")
        .count();
    if alphas >= 3 {
        AtomStyle::Cartoon
    } else {
        AtomStyle::Spheres
    }
}

/// The atoms a cartoon leaves to be drawn as spheres: everything outside the protein chains
/// (ligands, ions, nucleic acids), waters left out.
pub fn outside_cartoon(atoms: &[Atom]) -> Vec<bool> {
    let protein_residues: std::collections::HashSet<(&str, i32, &str)> = atoms
        .iter()
        .filter(|a| a.is_alpha_carbon())
        .map(|a| (a.chain_id.as_str(), a.residue_number, a.insertion_code.as_str()))
        .collect();
    atoms
        .iter()
        .map(|a| {
            a.residue_name != "HOH"
                && !protein_residues.contains(&(a.chain_id.as_str(), a.residue_number, a.insertion_code.as_str()))
        })
        .collect()
}

/// How atoms are coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ColorBy {
    Chain,
    Element,
    BFactor,
    Uniform,
}

/// ChimeraX's initial level: the one enclosing 1% of the voxels.
pub fn default_level(map: &DensityMap) -> f32 {
    // A mask (0/1) or a segmentation's labels (0, 1, 2, …) is drawn, and a mask used as a zone,
    // at the edge of its non-zero voxels.
    if largest_label(map).is_some_and(|max| max >= 1.0) {
        return 0.5;
    }
    level_enclosing_fraction(&map.values, 0.01)
}

pub fn map_mesh(map: &DensityMap, level: f32) -> MeshData {
    let mesh = surface_nets(map, level);
    let vertex_colors = largest_label(map)
        .is_some_and(|max| max >= 2.0)
        .then(|| mesh.positions.iter().map(|&p| label_color(map, p)).collect());
    MeshData {
        positions: mesh.positions,
        normals: mesh.normals,
        triangles: mesh.triangles,
        vertex_colors,
    }
}

/// The largest value of a map of whole numbers ≥ 0 (a mask, a segmentation's labels); None for
/// any other map.
fn largest_label(map: &DensityMap) -> Option<f32> {
    let mut max = 0.0f32;
    for &v in &map.values {
        if !(v >= 0.0 && v.fract() == 0.0) {
            return None;
        }
        max = max.max(v);
    }
    Some(max)
}

/// The colour of the region a surface vertex bounds: the largest label among the 8 voxels
/// around it, each label the colour of the cluster with its number.
fn label_color(map: &DensityMap, position: [f32; 3]) -> [f32; 4] {
    let first = map.grid.first_voxel_angstrom();
    let base: [usize; 3] = std::array::from_fn(|a| {
        let c = ((position[a] - first[a]) / map.grid.voxel_size_angstrom[a])
            .floor()
            .max(0.0) as usize;
        c.min(map.grid.dims[a].saturating_sub(1))
    });
    let mut label = 0.0f32;
    for corner in 0..8 {
        let v: [usize; 3] =
            std::array::from_fn(|a| (base[a] + (corner >> a & 1)).min(map.grid.dims[a].saturating_sub(1)));
        label = label.max(map.values[map.grid.index(v[0], v[1], v[2])]);
    }
    let [r, g, b] = crate::scatter::cluster_colour((label as usize).saturating_sub(1));
    [f32::from(r) / 255.0, f32::from(g) / 255.0, f32::from(b) / 255.0, 1.0]
}

/// The 12 edges of the map's box.
pub fn map_box(map: &DensityMap, color: [f32; 4]) -> LinesData {
    let lo = map.grid.first_voxel_angstrom();
    let hi = map.grid.world_from_voxel(map.grid.dims.map(|d| (d.max(1) - 1) as f32));
    let corner = |i: usize| {
        [
            if i & 1 == 0 { lo[0] } else { hi[0] },
            if i & 2 == 0 { lo[1] } else { hi[1] },
            if i & 4 == 0 { lo[2] } else { hi[2] },
        ]
    };
    let mut points = Vec::with_capacity(24);
    for i in 0..8usize {
        for bit in [1, 2, 4] {
            if i & bit == 0 {
                points.push(corner(i));
                points.push(corner(i | bit));
            }
        }
    }
    LinesData {
        colors: vec![color; points.len()],
        points,
    }
}

const CHAIN_COLORS: [[f32; 4]; 8] = [
    [0.40, 0.76, 0.65, 1.0],
    [0.99, 0.55, 0.38, 1.0],
    [0.55, 0.63, 0.80, 1.0],
    [0.91, 0.54, 0.76, 1.0],
    [0.65, 0.85, 0.33, 1.0],
    [1.00, 0.85, 0.18, 1.0],
    [0.90, 0.77, 0.58, 1.0],
    [0.70, 0.70, 0.70, 1.0],
];

fn element_color(element: &str) -> [f32; 4] {
    match element {
        "C" => [0.56, 0.56, 0.56, 1.0],
        "N" => [0.19, 0.31, 0.97, 1.0],
        "O" => [1.0, 0.05, 0.05, 1.0],
        "S" => [1.0, 0.78, 0.2, 1.0],
        "P" => [1.0, 0.5, 0.0, 1.0],
        "H" => [0.95, 0.95, 0.95, 1.0],
        _ => [0.9, 0.4, 0.9, 1.0],
    }
}

fn vdw_radius(element: &str) -> f32 {
    match element {
        "H" => 1.1,
        "C" => 1.7,
        "N" => 1.55,
        "O" => 1.52,
        "S" | "P" => 1.8,
        _ => 1.8,
    }
}

/// A blue→white→red ramp over [0, 1].
pub fn ramp(t: f32) -> [f32; 4] {
    let t = t.clamp(0.0, 1.0);
    if t < 0.5 {
        let s = t * 2.0;
        [0.2 + 0.8 * s, 0.3 + 0.7 * s, 1.0, 1.0]
    } else {
        let s = (t - 0.5) * 2.0;
        [1.0, 1.0 - 0.8 * s, 1.0 - 0.8 * s, 1.0]
    }
}

pub fn atom_colors(atoms: &[Atom], color_by: ColorBy, uniform: [f32; 4]) -> Vec<[f32; 4]> {
    let mut chains: Vec<&str> = Vec::new();
    let (b_min, b_max) = atoms.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), a| {
        (lo.min(a.b_factor), hi.max(a.b_factor))
    });
    atoms
        .iter()
        .map(|a| match color_by {
            ColorBy::Chain => {
                let index = chains.iter().position(|c| *c == a.chain_id).unwrap_or_else(|| {
                    chains.push(&a.chain_id);
                    chains.len() - 1
                });
                CHAIN_COLORS[index % CHAIN_COLORS.len()]
            }
            ColorBy::Element => element_color(&a.element),
            ColorBy::BFactor => ramp(if b_max > b_min {
                (a.b_factor - b_min) / (b_max - b_min)
            } else {
                0.5
            }),
            ColorBy::Uniform => uniform,
        })
        .collect()
}

/// Atoms of `frame` as spheres (heavy atoms; scale 1 is van der Waals, 0.3 ball-and-stick).
pub fn model_spheres(atoms: &[Atom], coords: &[[f32; 3]], colors: &[[f32; 4]], scale: f32) -> SpheresData {
    let mut out = SpheresData::default();
    for ((atom, p), c) in atoms.iter().zip(coords).zip(colors) {
        if atom.is_hydrogen() {
            continue;
        }
        out.centers.push(*p);
        out.radii.push(vdw_radius(&atom.element) * scale);
        out.colors.push(*c);
    }
    out
}

/// The Cα (or P for nucleic acids) trace of each chain as a tube: rods between consecutive
/// residues of a chain (gaps over 8 Å left open).
pub fn model_trace(atoms: &[Atom], coords: &[[f32; 3]], colors: &[[f32; 4]]) -> SpheresData {
    tube(atoms, coords, colors, &|_| 0.5)
}

/// The colour of a selected residue.
pub const HIGHLIGHT: [f32; 4] = [0.15, 1.0, 0.25, 1.0];

/// The worm's radius (Å) at an atom of `b` Å²: 0.25 Å + 0.5 × its RMSF (√(3B/8π²)), at most 3 Å.
pub fn worm_radius(b: f32) -> f32 {
    let rmsf = (3.0 * b.max(0.0) / (8.0 * std::f32::consts::PI.powi(2))).sqrt();
    (0.25 + 0.5 * rmsf).min(3.0)
}

/// The Cα tube with each residue's radius from its Cα's B-factor ([`worm_radius`]), as PyMOL's
/// putty and ChimeraX's worm draw flexibility.
pub fn model_worm(atoms: &[Atom], coords: &[[f32; 3]], colors: &[[f32; 4]]) -> SpheresData {
    tube(atoms, coords, colors, &|i| worm_radius(atoms[i].b_factor))
}

/// Spheres along the Cα (or P) trace, `radius(atom)` at each; rods between neighbours blend
/// the radii of their ends.
fn tube(atoms: &[Atom], coords: &[[f32; 3]], colors: &[[f32; 4]], radius: &dyn Fn(usize) -> f32) -> SpheresData {
    let mut spheres = SpheresData::default();
    let mut previous: Option<(usize, &str)> = None;
    for (i, atom) in atoms.iter().enumerate() {
        if !(atom.is_alpha_carbon() || (atom.name == "P" && atom.element == "P")) {
            continue;
        }
        if let Some((j, chain)) = previous {
            let gap = (0..3)
                .map(|k| (coords[i][k] - coords[j][k]).powi(2))
                .sum::<f32>()
                .sqrt();
            if chain == atom.chain_id && gap < 8.0 {
                let mid = [
                    0.5 * (coords[i][0] + coords[j][0]),
                    0.5 * (coords[i][1] + coords[j][1]),
                    0.5 * (coords[i][2] + coords[j][2]),
                ];
                let r = 0.5 * (radius(i) + radius(j));
                rod(&mut spheres, coords[j], mid, 0.5 * (radius(j) + r), colors[j]);
                rod(&mut spheres, mid, coords[i], 0.5 * (radius(i) + r), colors[i]);
            }
        }
        spheres.centers.push(coords[i]);
        spheres.radii.push(radius(i));
        spheres.colors.push(colors[i]);
        previous = Some((i, &atom.chain_id));
    }
    spheres
}

/// Spheres of `radius` packed along the segment a→b, so a row of them reads as a rod.
fn rod(spheres: &mut SpheresData, a: [f32; 3], b: [f32; 3], radius: f32, color: [f32; 4]) {
    let length = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2) + (b[2] - a[2]).powi(2)).sqrt();
    let steps = (length / (0.6 * radius)).ceil().max(1.0) as usize;
    for k in 0..=steps {
        let t = k as f32 / steps as f32;
        spheres.centers.push([
            a[0] + t * (b[0] - a[0]),
            a[1] + t * (b[1] - a[1]),
            a[2] + t * (b[2] - a[2]),
        ]);
        spheres.radii.push(radius);
        spheres.colors.push(color);
    }
}

/// Sticks: bonds between heavy atoms closer than 1.9 Å (2.2 Å when S or P is involved), found
/// with a cell grid so large models stay fast, drawn as rods in their atoms' colours.
pub fn model_bonds(atoms: &[Atom], coords: &[[f32; 3]], colors: &[[f32; 4]]) -> SpheresData {
    let cell = 2.2f32;
    let mut grid: std::collections::HashMap<[i32; 3], Vec<usize>> = std::collections::HashMap::new();
    let key = |p: &[f32; 3]| p.map(|v| (v / cell).floor() as i32);
    for (i, (atom, p)) in atoms.iter().zip(coords).enumerate() {
        if !atom.is_hydrogen() {
            grid.entry(key(p)).or_default().push(i);
        }
    }
    let mut spheres = SpheresData::default();
    for (i, (atom, p)) in atoms.iter().zip(coords).enumerate() {
        if atom.is_hydrogen() {
            continue;
        }
        spheres.centers.push(*p);
        spheres.radii.push(0.3);
        spheres.colors.push(colors[i]);
        let k = key(p);
        for dz in -1..=1 {
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let Some(others) = grid.get(&[k[0] + dx, k[1] + dy, k[2] + dz]) else {
                        continue;
                    };
                    for &j in others.iter().filter(|&&j| j > i) {
                        let q = coords[j];
                        let d = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt();
                        let heavy = |e: &str| e == "S" || e == "P";
                        let limit = if heavy(&atom.element) || heavy(&atoms[j].element) {
                            2.2
                        } else {
                            1.9
                        };
                        if d > 0.4 && d < limit {
                            let mid = [0.5 * (p[0] + q[0]), 0.5 * (p[1] + q[1]), 0.5 * (p[2] + q[2])];
                            rod(&mut spheres, *p, mid, 0.2, colors[i]);
                            rod(&mut spheres, mid, q, 0.2, colors[j]);
                        }
                    }
                }
            }
        }
    }
    spheres
}

/// An axis-aligned slice through the map at voxel `index` along `axis` (0 = x), as a flat grey
/// mesh scaled from the map's minimum to maximum.
pub fn map_slice(map: &DensityMap, axis: usize, index: usize) -> MeshData {
    let dims = map.grid.dims;
    let (u, v) = ((axis + 1) % 3, (axis + 2) % 3);
    let index = index.min(dims[axis].saturating_sub(1));
    let stats = map.statistics();
    let span = (stats.max - stats.min).max(1e-12);
    let mut mesh = MeshData::default();
    let mut normal = [0.0; 3];
    normal[axis] = 1.0;
    let mut colors = Vec::new();
    for j in 0..dims[v] {
        for i in 0..dims[u] {
            let mut voxel = [0usize; 3];
            voxel[axis] = index;
            voxel[u] = i;
            voxel[v] = j;
            mesh.positions.push(map.grid.world_from_voxel(voxel.map(|c| c as f32)));
            mesh.normals.push(normal);
            let g = (map.values[map.grid.index(voxel[0], voxel[1], voxel[2])] - stats.min) / span;
            colors.push([g, g, g, 1.0]);
        }
    }
    for j in 0..dims[v].saturating_sub(1) {
        for i in 0..dims[u].saturating_sub(1) {
            let a = (j * dims[u] + i) as u32;
            let b = a + 1;
            let c = a + dims[u] as u32;
            let d = c + 1;
            mesh.triangles.push([a, b, d]);
            mesh.triangles.push([a, d, c]);
        }
    }
    mesh.vertex_colors = Some(colors);
    mesh
}

/// Centre and radius of everything in the scene, for framing the camera.
pub fn bounds(points: impl IntoIterator<Item = [f32; 3]>) -> Option<([f32; 3], f32)> {
    let mut lo = [f32::INFINITY; 3];
    let mut hi = [f32::NEG_INFINITY; 3];
    let mut any = false;
    for p in points {
        any = true;
        for a in 0..3 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    any.then(|| {
        let c = std::array::from_fn(|a| 0.5 * (lo[a] + hi[a]));
        let r = 0.5 * ((0..3).map(|a| (hi[a] - lo[a]).powi(2)).sum::<f32>()).sqrt();
        (c, r)
    })
}

/// A short name for an object in the data panel.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}
