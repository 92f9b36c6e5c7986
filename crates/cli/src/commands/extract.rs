//! `tpkg extract`: a package unzipped into PyTorch's directory form.

use std::path::Path;

use tpkg::archive::Durability;

/// `tpkg extract PACKAGE DIR`: prints the folder it created.
pub fn run(package: &Path, dir: &Path, durability: Durability) -> anyhow::Result<()> {
    super::require_zip(package, "extract")?;
    let reader = tpkg::archive::PackageReader::open(package)?;
    let folder = tpkg::archive::extract_with(&reader, dir, durability)?;
    println!("{}", folder.display());
    Ok(())
}
