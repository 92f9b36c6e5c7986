//! `cargo xtask setup`: the pinned PyTorch oracle and the libtorch tch links.
//!
//! Result: two links in `.tpkg/` at the workspace root, read by
//! `.cargo/config.toml`: `.tpkg/python` (the oracle interpreter) and
//! `.tpkg/libtorch` (a libtorch 2.13.0 folder with `include/` and `lib/`).
//! With them, plain `cargo build` / `cargo test` need no environment.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::util;

/// The torch version tch 0.26 links against.
const TORCH_VERSION: &str = "2.13.0";

/// What setup established.
#[derive(Debug)]
pub struct Oracle {
    /// The Python interpreter with torch.
    pub python: PathBuf,
    /// The libtorch folder the build links.
    pub libtorch: PathBuf,
}

pub fn run() -> anyhow::Result<Oracle> {
    let start = Instant::now();
    let root = util::root();
    let requirements_path = root.join("xtask/requirements.txt");
    let requirements = std::fs::read_to_string(&requirements_path)
        .with_context(|| format!("reading {}", requirements_path.display()))?;

    let (python, torch_dir, how) = match std::env::var_os("TPKG_PYTHON") {
        Some(python) => {
            let python = resolve_program(Path::new(&python))?;
            let torch_dir = probe_torch(&python)?;
            (python, torch_dir, "TPKG_PYTHON")
        }
        None => cached_venv(&requirements)?,
    };
    let links = root.join(".tpkg");
    // `.cargo/config.toml` sets LIBTORCH to our own link for every process
    // cargo starts, this one included: only another value is the user's.
    let libtorch = match std::env::var_os("LIBTORCH").map(PathBuf::from) {
        Some(dir) if !is_our_link(&dir, &links) => dir,
        _ => torch_dir,
    };
    for needed in ["include", "lib"] {
        if !libtorch.join(needed).is_dir() {
            bail!(
                "{} has no {needed}/ folder: LIBTORCH must be a libtorch {TORCH_VERSION} folder (or the `torch` folder of a torch {TORCH_VERSION} wheel)",
                libtorch.display()
            );
        }
    }
    std::fs::create_dir_all(&links).with_context(|| format!("creating {}", links.display()))?;
    write_python_launcher(&python, &links.join("python"))?;
    replace_symlink(&libtorch, &links.join("libtorch"))?;
    eprintln!(
        "xtask: oracle ready ({how}) in {:.2}s: python {}, libtorch {}",
        start.elapsed().as_secs_f64(),
        python.display(),
        libtorch.display()
    );
    Ok(Oracle { python, libtorch })
}

/// The venv under the cache folder, created or updated when the
/// requirements changed; reused without running anything otherwise.
fn cached_venv(requirements: &str) -> anyhow::Result<(PathBuf, PathBuf, &'static str)> {
    let cache = cache_dir()?;
    let venv = cache.join(format!("venv-torch-{TORCH_VERSION}"));
    let python = venv.join("bin/python");
    let stamp = venv.join("tpkg-setup.json");
    if let Ok(text) = std::fs::read_to_string(&stamp) {
        let recorded: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if recorded["requirements"].as_str() == Some(requirements)
            && python.exists()
            && let Some(torch_dir) = recorded["torch_dir"].as_str()
        {
            return Ok((python, PathBuf::from(torch_dir), "cached venv"));
        }
    }
    util::step(
        &format!("installing the PyTorch oracle into {}", venv.display()),
        || {
            std::fs::create_dir_all(&cache)?;
            if !python.exists() {
                let base = std::env::var_os("TPKG_BASE_PYTHON").unwrap_or_else(|| "python3".into());
                util::run(Command::new(&base).args(["-m", "venv"]).arg(&venv)).context(
                    "creating the venv failed; is Python 3 with the venv module installed (Debian: python3-venv)?",
                )?;
            }
            util::run(
                Command::new(&python)
                    .args(["-m", "pip", "install", "--progress-bar", "off", "-r"])
                    .arg(util::root().join("xtask/requirements.txt")),
            )
        },
    )?;
    let torch_dir = probe_torch(&python)?;
    let stamp_text = serde_json::json!({
        "requirements": requirements,
        "torch_dir": torch_dir,
    });
    std::fs::write(&stamp, serde_json::to_string_pretty(&stamp_text)?)
        .with_context(|| format!("writing {}", stamp.display()))?;
    Ok((python, torch_dir, "freshly installed venv"))
}

/// The cache folder holding the venvs: `$TPKG_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/tpkg`, else `~/.cache/tpkg`.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TPKG_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("tpkg"));
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".cache/tpkg")),
        None => bail!("cannot find a cache folder: set TPKG_CACHE_DIR or HOME"),
    }
}

/// Asks `python` for its torch version and folder without importing torch
/// (which takes seconds).
fn probe_torch(python: &Path) -> anyhow::Result<PathBuf> {
    const PROBE: &str = "import importlib.metadata as m, importlib.util as u\n\
        spec = u.find_spec('torch')\n\
        print(m.version('torch'))\n\
        print(list(spec.submodule_search_locations)[0])";
    let text = util::output(Command::new(python).args(["-c", PROBE]))
        .with_context(|| format!("{} has no usable torch", python.display()))?;
    let mut lines = text.lines();
    let version = lines.next().unwrap_or_default().trim();
    let dir = lines.next().unwrap_or_default().trim();
    let base_version = version.split('+').next().unwrap_or(version);
    if base_version != TORCH_VERSION {
        bail!(
            "{} has torch {version}, but tch 0.26 needs torch {TORCH_VERSION}",
            python.display()
        );
    }
    Ok(PathBuf::from(dir))
}

/// Finds `program` on PATH when it is a bare name; symlinks need a path.
fn resolve_program(program: &Path) -> anyhow::Result<PathBuf> {
    if program.components().count() > 1 {
        return Ok(std::path::absolute(program)?);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{} is not on PATH", program.display()))
}

/// `.tpkg/python` is a tiny script rather than a symlink: a venv's Python
/// finds its `pyvenv.cfg` from the path it was started as, so a symlink in
/// another folder would start the base interpreter without torch.
#[cfg(unix)]
fn write_python_launcher(python: &Path, launcher: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let quoted = python.display().to_string().replace('\'', r"'\''");
    let script = format!("#!/bin/sh\n# Written by `cargo xtask setup`.\nexec '{quoted}' \"$@\"\n");
    if std::fs::read_to_string(launcher).is_ok_and(|current| current == script) {
        return Ok(());
    }
    let temp = launcher.with_extension("new");
    std::fs::write(&temp, script).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&temp, launcher)
        .with_context(|| format!("replacing {}", launcher.display()))?;
    Ok(())
}

#[cfg(not(unix))]
fn write_python_launcher(_python: &Path, _launcher: &Path) -> anyhow::Result<()> {
    bail!("cargo xtask setup supports Unix hosts only for now")
}

#[cfg(unix)]
fn replace_symlink(target: &Path, link: &Path) -> anyhow::Result<()> {
    if std::fs::read_link(link).is_ok_and(|current| current == target) {
        return Ok(());
    }
    let temp = link.with_extension("new");
    let _ = std::fs::remove_file(&temp);
    std::os::unix::fs::symlink(target, &temp)
        .with_context(|| format!("linking {} to {}", temp.display(), target.display()))?;
    std::fs::rename(&temp, link).with_context(|| format!("replacing {}", link.display()))?;
    Ok(())
}

#[cfg(not(unix))]
fn replace_symlink(_target: &Path, _link: &Path) -> anyhow::Result<()> {
    bail!("cargo xtask setup supports Unix hosts only for now")
}

/// Whether `dir` names our own `.tpkg/libtorch` link, by any path (a git
/// worktree may reach this `.tpkg` through a link of its own): pointing the
/// link at itself would loop.
fn is_our_link(dir: &Path, links: &Path) -> bool {
    if dir == links.join("libtorch") {
        return true;
    }
    let folder = |path: &Path| path.parent().and_then(|p| p.canonicalize().ok());
    dir.file_name() == Some(std::ffi::OsStr::new("libtorch"))
        && folder(dir).is_some()
        && folder(dir) == links.canonicalize().ok()
}
