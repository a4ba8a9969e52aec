//! The map tools on the command line: each reads a map and writes a new one (threshold, dust,
//! crop, resample, low-pass, hand flip, z-score, and segmentation into regions).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use cryoforge_compute::maps::DensityMap;
use cryoforge_compute::maps::scores::level_enclosing_fraction;
use cryoforge_compute::maps::segment::{DEFAULT_STEPS, ModelMaskOptions, SegmentOptions, Segmentation, watershed};
use cryoforge_compute::maps::tools;
use indicatif::ProgressBar;

use super::science::{positive, read_map, read_model};

#[derive(Args)]
pub struct MapIo {
    input: PathBuf,
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Subcommand)]
pub enum MapCommand {
    /// Set values below LEVEL to zero.
    Threshold {
        #[command(flatten)]
        io: MapIo,
        #[arg(long)]
        level: f32,
    },
    /// Remove connected blobs above LEVEL smaller than a volume (Å³).
    Dust {
        #[command(flatten)]
        io: MapIo,
        #[arg(long)]
        level: f32,
        #[arg(long, default_value_t = 1000.0)]
        min_volume: f32,
    },
    /// Crop to the region above LEVEL (default: the level enclosing 1% of voxels) plus padding (Å).
    Crop {
        #[command(flatten)]
        io: MapIo,
        #[arg(long)]
        level: Option<f32>,
        #[arg(long, default_value_t = 5.0)]
        padding: f32,
    },
    /// Resample to a new voxel size (Å), optionally a new box (voxels).
    Resample {
        #[command(flatten)]
        io: MapIo,
        #[arg(long)]
        apix: f32,
        #[arg(long = "box")]
        box_size: Option<usize>,
    },
    /// Fourier low-pass to a resolution (Å).
    Lowpass {
        #[command(flatten)]
        io: MapIo,
        #[arg(long)]
        resolution: f32,
    },
    /// Flip the hand (mirror z).
    Flip {
        #[command(flatten)]
        io: MapIo,
    },
    /// Normalise to mean 0, standard deviation 1.
    Zscore {
        #[command(flatten)]
        io: MapIo,
    },
    /// Segment into regions (watershed, then Segger's scale-space grouping); writes the label
    /// map (each voxel its region's label, 0 for none) and prints the regions.
    Segment(SegmentArgs),
}

#[derive(Args)]
pub struct SegmentArgs {
    #[command(flatten)]
    io: MapIo,
    /// Voxels below this stay unassigned (default: the level enclosing 1% of voxels).
    #[arg(long)]
    level: Option<f32>,
    /// Grouping steps (default 4; 64 with --target-regions).
    #[arg(long)]
    steps: Option<usize>,
    /// Stop grouping once this many regions or fewer remain.
    #[arg(long)]
    target_regions: Option<usize>,
    /// Regions smaller than this (Å³) merge into the neighbour they touch most (default: 27 voxels).
    #[arg(long)]
    min_volume: Option<f64>,
    /// σ of the smoothing before the watershed, Å (default: one voxel).
    #[arg(long)]
    smoothing: Option<f64>,
    /// A model in the map: list the regions holding its atoms.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Write the mask (1/0) of the model's regions: holding ≥ 5% of its atoms and lying at least
    /// half within the --dilate distance of them.
    #[arg(long, requires = "model")]
    mask_out: Option<PathBuf>,
    /// How far the mask reaches past its regions into unassigned voxels, Å (default: 3 voxels,
    /// about the resolution at molmap's resolution/3 sampling).
    #[arg(long)]
    dilate: Option<f64>,
    /// Print the regions as JSON.
    #[arg(long)]
    json: bool,
}

pub fn map_cmd(command: MapCommand) -> anyhow::Result<()> {
    let (io, result) = match command {
        MapCommand::Segment(args) => return segment_cmd(args),
        MapCommand::Threshold { io, level } => {
            let m = read_map(&io.input)?;
            (io, tools::threshold(&m, level))
        }
        MapCommand::Dust { io, level, min_volume } => {
            let m = read_map(&io.input)?;
            let (clean, removed) = tools::remove_dust(&m, level, min_volume);
            eprintln!("removed {removed} blob(s) smaller than {min_volume} Å³");
            (io, clean)
        }
        MapCommand::Crop { io, level, padding } => {
            let m = read_map(&io.input)?;
            let level = level.unwrap_or_else(|| level_enclosing_fraction(&m.values, 0.01));
            let cropped = tools::crop_to_level(&m, level, padding)
                .with_context(|| format!("{}: no voxel reaches level {level}", io.input.display()))?;
            (io, cropped)
        }
        MapCommand::Resample { io, apix, box_size } => {
            let m = read_map(&io.input)?;
            (
                io,
                tools::resample(&m, positive(apix, "--apix")?, box_size.map(|n| [n; 3])),
            )
        }
        MapCommand::Lowpass { io, resolution } => {
            let m = read_map(&io.input)?;
            (io, tools::low_pass(&m, positive(resolution, "--resolution")?))
        }
        MapCommand::Flip { io } => {
            let m = read_map(&io.input)?;
            (io, tools::flip_hand(&m))
        }
        MapCommand::Zscore { io } => {
            let m = read_map(&io.input)?;
            (io, tools::z_score(&m))
        }
    };
    result.write(&io.output)?;
    eprintln!("wrote {:?} voxels to {}", result.grid.dims, io.output.display());
    Ok(())
}

fn segment_cmd(args: SegmentArgs) -> anyhow::Result<()> {
    let map = read_map(&args.io.input)?;
    let level = args
        .level
        .unwrap_or_else(|| level_enclosing_fraction(&map.values, 0.01));
    let mut options = SegmentOptions::new(level, &map.grid);
    options.steps = args.steps.unwrap_or(if args.target_regions.is_some() {
        64
    } else {
        DEFAULT_STEPS
    });
    options.target_regions = args.target_regions;
    options.min_volume_angstrom3 = args.min_volume.unwrap_or(options.min_volume_angstrom3);
    options.smoothing_angstrom = args.smoothing.unwrap_or(options.smoothing_angstrom);
    let bar = ProgressBar::new(100);
    let started = Instant::now();
    let segmentation = watershed(&map, &options, &mut |f| {
        bar.set_position((f * 100.0) as u64);
        true
    })
    .with_context(|| format!("segmenting {}", args.io.input.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    segmentation.label_map(&map).write(&args.io.output)?;
    let holding = match &args.model {
        Some(path) => Some(model_regions(&args, path, &map, &options, &segmentation)?),
        None => None,
    };
    if args.json {
        let report = serde_json::json!({
            "level": level,
            "options": options,
            "seconds": seconds,
            "scales": segmentation.scales,
            "regions": segmentation.regions,
            "model_regions": holding,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{} regions above level {level:.4} in {seconds:.2} s (regions per scale: {:?})",
        segmentation.regions.len(),
        segmentation.scales.iter().map(|s| s.regions).collect::<Vec<_>>()
    );
    println!(
        "{:>6} {:>9} {:>12} {:>10}  centroid (Å)",
        "label", "voxels", "volume Å³", "max"
    );
    for r in &segmentation.regions {
        let [x, y, z] = r.centroid_angstrom;
        println!(
            "{:>6} {:>9} {:>12.0} {:>10.4}  {x:.1} {y:.1} {z:.1}",
            r.label, r.voxels, r.volume_angstrom3, r.max_value
        );
    }
    if let Some(holding) = holding {
        println!("model atoms per region (label: atoms): {holding:?}");
    }
    eprintln!("wrote the label map to {}", args.io.output.display());
    Ok(())
}

/// The regions holding the model's heavy atoms (label, atoms), and the mask of the model's
/// regions ([`ModelMaskOptions`]) written to `--mask-out`.
fn model_regions(
    args: &SegmentArgs,
    path: &std::path::Path,
    map: &DensityMap,
    options: &SegmentOptions,
    segmentation: &Segmentation,
) -> anyhow::Result<Vec<(u32, usize)>> {
    let model = read_model(path)?;
    let positions: Vec<[f64; 3]> = model
        .atoms
        .iter()
        .zip(model.frames.first().into_iter().flatten())
        .filter(|(atom, _)| !atom.is_hydrogen())
        .map(|(_, p)| p.map(f64::from))
        .collect();
    let holding = segmentation.region_holding(&positions, &map.grid);
    if let Some(mask_path) = &args.mask_out {
        let voxel = map
            .grid
            .voxel_size_angstrom
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min);
        let dilate = args.dilate.unwrap_or(3.0 * f64::from(voxel));
        let labels =
            segmentation.regions_of_model(&positions, &map.grid, &ModelMaskOptions::new(options.clone(), dilate));
        let mask = segmentation.dilated_mask(&labels, &map.grid, dilate);
        mask.write(mask_path)?;
        let kept = mask.values.iter().filter(|&&v| v > 0.5).count();
        eprintln!(
            "wrote the mask of region(s) {labels:?} ({kept} voxels, widened {dilate:.1} Å) to {}",
            mask_path.display()
        );
    }
    Ok(holding)
}
