//! `cargo xtask bench`: tpkg against CPython/PyTorch, in one run.
//!
//! Inputs are made by the venv's Python (`bench/baseline.py make-inputs`)
//! into `target/bench/`; each benchmark runs the baseline and tpkg
//! (`bench/src/main.rs`, release build) on the same input several times.
//! Medians, spreads and ratios go to `target/bench/report.json` and
//! `target/bench/report.md`. These machines are noisy: compare ratios.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde_json::{Value, json};

use crate::{setup, util};

/// (benchmark, input file, repetitions, what is measured)
const BENCHMARKS: &[(&str, &str, usize, &str)] = &[
    (
        "pickle_decode",
        "dicts.pkl",
        7,
        "decode a 16 MB pickle of 500k small dicts",
    ),
    (
        "glob_match",
        "globs.json",
        3,
        "match 200k module names against 100 patterns",
    ),
];

pub fn run() -> anyhow::Result<()> {
    let oracle = setup::run()?;
    let root = util::root();
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    util::step("build tpkg-bench (release)", || {
        util::cargo(&["build", "--quiet", "--release", "--package", "tpkg-bench"])
    })?;
    util::step("make inputs with the venv's Python", || {
        util::run(
            Command::new(&oracle.python)
                .arg(root.join("bench/baseline.py"))
                .arg("make-inputs")
                .arg(&out),
        )
    })?;
    let tpkg_bench = root.join("target/release/tpkg-bench");
    let mut results = Vec::new();
    for (name, input, repetitions, what) in BENCHMARKS {
        let input = out.join(input);
        let reps = repetitions.to_string();
        let baseline = measure(
            Command::new(&oracle.python)
                .arg(root.join("bench/baseline.py"))
                .args([name, path_str(&input)?, &reps]),
        )
        .with_context(|| format!("baseline of {name}"))?;
        let ours = measure(Command::new(&tpkg_bench).args([name, path_str(&input)?, &reps]))
            .with_context(|| format!("tpkg side of {name}"))?;
        let (tpkg_median, baseline_median) =
            (median(&ours["seconds"]), median(&baseline["seconds"]));
        results.push(json!({
            "name": name,
            "what": what,
            "tpkg_seconds": tpkg_median,
            "tpkg_spread": spread(&ours["seconds"]),
            "baseline": baseline["baseline"],
            "baseline_seconds": baseline_median,
            "baseline_spread": spread(&baseline["seconds"]),
            "ratio": tpkg_median / baseline_median,
            "tpkg_peak_rss_bytes": ours["peak_rss_bytes"],
            "baseline_peak_rss_bytes": baseline["peak_rss_bytes"],
            "repetitions": repetitions,
        }));
    }
    let report = json!({ "benchmarks": results, "note": "medians of warm runs; ratio = tpkg / baseline (below 1 is faster)" });
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    let table = markdown(&results);
    std::fs::write(out.join("report.md"), &table)?;
    println!("{table}");
    Ok(())
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().context("non-UTF-8 path")
}

fn measure(command: &mut Command) -> anyhow::Result<Value> {
    let text = util::output(command)?;
    serde_json::from_str(text.trim()).context("benchmark printed no JSON")
}

fn sorted(seconds: &Value) -> Vec<f64> {
    let mut values: Vec<f64> = seconds
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect();
    values.sort_by(f64::total_cmp);
    values
}

fn median(seconds: &Value) -> f64 {
    let values = sorted(seconds);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// (min, max) of the repetitions.
fn spread(seconds: &Value) -> Value {
    let values = sorted(seconds);
    json!([values.first(), values.last()])
}

fn markdown(results: &[Value]) -> String {
    let mut table = String::from(
        "| benchmark | tpkg s (median) | baseline | baseline s (median) | ratio | tpkg peak RSS MB | baseline peak RSS MB |\n|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let mb = |v: &Value| v.as_f64().unwrap_or(0.0) / 1_048_576.0;
        table.push_str(&format!(
            "| {} ({}) | {:.3} | {} | {:.3} | {:.2}x | {:.0} | {:.0} |\n",
            r["name"].as_str().unwrap_or_default(),
            r["what"].as_str().unwrap_or_default(),
            r["tpkg_seconds"].as_f64().unwrap_or(f64::NAN),
            r["baseline"].as_str().unwrap_or_default(),
            r["baseline_seconds"].as_f64().unwrap_or(f64::NAN),
            r["ratio"].as_f64().unwrap_or(f64::NAN),
            mb(&r["tpkg_peak_rss_bytes"]),
            mb(&r["baseline_peak_rss_bytes"]),
        ));
    }
    table
}
