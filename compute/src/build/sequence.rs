//! The sequences to build: FASTA records (one per chain), checked letter by letter, with
//! stoichiometry (a record may stand for several identical chains).

use super::network::AMINO_ACIDS;

/// Why a sequence file cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SequenceError {
    #[error("not FASTA: the first line that is not blank must start with '>' (found {0:?})")]
    NotFasta(String),
    #[error("record {record:?} has no residues")]
    Empty { record: String },
    #[error("record {record:?}: {letter:?} at position {position} is not an amino acid (one-letter code)")]
    NotAminoAcid {
        record: String,
        letter: char,
        position: usize,
    },
    #[error("no sequence given")]
    Nothing,
}

/// One chain's sequence, as residue-type indices into [`AMINO_ACIDS`].
#[derive(Clone, Debug, PartialEq)]
pub struct ChainSequence {
    /// The FASTA record's name (the first word after '>').
    pub name: String,
    pub residues: Vec<u8>,
    /// How many chains of this sequence the map holds.
    pub copies: usize,
}

impl ChainSequence {
    pub fn letters(&self) -> String {
        self.residues
            .iter()
            .map(|&r| AMINO_ACIDS.as_bytes()[r as usize] as char)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.residues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.residues.is_empty()
    }
}

/// The index of a one-letter code in [`AMINO_ACIDS`]; selenomethionine's and pyrrolysine's
/// letters count as their parents'.
pub fn residue_index(letter: char) -> Option<u8> {
    let letter = match letter.to_ascii_uppercase() {
        'U' => 'C',
        'O' => 'K',
        other => other,
    };
    AMINO_ACIDS.find(letter).map(|i| i as u8)
}

/// The residue name (three letters) of a type index.
pub fn residue_name(index: u8) -> &'static str {
    const NAMES: [&str; 20] = [
        "ALA", "CYS", "ASP", "GLU", "PHE", "GLY", "HIS", "ILE", "LYS", "LEU", "MET", "ASN", "PRO", "GLN", "ARG", "SER",
        "THR", "VAL", "TRP", "TYR",
    ];
    NAMES.get(index as usize).copied().unwrap_or("UNK")
}

/// The type index of a residue name (standard names and the common modified ones).
pub fn residue_index_of_name(name: &str) -> Option<u8> {
    let standard = match name {
        "MSE" => "MET",
        "SEC" => "CYS",
        "HID" | "HIE" | "HIP" | "HSD" | "HSE" | "HSP" => "HIS",
        "CYX" => "CYS",
        other => other,
    };
    (0..20u8).find(|&i| residue_name(i) == standard)
}

/// Parses FASTA text. A record's header may end in `xN` or `copies=N` to say the map holds N
/// chains of it (`>A x2`); letters may span lines, `*` ends a record, blanks and digits are
/// ignored.
pub fn parse_fasta(text: &str) -> Result<Vec<ChainSequence>, SequenceError> {
    let mut records: Vec<ChainSequence> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('>') {
            let mut words = header.split_whitespace();
            let name = words.next().unwrap_or("").to_owned();
            let copies = header
                .split_whitespace()
                .find_map(|w| {
                    w.strip_prefix("copies=")
                        .or_else(|| w.strip_prefix('x').filter(|n| n.chars().all(|c| c.is_ascii_digit())))
                        .and_then(|n| n.parse::<usize>().ok())
                })
                .unwrap_or(1)
                .max(1);
            records.push(ChainSequence {
                name,
                residues: Vec::new(),
                copies,
            });
            continue;
        }
        let Some(record) = records.last_mut() else {
            return Err(SequenceError::NotFasta(line.chars().take(40).collect()));
        };
        for letter in line.chars() {
            if letter.is_whitespace() || letter.is_ascii_digit() || letter == '*' {
                continue;
            }
            match residue_index(letter) {
                Some(i) => record.residues.push(i),
                None => {
                    return Err(SequenceError::NotAminoAcid {
                        record: record.name.clone(),
                        letter,
                        position: record.residues.len() + 1,
                    });
                }
            }
        }
    }
    if records.is_empty() {
        return Err(SequenceError::Nothing);
    }
    if let Some(empty) = records.iter().find(|r| r.residues.is_empty()) {
        return Err(SequenceError::Empty {
            record: empty.name.clone(),
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fasta_records_copies_and_bad_letters() {
        let records = parse_fasta(">adk x2 adenylate kinase\nMRII LGAPG\nAGKGT*\n>b\nGS\n").expect("fasta");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].letters(), "MRIILGAPGAGKGT");
        assert_eq!((records[0].name.as_str(), records[0].copies), ("adk", 2));
        assert_eq!((records[1].letters().as_str(), records[1].copies), ("GS", 1));
        assert_eq!(
            parse_fasta(">a\nMKB\n"),
            Err(SequenceError::NotAminoAcid {
                record: "a".into(),
                letter: 'B',
                position: 3
            })
        );
        assert!(matches!(parse_fasta("MKV\n"), Err(SequenceError::NotFasta(_))));
        assert!(matches!(parse_fasta(">a\n>b\nG\n"), Err(SequenceError::Empty { .. })));
        assert_eq!(parse_fasta(""), Err(SequenceError::Nothing));
        assert_eq!(residue_name(residue_index('W').expect("W")), "TRP");
        assert_eq!(residue_index_of_name("MSE"), residue_index('M'));
    }
}
