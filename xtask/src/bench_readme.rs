//! `cargo xtask bench --readme`: the README's speed tables, rendered from
//! the run's `target/bench/report.json`.
//!
//! Each table sits in README.md between `<!-- bench:NAME -->` and
//! `<!-- /bench:NAME -->` (NAME: `cli`, `library`, `python`); a table is
//! replaced only when the run measured its section, so a run of one
//! section leaves the others as the last run that measured them wrote
//! them. Numbers are never typed by hand. `cargo xtask bench readme
//! [REPORT...]` renders saved reports the same way.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// `cargo xtask bench readme [REPORT...]`: the word that selects
/// [`from_reports`] instead of a run.
pub const COMMAND: &str = "readme";

/// Rewrites the README's tables from saved reports (default: the last
/// run's `target/bench/report.json`), in order, so the reports of runs of
/// different sections combine.
pub fn from_reports(reports: &[String]) -> anyhow::Result<()> {
    let root = crate::util::root();
    let defaults = [root.join("target/bench/report.json")];
    let paths: Vec<std::path::PathBuf> = if reports.is_empty() {
        defaults.to_vec()
    } else {
        reports.iter().map(std::path::PathBuf::from).collect()
    };
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let report: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        update(&root.join("README.md"), &report)?;
        println!("README.md tables from {}", path.display());
    }
    Ok(())
}

/// Rewrites the tables of `readme` for the sections `report` holds.
pub fn update(readme: &Path, report: &Value) -> anyhow::Result<()> {
    let mut text = std::fs::read_to_string(readme).context("reading README.md")?;
    let tables = [
        ("cli", report["cli"].as_array().map(|rows| cli_table(rows))),
        (
            "library",
            report["benchmarks"]
                .as_array()
                .filter(|rows| !rows.is_empty())
                .map(|rows| library_table(rows)),
        ),
        (
            "python",
            report["python"]["rows"]
                .as_array()
                .map(|rows| python_table(rows)),
        ),
    ];
    for (name, table) in tables {
        if let Some(table) = table {
            text = splice(&text, name, &table)?;
        }
    }
    std::fs::write(readme, text).context("writing README.md")?;
    Ok(())
}

/// `text` with the block between the markers of `name` replaced by `table`.
fn splice(text: &str, name: &str, table: &str) -> anyhow::Result<String> {
    let open = format!("<!-- bench:{name} -->\n");
    let close = format!("<!-- /bench:{name} -->");
    let start = text
        .find(&open)
        .with_context(|| format!("README.md has no {open:?} marker"))?
        + open.len();
    let end = text[start..]
        .find(&close)
        .with_context(|| format!("README.md has no {close:?} marker"))?
        + start;
    Ok(format!("{}{table}{}", &text[..start], &text[end..]))
}

fn seconds(value: &Value) -> String {
    match value.as_f64() {
        Some(s) if s < 0.01 => format!("{:.1} ms", s * 1000.0),
        Some(s) => format!("{s:.2} s"),
        None => "–".to_owned(),
    }
}

fn megabytes(value: &Value) -> String {
    value
        .as_f64()
        .map(|bytes| format!("{:.0} MB", bytes / 1e6))
        .unwrap_or_else(|| "–".to_owned())
}

fn ratio(value: &Value) -> String {
    value
        .as_f64()
        .map(|r| format!("{r:.2}x"))
        .unwrap_or_else(|| "–".to_owned())
}

/// What the CLI section's inputs are, for a reader.
fn input_name(input: &str) -> &str {
    match input {
        "state1g.pt" => "package",
        "state1g_torchsave.pt" => "torch.save (zip)",
        "state1g_torchsave_legacy.pt" => "torch.save (legacy)",
        other => other,
    }
}

/// One line per command and mode: tpkg, the `cp`/`cat` floor, PyTorch.
fn cli_table(rows: &[Value]) -> String {
    let mut table = String::from(
        "| `tpkg` command (1 GiB input) | tpkg | `cp` / `cat` | ratio | PyTorch | ratio | peak RSS tpkg / PyTorch |\n|---|---|---|---|---|---|---|\n",
    );
    let mut labels: Vec<&str> = rows.iter().filter_map(|r| r["label"].as_str()).collect();
    labels.dedup();
    for label in labels {
        let sides: Vec<&Value> = rows.iter().filter(|r| r["label"] == label).collect();
        let Some(first) = sides.first() else { continue };
        let floor = sides
            .iter()
            .find(|r| r["baseline"].as_str().is_some_and(is_floor));
        let pytorch = sides
            .iter()
            .find(|r| r["baseline"].as_str().is_some_and(|b| !is_floor(b)));
        let mode = match first["mode"].as_str() {
            Some("nofsync") => " --no-fsync",
            _ => "",
        };
        let _ = writeln!(
            table,
            "| `{}{mode}` ({}) | {} | {} | {} | {} | {} | {} / {} |",
            first["command"].as_str().unwrap_or(""),
            input_name(first["input"].as_str().unwrap_or("")),
            seconds(&first["tpkg_seconds"]),
            floor.map_or("–".into(), |r| seconds(&r["baseline_seconds"])),
            floor.map_or("–".into(), |r| ratio(&r["ratio"])),
            pytorch.map_or("–".into(), |r| seconds(&r["baseline_seconds"])),
            pytorch.map_or("–".into(), |r| ratio(&r["ratio"])),
            megabytes(&first["tpkg_peak_rss_bytes"]),
            pytorch.map_or("–".into(), |r| megabytes(&r["baseline_peak_rss_bytes"])),
        );
    }
    table.push_str(
        "\nWriting rows are fsynced (tpkg's default) against `cp` + an fsync of the copy, or run with `--no-fsync` against plain `cp`; PyTorch's side does the same job in Python (load, then write or hash) with or without an fsync.\n",
    );
    table
}

/// Whether a CLI baseline is a `cp`/`cat` floor rather than PyTorch.
fn is_floor(baseline: &str) -> bool {
    baseline.starts_with("cp") || baseline.starts_with("cat")
}

/// The library calls (`tpkg-bench`) against their baselines.
fn library_table(rows: &[Value]) -> String {
    let mut table = String::from(
        "| library call | tpkg | baseline | baseline s | ratio |\n|---|---|---|---|---|\n",
    );
    for row in rows {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} |",
            row["what"].as_str().unwrap_or(""),
            seconds(&row["tpkg_seconds"]),
            row["baseline"].as_str().unwrap_or(""),
            seconds(&row["baseline_seconds"]),
            ratio(&row["ratio"]),
        );
    }
    table
}

/// The Python package against PyTorch.
fn python_table(rows: &[Value]) -> String {
    let mut table = String::from(
        "| Python call | `tpkg` | PyTorch | PyTorch s | ratio |\n|---|---|---|---|---|\n",
    );
    for row in rows {
        let Some(baselines) = row["baselines"].as_object() else {
            continue;
        };
        for (name, baseline) in baselines {
            let ours = &row["tpkg"]["median"];
            let theirs = &baseline["median"];
            let ratio_value = ours
                .as_f64()
                .zip(theirs.as_f64())
                .map(|(a, b)| Value::from(a / b));
            let _ = writeln!(
                table,
                "| {} | {} | `{name}` | {} | {} |",
                row["what"].as_str().unwrap_or(""),
                seconds(ours),
                seconds(theirs),
                ratio(&ratio_value.unwrap_or(Value::Null)),
            );
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn splice_replaces_only_the_named_block() {
        let text = "a\n<!-- bench:cli -->\nold\n<!-- /bench:cli -->\nb\n<!-- bench:python -->\nkeep\n<!-- /bench:python -->\n";
        let new = super::splice(text, "cli", "new\n").unwrap();
        assert_eq!(
            new,
            "a\n<!-- bench:cli -->\nnew\n<!-- /bench:cli -->\nb\n<!-- bench:python -->\nkeep\n<!-- /bench:python -->\n"
        );
        assert!(super::splice(text, "library", "x").is_err());
    }

    #[test]
    fn cli_rows_join_floor_and_pytorch_on_one_line() {
        let side = |baseline: &str, seconds: f64, ratio: f64| {
            json!({
                "label": "convert (fsync)", "command": "convert --to safetensors", "mode": "fsync",
                "input": "state1g.pt", "tpkg_seconds": 1.0, "tpkg_peak_rss_bytes": 25e6,
                "baseline": baseline, "baseline_seconds": seconds, "ratio": ratio,
                "baseline_peak_rss_bytes": 2e9,
            })
        };
        let table = super::cli_table(&[
            side("cp + fsync of the copy", 0.9, 1.11),
            side("load_pickle + save_file + fsync", 2.5, 0.4),
        ]);
        let line = table.lines().nth(2).unwrap();
        assert_eq!(
            line,
            "| `convert --to safetensors` (package) | 1.00 s | 0.90 s | 1.11x | 2.50 s | 0.40x | 25 MB / 2000 MB |"
        );
    }
}
