//! Reconstruction by simple back-projection: each particle image is phase-flipped (its CTF's
//! sign applied in Fourier space), and every voxel of the box accumulates the image value where
//! its projection lands (RELION's A·r, shifted by −origin). Unweighted, so low frequencies are
//! emphasised; enough to check conventions and to give map-based methods their input.

use rayon::prelude::*;
use rustfft::FftPlanner;

use crate::formats::particles::ParticleSet;
use crate::geometry::relion_matrix;
use crate::maps::{DensityMap, MapGrid, MapMeta};
use crate::particles::simulate::apply_ctf;

/// Back-projects `images` (box², x fastest, one per particle of `set`) into a box³ map centred
/// on `centre_angstrom`. `on_progress(done)` is called as particles finish; returning false
/// stops early with what was accumulated.
pub fn back_project(
    set: &ParticleSet,
    images: &[Vec<f32>],
    box_size: usize,
    centre_angstrom: [f32; 3],
    on_progress: &(dyn Fn(usize) -> bool + Sync),
) -> DensityMap {
    let n = box_size;
    let pixel = set.optics.first().map_or(1.0, |o| o.pixel_size_angstrom);
    let half = (n / 2) as f64;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let chunk = (images.len() / rayon::current_num_threads().max(1)).max(1);
    let partials: Vec<Vec<f32>> = set
        .particles
        .par_chunks(chunk)
        .zip(images.par_chunks(chunk))
        .enumerate()
        .map(|(c, (particles, images))| {
            let mut volume = vec![0f32; n * n * n];
            let mut planner = FftPlanner::new();
            for (k, (p, image)) in particles.iter().zip(images).enumerate() {
                if !on_progress(done.load(std::sync::atomic::Ordering::Relaxed)) {
                    break;
                }
                let ctf = set.ctf(c * chunk + k);
                let mut flipped = image.clone();
                apply_ctf(&mut flipped, n, pixel, &ctf, true, &mut planner);
                let a = relion_matrix(p.euler_deg[0], p.euler_deg[1], p.euler_deg[2]);
                let origin = p.shift_angstrom.map(|s| s / pixel);
                for z in 0..n {
                    let rz = z as f64 - half;
                    for y in 0..n {
                        let ry = y as f64 - half;
                        let bx = a[0][1] * ry + a[0][2] * rz + half - origin[0];
                        let by = a[1][1] * ry + a[1][2] * rz + half - origin[1];
                        for x in 0..n {
                            let rx = x as f64 - half;
                            let (u, v) = (a[0][0] * rx + bx, a[1][0] * rx + by);
                            if u < 0.0 || v < 0.0 || u >= (n - 1) as f64 || v >= (n - 1) as f64 {
                                continue;
                            }
                            let (i, j) = (u as usize, v as usize);
                            let (fu, fv) = ((u - i as f64) as f32, (v - j as f64) as f32);
                            let s = flipped[j * n + i] * (1.0 - fu) * (1.0 - fv)
                                + flipped[j * n + i + 1] * fu * (1.0 - fv)
                                + flipped[(j + 1) * n + i] * (1.0 - fu) * fv
                                + flipped[(j + 1) * n + i + 1] * fu * fv;
                            volume[(z * n + y) * n + x] += s;
                        }
                    }
                }
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            volume
        })
        .collect();
    let mut values = vec![0f32; n * n * n];
    for partial in partials {
        for (v, p) in values.iter_mut().zip(partial) {
            *v += p;
        }
    }
    let count = done.load(std::sync::atomic::Ordering::Relaxed).max(1) as f32;
    for v in &mut values {
        *v /= count;
    }
    let first = centre_angstrom.map(|c| c - half as f32 * pixel as f32);
    DensityMap {
        grid: MapGrid::new([n; 3], [pixel as f32; 3], first),
        values,
        meta: MapMeta::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::model::Structure;
    use crate::maps::density::{GaussianAtoms, GaussianOptions, simulate};
    use crate::maps::scores::correlation;
    use crate::maps::tools::{flip_hand, low_pass};
    use crate::particles::simulate::{PoseDistribution, SimulationOptions, project, simulate_particles};

    fn helix_model() -> Structure {
        // An asymmetric, chiral test object: a helix of carbons with a heavy tail.
        let frame = (0..60)
            .map(|i| {
                let t = i as f32 * 0.5;
                [
                    7.0 * t.cos(),
                    7.0 * t.sin(),
                    0.6 * i as f32 - 18.0 + if i > 50 { 4.0 } else { 0.0 },
                ]
            })
            .collect();
        crate::test_shapes::ca_chain("helix", frame, |i| if i > 50 { "S" } else { "C" })
    }

    #[test]
    fn an_identity_view_is_the_z_projection_of_the_3d_density() {
        let model = helix_model();
        let (atoms, _) = GaussianAtoms::from_structure(&model, 0, GaussianOptions::molmap(4.0));
        let n = 48;
        let apix = 1.5f32;
        let centre =
            std::array::from_fn(|k| atoms.positions.iter().map(|p| f64::from(p[k])).sum::<f64>() / atoms.len() as f64);
        let image = project(
            &atoms,
            centre,
            &relion_matrix(0.0, 0.0, 0.0),
            [0.0, 0.0],
            n,
            f64::from(apix),
        );
        let first = centre.map(|c| c as f32 - (n / 2) as f32 * apix);
        let grid = MapGrid::new([n; 3], [apix; 3], first);
        let volume = simulate(&grid, &atoms);
        let mut summed = vec![0f32; n * n];
        for z in 0..n {
            for i in 0..n * n {
                summed[i] += volume[z * n * n + i];
            }
        }
        assert!(correlation(&image, &summed, true, None) > 0.999);
    }

    #[test]
    fn simulate_then_back_project_recovers_the_right_hand_with_shifts_and_ctf() {
        let model = helix_model();
        let options = SimulationOptions {
            count: 400,
            box_size: 40,
            pixel_size_angstrom: 2.0,
            resolution_angstrom: 6.0,
            snr: None,
            defocus_range_angstrom: (8_000.0, 15_000.0),
            poses: PoseDistribution::Uniform,
            max_shift_px: 3.0,
            seed: 3,
            ..SimulationOptions::default()
        };
        let sim = simulate_particles(std::slice::from_ref(&model), &options, "p.mrcs");
        let centre = sim.centres[0].map(|c| c as f32);
        let map = back_project(&sim.particles, &sim.images, options.box_size, centre, &|_| true);
        let (atoms, _) = GaussianAtoms::from_structure(&model, 0, GaussianOptions::molmap(6.0));
        let truth = DensityMap {
            values: simulate(&map.grid, &atoms),
            grid: map.grid.clone(),
            meta: MapMeta::default(),
        };
        // Back-projection overweights low frequencies: compare at low resolution.
        let (a, b) = (low_pass(&map, 12.0), low_pass(&truth, 12.0));
        let right = correlation(&a.values, &b.values, true, None);
        let mirror = correlation(&a.values, &flip_hand(&b).values, true, None);
        assert!(right > 0.8, "correlation with the truth {right}");
        assert!(right > mirror + 0.1, "right hand {right} vs mirror {mirror}");

        // With the shift signs reversed in the metadata the reconstruction gets worse.
        let mut wrong = sim.particles.clone();
        for p in &mut wrong.particles {
            p.shift_angstrom = p.shift_angstrom.map(|s| -s);
        }
        let bad = back_project(&wrong, &sim.images, options.box_size, centre, &|_| true);
        let bad_cc = correlation(&low_pass(&bad, 12.0).values, &b.values, true, None);
        eprintln!("round trip: cc {right:.3} (mirror {mirror:.3}, reversed shifts {bad_cc:.3})");
        assert!(
            right > bad_cc + 0.02,
            "shift convention: right {right} vs flipped shifts {bad_cc}"
        );
    }
}
