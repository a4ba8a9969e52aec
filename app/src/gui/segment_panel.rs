//! The "segment" map tool in the inspector: a button that cuts the map into regions at the
//! current level (watershed, then Segger's scale-space grouping) and makes a label map, with the
//! number of grouping steps beside it. More steps merge more: 0 is the plain watershed. Beside
//! it, "mask for MODEL" makes the mask of the segments that hold an open model: the zone to give
//! a guided fit (Guided fit > what guidance sees > that mask) when the map holds more than the
//! model.

use std::sync::Arc;

use cryoforge_compute::formats::model::Structure;
use cryoforge_compute::jobs::MapTool;
use cryoforge_compute::maps::segment::DEFAULT_STEPS;

use super::widgets::count_ui;
use super::{CryoforgeApp, ObjectKind};

/// The open models a segment mask can be made for (name, model, shown frame), and the
/// resolution the first of them is fitted at.
pub fn open_models(app: &CryoforgeApp) -> (Vec<(String, Arc<Structure>, usize)>, f32) {
    let models = app
        .objects
        .iter()
        .filter_map(|o| match &o.kind {
            ObjectKind::Model(m) => Some((o.name.clone(), m.model.clone(), m.frame)),
            _ => None,
        })
        .collect();
    let resolution = app
        .objects
        .iter()
        .find_map(|o| match &o.kind {
            ObjectKind::Model(m) => Some(m.fit_resolution),
            _ => None,
        })
        .unwrap_or(5.0);
    (models, resolution)
}

/// The button and its steps; sets `tool` when clicked. The steps persist across frames and
/// sessions in egui's memory. `models` are the open models (name, model, shown frame) a mask can be made for;
/// `resolution_angstrom` widens the mask.
pub fn segment_tool_ui(
    ui: &mut egui::Ui,
    tool: &mut Option<MapTool>,
    level: f32,
    models: &[(String, Arc<Structure>, usize)],
    resolution_angstrom: f32,
) {
    let id = egui::Id::unique("segment_steps");
    let mut steps = ui.data_mut(|d| *d.get_persisted_mut_or(id, DEFAULT_STEPS));
    if ui
        .button("segment")
        .on_hover_text("Cut the map into regions at this level; the new map holds each voxel's region label")
        .clicked()
    {
        *tool = Some(MapTool::Segment { level, steps });
    }
    if count_ui(ui, &mut steps, 0..=64, "steps ").changed() {
        ui.data_mut(|d| d.insert_persisted(id, steps));
    }
    for (name, model, frame) in models {
        if ui
            .button(format!("mask for {name}"))
            .on_hover_text(
                "The segments at this level that hold the model, widened by the resolution: pick the new map \
                 as the guided fit's zone so guidance sees the model's own density",
            )
            .clicked()
        {
            let positions = model
                .frames
                .get(*frame)
                .or(model.frames.first())
                .map(|f| f.iter().map(|p| p.map(f64::from)).collect())
                .unwrap_or_default();
            *tool = Some(MapTool::ModelMask {
                level,
                steps,
                resolution_angstrom,
                model: name.clone(),
                positions: Arc::new(positions),
            });
        }
    }
}
