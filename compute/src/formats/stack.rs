//! MRC image stacks (`.mrcs`), read lazily one image at a time so a stack far larger than memory
//! can be used, and written as float32. Also the `index@path` particle references RELION writes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::formats::error::{FormatError, FormatResult};
use crate::formats::mrc::{HEADER_BYTES, MrcHeader, build_header, decode_values, read_header, write_f32_le};
use crate::io::{is_gzip_path, write_atomically};
use crate::maps::{MapGrid, MapMeta, Statistics};

/// An open `.mrcs` stack; images are read on demand.
pub struct ParticleStack {
    path: PathBuf,
    header: MrcHeader,
    file: Mutex<File>,
}

impl std::fmt::Debug for ParticleStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParticleStack")
            .field("path", &self.path)
            .field("count", &self.count())
            .field("box", &self.box_size())
            .finish()
    }
}

impl ParticleStack {
    /// Opens a stack, validating the header against the file size; no image data is read.
    pub fn open(path: &Path) -> FormatResult<Self> {
        if is_gzip_path(path) {
            return Err(FormatError::unsupported(
                path,
                "gzipped stacks cannot be read by index; decompress the .mrcs first",
            ));
        }
        let header = read_header(path)?;
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        Ok(Self {
            path: path.to_owned(),
            header,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &MrcHeader {
        &self.header
    }

    /// Number of images (sections).
    pub fn count(&self) -> usize {
        self.header.dims_file[2] as usize
    }

    /// Image width and height in pixels.
    pub fn box_size(&self) -> [usize; 2] {
        [self.header.dims_file[0] as usize, self.header.dims_file[1] as usize]
    }

    pub fn pixel_size_angstrom(&self) -> f32 {
        self.header.grid().voxel_size_angstrom[0]
    }

    /// Reads image `index` (0-based), x fastest.
    pub fn image(&self, index: usize) -> FormatResult<Vec<f32>> {
        if index >= self.count() {
            return Err(FormatError::invalid(
                &self.path,
                format!("image {index} requested but the stack holds {}", self.count()),
            ));
        }
        let [w, h] = self.box_size();
        let bytes_per_image = (w * h * self.header.mode().bytes_per_value()) as u64;
        let offset =
            HEADER_BYTES as u64 + self.header.extended_header_bytes.max(0) as u64 + index as u64 * bytes_per_image;
        let mut raw = vec![0u8; bytes_per_image as usize];
        {
            let mut file = self
                .file
                .lock()
                .map_err(|_| FormatError::invalid(&self.path, "stack reader was poisoned"))?;
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_exact(&mut raw))
                .map_err(|e| FormatError::io(&self.path, e))?;
        }
        Ok(decode_values(&self.header, &raw))
    }
}

/// Writes `images` (each `box_size[0] × box_size[1]`, x fastest) as a float32 `.mrcs`.
pub fn write_stack(
    path: &Path,
    box_size: [usize; 2],
    pixel_size_angstrom: f32,
    images: &[Vec<f32>],
) -> FormatResult<()> {
    let pixels = box_size[0] * box_size[1];
    if let Some(bad) = images.iter().position(|im| im.len() != pixels) {
        return Err(FormatError::invalid(
            path,
            format!("image {bad} has {} pixels, expected {pixels}", images[bad].len()),
        ));
    }
    let all: Vec<f32> = images.iter().flatten().copied().collect();
    let grid = MapGrid::new([box_size[0], box_size[1], 1], [pixel_size_angstrom; 3], [0.0; 3]);
    let header = build_header(&grid, &MapMeta::default(), Statistics::of(&all), 0, images.len());
    write_atomically(path, |w| {
        std::io::Write::write_all(w, &header)?;
        write_f32_le(w, &all)
    })
}

/// A RELION particle reference, `000012@Extract/job005/stack.mrcs`, or a file holding one particle
/// (`Subtomograms/p1.mrc`: one file per particle, read as a one-image stack).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// 1-based index in the stack, as RELION writes it (1 for a whole file).
    pub index_1based: usize,
    pub path: String,
    /// The reference names the file alone, with no `index@`.
    pub whole_file: bool,
}

impl ImageRef {
    /// `index@stack` only.
    pub fn parse(text: &str) -> Option<Self> {
        let (index, path) = text.split_once('@')?;
        let index_1based: usize = index.trim().parse().ok()?;
        if index_1based == 0 || path.is_empty() {
            return None;
        }
        Some(Self {
            index_1based,
            path: path.to_owned(),
            whole_file: false,
        })
    }

    /// An `_rlnImageName` cell: `index@stack`, or a path with no `@` naming a one-particle file.
    pub fn parse_image_name(text: &str) -> Option<Self> {
        if text.contains('@') {
            return Self::parse(text);
        }
        (!text.trim().is_empty()).then(|| Self {
            index_1based: 1,
            path: text.to_owned(),
            whole_file: true,
        })
    }

    /// `000012@path`, zero-padded to six digits as RELION does; a whole file as its path alone.
    pub fn to_relion(&self) -> String {
        if self.whole_file {
            self.path.clone()
        } else {
            format!("{:06}@{}", self.index_1based, self.path)
        }
    }

    /// Finds the stack: relative paths are tried against the metadata file's folder and then its
    /// ancestors, because RELION writes them relative to the project folder.
    pub fn resolve(&self, metadata_path: &Path) -> Option<PathBuf> {
        let stack = Path::new(&self.path);
        if stack.is_absolute() {
            return stack.exists().then(|| stack.to_owned());
        }
        let mut dir = metadata_path.parent();
        while let Some(d) = dir {
            let candidate = d.join(stack);
            if candidate.exists() {
                return Some(candidate);
            }
            dir = d.parent();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ref_parses_and_prints_like_relion() {
        let r = ImageRef::parse("000012@Extract/job005/a.mrcs").expect("parse");
        assert_eq!(r.index_1based, 12);
        assert_eq!(r.path, "Extract/job005/a.mrcs");
        assert_eq!(r.to_relion(), "000012@Extract/job005/a.mrcs");
        assert!(ImageRef::parse("0@a.mrcs").is_none());
        assert!(ImageRef::parse("a.mrcs").is_none());
    }

    #[test]
    fn a_bare_image_name_is_a_one_particle_file() {
        let r = ImageRef::parse_image_name("Subtomograms/p7.mrc").expect("whole file");
        assert_eq!(
            (r.index_1based, r.path.as_str(), r.whole_file),
            (1, "Subtomograms/p7.mrc", true)
        );
        assert_eq!(r.to_relion(), "Subtomograms/p7.mrc");
        let indexed = ImageRef::parse_image_name("3@a.mrcs").expect("indexed");
        assert_eq!((indexed.index_1based, indexed.whole_file), (3, false));
        assert!(
            ImageRef::parse_image_name("x@a.mrcs").is_none(),
            "a bad index is not a file name"
        );
        assert!(ImageRef::parse_image_name("  ").is_none());
    }

    #[test]
    fn stack_round_trip_by_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.mrcs");
        let images: Vec<Vec<f32>> = (0..5)
            .map(|k| (0..12).map(|p| (k * 100 + p) as f32).collect())
            .collect();
        write_stack(&path, [4, 3], 1.5, &images).expect("write");
        let stack = ParticleStack::open(&path).expect("open");
        assert_eq!(stack.count(), 5);
        assert_eq!(stack.box_size(), [4, 3]);
        assert!((stack.pixel_size_angstrom() - 1.5).abs() < 1e-6);
        assert_eq!(stack.header().space_group, 0);
        assert_eq!(stack.image(3).expect("image"), images[3]);
        assert!(stack.image(5).is_err());
    }
}
