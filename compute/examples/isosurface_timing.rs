//! How long an isosurface of a 256³ map takes (the threshold slider's budget), next to the cost
//! of one pass over the same voxels (a peer measured in the same run: the floor any method pays).
//!
//!     cargo run --release -p cryoforge-compute --example isosurface_timing

use std::time::Instant;

use cryoforge_compute::maps::isosurface::surface_nets;
use cryoforge_compute::maps::scores::level_enclosing_fraction;
use cryoforge_compute::maps::{DensityMap, MapGrid};

fn main() {
    let n = 256;
    let grid = MapGrid::new([n; 3], [1.0; 3], [0.0; 3]);
    // A bumpy blob: a sum of a few hundred Gaussians, like a large complex at low resolution.
    let mut rng = cryoforge_compute::numeric::rng::Rng::new(3);
    let mut rand = || rng.uniform() as f32;
    let centers: Vec<[f32; 3]> = (0..400)
        .map(|_| [60.0 + 136.0 * rand(), 60.0 + 136.0 * rand(), 60.0 + 136.0 * rand()])
        .collect();
    let atoms = cryoforge_compute::maps::density::GaussianAtoms {
        amplitudes: vec![1.0; centers.len()],
        sigmas: vec![6.0; centers.len()],
        positions: centers,
    };
    let values = cryoforge_compute::maps::density::simulate(&grid, &atoms);
    let map = DensityMap {
        grid,
        values,
        meta: Default::default(),
    };
    let level = level_enclosing_fraction(&map.values, 0.05);
    let start = Instant::now();
    let sum: f64 = map.values.iter().map(|&v| f64::from(v)).sum();
    let pass = start.elapsed().as_secs_f64();
    let mut times = Vec::new();
    for factor in [1.0, 0.8, 1.2] {
        let start = Instant::now();
        let mesh = surface_nets(&map, level * factor);
        times.push(start.elapsed().as_secs_f64());
        println!(
            "level {:.5}: {} triangles in {:.3} s",
            level * factor,
            mesh.triangles.len(),
            times.last().copied().unwrap_or(0.0)
        );
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "256³ surface nets: best {best:.3} s; one pass over the voxels {pass:.4} s (ratio {:.0}×; checksum {sum:.1})",
        best / pass
    );
}
