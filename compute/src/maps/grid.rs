//! The grid types every map method shares: where voxels sit ([`MapGrid`]), facts about the
//! source file ([`MapMeta`]), and the map itself ([`DensityMap`], values x fastest). Reading and
//! writing them is [`crate::formats::mrc`]'s job.

use crate::formats::mrc::MrcMode;

/// Where a map's voxels sit in space (always x, y, z order).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MapGrid {
    /// Voxels along x, y, z.
    pub dims: [usize; 3],
    pub voxel_size_angstrom: [f32; 3],
    /// The header's ORIGIN words, kept as read.
    pub origin_field_angstrom: [f32; 3],
    /// NXSTART/NYSTART/NZSTART after reordering to x, y, z.
    pub start_voxel: [i32; 3],
    /// MX/MY/MZ: the cell's sampling, kept so the cell and voxel size survive a rewrite.
    pub cell_sampling: [usize; 3],
}

impl MapGrid {
    /// A new grid whose first voxel sits at `first_voxel_angstrom`.
    pub fn new(dims: [usize; 3], voxel_size_angstrom: [f32; 3], first_voxel_angstrom: [f32; 3]) -> Self {
        Self {
            dims,
            voxel_size_angstrom,
            origin_field_angstrom: first_voxel_angstrom,
            start_voxel: [0; 3],
            cell_sampling: dims,
        }
    }

    /// Position of voxel (0, 0, 0) in Å: ORIGIN if non-zero, else NXSTART·voxel.
    pub fn first_voxel_angstrom(&self) -> [f32; 3] {
        if self.origin_field_angstrom.iter().any(|&v| v != 0.0) {
            self.origin_field_angstrom
        } else {
            std::array::from_fn(|i| self.start_voxel[i] as f32 * self.voxel_size_angstrom[i])
        }
    }

    /// Position of voxel (i, j, k) in Å.
    pub fn world_from_voxel(&self, voxel: [f32; 3]) -> [f32; 3] {
        let first = self.first_voxel_angstrom();
        std::array::from_fn(|a| first[a] + voxel[a] * self.voxel_size_angstrom[a])
    }

    pub fn voxel_count(&self) -> usize {
        self.dims.iter().product()
    }

    /// Index into x-fastest data.
    pub fn index(&self, x: usize, y: usize, z: usize) -> usize {
        x + self.dims[0] * (y + self.dims[1] * z)
    }
}

/// Facts about the source file that do not change where voxels are.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MapMeta {
    pub cell_angles_deg: [f32; 3],
    pub space_group: i32,
    pub labels: Vec<String>,
    /// Mode and axis order the map was stored in (informational; writes are float32, 1,2,3).
    pub source_mode: MrcMode,
    pub source_axis_order: [i32; 3],
}

impl Default for MapMeta {
    fn default() -> Self {
        Self {
            cell_angles_deg: [90.0; 3],
            space_group: 1,
            labels: Vec::new(),
            source_mode: MrcMode::Float32,
            source_axis_order: [1, 2, 3],
        }
    }
}

/// A density map: values x fastest, with its grid.
#[derive(Clone, Debug, PartialEq)]
pub struct DensityMap {
    pub grid: MapGrid,
    pub values: Vec<f32>,
    pub meta: MapMeta,
}

/// Summary statistics of a set of values (σ about the mean, as MRC2014's RMS word).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Statistics {
    pub min: f32,
    pub max: f32,
    pub mean: f32,
    pub rms: f32,
}

impl Statistics {
    pub fn of(values: &[f32]) -> Self {
        if values.is_empty() {
            return Self {
                min: 0.0,
                max: 0.0,
                mean: 0.0,
                rms: 0.0,
            };
        }
        let mut min = f32::INFINITY;
        let mut max = f32::NEG_INFINITY;
        let mut sum = 0.0f64;
        for &v in values {
            min = min.min(v);
            max = max.max(v);
            sum += f64::from(v);
        }
        let mean = sum / values.len() as f64;
        let var = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / values.len() as f64;
        Self {
            min,
            max,
            mean: mean as f32,
            rms: var.sqrt() as f32,
        }
    }
}
