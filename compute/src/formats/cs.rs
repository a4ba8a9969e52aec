//! cryoSPARC `.cs` files: numpy structured arrays in `.npy` format, one record per particle.
//!
//! Records are kept as the raw bytes that were read, with the field layout beside them, so that
//! writing back (whole or a subset of rows) preserves `uid` and every field byte for byte,
//! including fields cryoforge does not understand.

use std::io::{Read, Write};
use std::path::Path;

use crate::formats::error::{ContentError, FormatError, FormatResult};
use crate::formats::npy::{PyValue, read_header};
use crate::io::{ProgressFn, open_reader, write_atomically};

/// The kind of a numpy scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ScalarKind {
    Bool,
    Int,
    Uint,
    Float,
    /// Fixed-width byte string (`|S43`).
    Bytes,
    /// Fixed-width UCS-4 string (`<U10`).
    Unicode,
}

/// One field of the record dtype.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CsField {
    pub name: String,
    /// The numpy type string as read (`<f4`, `|S43`).
    pub dtype: String,
    pub kind: ScalarKind,
    /// Bytes of one scalar.
    pub scalar_bytes: usize,
    pub big_endian: bool,
    /// Sub-array shape (`(2,)` for `blob/shape`); empty for scalars.
    pub shape: Vec<usize>,
    /// Byte offset within a record.
    pub offset: usize,
}

impl CsField {
    pub fn elements(&self) -> usize {
        self.shape.iter().product::<usize>().max(1)
    }

    pub fn bytes(&self) -> usize {
        self.elements() * self.scalar_bytes
    }

    fn parse_dtype(name: &str, dtype: &str, shape: Vec<usize>) -> Result<Self, ContentError> {
        let bytes = dtype.as_bytes();
        let (order, rest) = match bytes.first() {
            Some(b'<' | b'|' | b'=') => (b'<', &dtype[1..]),
            Some(b'>') => (b'>', &dtype[1..]),
            _ => (b'<', dtype),
        };
        let mut chars = rest.chars();
        let code = chars
            .next()
            .ok_or_else(|| ContentError(format!("field '{name}': empty dtype")))?;
        let size: usize = chars
            .as_str()
            .parse()
            .map_err(|_| ContentError(format!("field '{name}': dtype '{dtype}' is not understood")))?;
        let (kind, scalar_bytes) = match code {
            'b' => (ScalarKind::Bool, size),
            'i' => (ScalarKind::Int, size),
            'u' => (ScalarKind::Uint, size),
            'f' => (ScalarKind::Float, size),
            'S' | 'a' => (ScalarKind::Bytes, size),
            'U' => (ScalarKind::Unicode, size.saturating_mul(4)),
            _ => {
                return Err(ContentError(format!(
                    "field '{name}': dtype '{dtype}' is not supported (object or exotic type)"
                )));
            }
        };
        let valid = match kind {
            ScalarKind::Bool => size == 1,
            ScalarKind::Int | ScalarKind::Uint => matches!(size, 1 | 2 | 4 | 8),
            ScalarKind::Float => matches!(size, 2 | 4 | 8),
            ScalarKind::Bytes | ScalarKind::Unicode => size > 0,
        };
        if !valid {
            return Err(ContentError(format!(
                "field '{name}': dtype '{dtype}' has an impossible size"
            )));
        }
        // A header can claim any shape; `bytes()` must not overflow later.
        let field_bytes = shape
            .iter()
            .try_fold(scalar_bytes, |acc, &d| acc.checked_mul(d.max(1)))
            .filter(|&b| b <= u32::MAX as usize);
        if field_bytes.is_none() {
            return Err(ContentError(format!(
                "field '{name}': shape {shape:?} of '{dtype}' is impossibly large"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            dtype: dtype.to_owned(),
            kind,
            scalar_bytes,
            big_endian: order == b'>',
            shape,
            offset: 0,
        })
    }

    /// Scalar `element` of this field in `record`, as f64 (numbers only).
    fn number(&self, record: &[u8], element: usize) -> Option<f64> {
        let start = self.offset + element * self.scalar_bytes;
        let b = &record[start..start + self.scalar_bytes];
        let be = self.big_endian;
        macro_rules! num {
            ($t:ty, $n:expr) => {{
                let mut w = [0u8; $n];
                w.copy_from_slice(b);
                if be {
                    <$t>::from_be_bytes(w)
                } else {
                    <$t>::from_le_bytes(w)
                }
            }};
        }
        Some(match (self.kind, self.scalar_bytes) {
            (ScalarKind::Bool, _) => f64::from(u8::from(b[0] != 0)),
            (ScalarKind::Int, 1) => f64::from(b[0] as i8),
            (ScalarKind::Int, 2) => f64::from(num!(i16, 2)),
            (ScalarKind::Int, 4) => f64::from(num!(i32, 4)),
            (ScalarKind::Int, 8) => num!(i64, 8) as f64,
            (ScalarKind::Uint, 1) => f64::from(b[0]),
            (ScalarKind::Uint, 2) => f64::from(num!(u16, 2)),
            (ScalarKind::Uint, 4) => f64::from(num!(u32, 4)),
            (ScalarKind::Uint, 8) => num!(u64, 8) as f64,
            (ScalarKind::Float, 2) => f64::from(half::f16::from_bits(num!(u16, 2)).to_f32()),
            (ScalarKind::Float, 4) => f64::from(num!(f32, 4)),
            (ScalarKind::Float, 8) => num!(f64, 8),
            _ => return None,
        })
    }
}

/// A whole `.cs` file.
#[derive(Clone, Debug, PartialEq)]
pub struct CsFile {
    pub fields: Vec<CsField>,
    /// Bytes per record (the sum of the field sizes: cryoSPARC arrays are packed).
    pub record_bytes: usize,
    pub rows: usize,
    /// `rows × record_bytes` bytes of records.
    pub data: Vec<u8>,
}

impl CsFile {
    pub fn read(path: &Path) -> FormatResult<Self> {
        Self::read_with_progress(path, None)
    }

    pub fn read_with_progress(path: &Path, progress: Option<ProgressFn<'_>>) -> FormatResult<Self> {
        let mut reader = open_reader(path, progress)?;
        let invalid = |m: String| FormatError::invalid(path, m);
        let (literal, header_bytes) = read_header(path, &mut reader)?;
        let (fields, record_bytes) = parse_descr(&literal).map_err(|e| invalid(e.0))?;
        if literal.get("fortran_order") == Some(&PyValue::Bool(true)) {
            return Err(FormatError::unsupported(path, "Fortran-ordered arrays"));
        }
        let shape = literal
            .get("shape")
            .and_then(PyValue::as_seq)
            .ok_or_else(|| invalid("npy header has no shape".into()))?;
        let rows = match shape {
            [n] => n
                .as_int()
                .filter(|&n| n >= 0)
                .ok_or_else(|| invalid("bad shape".into()))? as usize,
            _ => return Err(invalid(format!("expected a 1-D array, shape has {} axes", shape.len()))),
        };
        if record_bytes == 0 && rows > 0 {
            // Nothing on disk would bound the row count.
            return Err(invalid(format!("{rows} records of no fields")));
        }
        let data_bytes = (rows as u64)
            .checked_mul(record_bytes as u64)
            .and_then(|d| d.checked_add(header_bytes as u64).map(|_| d))
            .ok_or_else(|| invalid("row count × record size overflows".into()))?;
        let expected_total = header_bytes as u64 + data_bytes;
        if !crate::io::is_gzip_path(path) {
            let actual = std::fs::metadata(path).map_err(|e| FormatError::io(path, e))?.len();
            if actual != expected_total {
                return Err(FormatError::SizeMismatch {
                    path: path.to_owned(),
                    what: format!("{rows} records of {record_bytes} bytes"),
                    expected_bytes: expected_total,
                    actual_bytes: actual,
                });
            }
        }
        let mut data = Vec::new();
        (&mut reader)
            .take(data_bytes)
            .read_to_end(&mut data)
            .map_err(|e| FormatError::io(path, e))?;
        if data.len() as u64 != data_bytes {
            return Err(FormatError::SizeMismatch {
                path: path.to_owned(),
                what: format!("{rows} records of {record_bytes} bytes"),
                expected_bytes: expected_total,
                actual_bytes: (header_bytes + data.len()) as u64,
            });
        }
        Ok(Self {
            fields,
            record_bytes,
            rows,
            data,
        })
    }

    /// Writes as npy 1.0 (2.0 if the header outgrows 64 KiB), atomically.
    pub fn write(&self, path: &Path) -> FormatResult<()> {
        write_atomically(path, |w| self.write_to(w))
    }

    pub fn write_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let descr: Vec<String> = self
            .fields
            .iter()
            .map(|f| {
                if f.shape.is_empty() {
                    format!("('{}', '{}')", f.name, f.dtype)
                } else {
                    let dims: Vec<String> = f.shape.iter().map(|d| format!("{d},")).collect();
                    format!(
                        "('{}', '{}', ({}))",
                        f.name,
                        f.dtype,
                        dims.join(" ").trim_end_matches(' ')
                    )
                }
            })
            .collect();
        let dict = format!(
            "{{'descr': [{}], 'fortran_order': False, 'shape': ({},), }}",
            descr.join(", "),
            self.rows
        );
        w.write_all(&crate::formats::npy::encode_header(&dict))?;
        w.write_all(&self.data)
    }

    pub fn field(&self, name: &str) -> Option<&CsField> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn record(&self, row: usize) -> &[u8] {
        &self.data[row * self.record_bytes..(row + 1) * self.record_bytes]
    }

    /// Element `element` of a numeric field for every row, or `None` if there is no such field.
    pub fn column_f64(&self, name: &str, element: usize) -> Option<Vec<f64>> {
        let field = self.field(name)?;
        if element >= field.elements() {
            return None;
        }
        (0..self.rows).map(|r| field.number(self.record(r), element)).collect()
    }

    /// A `u64` field (`uid`) read exactly, without passing through f64.
    pub fn column_u64(&self, name: &str) -> Option<Vec<u64>> {
        let field = self.field(name)?;
        if field.kind != ScalarKind::Uint || field.scalar_bytes != 8 {
            return None;
        }
        Some(
            (0..self.rows)
                .map(|r| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&self.record(r)[field.offset..field.offset + 8]);
                    if field.big_endian {
                        u64::from_be_bytes(w)
                    } else {
                        u64::from_le_bytes(w)
                    }
                })
                .collect(),
        )
    }

    /// A string field (`blob/path`), trailing NULs removed.
    pub fn column_str(&self, name: &str) -> Option<Vec<String>> {
        let field = self.field(name)?;
        Some(
            (0..self.rows)
                .map(|r| {
                    let b = &self.record(r)[field.offset..field.offset + field.bytes()];
                    match field.kind {
                        ScalarKind::Bytes => String::from_utf8_lossy(b).trim_end_matches('\0').to_owned(),
                        ScalarKind::Unicode => b
                            .chunks_exact(4)
                            .map(|c| {
                                let code = if field.big_endian {
                                    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                                } else {
                                    u32::from_le_bytes([c[0], c[1], c[2], c[3]])
                                };
                                char::from_u32(code).unwrap_or('\u{fffd}')
                            })
                            .collect::<String>()
                            .trim_end_matches('\0')
                            .to_owned(),
                        _ => String::new(),
                    }
                })
                .collect(),
        )
    }

    /// The same fields, only the given rows (in that order): a particle subset.
    pub fn select_rows(&self, rows: &[usize]) -> Self {
        let mut data = Vec::with_capacity(rows.len() * self.record_bytes);
        for &r in rows {
            data.extend_from_slice(self.record(r));
        }
        Self {
            fields: self.fields.clone(),
            record_bytes: self.record_bytes,
            rows: rows.len(),
            data,
        }
    }
}

/// Builds a new `.cs` column by column (all little-endian).
#[derive(Default)]
pub struct CsBuilder {
    fields: Vec<CsField>,
    /// One byte buffer per field: `rows × field.bytes()`.
    columns: Vec<Vec<u8>>,
    rows: Option<usize>,
}

/// Column data for [`CsBuilder`].
pub enum CsColumn {
    U64(Vec<u64>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    /// Rows of `width` f32 values (`alignments3D/pose` is 3 wide).
    F32Array {
        width: usize,
        values: Vec<f32>,
    },
    /// Fixed-width byte strings; the width is that of the longest.
    Bytes(Vec<String>),
}

impl CsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a column; every column must have the same number of rows.
    pub fn column(mut self, name: &str, column: CsColumn) -> Result<Self, ContentError> {
        let (dtype, shape, rows, bytes): (String, Vec<usize>, usize, Vec<u8>) = match column {
            CsColumn::U64(v) => (
                "<u8".into(),
                vec![],
                v.len(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            CsColumn::U32(v) => (
                "<u4".into(),
                vec![],
                v.len(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            CsColumn::I32(v) => (
                "<i4".into(),
                vec![],
                v.len(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            CsColumn::F32(v) => (
                "<f4".into(),
                vec![],
                v.len(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            CsColumn::F32Array { width, values } => {
                if width == 0 || values.len() % width != 0 {
                    return Err(ContentError(format!(
                        "column '{name}': {} values do not split into rows of {width}",
                        values.len()
                    )));
                }
                (
                    "<f4".into(),
                    vec![width],
                    values.len() / width,
                    values.iter().flat_map(|x| x.to_le_bytes()).collect(),
                )
            }
            CsColumn::Bytes(v) => {
                let width = v.iter().map(String::len).max().unwrap_or(0).max(1);
                let mut bytes = Vec::with_capacity(v.len() * width);
                for s in &v {
                    bytes.extend_from_slice(s.as_bytes());
                    bytes.resize(bytes.len() + width - s.len(), 0);
                }
                (format!("|S{width}"), vec![], v.len(), bytes)
            }
        };
        if let Some(n) = self.rows.filter(|&n| n != rows) {
            return Err(ContentError(format!("column '{name}' has {rows} rows, the others {n}")));
        }
        self.rows = Some(rows);
        let field = CsField::parse_dtype(name, &dtype, shape)?;
        self.fields.push(field);
        self.columns.push(bytes);
        Ok(self)
    }

    pub fn build(mut self) -> CsFile {
        let rows = self.rows.unwrap_or(0);
        let mut offset = 0;
        for f in &mut self.fields {
            f.offset = offset;
            offset += f.bytes();
        }
        let record_bytes = offset;
        let mut data = Vec::with_capacity(rows * record_bytes);
        for r in 0..rows {
            for (f, col) in self.fields.iter().zip(&self.columns) {
                let n = f.bytes();
                data.extend_from_slice(&col[r * n..(r + 1) * n]);
            }
        }
        CsFile {
            fields: self.fields,
            record_bytes,
            rows,
            data,
        }
    }
}

fn parse_descr(literal: &PyValue) -> Result<(Vec<CsField>, usize), ContentError> {
    let descr = literal.get("descr").ok_or("npy header has no descr")?;
    let items = match descr {
        PyValue::Seq(items) => items,
        PyValue::Str(s) => {
            return Err(ContentError(format!(
                "a plain '{s}' array, not a structured cryoSPARC table"
            )));
        }
        _ => {
            return Err(ContentError(
                "descr with explicit offsets (aligned dtype) is not supported".into(),
            ));
        }
    };
    let mut fields = Vec::with_capacity(items.len());
    let mut offset = 0;
    for item in items {
        let parts = item.as_seq().ok_or("descr entries must be tuples")?;
        let name = parts.first().and_then(PyValue::as_str).ok_or("field without a name")?;
        let dtype = parts
            .get(1)
            .and_then(PyValue::as_str)
            .ok_or_else(|| ContentError(format!("field '{name}' has a nested dtype, which is not supported")))?;
        let shape = match parts.get(2) {
            None => vec![],
            Some(s) => s
                .as_seq()
                .ok_or_else(|| ContentError(format!("field '{name}': bad shape")))?
                .iter()
                .map(|d| d.as_int().filter(|&d| d >= 0).map(|d| d as usize))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ContentError(format!("field '{name}': bad shape")))?,
        };
        // numpy names padding fields ''; keep them so the layout survives.
        let mut field = CsField::parse_dtype(name, dtype, shape)?;
        field.offset = offset;
        offset = offset
            .checked_add(field.bytes())
            .ok_or_else(|| ContentError(format!("field '{name}': the record is impossibly large")))?;
        fields.push(field);
    }
    Ok((fields, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_write_read_round_trip() {
        let cs = CsBuilder::new()
            .column("uid", CsColumn::U64(vec![u64::MAX - 1, 7]))
            .and_then(|b| {
                b.column(
                    "blob/path",
                    CsColumn::Bytes(vec!["J1/a.mrc".into(), "J1/bb.mrc".into()]),
                )
            })
            .and_then(|b| {
                b.column(
                    "alignments3D/pose",
                    CsColumn::F32Array {
                        width: 3,
                        values: vec![0.1, 0.2, 0.3, 1.0, 2.0, 3.0],
                    },
                )
            })
            .expect("columns")
            .build();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.cs");
        cs.write(&path).expect("write");
        let bytes = std::fs::read(&path).expect("read");
        let header_end = 10 + usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        assert_eq!(header_end % 64, 0, "npy header must be 64-byte aligned");
        let again = CsFile::read(&path).expect("read back");
        assert_eq!(again, cs);
        assert_eq!(again.column_u64("uid"), Some(vec![u64::MAX - 1, 7]));
        assert_eq!(again.column_str("blob/path").expect("path")[1], "J1/bb.mrc");
        assert_eq!(
            again.column_f64("alignments3D/pose", 2).expect("pose"),
            vec![0.3f32 as f64, 3.0]
        );
        let sub = again.select_rows(&[1]);
        assert_eq!(sub.column_u64("uid"), Some(vec![7]));
    }
}
