//! Flexibility out: the model with each residue's RMSF as its B-factor (B = 8π²·RMSF²/3, the
//! field's convention), and the per-residue table as CSV.

use std::io::Write;
use std::path::Path;

use super::Flexibility;
use super::bfactor::EIGHT_PI2;
use crate::FormatResult;
use crate::formats::model::Structure;

/// B (Å²) of an isotropic RMSF (Å): 8π²·RMSF²/3.
pub fn b_from_rmsf(rmsf: f64) -> f64 {
    EIGHT_PI2 * rmsf * rmsf / 3.0
}

impl Flexibility {
    /// `structure` with every protein residue's combined RMSF as the B-factor of its atoms
    /// (other atoms keep theirs), named `<name>_flex`.
    pub fn model(&self, structure: &Structure) -> Structure {
        let mut out = structure.clone();
        out.name = format!("{}_flex", structure.name);
        for (residue, rmsf) in self.residues.iter().zip(&self.rmsf) {
            let b = b_from_rmsf(*rmsf) as f32;
            for &i in &residue.atoms {
                out.atoms[i].b_factor = b;
            }
            // Hydrogens of the residue follow it.
            if let (Some(&first), Some(&last)) = (residue.atoms.first(), residue.atoms.last()) {
                for a in &mut out.atoms[first..=last] {
                    if a.is_hydrogen() {
                        a.b_factor = b;
                    }
                }
            }
        }
        out
    }

    /// The table: `chain,residue_number,insertion_code,residue_name,rmsf_angstrom`, then one
    /// column per estimator (its RMSF in Å) and the raw values of each.
    pub fn write_csv_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        write!(w, "chain,residue_number,insertion_code,residue_name,rmsf_angstrom")?;
        for e in &self.estimators {
            write!(w, ",{}_rmsf_angstrom", e.name)?;
        }
        for e in &self.estimators {
            write!(w, ",{}_raw", e.name)?;
        }
        writeln!(w)?;
        for (r, residue) in self.residues.iter().enumerate() {
            write!(
                w,
                "{},{},{},{},{:.4}",
                csv_field(&residue.chain_id),
                residue.residue_number,
                csv_field(&residue.insertion_code),
                csv_field(&residue.residue_name),
                self.rmsf[r]
            )?;
            for e in &self.estimators {
                write!(w, ",{:.4}", e.rmsf[r])?;
            }
            for e in &self.estimators {
                write!(w, ",{:.6e}", e.raw[r])?;
            }
            writeln!(w)?;
        }
        Ok(())
    }

    /// [`Self::write_csv_to`] into `path`, atomically.
    pub fn write_csv(&self, path: &Path) -> FormatResult<()> {
        crate::io::write_atomically(path, |w| self.write_csv_to(w))
    }
}

/// A CSV field, quoted when it holds a comma or a quote.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}
