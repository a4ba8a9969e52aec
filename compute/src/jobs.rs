//! The compute thread: one named worker that runs jobs while the UI stays responsive.
//!
//! Typed commands go in and typed events come out over bounded channels; heavy intermediate
//! state (coordinates, maps) goes through a latest-value slot so no backlog builds up when the
//! UI is slower than the job. A job checks for cancel and pause between steps, so cancel is
//! honoured within one step and keeps what the job has; a panic inside a job becomes a
//! [`Event::Failed`] and the worker lives on.

use std::panic::AssertUnwindSafe;
#[cfg(test)]
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};

use crate::compare::RigidTransform;
use crate::density::{GaussianAtoms, GaussianOptions};
use crate::fit::{Placement, RigidFitOptions, RigidFitter};
use crate::formats::model::Structure;
use crate::formats::mrc::DensityMap;
use crate::guided::{GuidedFit, GuidedFitOptions, StepProgress, guided_fit};
use crate::hetero::explore::{AnalyzeOptions, Exploration};
use crate::hetero::{HeteroOptions, HeteroProgress, Trained, train};
use crate::refine::{Gallery, ParticleData, RefineOptions, RefineProgress, Refinement, refine_particles};

pub type JobId = u64;

/// A unit of work for the compute thread.
#[derive(Clone)]
pub enum JobSpec {
    /// Rigid fit of a model into a map: local from where it is, or a global search.
    RigidFit {
        map: Arc<DensityMap>,
        model: Arc<Structure>,
        resolution_angstrom: f32,
        /// 0 for a local fit; otherwise the number of starting orientations.
        search_starts: usize,
    },
    /// A map tool producing a new map.
    MapTool { map: Arc<DensityMap>, tool: MapTool },
    /// Map-guided sampling of a model into a map; the denoised estimate streams as coordinates
    /// of the model's heavy atoms (see [`crate::guided::heavy_atom_model`]).
    GuidedFit {
        map: Arc<DensityMap>,
        model: Arc<Structure>,
        options: Box<GuidedFitOptions>,
    },
    /// Particle-driven refinement of a model against the particles of a STAR/.cs file; the model
    /// streams as coordinates of its heavy atoms, with a gallery of particles and projections.
    ParticleFit {
        particles: std::path::PathBuf,
        model: Arc<Structure>,
        centre: Option<[f64; 3]>,
        options: Box<RefineOptions>,
    },
    /// Heterogeneity: train the latent model on a particle set into a run directory (resuming
    /// it if it holds a checkpoint), then analyse the latents.
    HeteroTrain {
        particles: std::path::PathBuf,
        run: std::path::PathBuf,
        options: Box<HeteroOptions>,
        analyze: Box<AnalyzeOptions>,
    },
    /// Analyse a trained run again (other clusters) and load it.
    HeteroAnalyze {
        run: std::path::PathBuf,
        analyze: Box<AnalyzeOptions>,
    },
    /// Decode the volume at a latent point of a trained run.
    HeteroVolume {
        run: std::path::PathBuf,
        z: Vec<f32>,
        label: String,
    },
    /// Panics: proves a crashing job becomes a failed event.
    #[cfg(test)]
    Crash,
}

/// The map tools, as jobs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MapTool {
    ZScore,
    LowPass { resolution_angstrom: f32 },
    FlipHand,
    Threshold { level: f32 },
    Dust { level: f32, min_volume_angstrom3: f32 },
    Crop { level: f32, padding_angstrom: f32 },
    Resample { voxel_size_angstrom: f32 },
}

impl MapTool {
    /// A suffix for the new map's name.
    pub fn label(&self) -> String {
        match self {
            Self::ZScore => "z-score".into(),
            Self::LowPass { resolution_angstrom } => format!("low-pass {resolution_angstrom} Å"),
            Self::FlipHand => "flipped".into(),
            Self::Threshold { level } => format!("threshold {level:.3}"),
            Self::Dust { .. } => "dust removed".into(),
            Self::Crop { .. } => "cropped".into(),
            Self::Resample { voxel_size_angstrom } => format!("{voxel_size_angstrom} Å/voxel"),
        }
    }

    pub fn apply(&self, map: &DensityMap) -> Result<DensityMap, String> {
        use crate::maptools as t;
        let positive = |v: f32, what: &str| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(format!("{what} must be positive"))
            }
        };
        Ok(match *self {
            Self::ZScore => t::z_score(map),
            Self::LowPass { resolution_angstrom } => t::low_pass(map, positive(resolution_angstrom, "resolution")?),
            Self::FlipHand => t::flip_hand(map),
            Self::Threshold { level } => t::threshold(map, level),
            Self::Dust {
                level,
                min_volume_angstrom3,
            } => t::remove_dust(map, level, min_volume_angstrom3).0,
            Self::Crop {
                level,
                padding_angstrom,
            } => t::crop_to_level(map, level, padding_angstrom).ok_or("no voxel reaches the level")?,
            Self::Resample { voxel_size_angstrom } => {
                t::resample(map, positive(voxel_size_angstrom, "voxel size")?, None)
            }
        })
    }
}

impl JobSpec {
    pub fn title(&self) -> String {
        match self {
            Self::MapTool { tool, .. } => format!("Map: {}", tool.label()),
            Self::RigidFit { search_starts: 0, .. } => "Fit in map (local)".to_owned(),
            Self::RigidFit { search_starts, .. } => format!("Fit in map (global, {search_starts} starts)"),
            Self::GuidedFit { options, .. } if !options.guidance_enabled => {
                "Guided fit (control: no guidance)".to_owned()
            }
            Self::HeteroTrain { options, .. } => format!(
                "Heterogeneity training (zdim {}, {} epochs)",
                options.zdim, options.epochs
            ),
            Self::HeteroAnalyze { analyze, .. } => format!("Heterogeneity analysis ({} clusters)", analyze.clusters),
            Self::HeteroVolume { .. } => "Latent volume".to_owned(),
            Self::ParticleFit { options, .. } if options.epochs == 0 => {
                format!("Particle refinement (auto epochs, batch {})", options.batch)
            }
            Self::ParticleFit { options, .. } => format!(
                "Particle refinement ({} epochs, batch {})",
                options.epochs, options.batch
            ),
            Self::GuidedFit { options, .. } => format!(
                "Guided fit ({} sample(s), {} steps)",
                options.samples,
                options.schedule.total_steps()
            ),
            #[cfg(test)]
            Self::Crash => "crash".to_owned(),
        }
    }
}

/// Commands to the compute thread.
pub enum Command {
    /// Run a job (queued behind the current one).
    Start(JobId, JobSpec),
    /// Stop a job at its next step, keeping what it has.
    Cancel(JobId),
    /// Hold the running job between steps.
    Pause,
    /// Continue a paused job.
    Resume,
    /// End the thread.
    Shutdown,
}

/// Events from the compute thread, in order.
#[derive(Clone, Debug)]
pub enum Event {
    /// A job began.
    Started { job: JobId, title: String },
    /// A step finished; `losses` are named values to plot.
    Progress {
        job: JobId,
        step: usize,
        total: Option<usize>,
        message: String,
        losses: Vec<(String, f64)>,
    },
    /// A job finished (also after cancel, with what it had).
    Finished {
        job: JobId,
        result: JobResult,
        cancelled: bool,
    },
    /// A job failed or panicked; the thread goes on.
    Failed { job: JobId, message: String },
}

/// What a finished job hands back.
#[derive(Clone, Debug)]
pub enum JobResult {
    /// Placements best first, with the model as placed by the best.
    Placements {
        placements: Vec<Placement>,
        best_model: Arc<Structure>,
    },
    /// A new map and what made it.
    Map { map: Arc<DensityMap>, label: String },
    /// Ranked samples with their trajectories.
    GuidedFit(Arc<GuidedFit>),
    /// A refined model (the model so far when cancelled).
    ParticleFit(Arc<Refinement>),
    /// A trained and analysed heterogeneity run.
    Hetero(Arc<Exploration>),
}

/// Heavy state of the running job, replaced at every publish; the UI takes the latest.
#[derive(Clone, Debug)]
pub enum Snapshot {
    /// Current coordinates of a model being moved.
    Coordinates { job: JobId, frame: Vec<[f32; 3]> },
    /// Coordinates of a model refined against particles, with the latest gallery.
    Particles {
        job: JobId,
        frame: Vec<[f32; 3]>,
        gallery: Option<Arc<Gallery>>,
    },
}

/// The latest-value slot.
#[derive(Clone, Default)]
pub struct SnapshotSlot(Arc<Mutex<Option<Snapshot>>>);

impl SnapshotSlot {
    pub fn publish(&self, snapshot: Snapshot) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(snapshot);
        }
    }

    pub fn take(&self) -> Option<Snapshot> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// What a running job sees: progress out, cancel and pause in.
pub struct JobContext<'a> {
    job: JobId,
    events: &'a Sender<Event>,
    slot: &'a SnapshotSlot,
    commands: &'a Receiver<Command>,
    pending: &'a mut Vec<Command>,
    wake: &'a (dyn Fn() + Send + Sync),
    cancelled: bool,
    paused: bool,
}

impl JobContext<'_> {
    /// Reports a step; returns false when the job should stop (cancelled or shutting down).
    pub fn step(&mut self, step: usize, total: Option<usize>, message: String, losses: Vec<(String, f64)>) -> bool {
        let _ = self.events.try_send(Event::Progress {
            job: self.job,
            step,
            total,
            message,
            losses,
        });
        (self.wake)();
        self.poll_commands();
        while self.paused && !self.cancelled {
            std::thread::sleep(Duration::from_millis(20));
            self.poll_commands();
        }
        !self.cancelled
    }

    pub fn publish(&self, snapshot: Snapshot) {
        self.slot.publish(snapshot);
        (self.wake)();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    fn poll_commands(&mut self) {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Cancel(id)) if id == self.job => self.cancelled = true,
                Ok(Command::Pause) => self.paused = true,
                Ok(Command::Resume) => self.paused = false,
                Ok(Command::Shutdown) => {
                    self.cancelled = true;
                    self.pending.push(Command::Shutdown);
                }
                // Jobs to start later, or cancels of queued jobs, wait their turn.
                Ok(other) => self.pending.push(other),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }
}

/// The UI's handle on the compute thread.
pub struct ComputeThread {
    pub commands: Sender<Command>,
    pub events: Receiver<Event>,
    pub snapshots: SnapshotSlot,
    handle: Option<JoinHandle<()>>,
    next_job: JobId,
}

impl ComputeThread {
    /// Starts the thread; `wake` is called after every event and snapshot (the app passes
    /// `request_repaint`).
    pub fn spawn(wake: Arc<dyn Fn() + Send + Sync>) -> std::io::Result<Self> {
        let (command_tx, command_rx) = bounded::<Command>(64);
        let (event_tx, event_rx) = bounded::<Event>(1024);
        let snapshots = SnapshotSlot::default();
        let slot = snapshots.clone();
        let handle = std::thread::Builder::new()
            .name("cryoforge-compute".into())
            .spawn(move || worker(command_rx, event_tx, slot, wake))?;
        Ok(Self {
            commands: command_tx,
            events: event_rx,
            snapshots,
            handle: Some(handle),
            next_job: 1,
        })
    }

    /// Queues a job and returns its id.
    pub fn start(&mut self, spec: JobSpec) -> JobId {
        let id = self.next_job;
        self.next_job += 1;
        let _ = self.commands.send(Command::Start(id, spec));
        id
    }

    pub fn cancel(&self, job: JobId) {
        let _ = self.commands.send(Command::Cancel(job));
    }

    pub fn set_paused(&self, paused: bool) {
        let _ = self
            .commands
            .send(if paused { Command::Pause } else { Command::Resume });
    }
}

impl Drop for ComputeThread {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn worker(commands: Receiver<Command>, events: Sender<Event>, slot: SnapshotSlot, wake: Arc<dyn Fn() + Send + Sync>) {
    let mut pending: Vec<Command> = Vec::new();
    let mut cancelled_before_start: Vec<JobId> = Vec::new();
    loop {
        let command = if pending.is_empty() {
            match commands.recv() {
                Ok(c) => c,
                Err(_) => return,
            }
        } else {
            pending.remove(0)
        };
        match command {
            Command::Shutdown => return,
            Command::Cancel(id) => cancelled_before_start.push(id),
            Command::Pause | Command::Resume => {}
            Command::Start(job, spec) => {
                if cancelled_before_start.contains(&job) {
                    let _ = events.send(Event::Failed {
                        job,
                        message: "cancelled before it started".into(),
                    });
                    wake();
                    continue;
                }
                let _ = events.send(Event::Started {
                    job,
                    title: spec.title(),
                });
                wake();
                let mut ctx = JobContext {
                    job,
                    events: &events,
                    slot: &slot,
                    commands: &commands,
                    pending: &mut pending,
                    wake: wake.as_ref(),
                    cancelled: false,
                    paused: false,
                };
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| run_job(&spec, &mut ctx)));
                let cancelled = ctx.is_cancelled();
                let event = match outcome {
                    Ok(Ok(result)) => Event::Finished { job, result, cancelled },
                    Ok(Err(message)) => Event::Failed { job, message },
                    Err(panic) => Event::Failed {
                        job,
                        message: format!("the job crashed: {}", crate::error::panic_message(panic.as_ref())),
                    },
                };
                let _ = events.send(event);
                wake();
            }
        }
    }
}

fn run_job(spec: &JobSpec, ctx: &mut JobContext<'_>) -> Result<JobResult, String> {
    match spec {
        JobSpec::RigidFit {
            map,
            model,
            resolution_angstrom,
            search_starts,
        } => rigid_fit_job(map, model, *resolution_angstrom, *search_starts, ctx),
        JobSpec::GuidedFit { map, model, options } => guided_fit_job(map, model, options, ctx),
        JobSpec::ParticleFit {
            particles,
            model,
            centre,
            options,
        } => particle_fit_job(particles, model, *centre, options, ctx),
        JobSpec::HeteroTrain {
            particles,
            run,
            options,
            analyze,
        } => hetero_train_job(particles, run, options, analyze, ctx),
        JobSpec::HeteroAnalyze { run, analyze } => hetero_analyze_job(run, analyze, ctx),
        JobSpec::HeteroVolume { run, z, label } => {
            ctx.step(0, Some(1), format!("decoding {label}"), Vec::new());
            let trained = Trained::load(run)?;
            Ok(JobResult::Map {
                map: Arc::new(trained.volume(z)),
                label: label.clone(),
            })
        }
        JobSpec::MapTool { map, tool } => {
            ctx.step(0, Some(1), tool.label(), Vec::new());
            Ok(JobResult::Map {
                map: Arc::new(tool.apply(map)?),
                label: tool.label(),
            })
        }
        #[cfg(test)]
        JobSpec::Crash => panic!("deliberate crash"),
    }
}

fn hetero_train_job(
    particles: &std::path::Path,
    run: &std::path::Path,
    options: &HeteroOptions,
    analyze: &AnalyzeOptions,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, String> {
    let mut on_step = |p: &HeteroProgress| {
        if p.loss.is_nan() {
            return ctx.step(
                p.step,
                Some(p.steps_per_epoch),
                format!("reading particles {}/{}", p.step, p.steps_per_epoch),
                Vec::new(),
            );
        }
        let total = p.epochs * p.steps_per_epoch;
        let step = p.epoch * p.steps_per_epoch + p.step.min(p.steps_per_epoch);
        let message = match p.epoch_loss {
            Some(mean) => format!(
                "epoch {}/{} done, mean loss {mean:.4} (checkpoint saved)",
                p.epoch + 1,
                p.epochs
            ),
            None => format!("epoch {}/{}, loss {:.4}", p.epoch + 1, p.epochs, p.loss),
        };
        ctx.step(step, Some(total), message, vec![("loss".into(), p.loss)])
    };
    let outcome = train(particles, run, options, true, &mut on_step)?;
    if outcome.cancelled && outcome.state.epochs_done == 0 {
        return Err("cancelled before the first epoch finished: nothing to analyse".into());
    }
    hetero_analyze_job(run, analyze, ctx)
}

fn hetero_analyze_job(
    run: &std::path::Path,
    analyze: &AnalyzeOptions,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, String> {
    ctx.step(0, None, "analysing latents".into(), Vec::new());
    let events = std::cell::RefCell::new(ctx);
    crate::hetero::explore::analyze(run, analyze, &|what: &str| {
        events
            .borrow_mut()
            .step(0, None, format!("analysis: {what}"), Vec::new())
    })?;
    Ok(JobResult::Hetero(Arc::new(Exploration::load(run)?)))
}

fn transformed_frame(model: &Structure, t: &RigidTransform) -> Vec<[f32; 3]> {
    model.frames[0]
        .iter()
        .map(|p| t.apply(p.map(f64::from)).map(|v| v as f32))
        .collect()
}

fn rigid_fit_job(
    map: &DensityMap,
    model: &Structure,
    resolution: f32,
    starts: usize,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, String> {
    if !(resolution.is_finite() && resolution > 0.0) {
        return Err(format!("resolution must be positive, got {resolution}"));
    }
    let (atoms, _) = GaussianAtoms::from_structure(model, 0, GaussianOptions::molmap(resolution));
    if atoms.is_empty() {
        return Err("the model has no heavy atoms".into());
    }
    let fitter = RigidFitter::new(map, &atoms);
    let mut placements = Vec::new();
    if starts == 0 {
        let job = ctx.job;
        let mut last_publish = std::time::Instant::now();
        let mut on_step = |n: usize, cc: f64, t: &RigidTransform| {
            if last_publish.elapsed() > Duration::from_millis(50) {
                ctx.publish(Snapshot::Coordinates {
                    job,
                    frame: transformed_frame(model, t),
                });
                last_publish = std::time::Instant::now();
            }
            ctx.step(
                n,
                None,
                format!("correlation {cc:.4}"),
                vec![("correlation".into(), cc)],
            )
        };
        placements.push(fitter.fit_local(RigidTransform::IDENTITY, RigidFitOptions::default(), &mut on_step));
    } else {
        // Run the starts one after another so each is a visible, cancellable step.
        let rotations = crate::fit::spread_rotations(starts, 1);
        let target = crate::fit::density_centre(map);
        let centre = model_centre(&atoms);
        let mut all = Vec::new();
        for (i, rotvec) in rotations.iter().enumerate() {
            let r = crate::geometry::matrix_from_rotvec(*rotvec);
            let rc = RigidTransform {
                rotation: r,
                translation: [0.0; 3],
            }
            .apply(centre);
            let start = RigidTransform {
                rotation: r,
                translation: [0, 1, 2].map(|k| target[k] - rc[k]),
            };
            let placement = fitter.fit_local(start, RigidFitOptions::default(), &mut |_, _, _| true);
            ctx.publish(Snapshot::Coordinates {
                job: ctx.job,
                frame: transformed_frame(model, &placement.transform),
            });
            all.push(placement);
            let best = all.iter().map(|p| p.correlation).fold(f64::MIN, f64::max);
            if !ctx.step(
                i + 1,
                Some(starts),
                format!("start {} of {starts}: correlation {:.4}", i + 1, placement.correlation),
                vec![("correlation".into(), placement.correlation), ("best".into(), best)],
            ) {
                break;
            }
        }
        placements = crate::fit::cluster_placements(all, &fitter);
    }
    placements.sort_by(|a, b| b.correlation.total_cmp(&a.correlation));
    let best = placements.first().ok_or("no placement")?;
    let mut best_model = model.clone();
    best_model.frames = vec![transformed_frame(model, &best.transform)];
    Ok(JobResult::Placements {
        placements,
        best_model: Arc::new(best_model),
    })
}

fn guided_fit_job(
    map: &DensityMap,
    model: &Structure,
    options: &GuidedFitOptions,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, String> {
    let job = ctx.job;
    let mut last_publish: Option<std::time::Instant> = None;
    let total = options.schedule.total_steps() * options.samples.max(1);
    let mut on_step = |p: &StepProgress<'_>| {
        // The UI draws at most ~30 frames a second; publishing faster only costs copies.
        if last_publish.is_none_or(|t| t.elapsed() > Duration::from_millis(30)) {
            ctx.publish(Snapshot::Coordinates {
                job,
                frame: p.denoised.iter().map(|q| q.map(|v| v as f32)).collect(),
            });
            last_publish = Some(std::time::Instant::now());
        }
        let r = p.record;
        let mut losses = vec![("correlation".to_owned(), r.correlation)];
        losses.extend(r.sinkhorn.map(|v| ("sinkhorn".to_owned(), v)));
        losses.extend(r.density_l2.map(|v| ("density L2".to_owned(), v)));
        let message = format!(
            "sample {}/{}: step {} ({}), σ {:.2} Å, correlation {:.4}",
            p.sample + 1,
            p.samples,
            r.step + 1,
            r.phase.label(),
            r.sigma,
            r.correlation
        );
        ctx.step(p.sample * p.total_steps + r.step + 1, Some(total), message, losses)
    };
    let fit = guided_fit(model, map, options, &mut on_step)?;
    if let Some(best) = fit.samples.first() {
        ctx.publish(Snapshot::Coordinates {
            job,
            frame: best.positions.clone(),
        });
    }
    Ok(JobResult::GuidedFit(Arc::new(fit)))
}

/// Particles shown in the gallery: spread over the set.
const GALLERY_SIZE: usize = 4;

fn particle_fit_job(
    path: &std::path::Path,
    model: &Structure,
    centre: Option<[f64; 3]>,
    options: &RefineOptions,
    ctx: &mut JobContext<'_>,
) -> Result<JobResult, String> {
    let job = ctx.job;
    ctx.step(0, None, format!("reading {}", path.display()), Vec::new());
    let data = ParticleData::read(path)?;
    let mut options = options.clone();
    if options.epochs == 0 {
        options.epochs = RefineOptions::auto_epochs(data.len(), options.batch, options.validation_particles);
    }
    let options = &options;
    let centre = centre.or(data.centre).unwrap_or_else(|| crate::refine::centroid(model));
    let shown: Vec<usize> = (0..GALLERY_SIZE).map(|i| i * data.len() / GALLERY_SIZE).collect();
    let total = options.epochs * data.len().div_ceil(options.batch.max(1));
    let mut last_publish: Option<std::time::Instant> = None;
    let mut last_gallery: Option<std::time::Instant> = None;
    let mut gallery: Option<Arc<Gallery>> = None;
    let mut on_step = |p: &RefineProgress<'_>| {
        if last_gallery.is_none_or(|t| t.elapsed() > Duration::from_millis(700)) {
            gallery = Some(Arc::new(Gallery::of(
                &data,
                &shown,
                p.positions,
                p.amplitudes,
                p.widths,
                centre,
            )));
            last_gallery = Some(std::time::Instant::now());
        }
        if last_publish.is_none_or(|t| t.elapsed() > Duration::from_millis(30)) {
            ctx.publish(Snapshot::Particles {
                job,
                frame: p.positions.iter().map(|q| q.map(|v| v as f32)).collect(),
                gallery: gallery.clone(),
            });
            last_publish = Some(std::time::Instant::now());
        }
        let mut losses = vec![("FRC".to_owned(), p.frc)];
        losses.extend(p.validation_frc.map(|v| ("held-out FRC".to_owned(), v)));
        let message = match p.validation_frc {
            Some(v) => format!("epoch {}/{} done: held-out FRC {v:.4}", p.epoch + 1, p.epochs),
            None => format!(
                "epoch {}/{}: step {}/{}, limit {:.1} Å, FRC {:.4}",
                p.epoch + 1,
                p.epochs,
                p.step + 1,
                p.steps_per_epoch,
                p.resolution_angstrom,
                p.frc
            ),
        };
        ctx.step(
            (p.epoch * p.steps_per_epoch + p.step.min(p.steps_per_epoch.saturating_sub(1)) + 1).min(total),
            Some(total),
            message,
            losses,
        )
    };
    let device = crate::refine::training_device();
    let refinement = refine_particles(model, &data, centre, options, &device, &mut on_step)?;
    let frame = refinement.refined.frames[0].clone();
    let last: Vec<[f64; 3]> = frame.iter().map(|p| p.map(f64::from)).collect();
    let final_gallery = Gallery::of(&data, &shown, &last, &refinement.amplitudes, &refinement.widths, centre);
    ctx.publish(Snapshot::Particles {
        job,
        frame,
        gallery: Some(Arc::new(final_gallery)),
    });
    Ok(JobResult::ParticleFit(Arc::new(refinement)))
}

fn model_centre(atoms: &GaussianAtoms) -> [f64; 3] {
    let n = atoms.len().max(1) as f64;
    std::array::from_fn(|k| atoms.positions.iter().map(|p| f64::from(p[k])).sum::<f64>() / n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::density::{molmap_grid, simulate};
    use crate::formats::model::Atom;

    fn small_problem() -> (Arc<DensityMap>, Arc<Structure>) {
        let atoms: Vec<Atom> = (0..40)
            .map(|i| Atom {
                name: "CA".into(),
                alt_loc: String::new(),
                residue_name: "ALA".into(),
                chain_id: "A".into(),
                residue_number: i,
                insertion_code: String::new(),
                element: "C".into(),
                formal_charge: 0,
                occupancy: 1.0,
                b_factor: 0.0,
                hetero: false,
            })
            .collect();
        let frame: Vec<[f32; 3]> = (0..40)
            .map(|i| {
                let t = i as f32 * 0.6;
                [6.0 * t.cos(), 6.0 * t.sin(), 1.2 * i as f32]
            })
            .collect();
        let model = Structure {
            name: "helix".into(),
            atoms,
            frames: vec![frame],
        };
        let (g, _) = GaussianAtoms::from_structure(&model, 0, GaussianOptions::molmap(5.0));
        let grid = molmap_grid(&g.positions, 5.0);
        let mut shifted = model.clone();
        for p in &mut shifted.frames[0] {
            p[0] += 2.0;
        }
        (
            Arc::new(DensityMap {
                values: simulate(&grid, &g),
                grid,
                meta: Default::default(),
            }),
            Arc::new(shifted),
        )
    }

    fn wait_for_end(thread: &ComputeThread) -> Vec<Event> {
        let mut seen = Vec::new();
        loop {
            let event = thread
                .events
                .recv_timeout(Duration::from_secs(60))
                .expect("an event within a minute");
            let done = matches!(event, Event::Finished { .. } | Event::Failed { .. });
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    #[test]
    fn a_fit_job_streams_progress_and_finishes_with_placements() {
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = woken.clone();
        let mut thread = ComputeThread::spawn(Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }))
        .expect("spawn");
        let (map, model) = small_problem();
        let job = thread.start(JobSpec::RigidFit {
            map,
            model,
            resolution_angstrom: 5.0,
            search_starts: 0,
        });
        let events = wait_for_end(&thread);
        assert!(matches!(events.first(), Some(Event::Started { job: j, .. }) if *j == job));
        assert!(events.iter().any(|e| matches!(e, Event::Progress { .. })));
        match events.last() {
            Some(Event::Finished {
                result: JobResult::Placements { placements, .. },
                cancelled: false,
                ..
            }) => {
                assert!(placements[0].correlation > 0.99, "{:?}", placements[0]);
                assert!((placements[0].shift_angstrom - 2.0).abs() < 0.2);
            }
            other => panic!("unexpected end: {other:?}"),
        }
        assert!(woken.load(Ordering::Relaxed) > 2, "the UI is woken");
    }

    #[test]
    fn cancel_stops_a_global_search_within_a_step_and_keeps_results() {
        let mut thread = ComputeThread::spawn(Arc::new(|| {})).expect("spawn");
        let (map, model) = small_problem();
        let job = thread.start(JobSpec::RigidFit {
            map,
            model,
            resolution_angstrom: 5.0,
            search_starts: 500,
        });
        // Wait for the first step, then cancel.
        loop {
            if let Event::Progress { .. } = thread.events.recv_timeout(Duration::from_secs(60)).expect("progress") {
                break;
            }
        }
        thread.cancel(job);
        let events = wait_for_end(&thread);
        let steps = events.iter().filter(|e| matches!(e, Event::Progress { .. })).count();
        assert!(
            steps <= 3,
            "stopped within a step or two of the cancel, saw {steps} more"
        );
        match events.last() {
            Some(Event::Finished {
                cancelled: true,
                result: JobResult::Placements { placements, .. },
                ..
            }) => assert!(!placements.is_empty()),
            other => panic!("unexpected end: {other:?}"),
        }
    }

    #[test]
    fn a_failing_job_reports_and_the_thread_lives_on() {
        let mut thread = ComputeThread::spawn(Arc::new(|| {})).expect("spawn");
        let (map, model) = small_problem();
        thread.start(JobSpec::RigidFit {
            map: map.clone(),
            model: model.clone(),
            resolution_angstrom: -1.0,
            search_starts: 0,
        });
        assert!(matches!(wait_for_end(&thread).last(), Some(Event::Failed { .. })));
        thread.start(JobSpec::Crash);
        match wait_for_end(&thread).last() {
            Some(Event::Failed { message, .. }) => assert!(message.contains("deliberate crash"), "{message}"),
            other => panic!("unexpected end: {other:?}"),
        }
        thread.start(JobSpec::RigidFit {
            map,
            model,
            resolution_angstrom: 5.0,
            search_starts: 0,
        });
        assert!(matches!(wait_for_end(&thread).last(), Some(Event::Finished { .. })));
    }
}
