//! `tpkg inspect`: what a package holds, as text or JSON.
//!
//! The JSON shape is a contract (issue 3): `prefix`, `records` (sorted
//! names without the package folder), `extern_modules`, `python_version`,
//! `version`, plus the details below. Fields are only ever added.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use tpkg::archive::{Compression, PackageFormat, PackageMetadata, PackageReader};
use tpkg::formats::{FileFormat, Sniffed};

/// Everything `tpkg inspect` reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The package path as given.
    pub path: String,
    /// The PyTorch file format, told from the content: `package`,
    /// `torch.save`, `torch.save-legacy`, `torchscript`, `pt2`, `pickle`.
    pub format: FileFormat,
    /// `zip` or `directory` for zip formats; `stream` otherwise.
    pub container: &'static str,
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
    pub compression: &'static str,
    /// Data offset in the zip file (null for folders).
    pub offset: Option<u64>,
    /// CRC-32 from the zip header (null for folders).
    pub crc32: Option<u32>,
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
                    Compression::Stored => "stored",
                    Compression::Deflated => "deflated",
                },
                offset: record.data_offset,
                crc32: record.crc32,
            })
            .collect();
        Ok(Report {
            path: path.display().to_string(),
            format: tpkg::formats::zip_format(&reader),
            container: match reader.format() {
                PackageFormat::Zip => "zip",
                PackageFormat::Directory => "directory",
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
        })
    }

    /// A file that is not a zip: its format and size (its pickles are
    /// read by `show`, `tensors` and `audit`).
    fn of_stream(path: &Path, format: FileFormat) -> anyhow::Result<Report> {
        let size = std::fs::metadata(path)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?
            .len();
        Ok(Report {
            path: path.display().to_string(),
            format,
            container: "stream",
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
        })
    }

    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let missing = || "(absent)".to_owned();
        writeln!(
            out,
            "file            {} ({}, {})",
            self.path, self.format, self.container
        )?;
        if self.container == "stream" {
            return writeln!(out, "size            {} bytes", self.total_size);
        }
        writeln!(out, "folder          {}", self.prefix)?;
        writeln!(
            out,
            "format version  {}",
            self.version.map_or_else(missing, |v| v.to_string())
        )?;
        writeln!(
            out,
            "python          {}",
            self.python_version.clone().unwrap_or_else(missing)
        )?;
        writeln!(
            out,
            "byte order      {}",
            self.byteorder.clone().unwrap_or_else(missing)
        )?;
        let externs = match &self.extern_modules {
            None if self.format != FileFormat::Package => "(not a package)".to_owned(),
            None => "(absent: PyTorch cannot load this package)".to_owned(),
            Some(modules) if modules.iter().all(String::is_empty) => "(none)".to_owned(),
            Some(modules) => modules.join(", "),
        };
        writeln!(out, "extern modules  {externs}")?;
        writeln!(
            out,
            "records         {} ({} bytes)",
            self.record_count, self.total_size
        )?;
        let width = self.entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
        for entry in &self.entries {
            let note = if entry.compression == "stored" {
                String::new()
            } else {
                format!("  {} ({} bytes)", entry.compression, entry.compressed_size)
            };
            writeln!(out, "  {:<width$}  {:>12}{note}", entry.name, entry.size)?;
        }
        Ok(())
    }
}
