//! `audit`: what loading a package in PyTorch would run, without running it.
//!
//! A torch.package is code plus pickles, and `PackageImporter.load_pickle`
//! runs both: unpickling imports and calls every global the pickle names,
//! and importing a packaged module runs its top level. tpkg tells the user
//! exactly what that would be:
//!
//! - **pickles**, decoded by the real decoder (so `STACK_GLOBAL` operands
//!   reached through the memo, `BINSTRING`s and `INST`/`OBJ` are seen as
//!   they are, not guessed from opcodes): every global imported, every call
//!   (`REDUCE`), instantiation (`NEWOBJ`, `INST`, `OBJ`), `BUILD` (which
//!   calls `__setstate__`) and persistent id (`reduce_package` calls a
//!   function), each at its byte offset, classified as safe (what
//!   `torch.load(weights_only=True)` allows, and PyTorch's own module
//!   classes), unsafe (code execution, files, processes, network) or
//!   review (anything else);
//! - **sources** of interned modules: statements that run at import time,
//!   dynamic imports, imports of dangerous modules;
//! - **extern modules** a load imports from the host;
//! - **TorchScript** code, which libtorch runs on load;
//! - **the container**: anomalies that make zip parsers disagree.
//!
//! ```
//! use tpkg::archive::{PackageReader, PackageWriter, WriteOptions};
//! use tpkg::audit::{AuditPolicy, Level, audit};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
//! // pickle.dumps of os.system("id") by a hostile pickler (protocol 3)
//! writer.write_record("x/evil.pkl", b"\x80\x03cos\nsystem\nX\x02\x00\x00\x00id\x85R.")?;
//! let bytes = writer.finish()?;
//! let reader = PackageReader::from_bytes(bytes.clone())?;
//! let report = audit(&reader, Some(&bytes), &AuditPolicy::default());
//! assert_eq!(report.worst(), Some(Level::Unsafe));
//! let call = report.findings.iter().find(|f| f.kind == "call").unwrap();
//! assert_eq!((call.subject.as_str(), call.offset), ("os.system", Some(21))); // the REDUCE
//! # Ok(()) }
//! ```

mod classify;
mod findings;
mod pickles;
mod sources;
mod weights_only;

use std::path::Path;

use serde::{Deserialize, Serialize};
use tpkg_archive::PackageReader;
use tpkg_pickle::{DecodeOptions, Symbolic};

use crate::files::records::module_of_record;
use crate::formats::{FileFormat, Sniffed};
use classify::{Context, Reader};
use findings::{At, Findings};
use pickles::PickleAudit;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Known harmless (tensor rebuilds, plain data, PyTorch's classes).
    Safe,
    /// Not known either way: a human should look.
    Review,
    /// Runs code, or touches files, processes or the network.
    Unsafe,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Safe => "safe",
            Level::Review => "review",
            Level::Unsafe => "unsafe",
        })
    }
}

/// One thing a load would do, or one oddity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad.
    pub level: Level,
    /// `import`, `call`, `instantiate`, `setstate`, `persistent-id`,
    /// `import-time-code`, `dynamic-import`, `dangerous-import`, `extern`,
    /// `torchscript`, `container`, `unreadable`.
    pub kind: &'static str,
    /// The record (without the package folder), if any.
    pub record: Option<String>,
    /// Byte offset: in the pickle for pickle findings, in the file for
    /// container findings.
    pub offset: Option<usize>,
    /// 1-based line, for source findings.
    pub line: Option<usize>,
    /// What is imported, called or found (`os.system`, a module, ...).
    pub subject: String,
    /// Why it has this level.
    pub reason: String,
    /// How many times the same thing happens in the record (the offset is
    /// the first's).
    pub count: usize,
}

/// What [`audit`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// The file's format, when it was told ([`audit_path`]).
    pub format: Option<FileFormat>,
    /// Every finding, records in archive order.
    pub findings: Vec<Finding>,
    /// Pickles decoded.
    pub pickles: usize,
    /// Sources parsed.
    pub sources: usize,
}

impl AuditReport {
    /// The most severe level found, if any finding.
    pub fn worst(&self) -> Option<Level> {
        self.findings.iter().map(|f| f.level).max()
    }

    /// Whether some part of the file could not be read (an `unreadable`
    /// finding, or a record the container does not give back): such a
    /// file is never clean, whatever else was found.
    pub fn is_unreadable(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.kind == "unreadable" && f.level == Level::Unsafe)
    }
}

/// The user's additions to the built-in classification (`--policy FILE`):
/// `{"safe": ["mymodel.Net", "mymodel.*"], "unsafe": ["numpy.load"]}`.
/// A pattern is `module.name`, or `module.*` for everything in a module
/// (and its submodules). Unsafe entries win over safe ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditPolicy {
    /// Globals to treat as safe.
    #[serde(default)]
    pub safe: Vec<String>,
    /// Globals to treat as unsafe.
    #[serde(default)]
    pub unsafe_: Vec<String>,
}

impl AuditPolicy {
    /// Reads a policy from JSON (`{"safe": [...], "unsafe": [...]}`).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            safe: Vec<String>,
            #[serde(default, rename = "unsafe")]
            unsafe_: Vec<String>,
        }
        let raw: Raw = serde_json::from_str(text)?;
        Ok(AuditPolicy {
            safe: raw.safe,
            unsafe_: raw.unsafe_,
        })
    }

    pub(crate) fn matches(patterns: &[String], qualified: &str) -> bool {
        patterns.iter().any(|p| match p.strip_suffix(".*") {
            Some(module) => qualified
                .strip_prefix(module)
                .is_some_and(|rest| rest.starts_with('.')),
            None => p == qualified,
        })
    }
}

/// Deepest nesting of files in files audited (a torch.save inside a
/// pickle's bytes inside a `.pt2`, ...).
const MAX_NESTED_DEPTH: usize = 4;

/// The container anomalies of a zip file as findings (all unsafe: they let
/// two readers see different packages in the same bytes).
pub fn container_findings(bytes: &[u8]) -> Vec<Finding> {
    let mut findings = Findings::default();
    add_container_findings(bytes, &mut findings);
    findings.list
}

fn add_container_findings(bytes: &[u8], findings: &mut Findings) {
    for anomaly in tpkg_archive::zip_anomalies(bytes) {
        findings.add(
            Level::Unsafe,
            "container",
            At {
                record: anomaly.record.as_deref(),
                offset: usize::try_from(anomaly.offset).ok(),
                line: None,
            },
            anomaly.kind.as_str().to_owned(),
            anomaly.detail,
        );
    }
}

/// Audits any PyTorch file, told by content: a zip (package, torch.save,
/// TorchScript, `.pt2`), a legacy `torch.save`, a pickle file. A file that
/// cannot be opened gives an unsafe `unreadable` finding on `(file)`
/// (with the container's anomalies, when it is a damaged zip): unreadable
/// never reads as clean.
///
/// ```no_run
/// use tpkg::audit::{AuditPolicy, Level, audit_path};
/// let report = audit_path("model.pt".as_ref(), &AuditPolicy::default());
/// if report.worst() == Some(Level::Unsafe) {
///     eprintln!("refusing model.pt");
/// }
/// ```
pub fn audit_path(path: &Path, policy: &AuditPolicy) -> AuditReport {
    let unreadable = |error: &dyn std::error::Error, findings: Vec<Finding>| {
        let mut all = Findings::default();
        all.list = findings;
        all.unreadable(Level::Unsafe, "(file)", crate::error_chain(error));
        AuditReport {
            findings: all.list,
            ..AuditReport::default()
        }
    };
    let sniffed = match crate::formats::sniff_path(path) {
        Ok(sniffed) => sniffed,
        Err(error) => return unreadable(&error, Vec::new()),
    };
    match sniffed {
        Sniffed::Zip => match PackageReader::open(path) {
            Ok(reader) => {
                let mut report = audit(&reader, reader.zip_bytes(), policy);
                report.format = Some(crate::formats::zip_format(&reader));
                report
            }
            Err(error) => {
                // The container may still say why.
                let anomalies = std::fs::read(path)
                    .map(|bytes| container_findings(&bytes))
                    .unwrap_or_default();
                unreadable(&error, anomalies)
            }
        },
        Sniffed::LegacyStream | Sniffed::Tar => {
            let mut report = match crate::legacy::LegacyFile::open(path) {
                Ok(file) => audit_legacy(&file, policy),
                Err(_) => match std::fs::read(path) {
                    Ok(bytes) => audit_stream(&bytes, policy),
                    Err(error) => unreadable(&error, Vec::new()),
                },
            };
            report.format = Some(FileFormat::TorchSaveLegacy);
            report
        }
        Sniffed::Pickle => {
            let mut report = match std::fs::read(path) {
                Ok(bytes) => audit_stream(&bytes, policy),
                Err(error) => unreadable(&error, Vec::new()),
            };
            report.format = Some(FileFormat::Pickle);
            report
        }
    }
}

/// Audits a zip format or package folder: pickles, sources, externs,
/// TorchScript and, given the file's bytes (`reader.zip_bytes()` for a
/// zip), the container. See the [module docs](self).
pub fn audit(reader: &PackageReader, file: Option<&[u8]>, policy: &AuditPolicy) -> AuditReport {
    audit_zip(reader, file, policy, 0)
}

fn audit_zip(
    reader: &PackageReader,
    file: Option<&[u8]>,
    policy: &AuditPolicy,
    depth: usize,
) -> AuditReport {
    let mut findings = Findings::default();
    let mut report = AuditReport::default();
    if let Some(bytes) = file {
        add_container_findings(bytes, &mut findings);
    }
    let format = crate::formats::zip_format(reader);
    // Only a package's loader imports its sources (a TorchScript file's
    // `code/` is TorchScript); a mocked module's stub runs nothing.
    let interned: Vec<String> = if format == FileFormat::Package {
        reader
            .records()
            .iter()
            .filter(|r| !r.name.starts_with(".data/") && r.name.ends_with(".py"))
            .filter(|r| !sources::is_mock_stub(reader, &r.name))
            .filter_map(|r| module_of_record(&r.name))
            .collect()
    } else {
        Vec::new()
    };
    for module in &interned {
        if classify::shadows(module) {
            findings.add(
                Level::Unsafe,
                "shadowing",
                At::default(),
                module.clone(),
                "the package interns a module of this name: its globals are the package's code, not the real module's".into(),
            );
        }
    }
    let mut torchscript_code = false;
    let mut package_calls = Vec::new();
    let mut interned_sources: Vec<(String, String, String)> = Vec::new();
    for info in reader.records() {
        let name = info.name.as_str();
        let torchscript = format == FileFormat::TorchScript || name.starts_with(".data/ts_code/");
        check_record(reader, name, &mut findings);
        let is_storage = (name.starts_with(".data/") && name.ends_with(".storage"))
            || (format != FileFormat::Package
                && name.starts_with("data/")
                && !name.ends_with(".pkl")
                && !name.ends_with(".json"));
        if is_storage {
            // Raw tensor bytes; a file stored there is still looked at.
            if let Ok(head) = reader.read_range(name, 0, info.size.min(16))
                && nested_kind(&head).is_some()
            {
                audit_nested_record(reader, name, policy, depth, &mut findings);
            }
            continue;
        }
        let is_source = name.ends_with(".py");
        if torchscript && is_source {
            torchscript_code = true;
        }
        let limit = if is_source {
            tpkg_pysource::MAX_SOURCE_BYTES as u64
        } else {
            crate::files::records::MAX_PICKLE_BYTES
        };
        if info.size > limit {
            let head = crate::files::records::peek(reader, name);
            if is_source || name.ends_with(".pkl") || looks_like_pickle_head(&head) {
                findings.unreadable(
                    Level::Unsafe,
                    name,
                    format!("{} bytes: too large to audit (limit {limit})", info.size),
                );
            }
            continue;
        }
        let bytes = match reader.read(name) {
            Ok(bytes) => bytes,
            Err(error) => {
                findings.unreadable(Level::Unsafe, name, crate::error_chain(&error));
                continue;
            }
        };
        if nested_kind(&bytes).is_some_and(|kind| kind != Sniffed::Pickle) {
            nested_audit(&bytes, name, policy, depth + 1, false, &mut findings);
            continue;
        }
        let reader_kind = if torchscript {
            Reader::TorchScript
        } else {
            Reader::Python
        };
        let ctx = Context {
            policy,
            interned: &interned,
            reader: reader_kind,
        };
        if is_source {
            report.sources += 1;
            if torchscript {
                sources::audit_torchscript_code(name, &bytes, &mut findings);
            } else if sources::audit_source(name, &bytes, &mut findings) {
                if let (Some(module), Ok(text)) =
                    (module_of_record(name), std::str::from_utf8(&bytes))
                {
                    interned_sources.push((module, name.to_owned(), text.to_owned()));
                }
            } else {
                // Not Python: a pickle stored under a source's name is
                // still loaded as one (CVE-2025-1889: never trust names).
                audit_record_pickle(
                    &bytes,
                    name,
                    ctx,
                    depth,
                    true,
                    &mut report,
                    &mut findings,
                    &mut package_calls,
                );
            }
            continue;
        }
        // Whatever the name: every record that decodes as a pickle is
        // audited (protocols 0 and 1 have no header to tell them by).
        let named = name.ends_with(".pkl") || looks_like_pickle_head(&bytes);
        audit_record_pickle(
            &bytes,
            name,
            ctx,
            depth,
            named,
            &mut report,
            &mut findings,
            &mut package_calls,
        );
    }
    // What the package's own code runs: at import, and in the functions
    // and classes the pickles call.
    let package_sources = sources::PackageSources {
        modules: interned_sources
            .iter()
            .filter(|(module, _, _)| interned.contains(module))
            .map(|(module, record, text)| (module.clone(), (record.as_str(), text.as_str())))
            .collect(),
    };
    for (module, _, _) in &interned_sources {
        package_sources.audit_import_time(module, &mut findings);
    }
    for (module, name, use_) in &package_calls {
        let (member, why) = match use_ {
            classify::Use::SetState => (
                format!("{name}.__setstate__"),
                "a pickle BUILDs it (its __setstate__ runs)",
            ),
            classify::Use::Instantiate => (format!("{name}.__new__"), "a pickle instantiates it"),
            _ => (name.clone(), "a pickle calls it"),
        };
        package_sources.audit_package_call(module, &member, why, &mut findings);
    }
    if torchscript_code {
        findings.add(
            Level::Review,
            "torchscript",
            At::default(),
            "TorchScript".into(),
            "TorchScript code: libtorch compiles and runs it on load".into(),
        );
    }
    extern_findings(reader, &mut findings);
    report.findings = findings.list;
    report
}

/// Reads a record through once, checking sizes and CRC-32: PyTorch checks
/// neither, so a mismatch is reported and the record audited as read.
fn check_record(reader: &PackageReader, name: &str, findings: &mut Findings) {
    let checked = match reader.open_record_verified(name) {
        Ok(mut record) => std::io::copy(&mut record, &mut std::io::sink())
            .map(|_| ())
            .map_err(|e| crate::error_chain(&e)),
        Err(error) => Err(crate::error_chain(&error)),
    };
    if let Err(error) = checked {
        findings.add(
            Level::Unsafe,
            "container",
            At::record(name),
            "unreadable-record".into(),
            error,
        );
    }
}

/// A record's bytes as a pickle. A pickle that fails to decode is still
/// audited as far as it goes (CPython has run those opcodes when it fails)
/// and is unsafe `unreadable`; bytes that are no pickle are left alone,
/// unless the record is meant to be one (`named`).
#[allow(clippy::too_many_arguments)]
fn audit_record_pickle(
    bytes: &[u8],
    name: &str,
    ctx: Context<'_>,
    depth: usize,
    named: bool,
    report: &mut AuditReport,
    findings: &mut Findings,
    package_calls: &mut Vec<(String, String, classify::Use)>,
) {
    let options = DecodeOptions::default();
    let (graph, result) = tpkg_pickle::decode_partial(bytes, &options, &Symbolic);
    if !is_pickle(&graph, &result, named) {
        return;
    }
    report.pickles += 1;
    let audit = PickleAudit {
        graph: &graph,
        data: bytes,
        record: name,
        ctx,
        depth,
        package_calls: Default::default(),
    };
    audit.run(findings);
    package_calls.extend(audit.package_calls.into_inner());
    if let Err(error) = result {
        findings.unreadable(Level::Unsafe, name, undecodable(&error));
    }
}

/// Whether a (partial) decode found a pickle: it decoded; or it is meant
/// to be one; or it failed after running something: a call or an
/// instantiation (text such as `collections\ntorch._utils` reads as a
/// GLOBAL, then fails, having run nothing).
fn is_pickle(
    graph: &tpkg_pickle::ValueGraph,
    result: &Result<usize, tpkg_pickle::DecodeError>,
    named: bool,
) -> bool {
    use tpkg_pickle::Value;
    match result {
        Ok(_) => true,
        Err(error) => {
            named
                || (error.offset() > 0
                    && (graph.iter().any(|(_, value)| {
                        matches!(value, Value::Reduce { .. } | Value::Object { .. })
                    }) || !graph.loose_builds().is_empty()))
        }
    }
}

fn undecodable(error: &tpkg_pickle::DecodeError) -> String {
    format!(
        "the pickle does not decode: {error} (everything before byte {} was audited: CPython runs it before it fails)",
        error.offset()
    )
}

fn audit_nested_record(
    reader: &PackageReader,
    name: &str,
    policy: &AuditPolicy,
    depth: usize,
    findings: &mut Findings,
) {
    match reader.read(name) {
        Ok(bytes) => nested_audit(&bytes, name, policy, depth + 1, false, findings),
        Err(error) => findings.unreadable(Level::Unsafe, name, crate::error_chain(&error)),
    }
}

fn extern_findings(reader: &PackageReader, findings: &mut Findings) {
    let Ok(metadata) = tpkg_archive::PackageMetadata::read(reader) else {
        return;
    };
    for module in metadata
        .extern_modules
        .into_iter()
        .flatten()
        .filter(|m| !m.is_empty())
    {
        // An import is not an execution: what runs is judged by the calls.
        let (level, reason) = if sources::runs_processes_or_code(&module) {
            (
                Level::Review,
                "a load imports it from the host; it exists to run processes or code",
            )
        } else if sources::has_system_access(&module) {
            (
                Level::Review,
                "a load imports it from the host; it has system-level access",
            )
        } else {
            (Level::Safe, "a load imports it from the host")
        };
        findings.add(
            level,
            "extern",
            At::record(".data/extern_modules"),
            module,
            reason.into(),
        );
    }
}

/// Whether the head of some bytes decodes as a pickle with a `PROTO`.
fn looks_like_pickle_head(bytes: &[u8]) -> bool {
    matches!(bytes, [0x80, 2..=5, ..])
}

/// What file `bytes` are, if they are one tpkg audits as nested: a zip
/// (local header first), a legacy `torch.save`, or a pickle with `PROTO`.
fn nested_kind(bytes: &[u8]) -> Option<Sniffed> {
    let head = &bytes[..bytes.len().min(512)];
    if head.starts_with(b"PK\x03\x04") {
        Some(Sniffed::Zip)
    } else if crate::legacy::looks_legacy(head) {
        Some(Sniffed::LegacyStream)
    } else if looks_like_pickle_head(head) {
        Some(Sniffed::Pickle)
    } else {
        None
    }
}

/// Audits `bytes` found inside a file (a record, a pickle's byte string)
/// as a file of their own when they are one, adding the findings under
/// `place`. `loaded`: the bytes are certainly loaded as a file (a
/// `_load_from_bytes` argument), so anything unreadable is unsafe; other
/// bytes that do not read as a file are left alone.
pub(crate) fn nested_audit(
    bytes: &[u8],
    place: &str,
    policy: &AuditPolicy,
    depth: usize,
    loaded: bool,
    findings: &mut Findings,
) {
    if depth > MAX_NESTED_DEPTH {
        findings.unreadable(
            Level::Unsafe,
            place,
            format!("files nested deeper than {MAX_NESTED_DEPTH}: not audited"),
        );
        return;
    }
    let report = match nested_kind(bytes) {
        Some(Sniffed::Zip) => match PackageReader::from_bytes(bytes.to_vec()) {
            Ok(reader) => audit_zip(&reader, Some(bytes), policy, depth),
            Err(error) if loaded => {
                findings.unreadable(Level::Unsafe, place, crate::error_chain(&error));
                return;
            }
            Err(_) => return,
        },
        Some(Sniffed::LegacyStream | Sniffed::Tar) => audit_stream_at(bytes, policy, depth),
        Some(Sniffed::Pickle) => {
            let decodes = tpkg_pickle::decode_stream(bytes, &DecodeOptions::default(), &Symbolic)
                .all(|pickle| pickle.is_ok());
            if !decodes && !loaded {
                return;
            }
            audit_stream_at(bytes, policy, depth)
        }
        None if loaded => audit_stream_at(bytes, policy, depth),
        None => return,
    };
    findings.nest(place, report.findings);
}

/// Audits every pickle of a legacy `torch.save` file that parsed (see
/// [`audit_stream`]), reading its bytes where they are (the memory map of
/// [`LegacyFile::open`](crate::legacy::LegacyFile::open)).
pub fn audit_legacy(file: &crate::legacy::LegacyFile, policy: &AuditPolicy) -> AuditReport {
    audit_legacy_at(file, policy, 0)
}

fn audit_legacy_at(
    file: &crate::legacy::LegacyFile,
    policy: &AuditPolicy,
    depth: usize,
) -> AuditReport {
    let mut findings = Findings::default();
    let mut report = AuditReport::default();
    let options = DecodeOptions::default();
    let ctx = Context {
        policy,
        interned: &[],
        reader: Reader::Python,
    };
    for span in file.pickles() {
        let label = span.role.name();
        let range = usize::try_from(span.range.start).unwrap_or(usize::MAX)
            ..usize::try_from(span.range.end).unwrap_or(usize::MAX);
        let data = file.bytes().get(range).unwrap_or(&[]);
        match tpkg_pickle::decode_with(data, &options, &Symbolic) {
            Ok(graph) => {
                report.pickles += 1;
                PickleAudit {
                    graph: &graph,
                    data,
                    record: label,
                    ctx,
                    depth,
                    package_calls: Default::default(),
                }
                .run(&mut findings);
            }
            Err(error) => findings.unreadable(
                Level::Unsafe,
                label,
                format!("the pickle does not decode: {error}"),
            ),
        }
    }
    // Bytes torch.load never reads may hold anything another reader would.
    let trailing = file.trailing();
    if !trailing.is_empty() {
        let start = usize::try_from(trailing.start).unwrap_or(usize::MAX);
        let rest = file.bytes().get(start..).unwrap_or(&[]);
        nested_audit(
            rest,
            &format!("(bytes after the data, from byte {start})"),
            policy,
            depth + 1,
            false,
            &mut findings,
        );
    }
    report.findings = findings.list;
    report
}

/// Audits the pickles of `bytes` one after another, as far as they go; a
/// pickle that fails is audited up to its failure (`pickle[i]` labels, in
/// `member` when given).
fn audit_pickles(
    bytes: &[u8],
    member: &str,
    ctx: Context<'_>,
    depth: usize,
    is_legacy: bool,
    report: &mut AuditReport,
    findings: &mut Findings,
) {
    let options = DecodeOptions::default();
    let prefix = if member.is_empty() {
        String::new()
    } else {
        format!("{member}: ")
    };
    let first = report.pickles;
    for pickle in tpkg_pickle::decode_stream(bytes, &options, &Symbolic) {
        let (at, graph, error) = match pickle {
            Ok((at, graph)) => (at, graph, None),
            Err((at, error)) => {
                let (graph, _) = tpkg_pickle::decode_partial(&bytes[at..], &options, &Symbolic);
                (at, graph, Some(error))
            }
        };
        let label = format!("{prefix}pickle[{}]", report.pickles - first);
        if let Some(error) = &error {
            // A legacy stream read past its pickles into raw storage
            // bytes: only a failing first pickle is news.
            if !is_pickle(
                &graph,
                &Err(error.clone()),
                report.pickles == first || !is_legacy,
            ) {
                break;
            }
            findings.unreadable(
                Level::Unsafe,
                &format!("{label} (byte {at})"),
                undecodable(error),
            );
        }
        report.pickles += 1;
        PickleAudit {
            graph: &graph,
            data: &bytes[at..],
            record: &label,
            ctx,
            depth,
            package_calls: Default::default(),
        }
        .run(findings);
    }
}

/// Audits a file that is not a zip: a legacy `torch.save` (stream or tar)
/// or a plain pickle file. Every pickle `torch.load` or `pickle.load`
/// would unpickle is decoded and audited; findings name the pickle by its
/// role in a legacy file (`object`, `sys_info`, ...) or its position in a
/// pickle file (`pickle[1]`, the second), and the offset inside it. When
/// the legacy layout does not parse, the pickles are read one after
/// another from the start (what `torch.load` unpickles before it fails)
/// and the failure is an unsafe `unreadable` finding: unreadable never
/// reads as clean.
pub fn audit_stream(bytes: &[u8], policy: &AuditPolicy) -> AuditReport {
    audit_stream_at(bytes, policy, 0)
}

fn audit_stream_at(bytes: &[u8], policy: &AuditPolicy, depth: usize) -> AuditReport {
    let is_legacy = crate::legacy::looks_legacy(bytes) || crate::legacy::looks_legacy_tar(bytes);
    let parsed = is_legacy.then(|| crate::legacy::LegacyFile::from_bytes(bytes.to_vec()));
    if let Some(Ok(file)) = &parsed {
        return audit_legacy_at(file, policy, depth);
    }
    let mut findings = Findings::default();
    let mut report = AuditReport::default();
    let ctx = Context {
        policy,
        interned: &[],
        reader: Reader::Python,
    };
    if let Some(Err(error)) = parsed {
        findings.unreadable(Level::Unsafe, "(file)", crate::error_chain(&error));
    }
    // A damaged tar form: each member's pickles (`torch.load` unpickles
    // `sys_info`, `pickle`, `storages` and `tensors` by name).
    let members = crate::legacy::looks_legacy_tar(bytes)
        .then(|| crate::legacy::list_tar(bytes).ok().flatten())
        .flatten();
    match members {
        Some(members) => {
            for member in members {
                let range = usize::try_from(member.data.start).unwrap_or(usize::MAX)
                    ..usize::try_from(member.data.end).unwrap_or(usize::MAX);
                if let Some(data) = bytes.get(range) {
                    audit_pickles(
                        data,
                        &member.name,
                        ctx,
                        depth,
                        is_legacy,
                        &mut report,
                        &mut findings,
                    );
                }
            }
        }
        None => audit_pickles(bytes, "", ctx, depth, is_legacy, &mut report, &mut findings),
    }
    report.findings = findings.list;
    report
}
