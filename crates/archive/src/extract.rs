//! Writing a package out in PyTorch's directory form.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{ArchiveError, Result};
use crate::progress::Progress;
use crate::reader::{Compression, PackageReader, RecordInfo};
use crate::writer::Durability;

/// Writes every record of `reader` under `dir/<prefix>/`, the layout
/// PyTorch's `PackageImporter` opens as a directory package, and returns
/// that folder.
///
/// Safe against hostile names: every record name must be a safe relative
/// path ([`validate_record_name`](crate::validate_record_name)), and every path is checked again to stay inside `dir`. The
/// folder is built under a temporary name and renamed into place when
/// complete, so a failure leaves nothing half-extracted; an existing
/// `dir/<prefix>` is never overwritten.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tpkg_archive::{extract, PackageReader, PackageWriter, WriteOptions};
///
/// let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
/// writer.write_record("a/b.txt", b"text")?;
/// let reader = PackageReader::from_bytes(writer.finish()?)?;
///
/// let out = tempfile::tempdir()?;
/// let folder = extract(&reader, out.path())?;
/// assert_eq!(std::fs::read(folder.join("a/b.txt"))?, b"text");
/// assert_eq!(PackageReader::open(&folder)?.prefix(), "archive");
/// # Ok(()) }
/// ```
///
/// Nothing is fsynced: [`extract_with`] and [`Durability::Fsync`] for a
/// folder that survives a power loss.
pub fn extract(reader: &PackageReader, dir: &Path) -> Result<PathBuf> {
    extract_with(reader, dir, Durability::NoFsync)
}

/// [`extract`], and with [`Durability::Fsync`] every file and folder is
/// fsynced before the folder is renamed into place (and `dir` after), as
/// [`AtomicFile`](crate::AtomicFile) does for one file.
pub fn extract_with(reader: &PackageReader, dir: &Path, durability: Durability) -> Result<PathBuf> {
    extract_with_options(
        reader,
        dir,
        ExtractOptions::default().with_durability(durability),
    )
}

/// How [`extract_with_options`] writes: durability (no fsync by default,
/// as [`extract`]) and a progress hook (none by default).
///
/// ```
/// use tpkg_archive::{Durability, ExtractOptions, ProgressEvent};
///
/// let hook = |event: ProgressEvent| eprintln!("{} of {} bytes", event.done, event.total);
/// let options = ExtractOptions::default()
///     .with_durability(Durability::Fsync)
///     .with_progress(tpkg_archive::Progress::new(&hook));
/// assert_eq!(options.durability, Durability::Fsync);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExtractOptions<'a> {
    /// [`Durability::Fsync`]: every file and folder is fsynced before the
    /// folder is renamed into place. [`Durability::NoFsync`] by default.
    pub durability: Durability,
    /// Called after each record with the bytes written so far (of the sum
    /// of the records' sizes).
    pub progress: Progress<'a>,
}

impl Default for ExtractOptions<'_> {
    fn default() -> Self {
        ExtractOptions {
            durability: Durability::NoFsync,
            progress: Progress::default(),
        }
    }
}

impl<'a> ExtractOptions<'a> {
    /// Whether files and folders are fsynced.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Reports progress to `progress`.
    #[must_use]
    pub fn with_progress(mut self, progress: Progress<'a>) -> Self {
        self.progress = progress;
        self
    }
}

/// [`extract`] with options: durability (see [`extract_with`]) and a
/// progress hook called after each record, with the bytes done so far.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Mutex;
/// use tpkg_archive::{
///     ExtractOptions, PackageReader, PackageWriter, Progress, ProgressEvent, WriteOptions,
///     extract_with_options,
/// };
///
/// let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
/// writer.write_record("a/b.txt", b"text")?;
/// let reader = PackageReader::from_bytes(writer.finish()?)?;
///
/// let last = Mutex::new(None);
/// let hook = |event: ProgressEvent| *last.lock().unwrap() = Some(event);
/// let out = tempfile::tempdir()?;
/// let options = ExtractOptions::default().with_progress(Progress::new(&hook));
/// extract_with_options(&reader, out.path(), options)?;
/// let last = last.lock().unwrap().unwrap();
/// assert_eq!(last.done, last.total);
/// # Ok(()) }
/// ```
pub fn extract_with_options(
    reader: &PackageReader,
    dir: &Path,
    options: ExtractOptions<'_>,
) -> Result<PathBuf> {
    let durable = options.durability == Durability::Fsync;
    crate::name::validate_prefix(reader.prefix())?;
    let destination = dir.join(reader.prefix());
    if fs::symlink_metadata(&destination).is_ok() {
        return Err(ArchiveError::DestinationExists { path: destination });
    }
    fs::create_dir_all(dir).map_err(|e| ArchiveError::io(dir, e))?;
    let staging = tempfile::Builder::new()
        .prefix(".tpkg-extract-")
        .tempdir_in(dir)
        .map_err(|e| ArchiveError::io(dir, e))?;
    let total = reader.records().iter().map(|info| info.size).sum();
    let progress = options.progress.counter(total);
    let mut written = Vec::new();
    for info in reader.records() {
        // PyTorch reads any name (`../x`, `/etc/x`, `a//b`); only names
        // that are safe relative paths may become files.
        crate::name::validate_record_name(&info.name).map_err(|problem| ArchiveError::BadName {
            archive: reader.label().to_owned(),
            name: info.name.clone(),
            offset: None,
            problem,
        })?;
        let relative = Path::new(&info.name);
        if !relative
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
        {
            return Err(ArchiveError::BadName {
                archive: reader.label().to_owned(),
                name: info.name.clone(),
                offset: None,
                problem: crate::NameProblem::ParentDirectory,
            });
        }
        let path = staging.path().join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| ArchiveError::io(parent, e))?;
        }
        let file = File::create_new(&path).map_err(|e| ArchiveError::io(&path, e))?;
        copy_record(reader, info, &path, &file)?;
        if durable {
            crate::writer::start_writeback(&file);
            written.push(path);
        }
        progress.add(info.size);
    }
    if durable {
        // Every file is fsynced after all are written, each one's
        // write-back started as soon as it was copied: the disk writes the
        // first files while the later ones are copied, instead of idling
        // during every copy (file by file, extracting 1 GiB of storages
        // took 1.5x `cp` + fsync).
        for path in &written {
            File::open(path)
                .and_then(|file| file.sync_all())
                .map_err(|e| ArchiveError::io(path, e))?;
        }
        sync_folders(staging.path())?;
    }
    let staged = staging.keep();
    fs::rename(&staged, &destination).map_err(|error| {
        let _ = fs::remove_dir_all(&staged);
        ArchiveError::io(&destination, error)
    })?;
    if durable {
        sync_folder(dir)?;
    }
    Ok(destination)
}

/// Writes one record's content to `file` (new and empty, at `path`).
///
/// A stored record whose data is as long as declared is copied with
/// [`PackageReader::copy_range_to`]: by the kernel from the package file
/// on Linux (as `cp` does), never through this process. Without a CRC
/// check, as [`PackageReader::open_record`] reads by default: PyTorch
/// checks none. Unless the reader was opened with
/// [`ReadOptions::verify_crc`](crate::ReadOptions::verify_crc), and for
/// every other record, the record is streamed with the reader's checks.
fn copy_record(reader: &PackageReader, info: &RecordInfo, path: &Path, file: &File) -> Result<()> {
    let plain_copy = info.compression == Compression::Stored
        && info.compressed_size == info.size
        && !reader.options().verify_crc;
    if plain_copy {
        return reader.copy_range_to(&info.name, 0, info.size, file);
    }
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut record = reader.open_record(&info.name)?;
    io::copy(&mut record, &mut out)
        .map_err(|error| ArchiveError::from_io(error, |source| ArchiveError::io(path, source)))?;
    out.flush().map_err(|e| ArchiveError::io(path, e))
}

/// fsyncs `root` and every folder under it, so the entries of the files
/// written there reach the disk.
fn sync_folders(root: &Path) -> Result<()> {
    for entry in fs::read_dir(root).map_err(|e| ArchiveError::io(root, e))? {
        let entry = entry.map_err(|e| ArchiveError::io(root, e))?;
        let is_dir = entry
            .file_type()
            .map_err(|e| ArchiveError::io(entry.path(), e))?
            .is_dir();
        if is_dir {
            sync_folders(&entry.path())?;
        }
    }
    sync_folder(root)
}

/// fsyncs one folder (its entries).
fn sync_folder(folder: &Path) -> Result<()> {
    File::open(folder)
        .and_then(|handle| handle.sync_all())
        .map_err(|e| ArchiveError::io(folder, e))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::{PackageWriter, ProgressEvent, WriteOptions};

    #[test]
    fn progress_counts_every_record_once_in_increasing_order_up_to_the_total() {
        let mut writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
        let sizes = [3usize, 0, 2 << 20, 17];
        for (index, size) in sizes.iter().enumerate() {
            writer
                .write_record(&format!("r/{index}"), &vec![7u8; *size])
                .unwrap();
        }
        let reader = PackageReader::from_bytes(writer.finish().unwrap()).unwrap();
        let total: u64 = reader.records().iter().map(|info| info.size).sum();
        assert!(total > (2 << 20), "the bookkeeping records count too");

        let seen = Mutex::new(Vec::new());
        let hook = |event: ProgressEvent| seen.lock().unwrap().push(event);
        let out = tempfile::tempdir().unwrap();
        let options = ExtractOptions::default().with_progress(Progress::new(&hook));
        extract_with_options(&reader, out.path(), options).unwrap();
        let seen = seen.into_inner().unwrap();
        // `0 of total` first, then one report per record.
        assert_eq!(seen.len(), reader.records().len() + 1);
        assert_eq!(seen[0].done, 0);
        assert!(seen.iter().all(|event| event.total == total));
        assert!(seen.windows(2).all(|pair| pair[0].done <= pair[1].done));
        assert_eq!(seen.last().map(|event| event.done), Some(total));
    }
}
