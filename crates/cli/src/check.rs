//! `tpkg verify` and `tpkg diff`: analysis commands with diff(1)-style exit
//! codes — 0 nothing found, 1 something found, 2 an input is unreadable.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use tpkg::archive::PackageReader;

use crate::write_json;

/// Exit code: the input could not be read at all.
const UNREADABLE: u8 = 2;

fn open(path: &Path) -> Result<PackageReader, ExitCode> {
    PackageReader::open(path).map_err(|error| {
        // The same one-line form as every other error: causes after colons.
        eprintln!("tpkg: error: {:#}", anyhow::Error::new(error));
        ExitCode::from(UNREADABLE)
    })
}

pub fn verify(package: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let report = match tpkg::formats::sniff_path(package) {
        Ok(
            tpkg::formats::Sniffed::LegacyStream
            | tpkg::formats::Sniffed::Tar
            | tpkg::formats::Sniffed::Pickle,
        ) => verify_stream(package),
        _ => {
            let reader = match open(package) {
                Ok(reader) => reader,
                Err(code) => return Ok(code),
            };
            tpkg::verify::verify(&reader)
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        write_json(&mut out, &report)?;
    } else {
        for problem in &report.problems {
            writeln!(out, "{}: {}", problem.record, problem.problem)?;
        }
        writeln!(
            out,
            "{}: {} records, {} pickles, {} tensors, {} sources checked; {}",
            package.display(),
            report.records,
            report.pickles,
            report.tensors,
            report.sources,
            match report.problems.len() {
                0 => "no problems".to_owned(),
                1 => "1 problem".to_owned(),
                n => format!("{n} problems"),
            }
        )?;
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn diff(a: &Path, b: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (reader_a, reader_b) = match (open(a), open(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(code), _) | (_, Err(code)) => return Ok(code),
    };
    let report = tpkg::diff::diff(&reader_a, &reader_b);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        write_json(&mut out, &report)?;
    } else {
        for name in &report.only_in_a {
            writeln!(out, "only in {}: {name}", a.display())?;
        }
        for name in &report.only_in_b {
            writeln!(out, "only in {}: {name}", b.display())?;
        }
        for difference in &report.differ {
            writeln!(
                out,
                "differs ({}): {}: {}",
                difference.kind, difference.record, difference.detail
            )?;
        }
        writeln!(
            out,
            "{} records identical, {} differ, {} only in one package",
            report.same,
            report.differ.len(),
            report.only_in_a.len() + report.only_in_b.len()
        )?;
    }
    Ok(if report.is_same() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `tpkg audit`: what a load in PyTorch would run. Exit 0 when nothing is
/// at or above `fail_on`, 1 when something is, 2 when the package cannot be
/// read (its container anomalies are still printed).
pub fn audit(
    package: &Path,
    json: bool,
    policy: Option<&Path>,
    fail_on: tpkg::audit::Level,
    all: bool,
) -> anyhow::Result<ExitCode> {
    use tpkg::audit::AuditPolicy;

    let policy = match policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading policy {}: {e}", path.display()))?;
            AuditPolicy::from_json(&text)
                .map_err(|e| anyhow::anyhow!("policy {}: {e}", path.display()))?
        }
        None => AuditPolicy::default(),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // An unreadable path goes to the zip reader, whose error says why.
    let sniffed = tpkg::formats::sniff_path(package).unwrap_or(tpkg::formats::Sniffed::Zip);
    if sniffed != tpkg::formats::Sniffed::Zip {
        // A legacy torch.save or a plain pickle: every pickle in it. A
        // legacy file is read through its memory map; anything else (a
        // pickle file, a legacy file that does not parse) whole.
        let mapped = match sniffed {
            tpkg::formats::Sniffed::LegacyStream | tpkg::formats::Sniffed::Tar => {
                tpkg::legacy::LegacyFile::open(package).ok()
            }
            _ => None,
        };
        let report = match mapped {
            Some(file) => tpkg::audit::audit_legacy(&file, &policy),
            None => {
                let bytes = std::fs::read(package)
                    .map_err(|error| anyhow::anyhow!("{}: {error}", package.display()))?;
                tpkg::audit::audit_stream(&bytes, &policy)
            }
        };
        return write_audit(&mut out, package, &report, json, fail_on, all);
    }
    let reader = match PackageReader::open(package) {
        Ok(reader) => reader,
        Err(error) => {
            let error = anyhow::Error::new(error);
            // The container may still say why: show its anomalies.
            let anomalies = match std::fs::metadata(package) {
                Ok(meta) if meta.is_file() && meta.len() <= (1 << 30) => std::fs::read(package)
                    .map(|b| tpkg::audit::container_findings(&b))
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            if json {
                let value = serde_json::json!({
                    "error": format!("{error:#}"),
                    "findings": anomalies,
                });
                write_json(&mut out, &value)?;
            } else {
                for finding in &anomalies {
                    write_finding(&mut out, finding)?;
                }
            }
            eprintln!("tpkg: error: {error:#}");
            return Ok(ExitCode::from(UNREADABLE));
        }
    };
    let report = tpkg::audit::audit(&reader, reader.zip_bytes(), &policy);
    write_audit(&mut out, package, &report, json, fail_on, all)
}

/// Prints an audit report (text or JSON) and gives the exit status.
fn write_audit(
    out: &mut impl Write,
    package: &Path,
    report: &tpkg::audit::AuditReport,
    json: bool,
    fail_on: tpkg::audit::Level,
    all: bool,
) -> anyhow::Result<ExitCode> {
    use tpkg::audit::Level;

    if json {
        write_json(&mut *out, report)?;
    } else {
        let mut safe = 0;
        for finding in &report.findings {
            if finding.level == Level::Safe && !all {
                safe += finding.count;
                continue;
            }
            write_finding(&mut *out, finding)?;
        }
        let count = |level| {
            report
                .findings
                .iter()
                .filter(|f| f.level == level)
                .map(|f| f.count)
                .sum::<usize>()
        };
        writeln!(
            out,
            "{}: {} pickles, {} sources; {} unsafe, {} to review, {} safe{}",
            package.display(),
            report.pickles,
            report.sources,
            count(Level::Unsafe),
            count(Level::Review),
            count(Level::Safe),
            if safe > 0 && !all {
                " (--all lists them)"
            } else {
                ""
            }
        )?;
    }
    let failed = report.worst().is_some_and(|worst| worst >= fail_on);
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_finding(out: &mut impl Write, finding: &tpkg::audit::Finding) -> std::io::Result<()> {
    let place = match (&finding.record, finding.offset, finding.line) {
        (Some(record), Some(offset), _) => format!("{record}@{offset}"),
        (Some(record), None, Some(line)) => format!("{record}:{line}"),
        (Some(record), None, None) => record.clone(),
        (None, Some(offset), _) => format!("@{offset}"),
        (None, None, _) => String::new(),
    };
    let times = if finding.count > 1 {
        format!(" (×{})", finding.count)
    } else {
        String::new()
    };
    writeln!(
        out,
        "{:<6} {:<16} {place}: {} — {}{times}",
        finding.level.to_string(),
        finding.kind,
        finding.subject,
        finding.reason
    )
}

/// A file that is not a zip (a legacy `torch.save`, a pickle file): its
/// layout parses, every pickle decodes and every tensor lies inside its
/// storage.
fn verify_stream(path: &Path) -> tpkg::verify::VerifyReport {
    use tpkg::formats::PyTorchFile;
    let mut report = tpkg::verify::VerifyReport::default();
    let problem = |error: &dyn std::error::Error| tpkg::verify::Problem {
        record: "(file)".to_owned(),
        problem: tpkg::error_chain(error),
    };
    match PyTorchFile::open(path) {
        Err(error) => report.problems.push(problem(&error)),
        Ok(file) => {
            report.pickles = match &file {
                PyTorchFile::Legacy(legacy) => legacy.pickles().len(),
                PyTorchFile::Pickle(pickles) => pickles.len(),
                PyTorchFile::Zip { .. } => 0,
            };
            match file.tensors(None) {
                Ok(tensors) => report.tensors = tensors.len(),
                Err(error) => report.problems.push(problem(&error)),
            }
        }
    }
    report
}
