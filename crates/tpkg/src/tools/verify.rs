//! `verify`: everything in a package reads back, without running anything.
//!
//! Every record is read through and its size and CRC-32 checked; every
//! pickle (protocol 2 to 5 at the start of a non-source record) decodes,
//! and its tensors lie within their storages; every Python source parses
//! (newest syntax); the bookkeeping records are well formed. Problems are
//! collected, not stopped at, so one run lists them all.
//!
//! ```
//! use tpkg::archive::{PackageReader, PackageWriter, WriteOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
//! writer.write_record("m/ok.py", b"import os\n")?;
//! writer.write_record("m/bad.py", b"def f(:\n")?;
//! let reader = PackageReader::from_bytes(writer.finish()?)?;
//! let report = tpkg::verify::verify(&reader);
//! assert_eq!(report.sources, 2);
//! assert_eq!(report.problems.len(), 1);
//! assert_eq!(report.problems[0].record, "m/bad.py");
//! # Ok(()) }
//! ```

use serde::Serialize;
use tpkg_archive::{PackageMetadata, PackageReader};

use crate::files::records;
use crate::formats::starts_like_pickle;
use crate::tensors::PackageTensors;

/// One thing wrong with one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The record (without the package folder).
    pub record: String,
    /// What is wrong.
    pub problem: String,
}

/// What [`verify`] checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records read through (size and CRC-32 checked).
    pub records: usize,
    /// Pickles decoded.
    pub pickles: usize,
    /// Tensors checked against their storages.
    pub tensors: usize,
    /// Python sources parsed.
    pub sources: usize,
    /// Everything that failed.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// No problems.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the whole package. See the [module docs](self).
pub fn verify(reader: &PackageReader) -> VerifyReport {
    let mut report = VerifyReport::default();
    let problem = |record: &str, problem: String| Problem {
        record: record.to_owned(),
        problem,
    };
    let mut problems = Vec::new();
    match PackageMetadata::read(reader) {
        Err(error) => problems.push(problem("(bookkeeping)", crate::error_chain(&error))),
        // `PackageImporter.__init__` reads it unconditionally (an export
        // whose `with` block raised leaves a package without it).
        Ok(metadata)
            if metadata.extern_modules.is_none()
                && crate::formats::zip_format(reader) == crate::formats::FileFormat::Package =>
        {
            problems.push(problem(
                tpkg_archive::metadata::EXTERN_MODULES,
                "missing: PyTorch's PackageImporter refuses a package without it".to_owned(),
            ))
        }
        Ok(_) => {}
    }
    for info in reader.records() {
        let name = info.name.as_str();
        report.records += 1;
        if let Err(error) = reader.check_record(name) {
            problems.push(problem(name, crate::error_chain(&error)));
            continue;
        }
        // Only sources and pickles are read whole, and only up to their
        // limits; everything was already streamed through above.
        let is_source = name.ends_with(".py");
        let limit = if is_source {
            tpkg_pysource::MAX_SOURCE_BYTES as u64
        } else {
            records::MAX_PICKLE_BYTES
        };
        if info.size > limit {
            if is_source || starts_like_pickle(&records::peek(reader, name)) {
                problems.push(problem(
                    name,
                    format!("{} bytes: larger than the {limit}-byte limit", info.size),
                ));
            }
            continue;
        }
        // Storages and other resources were checked by the stream above;
        // read whole only what is parsed next (peeking decides).
        let may_be_pickle = || {
            (!name.starts_with(".data/") || name.ends_with(".pkl"))
                && starts_like_pickle(&records::peek(reader, name))
        };
        if !is_source && !may_be_pickle() {
            continue;
        }
        let bytes = match reader.read(name) {
            Ok(bytes) => bytes,
            Err(error) => {
                problems.push(problem(name, crate::error_chain(&error)));
                continue;
            }
        };
        if is_source {
            report.sources += 1;
            match std::str::from_utf8(&bytes) {
                Ok(source) => {
                    // The package relative imports resolve against.
                    let module = records::module_of_record(name).unwrap_or_default();
                    let package =
                        tpkg_pysource::package_of(&module, name.ends_with("/__init__.py"));
                    if let Err(error) = tpkg_pysource::scan_imports(source, package) {
                        problems.push(problem(name, crate::error_chain(&error)));
                    }
                }
                Err(error) => problems.push(problem(name, format!("source is not UTF-8: {error}"))),
            }
        } else {
            report.pickles += 1;
            match PackageTensors::load(reader, name) {
                Ok(tensors) => report.tensors += tensors.len(),
                Err(error) => problems.push(problem(name, crate::error_chain(&error))),
            }
        }
    }
    // A `.pt2` archive's weights are raw records described by JSON.
    if crate::formats::zip_format(reader) == crate::formats::FileFormat::Pt2 {
        match crate::pt2::pt2_tensors(reader) {
            Ok(tensors) => report.tensors += tensors.len(),
            Err(error) => problems.push(problem("data/weights", crate::error_chain(&error))),
        }
    }
    report.problems = problems;
    report
}

#[cfg(test)]
mod tests {
    use tpkg_archive::{PackageReader, PackageWriter, WriteOptions};

    #[test]
    fn a_package_without_extern_modules_fails_as_package_importer_does() {
        // What a PackageExporter whose `with` block raised leaves behind:
        // records, but no `.data/extern_modules` (renamed in both headers).
        let mut writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
        writer.write_record("m/ok.py", b"x = 1\n").unwrap();
        let mut bytes = writer.finish().unwrap();
        let name = b".data/extern_modules";
        let mut renamed = 0;
        for at in 0..bytes.len() - name.len() {
            if &bytes[at..at + name.len()] == name {
                bytes[at + name.len() - 1] = b'X';
                renamed += 1;
            }
        }
        assert_eq!(renamed, 2);
        let reader = PackageReader::from_bytes(bytes).unwrap();
        let report = super::verify(&reader);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert_eq!(report.problems[0].record, ".data/extern_modules");

        let mut writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
        writer.write_record("m/ok.py", b"x = 1\n").unwrap();
        writer.write_extern_modules(&["torch"]).unwrap();
        let reader = PackageReader::from_bytes(writer.finish().unwrap()).unwrap();
        assert!(super::verify(&reader).is_ok());
    }
}
