//! Chemical elements: symbols, atomic numbers, and the element a PDB atom name implies when the
//! element column is blank (old PDB files, CHARMM and other MD programs).
//!
//! Unknown symbols are `X`, as in gemmi, so a file reads with the same elements in both.

/// Symbols in atomic-number order (index 0 is the unknown element `X`).
const SYMBOLS: [&str; 119] = [
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",
    "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce",
    "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir",
    "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm",
    "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc",
    "Lv", "Ts", "Og",
];

/// The unknown element's symbol.
pub const UNKNOWN: &str = "X";

/// Atomic number of a canonical symbol (`"Fe"` → 26; deuterium counts as hydrogen); `None` for
/// `X` and anything else.
pub fn atomic_number(symbol: &str) -> Option<u32> {
    if symbol == "D" {
        return Some(1);
    }
    SYMBOLS.iter().skip(1).position(|s| *s == symbol).map(|i| i as u32 + 1)
}

fn single_letter(c: u8) -> &'static str {
    match c.to_ascii_uppercase() {
        b'H' => "H",
        b'B' => "B",
        b'C' => "C",
        b'N' => "N",
        b'O' => "O",
        b'F' => "F",
        b'P' => "P",
        b'S' => "S",
        b'K' => "K",
        b'V' => "V",
        b'Y' => "Y",
        b'I' => "I",
        b'W' => "W",
        b'U' => "U",
        b'D' => "D",
        _ => UNKNOWN,
    }
}

/// The element named by the first two characters of `text`, case-insensitive (`"FE"`, `"fe"`,
/// `" C"`, `"C"`); a lone letter is one of the single-letter elements. `X` when unknown.
pub fn from_symbol(text: &str) -> &'static str {
    let bytes = text.as_bytes();
    // As gemmi does: clearing bit 5 upper-cases letters and turns a space into NUL; a second
    // character below 14 after that (end, blank, tab, `+`, `-`, ...) leaves a one-letter symbol.
    let first = bytes.first().copied().unwrap_or(0) & !0x20;
    let second = bytes.get(1).copied().unwrap_or(0) & !0x20;
    if first == 0 {
        return single_letter(second);
    }
    if second < 14 {
        return single_letter(first);
    }
    for symbol in SYMBOLS.iter().skip(1) {
        let s = symbol.as_bytes();
        if s.len() == 2 && s[0] == first && s[1].to_ascii_uppercase() == second {
            return symbol;
        }
    }
    UNKNOWN
}

/// The element implied by a PDB atom name in its four columns (13–16, padding kept): `" CA "`
/// is carbon, `"CA  "` calcium, `"1HB "` and `"HG11"` hydrogen, `"C210"` carbon.
pub fn from_padded_atom_name(padded: &[u8; 4]) -> &'static str {
    if padded[0] == b' ' || padded[0].is_ascii_digit() {
        return single_letter(padded[1]);
    }
    if padded[1].is_ascii_digit() {
        return single_letter(padded[0]);
    }
    if padded[3] != b' ' {
        // Four-character names starting with H or D are hydrogens (Hg, Ho, Dy... almost never
        // have four-character names).
        match padded[0].to_ascii_uppercase() {
            b'H' => return "H",
            b'D' => return "D",
            _ => {}
        }
    }
    let two = [padded[0], padded[1]];
    from_symbol(std::str::from_utf8(&two).unwrap_or(""))
}

/// The element of an atom whose file gives none, as [`from_padded_atom_name`] reads it, except
/// where the first letter of the name is the better guess: in standard amino acids and
/// nucleotides (CHARMM writes Cα left-justified, `"CA  "` in MET, which the name alone would make
/// calcium, and `"HG1 "` mercury), and where the name gives no element (`"HT1 "`, `"HB1 "`).
pub fn guess(padded: &[u8; 4], residue_name: &str) -> &'static str {
    let element = from_padded_atom_name(padded);
    let standard = crate::formats::model_labels::is_polymer_residue(residue_name);
    if element == UNKNOWN || (element.len() == 2 && standard) {
        let first = padded.iter().find(|b| b.is_ascii_alphabetic()).copied().unwrap_or(b'X');
        return single_letter(first);
    }
    element
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_and_numbers() {
        assert_eq!(atomic_number("C"), Some(6));
        assert_eq!(atomic_number("Fe"), Some(26));
        assert_eq!(atomic_number("Og"), Some(118));
        assert_eq!(atomic_number("D"), Some(1));
        assert_eq!(atomic_number("X"), None);
        assert_eq!(from_symbol("FE"), "Fe");
        assert_eq!(from_symbol(" C"), "C");
        assert_eq!(from_symbol("C"), "C");
        assert_eq!(from_symbol("cl"), "Cl");
        assert_eq!(from_symbol("Q"), "X");
        assert_eq!(from_symbol("C1"), "X");
        assert_eq!(from_symbol("N+"), "N");
    }

    #[test]
    fn elements_from_padded_names() {
        assert_eq!(from_padded_atom_name(b" CA "), "C");
        assert_eq!(from_padded_atom_name(b"CA  "), "Ca");
        assert_eq!(from_padded_atom_name(b"1HB "), "H");
        assert_eq!(from_padded_atom_name(b"HG11"), "H");
        assert_eq!(from_padded_atom_name(b"C210"), "C");
        assert_eq!(from_padded_atom_name(b"FE  "), "Fe");
        assert_eq!(from_padded_atom_name(b" OXT"), "O");
        assert_eq!(guess(b"CA  ", "MET"), "C");
        assert_eq!(guess(b"CA  ", "CA"), "Ca");
        assert_eq!(guess(b"HG1 ", "THR"), "H");
        assert_eq!(guess(b"HT1 ", "MET"), "H");
        assert_eq!(guess(b"HB1 ", "LIG"), "H");
    }
}

/// An atom's Coulomb potential as one Gaussian: its integral (the electron scattering factor
/// at zero angle, Å) and the B (Å²) of the Gaussian with the same second moment as the
/// five-Gaussian electron form factor of International Tables vol. C, table 4.3.2.2
/// (Σaᵢ and Σaᵢbᵢ/Σaᵢ). A cryo-EM map images the potential, in which an oxygen weighs less
/// than a carbon (1.98 against 2.51), not the electron count (8 against 6).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ElectronScattering {
    pub amplitude: f32,
    pub width_b: f32,
}

/// The [`ElectronScattering`] of an element by atomic number; elements outside the table get
/// carbon's amplitude per electron and a B of 20 Å².
pub fn electron_scattering(atomic_number: u32) -> ElectronScattering {
    let (amplitude, width_b) = match atomic_number {
        1 => (0.529, 16.2),
        6 => (2.509, 17.1),
        7 => (2.214, 12.7),
        8 => (1.983, 9.7),
        11 => (4.776, 60.7),
        12 => (5.208, 41.1),
        15 => (5.488, 22.6),
        16 => (5.160, 17.9),
        17 => (4.858, 14.6),
        19 => (8.983, 72.4),
        20 => (9.913, 55.2),
        25 => (7.506, 32.1),
        26 => (7.164, 29.7),
        27 => (6.853, 27.8),
        28 => (6.562, 25.4),
        29 => (5.599, 23.9),
        30 => (6.063, 23.0),
        34 => (7.204, 17.9),
        z => (2.509 / 6.0 * z.max(1) as f32, 20.0),
    };
    ElectronScattering { amplitude, width_b }
}
