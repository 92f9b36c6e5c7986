//! Writing a package out in PyTorch's directory form.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{ArchiveError, Result};
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
    let durable = durability == Durability::Fsync;
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
            file.sync_all().map_err(|e| ArchiveError::io(&path, e))?;
        }
    }
    if durable {
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
