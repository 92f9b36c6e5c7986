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
//! use tpkg::audit::{AuditPolicy, FindingKind, Level, audit};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut writer = PackageWriter::in_memory(WriteOptions::default())?;
//! // pickle.dumps of os.system("id") by a hostile pickler (protocol 3)
//! writer.write_record("x/evil.pkl", b"\x80\x03cos\nsystem\nX\x02\x00\x00\x00id\x85R.")?;
//! let bytes = writer.finish()?;
//! let reader = PackageReader::from_bytes(bytes.clone())?;
//! let report = audit(&reader, Some(&bytes), &AuditPolicy::default());
//! assert_eq!(report.worst(), Some(Level::Unsafe));
//! let call = report.findings.iter().find(|f| f.kind == FindingKind::Call).unwrap();
//! assert_eq!((call.subject.as_str(), call.offset), ("os.system", Some(21))); // the REDUCE
//! # Ok(()) }
//! ```

mod classify;
mod findings;
mod nested;
mod pickles;
mod policy;
mod sources;
mod stream;
mod weights_only;
mod zip;

use std::path::Path;

use serde::{Deserialize, Serialize};
use tpkg_archive::PackageReader;

use crate::formats::{FileFormat, Sniffed};
use findings::Findings;
pub use policy::AuditPolicy;
pub use stream::{audit_legacy, audit_stream};
pub use zip::{audit, container_findings};

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
    /// What kind of thing (see [`FindingKind`]).
    pub kind: FindingKind,
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

/// What kind of thing a finding is. Serialised (and shown, and used as the
/// SARIF rule id) in kebab case: `import`, `call`, `setstate`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingKind {
    /// A pickle imports a global (`GLOBAL`, `STACK_GLOBAL`, `INST`, `OBJ`).
    Import,
    /// A pickle calls something (`REDUCE`, `INST`, `OBJ` with arguments,
    /// a persistent id's function).
    Call,
    /// A pickle instantiates a class (`NEWOBJ`, `NEWOBJ_EX`, `OBJ`).
    Instantiate,
    /// A pickle `BUILD`s an object (its `__setstate__` runs).
    #[serde(rename = "setstate")]
    SetState,
    /// A pickle's persistent id (`persistent_load` runs on it).
    PersistentId,
    /// A package source statement that runs at import time.
    ImportTimeCode,
    /// A package source imports a module whose name is computed.
    DynamicImport,
    /// A package source imports a module with system access.
    DangerousImport,
    /// A package's code that a pickle's call reaches.
    PackageCode,
    /// A module a load imports from the host.
    Extern,
    /// TorchScript code, which libtorch compiles and runs.
    #[serde(rename = "torchscript")]
    TorchScript,
    /// An anomaly of the zip container.
    Container,
    /// A module the package interns under a well-known name.
    Shadowing,
    /// A record or file that could not be audited.
    Unreadable,
}

impl FindingKind {
    /// The kind's name, as serialised: `import`, `persistent-id`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Import => "import",
            FindingKind::Call => "call",
            FindingKind::Instantiate => "instantiate",
            FindingKind::SetState => "setstate",
            FindingKind::PersistentId => "persistent-id",
            FindingKind::ImportTimeCode => "import-time-code",
            FindingKind::DynamicImport => "dynamic-import",
            FindingKind::DangerousImport => "dangerous-import",
            FindingKind::PackageCode => "package-code",
            FindingKind::Extern => "extern",
            FindingKind::TorchScript => "torchscript",
            FindingKind::Container => "container",
            FindingKind::Shadowing => "shadowing",
            FindingKind::Unreadable => "unreadable",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so widths and alignment (`{:<15}`) apply.
        f.pad(self.as_str())
    }
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
            .any(|f| f.kind == FindingKind::Unreadable && f.level == Level::Unsafe)
    }
}
/// Deepest nesting of files in files audited (a torch.save inside a
/// pickle's bytes inside a `.pt2`, ...).
const MAX_NESTED_DEPTH: usize = 4;

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

#[cfg(test)]
mod tests {
    use super::FindingKind;

    #[test]
    fn kinds_serialise_as_their_names() {
        use FindingKind::*;
        let kinds = [
            Import,
            Call,
            Instantiate,
            SetState,
            PersistentId,
            ImportTimeCode,
            DynamicImport,
            DangerousImport,
            PackageCode,
            Extern,
            TorchScript,
            Container,
            Shadowing,
            Unreadable,
        ];
        for kind in kinds {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
            assert_eq!(format!("{kind:<16}|"), format!("{:<16}|", kind.as_str()));
        }
    }
}
