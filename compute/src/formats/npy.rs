//! numpy's `.npy` format, which cryoSPARC's `.cs` files and cryoDRGN's latents are: the magic
//! string, a version, and a Python dict literal giving the dtype (`descr`), `fortran_order` and
//! `shape`. Only the small subset of Python literal syntax that numpy writes is parsed. The
//! header is read and written here for every caller; `.cs` record arrays are decoded in
//! [`crate::formats::cs`], plain float32 arrays by [`read_f32_array`].

use std::io::Read;
use std::path::Path;

use crate::formats::error::{ContentError, FormatError, FormatResult};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Larger headers are refused (numpy's own limit is far smaller); the header is read as it
/// arrives, so a length word that lies allocates nothing.
const MAX_HEADER_BYTES: usize = 16 << 20;
/// numpy's dtypes nest a few levels deep; deeper nesting is not a header, and refusing it keeps
/// the recursive parser off the end of the stack.
const MAX_NESTING: usize = 32;

/// Reads an `.npy` header from the start of `reader`: its dict and the bytes it took (where the
/// data starts). The dict holds the three keys numpy writes: `descr`, `fortran_order`, `shape`.
pub fn read_header(path: &Path, reader: &mut dyn Read) -> FormatResult<(PyValue, usize)> {
    let invalid = |m: String| FormatError::invalid(path, m);
    let mut prefix = [0u8; 8];
    reader
        .read_exact(&mut prefix)
        .map_err(|_| invalid("too short for a .npy file (no numpy header)".into()))?;
    if &prefix[..6] != MAGIC {
        return Err(invalid(
            "not a .npy/.cs file: the numpy magic string \\x93NUMPY is missing".into(),
        ));
    }
    // Version 1 stores the header length in 2 bytes, versions 2 and 3 in 4 (little-endian).
    let length_bytes = match prefix[6] {
        1 => 2,
        2 | 3 => 4,
        v => return Err(FormatError::unsupported(path, format!("npy format version {v}"))),
    };
    let mut length = [0u8; 4];
    reader
        .read_exact(&mut length[..length_bytes])
        .map_err(|_| invalid("the file ends inside the numpy header's length".into()))?;
    let header_len = u32::from_le_bytes(length) as usize;
    if header_len > MAX_HEADER_BYTES {
        return Err(invalid(format!("npy header claims {header_len} bytes")));
    }
    let prefix_bytes = 8 + length_bytes;
    let mut header = Vec::new();
    (&mut *reader)
        .take(header_len as u64)
        .read_to_end(&mut header)
        .map_err(|e| FormatError::io(path, e))?;
    if header.len() < header_len {
        return Err(FormatError::SizeMismatch {
            path: path.to_owned(),
            what: "npy header".into(),
            expected_bytes: (prefix_bytes + header_len) as u64,
            actual_bytes: (prefix_bytes + header.len()) as u64,
        });
    }
    let header_text = String::from_utf8_lossy(&header);
    let literal = parse_literal(header_text.trim_end()).map_err(|m| invalid(format!("npy header: {m}")))?;
    if !matches!(literal, PyValue::Dict(_)) {
        return Err(invalid("npy header: not a dict".into()));
    }
    if let Some(missing) = ["descr", "fortran_order", "shape"]
        .into_iter()
        .find(|key| literal.get(key).is_none())
    {
        return Err(invalid(format!("npy header: no '{missing}'")));
    }
    Ok((literal, prefix_bytes + header_len))
}

/// Reads a little-endian float32 `.npy` array of one or two dimensions in C order:
/// (values, rows, columns). The file must hold exactly the values its shape says.
pub fn read_f32_array(path: &Path) -> FormatResult<(Vec<f32>, usize, usize)> {
    let bytes = std::fs::read(path).map_err(|e| FormatError::io(path, e))?;
    let (literal, start) = read_header(path, &mut bytes.as_slice())?;
    let invalid = |m: &str| FormatError::invalid(path, m);
    if literal.get("descr").and_then(PyValue::as_str) != Some("<f4") {
        return Err(FormatError::unsupported(
            path,
            "expected a little-endian float32 array ('<f4')",
        ));
    }
    if literal.get("fortran_order") == Some(&PyValue::Bool(true)) {
        return Err(FormatError::unsupported(path, "Fortran-ordered arrays"));
    }
    let dims: Vec<usize> = literal
        .get("shape")
        .and_then(PyValue::as_seq)
        .ok_or_else(|| invalid("npy header: the shape is not a tuple"))?
        .iter()
        .map(|d| d.as_int().and_then(|d| usize::try_from(d).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| invalid("npy header: the shape holds a negative or non-integer size"))?;
    let (rows, cols) = match dims.as_slice() {
        [r] => (*r, 1),
        [r, c] => (*r, *c),
        _ => return Err(invalid("expected a 1- or 2-dimensional array")),
    };
    // In u128 so that a shape claiming more than memory can hold is a mismatch, not an overflow.
    let expected_bytes = (rows as u128)
        .saturating_mul(cols as u128)
        .saturating_mul(4)
        .saturating_add(start as u128);
    if expected_bytes != bytes.len() as u128 {
        return Err(FormatError::SizeMismatch {
            path: path.to_owned(),
            what: format!("a {rows} × {cols} float32 array"),
            expected_bytes: u64::try_from(expected_bytes).unwrap_or(u64::MAX),
            actual_bytes: bytes.len() as u64,
        });
    }
    let values = bytes[start..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((values, rows, cols))
}

/// Writes a float32 `.npy` file of shape `shape` (C order), as numpy and cryoDRGN read it,
/// atomically.
pub fn write_f32_array(path: &Path, values: &[f32], shape: &[usize]) -> FormatResult<()> {
    let dims = shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let dims = if shape.len() == 1 { format!("{dims},") } else { dims };
    let header = encode_header(&format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}"
    ));
    crate::io::write_atomically(path, |w| {
        w.write_all(&header)?;
        let mut bytes = Vec::with_capacity(4 * values.len());
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&bytes)
    })
}

/// A Python literal as numpy writes it in `.npy` headers.
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    Str(String),
    Int(i64),
    Bool(bool),
    /// Lists and tuples alike.
    Seq(Vec<PyValue>),
    Dict(Vec<(String, PyValue)>),
}

impl PyValue {
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            Self::Dict(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[PyValue]> {
        match self {
            Self::Seq(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(v) => Some(*v),
            _ => None,
        }
    }
}

/// Parses one literal; returns a message on malformed input.
pub fn parse_literal(text: &str) -> Result<PyValue, ContentError> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let value = parser.value()?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(ContentError(format!(
            "unexpected text after the header dict at byte {}",
            parser.pos
        )));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Dicts, lists and tuples open around `pos`.
    depth: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), ContentError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(ContentError(format!("expected '{}' at byte {}", c as char, self.pos)))
        }
    }

    fn value(&mut self) -> Result<PyValue, ContentError> {
        match self.peek() {
            Some(b'{' | b'[' | b'(') if self.depth >= MAX_NESTING => Err(ContentError(format!(
                "nested more than {MAX_NESTING} deep at byte {}",
                self.pos
            ))),
            Some(b'{') => self.nested(Self::dict),
            Some(b'[') => self.nested(|p| p.seq(b'[', b']')),
            Some(b'(') => self.nested(|p| p.seq(b'(', b')')),
            Some(b'\'' | b'"') => self.string().map(PyValue::Str),
            Some(b'T') => self.word("True", PyValue::Bool(true)),
            Some(b'F') => self.word("False", PyValue::Bool(false)),
            Some(c) if c == b'-' || c.is_ascii_digit() => self.int(),
            Some(c) => Err(ContentError(format!("unexpected '{}' at byte {}", c as char, self.pos))),
            None => Err(ContentError("the header ends early".into())),
        }
    }

    fn nested(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<PyValue, ContentError>,
    ) -> Result<PyValue, ContentError> {
        self.depth += 1;
        let value = parse(self);
        self.depth -= 1;
        value
    }

    fn word(&mut self, word: &str, value: PyValue) -> Result<PyValue, ContentError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(ContentError(format!("unexpected word at byte {}", self.pos)))
        }
    }

    fn int(&mut self) -> Result<PyValue, ContentError> {
        let start = self.pos;
        if self.bytes[self.pos] == b'-' {
            self.pos += 1;
        }
        while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        // numpy may write `10L` on Python 2.
        let text = std::str::from_utf8(&self.bytes[start..self.pos])
            .map_err(|e| ContentError(format!("header is not UTF-8: {e}")))?;
        if self.bytes.get(self.pos) == Some(&b'L') {
            self.pos += 1;
        }
        text.parse()
            .map(PyValue::Int)
            .map_err(|_| ContentError(format!("bad integer '{text}'")))
    }

    fn string(&mut self) -> Result<String, ContentError> {
        let quote = self.bytes[self.pos];
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.bytes.len() && self.bytes[self.pos] != quote {
            self.pos += 1;
        }
        if self.pos >= self.bytes.len() {
            return Err(ContentError("unterminated string in header".into()));
        }
        let s = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
        self.pos += 1;
        Ok(s)
    }

    fn seq(&mut self, open: u8, close: u8) -> Result<PyValue, ContentError> {
        self.expect(open)?;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(PyValue::Seq(items));
            }
            items.push(self.value()?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {}
                _ => {
                    return Err(ContentError(format!(
                        "expected ',' or '{}' at byte {}",
                        close as char, self.pos
                    )));
                }
            }
        }
    }

    fn dict(&mut self) -> Result<PyValue, ContentError> {
        self.expect(b'{')?;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(PyValue::Dict(items));
            }
            let key = match self.value()? {
                PyValue::Str(s) => s,
                _ => return Err(ContentError("dict keys must be strings".into())),
            };
            self.expect(b':')?;
            items.push((key, self.value()?));
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(ContentError(format!("expected ',' or '}}' at byte {}", self.pos))),
            }
        }
    }
}

/// The bytes that open an `.npy` file whose header dict is `dict`: the magic string, the version
/// (1, or 2 when the header needs a 32-bit length), the length, and the dict padded with spaces
/// and a newline to a multiple of 64 bytes, as numpy writes it.
pub fn encode_header(dict: &str) -> Vec<u8> {
    let (version, prefix) = if dict.len() + 11 < 65536 { (1u8, 10) } else { (2u8, 12) };
    let total = (prefix + dict.len() + 1).div_ceil(64) * 64;
    let mut header = dict.as_bytes().to_vec();
    header.resize(total - prefix - 1, b' ');
    header.push(b'\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(&header);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_structured_header() {
        let text = "{'descr': [('uid', '<u8'), ('blob/shape', '<u4', (2,))], 'fortran_order': False, 'shape': (3,), }";
        let v = parse_literal(text).expect("parse");
        let descr = v.get("descr").and_then(PyValue::as_seq).expect("descr");
        assert_eq!(descr.len(), 2);
        assert_eq!(v.get("fortran_order"), Some(&PyValue::Bool(false)));
        assert_eq!(
            v.get("shape").and_then(PyValue::as_seq).map(|s| s[0].as_int()),
            Some(Some(3))
        );
        assert!(parse_literal("{'a': ").is_err());
    }
}
