//! The header of numpy's `.npy` format (which cryoSPARC's `.cs` files are): the magic string, a
//! version, and a Python dict literal giving the dtype (`descr`), `fortran_order` and `shape`.
//! Only the small subset of Python literal syntax that numpy writes is parsed.

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
pub fn parse_literal(text: &str) -> Result<PyValue, String> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = parser.value()?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(format!("unexpected text after the header dict at byte {}", parser.pos));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
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

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.pos))
        }
    }

    fn value(&mut self) -> Result<PyValue, String> {
        match self.peek() {
            Some(b'{') => self.dict(),
            Some(b'[') => self.seq(b'[', b']'),
            Some(b'(') => self.seq(b'(', b')'),
            Some(b'\'' | b'"') => self.string().map(PyValue::Str),
            Some(b'T') => self.word("True", PyValue::Bool(true)),
            Some(b'F') => self.word("False", PyValue::Bool(false)),
            Some(c) if c == b'-' || c.is_ascii_digit() => self.int(),
            Some(c) => Err(format!("unexpected '{}' at byte {}", c as char, self.pos)),
            None => Err("the header ends early".into()),
        }
    }

    fn word(&mut self, word: &str, value: PyValue) -> Result<PyValue, String> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(format!("unexpected word at byte {}", self.pos))
        }
    }

    fn int(&mut self) -> Result<PyValue, String> {
        let start = self.pos;
        if self.bytes[self.pos] == b'-' {
            self.pos += 1;
        }
        while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        // numpy may write `10L` on Python 2.
        let text = std::str::from_utf8(&self.bytes[start..self.pos]).map_err(|e| e.to_string())?;
        if self.bytes.get(self.pos) == Some(&b'L') {
            self.pos += 1;
        }
        text.parse()
            .map(PyValue::Int)
            .map_err(|_| format!("bad integer '{text}'"))
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.bytes[self.pos];
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.bytes.len() && self.bytes[self.pos] != quote {
            self.pos += 1;
        }
        if self.pos >= self.bytes.len() {
            return Err("unterminated string in header".into());
        }
        let s = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
        self.pos += 1;
        Ok(s)
    }

    fn seq(&mut self, open: u8, close: u8) -> Result<PyValue, String> {
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
                _ => return Err(format!("expected ',' or '{}' at byte {}", close as char, self.pos)),
            }
        }
    }

    fn dict(&mut self) -> Result<PyValue, String> {
        self.expect(b'{')?;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(PyValue::Dict(items));
            }
            let key = match self.value()? {
                PyValue::Str(s) => s,
                _ => return Err("dict keys must be strings".into()),
            };
            self.expect(b':')?;
            items.push((key, self.value()?));
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' at byte {}", self.pos)),
            }
        }
    }
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
