//! cryoforge's compute layer: every file format the field uses, the science (density, scores,
//! fitting, map tools) and, as the app grows, the jobs that run on the compute thread. Nothing
//! here knows about the UI.

pub mod compare;
pub mod ctf;
pub mod density;
pub mod density_gpu;
pub mod enm;
pub mod error;
pub mod fit;
pub mod formats;
pub mod geometry;
pub mod gpu;
pub mod guided;
pub mod io;
pub mod isosurface;
pub mod jobs;
pub mod maptools;
pub mod particle_sim;
pub mod projection_gpu;
pub mod pointcloud;
pub mod reconstruct;
pub mod refine;
pub mod scores;
pub mod sinkhorn;
pub mod summary;

pub use error::{FormatError, FormatResult};

#[cfg(test)]
mod test_shapes;
