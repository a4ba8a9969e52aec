//! Development harness for guided sampling on adenylate kinase: simulates a map of one state,
//! fits the other into it and prints the Cα RMSD to the target. Environment variables override
//! the defaults (GF_RES, GF_REVERSE, GF_SNR, GF_NOGUIDE, GF_SEED, GF_MODES, GF_ELASTIC, GF_RIGID,
//! GF_FLOOR, GF_RECENTRE, GF_EXPERIMENTAL, GF_STEPS).

use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::guided::{GuidedFitOptions, ScheduleKind, guided_fit};
use cryoforge_compute::maps::DensityMap;
use cryoforge_compute::maps::density::{GaussianAtoms, GaussianOptions, molmap_grid, simulate};
use cryoforge_compute::models::compare::compare;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/models");
    let closed = Structure::read(&root.join("adk_closed.pdb")).expect("closed");
    let open = Structure::read(&root.join("adk_open.pdb")).expect("open");
    let (start, target) = if env("GF_REVERSE", 0) == 1 {
        (open, closed)
    } else {
        (closed, open)
    };
    let res: f32 = env("GF_RES", 5.0);
    let (g, _) = GaussianAtoms::from_structure(&target, 0, GaussianOptions::molmap(res));
    let grid = molmap_grid(&g.positions, res);
    let mut values = simulate(&grid, &g);
    let snr: f64 = env("GF_SNR", 0.0);
    if snr > 0.0 {
        cryoforge_compute::maps::tools::add_noise(&mut values, snr, 99);
    }
    let map = DensityMap {
        values,
        grid,
        meta: Default::default(),
    };
    let kind = if env("GF_EXPERIMENTAL", 0) == 1 {
        ScheduleKind::Experimental
    } else {
        ScheduleKind::Synthetic
    };
    let mut options = GuidedFitOptions::new(res, kind);
    options.seed = env("GF_SEED", 1);
    options.guidance_enabled = env("GF_NOGUIDE", 0) == 0;
    options.prior.modes = env("GF_MODES", options.prior.modes);
    options.prior.elastic_rmsd_angstrom = env("GF_ELASTIC", options.prior.elastic_rmsd_angstrom);
    options.prior.rigid_rmsd_angstrom = env("GF_RIGID", options.prior.rigid_rmsd_angstrom);
    options.prior.floor_variance_angstrom2 = env("GF_FLOOR", options.prior.floor_variance_angstrom2);
    options.recentre_every = env("GF_RECENTRE", options.recentre_every);
    let cloud: usize = env("GF_CLOUD", 0);
    if cloud > 0 {
        options.guidance.cloud_points = Some(cloud);
    }
    options.schedule.local_scale = env("GF_LOCAL", options.schedule.local_scale);
    options.guidance.max_sinkhorn_atoms = env("GF_SINKATOMS", options.guidance.max_sinkhorn_atoms);
    options.guidance.blur_angstrom = env("GF_BLUR", options.guidance.blur_angstrom);
    options.local_blur_per_sigma = env("GF_LBLUR", options.local_blur_per_sigma);
    options.pull_back_gradient = env("GF_PULL", 1) == 1;
    options.restore_residue_geometry = env("GF_RESTORE", 1) == 1;
    options.schedule = options.schedule.clone().with_total_steps(env("GF_STEPS", 200));
    let verbose = env("GF_VERBOSE", 0) == 1;
    if env("GF_PROBE", 0) == 1 {
        use cryoforge_compute::guided::MapGuidance;
        let (ga, _) = GaussianAtoms::from_structure(&target, 0, GaussianOptions::molmap(res));
        let (sa, _) = GaussianAtoms::from_structure(&start, 0, GaussianOptions::molmap(res));
        let mut mg = MapGuidance::new(&map, &ga, &options.guidance).expect("guidance");
        let p = |a: &GaussianAtoms| a.positions.iter().map(|q| q.map(f64::from)).collect::<Vec<_>>();
        println!(
            "S(target) {:.3} S(start) {:.3} L2(target) {:.4} L2(start) {:.4}",
            mg.global(&p(&ga)).loss,
            mg.global(&p(&sa)).loss,
            mg.local(&ga, 0.0).loss,
            mg.local(&sa, 0.0).loss
        );
    }
    let heavy = cryoforge_compute::guided::heavy_atom_model(&start, res);
    let fit = guided_fit(&start, &map, &options, &mut |p| {
        if verbose && p.record.step % 5 == 0 && p.record.step >= 95 {
            let mut m = heavy.clone();
            m.frames = vec![p.denoised.iter().map(|q| q.map(|v| v as f32)).collect()];
            let rmsd = compare(&m, 0, &target).ca_rmsd_angstrom;
            if p.record.step % 25 == 0 {
                use cryoforge_compute::models::compare::{alpha_carbons, superpose};
                let a: Vec<[f64; 3]> = alpha_carbons(&m, 0).iter().map(|r| r.ca).collect();
                let b: Vec<[f64; 3]> = alpha_carbons(&target, 0).iter().map(|r| r.ca).collect();
                let tr = superpose(&a, &b);
                let dev: Vec<String> = a
                    .iter()
                    .zip(&b)
                    .map(|(p, q)| {
                        let r = tr.apply(*p);
                        ((r[0] - q[0]).powi(2) + (r[1] - q[1]).powi(2) + (r[2] - q[2]).powi(2)).sqrt()
                    })
                    .collect::<Vec<_>>()
                    .chunks(10)
                    .map(|c| format!("{:.1}", c.iter().sum::<f64>() / c.len() as f64))
                    .collect();
                eprintln!("    per-10: {}", dev.join(" "));
            }
            eprintln!(
                "{:3} {:?} σ {:8.3} scale {:.3} sink {:.3} l2 {:.3} cc {:.4} rmsd0 {:.2} rmsd→target {:.2}",
                p.record.step,
                p.record.phase,
                p.record.sigma,
                p.record.guidance_scale,
                p.record.sinkhorn.unwrap_or(0.0),
                p.record.density_l2.unwrap_or(0.0),
                p.record.correlation,
                p.record.rmsd_to_start_angstrom,
                rmsd
            );
        }
        true
    })
    .expect("fit");
    let before = compare(&fit.model, 0, &target);
    for s in &fit.samples {
        let c = compare(&fit.sample_model(s), 0, &target);
        println!(
            "res {res} sample {} cc {:.4} (start {:.4}) Cα RMSD {:.3} Å (start {:.3}) TM {:.3} time {:.1} s bonds rms {:.3} max {:.2} off {} clashes {} (start {})",
            s.index,
            s.correlation,
            fit.start_correlation,
            c.ca_rmsd_angstrom,
            before.ca_rmsd_angstrom,
            c.tm_score,
            s.seconds,
            s.geometry.bond_rmsd_angstrom,
            s.geometry.bond_max_deviation_angstrom,
            s.geometry.bonds_off_by_0_2_angstrom,
            s.geometry.clashes,
            fit.start_geometry.clashes
        );
    }
    for s in &fit.samples {
        println!("timings {:?}", s.timings);
    }
    if let Some(best) = fit.samples.first() {
        use cryoforge_compute::models::compare::{alpha_carbons, superpose};
        let m = alpha_carbons(&fit.sample_model(best), 0);
        let t = alpha_carbons(&target, 0);
        let a: Vec<[f64; 3]> = m.iter().map(|r| r.ca).collect();
        let b: Vec<[f64; 3]> = t.iter().map(|r| r.ca).collect();
        let tr = superpose(&a, &b);
        let dev: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(p, q)| {
                let r = tr.apply(*p);
                ((r[0] - q[0]).powi(2) + (r[1] - q[1]).powi(2) + (r[2] - q[2]).powi(2)).sqrt()
            })
            .collect();
        let blocks: Vec<String> = dev
            .chunks(10)
            .map(|c| format!("{:.1}", c.iter().sum::<f64>() / c.len() as f64))
            .collect();
        println!("per-10-residue Cα deviation: {}", blocks.join(" "));
    }
    println!("cloud {} points, prior {}", fit.cloud_points, fit.prior);
}
