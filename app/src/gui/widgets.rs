//! Small widgets the inspector sections share.

use std::ops::RangeInclusive;

/// A whole-number setting as a drag value: `prefix` before it, clamped to `range`.
pub fn count_ui(ui: &mut egui::Ui, value: &mut usize, range: RangeInclusive<usize>, prefix: &str) -> egui::Response {
    ui.add(egui::DragValue::new(value).range(range).prefix(prefix))
}

/// A plot that shows data without being dragged, zoomed or scrolled (it lives in a scrolling
/// panel, where those gestures belong to the panel).
pub fn fixed_plot<'a>(id: impl egui::AsIdSalt) -> egui_plot::Plot<'a> {
    egui_plot::Plot::new(id)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
}
