//! cryoforge's compute layer: every file format the field uses, and (as the app grows) the
//! science and the jobs that run on the compute thread. Nothing here knows about the UI.

pub mod error;
pub mod fit;
pub mod formats;
pub mod maptools;
pub mod compare;
pub mod density;
pub mod geometry;
pub mod io;
pub mod scores;
pub mod summary;

pub use error::{FormatError, FormatResult};
