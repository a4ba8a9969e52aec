//! The Flexibility section of the model inspector: estimate, colour, worm, plot, select, export.

use egui_kittest::kittest::Queryable as _;

use crate::*;

/// A 4 Å map of 1AKE in which every atom is blurred by its own B-factor from the file.
fn adk_b_map(dir: &std::path::Path) -> PathBuf {
    let mut options = GaussianOptions::molmap(4.0);
    options.use_b_factors = true;
    adk_map_with(dir, "adk_b4.mrc", options)
}

#[test]
fn flexibility_colours_the_model_plots_rmsf_and_selects_a_residue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut h = harness_of_height(1500.0);
    h.state_mut().open(adk_b_map(dir.path()));
    h.state_mut().open(asset("models/1ake.pdb"));
    run_until(&mut h, "files to load", loaded);
    let model = select(&mut h, "1ake.pdb");
    let original: Vec<f32> = match &h.state().object(model).expect("model").kind {
        ObjectKind::Model(m) => m.model.atoms.iter().map(|a| a.b_factor).collect(),
        _ => unreachable!(),
    };
    if let Some(m) = h.state_mut().model_mut(model) {
        m.flex_settings.resolution = 4.0;
        // Start from flat B-factors so the colours can only come from the map.
        let mut flat = (*m.model).clone();
        flat.atoms.iter_mut().for_each(|a| a.b_factor = 20.0);
        m.model = std::sync::Arc::new(flat);
    }
    h.run_steps(2);
    h.get_by_label("Estimate flexibility from adk_b4.mrc").click();
    run_until(&mut h, "the flexibility estimate", |app| {
        app.jobs
            .iter()
            .any(|j| matches!(j.state, JobState::Finished(_) | JobState::Failed(_)))
    });
    assert!(
        h.state().jobs.iter().any(|j| matches!(j.state, JobState::Finished(_))),
        "the job finished: {:?}",
        h.state()
            .jobs
            .iter()
            .map(|j| format!("{:?}", j.state))
            .collect::<Vec<_>>()
    );
    h.run_steps(3);
    let (rmsf_len, b_now) = match &h.state().object(model).expect("model").kind {
        ObjectKind::Model(m) => {
            let view = m.flex.as_ref().expect("the estimate is attached");
            assert_eq!(m.style, cryoforge::view::AtomStyle::Worm, "shown as a worm");
            assert_eq!(m.color_by, cryoforge::view::ColorBy::BFactor, "coloured by flexibility");
            (
                view.flex.rmsf.len(),
                m.model.atoms.iter().map(|a| a.b_factor).collect::<Vec<_>>(),
            )
        }
        _ => unreachable!(),
    };
    assert_eq!(rmsf_len, 214, "one value per residue of 1AKE chain A");
    // The B-factors written back follow the file's own (what the map was blurred by).
    let ca: Vec<usize> = (0..original.len())
        .filter(|&i| match &h.state().object(model).expect("model").kind {
            ObjectKind::Model(m) => m.model.atoms[i].is_alpha_carbon() && !m.model.atoms[i].hetero,
            _ => false,
        })
        .collect();
    let pearson = {
        let a: Vec<f64> = ca.iter().map(|&i| f64::from(original[i])).collect();
        let b: Vec<f64> = ca.iter().map(|&i| f64::from(b_now[i])).collect();
        let (ma, mb) = (
            a.iter().sum::<f64>() / a.len() as f64,
            b.iter().sum::<f64>() / b.len() as f64,
        );
        let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    };
    assert!(
        pearson > 0.8,
        "flexibility follows the file's B-factors: Pearson {pearson:.3}"
    );
    // The legend reads in Å.
    assert!(
        h.get_all_by_label_contains("Å² (RMSF ").next().is_some(),
        "the legend names RMSF"
    );
    let before = h.render().expect("render");
    before
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("flex_worm.png"))
        .expect("save");
    // The worm's colours span the ramp: red (flexible) and blue (rigid) pixels both show.
    let red = before
        .pixels()
        .filter(|p| p[0] > 200 && p[1] < 120 && p[2] < 120)
        .count();
    let blue = before
        .pixels()
        .filter(|p| p[2] > 200 && p[0] < 140 && p[1] < 160)
        .count();
    assert!(red > 50 && blue > 50, "red {red}, blue {blue} pixels");
    // A click in the plot selects a residue, drawn highlighted in the viewport.
    h.get_by_label("RMSF per residue").click();
    h.run_steps(3);
    let selected = match &h.state().object(model).expect("model").kind {
        ObjectKind::Model(m) => m.flex.as_ref().and_then(|v| v.selected),
        _ => unreachable!(),
    };
    let r = selected.expect("a residue is selected by the click");
    assert!(r < 214);
    assert!(
        h.get_all_by_label_contains("selected ").next().is_some(),
        "the selected residue is named"
    );
    let after = h.render().expect("render");
    after
        .save(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("flex_selected.png"))
        .expect("save");
    let green = |img: &image::RgbaImage| img.pixels().filter(|p| p[1] > 200 && p[0] < 120 && p[2] < 140).count();
    assert!(
        green(&after) > green(&before) + 20,
        "the selected residue is highlighted: {} → {} green pixels",
        green(&before),
        green(&after)
    );
    // Export the model and the table.
    let out = dir.path().join("flex.cif");
    h.state_mut().export_path = out.display().to_string();
    h.run_steps(2);
    h.get_by_label("Export model (RMSF as B)").click();
    h.run_steps(2);
    assert!(
        h.state().message.as_deref().is_some_and(|m| m.starts_with("wrote")),
        "the model export: {:?}",
        h.state().message
    );
    h.get_by_label("Export CSV").click();
    h.run_steps(2);
    let written = Structure::read(&out).unwrap_or_else(|e| panic!("{e}; app says {:?}", h.state().message));
    assert_eq!(written.atoms.len(), b_now.len());
    let csv = std::fs::read_to_string(dir.path().join("flex.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 215);
    assert!(csv.starts_with("chain,residue_number,insertion_code,residue_name,rmsf_angstrom"));
}
