//! Density simulation and rigid fitting on adenylate kinase: a model displaced by 8 Å and 25°
//! from its own simulated map returns to it by local fitting, and a global search from a random
//! orientation finds it as the top solution.

use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::geometry::matrix_from_rotvec;
use cryoforge_compute::maps::DensityMap;
use cryoforge_compute::maps::density::{GaussianAtoms, GaussianOptions, molmap_grid, simulate};
use cryoforge_compute::models::compare::{RigidTransform, alpha_carbons, superposed_rmsd};
use cryoforge_compute::rigid_fit::{RigidFitOptions, RigidFitter};
use cryoforge_tests::asset;

/// AdK and its own 5 Å molmap.
fn adk_and_map(resolution: f32) -> (Structure, GaussianAtoms, DensityMap) {
    let s = Structure::read(&asset("models/1ake.pdb")).expect("read");
    let (atoms, _) = GaussianAtoms::from_structure(&s, 0, GaussianOptions::molmap(resolution));
    let grid = molmap_grid(&atoms.positions, resolution);
    let map = DensityMap {
        values: simulate(&grid, &atoms),
        grid,
        meta: Default::default(),
    };
    (s, atoms, map)
}

/// Cα RMSD (no superposition) between the model as placed by `t` and the original.
fn placed_ca_rmsd(s: &Structure, t: &RigidTransform) -> f64 {
    let ca: Vec<[f64; 3]> = alpha_carbons(s, 0).iter().map(|r| r.ca).collect();
    let sum: f64 = ca
        .iter()
        .map(|&p| {
            let q = t.apply(p);
            (0..3).map(|k| (q[k] - p[k]).powi(2)).sum::<f64>()
        })
        .sum();
    (sum / ca.len() as f64).sqrt()
}

/// A rotation of `angle_deg` about a tilted axis through the model's centre plus a shift.
fn displacement(atoms: &GaussianAtoms, angle_deg: f64, shift: [f64; 3]) -> RigidTransform {
    let n = atoms.len() as f64;
    let c: [f64; 3] = std::array::from_fn(|k| atoms.positions.iter().map(|p| f64::from(p[k])).sum::<f64>() / n);
    let axis = [0.48, -0.6, 0.64];
    let norm = axis.iter().map(|v: &f64| v * v).sum::<f64>().sqrt();
    let r = matrix_from_rotvec(axis.map(|v| v / norm * angle_deg.to_radians()));
    let rc = RigidTransform {
        rotation: r,
        translation: [0.0; 3],
    }
    .apply(c);
    RigidTransform {
        rotation: r,
        translation: std::array::from_fn(|k| c[k] - rc[k] + shift[k]),
    }
}

#[test]
fn local_fit_undoes_an_8_angstrom_25_degree_displacement() {
    let (s, atoms, map) = adk_and_map(5.0);
    let start = displacement(&atoms, 25.0, [4.0, -5.6, 4.0]);
    let start_rmsd = placed_ca_rmsd(&s, &start);
    assert!(start_rmsd > 8.0, "displacement is large: {start_rmsd}");
    let fitter = RigidFitter::new(&map, &atoms);
    let result = fitter.fit_local(start, RigidFitOptions::default(), &mut |_, _, _| true);
    let rmsd = placed_ca_rmsd(&s, &result.transform);
    eprintln!(
        "local fit: start {start_rmsd:.2} Å → {rmsd:.3} Å Cα RMSD, cc {:.4}, {} evaluations",
        result.correlation, result.evaluations
    );
    assert!(rmsd < 0.3, "Cα RMSD after fit {rmsd} Å");
    assert!(result.correlation > 0.999);
}

#[test]
fn global_search_finds_the_true_placement_first() {
    let (s, atoms, map) = adk_and_map(5.0);
    // Start from an arbitrary orientation far from the truth.
    let moved = displacement(&atoms, 140.0, [10.0, 0.0, -6.0]);
    let fitter_atoms = RigidFitter::new(&map, &atoms).placed(&moved);
    let fitter = RigidFitter::new(&map, &fitter_atoms);
    let results = fitter.fit_global(24, 11, RigidFitOptions::default(), &|| false);
    let best = results.first().expect("a solution");
    // Compose: original → moved → fitted must be the identity.
    let total = RigidTransform {
        rotation: cryoforge_compute::geometry::mul(&best.transform.rotation, &moved.rotation),
        translation: best.transform.apply(moved.translation),
    };
    let rmsd = placed_ca_rmsd(&s, &total);
    eprintln!(
        "global search: {} distinct solutions; best cc {:.4}, Cα RMSD {rmsd:.3} Å",
        results.len(),
        best.correlation
    );
    assert!(rmsd < 0.3, "top solution is {rmsd} Å from the truth");
    let ca: Vec<[f64; 3]> = alpha_carbons(&s, 0).iter().map(|r| r.ca).collect();
    assert!(superposed_rmsd(&ca, &ca) < 1e-9);
}
