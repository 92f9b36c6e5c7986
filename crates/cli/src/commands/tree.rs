//! `tpkg tree`: the package's files as PyTorch's `file_structure` prints them.

use std::io::{self, Write};
use std::path::Path;

use tpkg::glob::Patterns;

/// `tpkg tree PACKAGE [--include PAT]... [--exclude PAT]...`.
pub fn run(package: &Path, include: Vec<String>, exclude: Vec<String>) -> anyhow::Result<()> {
    super::require_zip(package, "tree")?;
    let reader = tpkg::archive::PackageReader::open(package)?;
    let include = match include.len() {
        0 => Patterns::from("**"),
        1 => Patterns::from(include[0].clone()),
        _ => Patterns::from(include),
    };
    let exclude = match exclude.len() {
        0 => Patterns::none(),
        1 => Patterns::from(exclude[0].clone()),
        _ => Patterns::from(exclude),
    };
    let name = package.display().to_string();
    let tree = tpkg::Directory::of_package(&reader, &name, include, exclude)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    write!(out, "{tree}")?;
    out.flush()?;
    Ok(())
}
