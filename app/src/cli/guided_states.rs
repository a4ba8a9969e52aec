//! `cryoforge fit guided --run RUN`: one model per state of a heterogeneity run. The model is
//! fitted by guided sampling into the volume of every cluster (or every volume along a latent
//! path); `-o OUT` gets the trajectory across the states (one model per state, in path order),
//! each state's model beside it (`OUT_state<k>`), and a report comparing every state with every
//! `--reference`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::formats::model_write::write_structure;
use cryoforge_compute::guided::FreeOptions;
use cryoforge_compute::guided::states::{StateProgress, StateTarget, fit_states};
use cryoforge_compute::hetero::explore::{StateSource, state_volumes};
use cryoforge_compute::models::compare::compare;
use indicatif::{ProgressBar, ProgressStyle};

use super::guided::{GuidedArgs, StatesArg, beside, extension_of, options_from};

pub fn fit_states_cmd(args: &GuidedArgs, run: &Path) -> anyhow::Result<()> {
    let mut options = options_from(args)?;
    if args.no_free {
        options.free = FreeOptions::Off;
    }
    let source = match args.states {
        StatesArg::Clusters => StateSource::Clusters,
        StatesArg::Pc1 => StateSource::Path { axis: 1 },
        StatesArg::Pc2 => StateSource::Path { axis: 2 },
    };
    let volumes = state_volumes(run, source)?;
    let structure = super::science::read_model(&args.model)?;
    let references: Vec<(PathBuf, Structure)> = args
        .reference
        .iter()
        .map(|p| super::science::read_model(p).map(|s| (p.clone(), s)))
        .collect::<anyhow::Result<_>>()?;
    let targets: Vec<StateTarget> = volumes
        .iter()
        .map(|v| StateTarget {
            label: v.label.clone(),
            map: Arc::new(v.map.clone()),
            particles: v.particles,
        })
        .collect();
    let steps = options.total_steps();
    let bar = ProgressBar::new((steps * targets.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut on_step = |p: &StateProgress<'_>| {
        let s = p.step;
        bar.set_position((p.state * steps + s.sample * s.total_steps + s.record.step + 1) as u64);
        bar.set_message(format!(
            "{} ({}/{}) sample {}/{} cc {:.4}",
            p.label,
            p.state + 1,
            p.states,
            s.sample + 1,
            s.samples,
            s.record.correlation
        ));
        true
    };
    let fit = fit_states(&structure, &targets, &options, args.chain, &mut on_step)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.model.display()))?;
    bar.finish_and_clear();
    let trajectory = fit.trajectory().context("no state was fitted")?;

    let extension = extension_of(&args.output);
    write_structure(&trajectory, &args.output)?;
    let compare_all = |model: &Structure| -> Vec<serde_json::Value> {
        references
            .iter()
            .map(|(path, r)| {
                let c = compare(model, 0, r);
                serde_json::json!({"reference": path, "ca_rmsd_angstrom": c.ca_rmsd_angstrom, "tm_score": c.tm_score, "lddt_ca": c.lddt_ca})
            })
            .collect()
    };
    let mut states = Vec::new();
    for (k, (state, volume)) in fit.states.iter().zip(&volumes).enumerate() {
        let model = state.model();
        let path = beside(&args.output, &format!("_state{}", k + 1), extension);
        write_structure(&model, &path)?;
        let best = state.fit.samples.first();
        states.push(serde_json::json!({
            "state": k + 1,
            "label": state.label,
            "volume": volume.path,
            "particles": state.particles,
            "model": path,
            "start_is_best": state.fit.start_is_best,
            "start": {
                "correlation": state.fit.start_correlation,
                "free_score": state.fit.start_free_score,
                "references": compare_all(&state.fit.start_model()),
            },
            "correlation": state.correlation(),
            "free_score": state.free_score(),
            "validation": best.map(|b| &b.validation),
            "moved_angstrom": best.and_then(|b| b.steps.last()).map(|r| r.rmsd_to_start_angstrom),
            "references": compare_all(&model),
            "seconds": state.fit.seconds,
        }));
    }
    let summary = serde_json::json!({
        "run": run, "states_from": source.label(), "chained": fit.chained, "model": args.model,
        "resolution_angstrom": args.resolution, "free": fit.states.first().map(|s| &s.fit.free),
        "trajectory": args.output, "states": states, "seconds": fit.seconds, "cancelled": fit.cancelled,
    });
    let mut report = summary.clone();
    report["options"] = serde_json::to_value(&options)?;
    let Some(report_path) = super::write_report(&args.output, &report, &summary, args.json)? else {
        return Ok(());
    };
    if fit.states.is_empty() {
        bail!("no state was fitted");
    }
    println!(
        "{} states from {} of {}, each fitted {}",
        fit.states.len(),
        source.label(),
        run.display(),
        if fit.chained {
            "from the previous state's model"
        } else {
            "from the start model"
        }
    );
    for (k, state) in fit.states.iter().enumerate() {
        let mut line = format!(
            "state {} ({}{}): correlation {:.4} (start {:.4})",
            k + 1,
            state.label,
            state.particles.map_or(String::new(), |n| format!(", {n} particles")),
            state.correlation(),
            state.fit.start_correlation
        );
        if let (Some(free), Some(start)) = (state.free_score(), state.fit.start_free_score) {
            line += &format!(", free {free:.4} (start {start:.4})");
        }
        if state.fit.start_is_best {
            line += ", the start kept (the fit scored worse)";
        }
        let model = state.model();
        for (path, r) in &references {
            let c = compare(&model, 0, r);
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            line += &format!("; Cα RMSD to {name} {:.3} Å", c.ca_rmsd_angstrom);
        }
        println!("{line}");
    }
    eprintln!(
        "wrote {} (one model per state) and each state beside it, report {} ({:.1} s)",
        args.output.display(),
        report_path.display(),
        fit.seconds
    );
    Ok(())
}
