//! `tpkg audit --format sarif` writes SARIF 2.1.0 that the OASIS schema
//! accepts (`tests/data/sarif/sarif-schema-2.1.0.json`, committed from
//! oasis-tcs/sarif-spec), with a result for every unsafe finding.

use std::path::Path;
use std::process::Command;

fn data(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(path)
}

fn sarif_of(paths: &[std::path::PathBuf]) -> (serde_json::Value, Option<i32>) {
    let output = Command::new(env!("CARGO_BIN_EXE_tpkg"))
        .arg("audit")
        .args(paths)
        .args(["--format", "sarif"])
        .output()
        .unwrap();
    let log = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    (log, output.status.code())
}

#[test]
fn sarif_output_validates_against_the_2_1_0_schema() {
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("sarif/sarif-schema-2.1.0.json")).unwrap())
            .unwrap();
    let validator = jsonschema::draft4::new(&schema).unwrap();
    let (log, code) = sarif_of(&[data("bypass"), data("clean")]);
    assert_eq!(code, Some(2), "some bypasses are unreadable: exit 2");
    let errors: Vec<String> = validator.iter_errors(&log).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{} schema errors: {errors:#?}",
        errors.len()
    );
    assert_eq!(log["version"], "2.1.0");
    let results = log["runs"][0]["results"].as_array().unwrap();
    // Every bypass file has an error-level result, no clean file has one.
    let flagged = |folder: &str| {
        let mut files: Vec<&str> = results
            .iter()
            .filter(|r| r["level"] == "error")
            .filter_map(|r| {
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str()
            })
            .filter(|uri| uri.contains(&format!("/{folder}/")))
            .collect();
        files.sort_unstable();
        files.dedup();
        files.len()
    };
    let manifest = |folder: &str| -> usize {
        let text = std::fs::read(data(folder).join("manifest.json")).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        value["files"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(flagged("bypass"), manifest("bypass"));
    assert_eq!(flagged("clean"), 0);
    // A broken log must fail: the test can fail.
    let mut broken = log.clone();
    broken["runs"][0]["results"][0]["level"] = "fatal".into();
    assert!(!validator.is_valid(&broken));
}
