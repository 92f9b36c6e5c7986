//! Crate layering, read from `cargo metadata`.
//!
//! Lower crates never depend on each other except where listed (they stay
//! reusable and build in seconds); nothing depends on a crate above it; only
//! `tpkg-tensors` (feature `tch`) and the facade name tch, always as an
//! optional dependency, and the facade's default features leave it off so
//! `cargo test` at the root needs no libtorch.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use super::Violation;
use crate::util;

/// Workspace crates and the workspace crates each may depend on (normal
/// and build dependencies; dev-dependencies may reach further down but
/// never up). A crate missing here is a violation: new crates get a rule.
const ALLOWED: &[(&str, &[&str])] = &[
    ("tpkg-archive", &[]),
    ("tpkg-glob", &[]),
    ("tpkg-digraph", &[]),
    ("tpkg-mangling", &[]),
    ("tpkg-pickle", &[]),
    ("tpkg-pysource", &[]),
    ("tpkg-tensors", &["tpkg-pickle"]),
    (
        "tpkg",
        &[
            "tpkg-archive",
            "tpkg-glob",
            "tpkg-digraph",
            "tpkg-mangling",
            "tpkg-pickle",
            "tpkg-pysource",
            "tpkg-tensors",
        ],
    ),
    ("tpkg-cli", &["tpkg"]),
    ("tpkg-python", &["tpkg"]),
    ("tpkg-tests", &["tpkg"]),
    ("tpkg-bench", &["tpkg"]),
    ("xtask", &[]),
];

/// The crates that may name tch (or torch-sys) directly.
const TCH_USERS: &[&str] = &["tpkg-tensors", "tpkg"];

/// A workspace member as the rules see it.
#[derive(Debug)]
pub struct Package {
    pub name: String,
    pub publishable: bool,
    dependencies: Vec<Dependency>,
    default_features: Vec<String>,
}

#[derive(Debug)]
struct Dependency {
    name: String,
    dev: bool,
    optional: bool,
}

/// The workspace's members, from `cargo metadata --no-deps`.
pub fn workspace_packages(root: &Path) -> anyhow::Result<Vec<Package>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let text = util::output(
        std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(root),
    )?;
    let metadata: Value = serde_json::from_str(&text).context("parsing cargo metadata")?;
    let packages = metadata["packages"].as_array().context("no packages")?;
    Ok(packages.iter().map(package).collect())
}

fn package(value: &Value) -> Package {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let dependencies = value["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| Dependency {
            name: text(&d["name"]),
            dev: d["kind"].as_str() == Some("dev"),
            optional: d["optional"].as_bool().unwrap_or(false),
        })
        .collect();
    let default_features = value["features"]["default"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    // `publish = false` reads as an empty registry list.
    let publishable = !matches!(value["publish"].as_array(), Some(list) if list.is_empty());
    Package {
        name: text(&value["name"]),
        publishable,
        dependencies,
        default_features,
    }
}

pub fn check(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let packages = workspace_packages(root)?;
    let members: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let mut violations = Vec::new();
    for package in &packages {
        let Some((_, allowed)) = ALLOWED.iter().find(|(name, _)| *name == package.name) else {
            violations.push(Violation::new(
                &package.name,
                "a workspace crate with no layering rule: add it to tidy/layers.rs ALLOWED",
            ));
            continue;
        };
        for dependency in &package.dependencies {
            violations.extend(check_dependency(package, dependency, allowed, &members));
        }
        if package.default_features.iter().any(|f| f.contains("tch")) {
            violations.push(Violation::new(
                &package.name,
                "feature `tch` is on by default: libtorch must be opt-in so root `cargo test` needs none",
            ));
        }
    }
    Ok(violations)
}

fn check_dependency(
    package: &Package,
    dependency: &Dependency,
    allowed: &[&str],
    members: &[&str],
) -> Option<Violation> {
    let name = dependency.name.as_str();
    if name == "tch" || name == "torch-sys" {
        if !TCH_USERS.contains(&package.name.as_str()) {
            return Some(Violation::new(
                &package.name,
                format!(
                    "depends on {name}: only {TCH_USERS:?} touch libtorch (others go through tpkg's feature `tch`)"
                ),
            ));
        }
        if !dependency.optional && !dependency.dev {
            return Some(Violation::new(
                &package.name,
                format!("{name} must be an optional dependency behind feature `tch`"),
            ));
        }
        return None;
    }
    let is_member = members.contains(&name);
    if !is_member || allowed.contains(&name) {
        return None;
    }
    // Dev-dependencies may reach lower crates (tests build fixtures with
    // them), never a crate above.
    let above = rank(name) > rank(&package.name);
    if dependency.dev && !above {
        return None;
    }
    Some(Violation::new(
        &package.name,
        format!("depends on {name}, which its layer may not use (tidy/layers.rs ALLOWED)"),
    ))
}

/// A crate's height: its position in [`ALLOWED`], lowest first.
fn rank(name: &str) -> usize {
    ALLOWED
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or(usize::MAX)
}

/// The facade's own layers (`crates/tpkg/src/{files,api,tools}`): each
/// module names only the layers below it, so the tools never become a
/// dependency of the torch.package API and the readers know neither.
const FACADE_LAYERS: &[(&str, &[&str])] = &[
    (
        "crates/tpkg/src/files/",
        &[
            "api",
            "tools",
            "exporter",
            "importer",
            "repackage",
            "audit",
            "convert",
            "diff",
            "show",
            "verify",
        ],
    ),
    (
        "crates/tpkg/src/api/",
        &["tools", "audit", "convert", "diff", "show", "verify"],
    ),
];

pub fn check_facade(root: &Path, files: &[std::path::PathBuf]) -> anyhow::Result<Vec<Violation>> {
    let mut violations = Vec::new();
    for (folder, forbidden) in FACADE_LAYERS {
        for path in files
            .iter()
            .filter(|p| p.starts_with(folder.trim_end_matches('/')))
        {
            let text = std::fs::read_to_string(root.join(path))
                .with_context(|| format!("reading {}", path.display()))?;
            for (index, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for module in *forbidden {
                    if code.contains(&format!("crate::{module}::"))
                        || code.contains(&format!("crate::{module};"))
                        || code.contains(&format!("crate::{module}}}"))
                    {
                        violations.push(Violation::new(
                            format!("{}:{}", path.display(), index + 1),
                            format!("uses crate::{module}, a layer above {folder}"),
                        ));
                    }
                }
            }
        }
    }
    Ok(violations)
}
