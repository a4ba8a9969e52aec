//! Mutation fuzzing of every reader. Real files (the EMDB maps and MRC fixtures, the particle
//! stack, STAR and `.cs` fixtures, PDB and mmCIF entries, and `.npy` arrays written here) are
//! damaged thousands of times from a fixed seed (mutations in `fuzz/mutate.rs`) and each mutant
//! goes through the public readers and what `cryoforge info` does with their result. A reader
//! must return a value or an error naming the file: never panic, never hang (10 s a mutant),
//! and never ask for one allocation larger than max(64 MiB, 16 × the file). Counts per reader are
//! printed (`--nocapture`); a failing mutant is saved in /tmp/fuzz-repro/ with its steps in the
//! message. `CRYOFORGE_FUZZ_SCALE` multiplies the number of mutants (default 1).

#[path = "fuzz/mutate.rs"]
mod mutate;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use cryoforge_compute::formats::cs::CsFile;
use cryoforge_compute::formats::mrc::read_header;
use cryoforge_compute::formats::npy::{read_f32_array, write_f32_array};
use cryoforge_compute::formats::stack::ParticleStack;
use cryoforge_compute::formats::summary::summarize;
use cryoforge_compute::numeric::rng::Rng;
use cryoforge_compute::panic::catch_quietly;
use cryoforge_compute::particles::data::ParticleData;
use cryoforge_tests::asset;
use mutate::{Shape, mutate};

thread_local! {
    /// The largest single allocation asked for on this thread since the last reset.
    static LARGEST_REQUEST_BYTES: Cell<usize> = const { Cell::new(0) };
}

fn note_request(bytes: usize) {
    // `try_with`: the allocator also runs while a thread's locals are being torn down.
    let _ = LARGEST_REQUEST_BYTES.try_with(|largest| largest.set(largest.get().max(bytes)));
}

/// The system allocator, noting the size of every request on the requesting thread.
struct RequestSizes;

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the trait's
// contract; noting a size touches only a const-initialised thread-local `Cell`, which neither
// allocates nor unwinds.
#[allow(unsafe_code)] // A global allocator is an `unsafe impl`; the test needs one to see sizes.
unsafe impl GlobalAlloc for RequestSizes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_request(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_request(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_request(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: RequestSizes = RequestSizes;

const MUTANT_TIME_LIMIT: Duration = Duration::from_secs(10);
const REPRO_DIR: &str = "/tmp/fuzz-repro";

/// A seed file: its name (for messages) and bytes.
struct Seed {
    name: String,
    bytes: Vec<u8>,
}

fn seed(name: &str, bytes: Vec<u8>) -> Seed {
    Seed {
        name: name.to_owned(),
        bytes,
    }
}

fn asset_seed(relative: &str) -> Seed {
    seed(relative, std::fs::read(asset(relative)).expect(relative))
}

/// Some lines of a text asset (`.gz` decompressed), as (first, end) line ranges: real records,
/// quicker to parse than the whole file.
fn text_seed(relative: &str, ranges: &[(usize, usize)]) -> Seed {
    let mut bytes = std::fs::read(asset(relative)).expect(relative);
    if relative.ends_with(".gz") {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes.as_slice()), &mut plain).expect("gunzip");
        bytes = plain;
    }
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    let kept = ranges
        .iter()
        .flat_map(|&(first, end)| lines[first..end].concat())
        .collect();
    seed(&format!("{relative} (lines {ranges:?})"), kept)
}

/// What is done to a mutant's bytes after mutation, before it is written.
#[derive(Clone, Copy)]
enum Packing {
    Plain,
    Gzip,
    Bzip2,
}

fn pack(packing: Packing, bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match packing {
        Packing::Plain => bytes.to_vec(),
        Packing::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(bytes).expect("gzip");
            gz.finish().expect("gzip")
        }
        Packing::Bzip2 => {
            let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            bz.write_all(bytes).expect("bzip2");
            bz.finish().expect("bzip2")
        }
    }
}

/// One reader under test.
struct Target {
    name: &'static str,
    /// The mutant's file name: the extension picks the reader.
    file_name: &'static str,
    shape: Shape,
    packing: Packing,
    mutants: usize,
    read: fn(&Path) -> Result<(), String>,
}

/// What the mutants of one target did.
#[derive(Default)]
struct Tally {
    mutants: usize,
    ok: usize,
    errors: usize,
    /// Errors reporting a parser panic the reader caught (clean, but worth knowing).
    caught_panics: usize,
    largest_request_bytes: usize,
    /// Panics, hangs, oversized allocations and errors that do not name the file.
    failures: Vec<String>,
}

impl Tally {
    fn line(&self, name: &str) -> String {
        format!(
            "fuzz {name:>8}: {:>5} mutants, {:>5} ok, {:>5} errors ({} caught parser panics), {} failures, \
             largest allocation {:.2} MiB",
            self.mutants,
            self.ok,
            self.errors,
            self.caught_panics,
            self.failures.len(),
            self.largest_request_bytes as f64 / (1 << 20) as f64
        )
    }
}

/// What one read of one mutant did: the reader's outcome (or its panic) and its largest request.
type Outcome = (Result<Result<(), String>, String>, usize);

fn scale() -> f64 {
    std::env::var("CRYOFORGE_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// Mutates `seeds` `target.mutants` times (seeded by the target's name) and reads each mutant on
/// a worker thread, which a hang leaves behind while the test fails.
fn fuzz(target: &Target, seeds: &[Seed], dir: &Path) -> Tally {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(cryoforge_compute::panic::install_hook);
    let path = dir.join(target.file_name);
    let (job_tx, job_rx) = mpsc::channel::<PathBuf>();
    let (outcome_tx, outcome_rx) = mpsc::channel::<Outcome>();
    let read = target.read;
    std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name))
        .spawn(move || {
            for path in job_rx {
                LARGEST_REQUEST_BYTES.with(|largest| largest.set(0));
                let outcome = catch_quietly(|| read(&path));
                let largest = LARGEST_REQUEST_BYTES.with(Cell::get);
                if outcome_tx.send((outcome, largest)).is_err() {
                    return;
                }
            }
        })
        .expect("spawn the reader thread");

    let mut rng = Rng::new(
        target
            .name
            .bytes()
            .fold(16u64, |h, b| h.wrapping_mul(31) ^ u64::from(b)),
    );
    let mut tally = Tally::default();
    let count = ((target.mutants as f64 * scale()).ceil() as usize).max(1);
    for index in 0..count {
        let seed = &seeds[index % seeds.len()];
        let mutant = mutate(&mut rng, &seed.bytes, target.shape);
        let bytes = pack(target.packing, &mutant.bytes);
        std::fs::write(&path, &bytes).expect("write mutant");
        let limit = (64 << 20).max(16 * bytes.len().max(seed.bytes.len()));
        let describe = || format!("{} #{index} of {}: {}", target.name, seed.name, mutant.steps.join("; "));
        job_tx.send(path.clone()).expect("reader thread alive");
        tally.mutants += 1;
        let Ok((outcome, largest)) = outcome_rx.recv_timeout(MUTANT_TIME_LIMIT) else {
            let repro = save_repro(target, index, &bytes);
            tally
                .failures
                .push(format!("hang (> {MUTANT_TIME_LIMIT:?}) {} → {repro}", describe()));
            break;
        };
        tally.largest_request_bytes = tally.largest_request_bytes.max(largest);
        if largest > limit {
            let repro = save_repro(target, index, &bytes);
            tally.failures.push(format!(
                "allocation of {largest} bytes (limit {limit}) {} → {repro}",
                describe()
            ));
        }
        match outcome {
            Ok(Ok(())) => tally.ok += 1,
            Ok(Err(message)) => {
                tally.errors += 1;
                // A reader that catches a parser's panic says so, or (with `catch_quietly`) ends
                // the message with the panic's place in the source.
                tally.caught_panics += usize::from(message.contains("parser gave up") || message.contains(".rs:"));
                if !message.contains(&dir.display().to_string()) {
                    let repro = save_repro(target, index, &bytes);
                    tally
                        .failures
                        .push(format!("error names no file: {message:?} {} → {repro}", describe()));
                }
            }
            Err(panic) => {
                let repro = save_repro(target, index, &bytes);
                tally.failures.push(format!("panic {panic:?} {} → {repro}", describe()));
            }
        }
    }
    eprintln!("{}", tally.line(target.name));
    tally
}

fn save_repro(target: &Target, index: usize, bytes: &[u8]) -> String {
    let path = Path::new(REPRO_DIR).join(format!("{}-{index}-{}", target.name, target.file_name));
    let saved = std::fs::create_dir_all(REPRO_DIR).and_then(|()| std::fs::write(&path, bytes));
    match saved {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not saved: {e})"),
    }
}

fn assert_clean(tally: &Tally, name: &str) {
    assert!(
        tally.failures.is_empty(),
        "{}:\n{}",
        tally.line(name),
        tally.failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// What `cryoforge info` does with any file: summarise it, print it as text and as JSON.
fn info(path: &Path) -> Result<(), String> {
    let summary = summarize(path, None).map_err(|e| e.to_string())?;
    let text = format!("{summary}");
    let json = serde_json::to_string(&summary).map_err(|e| format!("{}: JSON: {e}", path.display()))?;
    assert!(!text.is_empty() && !json.is_empty());
    Ok(())
}

fn read_map(path: &Path) -> Result<(), String> {
    read_header(path).map_err(|e| e.to_string())?;
    info(path)
}

fn read_stack(path: &Path) -> Result<(), String> {
    info(path)?;
    let stack = ParticleStack::open(path).map_err(|e| e.to_string())?;
    for i in 0..stack.count().min(64) {
        let image = stack.image(i).map_err(|e| e.to_string())?;
        assert_eq!(image.len(), stack.box_size()[0] * stack.box_size()[1]);
    }
    assert!(
        stack.image(stack.count()).is_err(),
        "an image past the end must be an error"
    );
    Ok(())
}

/// A particle file: its summary, then its particles with every image they reference.
fn read_particles(path: &Path) -> Result<(), String> {
    info(path)?;
    ParticleData::read(path).map(|_| ()).map_err(|e| e.to_string())
}

fn read_cs(path: &Path) -> Result<(), String> {
    let cs = CsFile::read(path).map_err(|e| e.to_string())?;
    for field in &cs.fields {
        let _ = cs.column_f64(&field.name, 0);
        let _ = cs.column_u64(&field.name);
        let _ = cs.column_str(&field.name);
    }
    read_particles(path)
}

fn read_npy(path: &Path) -> Result<(), String> {
    let (values, rows, cols) = read_f32_array(path).map_err(|e| e.to_string())?;
    assert_eq!(values.len(), rows * cols);
    Ok(())
}

/// A working folder holding the particle stack, so particle files' references resolve.
fn particle_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(asset("fixtures/particles.mrcs"), dir.path().join("particles.mrcs")).expect("copy stack");
    dir
}

/// EMD-5170 (100³ voxels, 3.8 MB) cut to its first 3 sections, header adjusted: the real header
/// and data at a size that thousands of mutants can afford.
fn emd_5170_slab() -> Seed {
    let mut bytes = std::fs::read(asset("maps/emd_5170.map")).expect("EMD-5170");
    let sections = 3u32;
    bytes[8..12].copy_from_slice(&sections.to_le_bytes());
    bytes.truncate(1024 + 100 * 100 * sections as usize * 4);
    seed("maps/emd_5170.map (3 sections)", bytes)
}

fn map_seeds() -> Vec<Seed> {
    let mut seeds: Vec<Seed> = ["maps/EMD-3197.map", "maps/EMD-3001.map"]
        .iter()
        .chain(&[
            "fixtures/mode0.mrc",
            "fixtures/mode1.mrc",
            "fixtures/mode2.mrc",
            "fixtures/mode6.mrc",
            "fixtures/mode12.mrc",
            "fixtures/mode2_big_endian.mrc",
        ])
        .map(|name| asset_seed(name))
        .collect();
    seeds.push(emd_5170_slab());
    seeds
}

fn map_target(name: &'static str, file_name: &'static str, packing: Packing, mutants: usize) -> Target {
    Target {
        name,
        file_name,
        shape: Shape::Mrc,
        packing,
        mutants,
        read: read_map,
    }
}

#[test]
fn maps_survive_mutation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seeds = map_seeds();
    for target in [
        map_target("map", "mutant.map", Packing::Plain, 3000),
        map_target("map.gz", "mutant.map.gz", Packing::Gzip, 600),
        map_target("map.bz2", "mutant.map.bz2", Packing::Bzip2, 400),
    ] {
        assert_clean(&fuzz(&target, &seeds, dir.path()), target.name);
    }
}

#[test]
fn stacks_survive_mutation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seeds = [asset_seed("fixtures/particles.mrcs"), asset_seed("maps/EMD-3197.map")];
    let target = Target {
        name: "stack",
        file_name: "mutant.mrcs",
        shape: Shape::Mrc,
        packing: Packing::Plain,
        mutants: 2000,
        read: read_stack,
    };
    assert_clean(&fuzz(&target, &seeds, dir.path()), target.name);
}

#[test]
fn star_files_survive_mutation() {
    let dir = particle_dir();
    let seeds = [
        asset_seed("fixtures/particles_relion30.star"),
        asset_seed("fixtures/particles_relion31.star"),
    ];
    let target = Target {
        name: "star",
        file_name: "mutant.star",
        shape: Shape::Text,
        packing: Packing::Plain,
        mutants: 2000,
        read: read_particles,
    };
    assert_clean(&fuzz(&target, &seeds, dir.path()), target.name);
}

#[test]
fn cs_files_survive_mutation() {
    let dir = particle_dir();
    let seeds = [asset_seed("fixtures/particles.cs")];
    let target = Target {
        name: "cs",
        file_name: "mutant.cs",
        shape: Shape::Npy,
        packing: Packing::Plain,
        mutants: 2000,
        read: read_cs,
    };
    assert_clean(&fuzz(&target, &seeds, dir.path()), target.name);
}

#[test]
fn npy_arrays_survive_mutation() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Latents as cryoDRGN writes them (rows × dimensions) and a plain vector.
    let latents: Vec<f32> = (0..40 * 3).map(|i| (i as f32 * 0.37).sin()).collect();
    let seeds: Vec<Seed> = [(&latents[..], &[40, 3][..]), (&latents[..25], &[25][..])]
        .iter()
        .map(|&(values, shape)| {
            let path = dir.path().join("seed.npy");
            write_f32_array(&path, values, shape).expect("write seed");
            seed(&format!("float32 {shape:?}"), std::fs::read(&path).expect("read seed"))
        })
        .collect();
    let target = Target {
        name: "npy",
        file_name: "mutant.npy",
        shape: Shape::Npy,
        packing: Packing::Plain,
        mutants: 3000,
        read: read_npy,
    };
    assert_clean(&fuzz(&target, &seeds, dir.path()), target.name);
}

/// `Structure::read` turns a reader panic into an error ("the reader gave up"), which is right for
/// a user and hides the bug from a fuzzer: here such an error counts as the panic it was.
fn read_model(path: &Path) -> Result<(), String> {
    match info(path) {
        Err(e) if e.contains("the reader gave up") => panic!("{e}"),
        other => other,
    }
}

#[test]
fn models_survive_mutation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let targets = [
        (
            "pdb",
            "mutant.pdb",
            vec![
                text_seed("models/1ake.pdb", &[(0, 500)]),
                text_seed("models/gemmi_1orc.pdb", &[(0, 877)]),
                text_seed("models/adk_closed.pdb", &[(0, 400)]),
                text_seed("models/7pbl.pdb.gz", &[(0, 120), (870, 1300)]),
            ],
        ),
        (
            "mmcif",
            "mutant.cif",
            vec![
                text_seed("models/gemmi_5i55.cif", &[(0, 1747)]),
                text_seed("models/1ake_chimerax.cif", &[(0, 1300)]),
                text_seed("models/6zu5.cif.gz", &[(0, 150), (26780, 27400)]),
            ],
        ),
        ("bcif", "mutant.bcif", vec![asset_seed("models/1ake_chimerax.bcif")]),
    ];
    for (name, file_name, seeds) in targets {
        let target = Target {
            name,
            file_name,
            // BinaryCIF is MessagePack: bit flips and truncation, no lines to edit.
            shape: if name == "bcif" { Shape::Npy } else { Shape::Text },
            packing: Packing::Plain,
            mutants: 1500,
            read: read_model,
        };
        let tally = fuzz(&target, &seeds, dir.path());
        assert_clean(&tally, name);
    }
}

/// The limit above means something only if the allocator sees requests on the reader's thread.
#[test]
fn the_allocator_sees_one_large_request() {
    LARGEST_REQUEST_BYTES.with(|largest| largest.set(0));
    let block = vec![0u8; 96 << 20];
    assert!(LARGEST_REQUEST_BYTES.with(Cell::get) >= block.len());
}
