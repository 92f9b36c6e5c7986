//! `--no-fsync`: the same flag on every command that writes files, and
//! the same output with it as without.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tpkg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tpkg"))
        .args(args)
        .output()
        .expect("the tpkg binary runs")
}

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `args` (with `{out}` standing for `out`) with and without
/// `--no-fsync`, each into its own folder, and returns both outputs.
fn both_ways(args: &[&str], out: &str) -> [tempfile::TempDir; 2] {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for (dir, flag) in dirs.iter().zip([None, Some("--no-fsync")]) {
        let target = dir.path().join(out);
        let mut full: Vec<&str> = args
            .iter()
            .map(|arg| {
                if *arg == "{out}" {
                    path_str(&target)
                } else {
                    arg
                }
            })
            .collect();
        full.extend(flag);
        let output = tpkg(&full);
        assert!(
            output.status.success(),
            "tpkg {full:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    dirs
}

/// Every file under `root`, by relative path, with its bytes.
fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path.strip_prefix(root).unwrap().to_owned(), bytes));
            }
        }
    }
    files.sort();
    files
}

fn assert_same_output(dirs: &[tempfile::TempDir; 2]) {
    let [fsync, no_fsync] = dirs.each_ref().map(|dir| tree(dir.path()));
    assert!(!fsync.is_empty());
    assert_eq!(fsync, no_fsync);
}

#[test]
fn convert_writes_the_same_bytes_with_and_without_fsync() {
    let module = data().join("corpus/torch-2.13.0/tiny_whole_module.pt");
    let module = path_str(&module);
    for to in ["safetensors", "pt"] {
        let dirs = both_ways(
            &["convert", module, "model/model.pkl", "--to", to, "{out}"],
            "out.bin",
        );
        assert_same_output(&dirs);
    }
    let script = data().join("clean/package_torchscript.pt");
    let dirs = both_ways(
        &["convert", path_str(&script), "--to", "torchscript", "{out}"],
        "out.pt",
    );
    assert_same_output(&dirs);
}

#[test]
fn extract_writes_the_same_folder_with_and_without_fsync() {
    let package = data().join("corpus/torch-2.13.0/tiny_state_dict.pt");
    let dirs = both_ways(&["extract", path_str(&package), "{out}"], "out");
    assert_same_output(&dirs);
}

#[test]
fn pack_and_repack_write_the_same_bytes_with_and_without_fsync() {
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("app")).unwrap();
    std::fs::write(src.path().join("app/__init__.py"), "import json\n").unwrap();
    let src = path_str(src.path());
    let pack = ["pack", "{out}", "--path", src, "--extern", "json", "app"];
    let packed = both_ways(&pack, "app.pt");
    assert_same_output(&packed);

    let input = packed[0].path().join("app.pt");
    let repack = ["repack", path_str(&input), "{out}", "--path", src];
    assert_same_output(&both_ways(&repack, "app.pt"));
}

/// One name, documented, on every command that writes files.
#[test]
fn every_writing_command_documents_no_fsync() {
    for command in ["convert", "extract", "pack", "repack"] {
        let help = tpkg(&[command, "--help"]);
        let text = String::from_utf8(help.stdout).unwrap();
        assert!(
            text.contains("--no-fsync") && text.contains("fsync"),
            "{command}: {text}"
        );
    }
    // Commands that write no file do not take it.
    let refused = tpkg(&["verify", "--no-fsync", "x.pt"]);
    assert_eq!(refused.status.code(), Some(2));
}
