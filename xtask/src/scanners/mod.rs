//! Other pickle scanners beside `tpkg audit`: `cargo xtask scanners` and
//! the bench's `scanners` section.
//!
//! picklescan, modelscan and fickling, pinned in [`PINS`], live in a venv
//! of their own under the setup cache folder (`venv-scanners`), created
//! with the system `python3` and reused while the pins are unchanged. They
//! are never dependencies of tpkg.
//!
//! The section runs every tool once per file of two corpora, one whose
//! files must be flagged (`tests/data/bypass`, standing in
//! `tests/data/hostile` while it is missing) and one whose files must not
//! (`tests/data/clean`, else `tests/data/golden`), and reads a verdict per
//! file: unsafe, clean, error (the tool says it could not scan: for tpkg,
//! exit 2, unreadable), crash (an uncaught exception, a signal, a time-out)
//! or skipped (the tool says it scanned nothing). It then times each tool
//! on a folder of generated clean files (`bench/scanners_corpus.py`, cached
//! in `target/bench/scanners-<N>/`): a per-file loop for every tool alike,
//! and the tool's own folder scan where it has one.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{setup, util};

pub use section::bench;

mod corpus;
mod report;
mod section;
mod tools;
mod verdicts;

use corpus::Item;
use tools::TOOLS;

/// The scanners and their pins. typing_extensions: fickling 0.1.12 imports
/// it but declares it only for its `dev` and `lint` extras, so without it
/// `fickling` does not start.
const PINS: &[(&str, &str)] = &[
    ("picklescan", "1.0.5"),
    ("modelscan", "0.8.8"),
    ("fickling", "0.1.12"),
    ("typing_extensions", "4.16.0"),
];

/// The bench row name that selects the section.
pub const ROW: &str = "scanners";

/// How long one tool may take on one file (or one folder).
const TIMEOUT: Duration = Duration::from_secs(300);

/// The scanners' venv.
#[derive(Debug)]
pub struct Venv {
    /// Its `bin/` folder.
    pub bin: PathBuf,
    /// `name version` of each pinned package, and `python`.
    pub versions: BTreeMap<String, String>,
}

/// `cargo xtask scanners [PATH...]`: the venv and its versions; with paths,
/// every tool's verdict on each.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    if args.iter().any(|arg| arg.starts_with('-')) {
        bail!("usage: cargo xtask scanners [FILE|DIR...]");
    }
    let venv = ensure()?;
    if args.is_empty() {
        for (name, version) in &venv.versions {
            println!("{name} {version}");
        }
        return Ok(());
    }
    let root = util::root();
    build_tpkg()?;
    let work = root.join("target/bench/scanners-work");
    std::fs::create_dir_all(&work)?;
    let items: Vec<Item> = args
        .iter()
        .map(|arg| Item {
            path: std::path::absolute(arg).unwrap_or_else(|_| PathBuf::from(arg)),
            name: arg.clone(),
            manifest: Value::Null,
        })
        .collect();
    for &tool in TOOLS {
        for item in &items {
            let run = tool.scan(&venv, &item.path, &work)?;
            println!(
                "{:<12} {:<8} {:>7.3}s {}  {}",
                tool.name(),
                run.verdict.name(),
                run.seconds,
                item.name,
                run.detail
            );
        }
    }
    Ok(())
}

/// The venv, created or updated when the pins changed; reused without
/// running anything otherwise. Prints the versions.
pub fn ensure() -> anyhow::Result<Venv> {
    let start = Instant::now();
    let venv = setup::cache_dir()?.join("venv-scanners");
    let bin = venv.join("bin");
    let python = bin.join("python");
    let stamp = venv.join("tpkg-scanners.json");
    let requirements: Vec<String> = PINS
        .iter()
        .map(|(name, version)| format!("{name}=={version}"))
        .collect();
    let recorded: Value = std::fs::read_to_string(&stamp)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let how = if recorded["requirements"] == json!(requirements) && python.exists() {
        "cached venv"
    } else {
        util::step(
            &format!(
                "installing picklescan, modelscan, fickling into {}",
                venv.display()
            ),
            || {
                if !python.exists() {
                    let base =
                        std::env::var_os("TPKG_BASE_PYTHON").unwrap_or_else(|| "python3".into());
                    util::run(Command::new(&base).args(["-m", "venv"]).arg(&venv)).context(
                        "creating the venv failed; is Python 3 with the venv module installed (Debian: python3-venv)?",
                    )?;
                }
                util::run(
                    Command::new(&python)
                        .args(["-m", "pip", "install", "--quiet", "--progress-bar", "off"])
                        .args(&requirements),
                )
            },
        )?;
        const PROBE: &str = "import importlib.metadata as m, platform, sys\n\
            print('python', platform.python_version())\n\
            for name in sys.argv[1:]: print(name, m.version(name))";
        let text = util::output(
            Command::new(&python)
                .args(["-c", PROBE])
                .args(PINS.iter().map(|(name, _)| name)),
        )?;
        let versions: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|line| line.split_once(' '))
            .collect();
        for (name, version) in PINS {
            anyhow::ensure!(
                versions.get(name) == Some(version),
                "{} has {name} {:?}, not the pinned {version}",
                venv.display(),
                versions.get(name)
            );
        }
        let freeze = util::output(Command::new(&python).args(["-m", "pip", "freeze"]))?;
        let text = json!({
            "requirements": requirements,
            "versions": versions,
            "freeze": freeze.lines().collect::<Vec<_>>(),
        });
        std::fs::write(&stamp, serde_json::to_string_pretty(&text)?)
            .with_context(|| format!("writing {}", stamp.display()))?;
        "freshly installed venv"
    };
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(&stamp)?)?;
    let versions: BTreeMap<String, String> = recorded["versions"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, version)| (name.clone(), version.as_str().unwrap_or("?").to_owned()))
        .collect();
    eprintln!(
        "xtask: scanners ready ({how}) in {:.2}s: {}",
        start.elapsed().as_secs_f64(),
        versions
            .iter()
            .map(|(name, version)| format!("{name} {version}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Venv { bin, versions })
}

/// The section's parameters, taken from `cargo xtask bench`'s arguments.
#[derive(Debug, Default)]
pub struct Options {
    /// Files that must be flagged (`--bypass DIR`).
    bypass: Option<PathBuf>,
    /// Files that must not be flagged (`--clean DIR`).
    clean: Option<PathBuf>,
    /// How many generated files to time on (`--speed-files N`).
    speed_files: Option<usize>,
}

impl Options {
    /// Takes `--bypass DIR`, `--clean DIR` and `--speed-files N` out of
    /// the bench's arguments; the rest are row names.
    pub fn from_args(args: &[String]) -> anyhow::Result<(Options, Vec<String>)> {
        let mut options = Options::default();
        let mut rows = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .with_context(|| format!("{arg} needs a value"))
                    .cloned()
            };
            match arg.as_str() {
                "--bypass" => options.bypass = Some(value()?.into()),
                "--clean" => options.clean = Some(value()?.into()),
                "--speed-files" => {
                    let text = value()?;
                    let count = text
                        .parse()
                        .with_context(|| format!("--speed-files {text:?}"))?;
                    options.speed_files = Some(count);
                }
                _ => rows.push(arg.clone()),
            }
        }
        Ok((options, rows))
    }
}

/// Whether a bench row name selects the section (`scanners`, or a prefix
/// pattern such as `scan*`).
pub fn selected_by(name: &str) -> bool {
    match name.strip_suffix('*') {
        Some(prefix) => ROW.starts_with(prefix),
        None => name == ROW,
    }
}

/// Builds the release `tpkg`.
fn build_tpkg() -> anyhow::Result<()> {
    util::step("build tpkg (release)", || {
        util::cargo(&["build", "--quiet", "--release", "--package", "tpkg-cli"])
    })
}

fn tpkg_binary() -> PathBuf {
    util::root().join("target/release/tpkg")
}

/// Whether `tpkg audit` takes several paths: its usage line ends in a
/// repeatable positional (`<PATH>...`; `<PACKAGE>...` in older builds).
fn tpkg_takes_many_paths() -> anyhow::Result<bool> {
    let help = util::output(Command::new(tpkg_binary()).args(["audit", "--help"]))?;
    Ok(usage_takes_many(&help))
}

/// Whether the `Usage:` line of a clap help text has a repeatable
/// positional argument (`<NAME>...`).
fn usage_takes_many(help: &str) -> bool {
    help.lines()
        .filter_map(|line| line.trim_start().strip_prefix("Usage:"))
        .flat_map(str::split_whitespace)
        .any(|word| word.starts_with('<') && word.ends_with(">..."))
}

#[cfg(test)]
mod tests {
    use super::usage_takes_many;

    #[test]
    fn usage_with_a_repeatable_positional_takes_many_paths() {
        assert!(usage_takes_many(
            "Audit files.\n\nUsage: tpkg audit [OPTIONS] <PATH>...\n\nArguments:\n"
        ));
        assert!(usage_takes_many(
            "Usage: tpkg audit [OPTIONS] <PACKAGE>...\n"
        ));
        assert!(!usage_takes_many("Usage: tpkg audit [OPTIONS] <PACKAGE>\n"));
        // An option's `<FILE>...` outside the usage line does not count.
        assert!(!usage_takes_many(
            "Usage: tpkg audit <PACKAGE>\n      --policy <FILE>...\n"
        ));
    }
}
