//! Model validation on real deposited structures: φ/ψ agree with gemmi's, the deposited X-ray
//! models score like good structures (Ramachandran ≥ 95 % favoured, ≤ 1 % outliers, bond RMSZ
//! ≤ 1.5, a heavy-atom clashscore ≤ 20 (noise gives ~100), at most 2 % or 2 Cβ deviations: 1AKE, refined in 1992, has two at 0.26–0.27 Å, 1ORC's
//! engineered insertion one), and the same models with 0.5 Å of
//! random displacement per atom score clearly worse. None of these models' sequences went into
//! the reference tables (`scripts/validation/reference_set.py` leaves them out).

use std::path::Path;
use std::process::Command;

use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::models::validation::{ValidationReport, Validator, validate};

/// Path of a bundled file (this crate's own path: the shared helper's can be stale in a shared
/// target folder).
fn asset(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets").join(relative)
}

/// Deposited X-ray models: 1AKE (2.0 Å) as PDB and as ChimeraX's mmCIF of the whole entry,
/// 4AKE (2.2 Å) in MDAnalysis' CHARMM naming with hydrogens, 1ORC (1.54 Å).
const DEPOSITED: [&str; 4] = [
    "models/1ake.pdb",
    "models/1ake_chimerax.cif",
    "models/adk_open.pdb",
    "models/gemmi_1orc.pdb",
];

fn read(relative: &str) -> Structure {
    Structure::read(&asset(relative)).expect("read model").first_conformer()
}

fn gemmi_phi_psi(path: &Path) -> Option<serde_json::Value> {
    let interpreter = cryoforge_tests::peer_python("gemmi")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/validation/gemmi_phi_psi.py");
    let output = Command::new(&interpreter)
        .arg(&script)
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "gemmi_phi_psi.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("gemmi printed JSON"))
}

fn angle_difference_deg(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

#[test]
fn phi_psi_agree_with_gemmi_to_a_hundredth_of_a_degree() {
    for relative in DEPOSITED {
        let structure = read(relative);
        let Some(gemmi) = gemmi_phi_psi(&asset(relative)) else {
            return;
        };
        let gemmi = gemmi.as_array().expect("array");
        let ours = Validator::new(&structure).dihedrals(&structure.frames[0]);
        assert_eq!(ours.len(), gemmi.len(), "{relative}: residue counts");
        let mut compared = 0;
        for (mine, theirs) in ours.iter().zip(gemmi) {
            assert_eq!(
                mine.residue.number as i64,
                theirs["number"].as_i64().expect("number"),
                "{relative}"
            );
            assert_eq!(mine.residue.name, theirs["name"].as_str().expect("name"), "{relative}");
            for (value, key) in [(mine.phi_deg, "phi"), (mine.psi_deg, "psi")] {
                match (value, theirs[key].as_f64()) {
                    (Some(a), Some(b)) => {
                        assert!(
                            angle_difference_deg(a, b) < 0.01,
                            "{relative} {}: {key} {a} vs gemmi {b}",
                            mine.residue
                        );
                        compared += 1;
                    }
                    (None, None) => {}
                    other => panic!("{relative} {}: {key} defined differently: {other:?}", mine.residue),
                }
            }
        }
        assert!(compared > 100, "{relative}: only {compared} angles compared");
    }
}

fn assert_good(relative: &str, r: &ValidationReport) {
    let rama = &r.ramachandran;
    let favoured = rama.favoured_percent.expect("evaluated");
    let outliers = rama.outliers_percent.expect("evaluated");
    let (bonds, angles) = (r.bonds.rmsz.expect("bonds"), r.angles.rmsz.expect("angles"));
    let clashscore = r.clashscore.expect("clashscore");
    eprintln!("{relative}: {}", r.summary_line());
    assert!(rama.evaluated > 50, "{relative}: {rama:?}");
    assert!(favoured >= 95.0, "{relative}: {favoured:.2} % favoured\n{}", r.text());
    assert!(outliers <= 1.0, "{relative}: {outliers:.2} % outliers\n{}", r.text());
    assert!(bonds <= 1.5, "{relative}: bond RMSZ {bonds:.3}\n{}", r.text());
    assert!(angles <= 2.0, "{relative}: angle RMSZ {angles:.3}\n{}", r.text());
    // Heavy atoms with Bondi radii: part of what remains are 1–5 contacts such as O(i)…C(i+1) at
    // 2.8 Å, which MolProbity's smaller carbonyl radii (with explicit hydrogens) do not flag.
    assert!(
        clashscore <= 20.0,
        "{relative}: clashscore {clashscore:.2}\n{}",
        r.text()
    );
    assert!(
        r.cbeta.deviations <= (r.cbeta.checked / 50).max(2),
        "{relative}: more than 2 % (or 2) Cβ deviations: {:?}",
        r.cbeta.outliers
    );
}

#[test]
fn deposited_x_ray_models_validate_as_good_structures() {
    for relative in DEPOSITED {
        assert_good(relative, &validate(&read(relative), 0));
    }
}

/// A normal deviate per call (xorshift64* and Box–Muller): the tests crate has no RNG crate.
struct Gaussian(u64);

impl Gaussian {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

#[test]
fn half_an_angstrom_of_noise_makes_every_metric_clearly_worse() {
    for relative in ["models/1ake.pdb", "models/gemmi_1orc.pdb"] {
        let structure = read(relative);
        let validator = Validator::new(&structure);
        let clean = validator.report(&structure.frames[0]);
        // 0.5 Å rms displacement per atom: σ = 0.5/√3 Å along each axis.
        let mut rng = Gaussian(0x5eed_1234_abcd_0042);
        let sigma = 0.5 / 3f64.sqrt();
        let noisy: Vec<[f32; 3]> = structure.frames[0]
            .iter()
            .map(|p| p.map(|c| (f64::from(c) + sigma * rng.next()) as f32))
            .collect();
        let r = validator.report(&noisy);
        eprintln!("{relative} + noise: {}", r.summary_line());
        let rmsz = |x: &ValidationReport| (x.bonds.rmsz.expect("bonds"), x.angles.rmsz.expect("angles"));
        let ((b0, a0), (b1, a1)) = (rmsz(&clean), rmsz(&r));
        assert!(b1 > 3.0 && b1 > 3.0 * b0, "{relative}: bond RMSZ {b0:.2} → {b1:.2}");
        assert!(a1 > 3.0 && a1 > 2.0 * a0, "{relative}: angle RMSZ {a0:.2} → {a1:.2}");
        assert!(
            r.bonds.outliers > 10 * (clean.bonds.outliers + 1),
            "{:?}",
            r.bonds.outliers
        );
        let (f0, f1) = (
            clean.ramachandran.favoured_percent.expect("f"),
            r.ramachandran.favoured_percent.expect("f"),
        );
        assert!(f1 < f0 - 5.0, "{relative}: favoured {f0:.1} % → {f1:.1} %");
        assert!(
            r.ramachandran.outliers_percent.expect("o") > clean.ramachandran.outliers_percent.expect("o") + 1.0,
            "{relative}: {:?}",
            r.ramachandran.outliers_percent
        );
        assert!(
            r.clashscore.expect("c") > clean.clashscore.expect("c") + 5.0,
            "{relative}"
        );
        assert!(
            r.cbeta.deviations * 4 > r.cbeta.checked,
            "{relative}: {} of {} Cβ deviate",
            r.cbeta.deviations,
            r.cbeta.checked
        );
        let started = std::time::Instant::now();
        let _ = validator.report(&noisy);
        eprintln!(
            "{relative}: one report of {} atoms in {:?}",
            noisy.len(),
            started.elapsed()
        );
    }
}
