//! `tpkg.audit`, `tpkg.inspect` and `tpkg.convert`: the CLI's commands
//! with its JSON shapes, as Python dicts.

use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use serde_json::{Value, json};
use tpkg::archive::{Compression, PackageFormat, PackageMetadata, PackageReader};
use tpkg::audit::{AuditReport, Level, audit_path};
use tpkg::formats::{FileFormat, PyTorchFile, Sniffed};

use crate::errors::{self, TpkgError};
use crate::safety;

/// What `tpkg audit` says of one file (its `verdict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Clean,
    Review,
    Unsafe,
    Unreadable,
}

impl Verdict {
    fn of(report: &AuditReport) -> Verdict {
        if report.is_unreadable() {
            return Verdict::Unreadable;
        }
        match report.worst() {
            Some(Level::Unsafe) => Verdict::Unsafe,
            Some(Level::Review) => Verdict::Review,
            _ => Verdict::Clean,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Review => "review",
            Verdict::Unsafe => "unsafe",
            Verdict::Unreadable => "unreadable",
        }
    }
}

/// Whether `path` is a folder to walk (not a package in directory form).
fn is_folder_of_files(path: &Path) -> bool {
    path.is_dir() && !path.join(".data").join("version").is_file()
}

/// Every file under `paths`, folders walked recursively in sorted order.
fn collect_files(paths: &[PathBuf]) -> PyResult<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    while let Some(path) = stack.pop() {
        if !is_folder_of_files(&path) {
            files.push(path);
            continue;
        }
        let read = |error: std::io::Error| errors::open(&path, &error);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&path)
            .map_err(read)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(read)?;
        entries.sort();
        stack.extend(entries.into_iter().rev().filter(|e| !e.is_symlink()));
    }
    Ok(files)
}

/// `_native.audit(paths, single, policy)`: `tpkg audit --json`'s object
/// for one file, or `{"files": [...], "summary": {...}}` for several.
#[pyfunction]
#[pyo3(signature = (paths, single, policy=None))]
pub(crate) fn audit<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    single: bool,
    policy: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let policy = safety::policy(policy.as_deref())?;
    let single = single && paths.len() == 1 && !is_folder_of_files(&paths[0]);
    let files = collect_files(&paths)?;
    let start = std::time::Instant::now();
    let reports: Vec<(PathBuf, AuditReport)> = py.detach(|| {
        files
            .iter()
            .map(|path| (path.clone(), audit_path(path, &policy)))
            .collect()
    });
    let to_json =
        |report: &AuditReport| serde_json::to_value(report).map_err(|e| errors::other(&e));
    if single && let Some((_, report)) = reports.first() {
        return crate::json::to_python(py, &to_json(report)?);
    }
    let mut counts = [0usize; 4];
    let mut results = Vec::new();
    for (path, report) in &reports {
        let verdict = Verdict::of(report);
        counts[verdict as usize] += 1;
        let mut value = to_json(report)?;
        if let Value::Object(map) = &mut value {
            map.insert("path".into(), json!(path.display().to_string()));
            map.insert("verdict".into(), json!(verdict.name()));
        }
        results.push(value);
    }
    let summary = json!({
        "files": reports.len(),
        "clean": counts[Verdict::Clean as usize],
        "review": counts[Verdict::Review as usize],
        "unsafe": counts[Verdict::Unsafe as usize],
        "unreadable": counts[Verdict::Unreadable as usize],
        "skipped": 0,
        "seconds": start.elapsed().as_secs_f64(),
    });
    crate::json::to_python(py, &json!({ "files": results, "summary": summary }))
}

/// `tpkg inspect --json`'s fields for a zip or package folder.
fn inspect_zip(path: &Path) -> Result<Value, PyErr> {
    let reader = PackageReader::open(path).map_err(|e| errors::open(path, &e))?;
    let metadata = PackageMetadata::read(&reader).map_err(|e| errors::open(path, &e))?;
    let mut records: Vec<String> = reader.records().iter().map(|r| r.name.clone()).collect();
    records.sort();
    let entries: Vec<Value> = reader
        .records()
        .iter()
        .map(|record| {
            json!({
                "name": record.name,
                "size": record.size,
                "compressed_size": record.compressed_size,
                "compression": match record.compression {
                    Compression::Stored => "stored",
                    Compression::Deflated => "deflated",
                },
                "offset": record.data_offset,
                "crc32": record.crc32,
            })
        })
        .collect();
    let total: u64 = reader.records().iter().map(|r| r.size).sum();
    Ok(json!({
        "path": path.display().to_string(),
        "format": tpkg::formats::zip_format(&reader).name(),
        "container": match reader.format() {
            PackageFormat::Zip => "zip",
            PackageFormat::Directory => "directory",
        },
        "prefix": reader.prefix(),
        "record_count": records.len(),
        "total_size": total,
        "records": records,
        "extern_modules": metadata.extern_modules,
        "python_version": metadata.python_version,
        "version": metadata.version,
        "byteorder": metadata.byteorder,
        "serialization_id": metadata.serialization_id,
        "entries": entries,
    }))
}

/// `_native.inspect(path)`: `tpkg inspect --json`'s contract fields
/// (`path`, `format`, `container`, `prefix`, `records`, `extern_modules`,
/// `python_version`, `version`, `byteorder`, `serialization_id`,
/// `record_count`, `total_size`, `entries`, `overview`) plus `tensors`,
/// the number of tensors of the main object (None when it has none to
/// read).
#[pyfunction]
pub(crate) fn inspect<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyAny>> {
    let value = py.detach(|| -> PyResult<Value> {
        let sniffed = tpkg::formats::sniff_path(&path).map_err(|e| errors::open(&path, &e))?;
        let mut value = match sniffed {
            Sniffed::Zip => inspect_zip(&path)?,
            Sniffed::LegacyStream | Sniffed::Tar | Sniffed::Pickle => {
                let size = std::fs::metadata(&path)
                    .map_err(|e| errors::open(&path, &e))?
                    .len();
                let format = match sniffed {
                    Sniffed::Pickle => FileFormat::Pickle,
                    _ => FileFormat::TorchSaveLegacy,
                };
                json!({
                    "path": path.display().to_string(), "format": format.name(),
                    "container": "stream", "prefix": "", "records": [],
                    "extern_modules": null, "python_version": null, "version": null,
                    "byteorder": null, "serialization_id": null, "record_count": 0,
                    "total_size": size, "entries": [],
                })
            }
        };
        let tensors = PyTorchFile::open(&path)
            .ok()
            .and_then(|file| file.tensors(None).ok().map(|t| t.len()));
        let overview =
            serde_json::to_value(tpkg::inspect::summarize(&path)).map_err(|e| errors::other(&e))?;
        if let Value::Object(map) = &mut value {
            map.insert("tensors".into(), json!(tensors));
            map.insert("overview".into(), overview);
        }
        Ok(value)
    })?;
    crate::json::to_python(py, &value)
}

/// The formats `tpkg.convert` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Safetensors,
    TorchSave,
    TorchScript,
}

impl Target {
    fn parse(name: &str) -> PyResult<Target> {
        match name {
            "safetensors" => Ok(Target::Safetensors),
            "pt" | "torch.save" => Ok(Target::TorchSave),
            "torchscript" => Ok(Target::TorchScript),
            other => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "to={other:?}: expected \"safetensors\", \"pt\" or \"torchscript\""
            ))),
        }
    }
}

/// `_native.convert(path, out, to, name)`: `tpkg convert`; returns
/// `{"tensors", "storages", "copied_contiguous"}` (the last two empty for
/// TorchScript).
#[pyfunction]
#[pyo3(signature = (path, out, to="safetensors", name=None))]
pub(crate) fn convert<'py>(
    py: Python<'py>,
    path: PathBuf,
    out: PathBuf,
    to: &str,
    name: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let target = Target::parse(to)?;
    let value = py.detach(|| -> PyResult<Value> {
        let file = PyTorchFile::open(&path).map_err(|e| errors::open(&path, &e))?;
        if target == Target::TorchScript {
            return to_torchscript(&path, &file, name.as_deref(), &out);
        }
        let tensors = file
            .tensors(name.as_deref())
            .map_err(|e| errors::open(&path, &e))?;
        let report = match target {
            Target::Safetensors => tpkg::convert::to_safetensors(&tensors, &out),
            Target::TorchSave | Target::TorchScript => tpkg::convert::to_torch_save(&tensors, &out),
        }
        .map_err(|e| errors::other(&e))?;
        Ok(json!({
            "tensors": report.tensors,
            "storages": report.storages,
            "copied_contiguous": report.copied_contiguous,
        }))
    })?;
    crate::json::to_python(py, &value)
}

/// `to="torchscript"`: the one ScriptModule pickled into the package's
/// pickle, written standalone.
fn to_torchscript(
    path: &Path,
    file: &PyTorchFile,
    name: Option<&str>,
    out: &Path,
) -> PyResult<Value> {
    let PyTorchFile::Zip { reader, format } = file else {
        return Err(TpkgError::new_err(format!(
            "{}: to=\"torchscript\" reads a ScriptModule pickled into a package",
            path.display()
        )));
    };
    let record = match name {
        Some(name) => name.to_owned(),
        None => tpkg::formats::main_pickle(reader, *format)
            .ok_or_else(|| TpkgError::new_err(format!("{}: no pickle to read", path.display())))?,
    };
    let ids = tpkg::torchscript::script_modules(reader, &record).map_err(|e| errors::other(&e))?;
    let [id] = ids.as_slice() else {
        return Err(TpkgError::new_err(format!(
            "{record} holds {} TorchScript modules ({ids:?}); expected exactly one",
            ids.len()
        )));
    };
    tpkg::torchscript::write_standalone(reader, id, out).map_err(|e| errors::other(&e))?;
    Ok(json!({ "tensors": null, "storages": null, "copied_contiguous": [], "script_module": id }))
}
