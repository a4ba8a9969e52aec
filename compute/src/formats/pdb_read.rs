//! cryoforge's PDB reader: fixed columns read as gemmi reads them (two-character chain ids in
//! columns 21–22, segment ids, hybrid-36 residue numbers, charges as `2+` or `+2`, elements
//! guessed from the atom name when columns 77–78 are blank), tolerant of what real files hold
//! (CHARMM and MD output, free-text REMARKs, CRYST1 lines with blank fields, MODEL records
//! anywhere). It never fails on a file with atoms: what it skips or guesses becomes a warning.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::formats::elements;
use crate::formats::model::{ChainSequence, ModelInfo, ModifiedResidue, ResidueRange, Structure, UnitCell};
use crate::formats::model_build::{Builder, Site};

/// Columns `start..start + len` (0-based) of `line`, trimmed; empty past the line's end.
fn field(line: &[u8], start: usize, len: usize) -> Cow<'_, str> {
    let end = (start + len).min(line.len());
    let bytes = line.get(start..end).unwrap_or(&[]);
    let trimmed = bytes.trim_ascii();
    String::from_utf8_lossy(trimmed)
}

fn byte(line: &[u8], i: usize) -> u8 {
    line.get(i).copied().unwrap_or(b' ')
}

/// A number in `line[start..start + len]`, `None` when blank or not a number.
fn number(line: &[u8], start: usize, len: usize) -> Option<f64> {
    field(line, start, len).parse::<f64>().ok().filter(|v| v.is_finite())
}

/// An integer as gemmi's lenient reader takes it: leading blanks, a sign, digits up to the first
/// other character; `None` when there are no digits.
fn leading_int(text: &[u8]) -> Option<i64> {
    let text = text.trim_ascii_start();
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let value = digits[..n].iter().fold(0i64, |acc, d| {
        acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    Some(if negative { -value } else { value })
}

fn base36(text: &[u8]) -> Option<i64> {
    let mut value = 0i64;
    for &b in text {
        let d = (b as char).to_digit(36)?;
        value = value.checked_mul(36)?.checked_add(i64::from(d))?;
    }
    Some(value)
}

/// A residue number in columns 23–26 (hybrid-36 past 9999) and its insertion code (column 27).
fn residue_id(line: &[u8], start: usize) -> (Option<i32>, Cow<'_, str>) {
    let digits = line.get(start..(start + 4).min(line.len())).unwrap_or(&[]);
    let number = if byte(line, start).is_ascii_uppercase() || byte(line, start).is_ascii_lowercase() {
        base36(digits).map(|v| v - 466_560 + 10_000)
    } else {
        leading_int(digits)
    };
    let number = number.and_then(|n| i32::try_from(n).ok());
    (number, field(line, start + 4, 1))
}

/// Formal charge from columns 79–80: `2+` (the standard) or `+2`, blank for none.
fn charge(line: &[u8]) -> Result<i8, ()> {
    let (mut digit, mut sign) = (byte(line, 78), byte(line, 79));
    if digit == b' ' && sign == b' ' {
        return Ok(0);
    }
    if sign.is_ascii_digit() {
        std::mem::swap(&mut digit, &mut sign);
    }
    if digit.is_ascii_digit() {
        let value = (digit - b'0') as i8;
        return match sign {
            b'-' => Ok(-value),
            b'+' | b' ' | b'\t' | b'\r' => Ok(value),
            _ => Err(()),
        };
    }
    Ok(0)
}

fn record(line: &[u8], name: &[u8]) -> bool {
    line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name)
}

/// A record name of three letters followed by a blank or the end (`END`, `TER`).
fn record3(line: &[u8], name: &[u8; 3]) -> bool {
    record(line, name) && matches!(line.get(3), None | Some(b' ' | b'\t' | b'\r' | b'\n'))
}

/// Reads PDB text; `name` becomes the structure's name.
pub(crate) fn read_pdb(bytes: &[u8], name: String) -> Structure {
    let mut builder = Builder::default();
    let mut info = ModelInfo::default();
    let mut in_model = false;
    let mut conect: HashSet<(i64, i64)> = HashSet::new();
    let mut guessed_elements = 0usize;
    for (line_index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line_number = line_index + 1;
        if record(line, b"ATOM") || record(line, b"HETA") {
            if line.len() < 54 {
                builder
                    .warnings
                    .add("an ATOM/HETATM line too short to hold coordinates was skipped", || {
                        format!("line {line_number}")
                    });
                continue;
            }
            let (Some(x), Some(y), Some(z)) = (number(line, 30, 8), number(line, 38, 8), number(line, 46, 8)) else {
                builder
                    .warnings
                    .add("an ATOM/HETATM line with unreadable coordinates was skipped", || {
                        format!("line {line_number}")
                    });
                continue;
            };
            if !in_model {
                builder.begin_model(builder.models_seen() as i32 + 1);
                in_model = true;
            }
            let (residue_number, insertion_code) = residue_id(line, 22);
            let residue_number = residue_number.unwrap_or_else(|| {
                builder
                    .warnings
                    .add("a blank residue number was read as 0", || format!("line {line_number}"));
                0
            });
            // Blank fields of a line long enough to hold them read as 0, as gemmi reads them;
            // `inf` or `nan` (some MD writers) are no use to anyone and read as 1 and 0.
            let mut value = |start: usize, absent: f64, odd: f64| {
                if line.len() <= start + 4 {
                    return absent;
                }
                let text = field(line, start, 6);
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() => v,
                    Ok(_) => {
                        builder
                            .warnings
                            .add("an occupancy or B-factor of inf or nan was read as 1 or 0", || {
                                format!("line {line_number}")
                            });
                        odd
                    }
                    Err(_) => 0.0,
                }
            };
            let occupancy = value(54, 1.0, 1.0);
            let b_factor = value(60, 20.0, 0.0);
            let element =
                if line.len() > 76 && (byte(line, 76).is_ascii_alphabetic() || byte(line, 77).is_ascii_alphabetic()) {
                    let two = [byte(line, 76), if line.len() > 77 { line[77] } else { 0 }];
                    elements::from_symbol(std::str::from_utf8(&two).unwrap_or(""))
                } else {
                    guessed_elements += 1;
                    let mut padded = [b' '; 4];
                    for (k, slot) in padded.iter_mut().enumerate() {
                        *slot = byte(line, 12 + k);
                    }
                    elements::guess(&padded, field(line, 17, 3).as_ref())
                };
            let formal_charge = if line.len() > 78 {
                charge(line).unwrap_or_else(|()| {
                    builder
                        .warnings
                        .add("an unreadable charge (columns 79–80) was read as 0", || {
                            format!("line {line_number}")
                        });
                    0
                })
            } else {
                0
            };
            let chain = field(line, 20, 2);
            let residue_name = field(line, 17, 3);
            let segment = if line.len() > 72 {
                field(line, 72, 4)
            } else {
                Cow::Borrowed("")
            };
            let atom_name = field(line, 12, 4);
            let alt_loc = field(line, 16, 1);
            builder.add(Site {
                chain: &chain,
                residue_number,
                insertion_code: &insertion_code,
                residue_name: &residue_name,
                segment: &segment,
                name: &atom_name,
                alt_loc: &alt_loc,
                element,
                formal_charge,
                occupancy: occupancy as f32,
                b_factor: b_factor as f32,
                hetero: record(line, b"HETA"),
                position: [x, y, z],
                label_asym_id: "",
                label_seq_id: None,
                entity_id: "",
            });
        } else if record(line, b"MODEL") {
            let number = leading_int(line.get(6..14.min(line.len())).unwrap_or(&[]));
            builder.begin_model(number.and_then(|n| i32::try_from(n).ok()).unwrap_or(0));
            in_model = true;
        } else if record(line, b"ENDMDL") {
            in_model = false;
        } else if record3(line, b"END") {
            break;
        } else if record(line, b"CONECT") {
            let serial = |start: usize| {
                let text = line.get(start..(start + 5).min(line.len())).unwrap_or(&[]);
                if byte(line, start).is_ascii_alphabetic() {
                    base36(text).map(|v| v - 16_796_160 + 100_000)
                } else {
                    leading_int(text)
                }
            };
            if let Some(from) = serial(6) {
                for start in (11..31).step_by(5) {
                    if let Some(to) = serial(start) {
                        conect.insert((from.min(to), from.max(to)));
                    }
                }
            }
        } else {
            read_header_record(line, &mut info);
        }
    }
    if guessed_elements > 0 {
        info.warnings.push(format!(
            "{guessed_elements} atoms have no element (columns 77–78): guessed from their names"
        ));
    }
    info.connections = conect.len();
    builder.finish(name, info)
}

/// Records that describe the model: CRYST1, HELIX, SHEET, SEQRES, MODRES, TITLE, EXPDTA.
fn read_header_record(line: &[u8], info: &mut ModelInfo) {
    if record(line, b"CRYST1") {
        let values = [(6, 9), (15, 9), (24, 9), (33, 7), (40, 7), (47, 7)].map(|(s, l)| number(line, s, l));
        if let [Some(a), Some(b), Some(c), Some(alpha), Some(beta), Some(gamma)] = values {
            info.cell = Some(UnitCell {
                lengths: [a, b, c],
                angles: [alpha, beta, gamma],
                space_group: field(line, 55, 11).into_owned(),
            });
        }
    } else if record(line, b"HELIX ") {
        info.helices.extend(residue_range(line, 18, 21, 33, (38, 2)));
    } else if record(line, b"SHEET ") {
        info.strands.extend(residue_range(line, 20, 22, 33, (11, 3)));
    } else if record(line, b"SEQRES") {
        let chain = field(line, 10, 2).into_owned();
        let names = (19..68).step_by(4).map(|i| field(line, i, 3)).filter(|n| !n.is_empty());
        let names: Vec<String> = names.map(Cow::into_owned).collect();
        match info.sequences.iter_mut().find(|s| s.chain_id == chain) {
            Some(sequence) => sequence.residues.extend(names),
            None => info.sequences.push(ChainSequence {
                chain_id: chain,
                residues: names,
            }),
        }
    } else if record(line, b"MODRES") {
        let (number, icode) = residue_id(line, 18);
        info.modified_residues.push(ModifiedResidue {
            chain_id: field(line, 15, 2).into_owned(),
            residue_number: number.unwrap_or(0),
            insertion_code: icode.into_owned(),
            residue_name: field(line, 12, 3).into_owned(),
            standard_name: field(line, 24, 3).into_owned(),
        });
    } else if record(line, b"TITLE ") {
        append_words(&mut info.title, &field(line, 10, 70));
    } else if record(line, b"EXPDTA") {
        append_words(&mut info.method, &field(line, 10, 70));
    }
}

/// A HELIX or SHEET range: the chain (2 columns), start and end residue ids and the kind field
/// at the given 0-based columns.
fn residue_range(line: &[u8], chain: usize, start: usize, end: usize, kind: (usize, usize)) -> Option<ResidueRange> {
    let (start, start_icode) = residue_id(line, start);
    let (end, end_icode) = residue_id(line, end);
    Some(ResidueRange {
        chain_id: field(line, chain, 2).into_owned(),
        start: (start?, start_icode.into_owned()),
        end: (end?, end_icode.into_owned()),
        kind: field(line, kind.0, kind.1).into_owned(),
    })
}

fn append_words(to: &mut String, words: &str) {
    if words.is_empty() {
        return;
    }
    if !to.is_empty() && !to.ends_with('-') {
        to.push(' ');
    }
    to.push_str(words);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Structure {
        read_pdb(text.as_bytes(), "t".into())
    }

    const LINE: &str = "ATOM      1  CA  ALA A   1      11.104   6.134  -6.504  1.00 12.50           C  ";

    #[test]
    fn columns_charges_and_hybrid36() {
        let text = format!(
            "{LINE}\nHETATM    2 ZN    ZNAB   2       1.000   2.000   3.000  0.50  9.00          ZN2+\nATOM  A0000  N   GLY BA000       0.000   0.000   0.000  1.00  0.00           N+1\n"
        );
        let s = read(&text);
        assert_eq!(s.atoms.len(), 3);
        assert_eq!(s.atoms[0].chain_id, "A");
        assert_eq!(s.atoms[0].element, "C");
        assert_eq!(s.atoms[1].chain_id, "AB");
        assert_eq!(s.atoms[1].element, "Zn");
        assert_eq!(s.atoms[1].formal_charge, 2);
        assert!(s.atoms[1].hetero);
        assert_eq!(s.atoms[2].residue_number, 10_000);
        assert_eq!(s.atoms[2].formal_charge, 1);
        assert_eq!(s.frames[0][1], [1.0, 2.0, 3.0]);
    }

    #[test]
    fn charmm_lines_without_chain_or_element() {
        let text = "REMARK free text that is not a numbered remark\nCRYST1   10.000   10.000   10.000  90.00  90.00  90.00 P 1\nATOM      1  N   MET     1      -8.901   4.127  -0.555  1.00  0.00      PROA\nATOM      2  HT1 MET     1      -8.151   4.808  -0.442  1.00  0.00      PROA\nATOM      3 CA   MET     1      -8.608   3.135  -1.618  1.00  0.00      PROA\nEND\nATOM      4 CB   MET     1      -8.608   3.135  -1.618  1.00  0.00      PROA\n";
        let s = read(text);
        assert_eq!(s.atoms.len(), 3, "END stops reading");
        assert_eq!(s.atoms[1].element, "H");
        assert_eq!(s.atoms[0].segment, "PROA");
        assert_eq!(s.atoms[0].chain_id, "");
        assert!(s.info.cell.is_some());
        assert!(s.info.warnings.iter().any(|w| w.contains("guessed")));
    }

    #[test]
    fn interleaved_residues_and_chain_parts_are_grouped() {
        let atom = |serial: usize, name: &str, res: i32, chain: &str, resname: &str| {
            format!(
                "ATOM  {serial:>5} {name:<4} {resname:>3} {chain:1}{res:>4}       0.000   0.000   0.000  1.00  0.00           C"
            )
        };
        let text = [
            atom(1, " N", 1, "A", "ALA"),
            atom(2, " N", 2, "A", "GLY"),
            atom(3, " CA", 1, "A", "ALA"),
            atom(4, " O", 1, "B", "HOH"),
            atom(5, " O", 5, "A", "HOH"),
        ]
        .join("\n");
        let s = read(&text);
        let order: Vec<(&str, i32, &str)> = s
            .atoms
            .iter()
            .map(|a| (a.chain_id.as_str(), a.residue_number, a.name.as_str()))
            .collect();
        assert_eq!(
            order,
            vec![
                ("A", 1, "N"),
                ("A", 1, "CA"),
                ("A", 2, "N"),
                ("A", 5, "O"),
                ("B", 1, "O")
            ]
        );
    }

    #[test]
    fn models_become_frames_or_are_skipped_with_a_warning() {
        let model = |n: usize, atoms: &[&str]| format!("MODEL     {n:>4}\n{}\nENDMDL\n", atoms.join("\n"));
        let other = LINE.replace(" CA ", " CB ");
        let text = model(1, &[LINE]) + &model(2, &[LINE]) + &model(3, &[LINE, &other]);
        let s = read(&text);
        assert_eq!(s.frames.len(), 2);
        assert!(
            s.info.warnings.iter().any(|w| w.contains("model 3")),
            "{:?}",
            s.info.warnings
        );
    }
}
