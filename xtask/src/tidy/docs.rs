//! Documents that stay true: the release files exist, every path a
//! document cites exists, nothing cites a file outside the repository, and
//! every command (the CLI's and xtask's) is documented.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Violation;
use crate::util;

/// Files a release and a security team look for first.
const RELEASE_FILES: &[&str] = &[
    "README.md",
    "ARCHITECTURE.md",
    "CHANGELOG.md",
    "SECURITY.md",
    "LICENSE-MIT",
    "LICENSE-APACHE",
    "deny.toml",
];

/// Where a cited path starts when it names a file of this repository.
const REPO_PREFIXES: &[&str] = &[
    "crates/",
    "tests/",
    "xtask/",
    "bench/",
    "fuzz/",
    "build-support/",
    ".ci/",
    ".github/",
    "shared/",
    "../shared/",
];

/// Texts that cite documents living outside the repository (the design
/// notes the project started from); a newcomer cannot follow them.
const OUTSIDE_CITATIONS: &[&str] = &["conformance §", "design.md", "style.md", "shared/corpus"];

pub fn check(root: &Path, files: &[PathBuf]) -> anyhow::Result<Vec<Violation>> {
    let mut violations = Vec::new();
    for name in RELEASE_FILES {
        if !root.join(name).is_file() {
            violations.push(Violation::new(*name, "missing release file"));
        }
    }
    for path in files.iter().filter(|p| is_document(p)) {
        let text = std::fs::read_to_string(root.join(path))
            .with_context(|| format!("reading {}", path.display()))?;
        violations.extend(check_citations(root, path, &text));
    }
    violations.extend(check_commands(root)?);
    Ok(violations)
}

/// Markdown and Rust files, except test data (fixtures quote anything).
fn is_document(path: &Path) -> bool {
    let documented = path.extension().is_some_and(|e| e == "md" || e == "rs");
    documented && !path.starts_with("tests/data") && !path.starts_with("xtask/src/tidy")
}

fn check_citations(root: &Path, path: &Path, text: &str) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let place = || format!("{}:{}", path.display(), index + 1);
        for outside in OUTSIDE_CITATIONS {
            if line.contains(outside) {
                violations.push(Violation::new(
                    place(),
                    format!("cites {outside:?}, which is not in this repository"),
                ));
            }
        }
        for cited in cited_paths(line) {
            if !cited_path_exists(root, path, &cited) {
                violations.push(Violation::new(
                    place(),
                    format!("cites `{cited}`, which does not exist"),
                ));
            }
        }
    }
    violations
}

/// Back-quoted tokens that name a repository path.
fn cited_paths(line: &str) -> Vec<String> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .map(|token| {
            let token = token.split(['#', ':']).next().unwrap_or(token);
            token.trim_end_matches(['.', ',', ')'])
        })
        .filter(|token| REPO_PREFIXES.iter().any(|prefix| token.starts_with(prefix)))
        .filter(|token| !token.contains(['<', '>', '*', '{', '$', ' ', '…']))
        .filter(|token| !token.contains("..."))
        .map(str::to_owned)
        .collect()
}

/// From the root, the citing file's folder, or its crate's folder.
fn cited_path_exists(root: &Path, citing: &Path, cited: &str) -> bool {
    let cited = cited.trim_end_matches('/');
    let mut bases = vec![root.to_path_buf()];
    if let Some(folder) = citing.parent() {
        bases.push(root.join(folder));
    }
    let mut components = citing.components();
    if let (Some(first), Some(second)) = (components.next(), components.next())
        && first.as_os_str() == "crates"
    {
        bases.push(root.join("crates").join(second.as_os_str()));
    }
    bases.iter().any(|base| base.join(cited).exists())
}

/// Every `tpkg` command appears in the README and ARCHITECTURE.md; every
/// `cargo xtask` command in ARCHITECTURE.md.
fn check_commands(root: &Path) -> anyhow::Result<Vec<Violation>> {
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap_or_default();
    let mut violations = Vec::new();
    for command in cli_commands(root)? {
        let named = format!("tpkg {command}");
        if !readme.contains(&named) {
            violations.push(Violation::new(
                "README.md",
                format!("never shows `{named}`"),
            ));
        }
        if !architecture.contains(&named) && !architecture.contains(&format!("`{command}`")) {
            violations.push(Violation::new(
                "ARCHITECTURE.md",
                format!("never names the command `{command}`"),
            ));
        }
    }
    for command in xtask_commands() {
        if !architecture.contains(&format!("xtask {command}")) {
            violations.push(Violation::new(
                "ARCHITECTURE.md",
                format!("never names `cargo xtask {command}`"),
            ));
        }
    }
    Ok(violations)
}

/// The subcommands `tpkg --help` lists (built and asked, so the list is
/// the binary's, not a copy).
fn cli_commands(root: &Path) -> anyhow::Result<Vec<String>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let help = util::output(
        std::process::Command::new(cargo)
            .args(["run", "--quiet", "--package", "tpkg-cli", "--", "--help"])
            .current_dir(root),
    )?;
    Ok(help_commands(&help))
}

fn help_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        // Continuation lines of a description are indented further.
        .filter(|line| !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|command| *command != "help")
        .map(str::to_owned)
        .collect()
}

fn xtask_commands() -> Vec<String> {
    help_commands(crate::HELP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_repository_paths_in_back_quotes() {
        let line = "see `crates/pickle/src/lib.rs`, `a/b.py`, `tests/data/golden/torch-<v>/` and `shared/corpus/`.";
        assert_eq!(
            cited_paths(line),
            vec![
                "crates/pickle/src/lib.rs".to_owned(),
                "shared/corpus/".to_owned()
            ]
        );
    }

    #[test]
    fn reads_commands_from_clap_help() {
        let help = "Usage: tpkg <COMMAND>\n\nCommands:\n  inspect  List\n  show     Show\n  help     Print\n\nOptions:\n  -h\n";
        assert_eq!(help_commands(help), vec!["inspect", "show"]);
    }
}
