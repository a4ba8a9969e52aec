//! The `cryoforge` app as a library: the window (`gui`), the command-line subcommands, and the
//! scene building they share. The binary in `main.rs` only parses arguments; tests drive the
//! same code (the UI through egui_kittest).

pub mod cartoon;
pub mod cli;
pub mod gui;
pub mod scatter;
pub mod view;
