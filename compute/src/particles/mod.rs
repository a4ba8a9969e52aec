//! Particle images: RELION's CTF, the particle simulator, back-projection, the WGSL projection
//! kernel, and the particle data (metadata plus a stack reader) that refinement and
//! heterogeneity analysis train on.

pub mod ctf;
pub mod data;
pub mod projection_gpu;
pub mod reconstruct;
pub mod simulate;
