//! Segmentation of a map made by another program: gemmi's density of two touching copies of
//! adenylate kinase at 6 Å with noise (`scripts/segment/two_copies.py`, the recipe of
//! `scripts/guided_neighbour.py`). The copies' density is one connected blob above the level,
//! so only the watershed and its grouping can cut copy A out; the mask of the regions holding
//! copy A must hold its atoms and not copy B's. Needs the peer Python (gemmi, numpy, mrcfile);
//! skips without it unless `CRYOFORGE_REQUIRE_PEERS=1`.

use std::path::Path;
use std::process::Command;

use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::maps::DensityMap;
use cryoforge_compute::maps::scores::level_enclosing_volume;
use cryoforge_compute::maps::segment::{
    Connectivity, ModelMaskOptions, SegmentOptions, Segmentation, connected_regions, mask_for_model, watershed,
};

/// Protein volume per dalton (Å³/Da) and mass per residue (Da): the usual estimates.
const ANGSTROM3_PER_DALTON: f32 = 1.21;
const DALTON_PER_RESIDUE: f32 = 110.0;

/// Heavy-atom positions and residue count of a model file.
fn heavy_atoms(path: &Path) -> (Vec<[f64; 3]>, usize) {
    let s = Structure::read(path).expect("read copy");
    let positions = s
        .atoms
        .iter()
        .zip(&s.frames[0])
        .filter(|(a, _)| !a.is_hydrogen())
        .map(|(_, p)| p.map(f64::from))
        .collect();
    (positions, s.atoms.iter().filter(|a| a.is_alpha_carbon()).count())
}

fn fraction_in(mask: &DensityMap, positions: &[[f64; 3]]) -> f64 {
    let first = mask.grid.first_voxel_angstrom();
    let inside = positions
        .iter()
        .filter(|p| {
            let v: [usize; 3] = std::array::from_fn(|a| {
                ((p[a] - f64::from(first[a])) / f64::from(mask.grid.voxel_size_angstrom[a])).round() as usize
            });
            v.iter().zip(mask.grid.dims).all(|(&c, n)| c < n) && mask.values[mask.grid.index(v[0], v[1], v[2])] > 0.5
        })
        .count();
    inside as f64 / positions.len() as f64
}

/// The share of `positions` in the region holding most of them.
fn largest_share(s: &Segmentation, map: &DensityMap, positions: &[[f64; 3]]) -> (u32, f64) {
    let ranked = s.region_holding(positions, &map.grid);
    let (label, n) = ranked.first().copied().unwrap_or((0, 0));
    (label, n as f64 / positions.len() as f64)
}

#[test]
fn watershed_cuts_one_adk_copy_out_of_a_gemmi_map_of_two() {
    let Some(python) = cryoforge_tests::peer_python("numpy, mrcfile, gemmi") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/segment/two_copies.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("run two_copies.py");
    assert!(
        output.status.success(),
        "two_copies.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let made: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let path = |key: &str| made[key].as_str().expect("path").to_owned();
    let map = DensityMap::read(Path::new(&path("map"))).expect("read gemmi map");
    let (a, residues) = heavy_atoms(Path::new(&path("copy_a")));
    let (b, _) = heavy_atoms(Path::new(&path("copy_b")));

    // The level enclosing both copies' molecular volume.
    let volume = 2.0 * residues as f32 * DALTON_PER_RESIDUE * ANGSTROM3_PER_DALTON;
    let level = level_enclosing_volume(&map, volume);
    let connected = connected_regions(&map, level, Connectivity::Faces);
    let (joint_a, share_a) = largest_share(&connected, &map, &a);
    let (joint_b, share_b) = largest_share(&connected, &map, &b);
    assert!(
        joint_a == joint_b && share_a > 0.5 && share_b > 0.5,
        "the copies touch: one connected region holds most of both ({share_a:.2}, {share_b:.2})"
    );

    let options = ModelMaskOptions::new(SegmentOptions::new(level, &map.grid), 6.0);
    let segmentation = watershed(&map, &options.segment, &mut |_| true).expect("watershed");
    let mask = mask_for_model(&map, &a, &options).expect("mask");
    let (in_a, in_b) = (fraction_in(&mask, &a), fraction_in(&mask, &b));
    eprintln!(
        "gemmi map {} at {:.2} Å/voxel, gap {:.1} Å, level {level:.4}: {} regions (per scale {:?}); \
         copy A's mask holds {:.1}% of A's atoms and {:.1}% of B's",
        made["shape"],
        made["voxel_angstrom"].as_f64().unwrap_or(0.0),
        made["gap_angstrom"].as_f64().unwrap_or(0.0),
        segmentation.regions.len(),
        segmentation.scales.iter().map(|s| s.regions).collect::<Vec<_>>(),
        100.0 * in_a,
        100.0 * in_b
    );
    assert!(in_a >= 0.95, "copy A's mask holds {:.1}% of its atoms", 100.0 * in_a);
    assert!(
        in_b <= 0.05,
        "copy A's mask holds {:.1}% of copy B's atoms",
        100.0 * in_b
    );
}
