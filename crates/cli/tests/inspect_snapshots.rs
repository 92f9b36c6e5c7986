//! Golden outputs of `tpkg inspect`'s text: the summary block (format,
//! versions, pickles and what each holds, tensors by dtype, module counts)
//! then the records with readable sizes, for every format. Run from the
//! workspace root with relative paths.

use std::path::Path;
use std::process::Command;

fn inspect(path: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tpkg"))
        .args(["inspect", path])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("the tpkg binary runs");
    assert!(
        output.status.success(),
        "{path}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// One snapshot per file, named after it.
fn snapshot_each(folder: &str, files: &[&str]) {
    for file in files {
        let path = format!("{folder}/{file}");
        let name = path
            .trim_start_matches("tests/data/")
            .replace(['/', '.'], "_");
        insta::assert_snapshot!(name, inspect(&path));
    }
}

#[test]
fn corpus_packages() {
    snapshot_each(
        "tests/data/corpus/torch-2.13.0",
        &[
            "mocked.pt",
            "sources_and_resources.pt",
            "tiny_state_dict.pt",
            "tiny_whole_module.pt",
            "values_p3.pt",
            "values_p4.pt",
        ],
    );
}

#[test]
fn golden_torch_save_files() {
    snapshot_each(
        "tests/data/golden/torch-2.0.1/torch_save",
        &[
            "checkpoint.pt",
            "checkpoint_legacy.pt",
            "dtypes.pt",
            "dtypes_legacy.pt",
            "plain.pkl",
            "state_dict.pt",
            "state_dict_legacy.pt",
            "torchscript_module.pt",
            "whole_module.pt",
        ],
    );
}

#[test]
fn golden_packaged_torchscript_and_pt2() {
    snapshot_each("tests/data/golden/torch-2.0.1", &["torchscript.pt"]);
    snapshot_each("tests/data/clean", &["export_mlp.pt2"]);
}

#[test]
fn json_gains_the_overview_and_keeps_its_keys() {
    let output = Command::new(env!("CARGO_BIN_EXE_tpkg"))
        .args([
            "inspect",
            "--json",
            "tests/data/golden/torch-2.0.1/torch_save/checkpoint.pt",
        ])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = [
        "path",
        "format",
        "container",
        "prefix",
        "records",
        "extern_modules",
        "python_version",
        "version",
        "byteorder",
        "serialization_id",
        "record_count",
        "total_size",
        "entries",
        "summary",
        "overview",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    let overview = &report["overview"];
    assert_eq!(overview["pickles"][0]["holds"]["kind"], "checkpoint");
    assert_eq!(overview["tensors"]["count"], 15);
    assert_eq!(overview["tensors"]["dtypes"]["int64"]["count"], 1);
}
