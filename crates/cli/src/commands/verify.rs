//! `tpkg verify`: an analysis command with diff(1)-style exit codes — 0
//! nothing found, 1 something found, 2 the input is unreadable.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use tpkg::archive::PackageReader;

use super::write_json;

/// Exit code: the input could not be read at all.
const UNREADABLE: u8 = 2;

fn open(path: &Path) -> Result<PackageReader, ExitCode> {
    PackageReader::open(path).map_err(|error| {
        // The same one-line form as every other error: causes after colons.
        eprintln!("tpkg: error: {:#}", anyhow::Error::new(error));
        ExitCode::from(UNREADABLE)
    })
}

/// `tpkg verify PACKAGE [--json]`.
pub fn run(package: &Path, json: bool) -> anyhow::Result<ExitCode> {
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
            super::progress::with_bytes("verifying", |progress| {
                let options = tpkg::verify::VerifyOptions::default().with_progress(progress);
                tpkg::verify::verify_with(&reader, options)
            })
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
