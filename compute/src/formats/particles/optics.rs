//! Optics groups as a particle file gives them, and the values the methods use. RELION 3.1+
//! keeps them in `data_optics`; RELION 3.0 and cryoSPARC repeat them on every particle, so the
//! particles with the same values form one group. Any value may be missing from a file: the
//! summary shows what is there, and [`resolve`] fills the rest (the caller's pixel size, else the
//! file's, else an error; RELION's defaults for voltage, Cs and amplitude contrast).

use std::path::Path;

use super::{OpticsGroup, StarLayout, star_layout};
use crate::formats::cs::CsFile;
use crate::formats::error::{FormatError, FormatResult};
use crate::formats::star::{StarBlock, StarFile, StarTable};

/// What a reader needs that a particle file may not say.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParticleOptions {
    /// Pixel size (Å) of every image, in place of the file's (cryoDRGN's `--Apix`); required for
    /// files that give none, such as RELION 3.0 tables without optics columns.
    pub pixel_size_angstrom: Option<f64>,
}

impl ParticleOptions {
    pub fn with_pixel_size(pixel_size_angstrom: Option<f64>) -> Self {
        Self { pixel_size_angstrom }
    }
}

/// What RELION assumes when a column is absent.
pub const DEFAULT_VOLTAGE_KV: f64 = 300.0;
pub const DEFAULT_SPHERICAL_ABERRATION_MM: f64 = 2.7;
pub const DEFAULT_AMPLITUDE_CONTRAST: f64 = 0.1;

/// Where a STAR file's pixel size is looked for, named in the error when there is none.
pub const STAR_PIXEL_SIZE_SOURCES: &str = "no data_optics, _rlnImagePixelSize, _rlnPixelSize, \
     or _rlnDetectorPixelSize with _rlnMagnification";
/// Where a `.cs` file's pixel size is looked for.
pub const CS_PIXEL_SIZE_SOURCES: &str = "no blob/psize_A or alignments3D/psize_A field";

/// One optics group with the values the file gives (`None`: not in the file).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OpticsValues {
    pub name: String,
    /// `_rlnOpticsGroup` (1-based), or the group's number in order of first appearance.
    pub number: i64,
    pub pixel_size_angstrom: Option<f64>,
    pub voltage_kv: Option<f64>,
    pub spherical_aberration_mm: Option<f64>,
    pub amplitude_contrast: Option<f64>,
    /// Box size in pixels.
    pub image_size: Option<usize>,
    /// Particles in the group.
    pub particles: usize,
}

impl OpticsValues {
    /// Same microscope and images, within the precision the files are written with.
    fn same_values(&self, other: &Self) -> bool {
        let close = |a: Option<f64>, b: Option<f64>, tol: f64| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < tol,
            (None, None) => true,
            _ => false,
        };
        close(self.pixel_size_angstrom, other.pixel_size_angstrom, 1e-4)
            && close(self.voltage_kv, other.voltage_kv, 1e-3)
            && close(self.spherical_aberration_mm, other.spherical_aberration_mm, 1e-4)
            && close(self.amplitude_contrast, other.amplitude_contrast, 1e-5)
            && self.image_size == other.image_size
    }
}

/// A particle table's optics: its groups and each row's group.
#[derive(Clone, Debug, PartialEq)]
pub struct TableOptics {
    pub layout: StarLayout,
    pub groups: Vec<OpticsValues>,
    /// Index into `groups` for each particle row.
    pub group_of_row: Vec<usize>,
}

/// The optics of `table`, the particle table of `star`: `data_optics` when there is one, else
/// the values repeated on each particle.
pub fn star_optics(path: &Path, star: &StarFile, table: &StarTable) -> FormatResult<TableOptics> {
    let layout = star_layout(star);
    let (groups, group_of_row) = match star.block("optics").and_then(StarBlock::table) {
        Some(optics) => optics_table(path, optics, table)?,
        None => per_particle(path, table)?,
    };
    Ok(TableOptics {
        layout,
        groups,
        group_of_row,
    })
}

/// The values the methods use: `options`' pixel size, else the file's, else an error naming
/// `looked_for`; RELION's defaults for anything else missing.
pub fn resolve(
    path: &Path,
    groups: &[OpticsValues],
    options: &ParticleOptions,
    looked_for: &str,
) -> FormatResult<Vec<OpticsGroup>> {
    groups
        .iter()
        .map(|g| {
            let pixel =
                options
                    .pixel_size_angstrom
                    .or(g.pixel_size_angstrom)
                    .ok_or_else(|| FormatError::MissingPixelSize {
                        path: path.to_owned(),
                        looked_for: looked_for.to_owned(),
                    })?;
            if !(pixel.is_finite() && pixel > 0.0) {
                return Err(FormatError::invalid(
                    path,
                    format!("optics group {}: pixel size {pixel} Å is not positive", g.number),
                ));
            }
            Ok(OpticsGroup {
                name: g.name.clone(),
                number: g.number,
                pixel_size_angstrom: pixel,
                voltage_kv: g.voltage_kv.unwrap_or(DEFAULT_VOLTAGE_KV),
                spherical_aberration_mm: g.spherical_aberration_mm.unwrap_or(DEFAULT_SPHERICAL_ABERRATION_MM),
                amplitude_contrast: g.amplitude_contrast.unwrap_or(DEFAULT_AMPLITUDE_CONTRAST),
                image_size: g.image_size,
            })
        })
        .collect()
}

/// Groups rows by their values, numbered in order of first appearance.
fn group_rows(rows: usize, values_of: impl Fn(usize) -> OpticsValues) -> (Vec<OpticsValues>, Vec<usize>) {
    let mut groups: Vec<OpticsValues> = Vec::new();
    let mut group_of_row = Vec::with_capacity(rows);
    for r in 0..rows {
        let values = values_of(r);
        let index = match groups.iter().position(|g| g.same_values(&values)) {
            Some(i) => i,
            None => {
                let number = groups.len() as i64 + 1;
                groups.push(OpticsValues {
                    name: format!("opticsGroup{number}"),
                    number,
                    ..values
                });
                groups.len() - 1
            }
        };
        groups[index].particles += 1;
        group_of_row.push(index);
    }
    (groups, group_of_row)
}

/// RELION 3.1+: `data_optics` rows, and each particle's `_rlnOpticsGroup` among them.
fn optics_table(path: &Path, optics: &StarTable, table: &StarTable) -> FormatResult<(Vec<OpticsValues>, Vec<usize>)> {
    let n = optics.row_count();
    let numbers = optics
        .column_f64(path, "rlnOpticsGroup")?
        .ok_or_else(|| FormatError::invalid(path, "data_optics has no _rlnOpticsGroup column"))?;
    let pixel = match optics.column_f64(path, "rlnImagePixelSize")? {
        Some(v) => Some(v),
        None => optics.column_f64(path, "rlnMicrographPixelSize")?,
    };
    let voltage = optics.column_f64(path, "rlnVoltage")?;
    let cs = optics.column_f64(path, "rlnSphericalAberration")?;
    let ac = optics.column_f64(path, "rlnAmplitudeContrast")?;
    let size = optics.column_f64(path, "rlnImageSize")?;
    let name_col = optics.column_index("rlnOpticsGroupName");
    let at = |v: &Option<Vec<f64>>, i: usize| v.as_ref().map(|v| v[i]);
    let mut groups: Vec<OpticsValues> = (0..n)
        .map(|i| OpticsValues {
            name: name_col.map(|c| optics.cell(i, c).to_owned()).unwrap_or_default(),
            number: numbers[i] as i64,
            pixel_size_angstrom: at(&pixel, i),
            voltage_kv: at(&voltage, i),
            spherical_aberration_mm: at(&cs, i),
            amplitude_contrast: at(&ac, i),
            image_size: at(&size, i).map(|s| s as usize).filter(|&s| s > 0),
            particles: 0,
        })
        .collect();
    let rows = table.row_count();
    let group_numbers = table
        .column_f64(path, "rlnOpticsGroup")?
        .unwrap_or_else(|| vec![numbers.first().copied().unwrap_or(1.0); rows]);
    let group_of_row = group_numbers
        .iter()
        .enumerate()
        .map(|(r, &g)| {
            let index = groups.iter().position(|o| o.number == g as i64).ok_or_else(|| {
                FormatError::invalid(path, format!("row {}: optics group {g} is not in data_optics", r + 1))
            })?;
            groups[index].particles += 1;
            Ok(index)
        })
        .collect::<FormatResult<Vec<usize>>>()?;
    Ok((groups, group_of_row))
}

/// RELION 3.0 (or a table with no `data_optics`): the optics columns of each particle.
fn per_particle(path: &Path, table: &StarTable) -> FormatResult<(Vec<OpticsValues>, Vec<usize>)> {
    let image_pixel = table.column_f64(path, "rlnImagePixelSize")?;
    let pixel = table.column_f64(path, "rlnPixelSize")?;
    let detector = table.column_f64(path, "rlnDetectorPixelSize")?;
    let magnification = table.column_f64(path, "rlnMagnification")?;
    let voltage = table.column_f64(path, "rlnVoltage")?;
    let cs = table.column_f64(path, "rlnSphericalAberration")?;
    let ac = table.column_f64(path, "rlnAmplitudeContrast")?;
    let size = table.column_f64(path, "rlnImageSize")?;
    let at = |v: &Option<Vec<f64>>, r: usize| v.as_ref().map(|v| v[r]);
    Ok(group_rows(table.row_count(), |r| OpticsValues {
        name: String::new(),
        number: 0,
        pixel_size_angstrom: at(&image_pixel, r).or(at(&pixel, r)).or_else(|| {
            // Detector pixel in µm, magnification dimensionless: Å = µm × 10⁴ / magnification.
            Some(at(&detector, r)? * 1e4 / at(&magnification, r)?)
        }),
        voltage_kv: at(&voltage, r),
        spherical_aberration_mm: at(&cs, r),
        amplitude_contrast: at(&ac, r),
        image_size: at(&size, r).map(|s| s as usize).filter(|&s| s > 0),
        particles: 0,
    }))
}

/// cryoSPARC: the optics fields of each record.
pub fn cs_optics(cs: &CsFile) -> (Vec<OpticsValues>, Vec<usize>) {
    let psize = cs
        .column_f64("blob/psize_A", 0)
        .or_else(|| cs.column_f64("alignments3D/psize_A", 0));
    let voltage = cs.column_f64("ctf/accel_kv", 0);
    let cs_mm = cs.column_f64("ctf/cs_mm", 0);
    let ac = cs.column_f64("ctf/amp_contrast", 0);
    let size = cs.column_f64("blob/shape", 0);
    let at = |v: &Option<Vec<f64>>, r: usize| v.as_ref().map(|v| v[r]);
    group_rows(cs.rows, |r| OpticsValues {
        name: String::new(),
        number: 0,
        pixel_size_angstrom: at(&psize, r),
        voltage_kv: at(&voltage, r),
        spherical_aberration_mm: at(&cs_mm, r),
        amplitude_contrast: at(&ac, r),
        image_size: at(&size, r).map(|s| s as usize).filter(|&s| s > 0),
        particles: 0,
    })
}
