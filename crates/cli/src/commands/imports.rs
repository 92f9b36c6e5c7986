//! `tpkg imports`: PyTorch's dependency answer for modules, statically.
//!
//! The JSON shape is a contract (issue 7): `{"<module>": ["<dep>", ...]}`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tpkg::pysource::Found;

use super::write_json;

pub fn run(
    patterns: &[String],
    paths: Vec<PathBuf>,
    python: Option<&Path>,
    as_json: bool,
) -> anyhow::Result<()> {
    let finder = super::pack::finder(&paths, python)?;
    let modules = super::pack::expand_modules(&finder, patterns)?;
    let mut report = serde_json::Map::new();
    for module in modules {
        let deps = match finder.find(&module) {
            Some(Found::Source { file, is_package }) => {
                let source = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                finder
                    .dependencies(&source, &module, is_package)
                    .with_context(|| format!("{module} ({})", file.display()))?
                    .modules
            }
            Some(Found::Namespace { .. }) => Vec::new(),
            Some(Found::Extension { file }) => {
                bail!(
                    "{module} is an extension module ({}); it has no Python source",
                    file.display()
                )
            }
            Some(Found::Builtin) => {
                bail!("{module} is built into the interpreter; it has no source")
            }
            Some(Found::Stdlib) => {
                bail!(
                    "{module} is in the standard library, known by name only; give --python PY to read its source"
                )
            }
            None => bail!("module {module:?} is not on the search path"),
        };
        report.insert(module, deps.into());
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if as_json {
        write_json(&mut out, &report)?;
    } else {
        for (module, deps) in &report {
            writeln!(out, "{module}")?;
            for dep in deps.as_array().into_iter().flatten() {
                writeln!(out, "    {}", dep.as_str().unwrap_or_default())?;
            }
        }
    }
    Ok(())
}
