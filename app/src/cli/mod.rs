//! The command-line subcommands, one module per family. Long reads and writes show a progress
//! bar on a terminal; every error carries the file it is about (anyhow context).

pub mod build;
pub mod files;
pub mod flex;
pub mod guided;
pub mod guided_states;
pub mod hetero;
pub mod hetero_pretrain;
pub mod map;
pub mod particles;
pub mod render;
pub mod science;
pub mod validate;

pub use files::{convert, info};

/// Writes `value` as pretty JSON to `path`, atomically (a report beside a command's output).
pub fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    cryoforge_compute::io::write_atomically(path, |w| {
        serde_json::to_writer_pretty(w, value).map_err(std::io::Error::other)
    })?;
    Ok(())
}

/// Writes a command's full `report` beside `output` (`NAME_report.json`) and, with `--json`,
/// prints its `summary`. Returns the report's path when the command should still print its
/// human-readable lines (no `--json`).
pub fn write_report(
    output: &std::path::Path,
    report: &serde_json::Value,
    summary: &serde_json::Value,
    json: bool,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let path = guided::beside(output, "_report", "json");
    write_json(&path, report)?;
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
        return Ok(None);
    }
    Ok(Some(path))
}
