//! Atomic models beyond their files (which live in [`crate::formats`]): comparison (matching,
//! superposition, RMSD, TM-score, lDDT) and the elastic network of a structure.

pub mod building;
pub mod compare;
pub mod enm;
pub mod secondary;
pub mod validation;
