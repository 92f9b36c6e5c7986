//! `tpkg extract`: a package unzipped into PyTorch's directory form.

use std::path::Path;

use tpkg::archive::Durability;

/// `tpkg extract PACKAGE DIR`: prints the folder it created.
pub fn run(package: &Path, dir: &Path, durability: Durability) -> anyhow::Result<()> {
    super::require_zip(package, "extract")?;
    let reader = tpkg::archive::PackageReader::open(package)?;
    let folder = super::progress::with_bytes("extracting", |progress| {
        let options = tpkg::archive::ExtractOptions::default()
            .with_durability(durability)
            .with_progress(progress);
        tpkg::archive::extract_with_options(&reader, dir, options)
    })?;
    println!("{}", folder.display());
    Ok(())
}
