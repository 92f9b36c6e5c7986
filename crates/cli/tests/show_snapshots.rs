//! Issue 22: `tpkg show`'s text output on the corpus, as snapshots
//! (`snapshots/show_snapshots__*.snap`, reviewed by reading them): state
//! dicts, checkpoints, whole modules (a torchvision model among them),
//! plain values, legacy `torch.save` streams, TorchScript and pickle files,
//! at the default flags and with `--depth`, `--width` and `--full`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root; files are named relative to it, so snapshots hold
/// no absolute paths.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tpkg show ARGS...` run from the repository root (stdout is a pipe, so
/// the width is 100 unless `--width` says otherwise); its stdout, after
/// checking that it succeeded quietly.
fn show(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tpkg"))
        .arg("show")
        .args(args)
        .current_dir(root())
        .output()
        .expect("the tpkg binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tpkg show {args:?}: {stderr}");
    assert!(stderr.is_empty(), "tpkg show {args:?}: {stderr}");
    String::from_utf8(output.stdout).expect("show prints UTF-8")
}

/// A snapshot name for a file: its path below `tests/data`, `/` and `.`
/// made `_`.
fn name(file: &str, flags: &str) -> String {
    let short = file
        .trim_start_matches("tests/data/")
        .replace(['/', '.'], "_");
    if flags.is_empty() {
        short
    } else {
        format!(
            "{short}__{}",
            flags.trim_start_matches("--").replace(' ', "_")
        )
    }
}

/// Every line within `width` columns, except atoms (a tensor, a name)
/// that cannot be cut: checked on the files where none is that long.
fn assert_within(text: &str, width: usize, file: &str) {
    for line in text.lines() {
        assert!(
            line.chars().count() <= width,
            "{file}: a line over {width} columns:\n{line}"
        );
    }
}

const FILES: &[&str] = &[
    "tests/data/corpus/torch-2.13.0/tiny_state_dict.pt",
    "tests/data/corpus/torch-2.13.0/tiny_state_dict_dir",
    "tests/data/corpus/torch-2.13.0/tiny_whole_module.pt",
    "tests/data/corpus/torch-2.13.0/values_p3.pt",
    "tests/data/corpus/torch-2.13.0/values_p4.pt",
    "tests/data/golden/torch-2.0.1/torch_save/checkpoint.pt",
    "tests/data/golden/torch-2.0.1/torch_save/checkpoint_legacy.pt",
    "tests/data/golden/torch-2.0.1/torch_save/dtypes.pt",
    "tests/data/golden/torch-2.0.1/torch_save/dtypes_legacy.pt",
    "tests/data/golden/torch-2.0.1/torch_save/plain.pkl",
    "tests/data/golden/torch-2.0.1/torch_save/state_dict.pt",
    "tests/data/golden/torch-2.0.1/torch_save/state_dict_legacy.pt",
    "tests/data/golden/torch-2.0.1/torch_save/torchscript_module.pt",
    "tests/data/golden/torch-2.0.1/torch_save/whole_module.pt",
    "tests/data/golden/torch-1.10.2/tiny_whole_module.pt",
    "tests/data/golden/torch-1.10.2/values_p3.pt",
    "tests/data/golden/torch-1.10.2/torchvision_squeezenet.pt",
    "tests/data/golden/torch-1.10.2/cycle.pt",
    "tests/data/golden/torch-1.10.2/many_tensors.pt",
];

#[test]
fn show_at_the_default_flags() {
    for file in FILES {
        let text = show(&[file]);
        assert_within(&text, 100, file);
        insta::assert_snapshot!(name(file, ""), text);
    }
}

#[test]
fn show_with_depth_1() {
    for file in [
        "tests/data/golden/torch-1.10.2/torchvision_squeezenet.pt",
        "tests/data/golden/torch-2.0.1/torch_save/checkpoint.pt",
        "tests/data/corpus/torch-2.13.0/values_p3.pt",
    ] {
        let text = show(&["--depth", "1", file]);
        assert_within(&text, 100, file);
        insta::assert_snapshot!(name(file, "--depth 1"), text);
    }
}

#[test]
fn show_with_width_40() {
    for file in [
        "tests/data/golden/torch-1.10.2/torchvision_squeezenet.pt",
        "tests/data/corpus/torch-2.13.0/values_p3.pt",
        "tests/data/golden/torch-2.0.1/torch_save/checkpoint.pt",
    ] {
        let text = show(&["--width", "40", file]);
        insta::assert_snapshot!(name(file, "--width 40"), text);
    }
}

#[test]
fn show_with_full() {
    let file = "tests/data/corpus/torch-2.13.0/tiny_whole_module.pt";
    let text = show(&["--full", file]);
    for internal in ["training=False", "_forward_hooks=OrderedDict()"] {
        assert!(text.contains(internal), "{internal} in\n{text}");
        assert!(!show(&[file]).contains(internal), "{internal}");
    }
    insta::assert_snapshot!(name(file, "--full"), text);
}

/// The text flags are for text: with `--json` they are a usage error, and
/// `--json` alone prints the value image as before.
#[test]
fn text_flags_conflict_with_json() {
    let file = "tests/data/corpus/torch-2.13.0/tiny_state_dict.pt";
    for flag in [&["--depth", "2"][..], &["--width", "50"], &["--full"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_tpkg"))
            .args(["show", "--json"])
            .args(flag)
            .arg(file)
            .current_dir(root())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag:?}");
    }
    let json: serde_json::Value = serde_json::from_str(&show(&["--json", file])).unwrap();
    assert_eq!(json["OrderedDict"][0][1]["tensor"], "0.weight");
}

/// PyTorch's test_model.py packaging: torchvision interned, everything
/// else extern, the model pickled whole.
#[cfg(feature = "oracle")]
const MAKE_RESNET18: &str = r#"
import sys, torchvision
from torch.package import PackageExporter
model = torchvision.models.resnet18()
with PackageExporter(sys.argv[1]) as exporter:
    exporter.intern("torchvision.**")
    exporter.extern("**")
    exporter.save_pickle("model", "model.pkl", model)
"#;

/// Issue 22's "done when": a torchvision resnet18 pickled whole into a
/// package shows on one screen at the default depth, every top-level
/// child named.
#[test]
#[cfg(feature = "oracle")]
fn resnet18_fits_on_one_screen() {
    let python = PathBuf::from(env!("TPKG_ORACLE_PYTHON"));
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("resnet18.pt");
    let made = Command::new(&python)
        .args(["-W", "ignore", "-c", MAKE_RESNET18])
        .arg(&package)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let text = show(&[package.to_str().unwrap(), "model/model.pkl"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() <= 60, "{} lines:\n{text}", lines.len());
    assert_within(&text, 100, "resnet18.pt");
    assert_eq!(lines[0], "torchvision.models.resnet.ResNet(", "{text}");
    for child in [
        "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc",
    ] {
        let prefix = format!("  {child}: ");
        assert!(
            lines.iter().any(|line| line.starts_with(&prefix)),
            "{child} not named in\n{text}"
        );
    }
    assert!(
        text.contains("conv1: Conv2d(weight: tensor(float32[64, 3, 7, 7], storage 0)"),
        "{text}"
    );
    assert!(!text.contains("_forward_hooks"), "{text}");
    println!("{text}");
}
