//! `tpkg diff`: any two PyTorch files, in any formats. Exit codes as
//! diff(1): 0 the same, 1 different, 2 an input is unreadable.
//!
//! Two zips of one format are compared record by record
//! ([`tpkg::diff::diff`]); otherwise the files' main objects are compared
//! ([`tpkg::diff::diff_files`]), and decide.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use tpkg::archive::PackageReader;
use tpkg::diff::{Compared, DiffReport, ObjectDiff, ValuesStatus};
use tpkg::formats::PyTorchFile;

use super::write_json;

/// Exit code: an input could not be read.
const UNREADABLE: u8 = 2;

fn unreadable(error: &dyn std::error::Error) -> ExitCode {
    // The same one-line form as every other error: causes after colons,
    // each once.
    eprintln!("tpkg: error: {}", tpkg::error_chain(error));
    ExitCode::from(UNREADABLE)
}

/// Opens `path` by content, as every command does; a pickle file's
/// pickles are decoded as data (`TorchData`), as every other format's
/// pickles are: a pickled state dict (an `OrderedDict`) is then a dict of
/// tensors, as in its `torch.save` twin, not a call.
fn open(path: &Path) -> anyhow::Result<PyTorchFile> {
    PyTorchFile::open(path).map_err(|error| anyhow::anyhow!(tpkg::error_chain(&error)))
}

/// `tpkg diff A B [--json]`.
pub fn run(a: &Path, b: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (file_a, file_b) = match (open(a), open(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(error), _) | (_, Err(error)) => {
            // The same one-line form as every other error.
            eprintln!("tpkg: error: {error:#}");
            return Ok(ExitCode::from(UNREADABLE));
        }
    };
    if let (
        PyTorchFile::Zip {
            reader: reader_a,
            format: format_a,
        },
        PyTorchFile::Zip {
            reader: reader_b,
            format: format_b,
        },
    ) = (&file_a, &file_b)
        && format_a == format_b
    {
        // Records alone, as ever.
        return records(a, b, reader_a, reader_b, json);
    }
    let report = match tpkg::diff::diff_files(&file_a, &file_b) {
        Ok(report) => report,
        Err(error) => return Ok(unreadable(&error)),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        write_json(&mut out, &report)?;
    } else {
        write_text(&mut out, a, b, &report)?;
    }
    out.flush()?;
    Ok(exit_status(report.is_same()))
}

/// Two zips of one format, record by record: records only in one, and
/// which sources, pickled values and tensors differ.
fn records(
    a: &Path,
    b: &Path,
    reader_a: &PackageReader,
    reader_b: &PackageReader,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let report = tpkg::diff::diff(reader_a, reader_b);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        write_json(&mut out, &report)?;
    } else {
        write_only_in(&mut out, "", (a, &report.only_in_a), (b, &report.only_in_b))?;
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
    Ok(exit_status(report.is_same()))
}

/// diff(1)'s exit status: 0 the same, 1 different.
fn exit_status(same: bool) -> ExitCode {
    if same {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `{what}only in A: NAME` for each name only in A, then the same for B.
fn write_only_in(
    out: &mut impl Write,
    what: &str,
    a: (&Path, &[String]),
    b: (&Path, &[String]),
) -> std::io::Result<()> {
    for (path, names) in [a, b] {
        for name in names {
            writeln!(out, "{what}only in {}: {name}", path.display())?;
        }
    }
    Ok(())
}

fn write_text(
    out: &mut impl Write,
    a: &Path,
    b: &Path,
    report: &DiffReport,
) -> std::io::Result<()> {
    if let Some(formats) = report.formats {
        writeln!(
            out,
            "formats: {} vs {}; compared: {}",
            formats.a,
            formats.b,
            report
                .compared
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    if report.compared.contains(&Compared::Records) {
        // Zips of two formats never share their records: a count, for
        // information (`--json` lists them); the main objects decide.
        writeln!(
            out,
            "records (for information): {} identical, {} differ, {} only in one file",
            report.same,
            report.differ.len(),
            report.only_in_a.len() + report.only_in_b.len()
        )?;
    }
    if let Some(object) = &report.object {
        write_object(out, a, b, object)?;
    }
    Ok(())
}

fn write_object(
    out: &mut impl Write,
    a: &Path,
    b: &Path,
    object: &ObjectDiff,
) -> std::io::Result<()> {
    let tensors = &object.tensors;
    write_only_in(
        out,
        "tensor ",
        (a, &tensors.only_in_a),
        (b, &tensors.only_in_b),
    )?;
    for difference in &tensors.differ {
        writeln!(
            out,
            "tensor differs: {}: {}",
            difference.path, difference.detail
        )?;
    }
    for difference in &object.values.differences {
        let path = if difference.path.is_empty() {
            "(main object)"
        } else {
            &difference.path
        };
        writeln!(
            out,
            "value differs: {path}: {} vs {}",
            difference.a, difference.b
        )?;
    }
    let values = match (&object.values.status, &object.values.note) {
        (ValuesStatus::Same, _) => "same values".to_owned(),
        (ValuesStatus::Differ, _) => "values differ".to_owned(),
        (status, Some(note)) => format!("values {} ({note})", status.name()),
        (status, None) => format!("values {}", status.name()),
    };
    writeln!(
        out,
        "main objects: {} tensors identical, {} differ, {} only in one file; {values}",
        tensors.same,
        tensors.differ.len(),
        tensors.only_in_a.len() + tensors.only_in_b.len()
    )
}
