use super::*;
use crate::maps::density::{GaussianAtoms, molmap_grid, simulate};

/// A map of one blob (a Gaussian of σ `sigma` and amplitude `amplitude`) per centre, on molmap's
/// grid for 3 Å with padding.
fn blobs(centres: &[[f32; 3]], sigma: f32) -> DensityMap {
    let atoms = GaussianAtoms {
        positions: centres.to_vec(),
        amplitudes: vec![100.0; centres.len()],
        sigmas: vec![sigma; centres.len()],
    };
    let grid = molmap_grid(&atoms.positions, 4.0);
    DensityMap {
        values: simulate(&grid, &atoms),
        grid,
        meta: Default::default(),
    }
}

fn peak(map: &DensityMap) -> f32 {
    map.values.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// The label at the voxel nearest `p`.
fn label_at(s: &Segmentation, map: &DensityMap, p: [f64; 3]) -> u32 {
    s.labels[mask::voxel_at(&map.grid, p).expect("inside")]
}

#[test]
fn two_separate_blobs_are_two_regions_either_way() {
    let map = blobs(&[[0.0; 3], [20.0, 0.0, 0.0]], 2.0);
    let level = 0.05 * peak(&map);
    let connected = connected_regions(&map, level, Connectivity::Faces);
    assert_eq!(connected.regions.len(), 2);
    let options = SegmentOptions::new(level, &map.grid);
    let split = watershed(&map, &options, &mut |_| true).expect("watershed");
    assert_eq!(split.regions.len(), 2, "{:?}", split.regions);
    assert_ne!(
        label_at(&split, &map, [0.0; 3]),
        label_at(&split, &map, [20.0, 0.0, 0.0])
    );
    let volumes: f64 = split.regions.iter().map(|r| r.volume_angstrom3).sum();
    let voxel_volume: f64 = map.grid.voxel_size_angstrom.iter().map(|&h| f64::from(h)).product();
    let above = split.labels.iter().filter(|&&l| l != 0).count() as f64;
    assert!((volumes - above * voxel_volume).abs() < 1e-6);
    for r in &split.regions {
        let centre = if r.centroid_angstrom[0] < 10.0 { 0.0 } else { 20.0 };
        assert!((r.centroid_angstrom[0] - centre).abs() < 0.5, "{r:?}");
        assert!(r.max_value > 0.9 * peak(&map));
    }
}

#[test]
fn watershed_cuts_touching_blobs_at_the_saddle() {
    // Blobs of σ 2.5 Å, 9 Å apart: one connected component above 5 % of the peak, with a saddle
    // between the peaks.
    let map = blobs(&[[0.0; 3], [9.0, 0.0, 0.0]], 2.5);
    let level = 0.05 * peak(&map);
    let connected = connected_regions(&map, level, Connectivity::All);
    assert_eq!(connected.regions.len(), 1, "the blobs touch");
    let mut options = SegmentOptions::new(level, &map.grid);
    options.steps = 1;
    let split = watershed(&map, &options, &mut |_| true).expect("watershed");
    assert_eq!(split.regions.len(), 2, "{:?}", split.scales);
    let (a, b) = (
        label_at(&split, &map, [0.0; 3]),
        label_at(&split, &map, [9.0, 0.0, 0.0]),
    );
    assert_ne!(a, b);
    // The cut is the mid-plane: every voxel is on its own blob's side.
    for (i, &l) in split.labels.iter().enumerate() {
        if l == 0 {
            continue;
        }
        let x = map.grid.world_from_voxel([(i % map.grid.dims[0]) as f32, 0.0, 0.0])[0];
        if (x - 4.5).abs() > 1.0 {
            assert_eq!(l, if x < 4.5 { a } else { b }, "voxel at x {x}");
        }
    }
    // Enough smoothing makes one blob of the two, and a target stops the grouping there.
    options.steps = 40;
    let merged = watershed(&map, &options, &mut |_| true).expect("watershed");
    assert_eq!(merged.regions.len(), 1, "{:?}", merged.scales);
    options.target_regions = Some(2);
    let kept = watershed(&map, &options, &mut |_| true).expect("watershed");
    assert_eq!(kept.regions.len(), 2);
}

#[test]
fn small_regions_merge_into_their_neighbour_and_cancel_stops() {
    // A big blob with a small one touching it.
    let atoms = GaussianAtoms {
        positions: vec![[0.0; 3], [6.5, 0.0, 0.0]],
        amplitudes: vec![100.0, 20.0],
        sigmas: vec![2.5, 1.2],
    };
    let grid = molmap_grid(&atoms.positions, 4.0);
    let map = DensityMap {
        values: simulate(&grid, &atoms),
        grid,
        meta: Default::default(),
    };
    let mut options = SegmentOptions::new(0.02 * peak(&map), &map.grid);
    options.steps = 0;
    options.smoothing_angstrom = 0.0;
    options.min_volume_angstrom3 = 0.0;
    let apart = watershed(&map, &options, &mut |_| true).expect("watershed");
    assert_eq!(apart.regions.len(), 2, "two basins without merging");
    options.min_volume_angstrom3 = apart.regions[1].volume_angstrom3 + 1.0;
    let merged = watershed(&map, &options, &mut |_| true).expect("watershed");
    assert_eq!(merged.regions.len(), 1);
    assert_eq!(
        merged.regions[0].voxels,
        apart.regions[0].voxels + apart.regions[1].voxels
    );

    let mut calls = 0;
    let result = watershed(&map, &options, &mut |f| {
        calls += 1;
        f < 0.3
    });
    assert!(matches!(result, Err(SegmentError::Cancelled)), "cancel ends the job");
    assert!(calls >= 2);
    options.level = f32::NAN;
    assert!(matches!(
        watershed(&map, &options, &mut |_| true),
        Err(SegmentError::Option { .. })
    ));
}

#[test]
fn mask_for_model_picks_the_blob_holding_the_atoms() {
    let centres = [[0.0; 3], [9.0, 0.0, 0.0]];
    let map = blobs(&centres, 2.5);
    let level = 0.05 * peak(&map);
    // The model: atoms scattered around the second blob's centre.
    let atoms: Vec<[f64; 3]> = (0..40)
        .map(|k| {
            let t = k as f64 * 0.7;
            [9.0 + 1.5 * t.cos(), 1.5 * t.sin(), 0.1 * k as f64 - 2.0]
        })
        .collect();
    let mut options = ModelMaskOptions::new(SegmentOptions::new(level, &map.grid), 4.0);
    options.segment.steps = 1;
    let mask = mask_for_model(&map, &atoms, &options).expect("mask");
    assert_eq!(mask.grid, map.grid);
    let at = |p| mask.values[mask::voxel_at(&map.grid, p).expect("inside")];
    assert_eq!(at([9.0, 0.0, 0.0]), 1.0);
    assert_eq!(at([0.0, 0.0, 0.0]), 0.0, "the other blob is out");
    assert!(atoms.iter().all(|&p| at(p) == 1.0));
    let segmentation = watershed(&map, &options.segment, &mut |_| true).expect("watershed");
    let ranked = segmentation.region_holding(&atoms, &map.grid);
    assert_eq!(ranked.len(), 1);
    assert_eq!(ranked[0], (label_at(&segmentation, &map, [9.0, 0.0, 0.0]), atoms.len()));
    // Dilation reaches into unassigned voxels beyond the blob, not into the other blob.
    let bare = segmentation.mask_of(&[ranked[0].0], &map.grid);
    let ones = |m: &DensityMap| m.values.iter().filter(|&&v| v == 1.0).count();
    assert!(ones(&mask) > ones(&bare));
    let label_map = segmentation.label_map(&map);
    assert_eq!(label_map.values[0], 0.0);
    assert!(label_map.values.iter().all(|&v| v == 0.0 || v == 1.0 || v == 2.0));
}

#[test]
fn label_components_matches_both_connectivities() {
    // Two voxels touching only at a corner: one component with 26 neighbours, two with 6.
    let dims = [3, 3, 3];
    let inside = |i: usize| i == 0 || i == 13;
    let (_, faces) = label_components(dims, inside, Connectivity::Faces);
    let (_, all) = label_components(dims, inside, Connectivity::All);
    assert_eq!((faces.len() - 1, all.len() - 1), (2, 1));
    assert_eq!(Connectivity::All.offsets().len(), 26);
    assert_eq!(Connectivity::Faces.offsets().len(), 6);
}
