//! The heterogeneity explorer in the app: a section in a particle file's inspector trains the
//! latent model (or loads a finished run), and a "Latent space" panel docked beside the viewport
//! shows every particle as a point of the UMAP (or PCA) of its latent (GPU point splats through
//! wgpu; a CPU-rasterised image where there is no wgpu renderer), coloured by cluster, by local
//! density or by a numeric particle column. Clicking a point decodes its volume into the
//! viewport; lasso or rectangle select points; clusters are listed with their sizes and volumes;
//! the selection exports as STAR/.cs that keep every original column.

mod latent;
mod latent_panel;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cryoforge_compute::hetero::explore::{ANALYSIS_DIR, AnalyzeOptions, Exploration, SUMMARY_FILE};
use cryoforge_compute::hetero::prior::PriorSource;
use cryoforge_compute::hetero::{EncoderStart, HeteroOptions, RunConfig, STATE_FILE};
use cryoforge_compute::jobs::JobSpec;

pub use self::latent::{Colouring, LatentView, Layout, ScatterDevice, Tool};
pub use self::latent_panel::latent_panel;
use super::CryoforgeApp;

/// What the next training run of a particle file uses.
#[derive(Clone, Debug)]
pub struct HeteroSettings {
    pub zdim: usize,
    pub epochs: usize,
    pub image_size: usize,
    pub clusters: usize,
    /// Pose-aware encoder templates (0: image only).
    pub templates: usize,
    /// The decoder's frequency limit, a fraction of the training size's Nyquist.
    pub decoder_frequency: f64,
    /// Rounds of 3D classification after clustering, seeded by the clusters.
    pub classify: usize,
    /// The encoder starts from the bundled pretrained prior (else random, as cryoDRGN).
    pub pretrained: bool,
    /// The run directory ("" = beside the particle file).
    pub run: String,
    /// The run folder whose saved options the fields were last filled from.
    pub loaded_from: Option<PathBuf>,
}

impl Default for HeteroSettings {
    fn default() -> Self {
        let o = HeteroOptions::default();
        Self {
            zdim: o.zdim,
            epochs: o.epochs,
            image_size: o.image_size,
            clusters: AnalyzeOptions::default().clusters,
            templates: o.templates,
            pretrained: matches!(o.encoder, EncoderStart::Pretrained(_)),
            decoder_frequency: o.decoder_frequency,
            classify: 0,
            run: String::new(),
            loaded_from: None,
        }
    }
}

/// The run directory a particle file trains into by default: `<stem>_hetero` beside it.
pub fn default_run_dir(particles: &Path) -> PathBuf {
    let stem = particles
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "particles".into());
    particles.with_file_name(format!("{stem}_hetero"))
}

/// The section of a STAR/.cs file's inspector.
pub fn particle_file_ui(app: &mut CryoforgeApp, ui: &mut egui::Ui, path: &Path) {
    ui.separator();
    ui.label("Heterogeneity (latent model of the particles' states)");
    let pixel_size_angstrom = super::particle_file::pixel_size_of(app, path);
    let settings = &mut app.hetero_settings;
    // A folder that already holds a run shows that run's options (resuming keeps them).
    let run = if settings.run.is_empty() {
        default_run_dir(path)
    } else {
        PathBuf::from(&settings.run)
    };
    if settings.loaded_from.as_ref() != Some(&run) {
        if let Ok(config) = RunConfig::read(&run) {
            let o = &config.options;
            (settings.zdim, settings.epochs, settings.image_size, settings.templates) =
                (o.zdim, o.epochs, o.image_size, o.templates);
            settings.decoder_frequency = o.decoder_frequency;
            settings.pretrained = matches!(o.encoder, EncoderStart::Pretrained(_));
        }
        settings.loaded_from = Some(run.clone());
    }
    settings_ui(settings, ui, &run);
    let analyze = AnalyzeOptions {
        clusters: settings.clusters.max(1),
        classify_rounds: settings.classify,
        ..AnalyzeOptions::default()
    };
    let options = HeteroOptions {
        zdim: settings.zdim,
        epochs: settings.epochs,
        image_size: settings.image_size,
        templates: settings.templates,
        decoder_frequency: settings.decoder_frequency,
        pixel_size_angstrom,
        encoder: if settings.pretrained {
            EncoderStart::Pretrained(PriorSource::Bundled)
        } else {
            EncoderStart::Random
        },
        ..HeteroOptions::default()
    };
    let has_checkpoint = run.join(STATE_FILE).exists();
    let has_analysis = run.join(ANALYSIS_DIR).join(SUMMARY_FILE).exists();
    let mut spec = None;
    ui.horizontal(|ui| {
        let label = if has_checkpoint { "Resume training" } else { "Train" };
        if ui
            .button(label)
            .on_hover_text(
                "Train the encoder and decoder (checkpoints every few epochs; resumes from the last), then analyse",
            )
            .clicked()
        {
            spec = Some(JobSpec::HeteroTrain {
                particles: path.to_owned(),
                run: run.clone(),
                options: Box::new(options),
                analyze: Box::new(analyze.clone()),
            });
        }
        if has_checkpoint
            && ui
                .button("Analyse")
                .on_hover_text("PCA, UMAP, clusters and their volumes")
                .clicked()
        {
            spec = Some(JobSpec::HeteroAnalyze {
                run: run.clone(),
                analyze: Box::new(analyze.clone()),
            });
        }
        if has_analysis && ui.button("Open latent space").clicked() {
            match Exploration::load(&run) {
                Ok(e) => app.latent = Some(LatentView::new(Arc::new(e))),
                Err(e) => app.message = Some(e.to_string()),
            }
        }
    });
    if let Some(spec) = spec {
        app.start_job(spec, None);
    }
}

/// The fields of the next run: network and training sizes, clusters, and the run folder
/// (`run`, shown until edited).
fn settings_ui(settings: &mut HeteroSettings, ui: &mut egui::Ui, run: &Path) {
    ui.horizontal(|ui| {
        ui.add(egui::DragValue::new(&mut settings.zdim).range(1..=256).prefix("zdim: "));
        ui.add(
            egui::DragValue::new(&mut settings.epochs)
                .range(1..=500)
                .prefix("epochs: "),
        );
        ui.add(
            egui::DragValue::new(&mut settings.image_size)
                .range(16..=256)
                .prefix("train at: ")
                .suffix(" px"),
        );
        ui.add(
            egui::DragValue::new(&mut settings.decoder_frequency)
                .range(0.1..=1.0)
                .speed(0.01)
                .prefix("decoder fits to: ")
                .suffix(" × Nyquist"),
        )
        .on_hover_text("The decoder fits the frequencies below this fraction of the training size's Nyquist: 1 fits all of them (as cryoDRGN), 0.5 trains about twice as fast with the same latent ordering on the AdK benchmark");
    });
    ui.horizontal(|ui| {
        ui.add(egui::DragValue::new(&mut settings.templates).range(0..=256).prefix("encoder templates: "))
            .on_hover_text("Pose-aware encoder: correlations of each particle's slice with learned 3D templates (0: image only)");
        ui.checkbox(&mut settings.pretrained, "pretrained encoder")
            .on_hover_text("Start the encoder from the prior cryoforge pretrained on simulated particles of hundreds of structures (fine-tuned with the rest); off: random weights on the image alone, as cryoDRGN");
        ui.add(egui::DragValue::new(&mut settings.clusters).range(1..=50).prefix("clusters: "));
        ui.add(egui::DragValue::new(&mut settings.classify).range(0..=50).prefix("3D classification rounds: "))
            .on_hover_text("After clustering: rounds of 3D classification with the known poses, seeded by the clusters (each cluster reconstructed from its particles at full size; each particle moved to the reconstruction that explains its image best). 0: keep the fitted clusters");
    });
    ui.horizontal(|ui| {
        ui.label("Run folder");
        let mut text = run.display().to_string();
        if ui.text_edit_singleline(&mut text).changed() {
            settings.run = text;
        }
    });
}
