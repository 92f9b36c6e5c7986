//! Issue 18: the scanner corpora (`tests/data/bypass`, `tests/data/clean`,
//! written once by `cargo xtask scanner-corpus`, see
//! `tests/oracle/make_scanner_corpus.py`).
//!
//! - `bypass/`: public bypasses of picklescan, modelscan and fickling (and
//!   PyTorch-specific routes: torch.package source, TorchScript, `.pt2`,
//!   zip and legacy-stream tricks), one file per technique and container,
//!   each with its source and the loader call that fires it. Every payload
//!   only creates a marker file. PyTorch proves each one real
//!   ([`bypass_payloads_fire_in_pytorch`]); `tpkg audit` owes each an
//!   `unsafe` verdict.
//! - `clean/`: small real files PyTorch 2.13 writes; `tpkg audit` owes none
//!   of them an `unsafe` finding.
//!
//! The audit tests print a table of file and verdict with `--nocapture`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tpkg::audit::{AuditPolicy, Finding, Level};
#[cfg(feature = "oracle")]
use tpkg_tests::oracle;

fn corpus_dir(part: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(part)
}

/// The `files` of a corpus manifest.
fn manifest(part: &str) -> Vec<Value> {
    let path = corpus_dir(part).join("manifest.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let manifest: Value = serde_json::from_slice(&text).unwrap();
    manifest["files"]
        .as_array()
        .expect("manifest files")
        .clone()
}

fn text<'a>(entry: &'a Value, key: &str) -> &'a str {
    entry[key]
        .as_str()
        .unwrap_or_else(|| panic!("manifest entry without {key}: {entry}"))
}

#[test]
fn manifests_list_exactly_the_corpus_files() {
    let mut total = 0;
    for (part, minimum) in [("bypass", 60), ("clean", 30)] {
        let entries = manifest(part);
        assert!(entries.len() >= minimum, "{part}: {} files", entries.len());
        let mut listed: Vec<&str> = entries.iter().map(|e| text(e, "file")).collect();
        listed.sort_unstable();
        let mut on_disk: Vec<String> = std::fs::read_dir(corpus_dir(part))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != "manifest.json")
            .collect();
        on_disk.sort_unstable();
        assert_eq!(listed, on_disk, "{part}: manifest and folder differ");
        for entry in &entries {
            let file = text(entry, "file");
            let size = std::fs::metadata(corpus_dir(part).join(file))
                .unwrap()
                .len();
            assert_eq!(entry["bytes"].as_u64(), Some(size), "{part}/{file}");
            total += size;
            assert!(entry["load"]["call"].is_string(), "{part}/{file}");
            text(entry, "loader");
            if part == "bypass" {
                assert!(text(entry, "source").starts_with("https://"), "{file}");
                assert_eq!(text(entry, "expected"), "unsafe", "{file}");
                for key in ["technique", "container", "description", "category"] {
                    assert!(!text(entry, key).is_empty(), "{file}: {key}");
                }
            } else {
                text(entry, "made_by");
            }
        }
    }
    assert!(total < 25_000_000, "the corpora weigh {total} bytes");
}

/// Every bypass payload runs when PyTorch loads its file with the
/// manifest's loader: each load in a process of its own (forked by the
/// oracle script after it imported torch), in a fresh folder, with a
/// timeout; the marker file must exist afterwards.
#[test]
#[cfg(feature = "oracle")]
fn bypass_payloads_fire_in_pytorch() {
    let dir = corpus_dir("bypass");
    let answer = oracle::run_json("fire_scanner_corpus.py", &[dir.to_str().unwrap()])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut table = String::new();
    let mut silent = Vec::new();
    for entry in manifest("bypass") {
        let file = text(&entry, "file");
        let result = &answer["files"][file];
        let fired = result["fired"].as_bool() == Some(true);
        writeln!(
            table,
            "{:<44} {:<18} {:<6} {:>6.2}s {}",
            file,
            text(&entry, "container"),
            if fired { "fired" } else { "SILENT" },
            result["seconds"].as_f64().unwrap_or(f64::NAN),
            result["error"].as_str().unwrap_or("(no answer)"),
        )
        .unwrap();
        if !fired {
            silent.push(file.to_owned());
        }
    }
    println!("{table}");
    assert!(
        silent.is_empty(),
        "{} bypass payloads did not fire in PyTorch: {silent:?}\n{table}",
        silent.len()
    );
}

/// Every clean file loads in PyTorch with its manifest's loader, each in a
/// process of its own: the clean corpus is what PyTorch writes and reads.
#[test]
#[cfg(feature = "oracle")]
fn clean_files_load_in_pytorch() {
    let dir = corpus_dir("clean");
    let answer = oracle::run_json(
        "fire_scanner_corpus.py",
        &["--clean", dir.to_str().unwrap()],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let failed: Vec<String> = manifest("clean")
        .iter()
        .map(|entry| text(entry, "file"))
        .filter_map(|file| {
            let result = &answer["files"][file];
            (result["exit"].as_i64() != Some(0)).then(|| format!("{file}: {result}"))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "clean files PyTorch does not load:\n  {}",
        failed.join("\n  ")
    );
}

/// What `tpkg audit` says of one file: [`tpkg::audit::audit_path`], the
/// CLI's own entry point (format told by content; a file that does not
/// open is an unsafe `unreadable` finding: unreadable never reads as
/// clean).
fn audit_file(path: &Path) -> Vec<Finding> {
    tpkg::audit::audit_path(path, &AuditPolicy::default()).findings
}

fn worst(findings: &[Finding]) -> Option<Level> {
    findings.iter().map(|f| f.level).max()
}

fn describe(finding: &Finding) -> String {
    let mut out = format!("{} {} {}", finding.level, finding.kind, finding.subject);
    if let Some(record) = &finding.record {
        let _ = write!(out, " in {record}");
    }
    let _ = write!(out, ": {}", finding.reason);
    out.chars().take(160).collect()
}

/// The most severe finding of a file (the first of its level).
fn strongest(findings: &[Finding]) -> String {
    match worst(findings) {
        Some(level) => describe(findings.iter().find(|f| f.level == level).unwrap()),
        None => "(no findings)".into(),
    }
}

/// The unsafe findings of a file, one line per distinct kind and subject
/// (with how many records repeat it), at most eight.
fn distinct_unsafe(findings: &[Finding]) -> Vec<String> {
    let mut seen: BTreeMap<(&str, &str), (usize, &Finding)> = BTreeMap::new();
    for finding in findings.iter().filter(|f| f.level == Level::Unsafe) {
        seen.entry((finding.kind.as_str(), finding.subject.as_str()))
            .or_insert((0, finding))
            .0 += 1;
    }
    let mut lines: Vec<String> = seen
        .values()
        .map(|(count, finding)| match count {
            1 => describe(finding),
            _ => format!("{} (and {} more records)", describe(finding), count - 1),
        })
        .collect();
    if lines.len() > 8 {
        let more = lines.len() - 8;
        lines.truncate(8);
        lines.push(format!("... {more} more"));
    }
    lines
}

fn verdict(findings: &[Finding]) -> String {
    worst(findings).map_or_else(|| "none".into(), |level| level.to_string())
}

#[test]
fn audit_flags_every_bypass() {
    let mut table = String::new();
    let mut missed = Vec::new();
    let mut by_container: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for entry in manifest("bypass") {
        let file = text(&entry, "file");
        let container = text(&entry, "container");
        let findings = audit_file(&corpus_dir("bypass").join(file));
        let flagged = worst(&findings) == Some(Level::Unsafe);
        let counts = by_container.entry(container.to_owned()).or_default();
        counts.0 += usize::from(flagged);
        counts.1 += 1;
        writeln!(
            table,
            "{:<7} {:<44} {:<18} {:<48} {}",
            verdict(&findings),
            file,
            container,
            text(&entry, "technique")
                .chars()
                .take(48)
                .collect::<String>(),
            strongest(&findings),
        )
        .unwrap();
        if !flagged {
            missed.push(format!("{file} ({})", verdict(&findings)));
        }
    }
    let summary: Vec<String> = by_container
        .iter()
        .map(|(container, (flagged, all))| format!("{container} {flagged}/{all}"))
        .collect();
    println!("got     file / container / technique / strongest finding\n{table}");
    println!("flagged unsafe, by container: {}", summary.join(", "));
    assert!(
        missed.is_empty(),
        "{} bypasses not flagged unsafe:\n  {}",
        missed.len(),
        missed.join("\n  ")
    );
}

#[test]
fn audit_passes_every_clean_file() {
    let mut table = String::new();
    let mut failed = Vec::new();
    for entry in manifest("clean") {
        let file = text(&entry, "file");
        let findings = audit_file(&corpus_dir("clean").join(file));
        writeln!(
            table,
            "{:<7} {:<40} {:<38} {}",
            verdict(&findings),
            file,
            text(&entry, "kind"),
            strongest(&findings),
        )
        .unwrap();
        let unsafe_findings = distinct_unsafe(&findings);
        if !unsafe_findings.is_empty() {
            failed.push(format!("{file}:\n    {}", unsafe_findings.join("\n    ")));
        }
    }
    println!("got     file / kind / strongest finding\n{table}");
    assert!(
        failed.is_empty(),
        "{} clean files have unsafe findings:\n  {}",
        failed.len(),
        failed.join("\n  ")
    );
}
