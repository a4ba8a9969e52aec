use super::*;
use crate::maps::density::simulate;
use crate::maps::{MapGrid, MapMeta};
use crate::test_shapes::{ca_chain, helix};

/// A 30-residue Cα helix whose map blurs the last ten residues by B 120 Å² over a 4 Å blur.
fn blurred_tail() -> (Structure, DensityMap) {
    let frame: Vec<[f32; 3]> = helix(30).iter().map(|p| p.map(|v| v as f32)).collect();
    let structure = ca_chain("helix", frame.clone(), |_| "C");
    let blur = 0.225 * 4.0f64;
    let atoms = GaussianAtoms {
        positions: frame,
        amplitudes: vec![6.0; 30],
        sigmas: (0..30)
            .map(|i| {
                let b = if i >= 20 { 120.0 } else { 15.0 };
                (blur * blur + b / EIGHT_PI2).sqrt() as f32
            })
            .collect(),
    };
    let grid = MapGrid::new([36, 36, 64], [1.0; 3], [-18.0, -18.0, -10.0]);
    // Filtered at the resolution, as a real map is (and as the fit filters the model).
    let map = DensityMap {
        values: simulate(&grid, &atoms),
        grid,
        meta: MapMeta::default(),
    };
    (structure, crate::maps::tools::low_pass(&map, 4.0))
}

#[test]
fn the_blurred_tail_comes_out_flexible_in_every_column_and_in_the_files() {
    let (structure, map) = blurred_tail();
    let mut calls = 0;
    let flex = estimate_flexibility(&map, None, &structure, &FlexOptions::new(4.0), &mut |p| {
        assert!((0.0..=1.0).contains(&p.fraction));
        calls += 1;
        true
    })
    .expect("flexibility");
    assert!(calls > 3);
    assert_eq!(flex.residues.len(), 30);
    let mean = |v: &[f64], r: std::ops::Range<usize>| r.clone().map(|i| v[i]).sum::<f64>() / r.len() as f64;
    let core = mean(&flex.rmsf, 2..18);
    let tail = mean(&flex.rmsf, 21..30);
    assert!(tail > 1.5 * core, "core {core} tail {tail}");
    // B = 120 − 15 = 105 Å² above the core: RMSF √(3·105/8π²) ≈ 2.0 Å more.
    assert!((tail - 2.0).abs() < 0.6, "tail rmsf {tail}");
    assert!(flex.correlation > 0.99 && flex.correlation > flex.correlation_start);
    for name in ["map_b", "gnm", "contact"] {
        assert!(flex.estimator(name).is_some(), "{name}");
    }
    // The helix's ends have fewer contacts than its middle.
    let contact = &flex.estimator("contact").unwrap().rmsf;
    assert!(contact[0] > contact[15] && contact[29] > contact[15]);

    let model = flex.model(&structure);
    let b_tail = model.atoms[25].b_factor;
    assert!((f64::from(b_tail) - output::b_from_rmsf(flex.rmsf[25])).abs() < 1e-3);
    let mut csv = Vec::new();
    flex.write_csv_to(&mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with("chain,residue_number,insertion_code,residue_name,rmsf_angstrom,map_b_rmsf_angstrom"));
    assert_eq!(csv.lines().count(), 31);
    let first: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(&first[..4], &["A", "0", "", "ALA"]);
}

#[test]
fn a_model_outside_the_map_or_without_protein_is_refused_and_cancel_stops() {
    let (mut structure, map) = blurred_tail();
    let mut moved = structure.clone();
    for p in &mut moved.frames[0] {
        p[0] += 200.0;
    }
    let err = estimate_flexibility(&map, None, &moved, &FlexOptions::new(4.0), &mut |_| true).unwrap_err();
    assert!(matches!(err, FlexError::OutsideMap { .. }), "{err}");
    assert!(err.to_string().contains("outside the map"));
    let err = estimate_flexibility(&map, None, &structure, &FlexOptions::new(4.0), &mut |_| false).unwrap_err();
    assert!(matches!(err, FlexError::Cancelled));
    for a in &mut structure.atoms {
        a.name = "O".into();
        a.residue_name = "HOH".into();
    }
    let err = estimate_flexibility(&map, None, &structure, &FlexOptions::new(4.0), &mut |_| true).unwrap_err();
    assert!(matches!(err, FlexError::NoProtein));
}

#[test]
fn half_maps_add_a_local_resolution_column_and_must_share_a_grid() {
    let (structure, map) = blurred_tail();
    let flex = estimate_flexibility(
        &map,
        Some((&map, &map)),
        &structure,
        &FlexOptions::new(4.0),
        &mut |_| true,
    )
    .expect("flexibility");
    let lr = flex.estimator("local_resolution").expect("column");
    assert_eq!(lr.raw.len(), 30);
    assert!(lr.raw.iter().all(|d| d.is_finite() && *d > 0.0));
    let mut other = map.clone();
    other.grid = MapGrid::new([36, 36, 64], [1.1; 3], [-18.0, -18.0, -10.0]);
    let err = estimate_flexibility(
        &map,
        Some((&map, &other)),
        &structure,
        &FlexOptions::new(4.0),
        &mut |_| true,
    )
    .unwrap_err();
    assert!(matches!(err, FlexError::HalfMapGrids(_)), "{err}");
}

#[test]
fn the_learned_column_is_reported_and_is_the_combined_value_only_when_asked() {
    let (structure, map) = blurred_tail();
    let run = |options: &FlexOptions| estimate_flexibility(&map, None, &structure, options, &mut |_| true).unwrap();
    let plain = run(&FlexOptions::new(4.0));
    let map_b = &plain.estimator("map_b").unwrap().rmsf;
    // By default the combined value is the map estimate.
    assert_eq!(&plain.rmsf, map_b);
    if !combiner::bundled_available() {
        assert!(plain.estimator("learned").is_none());
        return;
    }
    let learned = &plain.estimator("learned").expect("learned column").rmsf;
    assert_eq!(learned.len(), 30);
    assert!(learned.iter().all(|v| v.is_finite() && *v > 0.0));
    // The correction keeps the tail flexible.
    let mean = |v: &[f64], r: std::ops::Range<usize>| r.clone().map(|i| v[i]).sum::<f64>() / r.len() as f64;
    assert!(mean(learned, 21..30) > 1.3 * mean(learned, 2..18));
    let asked = run(&FlexOptions {
        combine_learned: true,
        ..FlexOptions::new(4.0)
    });
    assert_eq!(&asked.rmsf, &asked.estimator("learned").unwrap().rmsf);
    assert_eq!(asked.combiner, "the learned combiner");
    let without = run(&FlexOptions {
        learned: false,
        combine_learned: true,
        ..FlexOptions::new(4.0)
    });
    assert!(without.estimator("learned").is_none());
    assert_eq!(&without.rmsf, &without.estimator("map_b").unwrap().rmsf);
}

#[test]
fn density_of_non_protein_atoms_in_the_model_is_not_read_as_protein_flexibility() {
    // A uniform helix (B 30 everywhere) with a ligand of eight atoms against residues 12–17.
    let helix_frame: Vec<[f32; 3]> = helix(30).iter().map(|p| p.map(|v| v as f32)).collect();
    let mut with_ligand = ca_chain("helix", helix_frame.clone(), |_| "C");
    for k in 0..8 {
        let t = (12.0 + k as f32 * 0.7) * 100f32.to_radians();
        let z = 1.5 * (12.0 + k as f32 * 0.7);
        with_ligand.frames[0].push([5.6 * t.cos(), 5.6 * t.sin(), z]);
        with_ligand.atoms.push(crate::formats::model::Atom {
            name: format!("C{k}"),
            residue_name: "LIG".into(),
            chain_id: "B".into(),
            residue_number: 1,
            hetero: true,
            ..crate::test_shapes::ca_atom(1, "C")
        });
    }
    let blur = 0.225 * 4.0f64;
    let n = with_ligand.atoms.len();
    let atoms = GaussianAtoms {
        positions: with_ligand.frames[0].clone(),
        amplitudes: vec![6.0; n],
        sigmas: vec![(blur * blur + 30.0 / EIGHT_PI2).sqrt() as f32; n],
    };
    let grid = MapGrid::new([40, 40, 64], [1.0; 3], [-20.0, -20.0, -10.0]);
    let map = DensityMap {
        values: simulate(&grid, &atoms),
        grid,
        meta: MapMeta::default(),
    };
    let map = crate::maps::tools::low_pass(&map, 4.0);
    let protein_only = ca_chain("helix", helix_frame, |_| "C");
    let bias = |structure: &Structure| {
        let flex = estimate_flexibility(&map, None, structure, &FlexOptions::new(4.0), &mut |_| true).unwrap();
        assert_eq!(flex.residues.len(), 30);
        let mean = |r: std::ops::Range<usize>| r.clone().map(|i| flex.rmsf[i]).sum::<f64>() / r.len() as f64;
        let core = (mean(3..9) + mean(21..27)) / 2.0;
        (mean(12..18) - core).abs()
    };
    let (with, without) = (bias(&with_ligand), bias(&protein_only));
    // Without the ligand in the model its density bends the residues it touches.
    assert!(without > 0.15, "bias without the ligand {without}");
    assert!(with < 0.3 * without, "bias with the ligand {with}, without {without}");
}
