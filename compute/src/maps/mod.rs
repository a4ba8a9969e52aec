//! Density maps: the grid types every method shares, the model → map density kernel (CPU and
//! its WGSL twin), map–model scores, the map tools that make new maps, and isosurfaces.

pub mod density;
pub mod density_gpu;
pub mod grid;
pub mod isosurface;
pub mod local;
pub mod scores;
pub mod segment;
pub mod tools;

pub use grid::{DensityMap, MapGrid, MapMeta, Statistics};
