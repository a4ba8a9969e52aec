//! Particles as the methods see them: image reference, pose, shift and CTF per particle, with
//! optics groups. Read from RELION STAR (3.0: no optics table, shifts in pixels; 3.1+: optics
//! table, shifts in Å) or cryoSPARC `.cs`, and written to either. This is how `convert` turns
//! STAR into `.cs` and back; subsets that must keep every original column use the raw
//! [`StarFile`]/[`CsFile`] row selection instead. Optics groups, and what is done when a file
//! lacks their values, are [`optics`]' job.

pub mod optics;

use std::path::Path;

pub use self::optics::{OpticsValues, ParticleOptions, TableOptics, star_optics};
use crate::formats::cs::{CsBuilder, CsColumn, CsFile};
use crate::formats::error::{ContentError, FormatError, FormatResult};
use crate::formats::stack::ImageRef;
use crate::formats::star::{StarBlock, StarFile, StarTable};
use crate::geometry::{matrix_from_rotvec, relion_angles, relion_matrix, rotvec_from_matrix, transpose};

/// Which RELION layout a STAR file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum StarLayout {
    /// RELION 3.0: optics per particle, shifts in pixels.
    Relion30,
    /// RELION 3.1 and later: `data_optics` table, shifts in Å.
    Relion31,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OpticsGroup {
    pub name: String,
    /// `_rlnOpticsGroup`, 1-based.
    pub number: i64,
    pub pixel_size_angstrom: f64,
    pub voltage_kv: f64,
    pub spherical_aberration_mm: f64,
    pub amplitude_contrast: f64,
    /// Box size in pixels, when known.
    pub image_size: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Particle {
    pub image_index_1based: usize,
    pub image_path: String,
    /// The file is the particle's image (named with no `index@`, one file per particle);
    /// `image_index_1based` is then 1.
    pub image_whole_file: bool,
    /// RELION rot, tilt, psi in degrees.
    pub euler_deg: [f64; 3],
    /// RELION's origin (the shift applied to centre the particle), in Å.
    pub shift_angstrom: [f64; 2],
    pub defocus_u_angstrom: f64,
    pub defocus_v_angstrom: f64,
    pub defocus_angle_deg: f64,
    pub phase_shift_deg: f64,
    /// Index into [`ParticleSet::optics`].
    pub optics: usize,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ParticleSet {
    pub optics: Vec<OpticsGroup>,
    pub particles: Vec<Particle>,
}

impl ParticleSet {
    /// Particle `i`'s CTF (its defocus with its optics group's microscope).
    pub fn ctf(&self, i: usize) -> crate::particles::ctf::CtfParams {
        let p = &self.particles[i];
        let optics = &self.optics[p.optics];
        crate::particles::ctf::CtfParams {
            voltage_kv: optics.voltage_kv,
            spherical_aberration_mm: optics.spherical_aberration_mm,
            amplitude_contrast: optics.amplitude_contrast,
            defocus_u_angstrom: p.defocus_u_angstrom,
            defocus_v_angstrom: p.defocus_v_angstrom,
            defocus_angle_deg: p.defocus_angle_deg,
            phase_shift_deg: p.phase_shift_deg,
            b_factor: 0.0,
        }
    }
}

/// The block holding particles: `data_particles` (3.1+) or the first table with image names.
pub fn particle_block(star: &StarFile) -> Option<&StarBlock> {
    star.block("particles").filter(|b| b.table().is_some()).or_else(|| {
        star.blocks
            .iter()
            .find(|b| b.table().is_some_and(|t| t.column_index("rlnImageName").is_some()))
    })
}

pub fn star_layout(star: &StarFile) -> StarLayout {
    if star.block("optics").is_some_and(|b| b.table().is_some()) {
        StarLayout::Relion31
    } else {
        StarLayout::Relion30
    }
}

impl ParticleSet {
    /// The particles of a STAR file, with the file's own pixel size.
    pub fn from_star(path: &Path, star: &StarFile) -> FormatResult<Self> {
        Self::from_star_with(path, star, &ParticleOptions::default())
    }

    /// The particles of a STAR file; `options` supplies what the file may lack (pixel size).
    pub fn from_star_with(path: &Path, star: &StarFile, options: &ParticleOptions) -> FormatResult<Self> {
        let table = particle_block(star)
            .and_then(StarBlock::table)
            .ok_or_else(|| FormatError::invalid(path, "no particle table (a loop_ with _rlnImageName)"))?;
        let names = table
            .column_index("rlnImageName")
            .ok_or_else(|| FormatError::invalid(path, "the particle table has no _rlnImageName column"))?;
        let rows = table.row_count();
        let num = |name: &str, default: f64| -> FormatResult<Vec<f64>> {
            Ok(table.column_f64(path, name)?.unwrap_or_else(|| vec![default; rows]))
        };
        let table_optics = star_optics(path, star, table)?;
        let optics = optics::resolve(path, &table_optics.groups, options, optics::STAR_PIXEL_SIZE_SOURCES)?;
        let group_of_row = table_optics.group_of_row;
        let shifts_angstrom = star_shifts_angstrom(path, table, &optics, &group_of_row)?;
        let rot = num("rlnAngleRot", 0.0)?;
        let tilt = num("rlnAngleTilt", 0.0)?;
        let psi = num("rlnAnglePsi", 0.0)?;
        let du = num("rlnDefocusU", 0.0)?;
        let dv = table.column_f64(path, "rlnDefocusV")?.unwrap_or_else(|| du.clone());
        let dangle = num("rlnDefocusAngle", 0.0)?;
        let phase = num("rlnPhaseShift", 0.0)?;
        let mut particles = Vec::with_capacity(rows);
        for r in 0..rows {
            let text = table.cell(r, names);
            let image = ImageRef::parse_image_name(text).ok_or_else(|| {
                FormatError::invalid(
                    path,
                    format!("row {}: '{text}' is neither index@stack nor a file name", r + 1),
                )
            })?;
            particles.push(Particle {
                image_index_1based: image.index_1based,
                image_path: image.path,
                image_whole_file: image.whole_file,
                euler_deg: [rot[r], tilt[r], psi[r]],
                shift_angstrom: shifts_angstrom[r],
                defocus_u_angstrom: du[r],
                defocus_v_angstrom: dv[r],
                defocus_angle_deg: dangle[r],
                phase_shift_deg: phase[r],
                optics: group_of_row[r],
            });
        }
        Ok(Self { optics, particles })
    }

    /// The particles of a cryoSPARC `.cs`, with the file's own pixel size.
    pub fn from_cs(path: &Path, cs: &CsFile) -> FormatResult<Self> {
        Self::from_cs_with(path, cs, &ParticleOptions::default())
    }

    /// The particles of a cryoSPARC `.cs`; `options` supplies what the file may lack.
    pub fn from_cs_with(path: &Path, cs: &CsFile, options: &ParticleOptions) -> FormatResult<Self> {
        let rows = cs.rows;
        let paths = cs
            .column_str("blob/path")
            .ok_or_else(|| FormatError::invalid(path, "no blob/path field: not a particle .cs"))?;
        let idx = cs
            .column_f64("blob/idx", 0)
            .ok_or_else(|| FormatError::invalid(path, "no blob/idx field: not a particle .cs"))?;
        let col = |name: &str, element: usize, default: f64| {
            cs.column_f64(name, element).unwrap_or_else(|| vec![default; rows])
        };
        let (groups, group_of_row) = optics::cs_optics(cs);
        let optics = optics::resolve(path, &groups, options, optics::CS_PIXEL_SIZE_SOURCES)?;
        let df1 = col("ctf/df1_A", 0, 0.0);
        let df2 = col("ctf/df2_A", 0, 0.0);
        let dang = col("ctf/df_angle_rad", 0, 0.0);
        let phase = col("ctf/phase_shift_rad", 0, 0.0);
        let pose: [Vec<f64>; 3] = std::array::from_fn(|k| col("alignments3D/pose", k, 0.0));
        let shift: [Vec<f64>; 2] = std::array::from_fn(|k| col("alignments3D/shift", k, 0.0));
        let mut particles = Vec::with_capacity(rows);
        for r in 0..rows {
            let psize = optics[group_of_row[r]].pixel_size_angstrom;
            let relion = transpose(&matrix_from_rotvec([pose[0][r], pose[1][r], pose[2][r]]));
            particles.push(Particle {
                image_index_1based: idx[r] as usize + 1,
                image_path: paths[r].clone(),
                image_whole_file: false,
                euler_deg: relion_angles(&relion),
                shift_angstrom: [shift[0][r] * psize, shift[1][r] * psize],
                defocus_u_angstrom: df1[r],
                defocus_v_angstrom: df2[r],
                defocus_angle_deg: dang[r].to_degrees(),
                phase_shift_deg: phase[r].to_degrees(),
                optics: group_of_row[r],
            });
        }
        Ok(Self { optics, particles })
    }

    /// A RELION 3.1 STAR file (`data_optics` + `data_particles`).
    pub fn to_star(&self) -> StarFile {
        let mut optics = StarTable::new(
            [
                "rlnOpticsGroupName",
                "rlnOpticsGroup",
                "rlnVoltage",
                "rlnSphericalAberration",
                "rlnAmplitudeContrast",
                "rlnImagePixelSize",
                "rlnImageSize",
                "rlnImageDimensionality",
            ]
            .map(String::from)
            .to_vec(),
        );
        for (i, g) in self.optics.iter().enumerate() {
            optics.push_row(vec![
                if g.name.is_empty() {
                    format!("opticsGroup{}", i + 1)
                } else {
                    g.name.clone()
                },
                (i + 1).to_string(),
                fmt(g.voltage_kv),
                fmt(g.spherical_aberration_mm),
                fmt(g.amplitude_contrast),
                fmt(g.pixel_size_angstrom),
                g.image_size.map_or_else(|| "0".to_owned(), |s| s.to_string()),
                "2".to_owned(),
            ]);
        }
        let mut table = StarTable::new(
            [
                "rlnImageName",
                "rlnAngleRot",
                "rlnAngleTilt",
                "rlnAnglePsi",
                "rlnOriginXAngst",
                "rlnOriginYAngst",
                "rlnDefocusU",
                "rlnDefocusV",
                "rlnDefocusAngle",
                "rlnPhaseShift",
                "rlnOpticsGroup",
            ]
            .map(String::from)
            .to_vec(),
        );
        for p in &self.particles {
            table.push_row(vec![
                ImageRef {
                    index_1based: p.image_index_1based,
                    path: p.image_path.clone(),
                    whole_file: p.image_whole_file,
                }
                .to_relion(),
                fmt(p.euler_deg[0]),
                fmt(p.euler_deg[1]),
                fmt(p.euler_deg[2]),
                fmt(p.shift_angstrom[0]),
                fmt(p.shift_angstrom[1]),
                fmt(p.defocus_u_angstrom),
                fmt(p.defocus_v_angstrom),
                fmt(p.defocus_angle_deg),
                fmt(p.phase_shift_deg),
                (p.optics + 1).to_string(),
            ]);
        }
        let version = vec!["# version 30001".to_owned()];
        let mut optics_block = StarBlock::new("optics");
        optics_block.comments = version.clone();
        optics_block.tables.push(optics);
        let mut particle_block = StarBlock::new("particles");
        particle_block.comments = version;
        particle_block.tables.push(table);
        StarFile {
            blocks: vec![optics_block, particle_block],
        }
    }

    /// A cryoSPARC particle `.cs` with the fields cryoSPARC's importers read.
    pub fn to_cs(&self) -> CsFile {
        let n = self.particles.len();
        let group = |p: &Particle| &self.optics[p.optics];
        let map = |f: &dyn Fn(&Particle) -> f32| self.particles.iter().map(f).collect::<Vec<f32>>();
        let mut pose = Vec::with_capacity(3 * n);
        let mut shift = Vec::with_capacity(2 * n);
        for p in &self.particles {
            let a = relion_matrix(p.euler_deg[0], p.euler_deg[1], p.euler_deg[2]);
            pose.extend(rotvec_from_matrix(&transpose(&a)).map(|v| v as f32));
            let psize = group(p).pixel_size_angstrom;
            shift.extend(p.shift_angstrom.map(|s| (s / psize) as f32));
        }
        let box_size: Vec<u32> = self
            .particles
            .iter()
            .flat_map(|p| {
                let s = group(p).image_size.unwrap_or(0) as u32;
                [s, s]
            })
            .collect();
        let build = || -> Result<CsFile, ContentError> {
            Ok(CsBuilder::new()
                .column("uid", CsColumn::U64((0..n as u64).map(uid_for_row).collect()))?
                .column(
                    "blob/path",
                    CsColumn::Bytes(self.particles.iter().map(|p| p.image_path.clone()).collect()),
                )?
                .column(
                    "blob/idx",
                    CsColumn::U32(self.particles.iter().map(|p| p.image_index_1based as u32 - 1).collect()),
                )?
                .column(
                    "blob/shape",
                    CsColumn::F32Array {
                        width: 2,
                        values: box_size.iter().map(|&s| s as f32).collect(),
                    },
                )?
                .column(
                    "blob/psize_A",
                    CsColumn::F32(map(&|p| group(p).pixel_size_angstrom as f32)),
                )?
                .column("ctf/accel_kv", CsColumn::F32(map(&|p| group(p).voltage_kv as f32)))?
                .column(
                    "ctf/cs_mm",
                    CsColumn::F32(map(&|p| group(p).spherical_aberration_mm as f32)),
                )?
                .column(
                    "ctf/amp_contrast",
                    CsColumn::F32(map(&|p| group(p).amplitude_contrast as f32)),
                )?
                .column("ctf/df1_A", CsColumn::F32(map(&|p| p.defocus_u_angstrom as f32)))?
                .column("ctf/df2_A", CsColumn::F32(map(&|p| p.defocus_v_angstrom as f32)))?
                .column(
                    "ctf/df_angle_rad",
                    CsColumn::F32(map(&|p| p.defocus_angle_deg.to_radians() as f32)),
                )?
                .column(
                    "ctf/phase_shift_rad",
                    CsColumn::F32(map(&|p| p.phase_shift_deg.to_radians() as f32)),
                )?
                .column("alignments3D/pose", CsColumn::F32Array { width: 3, values: pose })?
                .column(
                    "alignments3D/shift",
                    CsColumn::F32Array {
                        width: 2,
                        values: shift,
                    },
                )?
                .column(
                    "alignments3D/psize_A",
                    CsColumn::F32(map(&|p| group(p).pixel_size_angstrom as f32)),
                )?
                .build())
        };
        // Every column above has exactly `n` rows, so the builder cannot refuse them.
        build().unwrap_or_else(|_| CsBuilder::new().build())
    }
}

/// Deterministic, well-spread unique ids (splitmix64's mix is a bijection on u64).
fn uid_for_row(row: u64) -> u64 {
    crate::numeric::rng::mix64(row.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

fn fmt(v: f64) -> String {
    format!("{v:.6}")
}

/// Each row's shift in Å: `_rlnOriginXAngst`/`YAngst` (RELION 3.1+), else `_rlnOriginX`/`Y` in
/// pixels (RELION 3.0) times the row's pixel size, else none.
fn star_shifts_angstrom(
    path: &Path,
    table: &StarTable,
    optics: &[OpticsGroup],
    group_of_row: &[usize],
) -> FormatResult<Vec<[f64; 2]>> {
    let pair = |x: &str, y: &str| -> FormatResult<Option<(Vec<f64>, Vec<f64>)>> {
        match (table.column_f64(path, x)?, table.column_f64(path, y)?) {
            (None, None) => Ok(None),
            (sx, sy) => {
                let zeros = || vec![0.0; table.row_count()];
                Ok(Some((sx.unwrap_or_else(zeros), sy.unwrap_or_else(zeros))))
            }
        }
    };
    let rows = 0..table.row_count();
    Ok(
        match (
            pair("rlnOriginXAngst", "rlnOriginYAngst")?,
            pair("rlnOriginX", "rlnOriginY")?,
        ) {
            (Some((x, y)), _) => rows.map(|r| [x[r], y[r]]).collect(),
            (None, Some((x, y))) => rows
                .map(|r| {
                    let pixel = optics[group_of_row[r]].pixel_size_angstrom;
                    [x[r] * pixel, y[r] * pixel]
                })
                .collect(),
            (None, None) => rows.map(|_| [0.0; 2]).collect(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::error::FormatError;

    fn star(dir: &Path, name: &str, text: &str) -> (std::path::PathBuf, StarFile) {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        let star = StarFile::read(&path).expect("parse");
        (path, star)
    }

    /// RELION 3.0 as cryoDRGN's toy data: CTF per particle, shifts in pixels, no pixel size.
    const NO_PIXEL_SIZE: &str = "data_images\nloop_\n_rlnImageName\n_rlnVoltage\n_rlnDefocusU\n\
        _rlnOriginX\n_rlnOriginY\n1@toy.mrcs 300 10000 2 -1\n2@toy.mrcs 300 12000 0 4\n";

    #[test]
    fn a_table_without_pixel_size_needs_one_and_reads_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, star) = star(dir.path(), "toy.star", NO_PIXEL_SIZE);
        let err = ParticleSet::from_star(&path, &star).expect_err("no pixel size");
        assert!(matches!(err, FormatError::MissingPixelSize { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("toy.star") && message.contains("--apix"), "{message}");
        let set = ParticleSet::from_star_with(&path, &star, &ParticleOptions::with_pixel_size(Some(2.5)))
            .expect("reads with a pixel size");
        assert_eq!(set.optics.len(), 1);
        assert_eq!(set.optics[0].pixel_size_angstrom, 2.5);
        // Shifts in pixels become Å at the given pixel size.
        assert_eq!(set.particles[1].shift_angstrom, [0.0, 10.0]);
        assert_eq!(set.particles[1].defocus_u_angstrom, 12000.0);
    }

    #[test]
    fn the_given_pixel_size_replaces_the_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "data_optics\nloop_\n_rlnOpticsGroup\n_rlnImagePixelSize\n_rlnVoltage\n1 1.5 200\n\
            data_particles\nloop_\n_rlnImageName\n_rlnOriginXAngst\n_rlnOriginYAngst\n1@a.mrcs 3.0 -1.5\n";
        let (path, star) = star(dir.path(), "p.star", text);
        let own = ParticleSet::from_star(&path, &star).expect("particles");
        assert_eq!(
            (own.optics[0].pixel_size_angstrom, own.optics[0].voltage_kv),
            (1.5, 200.0)
        );
        let set =
            ParticleSet::from_star_with(&path, &star, &ParticleOptions::with_pixel_size(Some(1.0))).expect("particles");
        assert_eq!(set.optics[0].pixel_size_angstrom, 1.0);
        // Shifts already in Å stay as they are.
        assert_eq!(set.particles[0].shift_angstrom, [3.0, -1.5]);
    }

    #[test]
    fn two_blocks_without_optics_read_from_the_first_particle_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "data_general\n_rlnNrClasses 1\n\ndata_particles\nloop_\n_rlnImageName\n\
            _rlnDetectorPixelSize\n_rlnMagnification\n_rlnSphericalAberration\n\
            1@a.mrcs 5.0 50000 2.0\n2@a.mrcs 5.0 50000 2.0\n3@b.mrcs 5.0 25000 2.0\n";
        let (path, star) = star(dir.path(), "two.star", text);
        assert_eq!(star_layout(&star), StarLayout::Relion30);
        let set = ParticleSet::from_star(&path, &star).expect("particles");
        assert_eq!(set.particles.len(), 3);
        // Two magnifications: two optics groups, 1 Å and 2 Å, with RELION's default voltage.
        let pixels: Vec<f64> = set.optics.iter().map(|o| o.pixel_size_angstrom).collect();
        assert_eq!(pixels, [1.0, 2.0]);
        assert_eq!(set.optics[0].voltage_kv, optics::DEFAULT_VOLTAGE_KV);
        assert_eq!(set.optics[1].spherical_aberration_mm, 2.0);
        assert_eq!(set.particles[2].optics, 1);
    }

    #[test]
    fn single_image_references_are_whole_files_and_stay_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "data_particles\nloop_\n_rlnImageName\n_rlnImagePixelSize\n\
            Subtomograms/p1.mrc 4.0\nSubtomograms/p2.mrc 4.0\n7@stack.mrcs 4.0\n";
        let (path, star) = star(dir.path(), "sub.star", text);
        let set = ParticleSet::from_star(&path, &star).expect("particles");
        let p = &set.particles[1];
        assert!(p.image_whole_file);
        assert_eq!(
            (p.image_index_1based, p.image_path.as_str()),
            (1, "Subtomograms/p2.mrc")
        );
        assert!(!set.particles[2].image_whole_file);
        let back = set.to_star();
        let table = back.block("particles").and_then(StarBlock::table).expect("table");
        assert_eq!(table.cell(1, 0), "Subtomograms/p2.mrc");
        assert_eq!(table.cell(2, 0), "000007@stack.mrcs");
        let cs = set.to_cs();
        assert_eq!(cs.column_f64("blob/idx", 0), Some(vec![0.0, 0.0, 6.0]));
    }

    #[test]
    fn a_cs_without_pixel_size_needs_one() {
        let cs = CsBuilder::new()
            .column("blob/path", CsColumn::Bytes(vec!["a.mrcs".into()]))
            .and_then(|b| b.column("blob/idx", CsColumn::U32(vec![0])))
            .and_then(|b| {
                b.column(
                    "alignments3D/shift",
                    CsColumn::F32Array {
                        width: 2,
                        values: vec![1.0, 0.0],
                    },
                )
            })
            .expect("columns")
            .build();
        let path = Path::new("bare.cs");
        let err = ParticleSet::from_cs(path, &cs).expect_err("no pixel size");
        assert!(
            err.to_string().contains("bare.cs") && err.to_string().contains("--apix"),
            "{err}"
        );
        let read = ParticleSet::from_cs_with(path, &cs, &ParticleOptions::with_pixel_size(Some(2.0))).expect("cs");
        // cryoSPARC shifts are in pixels.
        assert_eq!(read.particles[0].shift_angstrom, [2.0, 0.0]);
    }
}
