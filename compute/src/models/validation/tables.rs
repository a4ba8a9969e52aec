//! The reference tables in `assets/validation/` (made from the public X-ray corpus by
//! `scripts/validation/*.py`; provenance in `assets/validation/README.md`), compiled in and
//! parsed once.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::ideal::Target;

/// A table that does not parse: a build with broken assets, reported in every report's warnings.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("validation table {table}, line {line}: {message}")]
pub struct TableError {
    pub table: &'static str,
    pub line: usize,
    pub message: String,
}

/// Ramachandran residue classes (MolProbity's, with cis- and trans-Pro together: the corpus has
/// too few cis-prolines for a table of their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RamaClass {
    /// Every residue not in another class.
    General,
    Glycine,
    Proline,
    /// A non-Gly, non-Pro residue followed by a proline.
    PreProline,
    /// Ile and Val (β-branched), unless followed by a proline.
    IleVal,
}

impl RamaClass {
    pub const ALL: [Self; 5] = [
        Self::General,
        Self::Glycine,
        Self::Proline,
        Self::PreProline,
        Self::IleVal,
    ];

    /// The class of residue `name` given the name of the residue it is bonded to next.
    pub fn of(name: &str, next_name: Option<&str>) -> Self {
        match name {
            "GLY" => Self::Glycine,
            "PRO" => Self::Proline,
            _ if next_name == Some("PRO") => Self::PreProline,
            "ILE" | "VAL" => Self::IleVal,
            _ => Self::General,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const RAMA_SOURCES: [(&str, &str); 5] = [
    (
        "rama_general.txt",
        include_str!("../../../../assets/validation/rama_general.txt"),
    ),
    (
        "rama_gly.txt",
        include_str!("../../../../assets/validation/rama_gly.txt"),
    ),
    (
        "rama_pro.txt",
        include_str!("../../../../assets/validation/rama_pro.txt"),
    ),
    (
        "rama_pre_pro.txt",
        include_str!("../../../../assets/validation/rama_pre_pro.txt"),
    ),
    (
        "rama_ile_val.txt",
        include_str!("../../../../assets/validation/rama_ile_val.txt"),
    ),
];
const GEOMETRY_SOURCE: (&str, &str) = (
    "geometry.txt",
    include_str!("../../../../assets/validation/geometry.txt"),
);

/// One class's smoothed φ/ψ distribution: L = −100 ln(density / max) at bin centres
/// −180 + step/2 + k·step (rows φ, columns ψ) and the two contour levels in the same units.
#[derive(Clone, Debug, PartialEq)]
pub struct RamaTable {
    n_phi: usize,
    n_psi: usize,
    values: Vec<f32>,
    pub favoured_level: f64,
    pub allowed_level: f64,
}

impl RamaTable {
    /// L at (φ, ψ) in degrees, bilinear on the periodic grid.
    pub fn level(&self, phi_deg: f64, psi_deg: f64) -> f64 {
        let (step_phi, step_psi) = (360.0 / self.n_phi as f64, 360.0 / self.n_psi as f64);
        let x = (phi_deg + 180.0 - step_phi / 2.0) / step_phi;
        let y = (psi_deg + 180.0 - step_psi / 2.0) / step_psi;
        let (fx, fy) = (x - x.floor(), y - y.floor());
        let i0 = (x.floor() as i64).rem_euclid(self.n_phi as i64) as usize;
        let j0 = (y.floor() as i64).rem_euclid(self.n_psi as i64) as usize;
        let (i1, j1) = ((i0 + 1) % self.n_phi, (j0 + 1) % self.n_psi);
        let v = |i: usize, j: usize| f64::from(self.values[i * self.n_psi + j]);
        v(i0, j0) * (1.0 - fx) * (1.0 - fy)
            + v(i1, j0) * fx * (1.0 - fy)
            + v(i0, j1) * (1.0 - fx) * fy
            + v(i1, j1) * fx * fy
    }
}

fn parse_rama(table: &'static str, text: &str) -> Result<RamaTable, TableError> {
    let err = |line: usize, message: String| TableError { table, line, message };
    let mut dims = None;
    let (mut favoured, mut allowed) = (None, None);
    let mut values = Vec::new();
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let number_at = |w: Option<&str>| -> Result<f64, TableError> {
            w.and_then(|w| w.parse::<f64>().ok())
                .ok_or_else(|| err(number, format!("expected a number in {line:?}")))
        };
        match words.next() {
            Some("grid") => dims = Some((number_at(words.next())? as usize, number_at(words.next())? as usize)),
            Some("favoured") => favoured = Some(number_at(words.next())?),
            Some("allowed") => allowed = Some(number_at(words.next())?),
            _ => {
                for w in line.split_whitespace() {
                    values.push(number_at(Some(w))? as f32);
                }
            }
        }
    }
    let (n_phi, n_psi) = dims.ok_or_else(|| err(0, "no grid line".into()))?;
    if n_phi == 0 || n_psi == 0 || values.len() != n_phi * n_psi {
        return Err(err(0, format!("{} values for a {n_phi}×{n_psi} grid", values.len())));
    }
    Ok(RamaTable {
        n_phi,
        n_psi,
        values,
        favoured_level: favoured.ok_or_else(|| err(0, "no favoured level".into()))?,
        allowed_level: allowed.ok_or_else(|| err(0, "no allowed level".into()))?,
    })
}

/// Per residue name: bonded atom pairs and angle triples (names as in the PDB) with their
/// corpus means and standard deviations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GeometryTable {
    pub bonds: HashMap<String, Vec<(String, String, Target)>>,
    pub angles: HashMap<String, Vec<(String, String, String, Target)>>,
}

fn parse_geometry(table: &'static str, text: &str) -> Result<GeometryTable, TableError> {
    let mut out = GeometryTable::default();
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let bad = || TableError {
            table,
            line: number,
            message: format!("cannot read {line:?}"),
        };
        let target = |mean: &str, sigma: &str| -> Result<Target, TableError> {
            Ok(Target {
                ideal: mean.parse().map_err(|_| bad())?,
                sigma: sigma.parse().map_err(|_| bad())?,
            })
        };
        match words[..] {
            ["bond", res, a, b, mean, sigma, _n] => {
                out.bonds
                    .entry(res.to_owned())
                    .or_default()
                    .push((a.to_owned(), b.to_owned(), target(mean, sigma)?))
            }
            ["angle", res, a, centre, c, mean, sigma, _n] => out.angles.entry(res.to_owned()).or_default().push((
                a.to_owned(),
                centre.to_owned(),
                c.to_owned(),
                target(mean, sigma)?,
            )),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// Everything the validator looks up, parsed once per process.
#[derive(Debug)]
pub struct Tables {
    rama: Vec<RamaTable>,
    pub geometry: GeometryTable,
    /// Tables that did not parse (their metrics are then left out).
    pub errors: Vec<TableError>,
}

impl Tables {
    pub fn rama(&self, class: RamaClass) -> Option<&RamaTable> {
        self.rama.get(class.index())
    }
}

fn load() -> Tables {
    let mut errors = Vec::new();
    let mut rama = Vec::new();
    for (name, text) in RAMA_SOURCES {
        match parse_rama(name, text) {
            Ok(t) => rama.push(t),
            Err(e) => {
                errors.push(e);
                break; // The classes index this list: stop at the first broken table.
            }
        }
    }
    let geometry = parse_geometry(GEOMETRY_SOURCE.0, GEOMETRY_SOURCE.1).unwrap_or_else(|e| {
        errors.push(e);
        GeometryTable::default()
    });
    Tables { rama, geometry, errors }
}

/// The compiled-in tables.
pub fn tables() -> &'static Tables {
    static TABLES: LazyLock<Tables> = LazyLock::new(load);
    &TABLES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_parses() {
        let t = tables();
        assert!(t.errors.is_empty(), "{:?}", t.errors);
        for class in RamaClass::ALL {
            let r = t.rama(class).expect("table");
            assert!(r.favoured_level < r.allowed_level, "{class:?}");
        }
        let leu = &t.geometry.bonds["LEU"];
        assert!(leu.iter().any(|(a, b, _)| a == "CB" && b == "CG"), "{leu:?}");
    }

    #[test]
    fn interpolation_wraps_around_the_periodic_edges() {
        let r = tables().rama(RamaClass::General).expect("table");
        assert!((r.level(180.0, 30.0) - r.level(-180.0, 30.0)).abs() < 1e-9);
        assert!((r.level(40.0, 180.0) - r.level(40.0, -180.0)).abs() < 1e-9);
        // Bin centres give the stored value.
        assert!((r.level(-177.5, -177.5) - f64::from(r.values[0])).abs() < 1e-9);
    }
}
