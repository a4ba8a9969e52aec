//! The worker loop of the compute thread and the context a running job sees: it drains
//! commands between a job's steps (cancel, pause, shutdown), blocks on the channel while
//! paused, and turns a job's error or panic into [`Event::Failed`].

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::{Command, Event, JobError, JobId, JobResult, JobSpec, Series, Snapshot, SnapshotSlot};
use super::{build, fit, flex, hetero, particles};
use crate::panic::catch_quietly;

/// What a running job sees: progress out, cancel and pause in.
pub struct JobContext<'a> {
    pub(super) job: JobId,
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
    pub fn step(&mut self, step: usize, total: Option<usize>, message: String, values: Vec<(Series, f64)>) -> bool {
        let _ = self.events.try_send(Event::Progress {
            job: self.job,
            step,
            total,
            message,
            values,
        });
        (self.wake)();
        self.poll_commands();
        // Paused: sleep on the channel until a command comes (resume, cancel, shutdown).
        while self.paused && !self.cancelled {
            match self.commands.recv() {
                Ok(command) => self.handle(command),
                Err(_) => self.cancelled = true,
            }
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
        while let Ok(command) = self.commands.try_recv() {
            self.handle(command);
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Cancel(id) if id == self.job => self.cancelled = true,
            Command::Pause => self.paused = true,
            Command::Resume => self.paused = false,
            Command::Shutdown => {
                self.cancelled = true;
                self.pending.push(Command::Shutdown);
            }
            // Jobs to start later, or cancels of queued jobs, wait their turn.
            other => self.pending.push(other),
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
                        error: Arc::new(JobError::CancelledBeforeStart),
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
                let outcome = catch_quietly(|| run_job(&spec, &mut ctx));
                let cancelled = ctx.is_cancelled();
                let event = match outcome {
                    Ok(Ok(result)) => Event::Finished { job, result, cancelled },
                    Ok(Err(error)) => Event::Failed {
                        job,
                        error: Arc::new(error),
                    },
                    Err(panic) => Event::Failed {
                        job,
                        error: Arc::new(JobError::Panic(panic)),
                    },
                };
                let _ = events.send(event);
                wake();
            }
        }
    }
}

fn run_job(spec: &JobSpec, ctx: &mut JobContext<'_>) -> Result<JobResult, JobError> {
    match spec {
        JobSpec::RigidFit {
            map,
            model,
            resolution_angstrom,
            search_starts,
        } => fit::rigid_fit_job(map, model, *resolution_angstrom, *search_starts, ctx),
        JobSpec::GuidedFit { map, model, options } => fit::guided_fit_job(map, model, options, ctx),
        JobSpec::GuidedStates {
            run,
            source,
            model,
            options,
            chained,
        } => fit::guided_states_job(run, *source, model, options, *chained, ctx),
        JobSpec::ParticleFit {
            particles,
            pixel_size_angstrom,
            model,
            centre,
            options,
        } => particles::particle_fit_job(particles, *pixel_size_angstrom, model, *centre, options, ctx),
        JobSpec::HeteroTrain {
            particles,
            run,
            options,
            analyze,
        } => hetero::train_job(particles, run, options, analyze, ctx),
        JobSpec::HeteroAnalyze { run, analyze } => hetero::analyze_job(run, analyze, ctx),
        JobSpec::HeteroVolume { run, z, label } => hetero::volume_job(run, z, label, ctx),
        JobSpec::Flex {
            map,
            half_maps,
            model,
            options,
        } => flex::flex_job(map, half_maps.as_ref(), model, options, ctx),
        JobSpec::Build {
            map,
            sequences,
            mask,
            options,
            weights,
        } => build::build_job(map, sequences, mask.as_deref(), options, weights.as_deref(), ctx),
        JobSpec::MapTool { map, source, tool } => {
            let label = tool.label();
            ctx.step(0, Some(100), label.clone(), Vec::new());
            let mut progress = |f: f32| ctx.step((f * 100.0).round() as usize, Some(100), label.clone(), Vec::new());
            Ok(JobResult::Map {
                map: Arc::new(tool.apply_with_progress(map, &mut progress)?),
                name: format!("{source} ({})", tool.label()),
            })
        }
        #[cfg(test)]
        JobSpec::Crash => panic!("deliberate crash"),
    }
}
