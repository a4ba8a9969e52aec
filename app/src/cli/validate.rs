//! `cryoforge validate`: a model's geometry against MolProbity-style criteria (Ramachandran,
//! heavy-atom clashscore, bond and angle RMSZ, Cβ deviations), as text or JSON.

use std::path::Path;

use anyhow::bail;
use cryoforge_compute::models::validation::validate;

pub fn validate_cmd(model: &Path, json: bool) -> anyhow::Result<()> {
    let structure = super::science::read_model(model)?;
    let report = validate(&structure, 0);
    if report.residues == 0 {
        bail!(
            "{}: no protein residues (amino acids with N, CA and C atoms) to validate",
            model.display()
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", model.display());
        print!("{}", report.text());
        println!("summary: {}", report.summary_line());
    }
    Ok(())
}
