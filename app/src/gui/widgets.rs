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

/// The B-factor ramp from `lo` to `hi` (Å²), with its ends also as RMSF (B = 8π²·RMSF²/3), the
/// unit flexibility is read in.
pub fn b_factor_legend_ui(ui: &mut egui::Ui, lo: f32, hi: f32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(200.0, 12.0), egui::Sense::hover());
    let steps = 32;
    for i in 0..steps {
        let t = i as f32 / (steps - 1) as f32;
        let [r, g, b, _] = crate::view::ramp(t);
        let x0 = rect.left() + rect.width() * i as f32 / steps as f32;
        let x1 = rect.left() + rect.width() * (i + 1) as f32 / steps as f32;
        let color = egui::Color32::from_rgb((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8);
        ui.painter().rect_filled(
            egui::Rect::from_min_max(egui::pos2(x0, rect.top()), egui::pos2(x1, rect.bottom())),
            0.0,
            color,
        );
    }
    ui.horizontal(|ui| {
        ui.label(format!("{lo:.1}"));
        ui.add_space(140.0);
        ui.label(format!("{hi:.1}"));
    });
    let rmsf = |b: f32| (3.0 * b.max(0.0) / (8.0 * std::f32::consts::PI.powi(2))).sqrt();
    ui.weak(format!(
        "B-factor {lo:.1} to {hi:.1} Å² (RMSF {:.2} to {:.2} Å)",
        rmsf(lo),
        rmsf(hi)
    ));
}
