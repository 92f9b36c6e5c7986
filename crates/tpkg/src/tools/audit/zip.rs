//! Auditing a zip (a package, `torch.save`, TorchScript, `.pt2`) or a
//! package folder: its container, records, sources, externs.

use tpkg_archive::PackageReader;
use tpkg_pickle::{DecodeOptions, Symbolic};

use super::classify::{self, Context, Reader};
use super::findings::{At, Findings, NewFinding};
use super::nested::nested_audit;
use super::pickles::PickleAudit;
use super::{AuditPolicy, AuditReport, Finding, FindingKind, Level, sources};
use crate::files::records::module_of_record;
use crate::formats::{FileFormat, Sniffed, sniff_strict, starts_like_pickle};

/// The container anomalies of a zip file as findings (all unsafe: they let
/// two readers see different packages in the same bytes).
pub fn container_findings(bytes: &[u8]) -> Vec<Finding> {
    let mut findings = Findings::default();
    add_container_findings(bytes, &mut findings);
    findings.list
}

pub(super) fn add_container_findings(bytes: &[u8], findings: &mut Findings) {
    for anomaly in tpkg_archive::zip_anomalies(bytes) {
        findings.add(NewFinding {
            level: Level::Unsafe,
            kind: FindingKind::Container,
            at: At {
                record: anomaly.record.as_deref(),
                offset: usize::try_from(anomaly.offset).ok(),
                line: None,
            },
            subject: anomaly.kind.as_str().to_owned(),
            reason: anomaly.detail,
        });
    }
}

/// Audits a zip format or package folder: pickles, sources, externs,
/// TorchScript and, given the file's bytes (`reader.zip_bytes()` for a
/// zip), the container. See the [module docs](crate::tools::audit).
pub fn audit(reader: &PackageReader, file: Option<&[u8]>, policy: &AuditPolicy) -> AuditReport {
    audit_zip(reader, file, policy, 0)
}

pub(super) fn audit_zip(
    reader: &PackageReader,
    file: Option<&[u8]>,
    policy: &AuditPolicy,
    depth: usize,
) -> AuditReport {
    let mut findings = Findings::default();
    if let Some(bytes) = file {
        add_container_findings(bytes, &mut findings);
    }
    let format = crate::formats::zip_format(reader);
    let interned = interned_modules(reader, format);
    for module in &interned {
        if classify::shadows(module) {
            findings.add(NewFinding {
                level: Level::Unsafe,
                kind: FindingKind::Shadowing,
                at: At::default(),
                subject: module.clone(),
                reason: "the package interns a module of this name: its globals are the package's code, not the real module's".into(),
            });
        }
    }
    let mut walk = ZipAudit {
        reader,
        policy,
        depth,
        format,
        interned: &interned,
        findings,
        report: AuditReport::default(),
        torchscript_code: false,
        package_calls: Vec::new(),
        interned_sources: Vec::new(),
    };
    for info in reader.records() {
        walk.record(info);
    }
    walk.finish()
}

/// The modules a package interns: its sources, outside `.data/`, that are
/// not mock stubs (only a package's loader imports its sources: a
/// TorchScript file's `code/` is TorchScript; a mocked module's stub runs
/// nothing).
fn interned_modules(reader: &PackageReader, format: FileFormat) -> Vec<String> {
    if format != FileFormat::Package {
        return Vec::new();
    }
    reader
        .records()
        .iter()
        .filter(|r| !r.name.starts_with(".data/") && r.name.ends_with(".py"))
        .filter(|r| !sources::is_mock_stub(reader, &r.name))
        .filter_map(|r| module_of_record(&r.name))
        .collect()
}

/// One zip's audit, record by record.
struct ZipAudit<'a> {
    reader: &'a PackageReader,
    policy: &'a AuditPolicy,
    depth: usize,
    format: FileFormat,
    interned: &'a [String],
    findings: Findings,
    report: AuditReport,
    /// The file holds TorchScript code.
    torchscript_code: bool,
    /// (module, name, use) of every package global a pickle uses.
    package_calls: Vec<(String, String, classify::Use)>,
    /// (module, record, text) of every interned source that parsed.
    interned_sources: Vec<(String, String, String)>,
}

impl ZipAudit<'_> {
    /// Audits one record: a storage only if a file is stored there, a
    /// source as Python or TorchScript, a nested file as a file, anything
    /// else as a pickle when it decodes as one.
    fn record(&mut self, info: &tpkg_archive::RecordInfo) {
        let (reader, format) = (self.reader, self.format);
        let name = info.name.as_str();
        let torchscript = format == FileFormat::TorchScript || name.starts_with(".data/ts_code/");
        check_record(reader, name, &mut self.findings);
        let is_storage = (name.starts_with(".data/") && name.ends_with(".storage"))
            || (format != FileFormat::Package
                && name.starts_with("data/")
                && !name.ends_with(".pkl")
                && !name.ends_with(".json"));
        if is_storage {
            // Raw tensor bytes; a file stored there is still looked at.
            if let Ok(head) = reader.read_range(name, 0, info.size.min(16))
                && sniff_strict(&head).is_some()
            {
                audit_nested_record(reader, name, self.policy, self.depth, &mut self.findings);
            }
            return;
        }
        let is_source = name.ends_with(".py");
        if torchscript && is_source {
            self.torchscript_code = true;
        }
        let limit = if is_source {
            tpkg_pysource::MAX_SOURCE_BYTES as u64
        } else {
            crate::files::records::MAX_PICKLE_BYTES
        };
        if info.size > limit {
            let head = crate::files::records::peek(reader, name);
            if is_source || name.ends_with(".pkl") || starts_like_pickle(&head) {
                self.findings.unreadable(
                    Level::Unsafe,
                    name,
                    format!("{} bytes: too large to audit (limit {limit})", info.size),
                );
            }
            return;
        }
        let bytes = match reader.read(name) {
            Ok(bytes) => bytes,
            Err(error) => {
                self.findings
                    .unreadable(Level::Unsafe, name, crate::error_chain(&error));
                return;
            }
        };
        if sniff_strict(&bytes).is_some_and(|kind| kind != Sniffed::Pickle) {
            nested_audit(
                &bytes,
                name,
                self.policy,
                self.depth + 1,
                false,
                &mut self.findings,
            );
            return;
        }
        if is_source {
            self.report.sources += 1;
            if torchscript {
                sources::audit_torchscript_code(name, &bytes, &mut self.findings);
            } else if sources::audit_source(name, &bytes, &mut self.findings) {
                if let (Some(module), Ok(text)) =
                    (module_of_record(name), std::str::from_utf8(&bytes))
                {
                    self.interned_sources
                        .push((module, name.to_owned(), text.to_owned()));
                }
            } else {
                // Not Python: a pickle stored under a source's name is
                // still loaded as one (CVE-2025-1889: never trust names).
                self.pickle(&bytes, name, torchscript, true);
            }
            return;
        }
        // Whatever the name: every record that decodes as a pickle is
        // audited (protocols 0 and 1 have no header to tell them by).
        let named = name.ends_with(".pkl") || starts_like_pickle(&bytes);
        self.pickle(&bytes, name, torchscript, named);
    }

    /// Audits a record's bytes as a pickle (see [`audit_record_pickle`]).
    fn pickle(&mut self, bytes: &[u8], name: &str, torchscript: bool, named: bool) {
        let reader = if torchscript {
            Reader::TorchScript
        } else {
            Reader::Python
        };
        let ctx = Context {
            policy: self.policy,
            interned: self.interned,
            reader,
        };
        audit_record_pickle(
            bytes,
            name,
            ctx,
            self.depth,
            named,
            &mut self.report,
            &mut self.findings,
            &mut self.package_calls,
        );
    }

    /// What the package's own code runs (at import, and in the functions
    /// and classes the pickles call), TorchScript and externs: the report.
    fn finish(mut self) -> AuditReport {
        let findings = &mut self.findings;
        let package_sources = sources::PackageSources {
            modules: self
                .interned_sources
                .iter()
                .filter(|(module, _, _)| self.interned.contains(module))
                .map(|(module, record, text)| (module.clone(), (record.as_str(), text.as_str())))
                .collect(),
        };
        for (module, _, _) in &self.interned_sources {
            package_sources.audit_import_time(module, findings);
        }
        for (module, name, use_) in &self.package_calls {
            let (member, why) = match use_ {
                classify::Use::SetState => (
                    format!("{name}.__setstate__"),
                    "a pickle BUILDs it (its __setstate__ runs)",
                ),
                classify::Use::Instantiate => {
                    (format!("{name}.__new__"), "a pickle instantiates it")
                }
                _ => (name.clone(), "a pickle calls it"),
            };
            package_sources.audit_package_call(module, &member, why, findings);
        }
        if self.torchscript_code {
            findings.add(NewFinding {
                level: Level::Review,
                kind: FindingKind::TorchScript,
                at: At::default(),
                subject: "TorchScript".into(),
                reason: "TorchScript code: libtorch compiles and runs it on load".into(),
            });
        }
        extern_findings(self.reader, findings);
        self.report.findings = std::mem::take(&mut findings.list);
        self.report
    }
}

/// Reads a record through once, checking sizes and CRC-32: PyTorch checks
/// neither, so a mismatch is reported and the record audited as read.
fn check_record(reader: &PackageReader, name: &str, findings: &mut Findings) {
    if let Err(error) = reader
        .check_record(name)
        .map_err(|e| crate::error_chain(&e))
    {
        findings.add(NewFinding {
            level: Level::Unsafe,
            kind: FindingKind::Container,
            at: At::record(name),
            subject: "unreadable-record".into(),
            reason: error,
        });
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
pub(super) fn is_pickle(
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

pub(super) fn undecodable(error: &tpkg_pickle::DecodeError) -> String {
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
        findings.add(NewFinding {
            level,
            kind: FindingKind::Extern,
            at: At::record(".data/extern_modules"),
            subject: module,
            reason: reason.into(),
        });
    }
}
