//! MRC/CCP4 density maps (the EMDB map format), plain, gzipped or bzip2-compressed.
//!
//! The header is parsed word by word into [`MrcHeader`], byte order is taken from the machine
//! stamp, and the stored axis order (MAPC/MAPR/MAPS) is normalised so that [`DensityMap`] values
//! are always x fastest, then y, then z. Placement follows ChimeraX and Mol*: a non-zero ORIGIN is
//! the position of the first stored voxel, otherwise NXSTART·voxel is. Origin and start are kept
//! apart so that a written map re-opens in the same place. Writing is always float32 (mode 2),
//! axis order 1,2,3, little-endian, with statistics recomputed from the data.

use std::io::{Read, Write};
use std::path::Path;

use crate::formats::error::{FormatError, FormatResult};
use crate::io::{ProgressFn, is_compressed_path, open_reader, write_atomically};
use crate::maps::{DensityMap, MapGrid, MapMeta, Statistics};

pub const HEADER_BYTES: usize = 1024;
const LABEL_BYTES: usize = 80;
const MAX_LABELS: usize = 10;
/// Refuse headers whose dimensions are beyond any real map (the file-size check catches the rest).
const MAX_DIM: i64 = 1 << 20;

/// MRC data modes cryoforge reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum MrcMode {
    /// Mode 0: signed 8-bit integers.
    Int8,
    /// Mode 1: signed 16-bit integers.
    Int16,
    /// Mode 2: 32-bit floats.
    Float32,
    /// Mode 6: unsigned 16-bit integers.
    Uint16,
    /// Mode 12: 16-bit floats.
    Float16,
}

impl MrcMode {
    pub fn from_word(mode: i32) -> Option<Self> {
        Some(match mode {
            0 => Self::Int8,
            1 => Self::Int16,
            2 => Self::Float32,
            6 => Self::Uint16,
            12 => Self::Float16,
            _ => return None,
        })
    }

    pub fn word(self) -> i32 {
        match self {
            Self::Int8 => 0,
            Self::Int16 => 1,
            Self::Float32 => 2,
            Self::Uint16 => 6,
            Self::Float16 => 12,
        }
    }

    pub fn bytes_per_value(self) -> usize {
        match self {
            Self::Int8 => 1,
            Self::Int16 | Self::Uint16 | Self::Float16 => 2,
            Self::Float32 => 4,
        }
    }
}

/// Every word of the 1024-byte MRC2014 header, as stored (file axis order where noted).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MrcHeader {
    /// Words 1–3 (NX NY NZ): columns, rows, sections, in file order.
    pub dims_file: [i32; 3],
    /// Word 4 (MODE).
    pub mode: i32,
    /// Words 5–7 (NXSTART NYSTART NZSTART): start of columns, rows, sections, in file order.
    pub start_file: [i32; 3],
    /// Words 8–10 (MX MY MZ): sampling along the cell's x, y, z.
    pub cell_sampling: [i32; 3],
    /// Words 11–13: cell lengths along x, y, z, in Å.
    pub cell_angstrom: [f32; 3],
    /// Words 14–16: cell angles in degrees.
    pub cell_angles_deg: [f32; 3],
    /// Words 17–19 (MAPC MAPR MAPS): which of x(1), y(2), z(3) the columns, rows and sections are.
    pub axis_order: [i32; 3],
    /// Words 20–22 (DMIN DMAX DMEAN).
    pub dmin: f32,
    pub dmax: f32,
    pub dmean: f32,
    /// Word 23 (ISPG): space group; 0 marks an image stack.
    pub space_group: i32,
    /// Word 24 (NSYMBT): bytes of extended header after the main header.
    pub extended_header_bytes: i32,
    /// Word 27 (EXTTYP), e.g. "FEI1" or "CCP4".
    pub extended_type: [u8; 4],
    /// Word 28 (NVERSION), e.g. 20140.
    pub version: i32,
    /// Words 50–52 (ORIGIN): x, y, z in Å.
    pub origin_angstrom: [f32; 3],
    /// Word 53: "MAP ".
    pub map_tag: [u8; 4],
    /// Word 54: machine stamp; decides the byte order.
    pub machine_stamp: [u8; 4],
    /// Word 55 (RMS): standard deviation about the mean.
    pub rms: f32,
    /// Words 57–256: up to ten 80-character labels (NLABL in word 56).
    pub labels: Vec<String>,
    /// Byte order the file was read in.
    pub little_endian: bool,
}

impl MrcHeader {
    /// Parses and validates a header; `path` is only for messages.
    pub fn parse(path: &Path, bytes: &[u8; HEADER_BYTES]) -> FormatResult<Self> {
        if bytes.iter().all(|&b| b == 0) {
            return Err(FormatError::invalid(path, "not an MRC file: the header is all zeros"));
        }
        let little_endian = byte_order(path, bytes)?;
        let word = |i: usize| -> [u8; 4] {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[i * 4..i * 4 + 4]);
            w
        };
        let int = |i: usize| {
            if little_endian {
                i32::from_le_bytes(word(i))
            } else {
                i32::from_be_bytes(word(i))
            }
        };
        let float = |i: usize| {
            if little_endian {
                f32::from_le_bytes(word(i))
            } else {
                f32::from_be_bytes(word(i))
            }
        };
        let label_count = (int(55).clamp(0, MAX_LABELS as i32)) as usize;
        let labels = (0..label_count)
            .map(|i| {
                let start = 224 + i * LABEL_BYTES;
                let raw = &bytes[start..start + LABEL_BYTES];
                String::from_utf8_lossy(raw).trim_end_matches(['\0', ' ']).to_owned()
            })
            .collect();
        let header = Self {
            dims_file: [int(0), int(1), int(2)],
            mode: int(3),
            start_file: [int(4), int(5), int(6)],
            cell_sampling: [int(7), int(8), int(9)],
            cell_angstrom: [float(10), float(11), float(12)],
            cell_angles_deg: [float(13), float(14), float(15)],
            axis_order: [int(16), int(17), int(18)],
            dmin: float(19),
            dmax: float(20),
            dmean: float(21),
            space_group: int(22),
            extended_header_bytes: int(23),
            extended_type: word(26),
            version: int(27),
            origin_angstrom: [float(49), float(50), float(51)],
            map_tag: word(52),
            machine_stamp: word(53),
            rms: float(54),
            labels,
            little_endian,
        };
        header.validate(path)?;
        Ok(header)
    }

    fn validate(&self, path: &Path) -> FormatResult<()> {
        if MrcMode::from_word(self.mode).is_none() {
            return Err(FormatError::unsupported(
                path,
                format!("MRC mode {} (cryoforge reads modes 0, 1, 2, 6 and 12)", self.mode),
            ));
        }
        for (axis, &n) in ["NX", "NY", "NZ"].iter().zip(&self.dims_file) {
            if n <= 0 || i64::from(n) > MAX_DIM {
                return Err(FormatError::invalid(
                    path,
                    format!("header dimension {axis} = {n} is not a valid size"),
                ));
            }
        }
        if self.extended_header_bytes < 0 {
            return Err(FormatError::invalid(
                path,
                format!(
                    "negative extended header length NSYMBT = {}",
                    self.extended_header_bytes
                ),
            ));
        }
        let order = self.axis_order_xyz();
        let mut sorted = order;
        sorted.sort_unstable();
        if sorted != [1, 2, 3] {
            return Err(FormatError::invalid(
                path,
                format!(
                    "axis order MAPC/MAPR/MAPS = {:?} is not a permutation of 1, 2, 3",
                    self.axis_order
                ),
            ));
        }
        Ok(())
    }

    pub fn mode(&self) -> MrcMode {
        MrcMode::from_word(self.mode).unwrap_or(MrcMode::Float32)
    }

    /// MAPC/MAPR/MAPS, with the all-zero order of some old files read as 1,2,3.
    pub fn axis_order_xyz(&self) -> [i32; 3] {
        if self.axis_order == [0, 0, 0] {
            [1, 2, 3]
        } else {
            self.axis_order
        }
    }

    /// Number of voxels in the data block.
    pub fn voxel_count(&self) -> u64 {
        self.dims_file.iter().map(|&n| n.max(0) as u64).product()
    }

    /// Bytes of voxel data the header implies.
    pub fn data_bytes(&self) -> u64 {
        self.voxel_count() * self.mode().bytes_per_value() as u64
    }

    /// Total file size the header implies.
    pub fn expected_file_bytes(&self) -> u64 {
        HEADER_BYTES as u64 + self.extended_header_bytes.max(0) as u64 + self.data_bytes()
    }

    /// Permutes a file-order triple (columns, rows, sections) into x, y, z.
    pub fn file_to_xyz<T: Copy + Default>(&self, file: [T; 3]) -> [T; 3] {
        let order = self.axis_order_xyz();
        let mut xyz = [T::default(); 3];
        for (file_axis, &axis) in order.iter().enumerate() {
            xyz[(axis - 1) as usize] = file[file_axis];
        }
        xyz
    }

    /// Grid geometry in x, y, z.
    pub fn grid(&self) -> MapGrid {
        let dims = self.file_to_xyz(self.dims_file).map(|n| n as usize);
        let start_voxel = self.file_to_xyz(self.start_file);
        let cell_sampling: [usize; 3] = std::array::from_fn(|i| match self.cell_sampling[i] {
            n if n > 0 => n as usize,
            _ => dims[i],
        });
        let voxel_size_angstrom = std::array::from_fn(|i| {
            let size = self.cell_angstrom[i] / cell_sampling[i] as f32;
            // Some stacks leave the cell at zero; one Å per pixel is the only neutral guess.
            if size.is_finite() && size > 0.0 { size } else { 1.0 }
        });
        let origin_field_angstrom = self.origin_angstrom.map(|v| if v.is_finite() { v } else { 0.0 });
        MapGrid {
            dims,
            voxel_size_angstrom,
            origin_field_angstrom,
            start_voxel,
            cell_sampling,
        }
    }
}

/// Byte order from the machine stamp; for files without a valid stamp, the order in which the
/// mode and dimensions make sense.
fn byte_order(path: &Path, bytes: &[u8; HEADER_BYTES]) -> FormatResult<bool> {
    match bytes[212] {
        0x44 | 0x41 => return Ok(true),
        0x11 => return Ok(false),
        _ => {}
    }
    let plausible = |le: bool| {
        let read = |i: usize| {
            let w = [bytes[i * 4], bytes[i * 4 + 1], bytes[i * 4 + 2], bytes[i * 4 + 3]];
            if le {
                i32::from_le_bytes(w)
            } else {
                i32::from_be_bytes(w)
            }
        };
        MrcMode::from_word(read(3)).is_some() && (0..3).all(|i| read(i) > 0 && i64::from(read(i)) <= MAX_DIM)
    };
    if plausible(true) {
        Ok(true)
    } else if plausible(false) {
        Ok(false)
    } else {
        Err(FormatError::invalid(
            path,
            "not an MRC file: no valid machine stamp and the header makes sense in neither byte order",
        ))
    }
}

impl DensityMap {
    /// Reads an MRC/CCP4 map (`.gz` decompressed on the fly).
    pub fn read(path: &Path) -> FormatResult<Self> {
        Self::read_with_progress(path, None)
    }

    pub fn read_with_progress(path: &Path, progress: Option<ProgressFn<'_>>) -> FormatResult<Self> {
        let (header, raw) = read_header_and_data(path, progress)?;
        let file_order = decode_values(&header, &raw);
        drop(raw);
        let grid = header.grid();
        let values = reorder_to_xyz(&header, file_order);
        Ok(Self {
            grid,
            values,
            meta: MapMeta {
                cell_angles_deg: header.cell_angles_deg,
                space_group: header.space_group,
                labels: header.labels.clone(),
                source_mode: header.mode(),
                source_axis_order: header.axis_order_xyz(),
            },
        })
    }

    pub fn statistics(&self) -> Statistics {
        Statistics::of(&self.values)
    }

    /// Writes the map as float32 MRC (gzipped if `path` ends in `.gz`), atomically.
    pub fn write(&self, path: &Path) -> FormatResult<()> {
        if self.values.len() != self.grid.voxel_count() {
            return Err(FormatError::invalid(
                path,
                format!(
                    "map has {} values but its grid {:?} needs {}",
                    self.values.len(),
                    self.grid.dims,
                    self.grid.voxel_count()
                ),
            ));
        }
        let stats = self.statistics();
        let header = build_header(&self.grid, &self.meta, stats, self.meta.space_group, self.grid.dims[2]);
        write_atomically(path, |w| {
            w.write_all(&header)?;
            write_f32_le(w, &self.values)
        })
    }
}

/// A little-endian, float32, axis-order 1,2,3 header for `grid`.
pub(crate) fn build_header(
    grid: &MapGrid,
    meta: &MapMeta,
    stats: Statistics,
    space_group: i32,
    sections: usize,
) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    let mut put_i = |i: usize, v: i32| h[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    put_i(0, grid.dims[0] as i32);
    put_i(1, grid.dims[1] as i32);
    put_i(2, sections as i32);
    put_i(3, MrcMode::Float32.word());
    for a in 0..3 {
        put_i(4 + a, grid.start_voxel[a]);
        put_i(7 + a, grid.cell_sampling[a] as i32);
        put_i(16 + a, a as i32 + 1);
    }
    put_i(22, space_group);
    put_i(23, 0);
    put_i(27, 20141);
    let label_count = meta.labels.len().min(MAX_LABELS);
    put_i(55, label_count as i32);
    let mut put_f = |i: usize, v: f32| h[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    for a in 0..3 {
        put_f(10 + a, grid.voxel_size_angstrom[a] * grid.cell_sampling[a] as f32);
        put_f(13 + a, meta.cell_angles_deg[a]);
        put_f(49 + a, grid.origin_field_angstrom[a]);
    }
    put_f(19, stats.min);
    put_f(20, stats.max);
    put_f(21, stats.mean);
    put_f(54, stats.rms);
    h[208..212].copy_from_slice(b"MAP ");
    h[212..216].copy_from_slice(&[0x44, 0x44, 0x00, 0x00]);
    for (i, label) in meta.labels.iter().take(MAX_LABELS).enumerate() {
        let bytes = label.as_bytes();
        let n = bytes.len().min(LABEL_BYTES);
        let start = 224 + i * LABEL_BYTES;
        h[start..start + n].copy_from_slice(&bytes[..n]);
        h[start + n..start + LABEL_BYTES].fill(b' ');
    }
    h
}

pub(crate) fn write_f32_le(w: &mut dyn Write, values: &[f32]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4 * 65536);
    for chunk in values.chunks(65536) {
        buf.clear();
        for &v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

/// Reads and validates only the header against the file's size (cheap for plain files; a
/// compressed one is decompressed to count its bytes, so its header is held to the same check).
pub fn read_header(path: &Path) -> FormatResult<MrcHeader> {
    let mut reader = open_reader(path, None)?;
    let bytes = read_header_bytes(path, &mut reader)?;
    let header = MrcHeader::parse(path, &bytes)?;
    if !is_compressed_path(path) {
        check_file_size(path, &header)?;
    } else {
        let body = std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| FormatError::io(path, e))?;
        let actual_bytes = HEADER_BYTES as u64 + body;
        if actual_bytes != header.expected_file_bytes() {
            let what = "decompressed file".into();
            let expected_bytes = header.expected_file_bytes();
            return Err(FormatError::SizeMismatch {
                path: path.to_owned(),
                what,
                expected_bytes,
                actual_bytes,
            });
        }
    }
    Ok(header)
}

fn read_header_bytes(path: &Path, reader: &mut dyn Read) -> FormatResult<[u8; HEADER_BYTES]> {
    let mut bytes = [0u8; HEADER_BYTES];
    let mut filled = 0;
    while filled < HEADER_BYTES {
        match reader.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FormatError::io(path, e)),
        }
    }
    if filled < HEADER_BYTES {
        return Err(FormatError::SizeMismatch {
            path: path.to_owned(),
            what: "file is shorter than an MRC header".into(),
            expected_bytes: HEADER_BYTES as u64,
            actual_bytes: filled as u64,
        });
    }
    Ok(bytes)
}

fn check_file_size(path: &Path, header: &MrcHeader) -> FormatResult<()> {
    let actual = std::fs::metadata(path).map_err(|e| FormatError::io(path, e))?.len();
    let expected = header.expected_file_bytes();
    if actual != expected {
        return Err(FormatError::SizeMismatch {
            path: path.to_owned(),
            what: format!(
                "{}×{}×{} voxels of mode {} plus {} bytes of extended header",
                header.dims_file[0],
                header.dims_file[1],
                header.dims_file[2],
                header.mode,
                header.extended_header_bytes
            ),
            expected_bytes: expected,
            actual_bytes: actual,
        });
    }
    Ok(())
}

/// Reads the header and the raw data block, checking the sizes agree before allocating.
fn read_header_and_data(path: &Path, progress: Option<ProgressFn<'_>>) -> FormatResult<(MrcHeader, Vec<u8>)> {
    let mut reader = open_reader(path, progress)?;
    let bytes = read_header_bytes(path, &mut reader)?;
    let header = MrcHeader::parse(path, &bytes)?;
    let compressed = is_compressed_path(path);
    if !compressed {
        check_file_size(path, &header)?;
    }
    let extended = header.extended_header_bytes.max(0) as u64;
    std::io::copy(&mut (&mut reader).take(extended), &mut std::io::sink()).map_err(|e| FormatError::io(path, e))?;
    let data_bytes = header.data_bytes();
    // A compressed stream's length is unknown up front: let the buffer grow with the data actually
    // decompressed rather than trusting the header's claim.
    let mut raw = if compressed {
        Vec::new()
    } else {
        Vec::with_capacity(data_bytes as usize)
    };
    (&mut reader)
        .take(data_bytes)
        .read_to_end(&mut raw)
        .map_err(|e| FormatError::io(path, e))?;
    let mut extra = [0u8; 1];
    let trailing = reader.read(&mut extra).map_err(|e| FormatError::io(path, e))?;
    if raw.len() as u64 != data_bytes || trailing != 0 {
        return Err(FormatError::SizeMismatch {
            path: path.to_owned(),
            what: "decompressed data".into(),
            expected_bytes: header.expected_file_bytes(),
            actual_bytes: HEADER_BYTES as u64 + extended + raw.len() as u64 + trailing as u64,
        });
    }
    Ok((header, raw))
}

/// Converts raw bytes of any supported mode to f32, in file order.
pub(crate) fn decode_values(header: &MrcHeader, raw: &[u8]) -> Vec<f32> {
    let le = header.little_endian;
    match header.mode() {
        MrcMode::Int8 => raw.iter().map(|&b| f32::from(b as i8)).collect(),
        MrcMode::Int16 => raw
            .chunks_exact(2)
            .map(|c| {
                let w = [c[0], c[1]];
                f32::from(if le {
                    i16::from_le_bytes(w)
                } else {
                    i16::from_be_bytes(w)
                })
            })
            .collect(),
        MrcMode::Uint16 => raw
            .chunks_exact(2)
            .map(|c| {
                let w = [c[0], c[1]];
                f32::from(if le {
                    u16::from_le_bytes(w)
                } else {
                    u16::from_be_bytes(w)
                })
            })
            .collect(),
        MrcMode::Float16 => raw
            .chunks_exact(2)
            .map(|c| {
                let w = [c[0], c[1]];
                let h = if le {
                    half::f16::from_le_bytes(w)
                } else {
                    half::f16::from_be_bytes(w)
                };
                h.to_f32()
            })
            .collect(),
        MrcMode::Float32 => raw
            .chunks_exact(4)
            .map(|c| {
                let w = [c[0], c[1], c[2], c[3]];
                if le {
                    f32::from_le_bytes(w)
                } else {
                    f32::from_be_bytes(w)
                }
            })
            .collect(),
    }
}

/// Reorders file-order values (columns fastest) into x-fastest order.
fn reorder_to_xyz(header: &MrcHeader, file_order: Vec<f32>) -> Vec<f32> {
    let order = header.axis_order_xyz();
    if order == [1, 2, 3] {
        return file_order;
    }
    let dims = header.grid().dims;
    let stride_xyz = [1, dims[0], dims[0] * dims[1]];
    let [nc, nr, ns] = header.dims_file.map(|n| n as usize);
    let stride_c = stride_xyz[(order[0] - 1) as usize];
    let stride_r = stride_xyz[(order[1] - 1) as usize];
    let stride_s = stride_xyz[(order[2] - 1) as usize];
    let mut out = vec![0.0f32; file_order.len()];
    for s in 0..ns {
        for r in 0..nr {
            let row = &file_order[(s * nr + r) * nc..(s * nr + r + 1) * nc];
            let base = s * stride_s + r * stride_r;
            for (c, &v) in row.iter().enumerate() {
                out[base + c * stride_c] = v;
            }
        }
    }
    out
}
