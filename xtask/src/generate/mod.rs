//! `cargo xtask gen`: every generated file, written from its source.
//!
//! A table copied by hand drifts from what it copies; here each generated
//! file has a generator, `cargo xtask gen` rewrites them all, and
//! `cargo xtask tidy` fails when a file differs from what its generator
//! renders now (so an upgraded PyTorch that changes its allowlist, or a
//! hand edit, is caught).

mod build_scripts;
mod stdlib_names;
mod weights_only;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::tidy::Violation;

/// One generated file: where it lives and what it should hold.
struct Generated {
    path: PathBuf,
    text: String,
}

/// Renders every generated file (needs the oracle venv for the tables read
/// from PyTorch).
fn render_all(root: &Path) -> anyhow::Result<Vec<Generated>> {
    let mut all = Vec::new();
    all.extend(build_scripts::render(root)?);
    all.push(weights_only::render(root)?);
    all.push(Generated {
        path: PathBuf::from(stdlib_names::OUTPUT),
        text: stdlib_names::render(root)?,
    });
    Ok(all)
}

/// `cargo xtask gen [--refresh-stdlib]`: writes every generated file;
/// with `--refresh-stdlib`, first adds to the standard-library lists what
/// the interpreters `python3.<minor>` on `PATH` find.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let root = crate::util::root();
    match args {
        [] => {}
        [flag] if flag == "--refresh-stdlib" => refresh_stdlib(&root)?,
        _ => anyhow::bail!("usage: cargo xtask gen [--refresh-stdlib] (got {args:?})"),
    }
    for generated in render_all(&root)? {
        let path = root.join(&generated.path);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != generated.text {
            std::fs::write(&path, &generated.text)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("xtask: gen: wrote {}", generated.path.display());
        }
    }
    Ok(())
}

/// For tidy: every generated file as its generator renders it now.
pub fn check(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let mut violations = Vec::new();
    for generated in render_all(root)? {
        let current = std::fs::read_to_string(root.join(&generated.path)).unwrap_or_default();
        if current != generated.text {
            violations.push(Violation::new(
                generated.path.display().to_string(),
                "differs from what its generator renders: run `cargo xtask gen`",
            ));
        }
    }
    Ok(violations)
}

fn refresh_stdlib(root: &Path) -> anyhow::Result<()> {
    for refreshed in stdlib_names::refresh(root)? {
        match &refreshed.interpreter {
            Some(interpreter) => eprintln!(
                "xtask: gen: Python {} ({}): {} module(s) added{}",
                refreshed.version,
                interpreter.display(),
                refreshed.added.len(),
                if refreshed.added.is_empty() {
                    String::new()
                } else {
                    format!(": {}", refreshed.added.join(", "))
                }
            ),
            None => eprintln!(
                "xtask: gen: Python {}: no python{} on PATH, list kept",
                refreshed.version, refreshed.version
            ),
        }
    }
    Ok(())
}
