//! Ideal backbone and Cβ geometry of Engh & Huber (2001), and the ideal Cβ position built from
//! a residue's N, CA and C.
//!
//! Values: R. A. Engh & R. Huber, "Structure quality and target parameters", International
//! Tables for Crystallography Vol. F (2001), ch. 18.3, tables of bond lengths and angles from
//! the Cambridge Structural Database (the set the CCP4 monomer library and phenix call
//! "Engh & Huber 2001"). Specific values are used where the paper gives them (Gly, Pro; Cβ of
//! Ala and of the β-branched Ile, Thr, Val), the general ones elsewhere.

/// A target value and its standard deviation (Å or degrees).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Target {
    pub ideal: f64,
    pub sigma: f64,
}

const fn t(ideal: f64, sigma: f64) -> Target {
    Target { ideal, sigma }
}

/// How Engh & Huber group residues for the backbone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackboneKind {
    General,
    Glycine,
    Proline,
    Alanine,
    /// Ile, Thr, Val: β-branched, their own Cβ values.
    BetaBranched,
}

impl BackboneKind {
    pub fn of(residue_name: &str) -> Self {
        match residue_name {
            "GLY" => Self::Glycine,
            "PRO" => Self::Proline,
            "ALA" => Self::Alanine,
            "ILE" | "THR" | "VAL" => Self::BetaBranched,
            _ => Self::General,
        }
    }
}

/// Intra-residue backbone bonds and angles, by atom names (angles: centre in the middle).
pub(crate) fn intra_bond(kind: BackboneKind, a: &str, b: &str) -> Option<Target> {
    use BackboneKind::*;
    let pair = if a <= b { (a, b) } else { (b, a) };
    Some(match (pair, kind) {
        (("CA", "N"), Glycine) => t(1.456, 0.015),
        (("CA", "N"), Proline) => t(1.468, 0.017),
        (("CA", "N"), _) => t(1.459, 0.020),
        (("C", "CA"), Glycine) => t(1.514, 0.016),
        (("C", "CA"), Proline) => t(1.524, 0.020),
        (("C", "CA"), _) => t(1.525, 0.026),
        (("C", "O"), Glycine) => t(1.232, 0.016),
        (("C", "O"), Proline) => t(1.228, 0.020),
        (("C", "O"), _) => t(1.229, 0.019),
        (("CA", "CB"), Alanine) => t(1.520, 0.021),
        (("CA", "CB"), BetaBranched) => t(1.540, 0.027),
        (("CA", "CB"), Proline) => t(1.531, 0.020),
        (("CA", "CB"), _) => t(1.530, 0.020),
        _ => return None,
    })
}

/// Intra-residue backbone angles a–centre–c (either order of a and c).
pub(crate) fn intra_angle(kind: BackboneKind, a: &str, centre: &str, c: &str) -> Option<Target> {
    use BackboneKind::*;
    if centre != "CA" && centre != "C" {
        return None;
    }
    let (a, c) = if a <= c { (a, c) } else { (c, a) };
    Some(match ((a, centre, c), kind) {
        (("C", "CA", "N"), Glycine) => t(113.1, 2.5),
        (("C", "CA", "N"), Proline) => t(112.1, 2.6),
        (("C", "CA", "N"), _) => t(111.0, 2.7),
        (("CA", "C", "O"), Glycine) => t(120.6, 1.8),
        (("CA", "C", "O"), Proline) => t(120.2, 2.4),
        (("CA", "C", "O"), _) => t(120.1, 2.1),
        (("CB", "CA", "N"), Alanine) => t(110.1, 1.4),
        (("CB", "CA", "N"), BetaBranched) => t(111.5, 1.7),
        (("CB", "CA", "N"), Proline) => t(103.3, 1.2),
        (("CB", "CA", "N"), _) => t(110.6, 1.8),
        (("C", "CA", "CB"), Alanine) => t(110.1, 1.5),
        (("C", "CA", "CB"), BetaBranched) => t(109.1, 2.2),
        (("C", "CA", "CB"), Proline) => t(112.2, 1.4),
        (("C", "CA", "CB"), _) => t(110.4, 2.0),
        _ => return None,
    })
}

/// The peptide bond C(i)–N(i+1) and its three angles; `next` is residue i+1's kind (a proline's
/// N has no hydrogen and its own values), `this` residue i's.
pub(crate) struct PeptideTargets {
    pub c_n: Target,
    pub ca_c_n: Target,
    pub o_c_n: Target,
    pub c_n_ca: Target,
}

pub(crate) fn peptide(this: BackboneKind, next: BackboneKind) -> PeptideTargets {
    use BackboneKind::*;
    let (c_n, ca_c_n, o_c_n) = match (this, next) {
        (_, Proline) => (t(1.341, 0.016), t(117.1, 2.8), t(121.1, 1.9)),
        (Glycine, _) => (t(1.336, 0.023), t(116.2, 2.0), t(123.2, 1.7)),
        _ => (t(1.336, 0.023), t(117.2, 2.2), t(122.7, 1.6)),
    };
    let c_n_ca = match next {
        Proline => t(119.3, 1.5),
        Glycine => t(122.3, 2.1),
        _ => t(121.7, 1.8),
    };
    PeptideTargets {
        c_n,
        ca_c_n,
        o_c_n,
        c_n_ca,
    }
}

pub(crate) type Vec3 = [f64; 3];

pub(crate) fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(crate) fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(crate) fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub(crate) fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

pub(crate) fn unit(a: Vec3) -> Vec3 {
    let n = norm(a).max(1e-12);
    a.map(|c| c / n)
}

/// Angle a–b–c in degrees.
pub(crate) fn angle_deg(a: Vec3, b: Vec3, c: Vec3) -> f64 {
    let (u, v) = (sub(a, b), sub(c, b));
    (dot(u, v) / (norm(u) * norm(v)).max(1e-12))
        .clamp(-1.0, 1.0)
        .acos()
        .to_degrees()
}

/// Dihedral a–b–c–d in degrees, (−180, 180], IUPAC sign (as gemmi's `calculate_dihedral`).
pub(crate) fn dihedral_deg(a: Vec3, b: Vec3, c: Vec3, d: Vec3) -> f64 {
    let (b0, b1, b2) = (sub(b, a), sub(c, b), sub(d, c));
    let n1 = cross(b0, b1);
    let n2 = cross(b1, b2);
    dot(unit(b1), cross(n1, n2)).atan2(dot(n1, n2)).to_degrees()
}

/// Where Cβ would be with ideal geometry: at the Engh & Huber CA–CB distance, making the ideal
/// N–CA–CB and C–CA–CB angles with the model's own N and C, on the L-amino-acid side of the
/// N–CA–C plane.
pub(crate) fn ideal_cbeta(kind: BackboneKind, n: Vec3, ca: Vec3, c: Vec3) -> Vec3 {
    let length = intra_bond(kind, "CA", "CB").map_or(1.530, |t| t.ideal);
    let cos_n = intra_angle(kind, "N", "CA", "CB")
        .map_or(110.6, |t| t.ideal)
        .to_radians()
        .cos();
    let cos_c = intra_angle(kind, "C", "CA", "CB")
        .map_or(110.4, |t| t.ideal)
        .to_radians()
        .cos();
    let (u_n, u_c) = (unit(sub(n, ca)), unit(sub(c, ca)));
    let cos_nc = dot(u_n, u_c);
    // d = a·u_n + b·u_c + h·(u_n × u_c) with d·u_n = cos_n and d·u_c = cos_c, |d| = 1.
    let det = (1.0 - cos_nc * cos_nc).max(1e-9);
    let a = (cos_n - cos_nc * cos_c) / det;
    let b = (cos_c - cos_nc * cos_n) / det;
    let mut in_plane = [0, 1, 2].map(|k| a * u_n[k] + b * u_c[k]);
    // N, CA and C nearly in a line (a backbone being built, not a refined one) leave no solution;
    // the in-plane part is kept to unit length so Cβ stays a bond's length from CA.
    let norm = dot(in_plane, in_plane).sqrt();
    if norm > 1.0 {
        in_plane = in_plane.map(|v| v / norm);
    }
    let normal = unit(cross(u_n, u_c));
    let h = (1.0 - dot(in_plane, in_plane)).max(0.0).sqrt();
    [0, 1, 2].map(|k| ca[k] + length * (in_plane[k] + h * normal[k]))
}
