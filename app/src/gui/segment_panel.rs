//! The "segment" map tool in the inspector: a button that cuts the map into regions at the
//! current level (watershed, then Segger's scale-space grouping) and makes a label map, with the
//! number of grouping steps beside it. More steps merge more: 0 is the plain watershed.

use cryoforge_compute::jobs::MapTool;
use cryoforge_compute::maps::segment::DEFAULT_STEPS;

use super::widgets::count_ui;

/// The button and its steps; sets `tool` when clicked. The steps persist across frames and
/// sessions in egui's memory.
pub fn segment_tool_ui(ui: &mut egui::Ui, tool: &mut Option<MapTool>, level: f32) {
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
}
