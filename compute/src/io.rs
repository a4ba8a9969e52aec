//! File plumbing shared by every format: gzip and bzip2 by extension, byte-counting readers for
//! progress bars, and atomic writes (a temporary file beside the target, renamed into place only once it
//! is complete, so a failed or cancelled write never destroys an existing file).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::formats::error::{FormatError, FormatResult};

/// Called with the number of bytes consumed so far.
pub type ProgressFn<'a> = &'a (dyn Fn(u64) + Sync);

/// How a file is compressed, judged by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    /// `.gz`
    Gzip,
    /// `.bz2`
    Bzip2,
}

impl Compression {
    pub fn of(path: &Path) -> Self {
        match path.extension() {
            Some(ext) if ext.eq_ignore_ascii_case("gz") => Self::Gzip,
            Some(ext) if ext.eq_ignore_ascii_case("bz2") => Self::Bzip2,
            _ => Self::None,
        }
    }
}

/// Whether the file name ends in `.gz`.
pub fn is_gzip_path(path: &Path) -> bool {
    Compression::of(path) == Compression::Gzip
}

/// Whether the file name ends in `.gz` or `.bz2`: its size on disk says nothing about its
/// content, and it cannot be read by offset.
pub fn is_compressed_path(path: &Path) -> bool {
    Compression::of(path) != Compression::None
}

/// The file name, lowercase, with a trailing `.gz` or `.bz2` removed (`"x.map.gz"` → `"x.map"`).
pub fn name_without_gz(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    [".gz", ".bz2"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .map(str::to_owned)
        .unwrap_or(name)
}

/// The lowercase extension after stripping `.gz` or `.bz2` (`"x.map.gz"` → `"map"`).
pub fn format_extension(path: &Path) -> String {
    let name = name_without_gz(path);
    match name.rsplit_once('.') {
        Some((_, ext)) => ext.to_owned(),
        None => String::new(),
    }
}

/// A reader that reports how many (compressed, on-disk) bytes it has read.
pub struct CountingReader<'a, R> {
    inner: R,
    bytes_read: u64,
    progress: Option<ProgressFn<'a>>,
}

impl<'a, R: Read> CountingReader<'a, R> {
    pub fn new(inner: R, progress: Option<ProgressFn<'a>>) -> Self {
        Self {
            inner,
            bytes_read: 0,
            progress,
        }
    }
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes_read += n as u64;
        if let Some(progress) = self.progress {
            progress(self.bytes_read);
        }
        Ok(n)
    }
}

/// Opens `path` for reading, transparently decompressing `.gz` and `.bz2`, reporting on-disk
/// bytes read.
pub fn open_reader<'a>(path: &Path, progress: Option<ProgressFn<'a>>) -> FormatResult<Box<dyn Read + 'a>> {
    let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
    let counted = CountingReader::new(BufReader::with_capacity(1 << 20, file), progress);
    Ok(match Compression::of(path) {
        Compression::None => Box::new(counted),
        // Multi-stream decoders: `cat a.gz b.gz` and pbzip2's output are one valid file.
        Compression::Gzip => Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(counted))),
        Compression::Bzip2 => Box::new(BufReader::new(bzip2::read::MultiBzDecoder::new(counted))),
    })
}

/// Writes a file atomically: `write` fills a temporary file in the same folder, which is
/// renamed over `path` only if `write` succeeds. `.gz` and `.bz2` targets are compressed.
pub fn write_atomically(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> FormatResult<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| FormatError::invalid(path, "not a file path"))?;
    let tmp_path = dir.join(format!(".{}.{}.tmp", file_name.to_string_lossy(), std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let file = File::create(&tmp_path)?;
        let mut buffered = BufWriter::with_capacity(1 << 20, file);
        match Compression::of(path) {
            Compression::None => write(&mut buffered)?,
            Compression::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(&mut buffered, flate2::Compression::new(6));
                write(&mut gz)?;
                gz.finish()?;
            }
            Compression::Bzip2 => {
                let mut bz = bzip2::write::BzEncoder::new(&mut buffered, bzip2::Compression::new(6));
                write(&mut bz)?;
                bz.finish()?;
            }
        }
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    })();
    match result {
        Ok(()) => std::fs::rename(&tmp_path, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp_path);
            FormatError::io(path, e)
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp_path);
            Err(FormatError::io(path, e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keep.txt");
        std::fs::write(&path, b"old").expect("write");
        let result = write_atomically(&path, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("cancelled"))
        });
        assert!(result.is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("read_dir").collect();
        assert_eq!(leftovers.len(), 1, "temporary file must be removed");
    }

    #[test]
    fn gz_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.txt.gz");
        write_atomically(&path, |w| w.write_all(b"hello map")).expect("write");
        let raw = std::fs::read(&path).expect("read");
        assert_eq!(&raw[..2], &[0x1f, 0x8b], "gzip magic");
        let mut text = String::new();
        open_reader(&path, None)
            .expect("open")
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "hello map");
        assert_eq!(format_extension(&path), "txt");
    }

    /// A `.map.bz2` (compressed here from the plain file, as `bzip2 -k` would) reads as the same
    /// map, voxel for voxel; a bzip2 target is written compressed and reads back the same.
    #[test]
    fn bz2_map_reads_like_the_plain_one() {
        let plain = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/fixtures/mode1.mrc");
        let dir = tempfile::tempdir().expect("tempdir");
        let compressed = dir.path().join("mode1.map.bz2");
        let raw = std::fs::read(&plain).expect("read fixture");
        let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
        encoder.write_all(&raw).expect("compress");
        std::fs::write(&compressed, encoder.finish().expect("finish")).expect("write");
        assert_eq!(
            crate::formats::FileKind::from_path(&compressed),
            Some(crate::formats::FileKind::Map)
        );
        let a = crate::maps::DensityMap::read(&plain).expect("plain");
        let b = crate::maps::DensityMap::read(&compressed).expect("bz2");
        assert_eq!(a.grid, b.grid);
        assert_eq!(a.values, b.values);
        assert_eq!(
            crate::formats::mrc::read_header(&compressed).expect("header").dims_file[0],
            a.grid.dims[0] as i32
        );

        let written = dir.path().join("again.mrc.bz2");
        b.write(&written).expect("write bz2");
        assert_eq!(&std::fs::read(&written).expect("read")[..3], b"BZh", "bzip2 magic");
        assert_eq!(
            crate::maps::DensityMap::read(&written).expect("reread").values,
            a.values
        );
    }
}
