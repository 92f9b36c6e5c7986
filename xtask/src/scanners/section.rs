//! The bench's `scanners` section: every tool on the two corpora and the
//! generated folder, and `report.json`'s `scanners`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::corpus::{Item, corpus_items, warm};
use super::report::{markdown, seconds, tally};
use super::tools::{ALL_ROWS, FileRun, FolderRun, TOOLS, Tool, Verdict};
use super::{Options, Venv, build_tpkg, ensure, tpkg_takes_many_paths};
use crate::util;

/// The section's results: `report.json`'s `scanners` and its tables.
#[derive(Debug)]
pub struct Section {
    pub json: Value,
    pub markdown: String,
}

/// Every tool's runs: `(corpus label, tool)` to one run per item.
type Runs = BTreeMap<(&'static str, Tool), Vec<FileRun>>;

/// Runs the section: verdicts on the two corpora, times on the generated
/// folder. `python` is the oracle (it writes the generated folder).
pub fn bench(options: &Options, python: &Path, out: &Path) -> anyhow::Result<Section> {
    let root = util::root();
    let venv = ensure()?;
    build_tpkg()?;
    let work = out.join("scanners-work");
    std::fs::create_dir_all(&work)?;
    let count = options.speed_files.unwrap_or(1000);
    let speed_dir = speed_corpus(python, out, count)?;

    let corpus = |given: &Option<PathBuf>, wanted: &str, stand_in: &str| {
        let wanted = root.join(wanted);
        match given {
            Some(dir) => (std::path::absolute(dir).unwrap_or(dir.clone()), false),
            None if wanted.is_dir() => (wanted, false),
            None => (root.join(stand_in), true),
        }
    };
    let (bypass_dir, bypass_stand_in) =
        corpus(&options.bypass, "tests/data/bypass", "tests/data/hostile");
    let (clean_dir, clean_stand_in) =
        corpus(&options.clean, "tests/data/clean", "tests/data/golden");
    let bypass = corpus_items(&bypass_dir)?;
    let clean = corpus_items(&clean_dir)?;
    let speed: Vec<Item> = corpus_items(&speed_dir)?;
    anyhow::ensure!(
        speed.len() == count,
        "{} holds {} files, not {count}",
        speed_dir.display(),
        speed.len()
    );

    let mut runs: Runs = BTreeMap::new();
    for (label, items) in [("bypass", &bypass), ("clean", &clean)] {
        for &tool in TOOLS {
            let name = format!("{} on {label} ({} files)", tool.name(), items.len());
            let results = util::step(&name, || scan_all(tool, &venv, items, &work))?;
            runs.insert((label, tool), results);
        }
    }
    let folder_runs = time_speed(&venv, &speed_dir, &speed, &work, &mut runs)?;
    // fickling's API read with a higher threshold: the same runs.
    for label in ["bypass", "clean", "speed"] {
        let overt: Vec<FileRun> = runs[&(label, Tool::FicklingApi)]
            .iter()
            .map(FileRun::overtly_malicious)
            .collect();
        runs.insert((label, Tool::FicklingApiOvert), overt);
    }

    let corpora = json!({
        "bypass": {
            "path": bypass_dir, "files": bypass.len(), "stand_in": bypass_stand_in,
            "must": "be flagged",
        },
        "clean": {
            "path": clean_dir, "files": clean.len(), "stand_in": clean_stand_in,
            "must": "not be flagged",
        },
        "speed": { "path": speed_dir, "files": speed.len(), "made_by": "bench/scanners_corpus.py" },
    });
    let json = json!({
        "versions": venv.versions,
        "corpora": corpora,
        "tools": tools_json(&runs, &folder_runs),
        "files": {
            "bypass": files_json(&runs, "bypass", &bypass, false),
            "clean": files_json(&runs, "clean", &clean, false),
            // Only the generated files some tool did not call clean.
            "speed_not_clean": files_json(&runs, "speed", &speed, true),
        },
        "note": "one run of each tool per file; verdicts: unsafe, clean, error (the tool says it could not scan; tpkg: exit 2, unreadable: a detection by refusal on the bypass corpus, a false positive on the clean one), crash (uncaught exception, signal or time-out), skipped (the tool scanned nothing); speed_loop_seconds: the sum over the generated files of each process's wall time (page cache warm); folder: the tool's own scan of the folder in one process, ratio to tpkg's per-file loop unless tpkg audit takes several paths; fickling-api≥overt: fickling-api's runs, unsafe only at LIKELY_OVERTLY_MALICIOUS or above",
    });
    let markdown = markdown(&json, &runs, &bypass, &clean);
    Ok(Section { json, markdown })
}

/// The generated folder of `count` clean files (`bench/scanners_corpus.py`,
/// cached in `OUT/scanners-<count>/`).
fn speed_corpus(python: &Path, out: &Path, count: usize) -> anyhow::Result<PathBuf> {
    let speed_dir = out.join(format!("scanners-{count}"));
    util::step(
        &format!("the speed corpus: {count} files in {}", speed_dir.display()),
        || {
            util::run(
                Command::new(python)
                    .arg(util::root().join("bench/scanners_corpus.py"))
                    .arg(&speed_dir)
                    .arg(count.to_string()),
            )
        },
    )?;
    Ok(speed_dir)
}

/// One process of `tool` per item.
fn scan_all(tool: Tool, venv: &Venv, items: &[Item], work: &Path) -> anyhow::Result<Vec<FileRun>> {
    items
        .iter()
        .map(|item| tool.scan(venv, &item.path, work))
        .collect()
}

/// Times every tool on the generated folder: its per-file loop (into
/// `runs` as `speed`) and its own folder scan where it has one.
fn time_speed(
    venv: &Venv,
    speed_dir: &Path,
    speed: &[Item],
    work: &Path,
    runs: &mut Runs,
) -> anyhow::Result<BTreeMap<Tool, FolderRun>> {
    let mut folder_runs = BTreeMap::new();
    let tpkg_takes_many = tpkg_takes_many_paths()?;
    for &tool in TOOLS {
        warm(speed)?;
        let name = format!(
            "{} on {} files, one process per file",
            tool.name(),
            speed.len()
        );
        let results = util::step(&name, || scan_all(tool, venv, speed, work))?;
        runs.insert(("speed", tool), results);
        warm(speed)?;
        if let Some(folder) = tool.folder_scan(venv, speed_dir, speed, work, tpkg_takes_many)? {
            folder_runs.insert(tool, folder);
        }
    }
    Ok(folder_runs)
}

/// `report.json`'s `scanners.tools`: each row's tallies, loop and folder
/// times.
fn tools_json(runs: &Runs, folder_runs: &BTreeMap<Tool, FolderRun>) -> Vec<Value> {
    let tpkg_loop = seconds(&runs[&("speed", Tool::Tpkg)]);
    ALL_ROWS
        .iter()
        .map(|&tool| {
            let summary = |label| tally(&runs[&(label, tool)]);
            let speed_seconds = seconds(&runs[&("speed", tool)]);
            let folder = match tool {
                Tool::FicklingApiOvert => folder_runs.get(&Tool::FicklingApi),
                _ => folder_runs.get(&tool),
            };
            let folder_reference = folder_runs
                .get(&Tool::Tpkg)
                .map_or(tpkg_loop, |f| f.seconds);
            json!({
                "tool": tool.name(),
                "invocation": tool.invocation(),
                "bypass": summary("bypass"),
                "clean": summary("clean"),
                "speed": summary("speed"),
                "speed_loop_seconds": speed_seconds,
                "speed_loop_ratio_to_tpkg": speed_seconds / tpkg_loop,
                "folder": folder.map(|f| json!({
                    "command": f.command,
                    "seconds": f.seconds,
                    "scanned": f.scanned,
                    "exit": f.exit,
                    "ratio_to_tpkg": f.seconds / folder_reference,
                })),
            })
        })
        .collect()
}

/// Every row's run on each item of a corpus (with `only_unexpected`, only
/// the items some row did not call clean).
fn files_json(runs: &Runs, label: &str, items: &[Item], only_unexpected: bool) -> Vec<Value> {
    items
        .iter()
        .enumerate()
        .filter(|&(index, _)| {
            !only_unexpected
                || ALL_ROWS
                    .iter()
                    .any(|&tool| runs[&(label, tool)][index].verdict != Verdict::Clean)
        })
        .map(|(index, item)| {
            let mut entry = json!({ "file": item.name, "manifest": item.manifest });
            for &tool in ALL_ROWS {
                entry[tool.name()] = runs[&(label, tool)][index].to_json();
            }
            entry
        })
        .collect()
}
