//! The model inspector's "Flexibility" section: per-residue RMSF of a model from an open map
//! (and two half maps for local resolution) on the compute thread. The result colours the model
//! by flexibility with a legend in Å, draws it as a worm whose radius follows the RMSF, and plots
//! RMSF per residue: hovering a residue in the plot names it, a click selects it in the viewport.

use std::path::PathBuf;
use std::sync::Arc;

use cryoforge_compute::flex::{FlexOptions, Flexibility};
use cryoforge_compute::jobs::JobSpec;

use super::widgets::fixed_plot;
use super::{CryoforgeApp, Object, ObjectId, ObjectKind};
use crate::view::{AtomStyle, ColorBy};

/// The section's settings, per model.
#[derive(Clone, Debug)]
pub struct FlexSettings {
    pub resolution: f32,
    pub half_maps: [Option<ObjectId>; 2],
    /// The learned combiner's column as the combined value.
    pub combine_learned: bool,
}

impl Default for FlexSettings {
    fn default() -> Self {
        Self {
            resolution: 4.0,
            half_maps: [None, None],
            combine_learned: false,
        }
    }
}

/// A finished estimate on a model, and the residue selected from its plot.
#[derive(Clone, Debug)]
pub struct FlexView {
    pub flex: Arc<Flexibility>,
    pub selected: Option<usize>,
}

impl FlexView {
    /// The atoms of the selected residue (drawn highlighted).
    pub fn highlighted_atoms(&self) -> &[usize] {
        self.selected
            .and_then(|r| self.flex.residues.get(r))
            .map_or(&[], |r| r.atoms.as_slice())
    }
}

fn map_of(app: &CryoforgeApp, id: Option<ObjectId>) -> Option<Arc<cryoforge_compute::maps::DensityMap>> {
    match id.and_then(|id| app.object(id)) {
        Some(Object {
            kind: ObjectKind::Map(m),
            ..
        }) => Some(m.map.clone()),
        _ => None,
    }
}

/// The section in a model's inspector.
pub fn flex_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui, id: ObjectId, maps: &[(ObjectId, String)]) {
    let Some(m) = app.model_mut(id) else {
        return;
    };
    ui.separator();
    ui.label("Flexibility (per-residue RMSF from the map)");
    let mut start = None;
    if maps.is_empty() {
        ui.weak("Open a map to estimate flexibility from.");
    } else {
        ui.add(
            egui::DragValue::new(&mut m.flex_settings.resolution)
                .range(1.0..=30.0)
                .suffix(" Å resolution"),
        );
        for (k, which) in ["half map A", "half map B"].iter().enumerate() {
            let current = m.flex_settings.half_maps[k]
                .and_then(|h| maps.iter().find(|(i, _)| *i == h))
                .map_or("none".to_owned(), |(_, n)| n.clone());
            egui::ComboBox::from_id_salt(("flex half", id, k))
                .selected_text(format!("{which}: {current}"))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut m.flex_settings.half_maps[k], None, "none");
                    for (map_id, name) in maps {
                        ui.selectable_value(&mut m.flex_settings.half_maps[k], Some(*map_id), name);
                    }
                });
        }
        if cryoforge_compute::flex::combiner::bundled_available() {
            ui.checkbox(&mut m.flex_settings.combine_learned, "Learned combiner as the combined value")
                .on_hover_text("By default the combined value is the RMSF refined against the map; the learned combiner gains at 4 Å and loses at 3 Å on the test set");
        }
        for (map_id, map_name) in maps {
            if ui.button(format!("Estimate flexibility from {map_name}")).clicked() {
                start = Some(*map_id);
            }
        }
    }
    let mut export_csv = false;
    let mut export_model = false;
    let mut changed = false;
    if let Some(view) = &mut m.flex {
        let f = &view.flex;
        let mean = f.rmsf.iter().sum::<f64>() / f.rmsf.len().max(1) as f64;
        ui.label(format!(
            "{} residues: mean RMSF {:.2} Å, max {:.2} Å; map-model cc {:.3} to {:.3} ({:.1} s)",
            f.residues.len(),
            mean,
            f.rmsf.iter().copied().fold(0.0, f64::max),
            f.correlation_start,
            f.correlation,
            f.seconds
        ));
        changed |= rmsf_plot_ui(ui, id, view);
        match view
            .selected
            .and_then(|r| view.flex.residues.get(r).map(|res| (r, res)))
        {
            Some((r, res)) => {
                let columns: Vec<String> = view
                    .flex
                    .estimators
                    .iter()
                    .map(|e| format!("{} {:.2}", e.name, e.rmsf[r]))
                    .collect();
                ui.label(format!(
                    "selected {} {}{}{}: RMSF {:.2} Å ({})",
                    res.residue_name,
                    res.chain_id,
                    res.residue_number,
                    res.insertion_code,
                    view.flex.rmsf[r],
                    columns.join(", ")
                ));
            }
            None => {
                ui.weak("Click a residue in the plot to select it in the viewport.");
            }
        }
        ui.horizontal(|ui| {
            export_model = ui.button("Export model (RMSF as B)").clicked();
            export_csv = ui.button("Export CSV").clicked();
        });
    }
    let resolution = m.flex_settings.resolution;
    let halves = m.flex_settings.half_maps;
    let combine_learned = m.flex_settings.combine_learned;
    // The shown frame as its own model, made only when a button needs it (not every frame).
    let model = (start.is_some() || export_model).then(|| {
        m.model
            .single_frame(m.frame)
            .map(Arc::new)
            .unwrap_or_else(|| m.model.clone())
    });
    let flex = m.flex.as_ref().map(|v| v.flex.clone());
    if changed {
        app.mark_scene_dirty();
    }
    if export_model && let (Some(flex), Some(model)) = (&flex, &model) {
        let structure = flex.model(model);
        super::guided_panel::export_model(app, &structure);
    }
    if export_csv && let Some(flex) = &flex {
        export_table(app, flex);
    }
    if let Some(map_id) = start
        && let Some(map) = map_of(app, Some(map_id))
        && let Some(model) = model
    {
        let half_maps = match (map_of(app, halves[0]), map_of(app, halves[1])) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        };
        let spec = JobSpec::Flex {
            map,
            half_maps,
            model,
            options: FlexOptions {
                combine_learned,
                ..FlexOptions::new(resolution)
            },
        };
        app.start_job(spec, Some(id));
    }
}

/// RMSF per residue (combined, and each estimator faintly), the selected residue marked.
/// Returns whether the selection changed.
fn rmsf_plot_ui(ui: &mut egui::Ui, id: ObjectId, view: &mut FlexView) -> bool {
    use egui_plot::{Legend, Line, PlotPoints, VLine};
    let flex = view.flex.clone();
    let line = |values: &[f64]| -> Vec<[f64; 2]> { values.iter().enumerate().map(|(i, v)| [i as f64, *v]).collect() };
    let shown = fixed_plot(("flex rmsf", id))
        .height(140.0)
        .legend(Legend::default())
        .x_axis_label("residue (index)")
        .y_axis_label("RMSF (Å)")
        .show(ui, |plot| {
            for e in &flex.estimators {
                plot.line(Line::new(e.name.clone(), PlotPoints::from(line(&e.rmsf))).width(1.0));
            }
            plot.line(Line::new("combined", PlotPoints::from(line(&flex.rmsf))).width(2.5));
            if let Some(r) = view.selected {
                plot.vline(VLine::new("selected", r as f64));
            }
        });
    let response = &shown.response;
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "RMSF per residue"));
    let residue_at = |pos: egui::Pos2| {
        let r = shown.transform.value_from_position(pos).x.round();
        (r >= 0.0 && (r as usize) < flex.residues.len()).then_some(r as usize)
    };
    let hovered = response.hover_pos().and_then(residue_at);
    let clicked = if response.clicked() {
        response.interact_pointer_pos().and_then(residue_at)
    } else {
        None
    };
    // One line always, so the buttons below do not move as the pointer enters and leaves.
    match hovered {
        Some(r) => {
            let res = &flex.residues[r];
            ui.weak(format!(
                "{} {}{}{}: {:.2} Å",
                res.residue_name, res.chain_id, res.residue_number, res.insertion_code, flex.rmsf[r]
            ));
        }
        None => {
            ui.weak("Hover the plot to read a residue's RMSF.");
        }
    }
    match clicked {
        Some(r) => {
            view.selected = if view.selected == Some(r) { None } else { Some(r) };
            true
        }
        None => false,
    }
}

/// Writes the table beside the export path (`<export path stem>.csv`).
fn export_table(app: &mut CryoforgeApp, flex: &Flexibility) {
    if app.export_path.is_empty() {
        app.message = Some("type a path in 'Export to' below first (the CSV goes beside it)".into());
        return;
    }
    let path = PathBuf::from(&app.export_path).with_extension("csv");
    app.message = Some(match flex.write_csv(&path) {
        Ok(()) => format!("wrote {}", path.display()),
        Err(e) => e.to_string(),
    });
}

/// A finished estimate: the model takes the RMSF as its B-factors and is shown as a worm
/// coloured by flexibility.
pub fn adopt_flex(app: &mut CryoforgeApp, id: Option<ObjectId>, flex: Arc<Flexibility>) {
    let Some(m) = id.and_then(|id| app.model_mut(id)) else {
        return;
    };
    let model = flex.model(&m.model);
    m.model = Arc::new(model);
    m.color_by = ColorBy::BFactor;
    m.style = AtomStyle::Worm;
    m.flex = Some(Box::new(FlexView { flex, selected: None }));
    app.mark_scene_dirty();
}
