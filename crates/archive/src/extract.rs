//! Writing a package out in PyTorch's directory form.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{ArchiveError, Result};
use crate::reader::PackageReader;

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
pub fn extract(reader: &PackageReader, dir: &Path) -> Result<PathBuf> {
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
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut record = reader.open_record(&info.name)?;
        io::copy(&mut record, &mut out).map_err(|error| {
            ArchiveError::from_io(error, |source| ArchiveError::io(&path, source))
        })?;
        out.flush().map_err(|e| ArchiveError::io(&path, e))?;
    }
    let staged = staging.keep();
    fs::rename(&staged, &destination).map_err(|error| {
        let _ = fs::remove_dir_all(&staged);
        ArchiveError::io(&destination, error)
    })?;
    Ok(destination)
}
