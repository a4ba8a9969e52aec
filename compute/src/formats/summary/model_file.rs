//! The summary of a model file: counts, what the file says about itself (title, method, cell,
//! secondary structure, sequences, modified residues, bonds) and the reader's warnings.

use std::fmt;

use serde::Serialize;

use crate::formats::model::{Structure, StructureCounts, UnitCell};

#[derive(Clone, Debug, Serialize)]
pub struct ModelSummary {
    #[serde(flatten)]
    pub counts: StructureCounts,
    pub title: String,
    pub method: String,
    pub cell: Option<UnitCell>,
    pub helices: usize,
    pub strands: usize,
    /// (chain id, number of residues) of each sequence the file lists (SEQRES, `_entity_poly_seq`).
    pub sequences: Vec<(String, usize)>,
    /// `MSE A 1 (MET)` for each modified residue.
    pub modified_residues: Vec<String>,
    pub connections: usize,
    pub warnings: Vec<String>,
}

pub fn model_summary(structure: &Structure) -> ModelSummary {
    let info = &structure.info;
    ModelSummary {
        counts: structure.counts(),
        title: info.title.clone(),
        method: info.method.clone(),
        cell: info.cell.clone(),
        helices: info.helices.len(),
        strands: info.strands.len(),
        sequences: info
            .sequences
            .iter()
            .map(|s| (s.chain_id.clone(), s.residues.len()))
            .collect(),
        modified_residues: info
            .modified_residues
            .iter()
            .map(|m| {
                format!(
                    "{} {} {}{} ({})",
                    m.residue_name, m.chain_id, m.residue_number, m.insertion_code, m.standard_name
                )
            })
            .collect(),
        connections: info.connections,
        warnings: info.warnings.clone(),
    }
}

impl fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.counts;
        if !self.title.is_empty() {
            writeln!(f, "  title          {}", self.title)?;
        }
        if !self.method.is_empty() {
            writeln!(f, "  method         {}", self.method)?;
        }
        writeln!(f, "  models         {}", m.models)?;
        let chains: Vec<&str> = m
            .chain_ids
            .iter()
            .map(|c| if c.is_empty() { "' '" } else { c.as_str() })
            .collect();
        writeln!(f, "  chains         {} ({})", m.chains, chains.join(" "))?;
        writeln!(f, "  residues       {}", m.residues)?;
        writeln!(f, "  atoms          {} ({} hetero)", m.atoms, m.hetero_atoms)?;
        if m.alternate_atoms > 0 {
            writeln!(
                f,
                "  alt. confs     {} atoms beyond the first conformer (methods use the first)",
                m.alternate_atoms
            )?;
        }
        if let Some(c) = &self.cell {
            writeln!(
                f,
                "  cell           {:.2} {:.2} {:.2} Å, {:.1} {:.1} {:.1}°, {}",
                c.lengths[0], c.lengths[1], c.lengths[2], c.angles[0], c.angles[1], c.angles[2], c.space_group
            )?;
        }
        if self.helices + self.strands > 0 {
            writeln!(f, "  sec. structure {} helices, {} strands", self.helices, self.strands)?;
        }
        if !self.sequences.is_empty() {
            let list: Vec<String> = self.sequences.iter().map(|(c, n)| format!("{c}:{n}")).collect();
            writeln!(f, "  sequences      {}", list.join(" "))?;
        }
        if !self.modified_residues.is_empty() {
            writeln!(f, "  modified       {}", self.modified_residues.join(", "))?;
        }
        if self.connections > 0 {
            writeln!(f, "  bonds listed   {}", self.connections)?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning        {w}")?;
        }
        Ok(())
    }
}
