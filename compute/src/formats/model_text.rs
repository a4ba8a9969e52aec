//! Line-level tidying of model text before pdbtbx parses it: fixes for files every viewer reads
//! but pdbtbx would reject or misread.

use std::io::{BufRead, Read};

/// A reader that passes its input through line by line, letting `fix` rewrite (or empty) each
/// line on the way.
pub(crate) struct LineRewriter<R, F> {
    inner: R,
    line: Vec<u8>,
    position: usize,
    fix: F,
}

impl<R: BufRead, F: FnMut(&mut Vec<u8>)> LineRewriter<R, F> {
    pub(crate) fn new(inner: R, fix: F) -> Self {
        Self {
            inner,
            line: Vec::new(),
            position: 0,
            fix,
        }
    }
}

impl<R: BufRead, F: FnMut(&mut Vec<u8>)> Read for LineRewriter<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position >= self.line.len() {
            self.line.clear();
            self.position = 0;
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(0);
            }
            (self.fix)(&mut self.line);
        }
        let n = buf.len().min(self.line.len() - self.position);
        buf[..n].copy_from_slice(&self.line[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// Tidies PDB text that pdbtbx would reject but every viewer reads: free-text REMARKs (CHARMM,
/// MDAnalysis) trip its numbered-REMARK parser, and MASTER's counts no longer match once they are
/// gone (neither carries anything cryoforge uses); ATOM lines that stop before the element
/// columns (CHARMM, old files) are padded to 80 columns and given a guessed element.
pub(crate) fn fix_pdb_line(line: &mut Vec<u8>) {
    if line.starts_with(b"REMARK") || line.starts_with(b"MASTER") {
        line.clear();
    } else if line.starts_with(b"ATOM") || line.starts_with(b"HETATM") {
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.len() < 80 {
            line.resize(80, b' ');
        }
        if line[76..78] == *b"  " {
            let element = guess_element(&line[12..16], &line[17..20]);
            line[76..78].copy_from_slice(&element);
        }
        line.push(b'\n');
    }
}

/// The element of an atom whose line has no element column (CHARMM and old files), right-justified
/// in two bytes. In standard residues the first letter of the name is the element (CA is carbon);
/// in other residues a two-letter name at column 13 is a two-letter element (CA is calcium).
fn guess_element(name: &[u8], residue: &[u8]) -> [u8; 2] {
    let residue = String::from_utf8_lossy(residue).trim().to_owned();
    let standard = crate::formats::model_write::is_polymer_residue(&residue);
    let letters: Vec<u8> = name.iter().copied().filter(u8::is_ascii_alphabetic).collect();
    match letters.as_slice() {
        [] => *b" X",
        [first, second, ..]
            if !standard && name[0].is_ascii_alphabetic() && name.len() >= 2 && name[1].is_ascii_alphabetic() =>
        {
            let candidate = format!("{}{}", *first as char, second.to_ascii_lowercase() as char);
            if pdbtbx::Element::from_symbol(&candidate).is_some() {
                [first.to_ascii_uppercase(), second.to_ascii_uppercase()]
            } else {
                [b' ', first.to_ascii_uppercase()]
            }
        }
        [first, ..] => [b' ', first.to_ascii_uppercase()],
    }
}

/// Renumbers `_atom_site.id` within each model of an mmCIF file. Multi-model files (NMR entries,
/// trajectories) number atoms continuously across models, as the dictionary's unique key wants,
/// but pdbtbx matches atoms between models by that number; cryoforge matches them by position.
#[derive(Default)]
pub(crate) struct CifModelRenumber {
    state: CifState,
    columns: Vec<String>,
    counter: usize,
    last_model: Vec<u8>,
}

#[derive(Default, PartialEq)]
enum CifState {
    #[default]
    Outside,
    LoopStart,
    AtomSiteHeader,
    AtomSiteRows,
}

impl CifModelRenumber {
    pub(crate) fn fix_line(&mut self, line: &mut Vec<u8>) {
        let trimmed = line.trim_ascii_start();
        let starts = |p: &[u8]| trimmed.starts_with(p);
        if starts(b"loop_") {
            self.state = CifState::LoopStart;
            return;
        }
        if starts(b"_atom_site.") && matches!(self.state, CifState::LoopStart | CifState::AtomSiteHeader) {
            if self.state == CifState::LoopStart {
                *self = Self {
                    state: CifState::AtomSiteHeader,
                    ..Self::default()
                };
            }
            self.state = CifState::AtomSiteHeader;
            self.columns.push(String::from_utf8_lossy(trimmed).trim().to_owned());
            return;
        }
        if starts(b"_") || starts(b"#") || starts(b"data_") {
            self.state = CifState::Outside;
            return;
        }
        if self.state == CifState::AtomSiteHeader {
            self.state = CifState::AtomSiteRows;
        }
        if self.state != CifState::AtomSiteRows {
            return;
        }
        let column = |name: &str| self.columns.iter().position(|c| c == name);
        let (Some(id_column), Some(model_column)) = (column("_atom_site.id"), column("_atom_site.pdbx_PDB_model_num"))
        else {
            return;
        };
        let spans = cif_token_spans(line);
        if spans.len() != self.columns.len() {
            return;
        }
        let model = line[spans[model_column].0..spans[model_column].1].to_vec();
        if model != self.last_model {
            self.last_model = model;
            self.counter = 0;
        }
        self.counter += 1;
        let (start, end) = spans[id_column];
        let mut fixed = line[..start].to_vec();
        fixed.extend_from_slice(self.counter.to_string().as_bytes());
        fixed.extend_from_slice(&line[end..]);
        *line = fixed;
    }
}

/// Byte spans of the whitespace-separated (optionally quoted) values of a CIF line.
fn cif_token_spans(line: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\'' || c == b'"' {
            let mut j = i + 1;
            while j < line.len() && !(line[j] == c && (j + 1 == line.len() || line[j + 1].is_ascii_whitespace())) {
                j += 1;
            }
            spans.push((i, (j + 1).min(line.len())));
            i = j + 1;
        } else {
            let start = i;
            while i < line.len() && !line[i].is_ascii_whitespace() {
                i += 1;
            }
            spans.push((start, i));
        }
    }
    spans
}
