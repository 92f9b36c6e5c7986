//! The section's Markdown tables.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::corpus::{Item, manifest_summary};
use super::tools::{ALL_ROWS, FileRun, Tool, Verdict};
use crate::util;

/// Verdict counts and the summed seconds of one tool on one corpus.
pub(super) fn tally(runs: &[FileRun]) -> Value {
    let count = |verdict| runs.iter().filter(|run| run.verdict == verdict).count();
    json!({
        "total": runs.len(),
        "unsafe": count(Verdict::Unsafe),
        "clean": count(Verdict::Clean),
        "error": count(Verdict::Error),
        "crash": count(Verdict::Crash),
        "skipped": count(Verdict::Skipped),
        "seconds": seconds(runs),
    })
}

pub(super) fn seconds(runs: &[FileRun]) -> f64 {
    runs.iter().map(|run| run.seconds).sum()
}

/// The summary table and the per-file tables of the two corpora.
pub(super) fn markdown(
    json: &Value,
    runs: &BTreeMap<(&str, Tool), Vec<FileRun>>,
    bypass: &[Item],
    clean: &[Item],
) -> String {
    let corpora = &json["corpora"];
    let corpus_line = |label: &str| {
        let corpus = &corpora[label];
        format!(
            "{} ({} items{})",
            corpus["path"]
                .as_str()
                .map(|path| path
                    .strip_prefix(&format!("{}/", util::root().display()))
                    .unwrap_or(path))
                .unwrap_or_default(),
            corpus["files"],
            if corpus["stand_in"] == true {
                ", standing in while the real corpus is missing"
            } else {
                ""
            }
        )
    };
    let speed_files = corpora["speed"]["files"].as_u64().unwrap_or(0);
    let mut text = format!(
        "## Scanners\n\nMust be flagged: {}. Must not be flagged: {}. Speed: {speed_files} generated clean files. Versions: {}.\n\n",
        corpus_line("bypass"),
        corpus_line("clean"),
        json["versions"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, version)| format!("{name} {}", version.as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", "),
    );
    text.push_str(
        "| tool | bypass: detected / total | bypass: error (refusal) | bypass: crash / skipped | clean: false positives / total | clean: error | clean: crash / skipped | speed files not clean (FP / error / crash / skipped) | per-file loop s | × tpkg | own folder scan s | × tpkg |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for tool in json["tools"].as_array().into_iter().flatten() {
        let n = |corpus: &str, key: &str| tool[corpus][key].as_u64().unwrap_or(0);
        let folder = &tool["folder"];
        let (folder_seconds, folder_ratio) = match folder["seconds"].as_f64() {
            Some(seconds) => (
                format!(
                    "{seconds:.2} (`{}`)",
                    folder["command"].as_str().unwrap_or("")
                ),
                format!(
                    "{:.2}x",
                    folder["ratio_to_tpkg"].as_f64().unwrap_or(f64::NAN)
                ),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        text.push_str(&format!(
            "| {} | {} / {} | {} | {} / {} | {} / {} | {} | {} / {} | {} / {} / {} / {} | {:.2} | {:.2}x | {folder_seconds} | {folder_ratio} |\n",
            tool["tool"].as_str().unwrap_or_default(),
            n("bypass", "unsafe"),
            n("bypass", "total"),
            n("bypass", "error"),
            n("bypass", "crash"),
            n("bypass", "skipped"),
            n("clean", "unsafe"),
            n("clean", "total"),
            n("clean", "error"),
            n("clean", "crash"),
            n("clean", "skipped"),
            n("speed", "unsafe"),
            n("speed", "error"),
            n("speed", "crash"),
            n("speed", "skipped"),
            tool["speed_loop_seconds"].as_f64().unwrap_or(f64::NAN),
            tool["speed_loop_ratio_to_tpkg"]
                .as_f64()
                .unwrap_or(f64::NAN),
        ));
    }
    text.push_str(
        "\nInvocations (one process per file, working folder target/bench/scanners-work):\n\n",
    );
    for tool in json["tools"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "- {}: `{}`\n",
            tool["tool"].as_str().unwrap_or_default(),
            tool["invocation"].as_str().unwrap_or_default()
        ));
    }
    text.push_str(
        "\nVerdicts: UNSAFE flagged; clean; error: the tool says it could not scan (tpkg: exit 2, unreadable — a detection by refusal on the bypass corpus, a false positive on the clean one); CRASH: uncaught exception, signal or time-out; skipped: the tool scanned nothing. fickling-api≥overt: fickling-api's runs, unsafe only at LIKELY_OVERTLY_MALICIOUS or above. Details per file in report.json.\n",
    );
    for (label, items) in [("bypass", bypass), ("clean", clean)] {
        text.push_str(&format!(
            "\n### {label}: {}\n\n| file | manifest says |",
            corpus_line(label)
        ));
        for tool in ALL_ROWS {
            text.push_str(&format!(" {} |", tool.name()));
        }
        text.push_str("\n|---|---|");
        text.push_str(&"---|".repeat(ALL_ROWS.len()));
        text.push('\n');
        for (index, item) in items.iter().enumerate() {
            text.push_str(&format!(
                "| {} | {} |",
                item.name,
                manifest_summary(&item.manifest).replace('|', "/")
            ));
            for &tool in ALL_ROWS {
                text.push_str(&format!(
                    " {} |",
                    runs[&(label, tool)][index].verdict.mark()
                ));
            }
            text.push('\n');
        }
    }
    text
}
