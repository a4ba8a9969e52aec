//! RELION STAR files: any number of `data_` blocks, each with key–value pairs and/or `loop_`
//! tables. Values are kept as the text that was read, so every column cryoforge does not use is
//! written back out unchanged. Interpreting particles (optics, poses, CTF) is `particles`' job.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use crate::formats::error::{FormatError, FormatResult};
use crate::io::{ProgressFn, open_reader, write_atomically};

/// A whole STAR file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StarFile {
    pub blocks: Vec<StarBlock>,
}

/// One `data_NAME` block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StarBlock {
    /// The name after `data_` (may be empty, as in RELION 3.0's `data_`).
    pub name: String,
    /// Comment lines directly before the block (RELION ≥ 3.1 writes `# version 30001`).
    pub comments: Vec<String>,
    /// `_key value` pairs outside loops, in order.
    pub pairs: Vec<(String, String)>,
    pub tables: Vec<StarTable>,
}

/// A `loop_` table: column names without the leading underscore, rows of text cells.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StarTable {
    pub columns: Vec<String>,
    /// Row-major cells: `cells[row * columns.len() + column]`.
    pub cells: Vec<String>,
}

impl StarTable {
    pub fn new(columns: Vec<String>) -> Self {
        Self {
            columns,
            cells: Vec::new(),
        }
    }

    pub fn row_count(&self) -> usize {
        if self.columns.is_empty() {
            0
        } else {
            self.cells.len() / self.columns.len()
        }
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        let name = name.trim_start_matches('_');
        self.columns.iter().position(|c| c == name)
    }

    pub fn cell(&self, row: usize, column: usize) -> &str {
        &self.cells[row * self.columns.len() + column]
    }

    pub fn row(&self, row: usize) -> &[String] {
        let n = self.columns.len();
        &self.cells[row * n..(row + 1) * n]
    }

    pub fn push_row(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.cells.extend(row);
    }

    /// Adds a column filled by `value(row)`, or overwrites it if it exists.
    pub fn set_column(&mut self, name: &str, mut value: impl FnMut(usize) -> String) {
        let name = name.trim_start_matches('_');
        let rows = self.row_count();
        if let Some(c) = self.column_index(name) {
            let n = self.columns.len();
            for r in 0..rows {
                self.cells[r * n + c] = value(r);
            }
            return;
        }
        let n = self.columns.len();
        let mut cells = Vec::with_capacity(rows * (n + 1));
        for r in 0..rows {
            cells.extend(self.cells[r * n..(r + 1) * n].iter().cloned());
            cells.push(value(r));
        }
        self.columns.push(name.to_owned());
        self.cells = cells;
    }

    /// A new table with the same columns and only the given rows, in the given order.
    pub fn select_rows(&self, rows: &[usize]) -> Self {
        let mut out = Self::new(self.columns.clone());
        out.cells.reserve(rows.len() * self.columns.len());
        for &r in rows {
            out.cells.extend(self.row(r).iter().cloned());
        }
        out
    }

    /// Parses a column as numbers, naming the file, column and row of the first bad cell.
    pub fn column_f64(&self, path: &Path, name: &str) -> FormatResult<Option<Vec<f64>>> {
        let Some(c) = self.column_index(name) else {
            return Ok(None);
        };
        (0..self.row_count())
            .map(|r| {
                let text = self.cell(r, c);
                text.parse::<f64>().map_err(|_| {
                    FormatError::invalid(path, format!("column _{name}, row {}: '{text}' is not a number", r + 1))
                })
            })
            .collect::<FormatResult<Vec<f64>>>()
            .map(Some)
    }
}

impl StarBlock {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// The block's first table, which is the only one RELION writes per block.
    pub fn table(&self) -> Option<&StarTable> {
        self.tables.first()
    }

    pub fn table_mut(&mut self) -> Option<&mut StarTable> {
        self.tables.first_mut()
    }

    pub fn value(&self, key: &str) -> Option<&str> {
        let key = key.trim_start_matches('_');
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl StarFile {
    pub fn block(&self, name: &str) -> Option<&StarBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }

    pub fn block_mut(&mut self, name: &str) -> Option<&mut StarBlock> {
        self.blocks.iter_mut().find(|b| b.name == name)
    }

    pub fn read(path: &Path) -> FormatResult<Self> {
        Self::read_with_progress(path, None)
    }

    pub fn read_with_progress(path: &Path, progress: Option<ProgressFn<'_>>) -> FormatResult<Self> {
        let reader = BufReader::new(open_reader(path, progress)?);
        parse(path, reader)
    }

    /// Writes the file atomically, with aligned columns-per-row as RELION does.
    pub fn write(&self, path: &Path) -> FormatResult<()> {
        write_atomically(path, |w| self.write_to(w))
    }

    pub fn write_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        for block in &self.blocks {
            writeln!(w)?;
            for comment in &block.comments {
                writeln!(w, "{comment}")?;
            }
            writeln!(w)?;
            writeln!(w, "data_{}", block.name)?;
            writeln!(w)?;
            if !block.pairs.is_empty() {
                let width = block.pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                for (k, v) in &block.pairs {
                    writeln!(w, "_{k:<width$} {}", quote(v))?;
                }
                writeln!(w)?;
            }
            for table in &block.tables {
                writeln!(w, "loop_ ")?;
                for (i, c) in table.columns.iter().enumerate() {
                    writeln!(w, "_{c} #{}", i + 1)?;
                }
                let mut line = String::new();
                for r in 0..table.row_count() {
                    line.clear();
                    for cell in table.row(r) {
                        let q = quote(cell);
                        let pad = 12usize.saturating_sub(q.len());
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(&q);
                        line.push(' ');
                    }
                    writeln!(w, "{}", line.trim_end())?;
                }
                writeln!(w)?;
            }
        }
        Ok(())
    }
}

/// Quotes a value that would not survive as a bare word.
fn quote(value: &str) -> String {
    if value.is_empty() {
        "\"\"".to_owned()
    } else if value.contains(char::is_whitespace)
        || value.starts_with(['_', '#', '\'', '"', '$'])
        || value.starts_with("data_")
        || value == "loop_"
    {
        if value.contains('"') {
            format!("'{value}'")
        } else {
            format!("\"{value}\"")
        }
    } else {
        value.to_owned()
    }
}

/// Splits a line into words, honouring quotes and `#` comments.
fn tokenize(path: &Path, line_number: usize, line: &str, out: &mut Vec<String>) -> FormatResult<()> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#' {
            break;
        } else if c == b'\'' || c == b'"' {
            // A quote closes only when followed by white space or the end of the line.
            let mut j = i + 1;
            loop {
                if j >= bytes.len() {
                    return Err(FormatError::invalid(
                        path,
                        format!("line {line_number}: unterminated quoted value"),
                    ));
                }
                if bytes[j] == c && (j + 1 == bytes.len() || bytes[j + 1].is_ascii_whitespace()) {
                    break;
                }
                j += 1;
            }
            out.push(line[i + 1..j].to_owned());
            i = j + 1;
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push(line[start..i].to_owned());
        }
    }
    Ok(())
}

#[derive(PartialEq)]
enum State {
    /// Outside any loop, or reading pairs.
    Pairs,
    /// After `loop_`, reading `_column` lines.
    Header,
    /// Reading rows of the current table.
    Rows,
}

fn parse(path: &Path, reader: impl BufRead) -> FormatResult<StarFile> {
    let mut parser = Parser {
        path,
        file: StarFile::default(),
        pending_comments: Vec::new(),
        state: State::Pairs,
        words: Vec::new(),
        row: Vec::new(),
        saw_anything: false,
    };
    for (index, line) in reader.lines().enumerate() {
        let line_number = index + 1;
        let line = line.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => FormatError::invalid(
                path,
                format!("line {line_number}: not text (is this really a STAR file?)"),
            ),
            _ => FormatError::io(path, e),
        })?;
        parser.line(line_number, &line)?;
    }
    parser.finish()
}

/// The STAR reader's state between lines.
struct Parser<'a> {
    path: &'a Path,
    file: StarFile,
    /// Comments seen since the last block, kept for the next one.
    pending_comments: Vec<String>,
    state: State,
    /// Scratch space for a line's words.
    words: Vec<String>,
    /// The row being read (rows may span lines).
    row: Vec<String>,
    saw_anything: bool,
}

impl Parser<'_> {
    fn line(&mut self, line_number: usize, line: &str) -> FormatResult<()> {
        let path = self.path;
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Ok(());
        }
        if trimmed.starts_with('#') {
            if self.file.blocks.is_empty() || self.state == State::Rows || self.state == State::Pairs {
                self.pending_comments.push(trimmed.to_owned());
            }
            return Ok(());
        }
        if line.starts_with(';') {
            return Err(FormatError::unsupported(
                path,
                format!("line {line_number}: multi-line ';' text fields"),
            ));
        }
        self.saw_anything = true;
        if let Some(name) = trimmed.strip_prefix("data_") {
            if !self.row.is_empty() {
                return Err(incomplete_row(path, line_number));
            }
            let mut block = StarBlock::new(name.trim());
            block.comments = std::mem::take(&mut self.pending_comments);
            self.file.blocks.push(block);
            self.state = State::Pairs;
            return Ok(());
        }
        if self.file.blocks.is_empty() {
            return Err(FormatError::invalid(
                path,
                format!("line {line_number}: content before the first data_ block (is this a STAR file?)"),
            ));
        }
        self.pending_comments.clear();
        if trimmed == "loop_" || trimmed.starts_with("loop_ ") {
            if !self.row.is_empty() {
                return Err(incomplete_row(path, line_number));
            }
            self.block().tables.push(StarTable::default());
            self.state = State::Header;
            return Ok(());
        }
        if trimmed.starts_with('_') {
            return self.key_line(line_number, trimmed);
        }
        self.row_line(line_number, line, trimmed)
    }

    fn block(&mut self) -> &mut StarBlock {
        // `line` only gets here once a block exists.
        let last = self.file.blocks.len() - 1;
        &mut self.file.blocks[last]
    }

    /// `_key value` (a pair), or `_column` in a loop's header.
    fn key_line(&mut self, line_number: usize, trimmed: &str) -> FormatResult<()> {
        let path = self.path;
        if self.state == State::Rows && !self.row.is_empty() {
            // A new pair after a table ends that table.
            return Err(incomplete_row(path, line_number));
        }
        let mut words = std::mem::take(&mut self.words);
        words.clear();
        tokenize(path, line_number, trimmed, &mut words)?;
        let key = words[0].trim_start_matches('_').to_owned();
        match self.state {
            State::Header => {
                // `_rlnImageName #3`: the number after the name is only a comment.
                if let Some(table) = self.block().tables.last_mut() {
                    table.columns.push(key);
                }
            }
            State::Pairs => {
                let value = words
                    .get(1)
                    .cloned()
                    .ok_or_else(|| FormatError::invalid(path, format!("line {line_number}: _{key} has no value")))?;
                self.block().pairs.push((key, value));
            }
            State::Rows => {
                let value = words.get(1).cloned().unwrap_or_default();
                self.block().pairs.push((key, value));
                self.state = State::Pairs;
            }
        }
        self.words = words;
        Ok(())
    }

    /// A data row (possibly continued over several lines).
    fn row_line(&mut self, line_number: usize, line: &str, trimmed: &str) -> FormatResult<()> {
        let path = self.path;
        let in_table = self.state != State::Pairs;
        let mut words = std::mem::take(&mut self.words);
        let mut row = std::mem::take(&mut self.row);
        let Some(table) = self.block().tables.last_mut().filter(|_| in_table) else {
            return Err(FormatError::invalid(
                path,
                format!("line {line_number}: value '{trimmed}' outside a loop_ or key"),
            ));
        };
        if table.columns.is_empty() {
            return Err(FormatError::invalid(
                path,
                format!("line {line_number}: loop_ with no columns"),
            ));
        }
        words.clear();
        tokenize(path, line_number, line, &mut words)?;
        for word in words.drain(..) {
            row.push(word);
            if row.len() == table.columns.len() {
                table.cells.append(&mut row);
            }
        }
        if !row.is_empty() && row.len() > table.columns.len() {
            return Err(incomplete_row(path, line_number));
        }
        self.state = State::Rows;
        self.words = words;
        self.row = row;
        Ok(())
    }

    fn finish(self) -> FormatResult<StarFile> {
        if !self.row.is_empty() {
            return Err(FormatError::invalid(
                self.path,
                "the file ends in the middle of a table row (truncated?)",
            ));
        }
        if !self.saw_anything || self.file.blocks.is_empty() {
            return Err(FormatError::invalid(
                self.path,
                "no data_ block found (is this a STAR file?)",
            ));
        }
        Ok(self.file)
    }
}

fn incomplete_row(path: &Path, line_number: usize) -> FormatError {
    FormatError::invalid(
        path,
        format!("line {line_number}: a table row has fewer values than the loop has columns"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELION31: &str = "
# version 30001

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnImagePixelSize #3
opticsGroup1 1 1.500000

# version 30001

data_particles

loop_
_rlnImageName #1
_rlnCustomNote #2
_rlnOpticsGroup #3
000001@Extract/a.mrcs \"two words\" 1
000002@Extract/a.mrcs plain 1
";

    #[test]
    fn parses_blocks_tables_and_quotes() {
        let star = parse(Path::new("x.star"), RELION31.as_bytes()).expect("parse");
        assert_eq!(star.blocks.len(), 2);
        assert_eq!(star.blocks[0].name, "optics");
        assert_eq!(star.blocks[0].comments, vec!["# version 30001"]);
        let particles = star.block("particles").and_then(StarBlock::table).expect("table");
        assert_eq!(particles.row_count(), 2);
        assert_eq!(particles.cell(0, 1), "two words");
        assert_eq!(particles.column_index("_rlnOpticsGroup"), Some(2));
    }

    #[test]
    fn write_then_read_is_identical() {
        let star = parse(Path::new("x.star"), RELION31.as_bytes()).expect("parse");
        let mut out = Vec::new();
        star.write_to(&mut out).expect("write");
        let again = parse(Path::new("y.star"), out.as_slice()).expect("reparse");
        assert_eq!(star, again);
    }

    #[test]
    fn short_row_is_an_error_naming_the_file() {
        let text = "data_\nloop_\n_rlnA #1\n_rlnB #2\n1 2\n3\n";
        let err = parse(Path::new("short.star"), text.as_bytes()).expect_err("must fail");
        assert!(err.to_string().contains("short.star"), "{err}");
    }

    #[test]
    fn pairs_block_and_set_column() {
        let text = "data_general\n_rlnNrClasses 3\n\ndata_t\nloop_\n_a\n1\n2\n";
        let mut star = parse(Path::new("p.star"), text.as_bytes()).expect("parse");
        assert_eq!(star.blocks[0].value("rlnNrClasses"), Some("3"));
        let table = star.blocks[1].table_mut().expect("table");
        table.set_column("b", |r| format!("v{r}"));
        assert_eq!(table.row(1), ["2", "v1"]);
        assert_eq!(table.select_rows(&[1]).row(0), ["2", "v1"]);
    }
}
