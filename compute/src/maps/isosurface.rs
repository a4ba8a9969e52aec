//! Isosurfaces of density maps by surface nets: one vertex per grid cell that the surface
//! crosses (at the mean of the cell's edge crossings), one quad per grid edge the surface
//! crosses. Closed, watertight where the map is, no lookup tables, and quick enough to follow a
//! threshold slider on a 256³ map. Normals come from the map's gradient and point outwards
//! (towards lower density).

use rayon::prelude::*;

use crate::maps::DensityMap;

/// A triangle mesh in Å.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mesh {
    pub positions: Vec<[f32; 3]>,
    pub normals: Vec<[f32; 3]>,
    pub triangles: Vec<[u32; 3]>,
}

impl Mesh {
    pub fn is_empty(&self) -> bool {
        self.triangles.is_empty()
    }

    /// Surface area in Å².
    pub fn area(&self) -> f64 {
        self.triangles
            .iter()
            .map(|t| {
                let [a, b, c] = t.map(|i| self.positions[i as usize].map(f64::from));
                let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
                let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
                let n = [
                    u[1] * v[2] - u[2] * v[1],
                    u[2] * v[0] - u[0] * v[2],
                    u[0] * v[1] - u[1] * v[0],
                ];
                0.5 * (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt()
            })
            .sum()
    }

    /// Enclosed volume in Å³ (divergence theorem; positive for outward-facing triangles).
    pub fn volume(&self) -> f64 {
        self.triangles
            .iter()
            .map(|t| {
                let [a, b, c] = t.map(|i| self.positions[i as usize].map(f64::from));
                (a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0])
                    + a[2] * (b[0] * c[1] - b[1] * c[0]))
                    / 6.0
            })
            .sum()
    }
}

const NO_VERTEX: u32 = u32::MAX;

/// A crossed cell's index, its vertex position (Å) and normal.
type CellVertex = (usize, [f32; 3], [f32; 3]);

/// The surface where `map` crosses `level` (density above `level` is inside).
pub fn surface_nets(map: &DensityMap, level: f32) -> Mesh {
    let [nx, ny, nz] = map.grid.dims;
    if nx < 2 || ny < 2 || nz < 2 {
        return Mesh::default();
    }
    let h = map.grid.voxel_size_angstrom;
    let first = map.grid.first_voxel_angstrom();
    let value = |x: usize, y: usize, z: usize| map.values[x + nx * (y + ny * z)];
    let inside: Vec<bool> = map.values.par_iter().map(|&v| v > level).collect();
    let is_inside = |x: usize, y: usize, z: usize| inside[x + nx * (y + ny * z)];
    let (cx, cy, cz) = (nx - 1, ny - 1, nz - 1);
    // Pass 1, per z-slab of cells in parallel: the vertex of every crossed cell.
    let slabs: Vec<Vec<CellVertex>> = (0..cz)
        .into_par_iter()
        .map(|z| {
            let mut out = Vec::new();
            for y in 0..cy {
                for x in 0..cx {
                    // Cheap rejection on the precomputed inside flags: most cells are uncrossed.
                    let corner0 = is_inside(x, y, z);
                    let crossed = (1..8).any(|k| is_inside(x + (k & 1), y + ((k >> 1) & 1), z + (k >> 2)) != corner0);
                    if !crossed {
                        continue;
                    }
                    let mut corners = [0f32; 8];
                    for (k, c) in corners.iter_mut().enumerate() {
                        *c = value(x + (k & 1), y + ((k >> 1) & 1), z + (k >> 2));
                    }
                    let mut sum = [0f32; 3];
                    let mut count = 0f32;
                    for (a, b) in CUBE_EDGES {
                        let (va, vb) = (corners[a], corners[b]);
                        if (va > level) != (vb > level) {
                            let t = (level - va) / (vb - va);
                            for (axis, total) in sum.iter_mut().enumerate() {
                                let pa = ((a >> axis) & 1) as f32;
                                let pb = ((b >> axis) & 1) as f32;
                                *total += pa + t * (pb - pa);
                            }
                            count += 1.0;
                        }
                    }
                    let local = sum.map(|s| s / count);
                    let voxel = [x as f32 + local[0], y as f32 + local[1], z as f32 + local[2]];
                    let position = std::array::from_fn(|a| first[a] + voxel[a] * h[a]);
                    out.push((x + cx * (y + cy * z), position, outward_normal(map, voxel)));
                }
            }
            out
        })
        .collect();
    let mut cell_vertex = vec![NO_VERTEX; cx * cy * cz];
    let mut mesh = Mesh::default();
    for slab in slabs {
        for (cell, position, normal) in slab {
            cell_vertex[cell] = mesh.positions.len() as u32;
            mesh.positions.push(position);
            mesh.normals.push(normal);
        }
    }
    // Pass 2: a quad for every crossed grid edge whose four surrounding cells exist.
    emit_quads(&mut mesh, map, &inside, &cell_vertex, [cx, cy, cz]);
    mesh
}

/// Quads for crossed grid edges: for an edge along axis a at grid point p, the four cells that
/// share it are p − the unit vectors of the other two axes (0 or 1 each). Planes of grid points
/// are done in parallel.
fn emit_quads(mesh: &mut Mesh, map: &DensityMap, inside: &[bool], cell_vertex: &[u32], cells: [usize; 3]) {
    let [nx, ny, nz] = map.grid.dims;
    let vertex = |c: [usize; 3]| cell_vertex[c[0] + cells[0] * (c[1] + cells[1] * c[2])];
    let planes: Vec<Vec<[u32; 3]>> = (0..nz)
        .into_par_iter()
        .map(|z| {
            let mut triangles = Vec::new();
            for y in 0..ny {
                for x in 0..nx {
                    let p = [x, y, z];
                    let here = inside[x + nx * (y + ny * z)];
                    for axis in 0..3 {
                        let (u, v) = ((axis + 1) % 3, (axis + 2) % 3);
                        let mut q = p;
                        q[axis] += 1;
                        if q[axis] >= map.grid.dims[axis]
                            || p[u] == 0
                            || p[v] == 0
                            || p[u] >= cells[u]
                            || p[v] >= cells[v]
                        {
                            continue;
                        }
                        if here == inside[q[0] + nx * (q[1] + ny * q[2])] {
                            continue;
                        }
                        let cell_at = |du: usize, dv: usize| {
                            let mut c = p;
                            c[u] = p[u] - 1 + du;
                            c[v] = p[v] - 1 + dv;
                            vertex(c)
                        };
                        let quad = [cell_at(0, 0), cell_at(1, 0), cell_at(1, 1), cell_at(0, 1)];
                        if quad.contains(&NO_VERTEX) {
                            continue;
                        }
                        // Wind so the face normal points from inside (high) to outside (low).
                        let [a, b, c, d] = if here {
                            quad
                        } else {
                            [quad[0], quad[3], quad[2], quad[1]]
                        };
                        triangles.push([a, b, c]);
                        triangles.push([a, c, d]);
                    }
                }
            }
            triangles
        })
        .collect();
    mesh.triangles = planes.concat();
}

/// The 12 edges of a cell as pairs of corner indices (bit 0 = x, bit 1 = y, bit 2 = z).
const CUBE_EDGES: [(usize, usize); 12] = [
    (0, 1),
    (2, 3),
    (4, 5),
    (6, 7),
    (0, 2),
    (1, 3),
    (4, 6),
    (5, 7),
    (0, 4),
    (1, 5),
    (2, 6),
    (3, 7),
];

/// −∇ρ at a fractional voxel position, normalised (outwards from high density).
fn outward_normal(map: &DensityMap, voxel: [f32; 3]) -> [f32; 3] {
    let [nx, ny, nz] = map.grid.dims;
    let at = |x: isize, y: isize, z: isize| {
        let c = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
        map.values[c(x, nx) + nx * (c(y, ny) + ny * c(z, nz))]
    };
    let (x, y, z) = (
        voxel[0].round() as isize,
        voxel[1].round() as isize,
        voxel[2].round() as isize,
    );
    let h = map.grid.voxel_size_angstrom;
    let g = [
        (at(x + 1, y, z) - at(x - 1, y, z)) / h[0],
        (at(x, y + 1, z) - at(x, y - 1, z)) / h[1],
        (at(x, y, z + 1) - at(x, y, z - 1)) / h[2],
    ];
    let n = (g[0] * g[0] + g[1] * g[1] + g[2] * g[2]).sqrt();
    if n > 0.0 { g.map(|c| -c / n) } else { [0.0, 0.0, 1.0] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::MapGrid;

    /// A ball of radius r: density = r − distance from the centre.
    fn ball(radius: f32) -> DensityMap {
        let n = 40;
        let grid = MapGrid::new([n; 3], [0.5; 3], [-10.0; 3]);
        let mut values = Vec::with_capacity(n * n * n);
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    let p = grid.world_from_voxel([x as f32, y as f32, z as f32]);
                    values.push(radius - (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt());
                }
            }
        }
        DensityMap {
            grid,
            values,
            meta: Default::default(),
        }
    }

    #[test]
    fn a_ball_gives_a_closed_outward_surface_of_the_right_size() {
        let r = 6.0f64;
        let mesh = surface_nets(&ball(r as f32), 0.0);
        assert!(!mesh.is_empty());
        let area = mesh.area();
        let volume = mesh.volume();
        let true_area = 4.0 * std::f64::consts::PI * r * r;
        let true_volume = 4.0 / 3.0 * std::f64::consts::PI * r.powi(3);
        assert!((area / true_area - 1.0).abs() < 0.1, "area {area} vs {true_area}");
        assert!(
            (volume / true_volume - 1.0).abs() < 0.05,
            "volume {volume} vs {true_volume}: winding must face outwards"
        );
        // Watertight: every edge is shared by exactly two triangles.
        let mut edges = std::collections::HashMap::new();
        for t in &mesh.triangles {
            for (a, b) in [(t[0], t[1]), (t[1], t[2]), (t[2], t[0])] {
                *edges.entry((a.min(b), a.max(b))).or_insert(0) += 1;
            }
        }
        assert!(edges.values().all(|&c| c == 2), "the surface is closed");
        // Normals point away from the centre.
        for (p, n) in mesh.positions.iter().zip(&mesh.normals) {
            assert!(p[0] * n[0] + p[1] * n[1] + p[2] * n[2] > 0.0);
        }
    }

    #[test]
    fn surfaces_cut_by_the_box_edge_stay_in_bounds() {
        // Density rising towards a corner: the surface meets three faces of the box.
        let n = 12;
        let grid = MapGrid::new([n, n + 1, n + 2], [1.0; 3], [0.0; 3]);
        let values = (0..grid.voxel_count())
            .map(|i| {
                let (x, y, z) = (i % n, (i / n) % (n + 1), i / (n * (n + 1)));
                (x + y + z) as f32
            })
            .collect();
        let map = DensityMap {
            grid,
            values,
            meta: Default::default(),
        };
        for level in [2.5, 5.5, 20.5, 33.5] {
            let mesh = surface_nets(&map, level);
            assert!(!mesh.is_empty(), "level {level}");
            assert!(
                mesh.triangles
                    .iter()
                    .flatten()
                    .all(|&i| (i as usize) < mesh.positions.len())
            );
        }
    }

    #[test]
    fn levels_outside_the_range_give_nothing() {
        let map = ball(4.0);
        assert!(surface_nets(&map, 100.0).is_empty());
        assert!(surface_nets(&map, -100.0).is_empty());
    }
}
