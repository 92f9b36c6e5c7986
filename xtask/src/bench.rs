//! `cargo xtask bench`: tpkg against CPython/PyTorch, in one run.
//!
//! Inputs are made by the venv's Python (`bench/baseline.py make-inputs`)
//! into `target/bench/`; each benchmark runs the baseline and tpkg
//! (`bench/src/main.rs`, release build) on the same input several times.
//! Medians, spreads and ratios go to `target/bench/report.json`,
//! `target/bench/report.md` and a chart, `target/bench/report.png`. These machines are noisy: compare ratios.
//! `cargo xtask bench ROW...` runs only the rows named (`torchsave_*`: the
//! rows whose names start with `torchsave_`); the report then holds those.
//! The row `scanners` is the section of [`scanners`]: other pickle scanners
//! beside `tpkg audit` (`--bypass DIR`, `--clean DIR`, `--speed-files N`).
//! The row `cli` is the section of [`bench_cli`]: the `tpkg` process beside
//! `cat`, `cp` and PyTorch. With `--readme` the run also rewrites the
//! README's speed tables for the sections it measured; `cargo xtask bench
//! readme [REPORT...]` rewrites them from saved reports ([`bench_readme`]).

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde_json::{Value, json};

use crate::{bench_cli, bench_readme, scanners, setup, util};

/// What tpkg is compared with.
#[derive(Debug, Clone, Copy)]
enum Baseline {
    /// A mode of `bench/baseline.py` (CPython / PyTorch).
    Python(&'static str),
    /// `cat INPUT > /dev/null`: reading the file from the page cache.
    Cat,
    /// `cp INPUT OUT`: copying the file (not fsynced, as PyTorch's
    /// writers are not).
    Cp,
    /// `cp INPUT OUT && sync OUT`: copying the file to the disk, as
    /// durably as tpkg's default writes.
    CpSync,
}

/// What tpkg must reach against one baseline.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Only reported.
    None,
    /// tpkg's median at most this many times the baseline's.
    Within(f64),
    /// tpkg's median under this many seconds.
    Under(f64),
}

struct Benchmark {
    name: &'static str,
    input: &'static str,
    repetitions: usize,
    what: &'static str,
    baselines: &'static [(Baseline, Target)],
    /// Whether the working memory must stay near the largest storage
    /// (at most [`WORKING_MEMORY_LIMIT`] storages' worth).
    memory_target: bool,
}

/// "Near the largest single tensor": at most this many times its size
/// (one storage in flight per core, plus the map's read-ahead).
const WORKING_MEMORY_LIMIT: u64 = 4;

const BENCHMARKS: &[Benchmark] = &[
    Benchmark {
        name: "pickle_decode",
        input: "dicts.pkl",
        repetitions: 7,
        what: "decode a 16 MB pickle of 500k small dicts",
        baselines: &[(Baseline::Python("pickle_decode"), Target::Within(1.0))],
        memory_target: false,
    },
    Benchmark {
        name: "glob_match",
        input: "globs.json",
        repetitions: 3,
        what: "match 200k module names against 100 patterns",
        baselines: &[(Baseline::Python("glob_match"), Target::None)],
        memory_target: false,
    },
    Benchmark {
        name: "scan_imports",
        input: "scan_files.json",
        repetitions: 3,
        what: "scan the imports of every .py file in site-packages",
        baselines: &[(Baseline::Python("scan_imports"), Target::Within(0.1))],
        memory_target: false,
    },
    Benchmark {
        name: "pack_networkx",
        input: "pack_networkx.json",
        repetitions: 5,
        what: "package networkx (intern networkx.**, extern the rest)",
        baselines: &[(Baseline::Python("pack_networkx"), Target::Within(0.1))],
        memory_target: false,
    },
    Benchmark {
        name: "pack_sympy",
        input: "pack_sympy.json",
        repetitions: 3,
        what: "package sympy (PyTorch with its recursion limit raised; target: under 1 s)",
        baselines: &[(Baseline::Python("pack_sympy"), Target::Under(1.0))],
        memory_target: false,
    },
    Benchmark {
        name: "load_copy",
        input: "state1g.pt",
        repetitions: 5,
        what: "load a 1 GiB state-dict package into owned memory",
        baselines: &[
            (Baseline::Cat, Target::Within(3.0)),
            (Baseline::Python("load_pickle"), Target::None),
        ],
        memory_target: true,
    },
    Benchmark {
        name: "load_mmap",
        input: "state1g.pt",
        repetitions: 5,
        what: "load a 1 GiB state-dict package as zero-copy views",
        baselines: &[(Baseline::Python("torch_load_mmap"), Target::Within(2.0))],
        memory_target: true,
    },
    Benchmark {
        name: "torchsave_zip_load_copy",
        input: "state1g_torchsave.pt",
        repetitions: 9,
        what: "load a 1 GiB torch.save file (zip) into owned memory, every page touched",
        baselines: &[
            (Baseline::Cat, Target::Within(1.2)),
            (Baseline::Python("torch_load_touch"), Target::None),
        ],
        memory_target: true,
    },
    Benchmark {
        name: "torchsave_zip_load_mmap",
        input: "state1g_torchsave.pt",
        repetitions: 9,
        what: "load a 1 GiB torch.save file (zip) as views of its memory map, every page touched",
        baselines: &[
            (Baseline::Cat, Target::None),
            (Baseline::Python("torch_load_mmap_touch"), Target::None),
        ],
        memory_target: false,
    },
    Benchmark {
        name: "torchsave_legacy_load_copy",
        input: "state1g_torchsave_legacy.pt",
        repetitions: 9,
        what: "load a 1 GiB legacy torch.save file into owned memory, every page touched",
        baselines: &[
            (Baseline::Cat, Target::Within(1.2)),
            (Baseline::Python("torch_load_touch"), Target::None),
        ],
        memory_target: true,
    },
    Benchmark {
        name: "torchsave_legacy_load_mmap",
        input: "state1g_torchsave_legacy.pt",
        repetitions: 9,
        what: "load a 1 GiB legacy torch.save file as views of its memory map, every page touched",
        baselines: &[
            (Baseline::Cat, Target::None),
            (Baseline::Python("torch_load_mmap_touch"), Target::None),
        ],
        memory_target: false,
    },
    Benchmark {
        name: "convert_safetensors",
        input: "state1g.pt",
        repetitions: 5,
        what: "convert a 1 GiB state-dict package to safetensors, fsynced",
        baselines: &[(Baseline::CpSync, Target::Within(1.5))],
        memory_target: true,
    },
    Benchmark {
        name: "convert_safetensors_nosync",
        input: "state1g.pt",
        repetitions: 5,
        what: "convert a 1 GiB state-dict package to safetensors, not fsynced",
        baselines: &[
            (Baseline::Cp, Target::Within(1.5)),
            (Baseline::Python("convert_safetensors"), Target::None),
        ],
        memory_target: true,
    },
    Benchmark {
        name: "load_small",
        input: "small10k.pt",
        repetitions: 5,
        what: "load a package of 10,000 small tensors into owned memory",
        baselines: &[(Baseline::Python("load_pickle"), Target::Within(1.0))],
        memory_target: false,
    },
    Benchmark {
        name: "write_small",
        input: "small10k.pt",
        repetitions: 5,
        what: "write a package of 10,000 small tensors",
        baselines: &[(Baseline::Python("save_pickle"), Target::Within(1.0))],
        memory_target: false,
    },
    Benchmark {
        name: "write_package",
        input: "state1g.pt",
        repetitions: 5,
        what: "write 1 GiB of tensors as a package, fsynced (tpkg's default)",
        baselines: &[(Baseline::CpSync, Target::Within(1.3))],
        memory_target: true,
    },
    Benchmark {
        name: "write_package_nosync",
        input: "state1g.pt",
        repetitions: 5,
        what: "write 1 GiB of tensors as a package, not fsynced",
        baselines: &[
            (Baseline::Cp, Target::Within(1.3)),
            (Baseline::Python("save_pickle"), Target::None),
        ],
        memory_target: true,
    },
];

/// `cargo xtask bench [ROW...]`: every row, or the rows named (a name
/// ending in `*` selects the rows it starts), and the scanners section when
/// no row is named or `scanners` is.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    if args.first().map(String::as_str) == Some(bench_readme::COMMAND) {
        return bench_readme::from_reports(&args[1..]);
    }
    // `--readme`: the README's tables are rendered from this run's report.
    let readme = args.iter().any(|arg| arg == "--readme");
    let args: Vec<String> = args.iter().filter(|a| *a != "--readme").cloned().collect();
    let (scanner_options, rows) = scanners::Options::from_args(&args)?;
    let rows = &rows[..];
    let section = rows.is_empty() || rows.iter().any(|name| scanners::selected_by(name));
    let python_section = rows.is_empty() || rows.iter().any(|name| name == PYTHON_ROW);
    let cli_section = rows.is_empty() || rows.iter().any(|name| name == bench_cli::ROW);
    // The names that select benchmark rows (`scanners` selects none).
    let row_names: Vec<String> = rows
        .iter()
        .filter(|name| {
            (!scanners::selected_by(name) && ![PYTHON_ROW, bench_cli::ROW].contains(&name.as_str()))
                || BENCHMARKS.iter().any(|bench| row_matches(name, bench))
        })
        .cloned()
        .collect();
    let selected = if !rows.is_empty() && row_names.is_empty() {
        Vec::new()
    } else {
        select(&row_names)?
    };
    let oracle = setup::run()?;
    let root = util::root();
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    if !selected.is_empty() {
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
    }
    let tpkg_bench = util::target_dir().join("release/tpkg-bench");
    let mut results = Vec::new();
    let mut floors = Vec::new();
    for bench in selected {
        let input = out.join(bench.input);
        let input_text = path_str(&input)?;
        let reps = bench.repetitions.to_string();
        // Warm the page cache before each side, so every side reads the
        // input from memory.
        warm(&input)?;
        let ours = measure(Command::new(&tpkg_bench).args([bench.name, input_text, &reps]))
            .with_context(|| format!("tpkg side of {}", bench.name))?;
        let mut sides = vec![("tpkg".to_owned(), ours.clone())];
        for &(baseline, target) in bench.baselines {
            warm(&input)?;
            let theirs = run_baseline(baseline, bench, &input, &oracle.python, &out)?;
            let label = theirs["baseline"].as_str().unwrap_or_default().to_owned();
            sides.push((label, theirs.clone()));
            results.push(row_json(bench, &ours, &theirs, target));
        }
        if let Some(floor) = floor(bench, &sides) {
            floors.push(floor);
        }
    }
    let scanners = if section {
        Some(scanners::bench(&scanner_options, &oracle.python, &out)?)
    } else {
        None
    };
    let python = if python_section {
        Some(python_bench(&oracle, &out)?)
    } else {
        None
    };
    let cli = if cli_section {
        Some(bench_cli::bench(&oracle.python, &out)?)
    } else {
        None
    };
    let report = json!({
        "benchmarks": results,
        "cli": cli.as_ref().map(|(json, _)| json),
        "python": python.as_ref().map(|(json, _)| json),
        "floors": floors,
        "scanners": scanners.as_ref().map(|section| &section.json),
        "rows": if rows.is_empty() { json!("all") } else { json!(rows) },
        "note": "medians of warm runs (inputs in the page cache, read once before each side; every write starts after the previous output is removed and the disk synced); ratio = tpkg / baseline (below 1 is faster); working memory = peak RSS during the operation minus what was resident before and minus the bytes it returns; floors: every side of a row with a cat baseline over that cat's median",
    });
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    if readme {
        util::step("README.md speed tables from this run", || {
            bench_readme::update(&root.join("README.md"), &report)
        })?;
    }
    let mut table = if results.is_empty() {
        String::new()
    } else {
        format!("{}\n{}", markdown(&results), markdown_floors(&floors))
    };
    if let Some(section) = &scanners {
        table.push_str(&section.markdown);
    }
    if let Some((_, markdown)) = &cli {
        table.push_str("\n## The tpkg command\n\n");
        table.push_str(markdown);
    }
    if let Some((_, markdown)) = &python {
        table.push_str("\n## The Python package\n\n");
        table.push_str(markdown);
    }
    std::fs::write(out.join("report.md"), &table)?;
    println!("{table}");
    if results.is_empty() {
        return Ok(());
    }
    util::step("chart target/bench/report.png", || {
        util::run(
            Command::new(&tpkg_bench)
                .arg("chart")
                .arg(out.join("report.json"))
                .arg(out.join("report.png")),
        )
    })?;
    Ok(())
}

/// One baseline's side of a row: its times (and `not_applicable` when
/// PyTorch refuses the input).
fn run_baseline(
    baseline: Baseline,
    bench: &Benchmark,
    input: &Path,
    python: &Path,
    out: &Path,
) -> anyhow::Result<Value> {
    let root = util::root();
    let input_text = path_str(input)?;
    let reps = bench.repetitions.to_string();
    Ok(match baseline {
        Baseline::Python(mode) => measure(
            Command::new(python)
                .arg(root.join("bench/baseline.py"))
                .args([mode, input_text, &reps]),
        )
        .with_context(|| format!("baseline {mode} of {}", bench.name))?,
        Baseline::Cat => time_command("cat (page cache to /dev/null)", bench.repetitions, || {
            let start = std::time::Instant::now();
            let status = Command::new("cat")
                .arg(input)
                .stdout(std::process::Stdio::null())
                .status()?;
            Ok((start.elapsed(), status))
        })?,
        Baseline::Cp | Baseline::CpSync => {
            let copy = out.join("cp-out.pt");
            let durable = matches!(baseline, Baseline::CpSync);
            let name = if durable { "cp + sync FILE" } else { "cp" };
            let timed = time_command(name, bench.repetitions, || {
                // Like tpkg's side: start each copy from a quiet disk.
                settle_disk(&copy)?;
                let start = std::time::Instant::now();
                let status = Command::new("cp").arg(input).arg(&copy).status()?;
                if !status.success() || !durable {
                    return Ok((start.elapsed(), status));
                }
                let status = Command::new("sync").arg(&copy).status()?;
                Ok((start.elapsed(), status))
            })?;
            let _ = std::fs::remove_file(&copy);
            timed
        }
    })
}

/// `report.json`'s row of one benchmark against one baseline.
fn row_json(bench: &Benchmark, ours: &Value, theirs: &Value, target: Target) -> Value {
    let tpkg_median = median(&ours["seconds"]);
    // A baseline PyTorch refuses (torch.load(mmap=True) of a legacy
    // file) has no time: its row says why.
    let not_applicable = theirs.get("not_applicable").cloned();
    let baseline_median = match not_applicable {
        Some(_) => None,
        None => Some(median(&theirs["seconds"])),
    };
    let ratio = baseline_median.map(|theirs| tpkg_median / theirs);
    let (target_text, target_met) = match (target, ratio) {
        (Target::None, _) | (_, None) => (Value::Null, Value::Null),
        (Target::Within(limit), Some(ratio)) => {
            (json!(format!("≤ {limit}x")), json!(ratio <= limit))
        }
        (Target::Under(limit), Some(_)) => {
            (json!(format!("< {limit} s")), json!(tpkg_median < limit))
        }
    };
    let memory_met = match (
        bench.memory_target,
        ours["working_bytes"].as_u64(),
        ours["largest_storage_bytes"].as_u64(),
    ) {
        (true, Some(working), Some(largest)) => {
            json!(working <= WORKING_MEMORY_LIMIT * largest)
        }
        _ => Value::Null,
    };
    json!({
        "name": bench.name,
        "what": bench.what,
        "tpkg_seconds": tpkg_median,
        "tpkg_spread": spread(&ours["seconds"]),
        "tpkg_runs": ours["seconds"],
        "baseline": theirs["baseline"],
        "baseline_seconds": baseline_median,
        "baseline_spread": spread(&theirs["seconds"]),
        "baseline_runs": theirs["seconds"],
        "not_applicable": not_applicable,
        "ratio": ratio,
        "target": target_text,
        "target_met": target_met,
        "tpkg_peak_rss_bytes": ours["peak_rss_bytes"],
        "tpkg_working_bytes": ours["working_bytes"],
        "largest_storage_bytes": ours["largest_storage_bytes"],
        "memory_target_met": memory_met,
        "baseline_peak_rss_bytes": theirs["peak_rss_bytes"],
        "repetitions": bench.repetitions,
    })
}

/// The rows `names` selects (all when empty); an unknown name is an error
/// listing the rows.
fn select(names: &[String]) -> anyhow::Result<Vec<&'static Benchmark>> {
    if names.is_empty() {
        return Ok(BENCHMARKS.iter().collect());
    }
    let all = || {
        BENCHMARKS
            .iter()
            .map(|bench| bench.name)
            .chain([scanners::ROW])
            .collect::<Vec<_>>()
            .join(", ")
    };
    for name in names {
        anyhow::ensure!(
            BENCHMARKS.iter().any(|bench| row_matches(name, bench)),
            "no benchmark row {name:?}; the rows: {}",
            all()
        );
    }
    Ok(BENCHMARKS
        .iter()
        .filter(|bench| names.iter().any(|name| row_matches(name, bench)))
        .collect())
}

/// Whether a row name (a name ending in `*`: a prefix) selects `bench`.
fn row_matches(name: &str, bench: &Benchmark) -> bool {
    match name.strip_suffix('*') {
        Some(prefix) => bench.name.starts_with(prefix),
        None => bench.name == name,
    }
}

/// Reads `input` once (untimed), so it is in the page cache.
pub(crate) fn warm(input: &Path) -> anyhow::Result<()> {
    util::run(
        Command::new("cat")
            .arg(input)
            .stdout(std::process::Stdio::null()),
    )
}

/// For a row with a `cat` baseline: each side's median over cat's (the
/// floor of anything that reads the file), so the baselines are measured
/// against the floor too, not only against tpkg.
fn floor(bench: &Benchmark, sides: &[(String, Value)]) -> Option<Value> {
    let (_, cat) = sides.iter().find(|(label, _)| label.starts_with("cat "))?;
    let cat_median = median(&cat["seconds"]);
    let contenders: Vec<Value> = sides
        .iter()
        .map(|(label, side)| {
            let seconds = side
                .get("not_applicable")
                .is_none()
                .then(|| median(&side["seconds"]));
            json!({
                "contender": label,
                "seconds": seconds,
                "spread": spread(&side["seconds"]),
                // The first run of a process is its first touch of the
                // memory it loads into (the median is of warm reruns).
                "first_seconds": side["seconds"].get(0),
                "ratio_to_cat": seconds.map(|s| s / cat_median),
                "peak_rss_bytes": side["peak_rss_bytes"],
                "not_applicable": side.get("not_applicable"),
            })
        })
        .collect();
    Some(json!({
        "name": bench.name,
        "input": bench.input,
        "cat_seconds": cat_median,
        "contenders": contenders,
    }))
}

/// Runs a command-line baseline `repetitions` times; `run` times its own
/// part (no RSS: it is another process).
pub(crate) fn time_command(
    name: &str,
    repetitions: usize,
    mut run: impl FnMut() -> std::io::Result<(std::time::Duration, std::process::ExitStatus)>,
) -> anyhow::Result<Value> {
    let mut seconds = Vec::with_capacity(repetitions);
    for _ in 0..repetitions {
        let (elapsed, status) = run()?;
        anyhow::ensure!(status.success(), "{name} failed: {status}");
        seconds.push(elapsed.as_secs_f64());
    }
    Ok(json!({ "baseline": name, "seconds": seconds, "peak_rss_bytes": 0 }))
}

/// Removes `out` and waits for every dirty page to reach the disk
/// (untimed), as `tpkg-bench` does before each write.
pub(crate) fn settle_disk(out: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(out) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    Command::new("sync").status().map(drop)
}

pub(crate) fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().context("non-UTF-8 path")
}

pub(crate) fn measure(command: &mut Command) -> anyhow::Result<Value> {
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

pub(crate) fn median(seconds: &Value) -> f64 {
    let values = sorted(seconds);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// (min, max) of the repetitions.
pub(crate) fn spread(seconds: &Value) -> Value {
    let values = sorted(seconds);
    json!([values.first(), values.last()])
}

fn markdown(results: &[Value]) -> String {
    let mut table = String::from(
        "| benchmark | tpkg s (median, min–max) | baseline | baseline s (median, min–max) | ratio | target | tpkg peak RSS MB | tpkg working MB (largest tensor MB) | baseline peak RSS MB |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mb = |v: &Value| v.as_f64().unwrap_or(0.0) / 1_048_576.0;
    let verdict = |met: &Value| match met.as_bool() {
        Some(true) => " met",
        Some(false) => " **missed**",
        None => "",
    };
    for r in results {
        let target = match r["target"].as_str() {
            Some(target) => format!("{target}{}", verdict(&r["target_met"])),
            None => "-".to_owned(),
        };
        let working = if r["tpkg_working_bytes"].is_null() {
            "-".to_owned()
        } else {
            let largest = r["largest_storage_bytes"].as_u64().unwrap_or(0);
            let largest = if largest >= 1 << 20 {
                format!("{:.0}", largest as f64 / 1_048_576.0)
            } else {
                format!("{:.4}", largest as f64 / 1_048_576.0)
            };
            format!(
                "{:.0} ({largest}){}",
                mb(&r["tpkg_working_bytes"]),
                verdict(&r["memory_target_met"]),
            )
        };
        let (baseline_seconds, ratio) = if r["not_applicable"].is_null() {
            (
                seconds_cell(&r["baseline_seconds"], &r["baseline_spread"]),
                format!("{:.2}x", r["ratio"].as_f64().unwrap_or(f64::NAN)),
            )
        } else {
            (
                "n/a (PyTorch refuses it; see report.json)".to_owned(),
                "-".to_owned(),
            )
        };
        table.push_str(&format!(
            "| {} ({}) | {} | {} | {} | {} | {} | {:.0} | {} | {:.0} |\n",
            r["name"].as_str().unwrap_or_default(),
            r["what"].as_str().unwrap_or_default(),
            seconds_cell(&r["tpkg_seconds"], &r["tpkg_spread"]),
            r["baseline"].as_str().unwrap_or_default(),
            baseline_seconds,
            ratio,
            target,
            mb(&r["tpkg_peak_rss_bytes"]),
            working,
            mb(&r["baseline_peak_rss_bytes"]),
        ));
    }
    table
}

/// The floors as a table: every side of a row with a `cat` baseline, its
/// median over cat's.
fn markdown_floors(floors: &[Value]) -> String {
    if floors.is_empty() {
        return String::new();
    }
    let mut table = String::from(
        "Against the floor (each side's median over the median of `cat FILE > /dev/null` in the same row; first run: the first repetition in its process):\n\n| benchmark | side | s (median, min–max) | first run s | × cat | peak RSS MB |\n|---|---|---|---|---|---|\n",
    );
    for floor in floors {
        for side in floor["contenders"].as_array().into_iter().flatten() {
            let first = match side["first_seconds"].as_f64() {
                Some(first) => format!("{first:.3}"),
                None => "-".to_owned(),
            };
            let (seconds, ratio) = match side["seconds"].as_f64() {
                Some(median) => (
                    format!(
                        "{median:.3} ({:.3}–{:.3})",
                        side["spread"][0].as_f64().unwrap_or(f64::NAN),
                        side["spread"][1].as_f64().unwrap_or(f64::NAN)
                    ),
                    format!("{:.2}x", side["ratio_to_cat"].as_f64().unwrap_or(f64::NAN)),
                ),
                None => ("n/a (PyTorch refuses it)".to_owned(), "-".to_owned()),
            };
            let rss = match side["peak_rss_bytes"].as_f64() {
                Some(bytes) if bytes > 0.0 => format!("{:.0}", bytes / 1_048_576.0),
                _ => "-".to_owned(),
            };
            table.push_str(&format!(
                "| {} | {} | {seconds} | {first} | {ratio} | {rss} |\n",
                floor["name"].as_str().unwrap_or_default(),
                side["contender"].as_str().unwrap_or_default(),
            ));
        }
    }
    table
}

/// The row that selects the Python package's section.
const PYTHON_ROW: &str = "python";

/// The Python package beside PyTorch (`crates/python/bench/bench_load.py`):
/// `tpkg.load` owned and mapped against `PackageImporter.load_pickle`,
/// `torch.load` and `torch.load(mmap=True)` on the 1 GiB inputs, and
/// `tpkg.PackageExporter` against PyTorch's packing networkx. Returns its
/// JSON and Markdown.
fn python_bench(oracle: &setup::Oracle, out: &Path) -> anyhow::Result<(serde_json::Value, String)> {
    let root = util::root();
    if !out.join("state1g.pt").is_file() || !out.join("state1g_torchsave.pt").is_file() {
        util::step("make-big-inputs with the venv's Python", || {
            util::run(
                Command::new(&oracle.python)
                    .arg(root.join("bench/baseline.py"))
                    .arg("make-big-inputs")
                    .arg(out),
            )
        })?;
    }
    let python_path = util::step("pip install ./crates/python", || {
        crate::python::install(oracle)
    })?;
    let markdown = util::step("the Python package beside PyTorch", || {
        util::output(
            Command::new(&oracle.python)
                .arg(root.join("crates/python/bench/bench_load.py"))
                .arg("--inputs")
                .arg(out)
                .env("PYTHONPATH", &python_path),
        )
    })?;
    let json_path = out.join("python-report.json");
    let text = std::fs::read_to_string(&json_path)
        .with_context(|| format!("reading {}", json_path.display()))?;
    Ok((serde_json::from_str(&text)?, markdown))
}

/// A median with its spread, as the report's tables show times:
/// `0.300 (0.290–0.310)`.
pub(crate) fn seconds_cell(median: &Value, spread: &Value) -> String {
    let at = |i: usize| spread[i].as_f64().unwrap_or(f64::NAN);
    format!(
        "{:.3} ({:.3}–{:.3})",
        median.as_f64().unwrap_or(f64::NAN),
        at(0),
        at(1)
    )
}
