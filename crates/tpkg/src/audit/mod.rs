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

mod weights_only;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tpkg_archive::PackageReader;
use tpkg_pickle::{DecodeOptions, Symbolic, Value, ValueGraph, ValueId};

use crate::importer::module_of_record;
use crate::verify::looks_like_pickle;

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

    fn matches(patterns: &[String], qualified: &str) -> bool {
        patterns.iter().any(|p| match p.strip_suffix(".*") {
            Some(module) => qualified
                .strip_prefix(module)
                .is_some_and(|rest| rest.starts_with('.')),
            None => p == qualified,
        })
    }
}

/// Plain-data constructors PyTorch's packages use beyond the weights-only
/// allowlist.
const SAFE_DATA: &[&str] = &[
    "builtins.frozenset",
    "builtins.slice",
    "builtins.range",
    "builtins.bytes",
    "__builtin__.set",
    "__builtin__.frozenset",
    "torch._utils._rebuild_parameter_with_state",
];

/// Modules whose every global runs code or reaches outside the process.
const UNSAFE_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "posixpath",
    "ntpath",
    "subprocess",
    "sys",
    "socket",
    "runpy",
    "pickle",
    "_pickle",
    "marshal",
    "importlib",
    "pkgutil",
    "shutil",
    "webbrowser",
    "ctypes",
    "pty",
    "code",
    "codeop",
    "commands",
    "multiprocessing",
    "asyncio",
    "http",
    "urllib",
    "urllib2",
    "requests",
    "ftplib",
    "smtplib",
    "telnetlib",
    "signal",
    "tempfile",
    "glob",
    "io",
    "_io",
    "zipimport",
    "imp",
    "dill",
    "cloudpickle",
    "joblib",
    "yaml",
    "shelve",
    "dbm",
    "sqlite3",
    "threading",
    "_thread",
    "builtins.__loader__",
    "torch.hub",
    "torch.package",
    "torch.jit",
    "torch.serialization",
    "torch._dynamo",
    "torch.utils.cpp_extension",
    "numpy.load",
    "numpy.lib.npyio",
];

/// Single globals that run code (outside the modules above).
const UNSAFE_GLOBALS: &[&str] = &[
    "builtins.eval",
    "builtins.exec",
    "builtins.compile",
    "builtins.getattr",
    "builtins.setattr",
    "builtins.delattr",
    "builtins.open",
    "builtins.__import__",
    "builtins.globals",
    "builtins.locals",
    "builtins.vars",
    "builtins.input",
    "builtins.breakpoint",
    "builtins.apply",
    "builtins.execfile",
    "builtins.memoryview",
    "builtins.type",
    "builtins.object.__reduce__",
    "__builtin__.eval",
    "__builtin__.exec",
    "__builtin__.compile",
    "__builtin__.getattr",
    "__builtin__.setattr",
    "__builtin__.open",
    "__builtin__.__import__",
    "__builtin__.apply",
    "__builtin__.execfile",
    "operator.attrgetter",
    "operator.itemgetter",
    "operator.methodcaller",
    "functools.partial",
    "functools.reduce",
    "types.CodeType",
    "types.FunctionType",
    "types.MethodType",
    "types.ModuleType",
    "torch.load",
    "torch.save",
    "torch._C._jit_pass_onnx",
    "numpy.load",
];

/// Modules a package's source should not need; importing them is a
/// finding (review), using them from a pickle is unsafe.
const DANGEROUS_IMPORTS: &[&str] = &[
    "os",
    "sys",
    "io",
    "subprocess",
    "socket",
    "ctypes",
    "pty",
    "runpy",
    "pickle",
    "marshal",
    "importlib",
    "pkgutil",
    "shutil",
    "webbrowser",
    "builtins",
    "multiprocessing",
    "urllib",
    "http",
    "requests",
    "code",
    "codeop",
    "signal",
    "tempfile",
];

/// Modules whose source or extern use is itself unsafe (not just unusual).
const UNSAFE_IMPORTS: &[&str] = &[
    "subprocess",
    "socket",
    "ctypes",
    "pty",
    "runpy",
    "webbrowser",
    "marshal",
    "code",
    "codeop",
];

fn top(module: &str) -> &str {
    module.split('.').next().unwrap_or(module)
}

fn in_modules(list: &[&str], module: &str) -> bool {
    list.iter().any(|m| {
        module == *m
            || module
                .strip_prefix(m)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// The classification of one global `module.name`.
fn classify(
    module: &str,
    name: &str,
    policy: &AuditPolicy,
    interned: &[String],
) -> (Level, String) {
    let qualified = format!("{module}.{name}");
    if AuditPolicy::matches(&policy.unsafe_, &qualified) {
        return (Level::Unsafe, "unsafe by the audit policy".into());
    }
    if AuditPolicy::matches(&policy.safe, &qualified) {
        return (Level::Safe, "safe by the audit policy".into());
    }
    if weights_only::WEIGHTS_ONLY_ALLOWED
        .binary_search(&qualified.as_str())
        .is_ok()
    {
        return (
            Level::Safe,
            "allowed by torch.load(weights_only=True)".into(),
        );
    }
    if SAFE_DATA.contains(&qualified.as_str()) {
        return (Level::Safe, "builds plain data".into());
    }
    if qualified == "torch.jit._script.unpackage_script_module" {
        return (
            Level::Review,
            "loads the package's TorchScript (see the torchscript finding)".into(),
        );
    }
    if UNSAFE_GLOBALS.contains(&qualified.as_str()) || in_modules(UNSAFE_MODULES, module) {
        return (
            Level::Unsafe,
            "runs code or reaches files, processes or the network".into(),
        );
    }
    if tpkg_mangling::is_mangled(module) {
        return (
            Level::Review,
            "a module of another loaded package (mangled name)".into(),
        );
    }
    if (module.starts_with("torch.nn.modules.") || module == "torch.nn.parameter")
        && name.chars().next().is_some_and(char::is_uppercase)
    {
        return (
            Level::Safe,
            "a torch.nn module class (state set from plain data)".into(),
        );
    }
    if interned.iter().any(|m| m == module) {
        return (
            Level::Review,
            "defined by the package's own source (see its findings)".into(),
        );
    }
    (Level::Review, "not known to be safe".into())
}

/// Accumulates findings, folding repeats within one record.
#[derive(Default)]
struct Findings {
    list: Vec<Finding>,
    index: BTreeMap<(String, &'static str, String), usize>,
}

impl Findings {
    /// A record that could not be audited (the subject is the record).
    fn unreadable(&mut self, level: Level, record: &str, reason: String) {
        self.add(
            level,
            "unreadable",
            Some(record),
            None,
            None,
            record.to_owned(),
            reason,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        level: Level,
        kind: &'static str,
        record: Option<&str>,
        offset: Option<usize>,
        line: Option<usize>,
        subject: String,
        reason: String,
    ) {
        let key = (record.unwrap_or_default().to_owned(), kind, subject.clone());
        if line.is_none()
            && let Some(&at) = self.index.get(&key)
        {
            self.list[at].count += 1;
            return;
        }
        self.index.insert(key, self.list.len());
        self.list.push(Finding {
            level,
            kind,
            record: record.map(str::to_owned),
            offset,
            line,
            subject,
            reason,
            count: 1,
        });
    }
}

fn global_name(graph: &ValueGraph, id: ValueId) -> Option<(String, String)> {
    match graph.get(id) {
        Value::Global { module, name } => Some((module.clone(), name.clone())),
        _ => None,
    }
}

fn audit_pickle(
    graph: &ValueGraph,
    record: &str,
    policy: &AuditPolicy,
    interned: &[String],
    findings: &mut Findings,
) {
    for (id, value) in graph.iter() {
        let offset = graph.origin(id);
        let mut note = |kind: &'static str, target: ValueId, what: &str| {
            let Some((module, name)) = global_name(graph, target) else {
                findings.add(
                    Level::Review,
                    kind,
                    Some(record),
                    offset,
                    None,
                    format!("<{}>", graph.get(target).kind()),
                    format!("{what} of a computed value"),
                );
                return;
            };
            let (level, reason) = classify(&module, &name, policy, interned);
            findings.add(
                level,
                kind,
                Some(record),
                offset,
                None,
                format!("{module}.{name}"),
                reason,
            );
        };
        match value {
            Value::Global { module, name } => {
                let (level, reason) = classify(module, name, policy, interned);
                findings.add(
                    level,
                    "import",
                    Some(record),
                    offset,
                    None,
                    format!("{module}.{name}"),
                    reason,
                );
            }
            Value::Reduce {
                callable, extra, ..
            } => {
                note("call", *callable, "a call");
                if extra.state.is_some() {
                    note("setstate", *callable, "BUILD on the result");
                }
            }
            Value::Object { class, extra, .. } => {
                note("instantiate", *class, "an instantiation");
                if extra.state.is_some() {
                    let safe = global_name(graph, *class)
                        .is_some_and(|(m, n)| classify(&m, &n, policy, interned).0 == Level::Safe);
                    if !safe {
                        note("setstate", *class, "BUILD (__setstate__)");
                    }
                }
            }
            Value::PersistentId(pid) => {
                let Value::Tuple(items) = graph.get(*pid) else {
                    findings.add(
                        Level::Review,
                        "persistent-id",
                        Some(record),
                        offset,
                        None,
                        format!("<{}>", graph.get(*pid).kind()),
                        "a persistent id PyTorch does not write".into(),
                    );
                    continue;
                };
                let kind = items
                    .first()
                    .and_then(|k| graph.get(*k).as_str())
                    .unwrap_or("?");
                match kind {
                    "storage" => findings.add(
                        Level::Safe,
                        "persistent-id",
                        Some(record),
                        offset,
                        None,
                        "storage".into(),
                        "a tensor storage record".into(),
                    ),
                    "reduce_package" => {
                        // (reduce_package, id, function, args) or legacy (function, args).
                        let function = if items.len() == 4 {
                            items.get(2)
                        } else {
                            items.get(1)
                        };
                        match function {
                            Some(function) => note("call", *function, "reduce_package's function"),
                            None => findings.add(
                                Level::Review,
                                "persistent-id",
                                Some(record),
                                offset,
                                None,
                                "reduce_package".into(),
                                "malformed reduce_package id".into(),
                            ),
                        }
                    }
                    other => findings.add(
                        Level::Review,
                        "persistent-id",
                        Some(record),
                        offset,
                        None,
                        other.to_owned(),
                        "a persistent id PyTorch's importer does not know".into(),
                    ),
                }
            }
            _ => {}
        }
    }
}

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
            anomaly.record.as_deref(),
            usize::try_from(anomaly.offset).ok(),
            None,
            anomaly.kind.to_owned(),
            anomaly.detail,
        );
    }
}

/// Audits a package: pickles, sources, externs, TorchScript and, given the
/// file's bytes (`reader.zip_bytes()` for a zip), the container. See the
/// [module docs](self).
pub fn audit(reader: &PackageReader, file: Option<&[u8]>, policy: &AuditPolicy) -> AuditReport {
    let mut findings = Findings::default();
    let mut report = AuditReport::default();
    if let Some(bytes) = file {
        add_container_findings(bytes, &mut findings);
    }
    let importer_modules: Vec<String> = reader
        .records()
        .iter()
        .filter_map(|r| module_of_record(&r.name))
        .collect();
    let mut torchscript = false;
    for info in reader.records() {
        let name = info.name.as_str();
        if name.starts_with(".data/ts_code/") {
            torchscript = true;
            continue;
        }
        // Every record read through once: sizes and CRC-32s (PyTorch
        // checks neither, so a mismatch is reported, then audited as read).
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
                Some(name),
                None,
                None,
                "unreadable-record".into(),
                error,
            );
            // Still audit what is there: other readers may not check.
        }
        let is_source = name.ends_with(".py");
        let is_storage = name.starts_with(".data/") && name.ends_with(".storage");
        if is_storage || name.starts_with(".data/") && !name.ends_with(".pkl") {
            continue;
        }
        let limit = if is_source {
            tpkg_pysource::MAX_SOURCE_BYTES as u64
        } else {
            crate::show::MAX_PICKLE_BYTES
        };
        if info.size > limit {
            // Only pickle-looking or source records matter; peek first.
            let head = crate::verify::peek(reader, name);
            if is_source || name.ends_with(".pkl") || looks_like_pickle(&head) {
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
        if is_source {
            report.sources += 1;
            audit_source(name, &bytes, &mut findings);
            continue;
        }
        // Protocols 2-5 start with PROTO; protocols 0 and 1 have no header,
        // so any record ending in STOP is tried (resources that happen to
        // end in `.` and do not decode are left alone).
        let maybe_pickle =
            looks_like_pickle(&bytes) || name.ends_with(".pkl") || bytes.last() == Some(&b'.');
        if !maybe_pickle {
            continue;
        }
        let options = DecodeOptions::default();
        match tpkg_pickle::decode_with(&bytes, &options, &Symbolic) {
            Ok(graph) => {
                report.pickles += 1;
                audit_pickle(&graph, name, policy, &importer_modules, &mut findings);
            }
            Err(error) if looks_like_pickle(&bytes) || name.ends_with(".pkl") => {
                report.pickles += 1;
                findings.unreadable(
                    Level::Unsafe,
                    name,
                    format!("the pickle does not decode: {error}"),
                );
            }
            Err(_) => {}
        }
    }
    if torchscript {
        findings.add(
            Level::Review,
            "torchscript",
            Some(".data/ts_code/"),
            None,
            None,
            "TorchScript".into(),
            "TorchScript code: libtorch compiles and runs it on load".into(),
        );
    }
    if let Ok(metadata) = tpkg_archive::PackageMetadata::read(reader) {
        for module in metadata
            .extern_modules
            .into_iter()
            .flatten()
            .filter(|m| !m.is_empty())
        {
            let (level, reason) = if in_modules(UNSAFE_IMPORTS, &module) {
                (
                    Level::Unsafe,
                    "a load imports it from the host; it runs processes or code",
                )
            } else if in_modules(DANGEROUS_IMPORTS, &module) {
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
                Some(".data/extern_modules"),
                None,
                None,
                module,
                reason.into(),
            );
        }
    }
    report.findings = findings.list;
    report
}

/// Audits every pickle of a legacy `torch.save` file that parsed (see
/// [`audit_stream`]), reading its bytes where they are (the memory map of
/// [`LegacyFile::open`](crate::legacy::LegacyFile::open)).
pub fn audit_legacy(file: &crate::legacy::LegacyFile, policy: &AuditPolicy) -> AuditReport {
    let mut findings = Findings::default();
    let mut report = AuditReport::default();
    let options = DecodeOptions::default();
    for span in file.pickles() {
        let label = span.role.name();
        let range = usize::try_from(span.range.start).unwrap_or(usize::MAX)
            ..usize::try_from(span.range.end).unwrap_or(usize::MAX);
        let data = file.bytes().get(range).unwrap_or(&[]);
        match tpkg_pickle::decode_with(data, &options, &Symbolic) {
            Ok(graph) => {
                report.pickles += 1;
                audit_pickle(&graph, label, policy, &[], &mut findings);
            }
            Err(error) => findings.unreadable(
                Level::Unsafe,
                label,
                format!("the pickle does not decode: {error}"),
            ),
        }
    }
    report.findings = findings.list;
    report
}

/// Audits a file that is not a zip: a legacy `torch.save` (stream or tar)
/// or a plain pickle file. Every pickle `torch.load` or `pickle.load`
/// would unpickle is decoded and audited; findings name the pickle by its
/// role in a legacy file (`object`, `sys_info`, ...) or its position in a
/// pickle file (`pickle[1]`, the second), and the offset inside it. When the legacy layout
/// does not parse, the pickles are read one after another from the start
/// (what `torch.load` unpickles before it fails) and the failure is an
/// unsafe `unreadable` finding: unreadable never reads as clean.
pub fn audit_stream(bytes: &[u8], policy: &AuditPolicy) -> AuditReport {
    let is_legacy = crate::legacy::looks_legacy(bytes) || crate::legacy::looks_legacy_tar(bytes);
    let parsed = is_legacy.then(|| crate::legacy::LegacyFile::from_bytes(bytes.to_vec()));
    if let Some(Ok(file)) = &parsed {
        return audit_legacy(file, policy);
    }
    let mut findings = Findings::default();
    let mut report = AuditReport::default();
    let options = DecodeOptions::default();
    if let Some(Err(error)) = parsed {
        findings.unreadable(Level::Unsafe, "(file)", crate::error_chain(&error));
    }
    // Pickles one after another, as far as they go.
    for pickle in tpkg_pickle::decode_stream(bytes, &options, &Symbolic) {
        match pickle {
            Ok((_, graph)) => {
                let label = format!("pickle[{}]", report.pickles);
                report.pickles += 1;
                audit_pickle(&graph, &label, policy, &[], &mut findings);
            }
            Err((at, error)) => {
                if report.pickles == 0 || !is_legacy {
                    findings.unreadable(
                        Level::Unsafe,
                        &format!("pickle[{}] (byte {at})", report.pickles),
                        format!("the pickle does not decode: {error}"),
                    );
                }
            }
        }
    }
    report.findings = findings.list;
    report
}

fn audit_source(record: &str, bytes: &[u8], findings: &mut Findings) {
    let Ok(source) = std::str::from_utf8(bytes) else {
        findings.unreadable(Level::Review, record, "source is not UTF-8".into());
        return;
    };
    if source.starts_with("from _mock import MockedObject\n") {
        return; // A mock stub: its only code is a module __getattr__.
    }
    match tpkg_pysource::import_time_code(source) {
        Ok(statements) => {
            for statement in statements {
                findings.add(
                    Level::Review,
                    "import-time-code",
                    Some(record),
                    None,
                    Some(statement.line),
                    statement.text,
                    format!(
                        "a module-level {} runs when the module is imported",
                        statement.kind
                    ),
                );
            }
        }
        Err(error) => {
            findings.unreadable(Level::Review, record, crate::error_chain(&error));
            return;
        }
    }
    let module = module_of_record(record).unwrap_or_default();
    let package = tpkg_pysource::package_of(&module, record.ends_with("/__init__.py"));
    if let Ok(imports) = tpkg_pysource::scan_imports(source, package) {
        for dynamic in imports.dynamic {
            findings.add(
                Level::Review,
                "dynamic-import",
                Some(record),
                None,
                Some(dynamic.line),
                dynamic.module.unwrap_or_else(|| "<computed name>".into()),
                "importlib.import_module: PyTorch's exporter did not see it".into(),
            );
        }
        for (module, attribute) in imports.references {
            let full = match &attribute {
                Some(attribute) => format!("{module}.{attribute}"),
                None => module.clone(),
            };
            if in_modules(UNSAFE_IMPORTS, &full) || in_modules(UNSAFE_IMPORTS, &module) {
                findings.add(
                    Level::Unsafe,
                    "dangerous-import",
                    Some(record),
                    None,
                    None,
                    module,
                    "runs processes, native code or the network".into(),
                );
            } else if DANGEROUS_IMPORTS.contains(&top(&module)) {
                findings.add(
                    Level::Review,
                    "dangerous-import",
                    Some(record),
                    None,
                    None,
                    module,
                    "system-level access".into(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_only_table_is_sorted() {
        assert!(
            weights_only::WEIGHTS_ONLY_ALLOWED
                .windows(2)
                .all(|w| w[0] < w[1])
        );
    }

    #[test]
    fn classification_table() {
        let policy =
            AuditPolicy::from_json(r#"{"safe": ["mymodel.*"], "unsafe": ["numpy.frombuffer"]}"#)
                .unwrap();
        let cases = [
            ("torch._utils", "_rebuild_tensor_v2", Level::Safe),
            ("collections", "OrderedDict", Level::Safe),
            ("torch", "FloatStorage", Level::Safe),
            ("torch.nn.modules.conv", "Conv2d", Level::Safe),
            ("builtins", "eval", Level::Unsafe),
            ("builtins", "getattr", Level::Unsafe),
            ("os", "system", Level::Unsafe),
            ("posix", "system", Level::Unsafe),
            ("subprocess", "Popen", Level::Unsafe),
            ("torch.jit", "load", Level::Unsafe),
            ("functools", "partial", Level::Unsafe),
            ("mymodel.layers", "Block", Level::Safe),
            ("numpy", "frombuffer", Level::Unsafe),
            ("torchvision.models.resnet", "ResNet", Level::Review),
        ];
        for (module, name, level) in cases {
            assert_eq!(
                classify(module, name, &policy, &[]).0,
                level,
                "{module}.{name}"
            );
        }
    }
}
