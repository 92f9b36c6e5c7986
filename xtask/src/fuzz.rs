//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs the cargo-fuzz targets
//! in `fuzz/` (all of them by default, 60 s each). The toolchain here is stable, so `RUSTC_BOOTSTRAP=1` lets
//! cargo-fuzz pass the sanitizer flags it needs.

use std::process::Command;

use anyhow::Context;

use crate::util;

const TARGETS: &[&str] = &[
    "archive_reader",
    "glob_pattern",
    "pickle_decoder",
    "import_scanner",
    "package_load",
    "stream_formats",
];

pub fn run(args: &[String]) -> anyhow::Result<()> {
    // `--seconds N` (or a bare number first, the older form), then targets.
    let mut seconds = 60u64;
    let mut targets: Vec<&str> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == "--seconds" {
            let value = rest.next().context("--seconds needs a number")?;
            seconds = value
                .parse()
                .with_context(|| format!("--seconds {value}"))?;
        } else if let Some(value) = arg.strip_prefix("--seconds=") {
            seconds = value
                .parse()
                .with_context(|| format!("--seconds={value}"))?;
        } else if targets.is_empty() && arg.parse::<u64>().is_ok() {
            seconds = arg.parse().context("seconds")?;
        } else {
            targets.push(arg);
        }
    }
    let targets = if targets.is_empty() {
        TARGETS.to_vec()
    } else {
        targets
    };
    // `zipdiff` is the container differential against PyTorch (not a
    // cargo-fuzz target): run it with its defaults when named.
    let (differential, targets): (Vec<&str>, Vec<&str>) =
        targets.into_iter().partition(|target| *target == "zipdiff");
    if !differential.is_empty() {
        crate::zipdiff::run(&[])?;
    }
    if targets.is_empty() {
        return Ok(());
    }
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
