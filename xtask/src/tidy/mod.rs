//! `cargo xtask tidy`: the rules a reviewer would otherwise enforce by
//! hand, checked on every `cargo xtask test` (rust-analyzer's `tidy.rs` is
//! the model). Each rule says why it exists where it is defined.
//!
//! - [`layers`]: which crate may depend on which, and who may touch tch;
//! - [`sizes`]: files and functions small enough to hold in your head;
//! - [`docs`]: every path a document cites exists, every CLI command is
//!   documented, the release files are there;
//! - [`kinds`]: categories are enums, not `&'static str`;
//! - generated files regenerate identically ([`crate::generate`]);
//! - every publishable crate packages (`cargo package --list`).

mod docs;
mod kinds;
mod layers;
mod sizes;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::util;

/// One broken rule: where, and what.
#[derive(Debug)]
pub struct Violation {
    /// The file (relative to the root) or crate at fault.
    pub place: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Violation {
    pub fn new(place: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            place: place.into(),
            message: message.into(),
        }
    }
}

/// Runs every rule; fails listing each violation.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    if let Some(unknown) = args.first() {
        bail!("`cargo xtask tidy` takes no arguments (got {unknown:?})");
    }
    let root = util::root();
    let files = tracked_files(&root)?;
    let mut violations = Vec::new();
    violations.extend(layers::check(&root)?);
    violations.extend(layers::check_facade(&root, &files)?);
    violations.extend(sizes::check(&root, &files)?);
    violations.extend(docs::check(&root, &files)?);
    violations.extend(kinds::check(&root, &files)?);
    violations.extend(crate::generate::check(&root)?);
    violations.extend(packaging(&root)?);
    if violations.is_empty() {
        eprintln!("xtask: tidy: {} files, no violations", files.len());
        return Ok(());
    }
    for violation in &violations {
        eprintln!("tidy: {}: {}", violation.place, violation.message);
    }
    bail!("{} tidy violation(s)", violations.len())
}

/// Every file git tracks (plus untracked, not ignored ones, so a new file
/// is checked before it is committed), relative to the root.
pub fn tracked_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let listing = util::output(
        std::process::Command::new("git")
            .args(["ls-files", "--cached", "--others", "--exclude-standard"])
            .current_dir(root),
    )
    .context("listing the repository's files with git")?;
    let mut files: Vec<PathBuf> = listing
        .lines()
        .map(PathBuf::from)
        .filter(|path| root.join(path).is_file())
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// Every publishable crate lists its files for `cargo package`: a build
/// script or include outside the crate would break a release.
fn packaging(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let mut violations = Vec::new();
    for package in layers::workspace_packages(root)? {
        if !package.publishable {
            continue;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = std::process::Command::new(cargo)
            .args(["package", "--list", "--allow-dirty", "--quiet", "-p"])
            .arg(&package.name)
            .current_dir(root)
            .output()
            .context("running cargo package --list")?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            violations.push(Violation::new(
                &package.name,
                format!("`cargo package --list` fails: {first}"),
            ));
        }
    }
    Ok(violations)
}
