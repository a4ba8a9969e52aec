//! Particle stacks and metadata: RELION 3.0 and 3.1 STAR, cryoSPARC `.cs`, lazy stacks, subsets
//! that keep every column, STAR↔.cs conversion, tables without a pixel size (`--apix`), one
//! image file per particle, and bad inputs.

use cryoforge_compute::formats::cs::CsFile;
use cryoforge_compute::formats::particles::{ParticleOptions, ParticleSet, particle_block};
use cryoforge_compute::formats::stack::{ImageRef, ParticleStack, write_stack};
use cryoforge_compute::formats::star::{StarFile, StarTable};
use cryoforge_compute::geometry::relion_matrix;
use cryoforge_compute::particles::data::ParticleData;
use cryoforge_tests::{asset, expected};

fn particles_from_star(name: &str) -> ParticleSet {
    let path = asset(name);
    ParticleSet::from_star(&path, &StarFile::read(&path).expect("read star")).expect("particles")
}

fn particles_from_cs(name: &str) -> ParticleSet {
    let path = asset(name);
    ParticleSet::from_cs(&path, &CsFile::read(&path).expect("read cs")).expect("particles")
}

/// Same particles: same image, same rotation matrix, shifts, CTF and optics, within `tol`.
fn assert_same_particles(a: &ParticleSet, b: &ParticleSet, tol: f64, what: &str) {
    assert_eq!(a.particles.len(), b.particles.len(), "{what}");
    for (i, (p, q)) in a.particles.iter().zip(&b.particles).enumerate() {
        assert_eq!(
            (p.image_index_1based, &p.image_path),
            (q.image_index_1based, &q.image_path),
            "{what} #{i}"
        );
        let (ma, mb) = (
            relion_matrix(p.euler_deg[0], p.euler_deg[1], p.euler_deg[2]),
            relion_matrix(q.euler_deg[0], q.euler_deg[1], q.euler_deg[2]),
        );
        let rot_diff = (0..9)
            .map(|k| (ma[k / 3][k % 3] - mb[k / 3][k % 3]).abs())
            .fold(0.0, f64::max);
        assert!(rot_diff < tol, "{what} #{i}: rotation differs by {rot_diff}");
        for k in 0..2 {
            assert!(
                (p.shift_angstrom[k] - q.shift_angstrom[k]).abs() < tol * 10.0,
                "{what} #{i} shift"
            );
        }
        assert!(
            (p.defocus_u_angstrom - q.defocus_u_angstrom).abs() < 0.01 + tol,
            "{what} #{i} dfU"
        );
        assert!(
            (p.defocus_v_angstrom - q.defocus_v_angstrom).abs() < 0.01 + tol,
            "{what} #{i} dfV"
        );
        let dangle = (p.defocus_angle_deg - q.defocus_angle_deg).abs();
        assert!(dangle < tol * 100.0, "{what} #{i} defocus angle {dangle}");
        let (ga, gb) = (&a.optics[p.optics], &b.optics[q.optics]);
        assert!(
            (ga.pixel_size_angstrom - gb.pixel_size_angstrom).abs() < 1e-5,
            "{what} #{i} pixel"
        );
        assert!(
            (ga.voltage_kv - gb.voltage_kv).abs() < 1e-4
                && (ga.spherical_aberration_mm - gb.spherical_aberration_mm).abs() < 1e-5
        );
        assert!((ga.amplitude_contrast - gb.amplitude_contrast).abs() < 1e-6);
    }
}

#[test]
fn relion_30_and_31_layouts_describe_the_same_particles() {
    let v30 = particles_from_star("fixtures/particles_relion30.star");
    let v31 = particles_from_star("fixtures/particles_relion31.star");
    assert_eq!(v30.optics.len(), 1);
    assert!(
        (v30.optics[0].pixel_size_angstrom - 1.5).abs() < 1e-12,
        "4.5 µm / 30000 = 1.5 Å"
    );
    assert_eq!(v31.optics[0].image_size, Some(16));
    assert_same_particles(&v30, &v31, 1e-6, "3.0 vs 3.1");
}

#[test]
fn cryosparc_file_describes_the_same_particles_as_the_star_files() {
    let star = particles_from_star("fixtures/particles_relion31.star");
    let cs = particles_from_cs("fixtures/particles.cs");
    // .cs stores float32: agree to float32 precision.
    assert_same_particles(&star, &cs, 2e-5, "STAR vs .cs");
}

#[test]
fn cs_uids_and_every_field_survive_byte_for_byte() {
    let path = asset("fixtures/particles.cs");
    let cs = CsFile::read(&path).expect("read");
    let want: Vec<u64> = expected()["cs_uids"]
        .as_array()
        .expect("uids")
        .iter()
        .map(|u| u.as_u64().expect("u64"))
        .collect();
    assert_eq!(cs.column_u64("uid").expect("uid"), want);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("copy.cs");
    cs.write(&out).expect("write");
    assert_eq!(
        std::fs::read(&out).expect("read"),
        std::fs::read(&path).expect("read"),
        "byte-identical rewrite"
    );

    let subset = cs.select_rows(&[11, 3, 4]);
    let sub_path = dir.path().join("subset.cs");
    subset.write(&sub_path).expect("write subset");
    let again = CsFile::read(&sub_path).expect("read subset");
    assert_eq!(again.fields, cs.fields, "every field kept");
    assert_eq!(again.column_u64("uid").expect("uid"), vec![want[11], want[3], want[4]]);
    assert_eq!(again.record(1), cs.record(3));
}

#[test]
fn star_files_round_trip_with_unknown_columns_and_subsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["fixtures/particles_relion30.star", "fixtures/particles_relion31.star"] {
        let star = StarFile::read(&asset(name)).expect("read");
        let out = dir.path().join("rt.star");
        star.write(&out).expect("write");
        assert_eq!(StarFile::read(&out).expect("reread"), star, "{name}");
    }
    let mut star = StarFile::read(&asset("fixtures/particles_relion31.star")).expect("read");
    let block = star.block_mut("particles").expect("particles block");
    let table = block.table_mut().expect("table");
    let subset = table.select_rows(&[2, 7]);
    assert!(
        subset.column_index("rlnLogLikeliContribution").is_some(),
        "unknown column kept"
    );
    assert_eq!(subset.row(1), table.row(7));
    *table = subset;
    let out = dir.path().join("subset.star");
    star.write(&out).expect("write");
    let again = StarFile::read(&out).expect("reread");
    assert_eq!(again.block("optics"), star.block("optics"), "optics table kept");
    assert_eq!(
        particle_block(&again).and_then(|b| b.table()).map(|t| t.row_count()),
        Some(2)
    );
}

#[test]
fn star_to_cs_to_star_keeps_the_particles() {
    let original = particles_from_star("fixtures/particles_relion30.star");
    let dir = tempfile::tempdir().expect("tempdir");
    let cs_path = dir.path().join("p.cs");
    original.to_cs().write(&cs_path).expect("write cs");
    let via_cs = ParticleSet::from_cs(&cs_path, &CsFile::read(&cs_path).expect("read cs")).expect("particles");
    assert_same_particles(&original, &via_cs, 2e-5, "STAR → .cs");
    let star_path = dir.path().join("p.star");
    via_cs.to_star().write(&star_path).expect("write star");
    let back = ParticleSet::from_star(&star_path, &StarFile::read(&star_path).expect("read")).expect("particles");
    assert_same_particles(&original, &back, 2e-5, "STAR → .cs → STAR");
    let uids = CsFile::read(&cs_path).expect("read").column_u64("uid").expect("uid");
    let mut unique = uids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), uids.len(), "uids unique");
}

#[test]
fn stack_images_are_read_by_index_and_references_resolve() {
    let stack = ParticleStack::open(&asset("fixtures/particles.mrcs")).expect("open");
    assert_eq!(stack.count(), 12);
    assert_eq!(stack.box_size(), [16, 16]);
    let sum: f64 = stack.image(5).expect("image").iter().map(|&v| f64::from(v)).sum();
    let want = expected()["stack_image5_sum"].as_f64().expect("sum");
    assert!((sum - want).abs() < 1e-4, "{sum} vs {want}");

    let star_path = asset("fixtures/particles_relion31.star");
    let set = particles_from_star("fixtures/particles_relion31.star");
    let reference = ImageRef {
        index_1based: set.particles[5].image_index_1based,
        path: set.particles[5].image_path.clone(),
        whole_file: false,
    };
    let resolved = reference.resolve(&star_path).expect("stack found beside the STAR file");
    let via_reference = ParticleStack::open(&resolved)
        .expect("open")
        .image(reference.index_1based - 1)
        .expect("image");
    assert_eq!(via_reference, stack.image(5).expect("image"));
}

#[test]
fn bad_metadata_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cs_bytes = std::fs::read(asset("fixtures/particles.cs")).expect("read");
    let star_text = std::fs::read_to_string(asset("fixtures/particles_relion31.star")).expect("read");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated.cs", cs_bytes[..cs_bytes.len() - 50].to_vec()),
        ("garbage.cs", b"\x93NUMPY\x01\x00\x10\x00{'descr': oops}".to_vec()),
        ("text.cs", b"not numpy at all".to_vec()),
        ("binary.star", vec![0xff, 0xfe, 0x00, 0x81, 0x92, 0x10, b'\n', 0xc3]),
        ("cut.star", star_text.as_bytes()[..star_text.len() - 40].to_vec()),
        ("empty.star", Vec::new()),
    ];
    for (name, content) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        let message = if name.ends_with(".cs") {
            CsFile::read(&path).expect_err(name).to_string()
        } else {
            match StarFile::read(&path) {
                Err(e) => e.to_string(),
                // A cut that lands on a row boundary still parses; the particle view must then fail or
                // see fewer rows, never garbage.
                Ok(star) => match ParticleSet::from_star(&path, &star) {
                    Err(e) => e.to_string(),
                    Ok(set) => {
                        assert!(set.particles.len() < 12, "{name} parsed fully");
                        continue;
                    }
                },
            }
        };
        assert!(message.contains(name), "{message}");
    }

    let truncated_stack = dir.path().join("cut.mrcs");
    let stack_bytes = std::fs::read(asset("fixtures/particles.mrcs")).expect("read");
    std::fs::write(&truncated_stack, &stack_bytes[..stack_bytes.len() - 1]).expect("write");
    let err = ParticleStack::open(&truncated_stack).expect_err("truncated stack");
    assert!(err.to_string().contains("cut.mrcs"), "{err}");
}

/// The fixture's particle table without `columns`, or with `_rlnImageName` rewritten by `name`.
fn edited_relion30(drop: &[&str], name: impl Fn(usize, &str) -> String) -> StarFile {
    let mut star = StarFile::read(&asset("fixtures/particles_relion30.star")).expect("read");
    let table = star.blocks[0].table_mut().expect("table");
    let keep: Vec<usize> = (0..table.columns.len())
        .filter(|&c| !drop.contains(&table.columns[c].as_str()))
        .collect();
    let mut edited = StarTable::new(keep.iter().map(|&c| table.columns[c].clone()).collect());
    for r in 0..table.row_count() {
        edited.push_row(keep.iter().map(|&c| table.cell(r, c).to_owned()).collect());
    }
    let names = edited.column_index("rlnImageName").expect("names");
    let renamed: Vec<String> = (0..edited.row_count())
        .map(|r| name(r, edited.cell(r, names)))
        .collect();
    edited.set_column("rlnImageName", |r| renamed[r].clone());
    *table = edited;
    star
}

#[test]
fn a_relion30_table_without_pixel_size_reads_with_apix_as_the_original() {
    let original = particles_from_star("fixtures/particles_relion30.star");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no_apix.star");
    edited_relion30(&["rlnDetectorPixelSize", "rlnMagnification"], |_, n| n.to_owned())
        .write(&path)
        .expect("write");
    let star = StarFile::read(&path).expect("read");
    let err = ParticleSet::from_star(&path, &star).expect_err("no pixel size");
    assert!(
        err.to_string().contains("no_apix.star") && err.to_string().contains("--apix"),
        "{err}"
    );
    // 4.5 µm / 30000 = 1.5 Å, the value the columns gave: shifts in pixels come back the same.
    let set = ParticleSet::from_star_with(&path, &star, &ParticleOptions::with_pixel_size(Some(1.5))).expect("read");
    assert_same_particles(&original, &set, 1e-9, "--apix 1.5 vs detector pixel / magnification");
}

#[test]
fn one_image_file_per_particle_reads_the_same_images_as_the_stack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = ParticleStack::open(&asset("fixtures/particles.mrcs")).expect("open");
    let original = ParticleData::read(&asset("fixtures/particles_relion30.star")).expect("read");
    for i in 0..stack.count() {
        let one = dir.path().join(format!("particle_{i:02}.mrc"));
        write_stack(
            &one,
            stack.box_size(),
            stack.pixel_size_angstrom(),
            &[stack.image(i).expect("image")],
        )
        .expect("write");
    }
    let path = dir.path().join("per_particle.star");
    let star = edited_relion30(&[], |_, name| {
        let reference = ImageRef::parse(name).expect("index@stack");
        format!("particle_{:02}.mrc", reference.index_1based - 1)
    });
    star.write(&path).expect("write");
    let data = ParticleData::read(&path).expect("read one file per particle");
    assert!(data.set.particles.iter().all(|p| p.image_whole_file));
    assert_eq!(data.images, original.images, "the same pixels, particle by particle");
    assert_same_particles(
        &original.set,
        &particle_view(&data.set, &original.set),
        1e-12,
        "poses and CTFs",
    );
}

/// `set` with `reference`'s image names, to compare everything else.
fn particle_view(set: &ParticleSet, reference: &ParticleSet) -> ParticleSet {
    let mut out = set.clone();
    for (p, q) in out.particles.iter_mut().zip(&reference.particles) {
        p.image_path.clone_from(&q.image_path);
        p.image_index_1based = q.image_index_1based;
    }
    out
}
