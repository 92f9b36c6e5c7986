//! `cargo xtask bench cli`: the `tpkg` command timed as a user runs it.
//!
//! The release `tpkg` binary (`cargo build --release -p tpkg-cli`, no tch)
//! runs as a process on the 1 GiB package `target/bench/state1g.pt` and on
//! its `torch.save` twins `state1g_torchsave.pt` (zip) and
//! `state1g_torchsave_legacy.pt` (legacy), beside like-for-like
//! baselines in the same run: `cat FILE > /dev/null` for commands that only
//! read; `cp`, or `cp` and an fsync of the copy, for commands that write
//! (matching tpkg's mode, `--no-fsync` or not); and PyTorch's equivalent
//! where there is one (`bench/baseline.py cli-*`, timed inside its process
//! after `import torch`, so interpreter start-up is not counted against
//! PyTorch). Each side runs [`REPETITIONS`] times from a warm page cache,
//! every write from a settled disk; the report gives medians with min/max,
//! ratios, the targets of issue 21 (within 1.2x of `cp`/`cat`, at least
//! 1.5x faster than PyTorch where PyTorch touches every byte) and the peak
//! RSS of the `tpkg` process (`/usr/bin/time -f %M`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};

use crate::bench::{
    measure, median, path_str, seconds_cell, settle_disk, spread, time_command, warm,
};
use crate::util;

/// The name that selects this section.
pub const ROW: &str = "cli";

/// Runs of each side of a row.
const REPETITIONS: usize = 5;

/// The package's pickle (a torch.save file's main one is read by default).
const PACKAGE_PICKLE: &str = "model/state_dict.pkl";

/// What a command does with files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Reads only: compared with `cat`.
    Read,
    /// Writes, fsynced (tpkg's default): compared with `cp` + fsync.
    Fsync,
    /// Writes with `--no-fsync`: compared with `cp`.
    NoFsync,
}

/// One row: a `tpkg` command line on one input.
struct CliRow {
    name: &'static str,
    /// The command and its options; the input, the pickle (for `convert`
    /// and `tensors`) and the output are added.
    command: &'static [&'static str],
    input: &'static str,
    mode: Mode,
    /// `bench/baseline.py`'s mode for PyTorch's equivalent (`-fsync` is
    /// appended in [`Mode::Fsync`]), if there is one.
    python: Option<&'static str>,
    /// Whether PyTorch's equivalent touches every byte (the 1.5x target).
    python_target: bool,
}

const PACKAGE: &str = "state1g.pt";
const TORCH_SAVE: &str = "state1g_torchsave.pt";
const LEGACY: &str = "state1g_torchsave_legacy.pt";

/// Every row: each writing command in both modes, on both inputs where
/// the command takes them.
fn rows() -> Vec<CliRow> {
    let mut rows = Vec::new();
    type Writer = (&'static str, &'static [&'static str], Option<&'static str>);
    let writers: [(&str, Writer); 8] = [
        (
            PACKAGE,
            (
                "convert_safetensors",
                &["convert", "--to", "safetensors"],
                Some("cli-convert-safetensors"),
            ),
        ),
        (
            PACKAGE,
            (
                "convert_pt",
                &["convert", "--to", "pt"],
                Some("cli-convert-pt"),
            ),
        ),
        (
            TORCH_SAVE,
            (
                "torchsave_convert_safetensors",
                &["convert", "--to", "safetensors"],
                Some("cli-convert-safetensors"),
            ),
        ),
        (
            TORCH_SAVE,
            (
                "torchsave_convert_pt",
                &["convert", "--to", "pt"],
                Some("cli-convert-pt"),
            ),
        ),
        (
            LEGACY,
            (
                "legacy_convert_safetensors",
                &["convert", "--to", "safetensors"],
                Some("cli-convert-safetensors"),
            ),
        ),
        (PACKAGE, ("extract", &["extract"], None)),
        (TORCH_SAVE, ("torchsave_extract", &["extract"], None)),
        (PACKAGE, ("repack", &["repack"], Some("cli-repack"))),
    ];
    for (input, (name, command, python)) in writers {
        for mode in [Mode::Fsync, Mode::NoFsync] {
            rows.push(CliRow {
                name,
                command,
                input,
                mode,
                python,
                python_target: python.is_some(),
            });
        }
    }
    type Reader = (&'static str, &'static [&'static str], Option<&'static str>);
    let readers: [Reader; 3] = [
        ("verify", &["verify"], None),
        ("audit", &["audit"], None),
        ("tensors", &["tensors"], Some("cli-tensors")),
    ];
    for input in [PACKAGE, TORCH_SAVE, LEGACY] {
        for (name, command, python) in readers {
            rows.push(CliRow {
                name: match (input, name) {
                    (PACKAGE, _) => name,
                    (TORCH_SAVE, "verify") => "torchsave_verify",
                    (TORCH_SAVE, "audit") => "torchsave_audit",
                    (TORCH_SAVE, _) => "torchsave_tensors",
                    (_, "verify") => "legacy_verify",
                    (_, "audit") => "legacy_audit",
                    _ => "legacy_tensors",
                },
                command,
                input,
                mode: Mode::Read,
                python,
                python_target: python.is_some(),
            });
        }
    }
    rows
}

impl CliRow {
    /// The row's name with its mode (`convert_pt (--no-fsync)`).
    fn label(&self) -> String {
        match self.mode {
            Mode::Read => self.name.to_owned(),
            Mode::Fsync => format!("{} (fsync)", self.name),
            Mode::NoFsync => format!("{} (--no-fsync)", self.name),
        }
    }

    /// The full `tpkg` argument list writing to `out`.
    fn args(&self, input: &Path, out: &Path) -> anyhow::Result<Vec<String>> {
        let mut args: Vec<String> = self.command.iter().map(|s| (*s).to_owned()).collect();
        args.push(path_str(input)?.to_owned());
        let takes_pickle = matches!(self.command[0], "convert" | "tensors");
        if takes_pickle && self.input == PACKAGE {
            args.push(PACKAGE_PICKLE.to_owned());
        }
        if self.mode != Mode::Read {
            args.push(path_str(out)?.to_owned());
        }
        if self.mode == Mode::NoFsync {
            args.push("--no-fsync".to_owned());
        }
        Ok(args)
    }
}

/// Times the `tpkg` process `REPETITIONS` times: wall seconds of each run
/// and the largest peak RSS, from `/usr/bin/time`.
fn time_tpkg(tpkg: &Path, args: &[String], out: &Path, scratch: &Path) -> anyhow::Result<Value> {
    let rss_file = scratch.join("cli-rss.txt");
    let mut seconds = Vec::with_capacity(REPETITIONS);
    let mut peak_kib = 0u64;
    for _ in 0..REPETITIONS {
        clear_output(out)?;
        let start = Instant::now();
        let output = Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o"])
            .arg(&rss_file)
            .arg(tpkg)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .context("running tpkg under /usr/bin/time")?;
        let elapsed = start.elapsed().as_secs_f64();
        anyhow::ensure!(
            output.status.success(),
            "tpkg {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        seconds.push(elapsed);
        let text = std::fs::read_to_string(&rss_file)?;
        let kib = text
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .parse::<u64>();
        peak_kib = peak_kib.max(kib.with_context(|| format!("/usr/bin/time printed {text:?}"))?);
    }
    clear_output(out)?;
    Ok(json!({ "baseline": "tpkg", "seconds": seconds, "peak_rss_bytes": peak_kib * 1024 }))
}

/// Removes a previous output (file or extracted folder) and lets the disk
/// settle, untimed.
fn clear_output(out: &Path) -> anyhow::Result<()> {
    if out.is_dir() {
        std::fs::remove_dir_all(out)?;
        std::fs::create_dir_all(out)?;
        return util::run(&mut Command::new("sync"));
    }
    settle_disk(out).map_err(anyhow::Error::from)
}

/// `cp INPUT COPY`, with an fsync of the copy when `fsync`
/// (`dd conv=fsync` would copy differently; `sync FILE` is fsync(2)).
fn time_cp(input: &Path, copy: &Path, fsync: bool) -> anyhow::Result<Value> {
    let name = if fsync {
        "cp + fsync of the copy"
    } else {
        "cp"
    };
    let timed = time_command(name, REPETITIONS, || {
        settle_disk(copy)?;
        let start = Instant::now();
        let status = Command::new("cp").arg(input).arg(copy).status()?;
        if !status.success() || !fsync {
            return Ok((start.elapsed(), status));
        }
        let status = Command::new("sync").arg(copy).status()?;
        Ok((start.elapsed(), status))
    })?;
    let _ = std::fs::remove_file(copy);
    Ok(timed)
}

/// `cat INPUT > /dev/null`.
fn time_cat(input: &Path) -> anyhow::Result<Value> {
    time_command("cat FILE > /dev/null", REPETITIONS, || {
        let start = Instant::now();
        let status = Command::new("cat")
            .arg(input)
            .stdout(Stdio::null())
            .status()?;
        Ok((start.elapsed(), status))
    })
}

/// A ratio tpkg / baseline must not exceed, and how the report says it.
type Target = (f64, &'static str);

/// Within 1.2x of `cp` or `cat`.
const FLOOR_TARGET: Target = (1.2, "≤ 1.2x");

/// At least 1.5x faster than PyTorch.
const PYTORCH_TARGET: Target = (1.0 / 1.5, "≥ 1.5x faster");

/// One comparison of a row: tpkg against one baseline.
fn comparison(row: &CliRow, ours: &Value, theirs: &Value, target: Option<Target>) -> Value {
    let tpkg_median = median(&ours["seconds"]);
    let baseline_median = median(&theirs["seconds"]);
    let ratio = tpkg_median / baseline_median;
    json!({
        "name": row.name,
        "label": row.label(),
        "input": row.input,
        "command": row.command.join(" "),
        "mode": format!("{:?}", row.mode).to_lowercase(),
        "tpkg_seconds": tpkg_median,
        "tpkg_spread": spread(&ours["seconds"]),
        "tpkg_runs": ours["seconds"],
        "tpkg_peak_rss_bytes": ours["peak_rss_bytes"],
        "baseline": theirs["baseline"],
        "baseline_seconds": baseline_median,
        "baseline_spread": spread(&theirs["seconds"]),
        "baseline_runs": theirs["seconds"],
        "baseline_peak_rss_bytes": theirs["peak_rss_bytes"],
        "ratio": ratio,
        "target": target.map(|(_, text)| text),
        "target_met": target.map(|(limit, _)| ratio <= limit),
        "repetitions": REPETITIONS,
    })
}

/// The section: every row, its JSON and its Markdown table.
pub fn bench(python: &Path, out: &Path) -> anyhow::Result<(Value, String)> {
    let root = util::root();
    util::step("build tpkg (release, no tch)", || {
        util::cargo(&["build", "--quiet", "--release", "--package", "tpkg-cli"])
    })?;
    if [PACKAGE, TORCH_SAVE, LEGACY]
        .iter()
        .any(|input| !out.join(input).is_file())
    {
        util::step("make-big-inputs with the venv's Python", || {
            util::run(
                Command::new(python)
                    .arg(root.join("bench/baseline.py"))
                    .arg("make-big-inputs")
                    .arg(out),
            )
        })?;
    }
    let tpkg = util::target_dir().join("release/tpkg");
    let scratch = out.join("cli");
    std::fs::create_dir_all(&scratch)?;
    let mut results = Vec::new();
    for row in rows() {
        let input = out.join(row.input);
        let output = scratch.join(match row.command[0] {
            "extract" => "extracted",
            "convert" if row.command.contains(&"safetensors") => "out.safetensors",
            _ => "out.pt",
        });
        if row.command[0] == "extract" {
            std::fs::create_dir_all(&output)?;
        }
        let args = row.args(&input, &output)?;
        let ours = util::step(&format!("tpkg {}", row.label()), || {
            warm(&input)?;
            time_tpkg(&tpkg, &args, &output, &scratch)
        })?;
        warm(&input)?;
        let floor = match row.mode {
            Mode::Read => time_cat(&input)?,
            Mode::Fsync => time_cp(&input, &scratch.join("cp-out"), true)?,
            Mode::NoFsync => time_cp(&input, &scratch.join("cp-out"), false)?,
        };
        results.push(comparison(&row, &ours, &floor, Some(FLOOR_TARGET)));
        eprint!("{}", markdown_row(&results[results.len() - 1]));
        if let Some(mode) = row.python {
            let mode = match row.mode {
                Mode::Fsync => format!("{mode}-fsync"),
                _ => mode.to_owned(),
            };
            warm(&input)?;
            let theirs = util::step(&format!("PyTorch {mode}"), || {
                measure(
                    Command::new(python)
                        .arg(root.join("bench/baseline.py"))
                        .args([mode.as_str(), path_str(&input)?, &REPETITIONS.to_string()]),
                )
            })?;
            let target = row.python_target.then_some(PYTORCH_TARGET);
            results.push(comparison(&row, &ours, &theirs, target));
            eprint!("{}", markdown_row(&results[results.len() - 1]));
        }
        if row.command[0] == "extract" {
            let _ = std::fs::remove_dir_all(&output);
        }
    }
    let markdown = markdown(&results);
    Ok((Value::Array(results), markdown))
}

fn markdown(results: &[Value]) -> String {
    let mut table = String::from(
        "| command (input) | tpkg s (median, min–max) | baseline | baseline s (median, min–max) | ratio | target | tpkg peak RSS MB | baseline peak RSS MB |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        table.push_str(&markdown_row(r));
    }
    table
}

/// One comparison as a line of [`markdown`]'s table.
fn markdown_row(r: &Value) -> String {
    let mb = |v: &Value| match v.as_f64() {
        Some(bytes) if bytes > 0.0 => format!("{:.0}", bytes / 1_048_576.0),
        _ => "-".to_owned(),
    };
    let target = match (r["target"].as_str(), r["target_met"].as_bool()) {
        (Some(target), Some(true)) => format!("{target} met"),
        (Some(target), _) => format!("{target} **missed**"),
        (None, _) => "-".to_owned(),
    };
    format!(
        "| {} ({}) | {} | {} | {} | {:.2}x | {} | {} | {} |\n",
        r["label"].as_str().unwrap_or_default(),
        r["input"].as_str().unwrap_or_default(),
        seconds_cell(&r["tpkg_seconds"], &r["tpkg_spread"]),
        r["baseline"].as_str().unwrap_or_default(),
        seconds_cell(&r["baseline_seconds"], &r["baseline_spread"]),
        r["ratio"].as_f64().unwrap_or(f64::NAN),
        target,
        mb(&r["tpkg_peak_rss_bytes"]),
        mb(&r["baseline_peak_rss_bytes"]),
    )
}
