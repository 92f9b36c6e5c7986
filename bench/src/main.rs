//! `tpkg-bench BENCHMARK INPUT REPETITIONS`: runs one tpkg operation on
//! `INPUT` several times and prints `{"seconds": [...], "peak_rss_bytes": n}`.
//! `cargo xtask bench` runs it beside the PyTorch/CPython baseline of the
//! same operation (`bench/baseline.py`) and writes the report.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [benchmark, input, repetitions] = args.as_slice() else {
        bail!("usage: tpkg-bench BENCHMARK INPUT REPETITIONS");
    };
    let repetitions: usize = repetitions.parse().context("REPETITIONS")?;
    let input = Path::new(input);
    let mut seconds = Vec::with_capacity(repetitions);
    match benchmark.as_str() {
        // Decode a pickle held in memory (as CPython's pickle.loads does).
        "pickle_decode" => {
            let data = std::fs::read(input)?;
            for _ in 0..repetitions {
                let start = Instant::now();
                let graph = tpkg::pickle::decode(black_box(&data))?;
                seconds.push(start.elapsed().as_secs_f64());
                black_box(graph);
            }
        }
        // Match module names against exporter-style patterns.
        "glob_match" => {
            let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(input)?)?;
            let strings = |key: &str| -> Vec<String> {
                spec[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            };
            let (patterns, names) = (strings("patterns"), strings("names"));
            let group = tpkg::glob::GlobGroup::new(
                tpkg::glob::Patterns::List(patterns),
                tpkg::glob::Patterns::none(),
                tpkg::glob::Separator::Dot,
            )?;
            for _ in 0..repetitions {
                let start = Instant::now();
                let matched = names.iter().filter(|n| group.matches(black_box(n))).count();
                seconds.push(start.elapsed().as_secs_f64());
                black_box(matched);
            }
        }
        other => bail!("unknown benchmark {other:?}"),
    }
    let report = serde_json::json!({ "seconds": seconds, "peak_rss_bytes": peak_rss_bytes() });
    println!("{report}");
    Ok(())
}

/// Peak resident memory of this process (Linux `VmHWM`), or 0 if unknown.
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
