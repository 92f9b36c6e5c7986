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
use tpkg_archive::{PackageMetadata, PackageReader, Progress, RecordInfo};

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
    verify_with(reader, VerifyOptions::default())
}

/// What [`verify_with`] takes besides the package: a progress hook (none
/// by default).
///
/// ```
/// use tpkg::archive::{Progress, ProgressEvent};
/// use tpkg::verify::VerifyOptions;
///
/// let hook = |event: ProgressEvent| eprint!("\r{} of {} bytes", event.done, event.total);
/// let options = VerifyOptions::default().with_progress(Progress::new(&hook));
/// assert!(options.progress.is_active());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyOptions<'a> {
    /// Called after each record with the bytes checked so far (of the sum
    /// of the records' sizes).
    pub progress: Progress<'a>,
}

impl<'a> VerifyOptions<'a> {
    /// Reports progress to `progress`.
    #[must_use]
    pub fn with_progress(mut self, progress: Progress<'a>) -> Self {
        self.progress = progress;
        self
    }
}

/// [`verify`] with options: the same checks, with progress reported after
/// each record.
///
/// ```
/// use std::sync::Mutex;
/// use tpkg::archive::{PackageReader, PackageWriter, Progress, ProgressEvent, WriteOptions};
/// use tpkg::verify::{VerifyOptions, verify_with};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
/// writer.write_record("m/ok.py", b"import os\n")?;
/// let reader = PackageReader::from_bytes(writer.finish()?)?;
/// let done = Mutex::new(Vec::new());
/// let hook = |event: ProgressEvent| done.lock().unwrap().push(event.done);
/// let report = verify_with(&reader, VerifyOptions::default().with_progress(Progress::new(&hook)));
/// assert!(report.is_ok());
/// let total: u64 = reader.records().iter().map(|record| record.size).sum();
/// assert_eq!(done.lock().unwrap().last(), Some(&total));
/// # Ok(()) }
/// ```
pub fn verify_with(reader: &PackageReader, options: VerifyOptions<'_>) -> VerifyReport {
    let mut report = VerifyReport::default();
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
    let total = reader.records().iter().map(|info| info.size).sum();
    let progress = options.progress.counter(total);
    for info in reader.records() {
        report.records += 1;
        check_record(reader, info, &mut report, &mut problems);
        progress.add(info.size);
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

fn problem(record: &str, problem: String) -> Problem {
    Problem {
        record: record.to_owned(),
        problem,
    }
}

/// One record: read through (size and CRC-32), then parsed if it is a
/// source or a pickle.
fn check_record(
    reader: &PackageReader,
    info: &RecordInfo,
    report: &mut VerifyReport,
    problems: &mut Vec<Problem>,
) {
    let name = info.name.as_str();
    if let Err(error) = reader.check_record(name) {
        problems.push(problem(name, crate::error_chain(&error)));
        return;
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
        return;
    }
    // Storages and other resources were checked by the stream above;
    // read whole only what is parsed next (peeking decides).
    let may_be_pickle = || {
        (!name.starts_with(".data/") || name.ends_with(".pkl"))
            && starts_like_pickle(&records::peek(reader, name))
    };
    if !is_source && !may_be_pickle() {
        return;
    }
    let bytes = match reader.read(name) {
        Ok(bytes) => bytes,
        Err(error) => {
            problems.push(problem(name, crate::error_chain(&error)));
            return;
        }
    };
    if is_source {
        report.sources += 1;
        match std::str::from_utf8(&bytes) {
            Ok(source) => {
                // The package relative imports resolve against.
                let module = records::module_of_record(name).unwrap_or_default();
                let package = tpkg_pysource::package_of(&module, name.ends_with("/__init__.py"));
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

    #[test]
    fn progress_reports_increasing_bytes_ending_at_the_total_even_past_a_bad_record() {
        use std::sync::Mutex;
        use tpkg_archive::{Progress, ProgressEvent};

        let mut writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
        writer.write_record("m/ok.py", b"x = 1\n").unwrap();
        writer.write_record("m/bad.py", b"def f(:\n").unwrap();
        writer
            .write_record(".data/0.storage", &[1u8; 300_000])
            .unwrap();
        writer.write_extern_modules(&["torch"]).unwrap();
        let reader = PackageReader::from_bytes(writer.finish().unwrap()).unwrap();
        let total: u64 = reader.records().iter().map(|info| info.size).sum();

        let seen = Mutex::new(Vec::new());
        let hook = |event: ProgressEvent| seen.lock().unwrap().push(event);
        let options = super::VerifyOptions::default().with_progress(Progress::new(&hook));
        let report = super::verify_with(&reader, options);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert_eq!(report, super::verify(&reader), "the hook changes nothing");
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), reader.records().len() + 1);
        assert!(seen.iter().all(|event| event.total == total));
        assert!(seen.windows(2).all(|pair| pair[0].done <= pair[1].done));
        assert!(
            seen.windows(2)
                .any(|pair| pair[1].done - pair[0].done == 300_000)
        );
        assert_eq!(seen.last().map(|event| event.done), Some(total));
    }
}
