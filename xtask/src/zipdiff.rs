//! `cargo xtask zipdiff`: the container differential at scale. Builds the
//! tpkg side (`tpkg-zipdiff-reader`, release), then runs
//! `tests/oracle/zip_differential.py`: random archives PyTorch writes and
//! seeded mutations of them, read by PyTorch and by tpkg, which must agree
//! on refusing or reading and on every record's name and bytes. Prints a
//! summary table, writes `target/zipdiff/report.json` (and the archives of
//! a few disagreeing cases per class under `target/zipdiff/cases/`), and
//! fails on any disagreement.

use std::process::Command;

use anyhow::{Context, bail};

use crate::{setup, util};

pub const USAGE: &str =
    "cargo xtask zipdiff [--archives N] [--mutations M] [--seed S] [--big] [--workers W]";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut archives = 1000u64;
    let mut mutations = 100_000u64;
    let mut seed: Option<u64> = None;
    let mut workers: Option<u64> = None;
    let mut big = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut number = |name: &str| -> anyhow::Result<u64> {
            let value = match &inline {
                Some(value) => value.clone(),
                None => rest
                    .next()
                    .with_context(|| format!("{name} needs a number"))?
                    .clone(),
            };
            value
                .parse()
                .with_context(|| format!("{name} {value}: not a number"))
        };
        match flag {
            "--archives" => archives = number(flag)?,
            "--mutations" => mutations = number(flag)?,
            "--seed" => seed = Some(number(flag)?),
            "--workers" => workers = Some(number(flag)?),
            "--big" => big = true,
            other => bail!("unknown option {other:?}\nusage: {USAGE}"),
        }
    }
    if mutations > 0 && archives == 0 {
        bail!("--mutations needs --archives >= 1 (each mutation mutates one of the archives)");
    }
    // A fresh seed each run explores new cases; the report and the table
    // print it, and --seed repeats a run exactly.
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() % 1_000_000)
    });
    let oracle = setup::run()?;
    util::step("build tpkg-zipdiff-reader (release)", || {
        util::cargo(&[
            "build",
            "--quiet",
            "--release",
            "--package",
            "tpkg-tests",
            "--bin",
            "tpkg-zipdiff-reader",
        ])
    })?;
    let root = util::root();
    let out = root.join("target/zipdiff");
    let report = out.join("report.json");
    let mut command = Command::new(&oracle.python);
    command
        .arg(root.join("tests/oracle/zip_differential.py"))
        .arg("--reader")
        .arg(root.join("target/release/tpkg-zipdiff-reader"))
        .args(["--archives", &archives.to_string()])
        .args(["--mutations", &mutations.to_string()])
        .args(["--seed", &seed.to_string()])
        .arg("--report")
        .arg(&report)
        .arg("--keep")
        .arg(out.join("cases"))
        .arg("--big-dir")
        .arg(out.join("tmp"))
        .current_dir(&root);
    if let Some(workers) = workers {
        command.args(["--workers", &workers.to_string()]);
    }
    if big {
        command.arg("--big");
    }
    let name = format!(
        "differential: {archives} archives + {mutations} mutations{}, seed {seed}",
        if big { " + big cases" } else { "" }
    );
    util::step(&name, || {
        let status = command
            .status()
            .with_context(|| format!("cannot start {command:?}"))?;
        match status.code() {
            Some(0) => Ok(()),
            Some(1) => bail!(
                "PyTorch and tpkg disagree (see the table above and {}; repeat with --seed {seed})",
                report.display()
            ),
            _ => bail!("{command:?} exited with {status}"),
        }
    })
}
