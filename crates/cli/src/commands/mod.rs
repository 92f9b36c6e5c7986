//! One module per `tpkg` command; `main.rs` parses the arguments and calls
//! the command's `run`. What several commands share lives here.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

pub mod audit;
pub mod cat;
pub mod convert;
pub mod diff;
pub mod extract;
pub mod graph;
pub mod imports;
pub mod inspect;
pub mod pack;
pub mod progress;
pub mod repack;
pub mod show;
pub mod tensors;
pub mod tree;
pub mod verify;

/// Writes `value` as pretty JSON and a newline: every `--json` output.
pub(crate) fn write_json(
    out: &mut impl Write,
    value: &impl serde::Serialize,
) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Refuses, with a clear reason, a file that is not a zip for a command
/// that works on records (`tree`, `cat`, `extract`).
fn require_zip(path: &Path, command: &str) -> anyhow::Result<()> {
    use tpkg::formats::{FileFormat, Sniffed};
    // An unreadable path is left to the command, which says so its way.
    let format = match tpkg::formats::sniff_path(path) {
        Ok(Sniffed::Zip) | Err(_) => return Ok(()),
        Ok(Sniffed::LegacyStream | Sniffed::Tar) => FileFormat::TorchSaveLegacy,
        Ok(Sniffed::Pickle) => FileFormat::Pickle,
    };
    anyhow::bail!(
        "{}: a {format} file has no records; `{command}` works on zip files (packages, torch.save, TorchScript, .pt2). `tpkg show`, `tensors` and `audit` read it",
        path.display()
    )
}

/// The pickle a command reads: the one named, else the file's main one.
fn main_pickle(
    reader: &tpkg::archive::PackageReader,
    named: Option<String>,
) -> anyhow::Result<String> {
    if let Some(named) = named {
        return Ok(named);
    }
    let format = tpkg::formats::zip_format(reader);
    tpkg::formats::main_pickle(reader, format).with_context(|| {
        format!(
            "{}: this {format} file has no pickle to read by default; name one (see `tpkg inspect`)",
            reader.label()
        )
    })
}
