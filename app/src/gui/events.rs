//! What the UI thread drains once per frame: loaded files, meshes, the compute thread's events
//! and its latest snapshot, each fanned out to the objects and panels it concerns.

use super::*;

impl CryoforgeApp {
    pub(super) fn receive(&mut self, ctx: &egui::Context) {
        while let Ok((id, result)) = self.loads_rx.try_recv() {
            let kind = match result {
                Ok(objects::Loaded::Map(m)) => {
                    self.mesher.request(id, m.map.clone(), m.level);
                    ObjectKind::Map(*m)
                }
                Ok(objects::Loaded::Model(model)) => ObjectKind::Model(ModelObject::new(model)),
                Ok(objects::Loaded::Info(summary)) => ObjectKind::Info(Box::new(summary)),
                Err(message) => ObjectKind::Failed(message),
            };
            self.set_kind(id, kind);
            self.viewport.camera_fitted = false;
        }
        while let Ok((id, level, mesh)) = self.mesher.results.try_recv() {
            if let Some(Object {
                kind: ObjectKind::Map(m),
                ..
            }) = self.objects.iter_mut().find(|o| o.id == id)
            {
                m.mesh = Some((level, Arc::new(mesh)));
                self.scene_dirty = true;
            }
        }
        while let Ok((id, key, mesh)) = self.mesher.cartoons.try_recv() {
            if let Some(Object {
                kind: ObjectKind::Model(m),
                ..
            }) = self.objects.iter_mut().find(|o| o.id == id)
                && m.cartoon.requested == Some(key)
            {
                m.cartoon.built = Some((key, mesh));
                self.scene_dirty = true;
            }
        }
        while let Ok(event) = self.compute.events.try_recv() {
            self.on_event(event);
        }
        if let Some(snapshot) = self.compute.snapshots.take() {
            let (job, frame, gallery) = match snapshot {
                Snapshot::Coordinates { job, frame } => (job, frame, None),
                Snapshot::Particles { job, frame, gallery } => (job, frame, gallery),
                Snapshot::Model { job, model } => {
                    let id = self.jobs.iter().find(|j| j.id == job).and_then(|j| j.model);
                    if let Some(Object {
                        kind: ObjectKind::Model(m),
                        ..
                    }) = id.and_then(|id| self.objects.iter_mut().find(|o| o.id == id))
                    {
                        build_panel::show_snapshot(m, model);
                        self.scene_dirty = true;
                    }
                    return;
                }
            };
            let model = self.jobs.iter().find(|j| j.id == job).and_then(|j| j.model);
            if let Some(Object {
                kind: ObjectKind::Model(m),
                ..
            }) = model.and_then(|id| self.objects.iter_mut().find(|o| o.id == id))
                && frame.len() == m.model.atoms.len()
            {
                m.live_coordinates = Some(frame);
                if let Some(gallery) = gallery {
                    particle_panel::receive_gallery(ctx, m, gallery);
                }
                self.scene_dirty = true;
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Started { job, .. } => self.update_job(job, |j| j.state = JobState::Running),
            Event::Progress {
                job,
                step,
                total,
                message,
                values,
            } => self.update_job(job, |j| {
                j.step = step;
                j.total = total;
                j.message = message;
                for (series, value) in values {
                    let point = [step as f64, value];
                    match j.history.iter_mut().find(|(s, _)| *s == series) {
                        Some((_, points)) => points.push(point),
                        None => j.history.push((series, vec![point])),
                    }
                }
            }),
            Event::Failed { job, error } => {
                self.update_job(job, |j| j.state = JobState::Failed(error.to_string()));
                self.clear_live(job);
            }
            Event::Finished { job, result, cancelled } => {
                self.update_job(job, |j| {
                    j.state = if cancelled {
                        JobState::Cancelled
                    } else {
                        JobState::Finished(j.started.elapsed().as_secs_f32())
                    }
                });
                let model_id = self.jobs.iter().find(|j| j.id == job).and_then(|j| j.model);
                match result {
                    JobResult::Placements { placements, .. } => {
                        if let Some(Object {
                            kind: ObjectKind::Model(m),
                            ..
                        }) = model_id.and_then(|id| self.objects.iter_mut().find(|o| o.id == id))
                        {
                            m.placements = placements;
                            m.previewed = Some(0);
                        }
                        self.preview_placement(model_id, 0);
                    }
                    JobResult::GuidedFit(fit) => guided_panel::adopt_guided_fit(self, model_id, fit),
                    JobResult::GuidedStates(fit) => states_panel::adopt_states_fit(self, model_id, fit),
                    JobResult::ParticleFit(refinement) => particle_panel::adopt_refinement(self, model_id, refinement),
                    JobResult::Hetero(exploration) => self.latent = Some(hetero_panel::LatentView::new(exploration)),
                    JobResult::Map { map, name } => self.adopt_map(name, map),
                    JobResult::Flex(flex) => flex_panel::adopt_flex(self, model_id, flex),
                    JobResult::Build(result) => build_panel::adopt_build(self, model_id, result),
                }
            }
        }
    }

    fn update_job(&mut self, job: JobId, f: impl FnOnce(&mut JobView)) {
        if let Some(j) = self.jobs.iter_mut().find(|j| j.id == job) {
            f(j);
        }
    }

    fn clear_live(&mut self, job: JobId) {
        let model = self.jobs.iter().find(|j| j.id == job).and_then(|j| j.model);
        if let Some(Object {
            kind: ObjectKind::Model(m),
            ..
        }) = model.and_then(|id| self.objects.iter_mut().find(|o| o.id == id))
        {
            m.live_coordinates = None;
        }
        self.scene_dirty = true;
    }
}
