//! The map tools as a job: each makes a new map from an open one.

use std::sync::Arc;

use super::JobError;
use crate::maps::DensityMap;
use crate::maps::segment::{ModelMaskOptions, SegmentOptions, mask_for_model, watershed};

/// The map tools, as jobs.
#[derive(Clone, Debug, PartialEq)]
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
    /// The segments that hold a model, widened by the resolution into unassigned voxels, as a
    /// 0/1 mask (the zone a guided fit sees in a map that holds more than the model).
    ModelMask {
        level: f32,
        steps: usize,
        resolution_angstrom: f32,
        /// The model's name and its atom positions (Å).
        model: String,
        positions: Arc<Vec<[f64; 3]>>,
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
            Self::ModelMask { model, .. } => format!("mask for {model}"),
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
        Ok(match self.clone() {
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
            Self::ModelMask {
                level,
                steps,
                resolution_angstrom,
                model,
                positions,
            } => {
                let segment = SegmentOptions {
                    steps,
                    ..SegmentOptions::new(level, &map.grid)
                };
                let options = ModelMaskOptions::new(segment, f64::from(positive(resolution_angstrom, "resolution")?));
                let mask = mask_for_model(map, &positions, &options).map_err(|e| JobError::Input(e.to_string()))?;
                if !mask.values.iter().any(|v| *v > 0.5) {
                    return Err(JobError::Input(format!(
                        "no segment at level {level} holds the atoms of {model}"
                    )));
                }
                mask
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

        // The mask for a "model" on the first blob holds it and not the second.
        let mask_tool = |x: f64| MapTool::ModelMask {
            level: 0.01,
            steps: 2,
            resolution_angstrom: 4.0,
            model: "blob".into(),
            positions: Arc::new(vec![[x, 0.0, 0.0]]),
        };
        let mask = mask_tool(0.0).apply(&map).expect("mask");
        let at = |p: [f32; 3]| {
            let first = map.grid.first_voxel_angstrom();
            let v: [usize; 3] =
                std::array::from_fn(|a| ((p[a] - first[a]) / map.grid.voxel_size_angstrom[a]).round() as usize);
            mask.values[map.grid.index(v[0], v[1], v[2])]
        };
        assert_eq!(at([0.0; 3]), 1.0);
        assert_eq!(at([20.0, 0.0, 0.0]), 0.0);
        let far = mask_tool(500.0).apply(&map);
        assert!(
            matches!(far, Err(JobError::Input(ref m)) if m.contains("blob")),
            "{far:?}"
        );
    }
}
