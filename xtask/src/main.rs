//! tpkg's developer harness. Run `cargo xtask help`.
//!
//! Everything a developer or CI does is here, in Rust, instead of in shell
//! scripts: installing the PyTorch oracle, running the checks, the
//! end-to-end scenarios and the fuzzers.

mod bench;
mod bench_cli;
mod bench_readme;
mod e2e;
mod fuzz;
mod generate;
mod golden;
mod python;
mod scanner_corpus;
mod scanners;
mod setup;
mod tidy;
mod util;
mod zipdiff;

use std::process::ExitCode;

pub(crate) const HELP: &str = "\
cargo xtask <command>

Commands:
  setup   Install the pinned PyTorch oracle (torch, torchvision) into a cached
          venv and point the build at its libtorch. Reuses it when present.
          Honours TPKG_PYTHON (an interpreter that has torch 2.13.0),
          LIBTORCH (a libtorch 2.13.0 folder) and TPKG_CACHE_DIR.
  test    setup, cargo fmt --check, clippy -D warnings, tidy, every test
          (unit, doc, integration, Python oracle, the Python package's
          pytest suite). What CI runs.
  tidy    The rules a reviewer would check by hand (xtask/src/tidy): crate
          layering and who links libtorch, file and function sizes, cited
          paths exist, commands documented, no string-typed kinds, generated
          files current, every crate packages.
  gen     Rewrite every generated file from its generator (xtask/src/generate):
          build scripts, the weights-only allowlist (from the oracle venv),
          the standard-library module table (`--refresh-stdlib` first adds
          what the interpreters python3.<minor> on PATH find).
  python  setup, then `pip install ./crates/python` (into target/python, the
          oracle venv untouched) and the package's pytest suite against the
          oracle's torch. Part of `test`.
  e2e     setup, then the end-to-end scenarios against real PyTorch; prints
          a table and fails if any scenario fails.
  bench   Benchmarks side by side with CPython/PyTorch in one run; writes
          target/bench/report.json and report.md (ratios, medians, RSS).
          `cargo xtask bench [ROW...]` runs only the rows named (`load_*`
          selects every row whose name starts with `load_`). The row
          `scanners` is tpkg audit beside picklescan, modelscan and fickling
          (`--bypass DIR --clean DIR --speed-files N`). The row `python` is
          the Python package beside PyTorch (crates/python/bench). The row
          `cli` times the release `tpkg` command as a process on the 1 GiB
          inputs beside cat, cp, cp + fsync and PyTorch. `--readme` rewrites
          README.md's speed tables from the run; `cargo xtask bench readme
          [REPORT.json...]` from saved reports.
  fuzz    Run each cargo-fuzz target for a while (default 60 s each;
          `cargo xtask fuzz [--seconds N] [TARGET...]`). Installs cargo-fuzz.
          The target `zipdiff` runs the container differential below.
  zipdiff PyTorch's archive reader against tpkg's on random archives PyTorch
          writes and seeded mutations of them (`--archives N --mutations M
          [--seed S] [--big] [--workers W]`; defaults 1000, 100000 (about
          3 minutes on 2 cores), a fresh seed). --big adds 70,000 records
          and a record over 4 GiB. Writes target/zipdiff/report.json;
          fails on any disagreement.
  golden  Write the backward-compatibility golden files once (never run by
          the tests): cached venvs with torch 1.10.2 (Python 3.8, found as
          TPKG_PYTHON38, python3.8 or under pyenv) and torch 2.0.1 (Python
          3.11, TPKG_PYTHON311 or python3.11) run tests/oracle/make_golden.py
          into tests/data/golden/torch-<version>/. `--only 1.10.2|2.0.1`.
  scanner-corpus  Write the scanner corpora (issue 18) once: the oracle runs
          tests/oracle/make_scanner_corpus.py into tests/data/bypass/ (public
          scanner bypasses, harmless marker payloads) and tests/data/clean/
          (small files PyTorch writes), each with a manifest.json.
  scanners Install picklescan, modelscan and fickling (pinned) into a
          cached venv of their own and print their versions; with paths
          (`cargo xtask scanners FILE...`), each tool's verdict on each.
  help    This text.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match command {
        "setup" => setup::run().map(|_| ()),
        "test" => run_tests(),
        "tidy" => setup::run().and_then(|_| tidy::run(rest)),
        "gen" => setup::run().and_then(|_| generate::run(rest)),
        "e2e" => e2e::run(),
        "python" => setup::run().and_then(|oracle| python::test(&oracle)),
        "bench" => bench::run(rest),
        "fuzz" => fuzz::run(rest),
        "zipdiff" => zipdiff::run(rest),
        "golden" => golden::run(rest),
        "scanner-corpus" => scanner_corpus::run(rest),
        "scanners" => scanners::run(rest),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(anyhow::anyhow!("unknown command {other:?}\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The features that turn on the suites needing the oracle Python and
/// libtorch (off by default, so `cargo test` at the root needs neither).
const ORACLE_FEATURES: &str = "tpkg-tests/oracle,tpkg-cli/oracle";

/// `cargo xtask test`: the whole gate, in the order that fails fastest.
fn run_tests() -> anyhow::Result<()> {
    let oracle = setup::run()?;
    util::step("cargo fmt --check", || {
        util::cargo(&["fmt", "--all", "--", "--check"])
    })?;
    util::step("cargo clippy", || {
        util::cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            ORACLE_FEATURES,
            "--",
            "-D",
            "warnings",
        ])
    })?;
    util::step("cargo xtask tidy", || tidy::run(&[]))?;
    util::step("cargo check: the CLI with libtorch (feature tch)", || {
        util::cargo(&[
            "check",
            "--quiet",
            "--package",
            "tpkg-cli",
            "--features",
            "tch",
        ])
    })?;
    util::step("cargo doc (broken links and bad HTML are errors)", || {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        util::run(
            std::process::Command::new(cargo)
                .args(["doc", "--quiet", "--no-deps", "--workspace"])
                .env("RUSTDOCFLAGS", "-D warnings")
                .current_dir(util::root()),
        )
    })?;
    // Doc tests first: nextest does not run them, and its summary line
    // should close the output.
    util::step("cargo test --doc", || {
        util::cargo(&[
            "test",
            "--quiet",
            "--workspace",
            "--features",
            ORACLE_FEATURES,
            "--doc",
        ])
    })?;
    if util::has_nextest() {
        util::step("cargo nextest (unit, integration, Python oracle)", || {
            util::cargo(&[
                "nextest",
                "run",
                "--workspace",
                // Its tests are the pytest suite below; in this run the
                // oracle features would link the facade's tch into it.
                "--exclude",
                "tpkg-python",
                "--features",
                ORACLE_FEATURES,
                "--no-fail-fast",
                "--status-level",
                "fail",
            ])
        })?;
    } else {
        util::step("cargo test (unit, integration, Python oracle)", || {
            util::cargo(&[
                "test",
                "--workspace",
                "--exclude",
                "tpkg-python",
                "--features",
                ORACLE_FEATURES,
                "--no-fail-fast",
                "--lib",
                "--bins",
                "--tests",
            ])
        })?;
    }
    util::step(
        "Python package: pip install ./crates/python, pytest",
        || python::test(&oracle),
    )?;
    eprintln!(
        "xtask: all checks passed (oracle: {}, libtorch: {})",
        oracle.python.display(),
        oracle.libtorch.display()
    );
    Ok(())
}
