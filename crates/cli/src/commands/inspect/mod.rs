//! `tpkg inspect`: what a package holds, as text or JSON.
//!
//! The JSON shape is a contract (issue 3): `prefix`, `records` (sorted
//! names without the package folder), `extern_modules`, `python_version`,
//! `version`, `format`, `container`, plus the details below. Fields are
//! only ever added.
//!
//! `summary` tells what a file that is not a package holds (null for
//! packages): see [`Summary`]. Reading it never fails the command: what
//! cannot be read is listed in its `errors`.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use tpkg::archive::{Compression, PackageFormat, PackageMetadata, PackageReader};
use tpkg::formats::{FileFormat, Sniffed};
use tpkg::tensors::PackageTensors;

pub use object::ObjectSummary;
pub use pt2::Pt2Summary;
pub use torchscript::TorchScriptSummary;

mod object;
mod pt2;
mod summary;
mod torchscript;

/// `tpkg inspect PACKAGE [--json]`.
pub fn run(package: &Path, json: bool) -> anyhow::Result<()> {
    let report = Report::of(package)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if json {
        super::write_json(&mut out, &report)?;
    } else {
        report.write_text(&mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// Everything `tpkg inspect` reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The package path as given.
    pub path: String,
    /// The PyTorch file format, told from the content: `package`,
    /// `torch.save`, `torch.save-legacy`, `torchscript`, `pt2`, `pickle`.
    pub format: FileFormat,
    /// `zip` or `directory` for zip formats; `stream` otherwise.
    pub container: Container,
    /// The package folder.
    pub prefix: String,
    /// Record names without the folder, sorted.
    pub records: Vec<String>,
    /// As PyTorch's importer reads them (`[""]` when the package has none).
    pub extern_modules: Option<Vec<String>>,
    /// The writer's Python version.
    pub python_version: Option<String>,
    /// Format version (6).
    pub version: Option<u64>,
    /// `little` or `big`; absent in packages from PyTorch before 2.1.
    pub byteorder: Option<String>,
    /// The archive's serialization id; absent before PyTorch 2.1.
    pub serialization_id: Option<String>,
    /// Number of records.
    pub record_count: usize,
    /// Sum of record sizes in bytes.
    pub total_size: u64,
    /// Every record in archive order, with its layout.
    pub entries: Vec<Entry>,
    /// What the file holds, by format; null for packages.
    pub summary: Option<Summary>,
    /// The summary block of every format ([`tpkg::inspect::Summary`]):
    /// versions, pickles and what each holds, tensors by dtype, a
    /// package's module counts.
    pub overview: tpkg::inspect::Summary,
}

/// One record's layout.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// Name without the folder.
    pub name: String,
    /// Content size in bytes.
    pub size: u64,
    /// Bytes in the archive.
    pub compressed_size: u64,
    /// `stored` or `deflated`.
    pub compression: EntryCompression,
    /// Data offset in the zip file (null for folders).
    pub offset: Option<u64>,
    /// CRC-32 from the zip header (null for folders).
    pub crc32: Option<u32>,
}

/// How a file's records are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// A zip file.
    Zip,
    /// PyTorch's directory form of a package.
    Directory,
    /// Not a zip: a legacy `torch.save` or a pickle file.
    Stream,
}

/// How a record is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryCompression {
    /// As is.
    Stored,
    /// Deflated.
    Deflated,
}

impl std::fmt::Display for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Container::Zip => "zip",
            Container::Directory => "directory",
            Container::Stream => "stream",
        })
    }
}

impl std::fmt::Display for EntryCompression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EntryCompression::Stored => "stored",
            EntryCompression::Deflated => "deflated",
        })
    }
}

impl Report {
    pub fn of(path: &Path) -> anyhow::Result<Report> {
        let format = match tpkg::formats::sniff_path(path)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?
        {
            Sniffed::Zip => None,
            Sniffed::LegacyStream | Sniffed::Tar => Some(FileFormat::TorchSaveLegacy),
            Sniffed::Pickle => Some(FileFormat::Pickle),
        };
        if let Some(format) = format {
            return Self::of_stream(path, format);
        }
        let reader = PackageReader::open(path)?;
        let metadata = PackageMetadata::read(&reader)?;
        let mut records: Vec<String> = reader.records().iter().map(|r| r.name.clone()).collect();
        records.sort();
        let entries: Vec<Entry> = reader
            .records()
            .iter()
            .map(|record| Entry {
                name: record.name.clone(),
                size: record.size,
                compressed_size: record.compressed_size,
                compression: match record.compression {
                    Compression::Stored => EntryCompression::Stored,
                    Compression::Deflated => EntryCompression::Deflated,
                },
                offset: record.data_offset,
                crc32: record.crc32,
            })
            .collect();
        let format = tpkg::formats::zip_format(&reader);
        Ok(Report {
            path: path.display().to_string(),
            format,
            container: match reader.format() {
                PackageFormat::Zip => Container::Zip,
                PackageFormat::Directory => Container::Directory,
            },
            prefix: reader.prefix().to_owned(),
            record_count: records.len(),
            total_size: entries.iter().map(|entry| entry.size).sum(),
            records,
            extern_modules: metadata.extern_modules,
            python_version: metadata.python_version,
            version: metadata.version,
            byteorder: metadata.byteorder,
            serialization_id: metadata.serialization_id,
            entries,
            summary: Summary::of_zip(&reader, format),
            overview: tpkg::inspect::summarize(path),
        })
    }

    /// A file that is not a zip: its format, size and summary.
    fn of_stream(path: &Path, format: FileFormat) -> anyhow::Result<Report> {
        let size = std::fs::metadata(path)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?
            .len();
        let summary = match format {
            FileFormat::Pickle => ObjectSummary::of_pickles(path),
            _ => ObjectSummary::of_legacy(path),
        };
        Ok(Report {
            path: path.display().to_string(),
            format,
            container: Container::Stream,
            prefix: String::new(),
            records: Vec::new(),
            extern_modules: None,
            python_version: None,
            version: None,
            byteorder: None,
            serialization_id: None,
            record_count: 0,
            total_size: size,
            entries: Vec::new(),
            summary: Some(Summary::Object(summary)),
            overview: tpkg::inspect::summarize(path),
        })
    }

    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let missing = || "(absent)".to_owned();
        writeln!(out, "file            {}", self.path)?;
        summary::write_overview(out, &self.overview, self.container)?;
        if self.container == Container::Stream {
            writeln!(out, "size            {}", human_bytes(self.total_size))?;
            return match &self.summary {
                Some(summary) => summary.write_text(out, &self.overview),
                None => Ok(()),
            };
        }
        writeln!(out)?;
        writeln!(out, "folder          {}", self.prefix)?;
        if self.overview.format_version.is_none() {
            writeln!(
                out,
                "format version  {}",
                self.version.map_or_else(missing, |v| v.to_string())
            )?;
        }
        if let Some(id) = &self.serialization_id {
            writeln!(out, "serialization   {id}")?;
        }
        let externs = match &self.extern_modules {
            None if self.format != FileFormat::Package => "(not a package)".to_owned(),
            None => "(absent: PyTorch cannot load this package)".to_owned(),
            Some(modules) if modules.iter().all(String::is_empty) => "(none)".to_owned(),
            Some(modules) => modules.join(", "),
        };
        writeln!(out, "extern modules  {externs}")?;
        if let Some(summary) = &self.summary {
            summary.write_text(out, &self.overview)?;
        }
        writeln!(
            out,
            "records         {} ({})",
            self.record_count,
            human_bytes(self.total_size)
        )?;
        let width = self.entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
        for entry in &self.entries {
            let note = if entry.compression == EntryCompression::Stored {
                String::new()
            } else {
                format!(
                    "  {} to {}",
                    entry.compression,
                    human_bytes(entry.compressed_size)
                )
            };
            writeln!(
                out,
                "  {:<width$}  {:>10}{note}",
                entry.name,
                human_bytes(entry.size)
            )?;
        }
        Ok(())
    }
}

pub use summary::human_bytes;

/// What a file that is not a package holds, by format. Every field of a
/// format's summary is always present (null when it could not be read;
/// `errors` says why).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Summary {
    /// `torch.save` (zip and legacy) and pickle files.
    Object(ObjectSummary),
    /// TorchScript files.
    TorchScript(TorchScriptSummary),
    /// `.pt2` archives.
    Pt2(Pt2Summary),
}

/// Tensors of a main object.
#[derive(Debug, Default, Serialize)]
pub struct TensorStats {
    /// How many.
    pub count: usize,
    /// Their elements' bytes (views of one storage each counted).
    pub bytes: u64,
    /// Distinct storages they view.
    pub storages: usize,
    /// Those storages' bytes.
    pub storage_bytes: u64,
    /// Tensors per dtype.
    pub dtypes: BTreeMap<&'static str, usize>,
}

impl TensorStats {
    fn of(tensors: &PackageTensors<'_>) -> TensorStats {
        let mut stats = TensorStats::default();
        let mut seen = HashSet::new();
        for index in 0..tensors.len() {
            let Ok(view) = tensors.view(index) else {
                continue;
            };
            stats.count += 1;
            let element = view.dtype().element_size() as u64;
            stats.bytes = stats
                .bytes
                .saturating_add(view.numel().saturating_mul(element));
            *stats.dtypes.entry(view.dtype().name()).or_default() += 1;
            if seen.insert(view.spec().storage.key.clone()) {
                stats.storages += 1;
                stats.storage_bytes += view.storage_bytes().len() as u64;
            }
        }
        stats
    }
}

fn error_text(error: &dyn std::error::Error) -> String {
    tpkg::error_chain(error)
}

fn write_errors(out: &mut impl Write, errors: &[String]) -> io::Result<()> {
    for error in errors {
        writeln!(out, "error           {error}")?;
    }
    Ok(())
}

impl Summary {
    /// The summary of an opened zip of `format` (none for packages).
    fn of_zip(reader: &PackageReader, format: FileFormat) -> Option<Summary> {
        match format {
            FileFormat::TorchSave => Some(Summary::Object(ObjectSummary::of_zip(reader))),
            FileFormat::TorchScript => Some(Summary::TorchScript(TorchScriptSummary::of(reader))),
            FileFormat::Pt2 => Some(Summary::Pt2(Pt2Summary::of(reader))),
            _ => None,
        }
    }

    fn write_text(
        &self,
        out: &mut impl Write,
        overview: &tpkg::inspect::Summary,
    ) -> io::Result<()> {
        match self {
            Summary::Object(summary) => {
                // A checkpoint's keys are in the overview's pickle line.
                let listed = overview
                    .pickles
                    .first()
                    .is_some_and(|p| matches!(p.holds, tpkg::inspect::Holds::Checkpoint { .. }));
                summary.write_text(out, !listed)
            }
            Summary::TorchScript(summary) => summary.write_text(out),
            Summary::Pt2(summary) => summary.write_text(out),
        }
    }
}
