//! The particle data that refinement and heterogeneity analysis train on: a RELION STAR or
//! cryoSPARC `.cs` file's particles (pose, shift, CTF) with their images, read from the stacks
//! the metadata references, fully ([`ParticleData`]) or image by image ([`StackReader`]).

use std::path::{Path, PathBuf};

use crate::formats::cs::CsFile;
use crate::formats::error::{FormatError, FormatResult};
use crate::formats::model::Structure;
use crate::formats::particles::{ParticleOptions, ParticleSet};
use crate::formats::stack::{ImageRef, ParticleStack};
use crate::formats::star::StarFile;
use crate::geometry::{Mat3, relion_matrix};
use crate::particles::ctf::CtfParams;

/// The centroid of a model's first frame: the box centre when nothing else says where it is.
pub fn centroid(structure: &Structure) -> [f64; 3] {
    let frame = structure.frames.first().map(Vec::as_slice).unwrap_or_default();
    let n = frame.len().max(1) as f64;
    std::array::from_fn(|k| frame.iter().map(|p| f64::from(p[k])).sum::<f64>() / n)
}

/// The STAR block where the simulator records the box centre in the model's frame.
pub const SIMULATION_BLOCK: &str = "cryoforge_simulation";
pub const CENTRE_KEYS: [&str; 3] = ["cryoforgeCentreX", "cryoforgeCentreY", "cryoforgeCentreZ"];

/// Particle images with their poses, shifts and CTFs.
pub struct ParticleData {
    pub set: ParticleSet,
    pub images: Vec<Vec<f32>>,
    pub box_size: usize,
    pub pixel_size: f64,
    /// Where the box centre sits in the model's frame, when the metadata says (simulated data).
    pub centre: Option<[f64; 3]>,
}

impl ParticleData {
    /// Reads a RELION STAR or cryoSPARC `.cs` file and every image it references.
    pub fn read(path: &Path) -> FormatResult<Self> {
        Self::read_with(path, &ParticleOptions::default())
    }

    /// [`ParticleData::read`], with `options` supplying what the file may lack (pixel size).
    pub fn read_with(path: &Path, options: &ParticleOptions) -> FormatResult<Self> {
        let (set, centre) = read_particle_metadata(path, options)?;
        let stacks = StackReader::open(path, &set)?;
        let images = (0..set.particles.len())
            .map(|i| stacks.image(&set, i))
            .collect::<Result<Vec<_>, _>>()?;
        let (box_size, pixel_size) = stacks.geometry(path, &set)?;
        Ok(Self {
            set,
            images,
            box_size,
            pixel_size,
            centre,
        })
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Particle `i`'s RELION matrix, origin in pixels and CTF.
    pub fn view(&self, i: usize) -> (Mat3, [f64; 2], CtfParams) {
        let p = &self.set.particles[i];
        (
            relion_matrix(p.euler_deg[0], p.euler_deg[1], p.euler_deg[2]),
            p.shift_angstrom.map(|s| s / self.pixel_size),
            self.set.ctf(i),
        )
    }
}

/// Reads a RELION STAR or cryoSPARC `.cs` particle file without its images: the particles and,
/// for simulated data, where the box centre sits in the model's frame.
pub fn read_particle_metadata(path: &Path, options: &ParticleOptions) -> FormatResult<(ParticleSet, Option<[f64; 3]>)> {
    let is_cs = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("cs"));
    let (set, centre) = if is_cs {
        let cs = CsFile::read(path)?;
        (ParticleSet::from_cs_with(path, &cs, options)?, None)
    } else {
        let star = StarFile::read(path)?;
        let centre = star.block(SIMULATION_BLOCK).and_then(|b| {
            let values: Vec<f64> = CENTRE_KEYS
                .iter()
                .filter_map(|k| b.value(k).and_then(|v| v.parse().ok()))
                .collect();
            (values.len() == 3).then(|| [values[0], values[1], values[2]])
        });
        (ParticleSet::from_star_with(path, &star, options)?, centre)
    };
    if set.particles.is_empty() {
        return Err(FormatError::invalid(path, "no particles"));
    }
    Ok((set, centre))
}

/// The stacks a particle file references, opened once and read image by image on demand, so
/// sets larger than memory can stream.
pub struct StackReader {
    stacks: std::collections::HashMap<String, ParticleStack>,
}

impl StackReader {
    /// Opens every stack `set` references (paths resolved beside `metadata_path`). A file named
    /// without `index@` is one particle's image, a stack of one.
    pub fn open(metadata_path: &Path, set: &ParticleSet) -> FormatResult<Self> {
        let mut stacks = std::collections::HashMap::new();
        for p in &set.particles {
            if !stacks.contains_key(&p.image_path) {
                let reference = ImageRef {
                    index_1based: p.image_index_1based,
                    path: p.image_path.clone(),
                    whole_file: p.image_whole_file,
                };
                let stack_path: PathBuf = reference
                    .resolve(metadata_path)
                    .ok_or_else(|| FormatError::invalid(metadata_path, format!("stack {} not found", p.image_path)))?;
                let stack = ParticleStack::open(&stack_path)?;
                if p.image_whole_file && stack.count() != 1 {
                    let [w, h] = stack.box_size();
                    return Err(FormatError::unsupported(
                        metadata_path,
                        format!(
                            "{} is named without index@ as one particle's image, but holds {w}×{h}×{} \
                             (a subtomogram or a stack; cryoforge reads 2D particle images)",
                            stack_path.display(),
                            stack.count()
                        ),
                    ));
                }
                stacks.insert(p.image_path.clone(), stack);
            }
        }
        Ok(Self { stacks })
    }

    /// Particle `i`'s image, x fastest.
    pub fn image(&self, set: &ParticleSet, i: usize) -> FormatResult<Vec<f32>> {
        let p = &set.particles[i];
        let stack = &self.stacks[&p.image_path];
        stack.image(p.image_index_1based - 1)
    }

    /// Box size and pixel size, checked against the optics table.
    pub fn geometry(&self, metadata_path: &Path, set: &ParticleSet) -> FormatResult<(usize, f64)> {
        let first = set
            .particles
            .first()
            .map(|p| self.stacks[&p.image_path].box_size())
            .unwrap_or([0, 0]);
        if first[0] != first[1] || first[0] < 8 {
            return Err(FormatError::invalid(
                metadata_path,
                format!("images must be square and at least 8 px, got {}×{}", first[0], first[1]),
            ));
        }
        if let Some(other) = self.stacks.values().find(|s| s.box_size() != first) {
            return Err(FormatError::invalid(
                other.path(),
                format!(
                    "{}×{} px images, but other stacks hold {}×{} px",
                    other.box_size()[0],
                    other.box_size()[1],
                    first[0],
                    first[1]
                ),
            ));
        }
        let box_size = set.optics.first().and_then(|o| o.image_size).unwrap_or(first[0]);
        if box_size != first[0] {
            return Err(FormatError::invalid(
                metadata_path,
                format!(
                    "optics table says {box_size} px, the stack holds {} px images",
                    first[0]
                ),
            ));
        }
        Ok((box_size, set.optics.first().map_or(1.0, |o| o.pixel_size_angstrom)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::stack::write_stack;

    fn image(seed: usize) -> Vec<f32> {
        (0..64).map(|p| (seed * 100 + p) as f32).collect()
    }

    #[test]
    fn files_named_without_an_index_are_one_image_stacks() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("Particles")).expect("mkdir");
        for k in 0..2 {
            let path = dir.path().join(format!("Particles/p{k}.mrc"));
            write_stack(&path, [8, 8], 2.0, &[image(k)]).expect("write");
        }
        write_stack(
            &dir.path().join("three.mrcs"),
            [8, 8],
            2.0,
            &[image(5), image(6), image(7)],
        )
        .expect("write");
        let star = dir.path().join("p.star");
        let text =
            "data_\nloop_\n_rlnImageName\n_rlnDefocusU\nParticles/p0.mrc 1e4\nParticles/p1.mrc 1e4\n2@three.mrcs 1e4\n";
        std::fs::write(&star, text).expect("write");
        // No pixel size in the file: --apix supplies it.
        let options = ParticleOptions::with_pixel_size(Some(2.0));
        let data = ParticleData::read_with(&star, &options).expect("read");
        assert_eq!((data.len(), data.box_size, data.pixel_size), (3, 8, 2.0));
        assert_eq!(data.images, [image(0), image(1), image(6)]);

        // A whole file that is really a stack (or a subtomogram) is not one particle's image.
        std::fs::write(&star, "data_\nloop_\n_rlnImageName\nthree.mrcs\n").expect("write");
        let err = ParticleData::read_with(&star, &options)
            .err()
            .expect("a stack named as one image");
        assert!(
            err.to_string().contains("three.mrcs") && err.to_string().contains("8×8×3"),
            "{err}"
        );
    }
}
