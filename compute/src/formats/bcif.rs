//! BinaryCIF (`.bcif`, what the PDB and Mol* serve): MessagePack holding CIF categories whose
//! columns are compressed by a chain of encodings (byte arrays, fixed point, interval
//! quantisation, run length, delta, integer packing, string arrays). Decoded here into CIF text,
//! which the mmCIF reader then reads like any other file.

use crate::formats::error::ContentError;

/// A MessagePack value.
#[derive(Clone, Debug, PartialEq)]
enum Pack {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Pack>),
    Map(Vec<(Pack, Pack)>),
}

impl Pack {
    fn get(&self, key: &str) -> Option<&Pack> {
        match self {
            Pack::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Pack::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Pack::Str(s) => Some(s),
            _ => None,
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Pack::Int(i) => Some(*i as f64),
            Pack::Float(f) => Some(*f),
            _ => None,
        }
    }

    fn array(&self) -> &[Pack] {
        match self {
            Pack::Array(items) => items,
            _ => &[],
        }
    }
}

fn err(message: impl Into<String>) -> ContentError {
    ContentError(format!("BinaryCIF: {}", message.into()))
}

struct Unpacker<'b> {
    bytes: &'b [u8],
    pos: usize,
}

impl<'b> Unpacker<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], ContentError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| err(format!("truncated at byte {}", self.pos)))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn be(&mut self, n: usize) -> Result<u64, ContentError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// A length, checked against what is left (every item takes at least one byte).
    fn length(&mut self, n: usize) -> Result<usize, ContentError> {
        let len = self.be(n)? as usize;
        if len > self.bytes.len() - self.pos {
            return Err(err(format!("a length of {len} at byte {} runs past the end", self.pos)));
        }
        Ok(len)
    }

    fn value(&mut self, depth: usize) -> Result<Pack, ContentError> {
        if depth > 64 {
            return Err(err("nested too deeply"));
        }
        let tag = self.take(1)?[0];
        Ok(match tag {
            0x00..=0x7f => Pack::Int(i64::from(tag)),
            0x80..=0x8f => self.map(usize::from(tag & 0x0f), depth)?,
            0x90..=0x9f => self.array(usize::from(tag & 0x0f), depth)?,
            0xa0..=0xbf => self.string(usize::from(tag & 0x1f))?,
            0xc0 => Pack::Nil,
            0xc2 => Pack::Bool(false),
            0xc3 => Pack::Bool(true),
            0xc4..=0xc6 => {
                let len = self.length(1 << (tag - 0xc4))?;
                Pack::Bin(self.take(len)?.to_vec())
            }
            0xc7..=0xc9 => {
                let len = self.length(1 << (tag - 0xc7))?;
                self.take(len + 1)?;
                Pack::Nil
            }
            0xca => Pack::Float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Pack::Float(f64::from_bits(self.be(8)?)),
            0xcc..=0xcf => {
                let v = self.be(1 << (tag - 0xcc))?;
                Pack::Int(i64::try_from(v).map_err(|_| err("an integer beyond 2^63"))?)
            }
            0xd0..=0xd3 => {
                let n = 1usize << (tag - 0xd0);
                let v = self.be(n)?;
                let shift = 64 - 8 * n as u32;
                Pack::Int(((v << shift) as i64) >> shift)
            }
            0xd4..=0xd8 => {
                self.take((1 << (tag - 0xd4)) + 1)?;
                Pack::Nil
            }
            0xd9..=0xdb => {
                let len = self.length(1 << (tag - 0xd9))?;
                self.string(len)?
            }
            0xdc | 0xdd => {
                let len = self.length(if tag == 0xdc { 2 } else { 4 })?;
                self.array(len, depth)?
            }
            0xde | 0xdf => {
                let len = self.length(if tag == 0xde { 2 } else { 4 })?;
                self.map(len, depth)?
            }
            0xe0..=0xff => Pack::Int(i64::from(tag as i8)),
            0xc1 => return Err(err(format!("an invalid byte 0xc1 at {}", self.pos - 1))),
        })
    }

    fn string(&mut self, len: usize) -> Result<Pack, ContentError> {
        Ok(Pack::Str(String::from_utf8_lossy(self.take(len)?).into_owned()))
    }

    fn array(&mut self, len: usize, depth: usize) -> Result<Pack, ContentError> {
        (0..len)
            .map(|_| self.value(depth + 1))
            .collect::<Result<_, _>>()
            .map(Pack::Array)
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Pack, ContentError> {
        let mut entries = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            let key = self.value(depth + 1)?;
            entries.push((key, self.value(depth + 1)?));
        }
        Ok(Pack::Map(entries))
    }
}

/// A column's data at some stage of decoding.
enum Data {
    Bytes(Vec<u8>),
    Ints(Vec<i64>),
    Floats(Vec<f64>),
    Strings(Vec<Option<String>>),
}

fn ints(data: Data, what: &str) -> Result<Vec<i64>, ContentError> {
    match data {
        Data::Ints(v) => Ok(v),
        _ => Err(err(format!("{what} expects integers"))),
    }
}

fn field(encoding: &Pack, key: &str) -> Result<f64, ContentError> {
    encoding
        .get(key)
        .and_then(Pack::number)
        .ok_or_else(|| err(format!("an encoding lacks {key}")))
}

/// The largest number of values a column may expand to (run length can claim anything).
const MAX_VALUES: usize = 1 << 28;

fn byte_array(bytes: &[u8], kind: i64) -> Result<Data, ContentError> {
    let chunks = |n: usize| bytes.chunks_exact(n);
    Ok(match kind {
        1 => Data::Ints(bytes.iter().map(|&b| i64::from(b as i8)).collect()),
        2 => Data::Ints(chunks(2).map(|c| i64::from(i16::from_le_bytes([c[0], c[1]]))).collect()),
        3 => Data::Ints(
            chunks(4)
                .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        4 => Data::Ints(bytes.iter().map(|&b| i64::from(b)).collect()),
        5 => Data::Ints(chunks(2).map(|c| i64::from(u16::from_le_bytes([c[0], c[1]]))).collect()),
        6 => Data::Ints(
            chunks(4)
                .map(|c| i64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        32 => Data::Floats(
            chunks(4)
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        33 => Data::Floats(
            chunks(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        other => return Err(err(format!("unknown byte array type {other}"))),
    })
}

/// Undoes `encodings` (applied in order when writing) on `data`.
fn decode(mut data: Data, encodings: &[Pack]) -> Result<Data, ContentError> {
    for encoding in encodings.iter().rev() {
        let kind = encoding.get("kind").and_then(Pack::str).unwrap_or("");
        data = match kind {
            "ByteArray" => match data {
                Data::Bytes(bytes) => byte_array(&bytes, field(encoding, "type")? as i64)?,
                _ => return Err(err("ByteArray expects bytes")),
            },
            "FixedPoint" => {
                let factor = field(encoding, "factor")?;
                Data::Floats(ints(data, kind)?.into_iter().map(|v| v as f64 / factor).collect())
            }
            "IntervalQuantization" => {
                let (min, max, steps) = (
                    field(encoding, "min")?,
                    field(encoding, "max")?,
                    field(encoding, "numSteps")?,
                );
                let delta = (max - min) / (steps - 1.0).max(1.0);
                Data::Floats(ints(data, kind)?.into_iter().map(|v| min + delta * v as f64).collect())
            }
            "RunLength" => {
                let pairs = ints(data, kind)?;
                let mut out = Vec::new();
                for pair in pairs.chunks_exact(2) {
                    let count = usize::try_from(pair[1]).map_err(|_| err("a negative run length"))?;
                    if out.len() + count > MAX_VALUES {
                        return Err(err("a run-length column expands past 2^28 values"));
                    }
                    out.extend(std::iter::repeat_n(pair[0], count));
                }
                Data::Ints(out)
            }
            "Delta" => {
                let mut value = field(encoding, "origin")? as i64;
                let mut out = ints(data, kind)?;
                for v in &mut out {
                    value = value.wrapping_add(*v);
                    *v = value;
                }
                Data::Ints(out)
            }
            "IntegerPacking" => {
                let bytes = field(encoding, "byteCount")? as u32;
                let unsigned = matches!(encoding.get("isUnsigned"), Some(Pack::Bool(true)));
                let bits = 8 * bytes.clamp(1, 2);
                let (upper, lower) = if unsigned {
                    ((1i64 << bits) - 1, i64::MIN)
                } else {
                    ((1i64 << (bits - 1)) - 1, -(1i64 << (bits - 1)))
                };
                let mut out = Vec::new();
                let mut sum = 0i64;
                for v in ints(data, kind)? {
                    sum = sum.wrapping_add(v);
                    if v != upper && v != lower {
                        out.push(sum);
                        sum = 0;
                    }
                }
                Data::Ints(out)
            }
            "StringArray" => {
                let strings = encoding.get("stringData").and_then(Pack::str).unwrap_or("");
                let offsets = match encoding.get("offsets") {
                    Some(Pack::Bin(b)) => b.clone(),
                    _ => return Err(err("a StringArray lacks offsets")),
                };
                let offsets = ints(
                    decode(
                        Data::Bytes(offsets),
                        encoding.get("offsetEncoding").map_or(&[], Pack::array),
                    )?,
                    kind,
                )?;
                let indices = match data {
                    Data::Bytes(b) => ints(
                        decode(Data::Bytes(b), encoding.get("dataEncoding").map_or(&[], Pack::array))?,
                        kind,
                    )?,
                    other => ints(other, kind)?,
                };
                let piece = |i: i64| -> Option<String> {
                    let i = usize::try_from(i).ok()?;
                    let (start, end) = (*offsets.get(i)?, *offsets.get(i + 1)?);
                    strings
                        .get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
                        .map(str::to_owned)
                };
                Data::Strings(indices.into_iter().map(piece).collect())
            }
            other => return Err(err(format!("unknown encoding {other:?}"))),
        };
    }
    Ok(data)
}

fn column_data(encoded: &Pack) -> Result<Data, ContentError> {
    let bytes = match encoded.get("data") {
        Some(Pack::Bin(b)) => b.clone(),
        _ => return Err(err("a column without data")),
    };
    decode(Data::Bytes(bytes), encoded.get("encoding").map_or(&[], Pack::array))
}

/// A value as CIF text: quoted when a bare word would be misread.
fn cif_word(value: &str, out: &mut String) {
    let bare = !value.is_empty()
        && !value.contains(char::is_whitespace)
        && !value.starts_with(['_', '#', '$', '\'', '"', '[', ']', ';'])
        && !matches!(value, "." | "?")
        && !["data_", "save_", "loop_", "stop_", "global_"]
            .iter()
            .any(|k| value.get(..k.len()).is_some_and(|head| head.eq_ignore_ascii_case(k)));
    if bare {
        out.push_str(value);
    } else if value.contains('\n') || (value.contains("' ") && value.contains("\" ")) {
        out.push_str("\n;");
        out.push_str(value);
        out.push_str("\n;\n");
    } else if !value.contains("' ") && !value.ends_with('\'') {
        out.push('\'');
        out.push_str(value);
        out.push('\'');
    } else {
        out.push('"');
        out.push_str(value);
        out.push('"');
    }
}

/// Decodes BinaryCIF bytes into CIF text.
pub(crate) fn to_cif_text(bytes: &[u8]) -> Result<String, ContentError> {
    let root = Unpacker { bytes, pos: 0 }.value(0)?;
    let blocks = root.get("dataBlocks").ok_or_else(|| err("no dataBlocks"))?;
    let mut out = String::new();
    for block in blocks.array() {
        let header = block.get("header").and_then(Pack::str).unwrap_or("block");
        out.push_str(&format!("data_{header}\n"));
        for category in block.get("categories").map_or(&[][..], Pack::array) {
            let name = category.get("name").and_then(Pack::str).unwrap_or("");
            let rows = category.get("rowCount").and_then(Pack::number).unwrap_or(0.0) as usize;
            let columns = category.get("columns").map_or(&[][..], Pack::array);
            let mut decoded = Vec::with_capacity(columns.len());
            for column in columns {
                let column_name = column.get("name").and_then(Pack::str).unwrap_or("");
                let data = column_data(column.get("data").ok_or_else(|| err("a column without data"))?)?;
                let mask = match column.get("mask") {
                    Some(m @ Pack::Map(_)) => Some(ints(column_data(m)?, "a mask")?),
                    _ => None,
                };
                decoded.push((column_name, data, mask));
            }
            if decoded.is_empty() {
                continue;
            }
            out.push_str("loop_\n");
            let prefix = if name.starts_with('_') { "" } else { "_" };
            for (column_name, _, _) in &decoded {
                out.push_str(&format!("{prefix}{name}.{column_name}\n"));
            }
            for row in 0..rows {
                for (k, (_, data, mask)) in decoded.iter().enumerate() {
                    if k > 0 {
                        out.push(' ');
                    }
                    match mask.as_ref().and_then(|m| m.get(row)) {
                        Some(1) => out.push('.'),
                        Some(2) => out.push('?'),
                        _ => match data {
                            Data::Ints(v) => match v.get(row) {
                                Some(x) => out.push_str(&x.to_string()),
                                None => out.push('?'),
                            },
                            Data::Floats(v) => match v.get(row) {
                                Some(x) => out.push_str(&x.to_string()),
                                None => out.push('?'),
                            },
                            Data::Strings(v) => match v.get(row) {
                                Some(Some(s)) => cif_word(s, &mut out),
                                _ => out.push('?'),
                            },
                            Data::Bytes(_) => out.push('?'),
                        },
                    }
                }
                out.push('\n');
            }
        }
    }
    Ok(out)
}
