//! tpkg's file structure (what `tpkg tree` prints) equals PyTorch's
//! `str(PackageImporter(path).file_structure(include=..., exclude=...))` for
//! every corpus package, zip and directory form, and a table of patterns.
//! (`crates/cli/tests/cli.rs` checks that `tpkg tree` prints this text.)

use serde_json::{Value, json};
use tpkg::Directory;
use tpkg::archive::PackageReader;
use tpkg::glob::Patterns;
use tpkg_tests::{corpus, oracle};

/// (include, exclude), as `--include`/`--exclude` flags would give them.
const PATTERNS: &[(&[&str], &[&str])] = &[
    (&[], &[]),
    (&["**/*.pkl"], &[]),
    (&["**/*.py", "**/*.pkl"], &[]),
    (&["**"], &[".data/**"]),
    (&["model/**"], &["**/*.py"]),
    (&[".data/*"], &[]),
    (&["**/sub*"], &["pkg/**"]),
    (&["*"], &[]),
    (&["nothing/**"], &[]),
    (
        &["**/__init__.py", "byteorder"],
        &["sympy/**", "**/deep/**"],
    ),
];

/// What the CLI passes for a list of flags, and what Python gets.
fn patterns(given: &[&str], default: Patterns) -> (Patterns, Value) {
    match given {
        [] => {
            let python = match &default {
                Patterns::One(one) => json!(one),
                _ => json!([]),
            };
            (default, python)
        }
        [one] => (Patterns::from(*one), json!(one)),
        many => (Patterns::from(many.to_vec()), json!(many)),
    }
}

#[test]
fn file_structure_equals_pytorchs_for_every_package_and_pattern() {
    let mut targets = Vec::new();
    for package in corpus::packages().unwrap() {
        targets.push(package.path.clone());
        targets.extend(package.directory_form.clone());
    }
    let mut requests = Vec::new();
    let mut ours = Vec::new();
    for target in &targets {
        let path = target.to_str().unwrap();
        let reader = PackageReader::open(target).unwrap();
        for (include, exclude) in PATTERNS {
            let (include, include_json) = patterns(include, Patterns::from("**"));
            let (exclude, exclude_json) = patterns(exclude, Patterns::none());
            let tree = Directory::of_package(&reader, path, include, exclude).unwrap();
            ours.push(tree.to_string());
            requests
                .push(json!({ "path": path, "include": include_json, "exclude": exclude_json }));
        }
    }
    let theirs =
        oracle::run_json_stdin("file_structure.py", &[], &Value::from(requests.clone())).unwrap();
    let theirs = theirs.as_array().unwrap();
    assert_eq!(theirs.len(), ours.len());
    for ((request, ours), theirs) in requests.iter().zip(&ours).zip(theirs) {
        assert_eq!(Value::from(ours.as_str()), *theirs, "{request}");
    }
    assert_eq!(ours.len(), 140);
}
