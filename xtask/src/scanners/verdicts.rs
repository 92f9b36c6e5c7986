//! Each tool's output read as a verdict.

use std::path::Path;

use serde_json::Value;

use super::tools::{Outcome, Verdict, last_line, shorten};

/// tpkg: exit 0 clean, 1 unsafe (the first unsafe finding), 2 unreadable.
pub(super) fn read_tpkg(outcome: &Outcome) -> (Verdict, String) {
    let report: Value = serde_json::from_str(&outcome.stdout).unwrap_or_default();
    match outcome.code() {
        Some(0) => (Verdict::Clean, String::new()),
        Some(1) => {
            let findings = report["findings"].as_array().cloned().unwrap_or_default();
            let first = findings
                .iter()
                .find(|finding| finding["level"] == "unsafe")
                .map(|finding| {
                    format!(
                        "{} {} ({})",
                        finding["kind"].as_str().unwrap_or("?"),
                        finding["subject"].as_str().unwrap_or("?"),
                        finding["record"].as_str().unwrap_or("-")
                    )
                })
                .unwrap_or_default();
            (Verdict::Unsafe, shorten(&first))
        }
        Some(2) => {
            let error = report["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| last_line(&outcome.stderr));
            (Verdict::Error, shorten(&format!("unreadable: {error}")))
        }
        other => (
            Verdict::Crash,
            format!("exit {other:?}: {}", last_line(&outcome.stderr)),
        ),
    }
}

/// `Name: N` from a summary.
pub(super) fn summary_count(text: &str, label: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
}

/// picklescan: its summary, not only its exit status (exit 2, a scan error,
/// wins over exit 1 when a file has both). Dangerous globals → unsafe; exit
/// 2 → error; no summary → crash (it caught an exception).
pub(super) fn read_picklescan(outcome: &Outcome) -> (Verdict, String) {
    let text = format!("{}{}", outcome.stdout, outcome.stderr);
    let Some(dangerous) = summary_count(&text, "Dangerous globals:") else {
        return (Verdict::Crash, last_line(&text));
    };
    let lines = |needle: &str| {
        shorten(
            &text
                .lines()
                .filter(|line| line.contains(needle))
                .collect::<Vec<_>>()
                .join("; "),
        )
    };
    if dangerous > 0 {
        return (Verdict::Unsafe, lines("FOUND"));
    }
    if outcome.code() == Some(2) {
        return (Verdict::Error, lines("ERROR"));
    }
    if summary_count(&text, "Scanned files:") == Some(0) {
        return (Verdict::Skipped, String::new());
    }
    if outcome.code() != Some(0) {
        return (
            Verdict::Crash,
            format!("exit {:?}: {}", outcome.code(), last_line(&text)),
        );
    }
    // A file it cannot parse as a pickle is clean to it, with a warning.
    (Verdict::Clean, lines("WARNING"))
}

/// modelscan: its JSON report (issues → unsafe; errors → error; nothing
/// scanned → skipped); exit 2 without a report is an exception it caught.
pub(super) fn read_modelscan(outcome: &Outcome, json_out: &Path) -> (Verdict, String) {
    let report: Option<Value> = std::fs::read_to_string(json_out)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let Some(report) = report else {
        return (
            Verdict::Crash,
            format!(
                "exit {:?}, no report: {}",
                outcome.code(),
                last_line(&outcome.stdout)
            ),
        );
    };
    let list = |key: &str| report[key].as_array().cloned().unwrap_or_default();
    let (issues, errors) = (list("issues"), list("errors"));
    if let Some(issue) = issues.first() {
        let detail = issue["description"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| issue.to_string());
        return (Verdict::Unsafe, shorten(&detail));
    }
    if let Some(error) = errors.first() {
        let detail = error["description"]
            .as_str()
            .or(error["message"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| error.to_string());
        return (Verdict::Error, shorten(&detail));
    }
    let scanned = report["summary"]["scanned"]["total_scanned"].as_u64();
    match outcome.code() {
        Some(3) => (Verdict::Skipped, "no supported file (exit 3)".to_owned()),
        _ if scanned == Some(0) => (Verdict::Skipped, "nothing scanned".to_owned()),
        Some(0) => (Verdict::Clean, String::new()),
        Some(2) => (Verdict::Error, "exit 2 with no error listed".to_owned()),
        other => (
            Verdict::Crash,
            format!("exit {other:?}: {}", last_line(&outcome.stdout)),
        ),
    }
}

/// fickling's CLI: exit 0 clean, 1 unsafe, 2 error (it could not parse the
/// file); a Python traceback is a crash, whatever the exit status (an
/// uncaught exception exits 1, like a finding).
pub(super) fn read_fickling_cli(outcome: &Outcome) -> (Verdict, String) {
    if outcome.stderr.contains("Traceback (most recent call last)") {
        return (Verdict::Crash, last_line(&outcome.stderr));
    }
    match outcome.code() {
        Some(0) => (Verdict::Clean, String::new()),
        Some(1) => (Verdict::Unsafe, String::new()),
        Some(2) => {
            let first = outcome.stderr.lines().next().unwrap_or_default();
            (Verdict::Error, shorten(first))
        }
        other => (
            Verdict::Crash,
            format!("exit {other:?}: {}", last_line(&outcome.stderr)),
        ),
    }
}

/// `bench/fickling_scan.py`'s JSON line.
pub(super) fn read_fickling_api(outcome: &Outcome) -> (Verdict, String, Option<String>) {
    let line: Option<Value> = outcome
        .stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok());
    let Some(line) = line else {
        return (
            Verdict::Crash,
            format!("exit {:?}: {}", outcome.code(), last_line(&outcome.stderr)),
            None,
        );
    };
    let verdict = match line["verdict"].as_str() {
        Some("unsafe") => Verdict::Unsafe,
        Some("clean") => Verdict::Clean,
        Some("error") => Verdict::Error,
        Some("skipped") => Verdict::Skipped,
        _ => Verdict::Crash,
    };
    let detail = line["detail"].as_str().unwrap_or_default();
    let severity = line["severity"].as_str().map(str::to_owned);
    (verdict, shorten(detail), severity)
}
