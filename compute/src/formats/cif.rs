//! A CIF 1.1 reader (the syntax of mmCIF): data blocks, key–value pairs and loops, with quoted
//! strings, `;` text fields and comments. Values are ranges into the file's text, so a large
//! `_atom_site` loop costs a few bytes per value.

use std::borrow::Cow;

use crate::formats::error::ContentError;

/// What a value is besides its text: `?` (unknown) and `.` (inapplicable) are only special when
/// not quoted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Unknown,
    Inapplicable,
}

/// One value: a range of the document's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    start: u32,
    end: u32,
    pub kind: ValueKind,
}

/// A category's items written as a loop (`loop_` then tags then rows).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loop {
    pub tags: Vec<String>,
    /// Row-major: row `r`, column `c` is `values[r * tags.len() + c]`.
    pub values: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Pair { tag: String, value: Value },
    Loop(Loop),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    pub name: String,
    pub items: Vec<Item>,
}

/// A parsed CIF file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Document {
    text: String,
    pub blocks: Vec<Block>,
}

/// Columns of one category, from a loop or from key–value pairs (a one-row table).
pub struct Table<'a> {
    document: &'a Document,
    tags: Vec<&'a str>,
    /// For a loop: the loop's values; for pairs: one value per tag.
    values: Cow<'a, [Value]>,
    width: usize,
}

impl Document {
    /// Parses CIF text. Errors give the line.
    pub fn parse(text: String) -> Result<Self, ContentError> {
        if text.len() >= u32::MAX as usize {
            return Err("the file is larger than 4 GiB, which this CIF reader does not handle".into());
        }
        let blocks = Parser::new(text.as_bytes()).parse()?;
        Ok(Self { text, blocks })
    }

    /// The text of `value` (quotes and text-field markers removed); `?` and `.` read as themselves.
    pub fn str(&self, value: &Value) -> &str {
        &self.text[value.start as usize..value.end as usize]
    }

    /// The text of `value`, or `None` for `?` and `.`.
    pub fn text(&self, value: &Value) -> Option<&str> {
        (value.kind == ValueKind::Text).then(|| self.str(value))
    }

    /// The table of category `prefix` (`"_atom_site."`) in `block`, if it has any item.
    pub fn table<'a>(&'a self, block: &'a Block, prefix: &str) -> Option<Table<'a>> {
        // The item name after the category prefix, for tags of this category.
        let item_name = |tag: &'a str| -> Option<&'a str> {
            let head = tag.get(..prefix.len())?;
            let rest = &tag[prefix.len()..];
            (head.eq_ignore_ascii_case(prefix) && !rest.is_empty()).then_some(rest)
        };
        let mut pairs_tags = Vec::new();
        let mut pairs_values = Vec::new();
        for item in &block.items {
            match item {
                Item::Loop(lp) if lp.tags.first().is_some_and(|t| item_name(t).is_some()) => {
                    return Some(Table {
                        document: self,
                        tags: lp.tags.iter().map(|t| item_name(t).unwrap_or(t)).collect(),
                        values: Cow::Borrowed(&lp.values),
                        width: lp.tags.len(),
                    });
                }
                Item::Pair { tag, value } if item_name(tag).is_some() => {
                    pairs_tags.push(item_name(tag).unwrap_or(tag));
                    pairs_values.push(*value);
                }
                _ => {}
            }
        }
        let width = pairs_tags.len();
        (width > 0).then_some(Table {
            document: self,
            tags: pairs_tags,
            values: Cow::Owned(pairs_values),
            width,
        })
    }

    /// A single item's value (`_cell.length_a`), from a pair or the first row of a loop.
    pub fn value<'a>(&'a self, block: &'a Block, tag: &str) -> Option<&'a str> {
        let (prefix, name) = tag.split_at(tag.find('.').map_or(0, |i| i + 1));
        let table = self.table(block, prefix)?;
        let column = table.column(name)?;
        (table.rows() > 0).then(|| table.get(0, column)).flatten()
    }
}

impl<'a> Table<'a> {
    pub fn rows(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }

    /// Index of column `name` (case-insensitive, without the category prefix).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.tags.iter().position(|t| t.eq_ignore_ascii_case(name))
    }

    /// The text at (`row`, `column`), `None` for `?` and `.`.
    pub fn get(&self, row: usize, column: usize) -> Option<&'a str> {
        self.document.text(&self.values[row * self.width + column])
    }

    /// The first of `columns` present (as gemmi prefers `auth_asym_id` over `label_asym_id`).
    pub fn first_column(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| self.column(n))
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Data(u32, u32),
    Loop,
    Save,
    Stop,
    Global,
    Tag(u32, u32),
    Value(Value),
}

struct Parser<'t> {
    text: &'t [u8],
    pos: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'t> Parser<'t> {
    fn new(text: &'t [u8]) -> Self {
        Self { text, pos: 0 }
    }

    fn line_of(&self, pos: usize) -> usize {
        1 + self.text[..pos.min(self.text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn error(&self, pos: usize, message: &str) -> ContentError {
        ContentError(format!("line {}: {message}", self.line_of(pos)))
    }

    fn at_line_start(&self, pos: usize) -> bool {
        pos == 0 || matches!(self.text[pos - 1], b'\n' | b'\r')
    }

    /// The next token, or `None` at the end.
    fn next(&mut self) -> Result<Option<(usize, Token)>, ContentError> {
        let text = self.text;
        loop {
            while self.pos < text.len() && is_space(text[self.pos]) {
                self.pos += 1;
            }
            if self.pos >= text.len() {
                return Ok(None);
            }
            if text[self.pos] == b'#' {
                while self.pos < text.len() && text[self.pos] != b'\n' {
                    self.pos += 1;
                }
                continue;
            }
            break;
        }
        let start = self.pos;
        let c = text[start];
        let value = |s: usize, e: usize, kind| {
            Token::Value(Value {
                start: s as u32,
                end: e as u32,
                kind,
            })
        };
        if c == b';' && self.at_line_start(start) {
            // A text field: up to the next line that starts with ';'.
            let mut p = start + 1;
            loop {
                match text[p..].iter().position(|&b| b == b'\n') {
                    Some(nl) => {
                        p += nl + 1;
                        if p < text.len() && text[p] == b';' {
                            let mut end = p - 1;
                            if end > start + 1 && text[end - 1] == b'\r' {
                                end -= 1;
                            }
                            self.pos = p + 1;
                            return Ok(Some((start, value(start + 1, end.max(start + 1), ValueKind::Text))));
                        }
                    }
                    None => return Err(self.error(start, "a text field (;) is not closed")),
                }
            }
        }
        if c == b'\'' || c == b'"' {
            let mut p = start + 1;
            while p < text.len() {
                if text[p] == c && (p + 1 == text.len() || is_space(text[p + 1])) {
                    self.pos = p + 1;
                    return Ok(Some((start, value(start + 1, p, ValueKind::Text))));
                }
                if text[p] == b'\n' {
                    break;
                }
                p += 1;
            }
            return Err(self.error(start, "a quoted value is not closed on its line"));
        }
        let mut end = start;
        while end < text.len() && !is_space(text[end]) {
            end += 1;
        }
        self.pos = end;
        let word = &text[start..end];
        let token = if c == b'_' {
            Token::Tag(start as u32, end as u32)
        } else if word.len() >= 5 && word[..5].eq_ignore_ascii_case(b"data_") {
            Token::Data(start as u32 + 5, end as u32)
        } else if word.eq_ignore_ascii_case(b"loop_") {
            Token::Loop
        } else if word.len() >= 5 && word[..5].eq_ignore_ascii_case(b"save_") {
            Token::Save
        } else if word.eq_ignore_ascii_case(b"stop_") {
            Token::Stop
        } else if word.eq_ignore_ascii_case(b"global_") {
            Token::Global
        } else if word == b"?" {
            value(start, end, ValueKind::Unknown)
        } else if word == b"." {
            value(start, end, ValueKind::Inapplicable)
        } else {
            value(start, end, ValueKind::Text)
        };
        Ok(Some((start, token)))
    }

    fn string(&self, start: u32, end: u32) -> String {
        String::from_utf8_lossy(&self.text[start as usize..end as usize]).into_owned()
    }

    fn parse(mut self) -> Result<Vec<Block>, ContentError> {
        let mut blocks: Vec<Block> = Vec::new();
        let mut pending: Option<(usize, Token)> = None;
        let mut in_save_frame = false;
        while let Some((pos, token)) = match pending.take() {
            Some(t) => Some(t),
            None => self.next()?,
        } {
            match token {
                Token::Data(s, e) => {
                    in_save_frame = false;
                    blocks.push(Block {
                        name: self.string(s, e),
                        items: Vec::new(),
                    });
                }
                Token::Save => in_save_frame = !in_save_frame,
                Token::Global | Token::Stop => {}
                Token::Tag(s, e) => {
                    let Some((vpos, value)) = self.next()? else {
                        return Err(self.error(pos, "a tag has no value at the end of the file"));
                    };
                    let Token::Value(value) = value else {
                        return Err(self.error(vpos, &format!("tag {} has no value", self.string(s, e))));
                    };
                    if !in_save_frame {
                        let block = Self::block(&mut blocks, pos, &self)?;
                        block.items.push(Item::Pair {
                            tag: self.string(s, e),
                            value,
                        });
                    }
                }
                Token::Loop => {
                    let mut lp = Loop::default();
                    loop {
                        match self.next()? {
                            Some((_, Token::Tag(s, e))) => lp.tags.push(self.string(s, e)),
                            other => {
                                pending = other;
                                break;
                            }
                        }
                    }
                    while let Some((_, Token::Value(v))) = pending {
                        lp.values.push(v);
                        pending = self.next()?;
                    }
                    if lp.tags.is_empty() {
                        return Err(self.error(pos, "loop_ without tags"));
                    }
                    if !lp.values.len().is_multiple_of(lp.tags.len()) {
                        return Err(self.error(
                            pos,
                            &format!(
                                "the loop of {} has {} values, not a multiple of its {} columns",
                                lp.tags[0],
                                lp.values.len(),
                                lp.tags.len()
                            ),
                        ));
                    }
                    if !in_save_frame {
                        Self::block(&mut blocks, pos, &self)?.items.push(Item::Loop(lp));
                    }
                }
                Token::Value(_) => return Err(self.error(pos, "a value without a tag")),
            }
        }
        Ok(blocks)
    }

    fn block<'b>(blocks: &'b mut [Block], pos: usize, parser: &Self) -> Result<&'b mut Block, ContentError> {
        blocks
            .last_mut()
            .ok_or_else(|| parser.error(pos, "data before the first data_ block"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_loops_quotes_and_text_fields() {
        let text = "data_test\n_cell.length_a 10.5\n_struct.title\n;A multi-line\ntitle\n;\n# comment\nloop_\n_atom_site.id\n_atom_site.label_atom_id\n_atom_site.auth_asym_id\n1 \"O5'\" A\n2 'C 1' ?\n3 N ''\n";
        let doc = Document::parse(text.to_owned()).expect("parse");
        assert_eq!(doc.blocks.len(), 1);
        let block = &doc.blocks[0];
        assert_eq!(block.name, "test");
        assert_eq!(doc.value(block, "_cell.length_a"), Some("10.5"));
        assert_eq!(doc.value(block, "_struct.title"), Some("A multi-line\ntitle"));
        let table = doc.table(block, "_atom_site.").expect("atom_site");
        assert_eq!(table.rows(), 3);
        let name = table.column("label_atom_id").expect("column");
        let chain = table.column("AUTH_ASYM_ID").expect("column");
        assert_eq!(table.get(0, name), Some("O5'"));
        assert_eq!(table.get(1, name), Some("C 1"));
        assert_eq!(table.get(1, chain), None);
        assert_eq!(table.get(2, chain), Some(""));
    }

    #[test]
    fn broken_syntax_is_an_error_with_a_line() {
        let err = Document::parse("data_x\nloop_\n_a.b\n_a.c\n1 2 3\n".to_owned()).expect_err("odd loop");
        assert!(err.0.contains("line 2"), "{err}");
        let err = Document::parse("data_x\n_a.b 'open\n".to_owned()).expect_err("open quote");
        assert!(err.0.contains("line 2"), "{err}");
        assert!(Document::parse("_a.b 1\n".to_owned()).is_err());
    }
}
