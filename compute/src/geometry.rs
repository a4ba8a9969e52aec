//! Rotations in the conventions of the field: RELION's ZYZ Euler angles and cryoSPARC's
//! rotation vectors, as 3×3 matrices (row-major, `m[row][column]`).
//!
//! RELION's matrix `A(rot, tilt, psi)` maps a volume point r to the image: the projection sees
//! (A·r)x,y. cryoSPARC stores `alignments3D/pose` as a rotation vector whose matrix is Aᵀ (the
//! convention cryoDRGN's `parse_pose_csparc` applies when it transposes cryoSPARC poses).

use std::collections::HashMap;

pub type Mat3 = [[f64; 3]; 3];

/// RELION's Euler matrix, angles in degrees (α = rot, β = tilt, γ = psi).
pub fn relion_matrix(rot_deg: f64, tilt_deg: f64, psi_deg: f64) -> Mat3 {
    let (sa, ca) = rot_deg.to_radians().sin_cos();
    let (sb, cb) = tilt_deg.to_radians().sin_cos();
    let (sg, cg) = psi_deg.to_radians().sin_cos();
    [
        [cg * cb * ca - sg * sa, cg * cb * sa + sg * ca, -cg * sb],
        [-sg * cb * ca - cg * sa, -sg * cb * sa + cg * ca, sg * sb],
        [sb * ca, sb * sa, cb],
    ]
}

/// Inverse of [`relion_matrix`]: (rot, tilt, psi) in degrees, tilt in [0, 180].
pub fn relion_angles(a: &Mat3) -> [f64; 3] {
    let sin_tilt = (a[2][0] * a[2][0] + a[2][1] * a[2][1]).sqrt();
    if sin_tilt > 1e-9 {
        let rot = a[2][1].atan2(a[2][0]);
        let tilt = sin_tilt.atan2(a[2][2]);
        let psi = a[1][2].atan2(-a[0][2]);
        [rot.to_degrees(), tilt.to_degrees(), psi.to_degrees()]
    } else if a[2][2] > 0.0 {
        // Gimbal lock at tilt 0: only rot + psi is defined; put it all in rot.
        [a[0][1].atan2(a[0][0]).to_degrees(), 0.0, 0.0]
    } else {
        [(-a[0][1]).atan2(-a[0][0]).to_degrees(), 180.0, 0.0]
    }
}

pub fn transpose(m: &Mat3) -> Mat3 {
    std::array::from_fn(|i| std::array::from_fn(|j| m[j][i]))
}

pub fn mul(a: &Mat3, b: &Mat3) -> Mat3 {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

/// Rodrigues: the rotation by |v| radians about v.
pub fn matrix_from_rotvec(v: [f64; 3]) -> Mat3 {
    let theta = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if theta < 1e-12 {
        return [[1.0, -v[2], v[1]], [v[2], 1.0, -v[0]], [-v[1], v[0], 1.0]];
    }
    let [x, y, z] = v.map(|c| c / theta);
    let (s, c) = theta.sin_cos();
    let t = 1.0 - c;
    [
        [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
        [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
        [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
    ]
}

/// The rotation vector of a rotation matrix (angle in [0, π]).
pub fn rotvec_from_matrix(m: &Mat3) -> [f64; 3] {
    let cos_theta = ((m[0][0] + m[1][1] + m[2][2] - 1.0) / 2.0).clamp(-1.0, 1.0);
    let theta = cos_theta.acos();
    let axis_sin = [m[2][1] - m[1][2], m[0][2] - m[2][0], m[1][0] - m[0][1]];
    if theta < 1e-9 {
        return axis_sin.map(|c| c / 2.0);
    }
    if std::f64::consts::PI - theta > 1e-4 {
        let k = theta / (2.0 * theta.sin());
        return axis_sin.map(|c| c * k);
    }
    // Near π the antisymmetric part vanishes: read the axis off the symmetric part.
    let diag = [m[0][0], m[1][1], m[2][2]];
    let i = (0..3).fold(0, |best, j| if diag[j] > diag[best] { j } else { best });
    let mut axis = [0.0; 3];
    axis[i] = ((diag[i] - cos_theta) / (1.0 - cos_theta)).max(0.0).sqrt();
    for j in 0..3 {
        if j != i {
            axis[j] = (m[i][j] + m[j][i]) / (2.0 * axis[i] * (1.0 - cos_theta));
        }
    }
    if axis_sin[i] * axis[i] < 0.0 {
        axis = axis.map(|c| -c);
    }
    let norm = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]).sqrt();
    axis.map(|c| c / norm * theta)
}

/// The rotation matrix of a unit quaternion (w, x, y, z).
pub fn matrix_from_quaternion([w, x, y, z]: [f64; 4]) -> Mat3 {
    [
        [
            w * w + x * x - y * y - z * z,
            2.0 * (x * y - w * z),
            2.0 * (x * z + w * y),
        ],
        [
            2.0 * (x * y + w * z),
            w * w - x * x + y * y - z * z,
            2.0 * (y * z - w * x),
        ],
        [
            2.0 * (x * z - w * y),
            2.0 * (y * z + w * x),
            w * w - x * x - y * y + z * z,
        ],
    ]
}

/// The squared distance between two points.
pub fn distance2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

/// The distance between two points.
pub fn distance(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    distance2(a, b).sqrt()
}

/// Points kept one by one, binned in cubes of side `radius`, that answer whether a new point
/// comes closer than `radius` to any kept one (Poisson-disk sampling, de-crowding).
pub(crate) struct SparsePoints {
    radius: f64,
    points: Vec<[f64; 3]>,
    bins: HashMap<[i64; 3], Vec<u32>>,
}

impl SparsePoints {
    pub fn new(radius: f64) -> Self {
        Self {
            radius,
            points: Vec::new(),
            bins: HashMap::new(),
        }
    }

    fn bin(&self, p: &[f64; 3]) -> [i64; 3] {
        p.map(|v| (v / self.radius).floor() as i64)
    }

    /// Whether a kept point lies closer than the radius to `p`.
    pub fn crowds(&self, p: &[f64; 3]) -> bool {
        let c = self.bin(p);
        (-1..=1).any(|dx| {
            (-1..=1).any(|dy| {
                (-1..=1).any(|dz| {
                    self.bins
                        .get(&[c[0] + dx, c[1] + dy, c[2] + dz])
                        .is_some_and(|v| v.iter().any(|&j| distance(&self.points[j as usize], p) < self.radius))
                })
            })
        })
    }

    pub fn insert(&mut self, p: [f64; 3]) {
        let c = self.bin(&p);
        self.bins.entry(c).or_default().push(self.points.len() as u32);
        self.points.push(p);
    }

    /// The kept points, in the order they were inserted.
    pub fn into_points(self) -> Vec<[f64; 3]> {
        self.points
    }
}

/// Atoms binned in cubes of side `cell`: neighbours within `cell` lie in the 27 cells around.
pub(crate) struct CellList {
    cell: f64,
    bins: HashMap<[i32; 3], Vec<u32>>,
}

fn position(frame: &[[f32; 3]], i: usize) -> Option<[f64; 3]> {
    let p = frame.get(i)?.map(f64::from);
    p.iter().all(|c| c.is_finite()).then_some(p)
}

impl CellList {
    pub fn new(frame: &[[f32; 3]], atoms: &[usize], cell: f64) -> Self {
        let mut bins: HashMap<[i32; 3], Vec<u32>> = HashMap::new();
        for &i in atoms {
            if let Some(p) = position(frame, i) {
                bins.entry(p.map(|c| (c / cell).floor() as i32))
                    .or_default()
                    .push(i as u32);
            }
        }
        Self { cell, bins }
    }

    /// Calls `f(j, distance)` for every binned atom j within the cell size of atom `i`.
    pub fn for_each_near(&self, frame: &[[f32; 3]], i: usize, mut f: impl FnMut(usize, f64)) {
        let Some(p) = position(frame, i) else { return };
        let key = p.map(|c| (c / self.cell).floor() as i32);
        for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    let Some(list) = self.bins.get(&[key[0] + dx, key[1] + dy, key[2] + dz]) else {
                        continue;
                    };
                    for &j in list {
                        let Some(q) = position(frame, j as usize) else { continue };
                        let d = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt();
                        if d <= self.cell {
                            f(j as usize, d);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_diff(a: &Mat3, b: &Mat3) -> f64 {
        (0..9)
            .map(|k| (a[k / 3][k % 3] - b[k / 3][k % 3]).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn relion_matrix_is_a_rotation_and_angles_invert_it() {
        for &(r, t, p) in &[
            (10.0, 20.0, 30.0),
            (-170.0, 95.0, 45.0),
            (0.0, 179.0, -90.0),
            (33.0, 0.0, 0.0),
        ] {
            let a = relion_matrix(r, t, p);
            let should_be_identity = mul(&a, &transpose(&a));
            assert!(max_diff(&should_be_identity, &relion_matrix(0.0, 0.0, 0.0)) < 1e-12);
            let back = relion_angles(&a);
            assert!(
                max_diff(&relion_matrix(back[0], back[1], back[2]), &a) < 1e-9,
                "{r} {t} {p} -> {back:?}"
            );
        }
    }

    #[test]
    fn tilt_rotates_about_y_into_the_image() {
        // A pure tilt of 90° sends the volume's z axis onto the image's -x (third column of A).
        let a = relion_matrix(0.0, 90.0, 0.0);
        assert!((a[0][2] + 1.0).abs() < 1e-12 && a[2][2].abs() < 1e-12);
    }

    #[test]
    fn rotvec_round_trip_including_near_pi() {
        for v in [
            [0.1, -0.2, 0.3],
            [0.0, 0.0, std::f64::consts::PI - 1e-5],
            [1.0, 2.0, -0.5],
            [2.0, 2.0, 0.0],
            [1e-14, 0.0, 0.0],
        ] {
            let m = matrix_from_rotvec(v);
            let back = rotvec_from_matrix(&m);
            assert!(max_diff(&matrix_from_rotvec(back), &m) < 1e-7, "{v:?} -> {back:?}");
        }
    }
}
