//! From a segmentation to maps: the label map, a 1/0 mask of chosen regions, and the mask of the
//! regions that hold a model (for guidance that should see one molecule of a crowded box).

use super::{SegmentError, SegmentOptions, Segmentation, watershed};
use crate::maps::{DensityMap, MapGrid, MapMeta};

/// How [`mask_for_model`] picks and widens the model's regions.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelMaskOptions {
    pub segment: SegmentOptions,
    /// A region is the model's when it holds at least this fraction of the model's atoms…
    pub min_atom_fraction: f64,
    /// …and at least this share of its voxels lies within `dilate_angstrom` of them. Without the
    /// second rule a neighbour whose region took in a piece of the model (a domain at the
    /// interface) would join the mask whole; with it the mask leaves that piece out, so it errs
    /// towards missing density of the model rather than taking in a neighbour's.
    pub min_region_share: f64,
    /// The mask reaches this far (Å) past the regions, into unassigned voxels only.
    pub dilate_angstrom: f64,
}

impl ModelMaskOptions {
    /// Regions holding ≥ 5 % of the atoms and lying ≥ half within `resolution_angstrom` of them,
    /// widened by `resolution_angstrom`.
    pub fn new(segment: SegmentOptions, resolution_angstrom: f64) -> Self {
        Self {
            segment,
            min_atom_fraction: 0.05,
            min_region_share: 0.5,
            dilate_angstrom: resolution_angstrom,
        }
    }
}

/// The six face neighbours.
const FACES: [[isize; 3]; 6] = [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]];

/// Offsets (voxels) of the ball of `radius_angstrom` on a grid of spacing `h`.
fn ball(h: [f64; 3], radius_angstrom: f64) -> Vec<[isize; 3]> {
    let reach: [isize; 3] = std::array::from_fn(|a| (radius_angstrom / h[a]).floor().max(0.0) as isize);
    (-reach[2]..=reach[2])
        .flat_map(|z| (-reach[1]..=reach[1]).flat_map(move |y| (-reach[0]..=reach[0]).map(move |x| [x, y, z])))
        .filter(|o| (0..3).map(|a| (o[a] as f64 * h[a]).powi(2)).sum::<f64>() <= radius_angstrom.powi(2))
        .collect()
}

/// Calls `f` with every voxel of the ball `offsets` around voxel `p` that is inside `dims`.
fn for_each_in_ball(dims: [usize; 3], p: [isize; 3], offsets: &[[isize; 3]], mut f: impl FnMut(usize)) {
    let [nx, ny, nz] = dims.map(|n| n as isize);
    for o in offsets {
        let q = [p[0] + o[0], p[1] + o[1], p[2] + o[2]];
        if q[0] >= 0 && q[1] >= 0 && q[2] >= 0 && q[0] < nx && q[1] < ny && q[2] < nz {
            f((q[0] + nx * (q[1] + ny * q[2])) as usize);
        }
    }
}

/// The voxel nearest to `p` (Å), if it is inside the grid.
pub(super) fn voxel_at(grid: &MapGrid, p: [f64; 3]) -> Option<usize> {
    let first = grid.first_voxel_angstrom();
    let mut v = [0usize; 3];
    for a in 0..3 {
        let t = ((p[a] - f64::from(first[a])) / f64::from(grid.voxel_size_angstrom[a])).round();
        if !(t >= 0.0 && t < grid.dims[a] as f64) {
            return None;
        }
        v[a] = t as usize;
    }
    Some(grid.index(v[0], v[1], v[2]))
}

impl Segmentation {
    /// The labels as a map on `map`'s grid (the value of a voxel is its region's label).
    pub fn label_map(&self, map: &DensityMap) -> DensityMap {
        let mut meta = map.meta.clone();
        meta.labels
            .push(format!("cryoforge segmentation: {} regions", self.regions.len()));
        DensityMap {
            grid: map.grid.clone(),
            values: self.labels.iter().map(|&l| l as f32).collect(),
            meta,
        }
    }

    /// 1 where the voxel belongs to one of `labels`, 0 elsewhere, on `grid`.
    pub fn mask_of(&self, labels: &[u32], grid: &MapGrid) -> DensityMap {
        let chosen = self.chosen(labels);
        DensityMap {
            grid: grid.clone(),
            values: self
                .labels
                .iter()
                .map(|&l| if chosen[l as usize] { 1.0 } else { 0.0 })
                .collect(),
            meta: MapMeta::default(),
        }
    }

    /// Regions ranked by how many of `positions` (Å) fall in them, most first; positions outside
    /// the grid or in no region are not counted.
    pub fn region_holding(&self, positions: &[[f64; 3]], grid: &MapGrid) -> Vec<(u32, usize)> {
        let mut counts = vec![0usize; self.regions.len() + 1];
        for &p in positions {
            if let Some(i) = voxel_at(grid, p) {
                counts[self.labels[i] as usize] += 1;
            }
        }
        let mut ranked: Vec<(u32, usize)> = (1..counts.len())
            .filter(|&l| counts[l] > 0)
            .map(|l| (l as u32, counts[l]))
            .collect();
        ranked.sort_by_key(|&(l, n)| (std::cmp::Reverse(n), l));
        ranked
    }

    /// The labels of the model's regions (the rules of [`ModelMaskOptions`]); if no region
    /// passes both, the region holding most atoms.
    pub fn regions_of_model(&self, positions: &[[f64; 3]], grid: &MapGrid, options: &ModelMaskOptions) -> Vec<u32> {
        let ranked = self.region_holding(positions, grid);
        let needed = (options.min_atom_fraction * positions.len() as f64).max(1.0);
        let mut near = vec![false; self.labels.len()];
        let offsets = ball(grid.voxel_size_angstrom.map(f64::from), options.dilate_angstrom);
        let [nx, ny, _] = grid.dims;
        for &p in positions {
            if let Some(i) = voxel_at(grid, p) {
                let v = [i % nx, (i / nx) % ny, i / (nx * ny)].map(|c| c as isize);
                for_each_in_ball(grid.dims, v, &offsets, |j| near[j] = true);
            }
        }
        let mut near_voxels = vec![0usize; self.regions.len() + 1];
        for (&l, &n) in self.labels.iter().zip(&near) {
            near_voxels[l as usize] += usize::from(n);
        }
        let chosen: Vec<u32> = ranked
            .iter()
            .filter(|&&(l, n)| {
                let share = near_voxels[l as usize] as f64 / self.regions[l as usize - 1].voxels as f64;
                n as f64 >= needed && share >= options.min_region_share
            })
            .map(|&(l, _)| l)
            .collect();
        if chosen.is_empty() {
            ranked.first().map(|&(l, _)| vec![l]).unwrap_or_default()
        } else {
            chosen
        }
    }

    /// The mask of `labels` widened by `dilate_angstrom` into voxels no region holds: the
    /// solvent around the chosen density is in, a neighbour's density is not, so guidance that
    /// sees the mask is not pulled into the neighbour.
    pub fn dilated_mask(&self, labels: &[u32], grid: &MapGrid, dilate_angstrom: f64) -> DensityMap {
        let chosen = self.chosen(labels);
        let mut mask = self.mask_of(labels, grid);
        let offsets = ball(grid.voxel_size_angstrom.map(f64::from), dilate_angstrom);
        if offsets.len() <= 1 {
            return mask;
        }
        let [nx, ny, _] = grid.dims.map(|n| n as isize);
        let inside = |l: u32| chosen[l as usize];
        for (i, &l) in self.labels.iter().enumerate() {
            if !inside(l) {
                continue;
            }
            let p = [i as isize % nx, (i as isize / nx) % ny, i as isize / (nx * ny)];
            let mut on_surface = false;
            for_each_in_ball(grid.dims, p, &FACES, |j| on_surface |= !inside(self.labels[j]));
            if !on_surface {
                continue;
            }
            for_each_in_ball(grid.dims, p, &offsets, |j| {
                if self.labels[j] == 0 {
                    mask.values[j] = 1.0;
                }
            });
        }
        mask
    }

    /// Which labels (indexed by label) are among `labels`.
    fn chosen(&self, labels: &[u32]) -> Vec<bool> {
        let mut chosen = vec![false; self.regions.len() + 1];
        for &l in labels {
            if let Some(c) = chosen.get_mut(l as usize)
                && l != 0
            {
                *c = true;
            }
        }
        chosen
    }
}

/// Segments `map` and returns the mask of the regions holding the model's atoms at `positions`
/// (Å), widened as [`ModelMaskOptions`] says: the `--mask` of a guided fit into a box that holds
/// more than the model. No progress or cancel: a mask is a quick step before a long job.
pub fn mask_for_model(
    map: &DensityMap,
    positions: &[[f64; 3]],
    options: &ModelMaskOptions,
) -> Result<DensityMap, SegmentError> {
    let segmentation = watershed(map, &options.segment, &mut |_| true)?;
    let labels = segmentation.regions_of_model(positions, &map.grid, options);
    Ok(segmentation.dilated_mask(&labels, &map.grid, options.dilate_angstrom))
}
