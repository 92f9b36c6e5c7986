//! `tpkg`: inspect, extract and write PyTorch `torch.package` archives
//! without Python.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod inspect;

/// Inspect, extract and write PyTorch torch.package archives, without Python
/// and without running any code from the package.
///
/// Exit status: 0 on success, 1 when the package or a file cannot be read or
/// written, 2 on a usage error.
#[derive(Debug, Parser)]
#[command(name = "tpkg", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Summarise a package: folder, bookkeeping records, every record.
    ///
    /// Works on a zip package or on PyTorch's directory form.
    Inspect {
        /// The package file or folder.
        package: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write one record's raw bytes to standard output.
    Cat {
        /// The package file or folder.
        package: PathBuf,
        /// The record name, without the package folder (e.g. `.data/version`).
        record: String,
    },
    /// Unzip a package into PyTorch's directory form, DIR/<package folder>/.
    ///
    /// Never writes outside DIR and never overwrites an existing folder.
    Extract {
        /// The package file.
        package: PathBuf,
        /// Where to create the package folder.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if is_broken_pipe(&error) {
                // `tpkg cat big.pt x | head` is not an error.
                return ExitCode::SUCCESS;
            }
            eprintln!("tpkg: error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect { package, json } => {
            let report = inspect::Report::of(&package)?;
            let stdout = io::stdout();
            let mut out = stdout.lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else {
                report.write_text(&mut out)?;
            }
            out.flush()?;
        }
        Command::Cat { package, record } => {
            let reader = tpkg::archive::PackageReader::open(&package)?;
            let mut source = reader.open_record(&record)?;
            let stdout = io::stdout();
            let mut out = stdout.lock();
            io::copy(&mut source, &mut out)
                .with_context(|| format!("copying record {record:?} to standard output"))?;
            out.flush()?;
        }
        Command::Extract { package, dir } => {
            let reader = tpkg::archive::PackageReader::open(&package)?;
            let folder = tpkg::archive::extract(&reader, &dir)?;
            println!("{}", folder.display());
        }
    }
    Ok(())
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io_error| io_error.kind() == io::ErrorKind::BrokenPipe)
    })
}
