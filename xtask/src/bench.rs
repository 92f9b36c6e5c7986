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

/// What tpkg is compared with.
#[derive(Debug, Clone, Copy)]
enum Baseline {
    /// A mode of `bench/baseline.py` (CPython / PyTorch).
    Python(&'static str),
    /// `cat INPUT > /dev/null`: reading the file from the page cache.
    Cat,
    /// `cp INPUT OUT`: copying the file.
    Cp,
}

struct Benchmark {
    name: &'static str,
    input: &'static str,
    repetitions: usize,
    what: &'static str,
    baselines: &'static [Baseline],
}

const BENCHMARKS: &[Benchmark] = &[
    Benchmark {
        name: "pickle_decode",
        input: "dicts.pkl",
        repetitions: 7,
        what: "decode a 16 MB pickle of 500k small dicts",
        baselines: &[Baseline::Python("pickle_decode")],
    },
    Benchmark {
        name: "glob_match",
        input: "globs.json",
        repetitions: 3,
        what: "match 200k module names against 100 patterns",
        baselines: &[Baseline::Python("glob_match")],
    },
    Benchmark {
        name: "scan_imports",
        input: "scan_files.json",
        repetitions: 3,
        what: "scan the imports of every .py file in site-packages",
        baselines: &[Baseline::Python("scan_imports")],
    },
    Benchmark {
        name: "pack_networkx",
        input: "pack_networkx.json",
        repetitions: 5,
        what: "package networkx (intern networkx.**, extern the rest)",
        baselines: &[Baseline::Python("pack_networkx")],
    },
    Benchmark {
        name: "pack_sympy",
        input: "pack_sympy.json",
        repetitions: 3,
        what: "package sympy (PyTorch with its recursion limit raised)",
        baselines: &[Baseline::Python("pack_sympy")],
    },
    Benchmark {
        name: "load_copy",
        input: "state1g.pt",
        repetitions: 3,
        what: "load a 1 GiB state-dict package into owned memory",
        baselines: &[Baseline::Cat, Baseline::Python("load_pickle")],
    },
    Benchmark {
        name: "load_mmap",
        input: "state1g.pt",
        repetitions: 5,
        what: "load a 1 GiB state-dict package as zero-copy views",
        baselines: &[Baseline::Python("torch_load_mmap")],
    },
    Benchmark {
        name: "convert_safetensors",
        input: "state1g.pt",
        repetitions: 3,
        what: "convert a 1 GiB state-dict package to safetensors",
        baselines: &[Baseline::Cp, Baseline::Python("convert_safetensors")],
    },
    Benchmark {
        name: "load_small",
        input: "small10k.pt",
        repetitions: 5,
        what: "load a package of 10,000 small tensors into owned memory",
        baselines: &[Baseline::Python("load_pickle")],
    },
    Benchmark {
        name: "write_small",
        input: "small10k.pt",
        repetitions: 5,
        what: "write a package of 10,000 small tensors",
        baselines: &[Baseline::Python("save_pickle")],
    },
    Benchmark {
        name: "write_package",
        input: "state1g.pt",
        repetitions: 3,
        what: "write 1 GiB of tensors as a package (atomic, fsynced)",
        baselines: &[Baseline::Cp, Baseline::Python("save_pickle")],
    },
];

pub fn run() -> anyhow::Result<()> {
    let oracle = setup::run()?;
    let root = util::root();
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    util::step("build tpkg-bench (release)", || {
        util::cargo(&["build", "--quiet", "--release", "--package", "tpkg-bench"])
    })?;
    for mode in ["make-inputs", "make-big-inputs"] {
        util::step(&format!("{mode} with the venv's Python"), || {
            util::run(
                Command::new(&oracle.python)
                    .arg(root.join("bench/baseline.py"))
                    .arg(mode)
                    .arg(&out),
            )
        })?;
    }
    let tpkg_bench = root.join("target/release/tpkg-bench");
    let mut results = Vec::new();
    for bench in BENCHMARKS {
        let input = out.join(bench.input);
        let input_text = path_str(&input)?;
        let reps = bench.repetitions.to_string();
        // Warm the page cache, so every side reads the input from memory.
        util::run(
            Command::new("cat")
                .arg(&input)
                .stdout(std::process::Stdio::null()),
        )?;
        let ours = measure(Command::new(&tpkg_bench).args([bench.name, input_text, &reps]))
            .with_context(|| format!("tpkg side of {}", bench.name))?;
        for baseline in bench.baselines {
            let theirs = match baseline {
                Baseline::Python(mode) => measure(
                    Command::new(&oracle.python)
                        .arg(root.join("bench/baseline.py"))
                        .args([mode, input_text, &reps]),
                )
                .with_context(|| format!("baseline {mode} of {}", bench.name))?,
                Baseline::Cat => {
                    time_command("cat (page cache to /dev/null)", bench.repetitions, || {
                        Command::new("cat")
                            .arg(&input)
                            .stdout(std::process::Stdio::null())
                            .status()
                    })?
                }
                Baseline::Cp => {
                    let copy = out.join("cp-out.pt");
                    let timed = time_command("cp", bench.repetitions, || {
                        Command::new("cp").arg(&input).arg(&copy).status()
                    })?;
                    let _ = std::fs::remove_file(&copy);
                    timed
                }
            };
            let (tpkg_median, baseline_median) =
                (median(&ours["seconds"]), median(&theirs["seconds"]));
            results.push(json!({
                "name": bench.name,
                "what": bench.what,
                "tpkg_seconds": tpkg_median,
                "tpkg_spread": spread(&ours["seconds"]),
                "baseline": theirs["baseline"],
                "baseline_seconds": baseline_median,
                "baseline_spread": spread(&theirs["seconds"]),
                "ratio": tpkg_median / baseline_median,
                "tpkg_peak_rss_bytes": ours["peak_rss_bytes"],
                "baseline_peak_rss_bytes": theirs["peak_rss_bytes"],
                "repetitions": bench.repetitions,
            }));
        }
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

/// Times a shell command `repetitions` times (no RSS: it is another process).
fn time_command(
    name: &str,
    repetitions: usize,
    mut run: impl FnMut() -> std::io::Result<std::process::ExitStatus>,
) -> anyhow::Result<Value> {
    let mut seconds = Vec::with_capacity(repetitions);
    for _ in 0..repetitions {
        let start = std::time::Instant::now();
        let status = run()?;
        anyhow::ensure!(status.success(), "{name} failed: {status}");
        seconds.push(start.elapsed().as_secs_f64());
    }
    Ok(json!({ "baseline": name, "seconds": seconds, "peak_rss_bytes": 0 }))
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
