//! `tpkg pack`: PyTorch's exporter, statically.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tpkg::archive::{Durability, WriteOptions};
use tpkg::exporter::{ExportError, PackageExporter};
use tpkg::glob::{GlobGroup, Patterns, Separator};
use tpkg::pysource::ModuleFinder;

use super::write_json;

/// One `--intern/--extern/--mock/--deny PATTERN`, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Intern(String),
    Extern(String),
    Mock(String),
    Deny(String),
}

/// What `tpkg pack` was asked to do.
pub struct PackJob<'a> {
    pub output: &'a Path,
    pub paths: Vec<PathBuf>,
    pub python: Option<&'a Path>,
    pub rules: Vec<Rule>,
    pub modules: &'a [String],
    pub debug: bool,
    pub durability: Durability,
    pub json: bool,
}

/// The exit status of a packaging failure (broken modules or an empty
/// `allow_empty=False` match): the same as any other failure.
pub fn run(job: PackJob<'_>) -> anyhow::Result<()> {
    let finder = finder(&job.paths, job.python)?;
    let mut options = WriteOptions::default();
    if job.durability == Durability::NoFsync {
        options = options.without_fsync();
    }
    if let Some(release) = finder.python_release() {
        options.python_version = release.to_owned();
    }
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(Duration::from_millis(100));
    let modules = expand_modules(&finder, job.modules)?;
    let mut exporter = PackageExporter::create_with(job.output, finder, options)?;
    if job.debug {
        exporter.enable_debug();
    }
    for rule in &job.rules {
        match rule {
            Rule::Intern(p) => exporter.intern(p.as_str())?,
            Rule::Extern(p) => exporter.extern_modules(p.as_str())?,
            Rule::Mock(p) => exporter.mock(p.as_str())?,
            Rule::Deny(p) => exporter.deny(p.as_str())?,
        }
    }
    for module in &modules {
        progress.set_message(format!("packaging {module}"));
        exporter
            .save_module(module)
            .with_context(|| format!("saving module {module}"))?;
    }
    let report = serde_json::json!({
        "output": job.output,
        "interned": exporter.interned_modules(),
        "externed": exporter.externed_modules(),
        "mocked": exporter.mocked_modules(),
        "denied": exporter.denied_modules(),
    });
    progress.set_message("writing");
    let closed = exporter.close();
    progress.finish_and_clear();
    match closed {
        Ok(_) => {}
        Err(ExportError::Packaging(error)) => {
            bail!("packaging {} failed:{error}", job.output.display())
        }
        Err(error) => return Err(error.into()),
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if job.json {
        write_json(&mut out, &report)?;
    } else {
        let count = |key: &str| report[key].as_array().map_or(0, Vec::len);
        writeln!(
            out,
            "wrote {}: {} interned, {} extern, {} mocked modules",
            job.output.display(),
            count("interned"),
            count("externed"),
            count("mocked")
        )?;
    }
    Ok(())
}

/// `--path` folders first, then the interpreter's `sys.path`.
pub fn finder(paths: &[PathBuf], python: Option<&Path>) -> anyhow::Result<ModuleFinder> {
    let finder = match python {
        Some(python) => ModuleFinder::from_python(python)?,
        None => ModuleFinder::default(),
    };
    let mut search = paths.to_vec();
    search.extend(finder.path().iter().cloned());
    Ok(finder.with_path(search))
}

/// Modules named on the command line; a glob pattern (literal top-level
/// package) stands for the matching modules of that package.
pub fn expand_modules(finder: &ModuleFinder, patterns: &[String]) -> anyhow::Result<Vec<String>> {
    let mut modules = Vec::new();
    for pattern in patterns {
        if !pattern.contains('*') {
            modules.push(pattern.clone());
            continue;
        }
        let top = pattern.split('.').next().unwrap_or_default();
        if top.contains('*') || top.is_empty() {
            bail!("pattern {pattern:?}: the top-level package must be literal");
        }
        let group = GlobGroup::new(pattern.as_str(), Patterns::none(), Separator::Dot)?;
        modules.extend(
            finder
                .walk_package(top)
                .into_iter()
                .filter(|m| group.matches(m)),
        );
    }
    Ok(modules)
}
