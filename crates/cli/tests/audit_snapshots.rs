//! Golden outputs of `tpkg audit`'s text: the verdict and exit reason
//! first, unsafe findings with their chains, review findings by kind, and
//! folder audits (one line per file, then the summary). Run from the
//! workspace root with relative paths, so snapshots hold no machine's
//! paths; the folder summary's timing is redacted.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tpkg ARGS` run in `dir`: exit status, standard output and (if any)
/// standard error, the folder summary's seconds redacted.
fn run_in(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tpkg"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .expect("the tpkg binary runs");
    let mut text = format!("exit status: {:?}\n", output.status.code());
    text.push_str(&redact_seconds(&String::from_utf8_lossy(&output.stdout)));
    if !output.stderr.is_empty() {
        text.push_str("--- stderr\n");
        text.push_str(&String::from_utf8_lossy(&output.stderr));
    }
    text
}

fn run(args: &[&str]) -> String {
    run_in(&root(), args)
}

/// `(0.12 s)` at the end of a line becomes `([seconds] s)`.
fn redact_seconds(text: &str) -> String {
    text.lines()
        .map(|line| match line.rfind(" (") {
            Some(at) if line.ends_with(" s)") => format!("{} ([seconds] s)\n", &line[..at]),
            _ => format!("{line}\n"),
        })
        .collect()
}

#[test]
fn unsafe_pickle_global_chains_record_offset_and_call() {
    insta::assert_snapshot!(run(&["audit", "tests/data/hostile/os_system_global.pt"]));
}

#[test]
fn package_code_chains_from_the_pickle_call() {
    insta::assert_snapshot!(run(&[
        "audit",
        "tests/data/bypass/package_reduce_package.pt"
    ]));
}

#[test]
fn import_time_code_chains_from_the_pickle_global() {
    insta::assert_snapshot!(run(&[
        "audit",
        "tests/data/bypass/package_module_level_system.pt"
    ]));
}

#[test]
fn nested_files_keep_their_place() {
    insta::assert_snapshot!(run(&[
        "audit",
        "tests/data/bypass/load_from_bytes_nested.package.pt"
    ]));
}

#[test]
fn legacy_file_with_a_payload() {
    insta::assert_snapshot!(run(&["audit", "tests/data/bypass/inst_exec.legacy.pt"]));
}

#[test]
fn a_safe_file_says_so_and_exits_0() {
    insta::assert_snapshot!(run(&[
        "audit",
        "tests/data/golden/torch-2.0.1/torch_save/state_dict.pt"
    ]));
}

#[test]
fn all_lists_every_finding_by_kind() {
    insta::assert_snapshot!(run(&[
        "audit",
        "--all",
        "tests/data/golden/torch-2.0.1/torch_save/state_dict.pt"
    ]));
}

#[test]
fn review_findings_are_grouped_and_fail_on_review_exits_1() {
    insta::assert_snapshot!(run(&[
        "audit",
        "--fail-on",
        "review",
        "tests/data/golden/torch-2.0.1/torch_save/torchscript_module.pt"
    ]));
}

#[test]
fn an_unreadable_file_exits_2() {
    insta::assert_snapshot!(run(&[
        "audit",
        "tests/data/hostile/legacy_truncated_after_object.pt"
    ]));
}

#[test]
fn folder_of_golden_files() {
    insta::assert_snapshot!(run(&["audit", "tests/data/golden/torch-2.0.1/torch_save"]));
}

#[test]
fn folder_with_unsafe_skipped_and_safe_files() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("models");
    std::fs::create_dir(&folder).unwrap();
    let data = root().join("tests/data");
    for (from, to) in [
        ("hostile/os_system_global.pt", "evil.pt"),
        ("clean/mlp_state_dict.pt", "mlp.pt"),
        ("bypass/package_module_level_system.pt", "pkg.pt"),
    ] {
        std::fs::copy(data.join(from), folder.join(to)).unwrap();
    }
    std::fs::write(folder.join("notes.txt"), "not a model\n").unwrap();
    insta::assert_snapshot!(run_in(dir.path(), &["audit", "models"]));
}

#[test]
fn piped_output_has_no_colour() {
    let text = run(&["audit", "tests/data/hostile/os_system_global.pt"]);
    assert!(!text.contains('\x1b'), "{text}");
}
