//! Command-line paths to the science: simulate a map from a model, score a model in a map,
//! compare two models and fit a model rigidly into a map (the map tools are in [`super::map`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::formats::model_write::write_structure;
use cryoforge_compute::formats::stack::write_stack;
use cryoforge_compute::gpu::{AdapterChoice, GpuContext};
use cryoforge_compute::maps::density::{GaussianAtoms, GaussianOptions, molmap_grid, simulate};
use cryoforge_compute::maps::density_gpu::GpuDensity;
use cryoforge_compute::maps::scores::score_map_model;
use cryoforge_compute::maps::tools;
use cryoforge_compute::maps::{DensityMap, MapGrid, MapMeta};
use cryoforge_compute::models::compare::{RigidTransform, compare};
use cryoforge_compute::models::validation::validate;
use cryoforge_compute::particles::data::{CENTRE_KEYS, ParticleData, SIMULATION_BLOCK};
use cryoforge_compute::particles::reconstruct::back_project;
use cryoforge_compute::particles::simulate::{PoseDistribution, SimulationOptions, simulate_particles};
use cryoforge_compute::rigid_fit::{RigidFitOptions, RigidFitter};
use indicatif::ProgressBar;

#[derive(Subcommand)]
pub enum SimulateCommand {
    /// Simulate a density map from a model (molmap convention: σ = 0.225 × resolution).
    Map {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        resolution: f32,
        /// Use this map's grid.
        #[arg(long, conflicts_with_all = ["apix", "box_size"])]
        like: Option<PathBuf>,
        /// Voxel size in Å for a new cubic box centred on the model (default: resolution/3).
        #[arg(long)]
        apix: Option<f32>,
        /// Box edge in voxels for the new cubic box (default: molmap's padding of 3 × resolution).
        #[arg(long = "box")]
        box_size: Option<usize>,
        /// Widen each atom by its B-factor.
        #[arg(long)]
        bfactors: bool,
        /// Use the CPU even when a GPU is present.
        #[arg(long)]
        cpu: bool,
        /// Add Gaussian noise at this signal-to-noise ratio (variance of the map over the box /
        /// variance of the noise).
        #[arg(long)]
        snr: Option<f64>,
        /// Seed of the noise.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Simulate particle images (a .mrcs stack and a RELION 3.1 STAR file) from models.
    Particles {
        /// One or more models; multi-model files contribute every frame.
        #[arg(long = "model", required = true)]
        models: Vec<PathBuf>,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long = "box", default_value_t = 64)]
        box_size: usize,
        #[arg(long, default_value_t = 1.5)]
        apix: f64,
        /// Signal-to-noise ratio, var(signal)/var(noise); 0 for none.
        #[arg(long, default_value_t = 0.1)]
        snr: f64,
        /// Atom width σ = 0.225 × this resolution (Å).
        #[arg(long, default_value_t = 3.0)]
        resolution: f64,
        #[arg(long, default_value_t = 10000.0)]
        defocus_min: f64,
        #[arg(long, default_value_t = 25000.0)]
        defocus_max: f64,
        /// Leave out views within this many degrees of the z axis.
        #[arg(long)]
        missing_cone: Option<f64>,
        /// Views around the top view with this spread (degrees) instead of uniform.
        #[arg(long, conflicts_with = "missing_cone")]
        preferred_view: Option<f64>,
        #[arg(long, default_value_t = 3.0)]
        max_shift: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The STAR file to write; the stack goes beside it with the extension .mrcs.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// A map, a model and the resolution to compare them at: what every map–model command takes.
#[derive(Args)]
pub struct MapModelArgs {
    #[arg(long)]
    pub map: PathBuf,
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub resolution: f32,
}

#[derive(Subcommand)]
pub enum FitCommand {
    /// Fit a model into a map as a rigid body (fitmap-style local ascent, optional global search).
    Rigid {
        #[command(flatten)]
        input: MapModelArgs,
        /// Global search from this many orientations (0: local fit from where the model is).
        #[arg(long, default_value_t = 0)]
        search: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Pull a starting model into a map by map-guided diffusion sampling (global Sinkhorn, then
    /// local density guidance, with an elastic-network prior of the model).
    Guided(crate::cli::guided::GuidedArgs),
    /// Refine a model against raw particle images with known poses and CTFs (Fourier ring
    /// correlation of the model's CTF-modulated projections, elastic-network prior).
    Particles(crate::cli::particles::ParticleFitArgs),
}

/// A model for a method: its first conformer (see the altloc policy in `formats::model`).
pub(crate) fn read_model(path: &Path) -> anyhow::Result<Structure> {
    let structure = Structure::read(path)?;
    for warning in &structure.info.warnings {
        eprintln!("warning: {}: {warning}", path.display());
    }
    Ok(structure.first_conformer())
}

pub(crate) fn read_map(path: &Path) -> anyhow::Result<DensityMap> {
    Ok(DensityMap::read(path)?)
}

pub(crate) fn positive(value: f32, what: &str) -> anyhow::Result<f32> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        bail!("{what} must be a positive number, got {value}")
    }
}

pub fn simulate_cmd(command: SimulateCommand) -> anyhow::Result<()> {
    let (model, resolution, like, apix, box_size, bfactors, cpu, snr, seed, output) = match command {
        SimulateCommand::Map {
            model,
            resolution,
            like,
            apix,
            box_size,
            bfactors,
            cpu,
            snr,
            seed,
            output,
        } => (
            model, resolution, like, apix, box_size, bfactors, cpu, snr, seed, output,
        ),
        particles @ SimulateCommand::Particles { .. } => return simulate_particles_cmd(particles),
    };
    let resolution = positive(resolution, "--resolution")?;
    let structure = read_model(&model)?;
    let options = GaussianOptions {
        use_b_factors: bfactors,
        ..GaussianOptions::molmap(resolution)
    };
    let (atoms, _) = GaussianAtoms::from_structure(&structure, 0, options);
    let grid = match (like, apix, box_size) {
        (Some(like), _, _) => DensityMap::read(&like)?.grid,
        (None, None, None) => molmap_grid(&atoms.positions, resolution),
        (None, apix, box_size) => {
            let apix = positive(apix.unwrap_or(resolution / 3.0), "--apix")?;
            let auto = molmap_grid(&atoms.positions, resolution);
            let n = box_size.unwrap_or_else(|| {
                let extent = (0..3)
                    .map(|a| auto.dims[a] as f32 * auto.voxel_size_angstrom[a])
                    .fold(0.0, f32::max);
                (extent / apix).ceil() as usize
            });
            let centre: [f32; 3] = std::array::from_fn(|a| {
                auto.first_voxel_angstrom()[a] + 0.5 * (auto.dims[a] - 1) as f32 * auto.voxel_size_angstrom[a]
            });
            let first = centre.map(|c| c - 0.5 * (n - 1) as f32 * apix);
            MapGrid::new([n; 3], [apix; 3], first)
        }
    };
    // The WGSL kernel only pays off on a real GPU; on software adapters the CPU kernel is as fast.
    let gpu = if cpu {
        None
    } else {
        GpuContext::new(AdapterChoice::HardwareOnly).ok().map(GpuDensity::new)
    };
    let started = Instant::now();
    let mut values = match &gpu {
        Some(gpu) => match gpu.simulate(&grid, &atoms) {
            Ok(values) => {
                eprintln!("on {}", gpu.context().describe());
                values
            }
            Err(why) => {
                eprintln!("GPU simulation failed ({why}); using the CPU");
                simulate(&grid, &atoms)
            }
        },
        None => simulate(&grid, &atoms),
    };
    if let Some(snr) = snr {
        if !(snr.is_finite() && snr > 0.0) {
            bail!("--snr must be a positive number, got {snr}");
        }
        tools::add_noise(&mut values, snr, seed);
    }
    let map = DensityMap {
        grid,
        values,
        meta: MapMeta {
            labels: vec![match snr {
                Some(snr) => format!(
                    "cryoforge simulate map: {} at {resolution} A, SNR {snr}",
                    model.display()
                ),
                None => format!("cryoforge simulate map: {} at {resolution} A", model.display()),
            }],
            ..MapMeta::default()
        },
    };
    map.write(&output)?;
    eprintln!(
        "simulated {} atoms on {:?} voxels of {:.3} Å in {:.5} s → {}",
        atoms.len(),
        map.grid.dims,
        map.grid.voxel_size_angstrom[0],
        started.elapsed().as_secs_f64(),
        output.display()
    );
    Ok(())
}

fn simulate_particles_cmd(command: SimulateCommand) -> anyhow::Result<()> {
    let SimulateCommand::Particles {
        models,
        count,
        box_size,
        apix,
        snr,
        resolution,
        defocus_min,
        defocus_max,
        missing_cone,
        preferred_view,
        max_shift,
        seed,
        output,
    } = command
    else {
        return Ok(());
    };
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if box_size < 8 || !positive(apix) || !positive(resolution) {
        bail!("--box must be at least 8 and --apix, --resolution positive");
    }
    let structures = models
        .iter()
        .map(|m| read_model(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let poses = match (missing_cone, preferred_view) {
        (Some(half_angle_deg), _) => PoseDistribution::MissingCone { half_angle_deg },
        (_, Some(spread_deg)) => PoseDistribution::PreferredView { spread_deg },
        _ => PoseDistribution::Uniform,
    };
    let options = SimulationOptions {
        count,
        box_size,
        pixel_size_angstrom: apix,
        resolution_angstrom: resolution,
        snr: (snr > 0.0).then_some(snr),
        defocus_range_angstrom: (defocus_min, defocus_max),
        poses,
        max_shift_px: max_shift,
        seed,
        ..SimulationOptions::default()
    };
    let stack_path = output.with_extension("mrcs");
    let stack_name = stack_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("output needs a file name")?;
    let started = Instant::now();
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner.set_message(format!("simulating {count} particles"));
    let sim = simulate_particles(&structures, &options, &stack_name);
    spinner.finish_and_clear();
    write_stack(&stack_path, [box_size, box_size], apix as f32, &sim.images)?;
    let mut star = sim.particles.to_star();
    if let Some(table) = star.block_mut("particles").and_then(|b| b.table_mut()) {
        table.set_column("cryoforgeModelIndex", |r| sim.model_index[r].to_string());
    }
    // Where the box centre sits in the models' frame, so `reconstruct` can place its map on them.
    let mut block = cryoforge_compute::formats::star::StarBlock::new(SIMULATION_BLOCK);
    let centre = sim.centres.first().copied().unwrap_or([0.0; 3]);
    for (key, value) in CENTRE_KEYS.iter().zip(centre) {
        block.pairs.push(((*key).to_owned(), format!("{value:.4}")));
    }
    star.blocks.push(block);
    star.write(&output)?;
    eprintln!(
        "wrote {count} particles of {box_size}² px at {apix} Å/px to {} and {} ({:.1} s)",
        stack_path.display(),
        output.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `cryoforge reconstruct`: back-projection of a particle set into a map.
pub fn reconstruct_cmd(
    particles: &Path,
    pixel_size: crate::cli::particles::PixelSizeArg,
    output: &Path,
) -> anyhow::Result<()> {
    let data = ParticleData::read_with(particles, &pixel_size.options()).map_err(anyhow::Error::msg)?;
    let bar = ProgressBar::new(data.len() as u64);
    let progress = |done: usize| {
        bar.set_position(done as u64);
        true
    };
    // Simulated data say where the box centre was; otherwise centre the map on the origin.
    let centre = data.centre.unwrap_or([0.0; 3]).map(|c| c as f32);
    let map = back_project(&data.set, &data.images, data.box_size, centre, &progress);
    bar.finish_and_clear();
    map.write(output)?;
    eprintln!(
        "back-projected {} particles into {}³ voxels → {}",
        data.len(),
        data.box_size,
        output.display()
    );
    Ok(())
}

pub fn score_cmd(map: &Path, model: &Path, resolution: f32, contour: Option<f32>, json: bool) -> anyhow::Result<()> {
    let resolution = positive(resolution, "--resolution")?;
    let map = read_map(map)?;
    let structure = read_model(model)?;
    let (atoms, _) = GaussianAtoms::from_structure(&structure, 0, GaussianOptions::molmap(resolution));
    let s = score_map_model(&map, &atoms, resolution, contour);
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("correlation about zero     {:.4}", s.correlation_about_zero);
    println!("correlation about mean     {:.4}", s.correlation_about_mean);
    println!("correlation inside envelope {:.4}", s.correlation_inside_envelope);
    println!("overlap                    {:.4e}", s.overlap);
    println!("mean map value at atoms    {:.4}", s.mean_map_value_at_atoms);
    println!(
        "atoms inside contour {:.4}  {:.1}% of {}",
        s.contour_level,
        100.0 * s.fraction_atoms_inside_contour,
        s.atoms_scored
    );
    match s.fsc_resolution_angstrom {
        Some(r) => println!("map-model FSC = 0.5 at      {r:.2} Å"),
        None => println!("map-model FSC stays above 0.5 to Nyquist"),
    }
    println!(
        "in the model's zone ({} voxels within {:.1} Å of an atom):",
        s.zone_voxels, s.zone_radius_angstrom
    );
    println!("  correlation about mean   {:.4}", s.correlation_in_zone);
    match s.zone_fsc_resolution_angstrom {
        Some(r) => println!("  masked FSC = 0.5 at      {r:.2} Å"),
        None => println!("  masked FSC stays above 0.5 to Nyquist"),
    }
    Ok(())
}

pub fn compare_cmd(model: &Path, reference: &Path, json: bool) -> anyhow::Result<()> {
    let m = read_model(model)?;
    let r = read_model(reference)?;
    let c = compare(&m, 0, &r);
    // Model-building metrics match Cα in space, so a built model with its own numbering and
    // chains still compares.
    let b = cryoforge_compute::models::building::building_metrics(&m, &r);
    let matched = c.matched_residues >= 3;
    if !matched && b.coverage == 0.0 {
        bail!(
            "only {} residues of {} match {} by chain and number or sequence, and none lies within 3 Å of a reference \
             Cα: nothing to compare",
            c.matched_residues,
            model.display(),
            reference.display()
        );
    }
    let (vm, vr) = (validate(&m, 0), validate(&r, 0));
    if json {
        let mut value = if matched {
            serde_json::to_value(&c)?
        } else {
            serde_json::json!({})
        };
        value["building"] = serde_json::to_value(&b)?;
        value["validation"] = serde_json::json!({ "model": vm, "reference": vr });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        if matched {
            println!(
                "matched Cα    {} of {} (reference {}), by {:?}",
                c.matched_residues, c.model_residues, c.reference_residues, c.match_method
            );
            println!("Cα RMSD       {:.3} Å", c.ca_rmsd_angstrom);
            println!("TM-score      {:.4}", c.tm_score);
            println!("lDDT (Cα)     {:.4}", c.lddt_ca);
        } else {
            println!("no residues match by chain and number or sequence; Cα matched in space only:");
        }
        println!(
            "model building (Cα matched in space): coverage {:.1}%  sequence recall {:.1}%  TM-score {:.4}  \
             RMSD {:.2} Å  chain breaks {}  false positives {:.1}%",
            100.0 * b.coverage,
            100.0 * b.sequence_recall,
            b.tm_score,
            b.rmsd_angstrom,
            b.chain_breaks,
            100.0 * b.false_positives
        );
        println!("model         {}", vm.summary_line());
        println!("reference     {}", vr.summary_line());
    }
    Ok(())
}

/// Applies `t` to every frame of `structure`.
pub fn transformed(structure: &Structure, t: &RigidTransform) -> Structure {
    let mut out = structure.clone();
    for frame in &mut out.frames {
        for p in frame.iter_mut() {
            *p = t.apply(p.map(f64::from)).map(|v| v as f32);
        }
    }
    out
}

pub fn fit_cmd(command: FitCommand) -> anyhow::Result<()> {
    let (map, model, resolution, search, seed, output, json) = match command {
        FitCommand::Rigid {
            input: MapModelArgs { map, model, resolution },
            search,
            seed,
            output,
            json,
        } => (map, model, resolution, search, seed, output, json),
        FitCommand::Guided(args) => return crate::cli::guided::fit_guided_cmd(args),
        FitCommand::Particles(args) => return crate::cli::particles::fit_particles_cmd(args),
    };
    let resolution = positive(resolution, "--resolution")?;
    let density = read_map(&map)?;
    let structure = read_model(&model)?;
    let (atoms, _) = GaussianAtoms::from_structure(&structure, 0, GaussianOptions::molmap(resolution));
    let fitter = RigidFitter::new(&density, &atoms);
    let started = Instant::now();
    let spinner = ProgressBar::new_spinner();
    spinner.enable_steady_tick(Duration::from_millis(120));
    let placements = if search == 0 {
        spinner.set_message("local fit");
        let mut on_step = |n: usize, cc: f64, _: &RigidTransform| {
            spinner.set_message(format!("local fit: step {n}, correlation {cc:.4}"));
            true
        };
        vec![fitter.fit_local(RigidTransform::IDENTITY, RigidFitOptions::default(), &mut on_step)]
    } else {
        spinner.set_message(format!("global search from {search} orientations"));
        fitter.fit_global(search, seed, RigidFitOptions::default(), &|| false)
    };
    spinner.finish_and_clear();
    let best = placements.first().context("the fit produced no placement")?;
    write_structure(&transformed(&structure, &best.transform), &output)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "output": output, "seconds": started.elapsed().as_secs_f64(), "placements": placements,
            }))?
        );
    } else {
        println!(
            "{:>4} {:>12} {:>10} {:>10}",
            "rank", "correlation", "shift Å", "rotation°"
        );
        for (i, p) in placements.iter().enumerate().take(10) {
            println!(
                "{:>4} {:>12.4} {:>10.2} {:>10.1}",
                i + 1,
                p.correlation,
                p.shift_angstrom,
                p.rotation_deg
            );
        }
        eprintln!(
            "wrote the best placement to {} ({:.1} s)",
            output.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
