//! The `tpkg` command as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn tpkg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tpkg"))
        .args(args)
        .output()
        .expect("the tpkg binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/corpus")
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Issue 3's contract: `tpkg inspect --json` reports what the corpus
/// manifest lists, for zip and directory packages of both PyTorch versions.
#[test]
fn inspect_json_matches_every_manifest() {
    for torch in ["torch-2.13.0", "torch-2.0.1"] {
        let dir = corpus().join(torch);
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        for (file, expected) in manifest.as_object().unwrap() {
            let mut targets = vec![dir.join(file)];
            if let Some(folder) = expected["directory_form"].as_str() {
                targets.push(dir.join(folder).join(expected["prefix"].as_str().unwrap()));
            }
            for target in targets {
                let output = tpkg(&["inspect", "--json", path_str(&target)]);
                assert!(output.status.success(), "{}", stderr(&output));
                let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
                for key in ["prefix", "records", "extern_modules", "python_version"] {
                    assert_eq!(report[key], expected[key], "{torch}/{file}: {key}");
                }
                assert_eq!(report["version"], 6, "{torch}/{file}");
                assert_eq!(
                    report["record_count"],
                    expected["records"].as_array().unwrap().len()
                );
            }
        }
    }
}

#[test]
fn inspect_text_is_a_readable_summary() {
    let package = corpus().join("torch-2.13.0/sources_and_resources.pt");
    let output = tpkg(&["inspect", path_str(&package)]);
    assert!(output.status.success());
    let text = stdout(&output);
    for expected in [
        "folder          sources_and_resources",
        "format version  6",
        "python          3.11.7",
        "extern modules  math, json",
        "pkg/deep/mod.py",
        "records         11",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn cat_writes_the_raw_record() {
    let package = corpus().join("torch-2.13.0/sources_and_resources.pt");
    let output = tpkg(&["cat", path_str(&package), ".data/extern_modules"]);
    assert!(output.status.success());
    assert_eq!(output.stdout, b"math\njson\n");
}

#[test]
fn extract_writes_the_directory_form_pytorch_opens() {
    let out = tempfile::tempdir().unwrap();
    let package = corpus().join("torch-2.13.0/tiny_state_dict.pt");
    let output = tpkg(&["extract", path_str(&package), path_str(out.path())]);
    assert!(output.status.success(), "{}", stderr(&output));
    let folder = out.path().join("tiny_state_dict");
    assert_eq!(stdout(&output).trim(), folder.display().to_string());
    assert!(folder.join(".data/extern_modules").is_file());
    assert!(folder.join("model/__init__.py").is_file());
    // The extracted folder inspects like the corpus's own directory form.
    let ours = tpkg(&["inspect", "--json", path_str(&folder)]);
    let theirs = tpkg(&[
        "inspect",
        "--json",
        path_str(&corpus().join("torch-2.13.0/tiny_state_dict_dir/tiny_state_dict")),
    ]);
    let ours: Value = serde_json::from_slice(&ours.stdout).unwrap();
    let theirs: Value = serde_json::from_slice(&theirs.stdout).unwrap();
    assert_eq!(ours["records"], theirs["records"]);

    // A second extract refuses to overwrite.
    let again = tpkg(&["extract", path_str(&package), path_str(out.path())]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn errors_are_one_clear_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let not_zip = dir.path().join("notes.txt");
    std::fs::write(&not_zip, "just text").unwrap();
    let package = corpus().join("torch-2.13.0/sources_and_resources.pt");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["inspect", path_str(&not_zip)], "not a zip archive"),
        (vec!["inspect", "/no/such/file.pt"], "/no/such/file.pt"),
        (
            vec!["cat", path_str(&package), "nope.txt"],
            "no record named \"nope.txt\"",
        ),
    ];
    for (args, expected) in cases {
        let output = tpkg(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let message = stderr(&output);
        assert!(message.starts_with("tpkg: error: "), "{message}");
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(!message.contains("panicked"), "{message}");
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(tpkg(&["inspect"]).status.code(), Some(2));
    assert_eq!(tpkg(&["frobnicate"]).status.code(), Some(2));
}

/// The tree text itself is compared with PyTorch in
/// `tests/suite/oracle_tree.rs`; here, that the CLI prints it.
#[test]
fn tree_prints_the_file_structure_with_repeatable_patterns() {
    let package = corpus().join("torch-2.13.0/sources_and_resources.pt");
    let path = path_str(&package);
    let output = tpkg(&[
        "tree",
        path,
        "--include",
        "pkg/**",
        "--include",
        "assets/*",
        "--exclude",
        "**/deep/**",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "─── {path}\n    ├── assets\n    │   ├── blob.bin\n    │   └── readme.txt\n    └── pkg\n        ├── __init__.py\n        └── sub.py\n"
        )
    );
    let bad = tpkg(&["tree", path, "--include", "a**"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("** can only appear as an entire path segment"),
        "{}",
        stderr(&bad)
    );
}

/// Every corpus pickle is compared with its manifest in the `corpus`
/// scenario; here, that the CLI prints the same image and readable text.
#[test]
fn show_prints_the_value_image_and_python_like_text() {
    let dir = corpus().join("torch-2.13.0");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let package = dir.join("values_p4.pt");
    let output = tpkg(&["show", "--json", path_str(&package), "data/values.pkl"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let image: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        image,
        manifest["values_p4.pt"]["pickles"]["data/values.pkl"]["value"]
    );

    let text = stdout(&tpkg(&["show", path_str(&package), "data/values.pkl"]));
    for expected in [
        "'floats': [0.0, -0.0, 1.5, -2.25e-300, 1e+308, inf, -inf],",
        "'int_keys': {1: 'one', 2: 'two', (3, 4): 'tuple-key'},",
        "'torch_size': torch.Size([2, 3]),",
        "'complex': (1.5-2j),",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }

    let not_a_pickle = tpkg(&["show", path_str(&package), ".data/version"]);
    assert_eq!(not_a_pickle.status.code(), Some(1));
    assert!(
        stderr(&not_a_pickle).contains("pickle byte"),
        "{}",
        stderr(&not_a_pickle)
    );
}

/// Every corpus tensor is compared with its manifest in the `corpus`
/// scenario; here, that `tpkg tensors --json` prints the same objects.
#[test]
fn tensors_json_equals_the_manifest_for_a_whole_module() {
    for torch in ["torch-2.13.0", "torch-2.0.1"] {
        let dir = corpus().join(torch);
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
        let package = dir.join("tiny_whole_module.pt");
        let output = tpkg(&["tensors", "--json", path_str(&package), "model/model.pkl"]);
        assert!(output.status.success(), "{}", stderr(&output));
        let mut ours: Value = serde_json::from_slice(&output.stdout).unwrap();
        for tensor in ours.as_array_mut().unwrap() {
            tensor.as_object_mut().unwrap().remove("storage");
        }
        assert_eq!(
            ours,
            manifest["tiny_whole_module.pt"]["pickles"]["model/model.pkl"]["tensors"]
        );
    }
    let table = stdout(&tpkg(&[
        "tensors",
        path_str(&corpus().join("torch-2.13.0/values_p4.pt")),
        "data/tensors.pkl",
    ]));
    assert!(
        table.contains("parameter      float32     [2,2]      [2,1]        0       param,grad"),
        "{table}"
    );
    assert!(table.ends_with("23 tensors\n"), "{table}");
}

#[test]
fn convert_writes_pt_and_refuses_what_safetensors_cannot_hold() {
    let out = tempfile::tempdir().unwrap();
    let package = corpus().join("torch-2.13.0/values_p3.pt");
    let pt = out.path().join("tensors.pt");
    let output = tpkg(&[
        "convert",
        path_str(&package),
        "data/tensors.pkl",
        "--to",
        "pt",
        path_str(&pt),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("wrote 23 tensors (20 storages)"),
        "{}",
        stdout(&output)
    );
    // The torch.save file is itself a PyTorch zip: tpkg reads it back.
    let inspect = tpkg(&["inspect", "--json", path_str(&pt)]);
    let report: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(report["prefix"], "tensors");
    assert!(
        report["records"]
            .as_array()
            .unwrap()
            .contains(&Value::from("data.pkl"))
    );

    let st = out.path().join("tensors.safetensors");
    let refused = tpkg(&[
        "convert",
        path_str(&package),
        "data/tensors.pkl",
        "--to",
        "safetensors",
        path_str(&st),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("complex128"),
        "{}",
        stderr(&refused)
    );
    assert!(!st.exists());

    let module = corpus().join("torch-2.13.0/tiny_whole_module.pt");
    let ok = tpkg(&[
        "convert",
        path_str(&module),
        "model/model.pkl",
        "--to",
        "safetensors",
        path_str(&st),
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).starts_with("wrote 9 tensors"),
        "{}",
        stdout(&ok)
    );
}

#[test]
fn imports_lists_pytorchs_dependencies_statically() {
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("pkg");
    std::fs::create_dir(&package).unwrap();
    std::fs::write(
        package.join("__init__.py"),
        "from . import sub\nimport json\n",
    )
    .unwrap();
    std::fs::write(package.join("sub.py"), "from pkg import helper, CONSTANT\n").unwrap();
    std::fs::write(
        package.join("helper.py"),
        "import importlib\nimportlib.import_module('x')\n",
    )
    .unwrap();
    let root = path_str(dir.path());
    let output = tpkg(&["imports", "--path", root, "pkg", "pkg.*", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    // `from . import sub` is the submodule; `json` and `importlib` are
    // known from the embedded standard-library tables; `CONSTANT` is not a
    // module, so `pkg` itself is the dependency.
    assert_eq!(
        report,
        serde_json::json!({
            "pkg": ["pkg.sub", "json"],
            "pkg.helper": ["importlib"],
            "pkg.sub": ["pkg.helper", "pkg"]
        })
    );
    let missing = tpkg(&["imports", "--path", root, "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("not on the search path"),
        "{}",
        stderr(&missing)
    );
}

/// Issue 7: `tpkg imports` over all of sympy equals what PyTorch's exporter
/// adds for each module (`tests/oracle/deps_oracle.py`), except modules
/// whose answer depends on running code (they raise when imported).
#[test]
#[cfg(feature = "oracle")]
fn imports_over_all_of_sympy_equals_the_exporter() {
    let python = PathBuf::from(env!("TPKG_ORACLE_PYTHON"));
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oracle/deps_oracle.py");
    let expected = Command::new(&python)
        .arg(&oracle)
        .arg("sympy")
        .output()
        .unwrap();
    assert!(expected.status.success(), "{}", stderr(&expected));
    let expected: Value = serde_json::from_slice(&expected.stdout).unwrap();
    let output = tpkg(&[
        "imports",
        "--python",
        path_str(&python),
        "sympy",
        "sympy.**",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let ours: Value = serde_json::from_slice(&output.stdout).unwrap();
    let failing: Vec<String> = serde_json::from_value(expected["failing"].clone()).unwrap();
    let runtime_dependent = |name: &str| {
        failing
            .iter()
            .any(|f| f == name || f.starts_with(&format!("{name}.")))
    };
    let modules = expected["modules"].as_object().unwrap();
    assert!(modules.len() > 1000, "{}", modules.len());
    let mut disagreements = Vec::new();
    for (module, info) in modules {
        let theirs: Vec<String> = serde_json::from_value(info["deps"].clone()).unwrap();
        let Some(ours) = ours.get(module) else {
            disagreements.push(format!("{module}: not listed by tpkg"));
            continue;
        };
        let ours: Vec<String> = serde_json::from_value(ours.clone()).unwrap();
        let differing: Vec<&String> = ours
            .iter()
            .filter(|d| !theirs.contains(d))
            .chain(theirs.iter().filter(|d| !ours.contains(d)))
            .collect();
        // Same set in another order is a disagreement too.
        let exempt = !differing.is_empty() && differing.iter().all(|d| runtime_dependent(d));
        if ours != theirs && !exempt {
            disagreements.push(format!(
                "{module}:\n  tpkg    {ours:?}\n  PyTorch {theirs:?}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// Issue 8: `tpkg pack` applies patterns in command-line order (the first
/// match wins), writes nothing on failure and prints PyTorch's grouped
/// PackagingError; `repack`, `verify` and `diff` work on what it wrote.
#[test]
fn pack_repack_verify_and_diff_as_a_user_runs_them() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("app")).unwrap();
    std::fs::write(
        src.join("app/__init__.py"),
        "from . import util\nimport helper\nimport sys\n",
    )
    .unwrap();
    std::fs::write(src.join("app/util.py"), "import json\n").unwrap();
    std::fs::write(src.join("helper.py"), "X = 1\n").unwrap();
    let src_str = path_str(&src);

    // `sys` matches no pattern: grouped error, exit 1, no file.
    let out = dir.path().join("app.pt");
    let failed = tpkg(&[
        "pack",
        path_str(&out),
        "--path",
        src_str,
        "--intern",
        "app.**",
        "app",
    ]);
    assert_eq!(failed.status.code(), Some(1));
    let message = stderr(&failed);
    assert!(
        message.contains("* Module did not match against any action pattern. Extern, mock, or intern it.\n    helper\n    sys\n      Note: While we usually use modules in the python standard library"),
        "{message}"
    );
    assert!(!out.exists());

    // Order matters: `--mock helper` before `--intern '**'` mocks it.
    let packed = tpkg(&[
        "pack",
        path_str(&out),
        "--path",
        src_str,
        "--mock",
        "helper",
        "--extern",
        "sys",
        "--intern",
        "**",
        "app",
        "--json",
    ]);
    assert!(packed.status.success(), "{}", stderr(&packed));
    let report: Value = serde_json::from_slice(&packed.stdout).unwrap();
    assert_eq!(report["interned"], serde_json::json!(["app", "app.util"]));
    assert_eq!(report["mocked"], serde_json::json!(["helper"]));
    assert_eq!(report["externed"], serde_json::json!(["json", "sys"]));

    let verified = tpkg(&["verify", path_str(&out)]);
    assert_eq!(verified.status.code(), Some(0), "{}", stdout(&verified));
    assert!(
        stdout(&verified).contains("4 sources checked; no problems"),
        "{}",
        stdout(&verified)
    );

    let again = dir.path().join("again.pt");
    let repacked = tpkg(&["repack", path_str(&out), path_str(&again), "--json"]);
    assert!(repacked.status.success(), "{}", stderr(&repacked));
    let same = tpkg(&["diff", path_str(&out), path_str(&again)]);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));

    // A flipped byte in a stored record: verify and diff both see it.
    let mut bytes = std::fs::read(&again).unwrap();
    let at = bytes.windows(5).position(|w| w == b"X = 1").unwrap_or(0);
    let broken = dir.path().join("broken.pt");
    if at > 0 {
        bytes[at] = b'Y';
    }
    std::fs::write(&broken, &bytes).unwrap();
    let verify_broken = tpkg(&["verify", path_str(&broken), "--json"]);
    let diffed = tpkg(&["diff", path_str(&again), path_str(&broken), "--json"]);
    if at > 0 {
        assert_eq!(verify_broken.status.code(), Some(1));
        let problems: Value = serde_json::from_slice(&verify_broken.stdout).unwrap();
        assert!(
            problems["problems"][0]["problem"]
                .as_str()
                .unwrap()
                .contains("CRC"),
            "{problems}"
        );
        assert_eq!(diffed.status.code(), Some(1));
    }
    let missing = tpkg(&["diff", path_str(&again), "/nonexistent/x.pt"]);
    assert_eq!(missing.status.code(), Some(2));
}

/// Issue 17: files that are not packages, told from their content. The
/// golden files were written by torch 1.10.2 (`tests/data/golden`).
#[test]
fn torch_save_files_zip_and_legacy_work_as_their_format_allows() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/golden/torch-1.10.2/torch_save");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    for (file, format) in [
        ("state_dict.pt", "torch.save"),
        ("state_dict_legacy.pt", "torch.save-legacy"),
    ] {
        let path = dir.join(file);
        let path = path_str(&path);
        let output = tpkg(&["inspect", "--json", path]);
        assert!(output.status.success(), "{file}: {}", stderr(&output));
        let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(report["format"], format, "{file}");

        // The main pickle by default; every tensor as the manifest says.
        let output = tpkg(&["tensors", "--json", path]);
        assert!(output.status.success(), "{file}: {}", stderr(&output));
        let rows: Value = serde_json::from_str(&stdout(&output)).unwrap();
        let expected = manifest[file]["tensors"].as_array().unwrap();
        assert_eq!(rows.as_array().unwrap().len(), expected.len(), "{file}");
        for want in expected {
            let found = rows
                .as_array()
                .unwrap()
                .iter()
                .find(|row| row["path"] == want["path"])
                .unwrap_or_else(|| panic!("{file}: no tensor {}", want["path"]));
            assert_eq!(found["sha256"], want["sha256"], "{file}: {}", want["path"]);
        }

        for command in [&["audit", path][..], &["verify", path], &["show", path]] {
            let output = tpkg(command);
            assert_eq!(
                output.status.code(),
                Some(0),
                "{file}: {command:?}: {}",
                stderr(&output)
            );
        }
    }
    // A legacy file converts to a zip torch.save with the same tensors.
    let legacy = dir.join("state_dict_legacy.pt");
    let scratch = tempfile::tempdir().unwrap();
    let converted = scratch.path().join("converted.pt");
    let output = tpkg(&[
        "convert",
        path_str(&legacy),
        "--to",
        "pt",
        path_str(&converted),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = tpkg(&["inspect", "--json", path_str(&converted)]);
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["format"], "torch.save");
    let output = tpkg(&["tensors", "--json", path_str(&converted)]);
    let rows: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let digests = |rows: &Value| -> Vec<(String, String)> {
        let mut digests: Vec<(String, String)> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|row| (row["path"].to_string(), row["sha256"].to_string()))
            .collect();
        digests.sort();
        digests
    };
    assert_eq!(
        digests(&rows),
        digests(&manifest["state_dict_legacy.pt"]["tensors"])
    );

    // Record commands say why they do not apply to a stream.
    let output = tpkg(&["tree", path_str(&legacy)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("has no records"),
        "{}",
        stderr(&output)
    );
}
