//! Particles as the methods see them: image reference, pose, shift and CTF per particle, with
//! optics groups. Read from RELION STAR (3.0: no optics table, shifts in pixels; 3.1+: optics
//! table, shifts in Å) or cryoSPARC `.cs`, and written to either. This is how `convert` turns
//! STAR into `.cs` and back; subsets that must keep every original column use the raw
//! [`StarFile`]/[`CsFile`] row selection instead.

use std::path::Path;

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
    pub fn from_star(path: &Path, star: &StarFile) -> FormatResult<Self> {
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
        let (optics, group_of_row, shifts_angstrom) = match star_layout(star) {
            StarLayout::Relion31 => optics_31(path, star, table)?,
            StarLayout::Relion30 => optics_30(path, table)?,
        };
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
            let image = ImageRef::parse(text).ok_or_else(|| {
                FormatError::invalid(path, format!("row {}: '{text}' is not an index@stack reference", r + 1))
            })?;
            particles.push(Particle {
                image_index_1based: image.index_1based,
                image_path: image.path,
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

    pub fn from_cs(path: &Path, cs: &CsFile) -> FormatResult<Self> {
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
        let psize = cs
            .column_f64("blob/psize_A", 0)
            .or_else(|| cs.column_f64("alignments3D/psize_A", 0))
            .unwrap_or_else(|| vec![1.0; rows]);
        let box_size = cs.column_f64("blob/shape", 0);
        let kv = col("ctf/accel_kv", 0, 300.0);
        let cs_mm = col("ctf/cs_mm", 0, 2.7);
        let ac = col("ctf/amp_contrast", 0, 0.1);
        let df1 = col("ctf/df1_A", 0, 0.0);
        let df2 = col("ctf/df2_A", 0, 0.0);
        let dang = col("ctf/df_angle_rad", 0, 0.0);
        let phase = col("ctf/phase_shift_rad", 0, 0.0);
        let pose: [Vec<f64>; 3] = std::array::from_fn(|k| col("alignments3D/pose", k, 0.0));
        let shift: [Vec<f64>; 2] = std::array::from_fn(|k| col("alignments3D/shift", k, 0.0));
        let mut optics: Vec<OpticsGroup> = Vec::new();
        let mut particles = Vec::with_capacity(rows);
        for r in 0..rows {
            let group = OpticsGroup {
                name: String::new(),
                number: 0,
                pixel_size_angstrom: psize[r],
                voltage_kv: kv[r],
                spherical_aberration_mm: cs_mm[r],
                amplitude_contrast: ac[r],
                image_size: box_size.as_ref().map(|b| b[r] as usize),
            };
            let optics_index = find_or_add_group(&mut optics, group);
            let relion = transpose(&matrix_from_rotvec([pose[0][r], pose[1][r], pose[2][r]]));
            particles.push(Particle {
                image_index_1based: idx[r] as usize + 1,
                image_path: paths[r].clone(),
                euler_deg: relion_angles(&relion),
                shift_angstrom: [shift[0][r] * psize[r], shift[1][r] * psize[r]],
                defocus_u_angstrom: df1[r],
                defocus_v_angstrom: df2[r],
                defocus_angle_deg: dang[r].to_degrees(),
                phase_shift_deg: phase[r].to_degrees(),
                optics: optics_index,
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

fn find_or_add_group(groups: &mut Vec<OpticsGroup>, group: OpticsGroup) -> usize {
    let same = |g: &OpticsGroup| {
        (g.pixel_size_angstrom - group.pixel_size_angstrom).abs() < 1e-4
            && (g.voltage_kv - group.voltage_kv).abs() < 1e-3
            && (g.spherical_aberration_mm - group.spherical_aberration_mm).abs() < 1e-4
            && (g.amplitude_contrast - group.amplitude_contrast).abs() < 1e-5
            && g.image_size == group.image_size
    };
    if let Some(i) = groups.iter().position(same) {
        return i;
    }
    let number = groups.len() as i64 + 1;
    groups.push(OpticsGroup {
        name: format!("opticsGroup{number}"),
        number,
        ..group
    });
    groups.len() - 1
}

type OpticsParse = (Vec<OpticsGroup>, Vec<usize>, Vec<[f64; 2]>);

fn optics_31(path: &Path, star: &StarFile, table: &StarTable) -> FormatResult<OpticsParse> {
    let optics_table = star
        .block("optics")
        .and_then(StarBlock::table)
        .ok_or_else(|| FormatError::invalid(path, "data_optics has no table"))?;
    let n = optics_table.row_count();
    let col = |name: &str, default: Option<f64>| -> FormatResult<Vec<f64>> {
        match (optics_table.column_f64(path, name)?, default) {
            (Some(v), _) => Ok(v),
            (None, Some(d)) => Ok(vec![d; n]),
            (None, None) => Err(FormatError::invalid(path, format!("data_optics has no _{name} column"))),
        }
    };
    let numbers = col("rlnOpticsGroup", None)?;
    let pixel = match optics_table.column_f64(path, "rlnImagePixelSize")? {
        Some(v) => v,
        None => col("rlnMicrographPixelSize", None)?,
    };
    let voltage = col("rlnVoltage", Some(300.0))?;
    let cs = col("rlnSphericalAberration", Some(2.7))?;
    let ac = col("rlnAmplitudeContrast", Some(0.1))?;
    let size = optics_table.column_f64(path, "rlnImageSize")?;
    let name_col = optics_table.column_index("rlnOpticsGroupName");
    let groups: Vec<OpticsGroup> = (0..n)
        .map(|i| OpticsGroup {
            name: name_col.map(|c| optics_table.cell(i, c).to_owned()).unwrap_or_default(),
            number: numbers[i] as i64,
            pixel_size_angstrom: pixel[i],
            voltage_kv: voltage[i],
            spherical_aberration_mm: cs[i],
            amplitude_contrast: ac[i],
            image_size: size.as_ref().map(|s| s[i] as usize).filter(|&s| s > 0),
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
            groups.iter().position(|o| o.number == g as i64).ok_or_else(|| {
                FormatError::invalid(path, format!("row {}: optics group {g} is not in data_optics", r + 1))
            })
        })
        .collect::<FormatResult<Vec<usize>>>()?;
    let sx = table
        .column_f64(path, "rlnOriginXAngst")?
        .unwrap_or_else(|| vec![0.0; rows]);
    let sy = table
        .column_f64(path, "rlnOriginYAngst")?
        .unwrap_or_else(|| vec![0.0; rows]);
    let shifts = (0..rows).map(|r| [sx[r], sy[r]]).collect();
    Ok((groups, group_of_row, shifts))
}

fn optics_30(path: &Path, table: &StarTable) -> FormatResult<OpticsParse> {
    let rows = table.row_count();
    let col = |name: &str, default: f64| -> FormatResult<Vec<f64>> {
        Ok(table.column_f64(path, name)?.unwrap_or_else(|| vec![default; rows]))
    };
    let pixel = match table.column_f64(path, "rlnImagePixelSize")? {
        Some(v) => v,
        None => match (
            table.column_f64(path, "rlnDetectorPixelSize")?,
            table.column_f64(path, "rlnMagnification")?,
        ) {
            // Detector pixel in µm, magnification dimensionless: Å = µm × 10⁴ / mag.
            (Some(det), Some(mag)) => det.iter().zip(&mag).map(|(d, m)| d * 1e4 / m).collect(),
            _ => {
                return Err(FormatError::invalid(
                    path,
                    "RELION 3.0 table without a pixel size (_rlnImagePixelSize, or _rlnDetectorPixelSize and _rlnMagnification)",
                ));
            }
        },
    };
    let voltage = col("rlnVoltage", 300.0)?;
    let cs = col("rlnSphericalAberration", 2.7)?;
    let ac = col("rlnAmplitudeContrast", 0.1)?;
    let sx = col("rlnOriginX", 0.0)?;
    let sy = col("rlnOriginY", 0.0)?;
    let mut groups = Vec::new();
    let mut group_of_row = Vec::with_capacity(rows);
    let mut shifts = Vec::with_capacity(rows);
    for r in 0..rows {
        let group = OpticsGroup {
            name: String::new(),
            number: 0,
            pixel_size_angstrom: pixel[r],
            voltage_kv: voltage[r],
            spherical_aberration_mm: cs[r],
            amplitude_contrast: ac[r],
            image_size: None,
        };
        group_of_row.push(find_or_add_group(&mut groups, group));
        shifts.push([sx[r] * pixel[r], sy[r] * pixel[r]]);
    }
    Ok((groups, group_of_row, shifts))
}
