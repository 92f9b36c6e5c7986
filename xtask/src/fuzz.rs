//! `cargo xtask fuzz [SECONDS] [TARGET...]`: runs the cargo-fuzz targets in
//! `fuzz/`. The toolchain here is stable, so `RUSTC_BOOTSTRAP=1` lets
//! cargo-fuzz pass the sanitizer flags it needs.

use std::process::Command;

use anyhow::Context;

use crate::util;

const TARGETS: &[&str] = &[
    "archive_reader",
    "glob_pattern",
    "pickle_decoder",
    "import_scanner",
];

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (seconds, targets): (u64, Vec<&str>) = match args.split_first() {
        Some((first, rest)) if first.parse::<u64>().is_ok() => (
            first.parse().context("seconds")?,
            rest.iter().map(String::as_str).collect(),
        ),
        _ => (60, args.iter().map(String::as_str).collect()),
    };
    let targets = if targets.is_empty() {
        TARGETS.to_vec()
    } else {
        targets
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let has_cargo_fuzz = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !has_cargo_fuzz {
        util::step("cargo install cargo-fuzz", || {
            util::cargo(&["install", "--locked", "cargo-fuzz"])
        })?;
    }
    let fuzz_dir = util::root().join("fuzz");
    for target in targets {
        let seeds = fuzz_dir.join("seeds").join(target);
        util::step(&format!("fuzz {target} for {seconds}s"), || {
            util::run(
                Command::new(&cargo)
                    .current_dir(&fuzz_dir)
                    .env("RUSTC_BOOTSTRAP", "1")
                    .args(["fuzz", "run", target, "--"])
                    .arg(format!("-max_total_time={seconds}"))
                    .arg(format!("corpus/{target}"))
                    .arg(&seeds),
            )
        })?;
    }
    Ok(())
}
