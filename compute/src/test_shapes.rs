//! Small synthetic shapes shared by the unit tests.

/// Cα-like points on an ideal α-helix: 100° and 1.5 Å rise per residue, radius 2.3 Å.
pub fn helix(n: usize) -> Vec<[f64; 3]> {
    (0..n)
        .map(|i| {
            let t = i as f64 * 100f64.to_radians();
            [2.3 * t.cos(), 2.3 * t.sin(), 1.5 * i as f64]
        })
        .collect()
}
