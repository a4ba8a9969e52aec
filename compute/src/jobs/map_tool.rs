//! The map tools as a job: each makes a new map from an open one.

use super::JobError;
use crate::maps::DensityMap;

/// The map tools, as jobs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MapTool {
    ZScore,
    LowPass { resolution_angstrom: f32 },
    FlipHand,
    Threshold { level: f32 },
    Dust { level: f32, min_volume_angstrom3: f32 },
    Crop { level: f32, padding_angstrom: f32 },
    Resample { voxel_size_angstrom: f32 },
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
        }
    }

    pub fn apply(&self, map: &DensityMap) -> Result<DensityMap, JobError> {
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
        })
    }
}
