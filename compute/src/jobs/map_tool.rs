//! The map tools as a job: each makes a new map from an open one.

use super::JobError;
use crate::maps::DensityMap;
use crate::maps::segment::{SegmentOptions, watershed};

/// The map tools, as jobs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MapTool {
    ZScore,
    LowPass {
        resolution_angstrom: f32,
    },
    FlipHand,
    Threshold {
        level: f32,
    },
    Dust {
        level: f32,
        min_volume_angstrom3: f32,
    },
    Crop {
        level: f32,
        padding_angstrom: f32,
    },
    Resample {
        voxel_size_angstrom: f32,
    },
    /// Watershed segmentation with `steps` scale-space grouping steps (Segger's defaults
    /// otherwise, [`SegmentOptions::new`]): a label map, the region's label in each voxel.
    Segment {
        level: f32,
        steps: usize,
    },
}

impl MapTool {
    /// A suffix for the new map's name.
    pub fn label(&self) -> String {
        match self {
            Self::ZScore => "z-score".into(),
            Self::LowPass { resolution_angstrom } => format!("low-pass {resolution_angstrom} Å"),
            Self::FlipHand => "flipped".into(),
            Self::Threshold { level } => format!("threshold {level:.3}"),
            Self::Dust { .. } => "dust removed".into(),
            Self::Crop { .. } => "cropped".into(),
            Self::Resample { voxel_size_angstrom } => format!("{voxel_size_angstrom} Å/voxel"),
            Self::Segment { steps, .. } => format!("segments, {steps} steps"),
        }
    }

    pub fn apply(&self, map: &DensityMap) -> Result<DensityMap, JobError> {
        self.apply_with_progress(map, &mut |_| true)
    }

    /// [`Self::apply`], reporting the fraction done to `progress` (false cancels) for the tools
    /// that take long enough to need it (segmentation); the others report nothing.
    pub fn apply_with_progress(
        &self,
        map: &DensityMap,
        progress: &mut dyn FnMut(f32) -> bool,
    ) -> Result<DensityMap, JobError> {
        use crate::maps::tools as t;
        let positive = |v: f32, what: &str| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(JobError::Input(format!("{what} must be positive")))
            }
        };
        Ok(match *self {
            Self::ZScore => t::z_score(map),
            Self::LowPass { resolution_angstrom } => t::low_pass(map, positive(resolution_angstrom, "resolution")?),
            Self::FlipHand => t::flip_hand(map),
            Self::Threshold { level } => t::threshold(map, level),
            Self::Dust {
                level,
                min_volume_angstrom3,
            } => t::remove_dust(map, level, min_volume_angstrom3).0,
            Self::Crop {
                level,
                padding_angstrom,
            } => t::crop_to_level(map, level, padding_angstrom)
                .ok_or_else(|| JobError::Input("no voxel reaches the level".into()))?,
            Self::Resample { voxel_size_angstrom } => {
                t::resample(map, positive(voxel_size_angstrom, "voxel size")?, None)
            }
            Self::Segment { level, steps } => {
                let options = SegmentOptions {
                    steps,
                    ..SegmentOptions::new(level, &map.grid)
                };
                watershed(map, &options, progress)
                    .map_err(|e| JobError::Input(e.to_string()))?
                    .label_map(map)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::density::{GaussianAtoms, molmap_grid, simulate};

    #[test]
    fn segment_makes_a_label_map_and_cancel_fails_the_job() {
        let atoms = GaussianAtoms {
            positions: vec![[0.0; 3], [20.0, 0.0, 0.0]],
            amplitudes: vec![100.0; 2],
            sigmas: vec![2.0; 2],
        };
        let grid = molmap_grid(&atoms.positions, 4.0);
        let map = DensityMap {
            values: simulate(&grid, &atoms),
            grid,
            meta: Default::default(),
        };
        let tool = MapTool::Segment { level: 0.01, steps: 2 };
        let labels = tool.apply(&map).expect("segment");
        assert_eq!(labels.grid, map.grid);
        let max = labels.values.iter().copied().fold(0.0, f32::max);
        assert_eq!(max, 2.0, "two blobs, two labels");
        assert!(labels.values.iter().all(|v| v.fract() == 0.0));
        let cancelled = tool.apply_with_progress(&map, &mut |f| f < 0.2);
        assert!(matches!(cancelled, Err(JobError::Input(_))));
    }
}
