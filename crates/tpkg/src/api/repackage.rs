//! Repackaging: PyTorch's `PackageExporter(out, importer=(importer,
//! sys_importer))` over a whole loaded package, statically.
//!
//! Every interned source is saved again (and scanned, so the patterns apply
//! to its dependencies afresh), every pickle is saved again with its
//! dependencies taken from its globals — mangled globals
//! (`<torch_package_N>.model.Net`, left by objects of a loaded package)
//! demangled and the pickle re-encoded, others copied byte for byte —
//! storages and other records are copied once each, in the input's order.
//! Modules resolve first from the package's own sources, then from the
//! search path; the input's extern modules count as present. After the
//! caller's patterns, the input's own decisions apply: its extern modules
//! stay extern, its mocked modules stay mocked, the rest is interned.
//!
//! ```
//! use tpkg::exporter::PackageExporter;
//! use tpkg::importer::PackageImporter;
//! use tpkg::pysource::ModuleFinder;
//! use tpkg::repackage::{repackage, Rules};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let first = dir.path().join("first.pt");
//! let mut exporter = PackageExporter::create(&first, ModuleFinder::default())?;
//! exporter.save_source_string("model", "import os\n")?;
//! exporter.close()?;
//!
//! let second = dir.path().join("second.pt");
//! let importer = PackageImporter::open(&first)?;
//! let report = repackage(&importer, &second, ModuleFinder::default(), &Rules::default())?;
//! assert_eq!(report.interned, ["model"]);
//! assert_eq!(PackageImporter::open(&second)?.get_source("model")?, "import os\n");
//! # Ok(()) }
//! ```

use std::path::Path;

use tpkg_archive::{Durability, Progress, WriteOptions};
use tpkg_glob::Patterns;
use tpkg_pickle::{DecodeOptions, Symbolic, Value};
use tpkg_pysource::ModuleFinder;

use crate::exporter::{ExportError, PackageExporter, SourceOptions};
use crate::files::records::{self, MOCK_IMPL, SourceKind, module_of_record};
use crate::importer::{ImportError, PackageImporter};

/// Why repackaging failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepackError {
    /// Reading the input failed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A record of the input could not be read.
    #[error(transparent)]
    Archive(#[from] tpkg_archive::ArchiveError),
    /// Writing the output failed, or its dependency graph is broken.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The package's sources could not be staged for module resolution.
    #[error("staging the package's sources: {0}")]
    Stage(#[from] std::io::Error),
    /// A pickle with mangled globals could not be decoded or re-encoded.
    #[error("{record}: {reason}")]
    Pickle {
        /// The record.
        record: String,
        /// What failed.
        reason: String,
    },
}

/// The caller's patterns, applied before the input's own decisions (first
/// match wins, as in the exporter). None by default.
///
/// ```
/// use tpkg::digraph::Action;
/// use tpkg::repackage::Rules;
///
/// let rules = Rules::default()
///     .with_rule(Action::Extern, "numpy.**")
///     .with_rule(Action::Mock, "matplotlib.**");
/// assert_eq!(rules.rules.len(), 2);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Rules {
    /// `(action, pattern)` in order; actions are `intern`, `extern`,
    /// `mock`, `deny` (any other action denies).
    pub rules: Vec<(tpkg_digraph::Action, String)>,
}

impl Rules {
    /// These rules, then `action` for the modules `pattern` matches.
    #[must_use]
    pub fn with_rule(mut self, action: tpkg_digraph::Action, pattern: impl Into<String>) -> Self {
        self.rules.push((action, pattern.into()));
        self
    }
}

/// What a repackaging wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepackReport {
    /// Modules with source in the output.
    pub interned: Vec<String>,
    /// Extern modules of the output.
    pub externed: Vec<String>,
    /// Mocked modules of the output.
    pub mocked: Vec<String>,
    /// Pickles re-encoded because they named mangled globals.
    pub reencoded_pickles: Vec<String>,
}

/// Repackages `importer`'s package as `out` (atomically). See the [module
/// docs](self).
pub fn repackage(
    importer: &PackageImporter,
    out: &Path,
    finder: ModuleFinder,
    rules: &Rules,
) -> Result<RepackReport, RepackError> {
    repackage_with(importer, out, finder, rules, Durability::Fsync)
}

/// [`repackage`], fsyncing the package before it replaces `out` or not
/// (see [`WriteOptions::durable`]).
pub fn repackage_with(
    importer: &PackageImporter,
    out: &Path,
    finder: ModuleFinder,
    rules: &Rules,
    durability: Durability,
) -> Result<RepackReport, RepackError> {
    let options = RepackOptions::default().with_durability(durability);
    repackage_with_options(importer, out, finder, rules, options)
}

/// How [`repackage_with_options`] writes: durability (fsync by default)
/// and a progress hook (none by default).
///
/// ```
/// use tpkg::archive::{Durability, Progress, ProgressEvent};
/// use tpkg::repackage::RepackOptions;
///
/// let hook = |event: ProgressEvent| eprint!("\r{} of {} bytes", event.done, event.total);
/// let options = RepackOptions::default()
///     .with_durability(Durability::NoFsync)
///     .with_progress(Progress::new(&hook));
/// assert_eq!(options.durability, Durability::NoFsync);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepackOptions<'a> {
    /// Whether the package is fsynced before it replaces `out` (see
    /// [`WriteOptions::durable`]).
    pub durability: Durability,
    /// Called after each record of the input, with the bytes of input
    /// records done so far (of the sum of their sizes).
    pub progress: Progress<'a>,
}

impl<'a> RepackOptions<'a> {
    /// Whether the package is fsynced before it replaces `out`.
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

/// [`repackage`] with options: durability and a progress hook called
/// after each record of the input.
///
/// ```
/// use std::sync::Mutex;
/// use tpkg::archive::{Progress, ProgressEvent};
/// use tpkg::exporter::PackageExporter;
/// use tpkg::importer::PackageImporter;
/// use tpkg::pysource::ModuleFinder;
/// use tpkg::repackage::{RepackOptions, Rules, repackage_with_options};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let first = dir.path().join("first.pt");
/// let mut exporter = PackageExporter::create(&first, ModuleFinder::default())?;
/// exporter.save_source_string("model", "import os\n")?;
/// exporter.close()?;
///
/// let importer = PackageImporter::open(&first)?;
/// let last = Mutex::new(None);
/// let hook = |event: ProgressEvent| *last.lock().unwrap() = Some(event);
/// let options = RepackOptions::default().with_progress(Progress::new(&hook));
/// let out = dir.path().join("second.pt");
/// repackage_with_options(&importer, &out, ModuleFinder::default(), &Rules::default(), options)?;
/// let last = last.lock().unwrap().unwrap();
/// assert_eq!(last.done, last.total);
/// # Ok(()) }
/// ```
pub fn repackage_with_options(
    importer: &PackageImporter,
    out: &Path,
    finder: ModuleFinder,
    rules: &Rules,
    options: RepackOptions<'_>,
) -> Result<RepackReport, RepackError> {
    let durability = options.durability;
    let progress = options.progress;
    let reader = importer.reader();
    let externs = importer.extern_modules();

    // The package's sources, on disk, first on the search path.
    let staging = tempfile::tempdir()?;
    let mut sources = Vec::new();
    // Each source is read once: staged, kept for re-saving, or (a mock
    // stub) noted with its form.
    let mut mocked: Vec<String> = Vec::new();
    let mut mock_kinds = Vec::new();
    for module in importer.interned_modules() {
        let (source, kind) = importer.get_source_with_kind(&module)?;
        let path = staging.path().join(records::source_record(&module, kind));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Mock stubs are staged too, so references to them still resolve
        // (and meet the mock rule); their stubs are written anew.
        std::fs::write(&path, &source)?;
        if source == MOCK_IMPL {
            mocked.push(module);
            mock_kinds.push(kind);
        } else {
            sources.push((module, source, kind));
        }
    }
    let mut search = vec![staging.path().to_owned()];
    search.extend(finder.path().iter().cloned());
    let finder = finder
        .with_path(search)
        .with_known_modules(externs.iter().cloned());

    let mut write_options = WriteOptions::default();
    if durability == Durability::NoFsync {
        write_options = write_options.without_fsync();
    }
    if let Some(version) = importer.python_version() {
        write_options.python_version = version.to_owned();
    }
    let mut exporter = PackageExporter::create_with(out, finder, write_options)?;
    for (action, pattern) in &rules.rules {
        let pattern = pattern.as_str();
        match action {
            tpkg_digraph::Action::Intern => exporter.intern(pattern)?,
            tpkg_digraph::Action::Extern => exporter.extern_modules(pattern)?,
            tpkg_digraph::Action::Mock => exporter.mock(pattern)?,
            _ => exporter.deny(pattern)?,
        }
    }
    if !externs.is_empty() {
        exporter.extern_modules(Patterns::List(externs.clone()))?;
    }
    if !mocked.is_empty() {
        exporter.mock(Patterns::List(mocked.clone()))?;
    }
    for (module, kind) in mocked.iter().zip(mock_kinds) {
        exporter.set_mock_kind(module, kind);
    }
    exporter.intern("**")?;

    let mut report = RepackReport::default();
    let total = reader.records().iter().map(|record| record.size).sum();
    let progress = progress.counter(total);
    for record in reader.records() {
        save_record(
            &mut exporter,
            reader,
            record,
            &mocked,
            &sources,
            &mut report,
        )?;
        progress.add(record.size);
    }
    report.interned = exporter.interned_modules();
    report.externed = exporter.externed_modules();
    report.mocked = exporter.mocked_modules();
    exporter.close()?;
    Ok(report)
}

/// Records the repackaging writes itself, whatever the input holds.
const BOOKKEEPING: [&str; 5] = [
    ".data/extern_modules",
    ".data/python_version",
    ".data/version",
    ".data/serialization_id",
    "byteorder",
];

/// The interned sources (module, source, kind) of the input.
type Sources = [(String, String, SourceKind)];

/// Saves one record of the input: a source again (with its dependencies),
/// a pickle (demangled if it must be), anything else copied as it is;
/// bookkeeping and mock stubs are left to the exporter.
fn save_record(
    exporter: &mut PackageExporter,
    reader: &tpkg_archive::PackageReader,
    record: &tpkg_archive::RecordInfo,
    mocked: &[String],
    sources: &Sources,
    report: &mut RepackReport,
) -> Result<(), RepackError> {
    let name = record.name.as_str();
    if BOOKKEEPING.contains(&name) || name == "_mock.py" {
        return Ok(());
    }
    if let Some(module) = module_of_record(name) {
        if mocked.contains(&module) {
            return Ok(());
        }
        if let Some((_, source, kind)) = sources.iter().find(|(m, _, _)| *m == module) {
            let options = SourceOptions::default().with_kind(*kind);
            exporter.save_source_string_with(&module, source, options)?;
            return Ok(());
        }
    }
    // Storages and resources are streamed through; only pickles (small:
    // tensor data is out of band) are read whole.
    let head = records::peek(reader, name);
    if name.starts_with(".data/") || !is_pickle(&head) || record.size > records::MAX_PICKLE_BYTES {
        exporter.copy_raw_record(name, reader)?;
        return Ok(());
    }
    let bytes = reader.read(name)?;
    let (package, resource) = match name.rsplit_once('/') {
        Some((folder, file)) => (folder.replace('/', "."), file),
        None => (String::new(), name),
    };
    let pickle = match demangled(&bytes, name)? {
        Some(reencoded) => {
            report.reencoded_pickles.push(name.to_owned());
            reencoded
        }
        None => bytes.into_owned(),
    };
    exporter.save_pickle_bytes(&package, resource, &pickle)?;
    Ok(())
}

/// A pickle `save_pickle` accepts: protocol 3 or 4.
fn is_pickle(bytes: &[u8]) -> bool {
    matches!(bytes, [0x80, 3 | 4, ..])
}

/// The pickle re-encoded with demangled globals, or `None` if it names no
/// mangled global (it is then kept byte for byte).
fn demangled(bytes: &[u8], record: &str) -> Result<Option<Vec<u8>>, RepackError> {
    let globals = tpkg_pickle::scan_globals(bytes);
    if !globals.iter().any(|g| tpkg_mangling::is_mangled(&g.module)) {
        return Ok(None);
    }
    let failed = |reason: String| RepackError::Pickle {
        record: record.to_owned(),
        reason,
    };
    let mut graph = tpkg_pickle::decode_with(bytes, &DecodeOptions::default(), &Symbolic)
        .map_err(|e| failed(e.to_string()))?;
    let ids: Vec<_> = graph.iter().map(|(id, _)| id).collect();
    for id in ids {
        if let Value::Global { module, .. } = graph.get_mut(id)
            && tpkg_mangling::is_mangled(module)
        {
            *module = tpkg_mangling::demangle(module).to_owned();
        }
    }
    let protocol = bytes.get(1).copied().unwrap_or(3);
    tpkg_pickle::encode(&graph, protocol)
        .map(Some)
        .map_err(|e| failed(e.to_string()))
}
