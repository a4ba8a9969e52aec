//! Numerical building blocks shared by several methods, each once: the random number
//! generator, 3D FFTs, the symmetric eigensolver, k-means, L-BFGS and squared distances.

pub mod eigen;
pub mod fft;
pub mod kmeans;
pub mod lbfgs;
pub mod rng;
