//! Map segmentation, as ChimeraX's Segger does it: cut a map whose box holds more than one
//! molecule (neighbouring subunits, a micelle) into regions, so that the density of one molecule
//! can be cut out or masked.
//!
//! [`watershed`] smooths the map a little, seeds a region at every local maximum above the
//! level and floods downhill from the seeds in order of density, so each voxel above the level
//! joins the basin it drains into; voxels below the level stay unassigned (label 0). Watershed
//! of a real map gives far more basins than molecules, so the basins are then grouped by scale
//! space: the map is smoothed more at each step and every group climbs from its peak to the
//! maximum it reaches in the smoother map; groups that land in the same group merge. Groups
//! smaller than a minimum volume finally merge into the neighbour they touch most.
//! [`connected_regions`] is the plain alternative: connected components above the level.
//!
//! Labels are renumbered by volume, largest first, so label 1 is the biggest region.

mod mask;
#[cfg(test)]
mod tests;

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use crate::maps::tools::gaussian_blur;
use crate::maps::{DensityMap, MapGrid};

pub use mask::{ModelMaskOptions, mask_for_model};

/// Grouping steps when none are asked for: the middle of the range where two touching copies of a
/// protein are two regions. Measured on gemmi's 6 Å map of two AdK copies 4 Å apart at SNR 1
/// (1.92 Å voxels, `scripts/segment/two_copies.py`, level enclosing both copies' volume):
/// regions per scale 140, 29, 6, 3, 2 (steps 0–4), still 2 at 8 steps, 1 at 12; copy A's mask
/// holds 0 % of its atoms at 0 steps (no basin holds 5 % of them), 95.7 % at 2, 99.9 % from 3 to 8
/// steps with 0 % of copy B's. With the copies 6 Å apart, or another noise seed, two regions from
/// 3 steps on. EMD-5170 at its 1 % level: 87, 61, 54, 52, 48 regions at 0–4 steps.
pub const DEFAULT_STEPS: usize = 4;

/// Which voxels touch: faces only (6 neighbours) or faces, edges and corners (26).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Connectivity {
    #[default]
    Faces,
    All,
}

impl Connectivity {
    /// Neighbour offsets (dx, dy, dz).
    fn offsets(self) -> Vec<[isize; 3]> {
        let mut out = Vec::with_capacity(26);
        for dz in -1isize..=1 {
            for dy in -1isize..=1 {
                for dx in -1isize..=1 {
                    let taxicab = dx.abs() + dy.abs() + dz.abs();
                    if taxicab == 1 || (self == Self::All && taxicab > 1) {
                        out.push([dx, dy, dz]);
                    }
                }
            }
        }
        out
    }
}

/// How [`watershed`] segments a map.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SegmentOptions {
    /// Voxels whose (first-smoothed) density is below this stay unassigned.
    pub level: f32,
    /// σ of the smoothing before the watershed (Å); 0 for none. Smoothing first keeps noise
    /// from seeding a basin in every voxel.
    pub smoothing_angstrom: f64,
    /// σ added at each grouping step (Å).
    pub step_angstrom: f64,
    /// Grouping steps (0: the plain watershed).
    pub steps: usize,
    /// Stop grouping once this many regions or fewer remain.
    pub target_regions: Option<usize>,
    /// Regions smaller than this merge into the neighbour they touch most (0: none).
    pub min_volume_angstrom3: f64,
    pub connectivity: Connectivity,
}

impl SegmentOptions {
    /// Segger-like defaults for a map on `grid`: smoothing and steps of one voxel,
    /// [`DEFAULT_STEPS`] steps, regions of at least 27 voxels (a resolution-sized blob under
    /// molmap's resolution/3 sampling).
    pub fn new(level: f32, grid: &MapGrid) -> Self {
        let voxel = grid.voxel_size_angstrom.iter().copied().fold(f32::INFINITY, f32::min);
        let voxel = if voxel.is_finite() && voxel > 0.0 {
            f64::from(voxel)
        } else {
            1.0
        };
        Self {
            level,
            smoothing_angstrom: voxel,
            step_angstrom: voxel,
            steps: DEFAULT_STEPS,
            target_regions: None,
            min_volume_angstrom3: 27.0 * voxel.powi(3),
            connectivity: Connectivity::Faces,
        }
    }

    fn validate(&self) -> Result<(), SegmentError> {
        let bad = |what, expected, value: f64| Err(SegmentError::Option { what, expected, value });
        if !self.level.is_finite() {
            return bad("level", "a finite number", f64::from(self.level));
        }
        for (what, value) in [
            ("smoothing", self.smoothing_angstrom),
            ("step", self.step_angstrom),
            ("minimum volume", self.min_volume_angstrom3),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(what, "zero or positive", value);
            }
        }
        if self.steps > 0 && self.step_angstrom <= 0.0 {
            return bad("step", "positive when there are steps", self.step_angstrom);
        }
        Ok(())
    }
}

/// Why a segmentation stopped.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("segmentation cancelled")]
    Cancelled,
    #[error("{what} must be {expected}, got {value}")]
    Option {
        what: &'static str,
        expected: &'static str,
        value: f64,
    },
}

/// One region of a segmentation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Region {
    pub label: u32,
    pub voxels: usize,
    pub volume_angstrom3: f64,
    /// The largest value of the (unsmoothed) map in the region.
    pub max_value: f32,
    /// Mean position of the region's voxels.
    pub centroid_angstrom: [f64; 3],
}

/// Region count after one scale of the grouping.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ScaleStep {
    pub smoothing_angstrom: f64,
    pub regions: usize,
}

/// A map cut into regions: a label per voxel (0 = none; x fastest, as the map) and the regions,
/// largest first (label 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Segmentation {
    pub labels: Vec<u32>,
    pub regions: Vec<Region>,
    /// How many regions there were at each scale (watershed first); empty for
    /// [`connected_regions`].
    pub scales: Vec<ScaleStep>,
}

/// Calls `f` with the index of every neighbour of voxel `i` inside a box of `dims`.
fn for_each_neighbour(dims: [usize; 3], i: usize, offsets: &[[isize; 3]], mut f: impl FnMut(usize)) {
    let [nx, ny, nz] = dims;
    let p = [(i % nx) as isize, ((i / nx) % ny) as isize, (i / (nx * ny)) as isize];
    for o in offsets {
        let q = [p[0] + o[0], p[1] + o[1], p[2] + o[2]];
        if q[0] >= 0 && q[1] >= 0 && q[2] >= 0 && (q[0] as usize) < nx && (q[1] as usize) < ny && (q[2] as usize) < nz {
            f(q[0] as usize + nx * (q[1] as usize + ny * q[2] as usize));
        }
    }
}

/// Labels (1, 2, …, in scan order; 0 outside) of the connected components of the voxels for which
/// `inside` holds, and each label's size (index 0 unused).
pub fn label_components(
    dims: [usize; 3],
    inside: impl Fn(usize) -> bool,
    connectivity: Connectivity,
) -> (Vec<u32>, Vec<usize>) {
    let offsets = connectivity.offsets();
    let count = dims.iter().product();
    let mut labels = vec![0u32; count];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..count {
        if labels[start] != 0 || !inside(start) {
            continue;
        }
        let label = sizes.len() as u32;
        sizes.push(0);
        labels[start] = label;
        stack.push(start);
        while let Some(i) = stack.pop() {
            sizes[label as usize] += 1;
            for_each_neighbour(dims, i, &offsets, |j| {
                if labels[j] == 0 && inside(j) {
                    labels[j] = label;
                    stack.push(j);
                }
            });
        }
    }
    (labels, sizes)
}

/// The connected components of the voxels at or above `level`, as regions.
pub fn connected_regions(map: &DensityMap, level: f32, connectivity: Connectivity) -> Segmentation {
    let (labels, sizes) = label_components(map.grid.dims, |i| map.values[i] >= level, connectivity);
    Segmentation::from_labels(map, labels, sizes.len() - 1, Vec::new())
}

/// A voxel in the flooding queue: highest density first, then first queued.
struct Queued {
    value: f32,
    order: Reverse<u64>,
    index: usize,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.total_cmp(&other.value).then(self.order.cmp(&other.order))
    }
}

/// Watershed of `map` above `options.level`, then scale-space grouping and the merge of small
/// regions (see the module notes). `progress` gets the fraction done and returns false to
/// cancel, which ends the call with [`SegmentError::Cancelled`] within one phase's slice.
pub fn watershed(
    map: &DensityMap,
    options: &SegmentOptions,
    progress: &mut dyn FnMut(f32) -> bool,
) -> Result<Segmentation, SegmentError> {
    options.validate()?;
    let mut report = |fraction: f32| {
        if progress(fraction) {
            Ok(())
        } else {
            Err(SegmentError::Cancelled)
        }
    };
    report(0.0)?;
    let dims = map.grid.dims;
    let smoothed = smooth(map, options.smoothing_angstrom);
    // The domain is the map's own voxels at the level (what its surface encloses), so segmenting
    // at the level a user contours at covers what they see; smoothing only orders the flood (at a
    // high level the smoothed peaks can fall below it and leave nothing to segment).
    let domain: Vec<bool> = map.values.iter().map(|&v| v >= options.level).collect();
    report(0.1)?;
    let offsets = options.connectivity.offsets();
    let seeds = local_maxima(dims, &smoothed, &domain, &offsets);
    let labels = flood(dims, &smoothed, &domain, &seeds, &offsets, &mut |f| {
        report(0.1 + 0.4 * f)
    })?;
    let mut groups = Groups::new(&labels, seeds.len());
    let mut scales = vec![ScaleStep {
        smoothing_angstrom: options.smoothing_angstrom,
        regions: groups.count(),
    }];
    for step in 1..=options.steps {
        if options.target_regions.is_some_and(|t| groups.count() <= t) {
            break;
        }
        let sigma = options.smoothing_angstrom + step as f64 * options.step_angstrom;
        let coarse = gaussian_blur(map, sigma);
        group_by_ascent(dims, &coarse, &domain, &labels, &offsets, &mut groups);
        scales.push(ScaleStep {
            smoothing_angstrom: sigma,
            regions: groups.count(),
        });
        report(0.5 + 0.4 * step as f32 / options.steps as f32)?;
    }
    let voxel_volume: f64 = map.grid.voxel_size_angstrom.iter().map(|&h| f64::from(h)).product();
    let min_voxels = (options.min_volume_angstrom3 / voxel_volume).ceil() as usize;
    merge_small(dims, &labels, &mut groups, min_voxels);
    report(0.95)?;
    let roots = groups.roots();
    let merged: Vec<u32> = labels.iter().map(|&l| roots[l as usize]).collect();
    let segmentation = Segmentation::from_labels(map, merged, seeds.len(), scales);
    report(1.0)?;
    Ok(segmentation)
}

/// The map's values smoothed by a Gaussian of σ `sigma_angstrom` (none at 0).
fn smooth(map: &DensityMap, sigma_angstrom: f64) -> Vec<f32> {
    if sigma_angstrom > 0.0 {
        gaussian_blur(map, sigma_angstrom)
    } else {
        map.values.clone()
    }
}

/// Voxels of `domain` at least as high as every neighbour in it; of a plateau's voxels only those
/// with no equal neighbour earlier in scan order.
fn local_maxima(dims: [usize; 3], values: &[f32], domain: &[bool], offsets: &[[isize; 3]]) -> Vec<usize> {
    use rayon::prelude::*;
    (0..values.len())
        .into_par_iter()
        .filter(|&i| {
            if !domain[i] {
                return false;
            }
            let mut peak = true;
            for_each_neighbour(dims, i, offsets, |j| {
                if domain[j] && (values[j] > values[i] || (values[j] == values[i] && j < i)) {
                    peak = false;
                }
            });
            peak
        })
        .collect()
}

/// Priority flood from `seeds` (labels 1..) over `domain`, highest value first: each voxel joins
/// the region that reaches it first.
fn flood(
    dims: [usize; 3],
    values: &[f32],
    domain: &[bool],
    seeds: &[usize],
    offsets: &[[isize; 3]],
    report: &mut dyn FnMut(f32) -> Result<(), SegmentError>,
) -> Result<Vec<u32>, SegmentError> {
    let mut labels = vec![0u32; values.len()];
    let total = domain.iter().filter(|&&d| d).count().max(1);
    let mut heap = BinaryHeap::with_capacity(seeds.len());
    let mut order = 0u64;
    for (k, &s) in seeds.iter().enumerate() {
        labels[s] = k as u32 + 1;
        heap.push(Queued {
            value: values[s],
            order: Reverse(order),
            index: s,
        });
        order += 1;
    }
    let mut done = 0usize;
    while let Some(Queued { index: i, .. }) = heap.pop() {
        done += 1;
        if done.is_multiple_of(1 << 16) {
            report(done as f32 / total as f32)?;
        }
        let label = labels[i];
        for_each_neighbour(dims, i, offsets, |j| {
            if domain[j] && labels[j] == 0 {
                labels[j] = label;
                heap.push(Queued {
                    value: values[j],
                    order: Reverse(order),
                    index: j,
                });
                order += 1;
            }
        });
    }
    report(1.0)?;
    Ok(labels)
}

/// Watershed basins grouped by union–find, with each group's voxel count.
struct Groups {
    parent: Vec<u32>,
    size: Vec<usize>,
}

impl Groups {
    fn new(labels: &[u32], count: usize) -> Self {
        let mut size = vec![0usize; count + 1];
        for &l in labels {
            size[l as usize] += 1;
        }
        Self {
            parent: (0..=count as u32).collect(),
            size,
        }
    }

    fn find(&mut self, mut a: u32) -> u32 {
        while self.parent[a as usize] != a {
            let grandparent = self.parent[self.parent[a as usize] as usize];
            self.parent[a as usize] = grandparent;
            a = grandparent;
        }
        a
    }

    fn union(&mut self, a: u32, b: u32) {
        let (a, b) = (self.find(a), self.find(b));
        if a == b || a == 0 || b == 0 {
            return;
        }
        let (big, small) = if self.size[a as usize] >= self.size[b as usize] {
            (a, b)
        } else {
            (b, a)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
    }

    /// The group of every basin label (0 stays 0).
    fn roots(&mut self) -> Vec<u32> {
        (0..self.parent.len() as u32).map(|l| self.find(l)).collect()
    }

    fn count(&mut self) -> usize {
        (1..self.parent.len() as u32).filter(|&l| self.find(l) == l).count()
    }
}

/// One scale of the grouping: each group climbs from its highest voxel in `coarse` to the local
/// maximum it reaches, staying in `domain`, and joins the group that holds that maximum.
fn group_by_ascent(
    dims: [usize; 3],
    coarse: &[f32],
    domain: &[bool],
    labels: &[u32],
    offsets: &[[isize; 3]],
    groups: &mut Groups,
) {
    let roots = groups.roots();
    let mut peak: Vec<Option<usize>> = vec![None; roots.len()];
    for (i, &l) in labels.iter().enumerate() {
        let r = roots[l as usize] as usize;
        if r != 0 && peak[r].is_none_or(|p| coarse[i] > coarse[p]) {
            peak[r] = Some(i);
        }
    }
    let mut joins = Vec::new();
    for (root, start) in peak.iter().enumerate() {
        let Some(mut at) = *start else { continue };
        loop {
            let mut next = at;
            for_each_neighbour(dims, at, offsets, |j| {
                if domain[j] && coarse[j] > coarse[next] {
                    next = j;
                }
            });
            if next == at {
                break;
            }
            at = next;
        }
        let landed = roots[labels[at] as usize];
        if landed as usize != root {
            joins.push((root as u32, landed));
        }
    }
    for (a, b) in joins {
        groups.union(a, b);
    }
}

/// Merges every group smaller than `min_voxels` into the neighbouring group it shares most faces
/// with, until none is left that touches another.
fn merge_small(dims: [usize; 3], labels: &[u32], groups: &mut Groups, min_voxels: usize) {
    let [nx, ny, _] = dims;
    for _pass in 0..64 {
        let roots = groups.roots();
        let small: Vec<bool> = (0..roots.len())
            .map(|l| roots[l] as usize == l && l != 0 && groups.size[l] < min_voxels)
            .collect();
        if !small.iter().any(|&s| s) {
            return;
        }
        let mut contacts: HashMap<(u32, u32), usize> = HashMap::new();
        for (i, &l) in labels.iter().enumerate() {
            let a = roots[l as usize];
            if a == 0 {
                continue;
            }
            let (x, y) = (i % nx, (i / nx) % ny);
            for (ok, j) in [
                (x + 1 < nx, i + 1),
                (y + 1 < ny, i + nx),
                (i + nx * ny < labels.len(), i + nx * ny),
            ] {
                let b = if ok { roots[labels[j] as usize] } else { 0 };
                if b != 0 && b != a && (small[a as usize] || small[b as usize]) {
                    *contacts.entry((a, b)).or_default() += 1;
                    *contacts.entry((b, a)).or_default() += 1;
                }
            }
        }
        let mut best: HashMap<u32, (usize, usize, u32)> = HashMap::new();
        for (&(a, b), &n) in &contacts {
            if small[a as usize] {
                let candidate = (n, groups.size[b as usize], b);
                let entry = best.entry(a).or_insert(candidate);
                if candidate > *entry {
                    *entry = candidate;
                }
            }
        }
        if best.is_empty() {
            return;
        }
        let mut best: Vec<(u32, u32)> = best.into_iter().map(|(a, (_, _, b))| (a, b)).collect();
        best.sort_unstable();
        for (a, b) in best {
            groups.union(a, b);
        }
    }
}

impl Segmentation {
    /// Renumbers `labels` (values 0..=count, 0 = none) by volume, largest first, and measures
    /// the regions.
    fn from_labels(map: &DensityMap, mut labels: Vec<u32>, count: usize, scales: Vec<ScaleStep>) -> Self {
        let [nx, ny, _] = map.grid.dims;
        let mut voxels = vec![0usize; count + 1];
        let mut first = vec![usize::MAX; count + 1];
        for (i, &l) in labels.iter().enumerate() {
            voxels[l as usize] += 1;
            first[l as usize] = first[l as usize].min(i);
        }
        let mut order: Vec<usize> = (1..=count).filter(|&l| voxels[l] > 0).collect();
        order.sort_by_key(|&l| (Reverse(voxels[l]), first[l]));
        let mut renumber = vec![0u32; count + 1];
        for (k, &l) in order.iter().enumerate() {
            renumber[l] = k as u32 + 1;
        }
        let n = order.len();
        let mut sums = vec![[0f64; 3]; n + 1];
        let mut max_value = vec![f32::NEG_INFINITY; n + 1];
        for (i, l) in labels.iter_mut().enumerate() {
            *l = renumber[*l as usize];
            let k = *l as usize;
            // Most voxels of a box are unassigned: skip them before the divisions.
            if k == 0 {
                continue;
            }
            for (a, c) in [i % nx, (i / nx) % ny, i / (nx * ny)].into_iter().enumerate() {
                sums[k][a] += c as f64;
            }
            max_value[k] = max_value[k].max(map.values[i]);
        }
        let voxel_volume: f64 = map.grid.voxel_size_angstrom.iter().map(|&h| f64::from(h)).product();
        let origin = map.grid.first_voxel_angstrom();
        let regions = order
            .iter()
            .enumerate()
            .map(|(k, &l)| {
                let label = k + 1;
                let count = voxels[l] as f64;
                Region {
                    label: label as u32,
                    voxels: voxels[l],
                    volume_angstrom3: count * voxel_volume,
                    max_value: max_value[label],
                    centroid_angstrom: std::array::from_fn(|a| {
                        f64::from(origin[a]) + sums[label][a] / count * f64::from(map.grid.voxel_size_angstrom[a])
                    }),
                }
            })
            .collect();
        Self {
            labels,
            regions,
            scales,
        }
    }
}
