//! The audit before a load: `tpkg.load` refuses a file whose pickle holds
//! anything the audit calls unsafe, naming the global and its byte offset.
//!
//! A whole-file audit checks every record's CRC, which would cost a
//! gigabyte state dict more than loading it. So the pickles the load reads
//! are audited first, on their own ([`tpkg::audit::audit_stream`]); when
//! that finds anything not known safe, the whole file is audited
//! ([`tpkg::audit::audit_path`], with the package's context: its own
//! modules and their import-time code, TorchScript's reader), and the load
//! is refused on its first unsafe finding (those in the loaded pickles
//! first). Files that are not zips are always audited whole (their audit
//! reads only pickles), and so are `.pt2` archives (whose loader unpickles
//! more than the weights tpkg reads) and packages that hold Python sources
//! (whose globals may be the package's own modules).

use std::path::Path;

use pyo3::prelude::*;
use serde_json::Value;
use tpkg::audit::{AuditPolicy, audit_path, audit_stream};
use tpkg::formats::{FileFormat, PyTorchFile, main_pickle};

use crate::errors::{TpkgError, UnreadableFileError, UnsafeFileError};

/// Why a load is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// A finding of level unsafe (a global imported or called, ...).
    Unsafe,
    /// An unsafe `unreadable` finding: part of a pickle cannot be read.
    Unreadable,
}

/// A refused load: the finding that decided it (the audit's JSON form).
#[derive(Debug, Clone)]
pub struct Refusal {
    kind: RefusalKind,
    finding: Value,
}

impl Refusal {
    /// The Python exception: [`UnsafeFileError`] or
    /// [`UnreadableFileError`], with the finding's fields as attributes.
    pub fn into_py_err(self, path: &Path) -> PyErr {
        let text = |key: &str| self.finding[key].as_str().unwrap_or_default().to_owned();
        let subject = text("subject");
        let record = text("record");
        let reason = text("reason");
        let offset = self.finding["offset"].as_u64();
        let at = offset.map(|o| format!(" at byte {o}")).unwrap_or_default();
        let place = if record.is_empty() {
            String::new()
        } else {
            format!(" in {record}")
        };
        let message = match self.kind {
            RefusalKind::Unsafe => format!(
                "{}: unsafe {} {subject}{place}{at}: {reason}",
                path.display(),
                text("kind")
            ),
            RefusalKind::Unreadable => {
                format!("{}: unreadable{place}{at}: {reason}", path.display())
            }
        };
        let error = match self.kind {
            RefusalKind::Unsafe => UnsafeFileError::new_err(message),
            RefusalKind::Unreadable => UnreadableFileError::new_err(message),
        };
        Python::attach(|py| {
            let value = error.value(py);
            let finding = crate::json::to_python(py, &self.finding).ok();
            let attributes = [
                (
                    "global_name",
                    subject.into_pyobject(py).ok().map(Bound::into_any),
                ),
                ("offset", offset.into_pyobject(py).ok().map(Bound::into_any)),
                ("record", record.into_pyobject(py).ok().map(Bound::into_any)),
                (
                    "kind",
                    text("kind").into_pyobject(py).ok().map(Bound::into_any),
                ),
                ("reason", reason.into_pyobject(py).ok().map(Bound::into_any)),
                ("finding", finding),
            ];
            for (name, attribute) in attributes {
                if let Some(attribute) = attribute {
                    let _ = value.setattr(name, attribute);
                }
            }
        });
        error
    }
}

/// The policy from its JSON text (`{"safe": [...], "unsafe": [...]}`).
pub fn policy(json: Option<&str>) -> PyResult<AuditPolicy> {
    match json {
        None => Ok(AuditPolicy::default()),
        Some(text) => serde_json::from_str::<AuditPolicy>(text)
            .map_err(|error| TpkgError::new_err(format!("policy: {error}"))),
    }
}

/// The first unsafe finding of `findings` whose record passes `keep`: an
/// unsafe global before an unreadable part.
fn first_refusal(findings: &[Value], keep: impl Fn(&Value) -> bool) -> Option<Refusal> {
    let unsafe_ = |f: &&Value| f["level"] == "unsafe" && keep(f);
    let unreadable = |f: &Value| f["kind"] == "unreadable";
    if let Some(finding) = findings.iter().filter(unsafe_).find(|f| !unreadable(f)) {
        return Some(Refusal {
            kind: RefusalKind::Unsafe,
            finding: finding.clone(),
        });
    }
    findings.iter().find(unsafe_).map(|finding| Refusal {
        kind: RefusalKind::Unreadable,
        finding: finding.clone(),
    })
}

/// A report's findings in their JSON form.
fn findings_json(report: &tpkg::audit::AuditReport) -> Vec<Value> {
    match serde_json::to_value(report) {
        Ok(Value::Object(mut map)) => match map.remove("findings") {
            Some(Value::Array(findings)) => findings,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The pickle records of a zip file a load of `name` (or of the main
/// pickle) decodes: the pickle, and in a package the TorchScript modules'
/// pickles it may refer to.
fn loaded_records(file: &PyTorchFile, name: Option<&str>) -> Vec<String> {
    let PyTorchFile::Zip { reader, format } = file else {
        return Vec::new();
    };
    let main = match name {
        Some(name) => Some(name.to_owned()),
        None => main_pickle(reader, *format),
    };
    let mut records: Vec<String> = main.into_iter().collect();
    if *format == FileFormat::Package {
        records.extend(
            reader
                .records()
                .iter()
                .map(|r| r.name.clone())
                .filter(|n| n.starts_with(".data/ts_code/") && n.ends_with("/data.pkl")),
        );
    }
    records
}

/// Refuses the load when the pickles it reads hold anything unsafe (see
/// the [module docs](self)).
pub fn check_loadable(
    path: &Path,
    file: &PyTorchFile,
    name: Option<&str>,
    policy: &AuditPolicy,
) -> Result<(), Refusal> {
    let whole = || {
        let report = audit_path(path, policy);
        first_refusal(&findings_json(&report), |_| true).map_or(Ok(()), Err)
    };
    // A `.pt2` loader reads more than its weights (pickled constants,
    // sample inputs): audited whole.
    let PyTorchFile::Zip { reader, format } = file else {
        return whole();
    };
    // A package with Python sources: its globals may be its own modules
    // (import-time code, a module shadowing the standard library), which
    // only the whole audit knows.
    let has_sources = *format == FileFormat::Package
        && reader
            .records()
            .iter()
            .any(|r| r.name.ends_with(".py") && !r.name.starts_with(".data/"));
    if *format == FileFormat::Pt2 || has_sources {
        return whole();
    }
    let records = loaded_records(file, name);
    let mut suspicious = false;
    for record in &records {
        // A record that cannot be read fails the load itself, later.
        let Ok(bytes) = reader.read(record) else {
            continue;
        };
        let report = audit_stream(&bytes, policy);
        if findings_json(&report).iter().any(|f| f["level"] != "safe") {
            suspicious = true;
            break;
        }
    }
    if !suspicious {
        return Ok(());
    }
    // Confirm with the whole file's audit, which knows the package's own
    // modules (whose import-time code unpickling would run) and
    // TorchScript's reader. Findings in the loaded pickles come first.
    let report = audit_path(path, policy);
    let findings = findings_json(&report);
    let ours = |finding: &Value| {
        finding["record"]
            .as_str()
            .is_some_and(|record| records.iter().any(|r| r == record))
    };
    first_refusal(&findings, ours)
        .or_else(|| first_refusal(&findings, |_| true))
        .map_or(Ok(()), Err)
}
