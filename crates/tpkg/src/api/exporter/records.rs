//! Record naming and writing, and reading module sources.

use std::path::{Path, PathBuf};

use tpkg_archive::{Destination, PackageWriter};

use super::ExportError;

/// Refuses a record name already written, or a mangled one (a module of a
/// loaded package saved under its `<torch_package_N>` name).
pub(super) fn check_new_record<D: Destination>(
    writer: &PackageWriter<D>,
    name: &str,
) -> Result<(), ExportError> {
    if writer.has_record(name) {
        return Err(ExportError::DuplicateRecord(name.to_owned()));
    }
    if tpkg_mangling::is_mangled(name) {
        return Err(ExportError::MangledName(name.to_owned()));
    }
    Ok(())
}

pub(super) fn write_new_record<D: Destination>(
    writer: &mut PackageWriter<D>,
    name: &str,
    bytes: &[u8],
) -> Result<(), ExportError> {
    check_new_record(writer, name)?;
    writer.write_record(name, bytes)?;
    Ok(())
}

/// `package/resource` with dots of the package as folders.
pub(super) fn record_name(package: &str, resource: &str) -> String {
    let resource = resource.trim_start_matches('/');
    if package.is_empty() {
        return resource.to_owned();
    }
    format!("{}/{resource}", package.replace('.', "/"))
}

/// A module's source as Python's `linecache` reads it: UTF-8 (a BOM
/// dropped), universal newlines.
pub(crate) fn read_source(path: &Path) -> Result<String, ExportError> {
    let bytes = std::fs::read(path).map_err(|source| ExportError::Read {
        path: path.to_owned(),
        source,
    })?;
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let text = String::from_utf8_lossy(bytes);
    Ok(if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.into_owned()
    })
}

pub(super) fn collect_py_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_py_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "py") {
            out.push(path);
        }
    }
    Ok(())
}
