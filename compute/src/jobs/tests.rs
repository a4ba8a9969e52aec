//! The compute thread end to end: progress, cancel within a step, failures and panics that
//! leave the thread alive.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;
use crate::maps::density::{GaussianAtoms, GaussianOptions};
use crate::maps::density::{molmap_grid, simulate};
use crate::test_shapes::ca_chain;

fn small_problem() -> (Arc<DensityMap>, Arc<Structure>) {
    let frame: Vec<[f32; 3]> = (0..40)
        .map(|i| {
            let t = i as f32 * 0.6;
            [6.0 * t.cos(), 6.0 * t.sin(), 1.2 * i as f32]
        })
        .collect();
    let model = ca_chain("helix", frame, |_| "C");
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
        Some(Event::Failed { error, .. }) => assert!(error.to_string().contains("deliberate crash"), "{error}"),
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

#[test]
fn a_paused_job_sends_nothing_until_resumed() {
    let mut thread = ComputeThread::spawn(Arc::new(|| {})).expect("spawn");
    let (map, model) = small_problem();
    thread.start(JobSpec::RigidFit {
        map,
        model,
        resolution_angstrom: 5.0,
        search_starts: 6,
    });
    loop {
        if let Event::Progress { .. } = thread.events.recv_timeout(Duration::from_secs(60)).expect("progress") {
            break;
        }
    }
    thread.set_paused(true);
    // At most the step in flight when the pause arrived reports; then the worker sleeps.
    let mut before = 0;
    while thread.events.recv_timeout(Duration::from_millis(500)).is_ok() {
        before += 1;
        assert!(before < 3, "a paused job kept stepping");
    }
    thread.set_paused(false);
    match wait_for_end(&thread).last() {
        Some(Event::Finished { cancelled: false, .. }) => {}
        other => panic!("unexpected end: {other:?}"),
    }
}
