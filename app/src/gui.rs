//! The desktop window: a data panel listing every opened file and an inspector showing the
//! selected file's summary. Files open from the command line or by drag and drop; each is read on
//! a background thread so the window never stalls on a large file.

use std::path::PathBuf;

use anyhow::Context as _;
use crossbeam_channel::{Receiver, Sender};
use cryoforge_compute::formats::FileKind;
use cryoforge_compute::summary::{FileSummary, summarize};

/// Opens the window with `files` loading; returns when the window closes.
pub fn run(files: Vec<PathBuf>) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("cryoforge")
            .with_inner_size([1200.0, 800.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "cryoforge",
        options,
        Box::new(move |cc| {
            let mut app = CryoforgeApp::new(cc.egui_ctx.clone());
            for file in files {
                app.open(file);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context(
        "could not open the cryoforge window (no display? run under xvfb-run, \
         or use `cryoforge info FILE` for a text summary)",
    )
}

/// A file the user opened, loaded or still loading.
pub struct LoadedFile {
    pub path: PathBuf,
    pub kind: Option<FileKind>,
    pub state: LoadState,
}

pub enum LoadState {
    Loading,
    Ready(Box<FileSummary>),
    Failed(String),
}

pub struct CryoforgeApp {
    ctx: egui::Context,
    pub files: Vec<LoadedFile>,
    pub selected: Option<usize>,
    results_tx: Sender<(usize, Result<FileSummary, String>)>,
    results_rx: Receiver<(usize, Result<FileSummary, String>)>,
}

impl CryoforgeApp {
    pub fn new(ctx: egui::Context) -> Self {
        let (results_tx, results_rx) = crossbeam_channel::unbounded();
        Self { ctx, files: Vec::new(), selected: None, results_tx, results_rx }
    }

    /// Starts loading `path` in the background.
    pub fn open(&mut self, path: PathBuf) {
        let index = self.files.len();
        self.files.push(LoadedFile {
            kind: FileKind::from_path(&path),
            path: path.clone(),
            state: LoadState::Loading,
        });
        self.selected.get_or_insert(index);
        let tx = self.results_tx.clone();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("cryoforge-loader".into())
            .spawn(move || {
                let result = summarize(&path, None).map_err(|e| e.to_string());
                // The window may have closed meanwhile; nothing to tell then.
                let _ = tx.send((index, result));
                ctx.request_repaint();
            });
        if let Err(err) = spawned {
            self.files[index].state = LoadState::Failed(format!("could not start a loader: {err}"));
        }
    }

    fn receive_results(&mut self) {
        while let Ok((index, result)) = self.results_rx.try_recv() {
            if let Some(file) = self.files.get_mut(index) {
                file.state = match result {
                    Ok(summary) => LoadState::Ready(Box::new(summary)),
                    Err(message) => LoadState::Failed(message),
                };
            }
        }
    }

    fn files_panel_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Data");
        ui.separator();
        if self.files.is_empty() {
            ui.weak("Drop maps, particle stacks, STAR/.cs files or models here.");
        }
        for (i, file) in self.files.iter().enumerate() {
            let name = file.path.file_name().map_or_else(|| file.path.display().to_string(), |n| n.to_string_lossy().into_owned());
            let kind = file.kind.map_or("unknown", FileKind::label);
            let status = match &file.state {
                LoadState::Loading => " (loading…)",
                LoadState::Ready(_) => "",
                LoadState::Failed(_) => " (failed)",
            };
            let response = ui.selectable_label(self.selected == Some(i), format!("{name}\n{kind}{status}"));
            if response.clicked() {
                self.selected = Some(i);
            }
        }
    }

    fn inspector_ui(&self, ui: &mut egui::Ui) {
        let Some(file) = self.selected.and_then(|i| self.files.get(i)) else {
            ui.centered_and_justified(|ui| {
                ui.label("Open files by passing them on the command line or dropping them on the window.");
            });
            return;
        };
        egui::ScrollArea::both().show(ui, |ui| match &file.state {
            LoadState::Loading => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("Reading {}…", file.path.display()));
                });
            }
            LoadState::Ready(summary) => {
                ui.monospace(summary.to_string());
            }
            LoadState::Failed(message) => {
                ui.colored_label(ui.visuals().error_fg_color, message);
            }
        });
    }

    fn status_bar_ui(&self, ui: &mut egui::Ui) {
        let loading = self.files.iter().filter(|f| matches!(f.state, LoadState::Loading)).count();
        let failed = self.files.iter().filter(|f| matches!(f.state, LoadState::Failed(_))).count();
        ui.horizontal(|ui| {
            ui.label(format!("{} file(s) open", self.files.len()));
            if loading > 0 {
                ui.spinner();
                ui.label(format!("{loading} loading"));
            }
            if failed > 0 {
                ui.colored_label(ui.visuals().error_fg_color, format!("{failed} failed"));
            }
        });
    }
}

impl eframe::App for CryoforgeApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.receive_results();
        let dropped: Vec<PathBuf> = ctx.input(|i| i.raw.dropped_files.iter().map(|f| f.path().to_owned()).filter(|p| !p.as_os_str().is_empty()).collect());
        for path in dropped {
            self.open(path);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar_ui(ui));
        egui::Panel::left("data").resizable(true).default_size(260.0).show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| self.files_panel_ui(ui));
        });
        egui::CentralPanel::default_margins().show(ui, |ui| self.inspector_ui(ui));
    }
}
