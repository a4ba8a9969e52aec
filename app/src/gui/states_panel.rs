//! One model per state of a heterogeneity run: the latent-space panel's "Fit a model into the
//! states" section starts guided fits of an open model into every cluster volume (or the volumes
//! along PC1/PC2); a new object shows the state being fitted live, then holds one frame per state
//! (the frame slider walks across the states), and its inspector lists the states with their
//! scores, each one shown or exported on its own.

use std::path::PathBuf;
use std::sync::Arc;

use cryoforge_compute::guided::states::StatesFit;
use cryoforge_compute::hetero::explore::StateSource;
use cryoforge_compute::jobs::JobSpec;

use super::{CryoforgeApp, Object, ObjectId, ObjectKind};

/// What the latent-space panel asks for.
#[derive(Clone, Debug)]
pub struct StatesRequest {
    pub model: ObjectId,
    pub run: PathBuf,
    pub source: StateSource,
    pub chained: bool,
    pub resolution: f32,
}

/// Starts the fits; the states stream into a new object named after the model.
pub fn start_states_fit(app: &mut CryoforgeApp, request: StatesRequest) {
    let Some(Object {
        kind: ObjectKind::Model(m),
        name,
        ..
    }) = app.object(request.model)
    else {
        app.message = Some("the model to fit is no longer open".into());
        return;
    };
    let options = super::guided_panel::guided_options(&m.guided_settings, request.resolution);
    let start = m.model.single_frame(m.frame).unwrap_or_else(|| (*m.model).clone());
    let title = format!("{name} (states)");
    let resolution = request.resolution;
    super::guided_panel::start_fit_object(app, title, &start, resolution, [0.3, 0.6, 0.95], |model| {
        JobSpec::GuidedStates {
            run: request.run,
            source: request.source,
            model,
            options: Box::new(options),
            chained: request.chained,
        }
    });
}

/// A finished fit: the object becomes the trajectory across the states.
pub fn adopt_states_fit(app: &mut CryoforgeApp, id: Option<ObjectId>, fit: Arc<StatesFit>) {
    let Some(Object {
        kind: ObjectKind::Model(m),
        ..
    }) = id.and_then(|id| app.object_mut(id))
    else {
        return;
    };
    if let Some(trajectory) = fit.trajectory() {
        m.model = Arc::new(trajectory);
        m.frame = 0;
        m.live_coordinates = None;
        m.playing = false;
    }
    m.states = Some(fit);
    app.mark_scene_dirty();
}

/// The states of a finished fit in a model's inspector.
pub fn states_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui, id: ObjectId) {
    let Some(m) = app.model_mut(id) else {
        return;
    };
    let Some(fit) = m.states.clone() else {
        return;
    };
    ui.separator();
    ui.label(format!(
        "States: {} fitted{}{}",
        fit.states.len(),
        if fit.chained {
            ", each from the previous state"
        } else {
            ", each from the start"
        },
        if fit.cancelled { " (cancelled)" } else { "" }
    ));
    let mut export = None;
    let mut show = None;
    egui::Grid::new(("states", id)).striped(true).show(ui, |ui| {
        for (k, state) in fit.states.iter().enumerate() {
            let free = state.free_score().map_or(String::new(), |f| format!(", free {f:.3}"));
            let text = format!(
                "{}{}: cc {:.4} (start {:.4}){free}{}",
                state.label,
                state.particles.map_or(String::new(), |n| format!(" ({n} particles)")),
                state.correlation(),
                state.fit.start_correlation,
                if state.fit.start_is_best { ", start kept" } else { "" }
            );
            if ui.selectable_label(m.frame == k, text).clicked() {
                show = Some(k);
            }
            if ui.small_button("Export").clicked() {
                export = Some(state.model());
            }
            ui.end_row();
        }
    });
    if let Some(k) = show {
        m.frame = k;
        m.live_coordinates = None;
        app.mark_scene_dirty();
    }
    if let Some(model) = export {
        super::guided_panel::export_model(app, &model);
    }
}
