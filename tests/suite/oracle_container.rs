//! The container differential (issue 16): PyTorch's archive reader (miniz,
//! `torch._C.PyTorchFileReader`) and tpkg's `PackageReader` must agree on
//! refusing or reading, and where both read, on every record's name (in
//! order) and bytes, for random archives PyTorch writes and seeded
//! mutations of them. The harness is `tests/oracle/zip_differential.py`
//! driving the `tpkg-zipdiff-reader` binary; `cargo xtask zipdiff` runs
//! it at scale.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tpkg_tests::oracle;

const SEED: &str = "16";

/// Runs the harness; returns its exit code and report.
fn run_harness(name: &str, args: &[&str], sabotage: bool) -> (i32, Value) {
    let python = oracle::python().expect("the PyTorch oracle (cargo xtask setup)");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let report_path = out.join("report.json");
    let keep = out.join("cases");
    let _ = std::fs::remove_file(&report_path);
    let mut command = Command::new(python);
    command
        .arg(oracle::script("zip_differential.py"))
        .args(["--reader", env!("CARGO_BIN_EXE_tpkg-zipdiff-reader")])
        .args(["--seed", SEED, "--quiet", "--report"])
        .arg(&report_path)
        .arg("--keep")
        .arg(&keep)
        .args(args);
    if sabotage {
        command.env("TPKG_ZIPDIFF_SABOTAGE", "1");
    }
    let status = command.status().expect("starting the harness");
    let code = status.code().unwrap_or(-1);
    let report = std::fs::read(&report_path).unwrap_or_else(|error| {
        panic!(
            "the harness ({status}) wrote no report at {}: {error}",
            report_path.display()
        )
    });
    (code, serde_json::from_slice(&report).expect("report JSON"))
}

fn count(report: &Value, key: &str) -> u64 {
    report[key].as_u64().unwrap_or(0)
}

/// A few disagreements of each class (random archives first), for the
/// failure message.
fn describe(report: &Value) -> String {
    let mut text = String::new();
    let Some(classes) = report["examples"].as_object() else {
        return text;
    };
    for (class, examples) in classes {
        text.push_str(&format!(
            "{class} ({} cases), e.g.:\n",
            report["by_class"][class].as_u64().unwrap_or(0)
        ));
        for case in examples.as_array().into_iter().flatten() {
            text.push_str(&format!(
                "  {} [{}] {}\n    pytorch: {}\n    tpkg:    {}\n",
                case["case"].as_str().unwrap_or("?"),
                case["region"].as_str().unwrap_or("?"),
                case["what"].as_str().unwrap_or("?"),
                case["pytorch"],
                case["tpkg"],
            ));
        }
    }
    text
}

#[test]
fn pytorch_and_tpkg_agree_on_random_and_mutated_archives() {
    let (code, report) = run_harness(
        "zipdiff-suite",
        &["--archives", "300", "--mutations", "2000", "--exit-zero"],
        false,
    );
    assert_eq!(code, 0, "the harness failed");
    assert_eq!(count(&report, "cases"), 2300, "every case ran");
    let disagreements = count(&report, "disagreements");
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("zipdiff-suite/cases");
    assert!(
        disagreements == 0,
        "PyTorch and tpkg disagree on {disagreements} of {} archives (random archives: {}; \
         mutations of an archive they already disagree on: {}).\n{}\
         Archives kept in {}. Replay one case: {} {} --reader {} --seed {SEED} --archives 300 \
         --case <id> --keep DIR",
        count(&report, "cases"),
        report["random_archives"],
        count(&report, "disagreements_inherited"),
        describe(&report),
        keep.display(),
        oracle::python()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        oracle::script("zip_differential.py").display(),
        env!("CARGO_BIN_EXE_tpkg-zipdiff-reader"),
    );
}

/// The harness is not vacuous: a reader that misreports one record per
/// archive is caught, as bytes differing where both read.
#[test]
fn the_harness_catches_a_reader_that_misreads() {
    let (code, report) = run_harness(
        "zipdiff-sabotaged",
        &["--archives", "6", "--mutations", "12"],
        true,
    );
    assert_eq!(code, 1, "the harness must fail on disagreements");
    let caught = report["by_class"]["both-read/bytes-differ"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        caught > 0,
        "the sabotaged reader went unnoticed: {}",
        report["by_class"]
    );
    assert!(count(&report, "disagreements") >= caught);
}
