//! tpkg's import scanner against PyTorch's, on the venv's site-packages
//! (every `TPKG_SCAN_STRIDE`-th file, 20 by default; 1 scans them all).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use tpkg_tests::oracle;

fn site_packages() -> PathBuf {
    let python = oracle::python().unwrap();
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))",
        ])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// PyTorch's package name for a module file: the module for a package's
/// `__init__.py`, else the module minus its last part (a top-level module
/// keeps its own name, PyTorch's quirk).
fn package_of(root: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root).ok()?.with_extension("");
    let parts: Vec<&str> = relative.iter().map(|p| p.to_str()).collect::<Option<_>>()?;
    if parts.iter().any(|p| p.contains('.') || p.contains('-')) {
        return None;
    }
    let module = parts.join(".");
    if parts.last() == Some(&"__init__") {
        return Some(parts[..parts.len() - 1].join("."));
    }
    Some(
        module
            .rsplit_once('.')
            .map_or(module.clone(), |(package, _)| package.to_owned()),
    )
}

/// Files where tpkg and PyTorch differ for a known reason, by path suffix.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    // CPython's ast visitor hits its recursion limit on a deep expression.
    (
        "sympy/polys/numberfields/resolvent_lookup.py",
        "PyTorch's scanner raises RecursionError",
    ),
];

/// PyTorch's scanner records the AST object itself when `__import__`'s
/// argument is an attribute (`__import__(a.b)`): `<ast.Name object at
/// 0x...>`, never importable, dropped by its exporter. tpkg skips such calls.
fn without_ast_objects(references: &Value) -> Value {
    match references.as_array() {
        Some(items) => Value::from(
            items
                .iter()
                .filter(|r| !r.to_string().contains("<ast."))
                .cloned()
                .collect::<Vec<_>>(),
        ),
        None => references.clone(),
    }
}

fn python_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "py") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn scanner_equals_pytorchs_on_site_packages() {
    let stride: usize = std::env::var("TPKG_SCAN_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let root = site_packages();
    let files: Vec<(PathBuf, String)> = python_files(&root)
        .into_iter()
        .step_by(stride)
        .filter_map(|file| package_of(&root, &file).map(|package| (file, package)))
        .collect();
    let requests: Vec<Value> = files.iter().map(|(f, p)| json!([f, p])).collect();
    let answer = oracle::run_json_stdin("scan_oracle.py", &[], &Value::from(requests)).unwrap();
    let theirs = answer["results"].as_array().unwrap();

    // The oracle's interpreter decides what syntax parses.
    let version = oracle::python_version().unwrap();
    let start = Instant::now();
    let mut ours = Vec::with_capacity(files.len());
    for (file, package) in &files {
        let source = std::fs::read(file).unwrap();
        ours.push(
            String::from_utf8(source)
                .ok()
                .map(|s| tpkg::pysource::scan_imports_for(&s, package, version)),
        );
    }
    let our_seconds = start.elapsed().as_secs_f64();

    let mut disagreements = Vec::new();
    let mut errors_both = 0;
    let mut known = 0;
    for (((file, _), ours), theirs) in files.iter().zip(&ours).zip(theirs) {
        let theirs = &without_ast_objects(theirs);
        let ours_json = match ours {
            None => json!({"error": "not UTF-8"}),
            Some(Ok(imports)) => json!(imports.references),
            Some(Err(error)) => json!({"error": error.to_string()}),
        };
        match (ours_json.get("error"), theirs.get("error")) {
            (Some(_), Some(_)) => errors_both += 1,
            _ if ours_json == *theirs => {}
            _ if KNOWN_DIFFERENCES
                .iter()
                .any(|(suffix, _)| file.ends_with(suffix)) =>
            {
                known += 1
            }
            _ => disagreements.push(format!(
                "{}:\n  tpkg    {ours_json}\n  PyTorch {theirs}",
                file.display()
            )),
        }
    }
    println!(
        "{} files scanned, {} disagreements, {known} known differences, {errors_both} errors in both; tpkg {our_seconds:.2}s, PyTorch {:.2}s",
        files.len(),
        disagreements.len(),
        answer["seconds"]
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
