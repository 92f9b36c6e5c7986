//! `tpkg cat`: one record's raw bytes to standard output.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;

/// `tpkg cat PACKAGE RECORD`.
pub fn run(package: &Path, record: &str) -> anyhow::Result<()> {
    super::require_zip(package, "cat")?;
    let reader = tpkg::archive::PackageReader::open(package)?;
    let mut source = reader.open_record(record)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    io::copy(&mut source, &mut out)
        .with_context(|| format!("copying record {record:?} to standard output"))?;
    out.flush()?;
    Ok(())
}
