use super::*;
use crate::guided::heavy_atom_model;

fn adk_heavy() -> (Structure, Vec<[f64; 3]>) {
    let structure = crate::test_shapes::adk_1ake();
    let model = heavy_atom_model(&structure, 5.0);
    let positions = model.frames[0].iter().map(|p| p.map(f64::from)).collect();
    (model, positions)
}

/// A smooth stand-in for a Ramachandran density: a well at the α-helix.
struct HelixWell;

impl TorsionPrior for HelixWell {
    fn energy(&self, _class: u8, phi: f64, psi: f64) -> (f64, f64, f64) {
        let (p0, s0) = ((-63f64).to_radians(), (-43f64).to_radians());
        let e = 2.0 - (phi - p0).cos() - (psi - s0).cos();
        (e, (phi - p0).sin(), (psi - s0).sin())
    }

    fn class_of(&self, _residue_name: &str, _next: Option<&str>) -> u8 {
        0
    }
}

#[test]
fn torsion_signs_follow_the_iupac_convention() {
    // Looking along j→k, l rotated clockwise from i is positive.
    let p = [
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.5, 0.866_025_4, 1.0],
    ];
    let (phi, _) = dihedral(&p, [0, 1, 2, 3]);
    assert!((phi.to_degrees() - 60.0).abs() < 1e-4, "{}", phi.to_degrees());
    let trans = [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 1.0]];
    assert!((dihedral(&trans, [0, 1, 2, 3]).0.abs().to_degrees() - 180.0).abs() < 1e-6);
    assert!((wrap(3.5) - (3.5 - std::f64::consts::TAU)).abs() < 1e-12);
}

#[test]
fn the_start_costs_nothing_and_a_real_model_has_every_kind_of_restraint() {
    let (model, start) = adk_heavy();
    let restraints = Restraints::from_start(&model, &start, RestraintOptions::default());
    let [bonds, angles, volumes, omegas, hbonds, _] = restraints.counts();
    // 1AKE chain A: 1,656 heavy atoms, 214 residues, two thirds of them in helices and strands.
    assert!(
        bonds > 1650 && angles > 2250 && volumes > 500,
        "{:?}",
        restraints.counts()
    );
    assert_eq!(omegas, 213, "one peptide torsion per link");
    assert!(hbonds > 150, "{hbonds} backbone hydrogen bonds");
    let flat: Vec<f64> = start.iter().flatten().copied().collect();
    let mut gradient = vec![0.0; flat.len()];
    let e = restraints.energy(&flat, &mut gradient);
    assert!(e.total() < 1e-9, "{e:?}");
}

#[test]
fn gradients_match_finite_differences() {
    let (model, start) = adk_heavy();
    // One chain's first 60 residues, enough for every term.
    let keep = model.atoms.iter().take_while(|a| a.residue_number <= 60).count();
    let sub = Structure {
        atoms: model.atoms[..keep].to_vec(),
        frames: vec![model.frames[0][..keep].to_vec()],
        ..model.clone()
    };
    let restraints = Restraints::from_start(&sub, &start[..keep], RestraintOptions::default())
        .with_torsion_prior(std::sync::Arc::new(HelixWell), &sub);
    let mut rng = crate::numeric::rng::Rng::new(3);
    // Moved by 0.3 Å: every term is off its minimum, some atoms come close.
    let x: Vec<f64> = start[..keep].iter().flatten().map(|v| v + 0.3 * rng.normal()).collect();
    let mut gradient = vec![0.0; x.len()];
    let e = restraints.energy(&x, &mut gradient);
    assert!(e.bonds > 0.0 && e.angles > 0.0 && e.volumes > 0.0 && e.omega > 0.0 && e.torsions > 0.0);
    let h = 1e-6;
    let mut worst = 0.0f64;
    for k in (0..x.len()).step_by(7) {
        let mut plus = x.clone();
        plus[k] += h;
        let mut minus = x.clone();
        minus[k] -= h;
        let mut scratch = vec![0.0; x.len()];
        let fd = (restraints.energy(&plus, &mut scratch).total() - restraints.energy(&minus, &mut scratch).total())
            / (2.0 * h);
        worst = worst.max((fd - gradient[k]).abs() / (1.0 + fd.abs()));
    }
    assert!(worst < 1e-4, "largest relative gradient error {worst}");
}

#[test]
fn minimising_the_restraints_repairs_a_distorted_model() {
    let (model, start) = adk_heavy();
    let restraints = Restraints::from_start(&model, &start, RestraintOptions::default());
    let mut rng = crate::numeric::rng::Rng::new(5);
    let mut x: Vec<f64> = start.iter().flatten().map(|v| v + 0.2 * rng.normal()).collect();
    let mut scratch = vec![0.0; x.len()];
    let before = restraints.energy(&x, &mut scratch);
    let options = crate::numeric::lbfgs::LbfgsOptions {
        iterations: 300,
        ..Default::default()
    };
    let mut f = |x: &[f64], g: &mut [f64]| {
        g.iter_mut().for_each(|v| *v = 0.0);
        restraints.energy(x, g).total()
    };
    crate::numeric::lbfgs::minimise(&mut x, &options, &mut f, &mut || true);
    let after = restraints.energy(&x, &mut scratch);
    assert!(after.total() < 0.02 * before.total(), "{before:?} → {after:?}");
    // Bonds within 0.03 Å of the start's on average.
    let positions: Vec<[f64; 3]> = x.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let report = Topology::of(&start).check(&positions);
    assert!(report.bond_rmsd_angstrom < 0.03, "{report:?}");
}

#[test]
fn a_start_with_a_broken_bond_is_held_to_the_ideal_length_not_its_own() {
    let (model, start) = adk_heavy();
    let ideal = crate::models::validation::Validator::new(&model).ideal_geometry();
    let find = |name: &str| {
        model
            .atoms
            .iter()
            .position(|a| a.residue_name == "ARG" && a.name == name)
            .expect("an arginine")
    };
    let (ne, cz) = (find("NE"), find("CZ"));
    // Pull one arginine's guanidinium group (CZ, NH1, NH2) away from its NE, by 0.4 Å (still a
    // bond by distance) and by 1.4 Å (2.7 Å apart, as in some old crystal structures).
    let group: Vec<usize> = (0..model.atoms.len())
        .filter(|&i| {
            model.atoms[i].residue_number == model.atoms[cz].residue_number
                && model.atoms[i].name.starts_with(['C', 'N'])
                && ["CZ", "NH1", "NH2"].contains(&model.atoms[i].name.as_str())
        })
        .collect();
    let d: Vec<f64> = (0..3).map(|k| start[cz][k] - start[ne][k]).collect();
    let length = d.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut g = vec![0.0; 3 * start.len()];
    let flat_start: Vec<f64> = start.iter().flatten().copied().collect();
    // 1AKE's own bonds more than 3σ from ideal cost something at any coordinates near the start.
    let baseline = Restraints::from_start(&model, &start, RestraintOptions::default())
        .with_ideal_outliers(&ideal, 3.0)
        .energy(&flat_start, &mut g)
        .bonds;
    for pull in [0.4, 1.4] {
        let mut broken = start.clone();
        for &i in &group {
            for k in 0..3 {
                broken[i][k] += pull * d[k] / length;
            }
        }
        let flat: Vec<f64> = broken.iter().flatten().copied().collect();
        let own = Restraints::from_start(&model, &broken, RestraintOptions::default());
        assert!(own.energy(&flat, &mut g).bonds < 1e-9, "its own start costs nothing");
        let fixed =
            Restraints::from_start(&model, &broken, RestraintOptions::default()).with_ideal_outliers(&ideal, 3.0);
        let e = fixed.energy(&flat, &mut g);
        // (pull / 0.02 Å)² from the one bond, give or take the ideal's difference from 1AKE's.
        let expected = (pull / 0.02f64).powi(2);
        let extra = e.bonds - baseline;
        assert!(
            extra > 0.7 * expected && extra < 1.3 * expected,
            "pull {pull}: {e:?}, baseline {baseline}"
        );
        // The intact start nearly satisfies the repaired restraints.
        let at_good = fixed.energy(&flat_start, &mut g);
        assert!(
            at_good.bonds < baseline + 0.05 * expected,
            "pull {pull}: {at_good:?}, baseline {baseline}"
        );
        // Minimising from the broken start rejoins the bond (no clash term holds the atoms apart).
        let mut x = flat.clone();
        let mut f = |x: &[f64], g: &mut [f64]| {
            g.iter_mut().for_each(|v| *v = 0.0);
            fixed.energy(x, g).total()
        };
        let options = crate::numeric::lbfgs::LbfgsOptions {
            iterations: 300,
            ..Default::default()
        };
        crate::numeric::lbfgs::minimise(&mut x, &options, &mut f, &mut || true);
        let joined = (0..3)
            .map(|k| (x[3 * cz + k] - x[3 * ne + k]).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            (joined - 1.33).abs() < 0.1,
            "pull {pull}: NE–CZ {joined:.3} Å after minimising"
        );
    }
}

#[test]
fn the_denoiser_polish_repairs_local_geometry_and_keeps_the_placement() {
    let (model, start) = adk_heavy();
    let restraints = Restraints::from_start(&model, &start, RestraintOptions::default());
    // A denoised estimate: the start shifted by 3 Å (a collective move the polish must keep)
    // with 0.3 Å of independent noise on every coordinate (local geometry it must repair).
    let mut rng = crate::numeric::rng::Rng::new(5);
    let estimate: Vec<f64> = start
        .iter()
        .flat_map(|p| [p[0] + 3.0, p[1], p[2]])
        .map(|v| v + 0.3 * rng.normal())
        .collect();
    let polished = crate::guided::relax::polish(&restraints, &estimate, 0.5, 10);
    let mut scratch = vec![0.0; estimate.len()];
    let before = restraints.energy(&estimate, &mut scratch).bonds;
    let after = restraints.energy(&polished, &mut scratch).bonds;
    assert!(after < 0.2 * before, "bond energy {before} → {after}");
    let mean_x = |x: &[f64]| x.chunks_exact(3).map(|c| c[0]).sum::<f64>() / start.len() as f64;
    let start_x = start.iter().map(|p| p[0]).sum::<f64>() / start.len() as f64;
    assert!(
        (mean_x(&polished) - start_x - 3.0).abs() < 0.05,
        "the shift stays: {}",
        mean_x(&polished) - start_x
    );
    assert_eq!(crate::guided::relax::polish(&restraints, &estimate, 0.5, 0), estimate);
}
