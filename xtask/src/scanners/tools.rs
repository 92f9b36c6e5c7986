//! The tools, how each is run, and what a run gave.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};

use super::corpus::Item;
use super::verdicts::{
    read_fickling_api, read_fickling_cli, read_modelscan, read_picklescan, read_tpkg, summary_count,
};
use super::{TIMEOUT, Venv, tpkg_binary};
use crate::util;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Tool {
    Tpkg,
    Picklescan,
    Modelscan,
    FicklingCli,
    FicklingApi,
    /// fickling-api's runs read with a higher threshold (not run itself).
    FicklingApiOvert,
}

/// The tools that run.
pub(super) const TOOLS: &[Tool] = &[
    Tool::Tpkg,
    Tool::Picklescan,
    Tool::Modelscan,
    Tool::FicklingCli,
    Tool::FicklingApi,
];

/// The rows of the report.
pub(super) const ALL_ROWS: &[Tool] = &[
    Tool::Tpkg,
    Tool::Picklescan,
    Tool::Modelscan,
    Tool::FicklingCli,
    Tool::FicklingApi,
    Tool::FicklingApiOvert,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Unsafe,
    Clean,
    Error,
    Crash,
    Skipped,
}

impl Verdict {
    pub(super) fn name(self) -> &'static str {
        match self {
            Verdict::Unsafe => "unsafe",
            Verdict::Clean => "clean",
            Verdict::Error => "error",
            Verdict::Crash => "crash",
            Verdict::Skipped => "skipped",
        }
    }

    /// The mark in the per-file tables.
    pub(super) fn mark(self) -> &'static str {
        match self {
            Verdict::Unsafe => "UNSAFE",
            Verdict::Clean => "clean",
            Verdict::Error => "error",
            Verdict::Crash => "CRASH",
            Verdict::Skipped => "skipped",
        }
    }
}

/// One tool's verdict on one file.
#[derive(Debug, Clone)]
pub(super) struct FileRun {
    pub(super) verdict: Verdict,
    pub(super) detail: String,
    pub(super) seconds: f64,
    pub(super) exit: Option<i32>,
    /// fickling-api's highest severity.
    pub(super) severity: Option<String>,
}

impl FileRun {
    pub(super) fn to_json(&self) -> Value {
        let mut value = json!({
            "verdict": self.verdict.name(),
            "detail": self.detail,
            "seconds": self.seconds,
            "exit": self.exit,
        });
        if let Some(severity) = &self.severity {
            value["severity"] = json!(severity);
        }
        value
    }

    /// A fickling-api run, unsafe only at LIKELY_OVERTLY_MALICIOUS or above.
    pub(super) fn overtly_malicious(&self) -> FileRun {
        let overt = matches!(
            self.severity.as_deref(),
            Some("LIKELY_OVERTLY_MALICIOUS" | "OVERTLY_MALICIOUS")
        );
        let mut run = self.clone();
        if self.verdict == Verdict::Unsafe && !overt {
            run.verdict = Verdict::Clean;
        }
        run
    }
}

/// What a process did.
pub(super) struct Outcome {
    /// None: killed after [`TIMEOUT`].
    pub(super) status: Option<ExitStatus>,
    pub(super) stdout: String,
    pub(super) stderr: String,
    pub(super) seconds: f64,
}

impl Outcome {
    pub(super) fn code(&self) -> Option<i32> {
        self.status.and_then(|status| status.code())
    }

    /// The verdict when the process did not exit normally.
    pub(super) fn abnormal(&self) -> Option<(Verdict, String)> {
        match self.status {
            None => Some((
                Verdict::Crash,
                format!("killed after {} s", TIMEOUT.as_secs()),
            )),
            Some(status) if status.code().is_none() => Some((
                Verdict::Crash,
                format!("{status}: {}", last_line(&self.stderr)),
            )),
            _ => None,
        }
    }
}

/// The last non-empty line of a text, shortened.
pub(super) fn last_line(text: &str) -> String {
    let line = text.lines().rev().find(|line| !line.trim().is_empty());
    shorten(line.unwrap_or_default().trim())
}

pub(super) fn shorten(text: &str) -> String {
    const MAX: usize = 300;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Runs `command` in `work` with its output in files there; kills it after
/// [`TIMEOUT`]. The time is from spawn to exit.
pub(super) fn execute(command: &mut Command, work: &Path) -> anyhow::Result<Outcome> {
    let stdout_path = work.join("stdout");
    let stderr_path = work.join("stderr");
    command
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path)?)
        .stderr(std::fs::File::create(&stderr_path)?);
    let start = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let pid = child.id();
    let (done, finished) = mpsc::channel::<()>();
    // The child is not reaped before `wait` returns, so its id is its own
    // until then.
    let watchdog = std::thread::spawn(move || {
        let timed_out = matches!(
            finished.recv_timeout(TIMEOUT),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        if timed_out {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        timed_out
    });
    let status = child.wait()?;
    let seconds = start.elapsed().as_secs_f64();
    let _ = done.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let read = |path: &Path| {
        std::fs::read(path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    };
    Ok(Outcome {
        status: (!timed_out).then_some(status),
        stdout: read(&stdout_path),
        stderr: read(&stderr_path),
        seconds,
    })
}

/// A tool's own scan of a whole folder.
pub(super) struct FolderRun {
    pub(super) command: String,
    pub(super) seconds: f64,
    /// How many files the tool says it scanned.
    pub(super) scanned: Option<u64>,
    pub(super) exit: Option<i32>,
}

impl Tool {
    pub(super) fn name(self) -> &'static str {
        match self {
            Tool::Tpkg => "tpkg",
            Tool::Picklescan => "picklescan",
            Tool::Modelscan => "modelscan",
            Tool::FicklingCli => "fickling",
            Tool::FicklingApi => "fickling-api",
            Tool::FicklingApiOvert => "fickling-api≥overt",
        }
    }

    /// How the tool is run on one file, for the report.
    pub(super) fn invocation(self) -> &'static str {
        match self {
            Tool::Tpkg => "target/release/tpkg audit FILE --json",
            Tool::Picklescan => "picklescan --path FILE",
            Tool::Modelscan => "modelscan -p FILE -r json -o OUT.json",
            Tool::FicklingCli => "fickling --check-safety --json-output OUT.json FILE",
            Tool::FicklingApi | Tool::FicklingApiOvert => {
                "python bench/fickling_scan.py FILE (fickling.scan_zip_archive / scan_file, graceful=True)"
            }
        }
    }

    /// Runs the tool on one file and reads its verdict.
    pub(super) fn scan(self, venv: &Venv, path: &Path, work: &Path) -> anyhow::Result<FileRun> {
        let json_out = work.join("out.json");
        let _ = std::fs::remove_file(&json_out);
        let mut command = match self {
            Tool::Tpkg => {
                let mut command = Command::new(tpkg_binary());
                command.arg("audit").arg(path).arg("--json");
                command
            }
            Tool::Picklescan => {
                let mut command = Command::new(venv.bin.join("picklescan"));
                command.arg("--path").arg(path);
                command
            }
            Tool::Modelscan => {
                let mut command = Command::new(venv.bin.join("modelscan"));
                command
                    .arg("-p")
                    .arg(path)
                    .args(["-r", "json", "-o"])
                    .arg(&json_out);
                command
            }
            Tool::FicklingCli => {
                // Without --json-output, fickling appends its results to
                // ./safety_results.json.
                let mut command = Command::new(venv.bin.join("fickling"));
                command
                    .arg("--check-safety")
                    .arg("--json-output")
                    .arg(&json_out)
                    .arg(path);
                command
            }
            Tool::FicklingApi | Tool::FicklingApiOvert => {
                let mut command = Command::new(venv.bin.join("python"));
                command
                    .arg(util::root().join("bench/fickling_scan.py"))
                    .arg(path);
                command
            }
        };
        let outcome = execute(&mut command, work)?;
        let mut severity = None;
        let (verdict, detail) = match outcome.abnormal() {
            Some(abnormal) => abnormal,
            None => match self {
                Tool::Tpkg => read_tpkg(&outcome),
                Tool::Picklescan => read_picklescan(&outcome),
                Tool::Modelscan => read_modelscan(&outcome, &json_out),
                Tool::FicklingCli => read_fickling_cli(&outcome),
                Tool::FicklingApi | Tool::FicklingApiOvert => {
                    let (verdict, detail, found) = read_fickling_api(&outcome);
                    severity = found;
                    (verdict, detail)
                }
            },
        };
        Ok(FileRun {
            verdict,
            detail,
            seconds: outcome.seconds,
            exit: outcome.code(),
            severity,
        })
    }

    /// The tool's own scan of a folder, timed, where it has one: picklescan
    /// and modelscan walk it, fickling's API takes every path in one
    /// process, tpkg only when `tpkg audit` takes several paths.
    pub(super) fn folder_scan(
        self,
        venv: &Venv,
        dir: &Path,
        items: &[Item],
        work: &Path,
        tpkg_takes_many: bool,
    ) -> anyhow::Result<Option<FolderRun>> {
        let json_out = work.join("folder.json");
        let _ = std::fs::remove_file(&json_out);
        let (mut command, text) = match self {
            Tool::Tpkg if tpkg_takes_many => {
                let mut command = Command::new(tpkg_binary());
                command
                    .arg("audit")
                    .args(items.iter().map(|item| &item.path))
                    .arg("--json");
                (command, "tpkg audit FILE... --json")
            }
            Tool::Picklescan => {
                let mut command = Command::new(venv.bin.join("picklescan"));
                command.arg("--path").arg(dir);
                (command, "picklescan --path DIR")
            }
            Tool::Modelscan => {
                let mut command = Command::new(venv.bin.join("modelscan"));
                command
                    .arg("-p")
                    .arg(dir)
                    .args(["-r", "json", "-o"])
                    .arg(&json_out);
                (command, "modelscan -p DIR -r json -o OUT.json")
            }
            Tool::FicklingApi => {
                let mut command = Command::new(venv.bin.join("python"));
                command
                    .arg(util::root().join("bench/fickling_scan.py"))
                    .args(items.iter().map(|item| &item.path));
                (
                    command,
                    "python bench/fickling_scan.py FILE... (one process)",
                )
            }
            _ => return Ok(None),
        };
        let outcome = util::step(&format!("{} on the folder: {text}", self.name()), || {
            execute(&mut command, work)
        })?;
        let scanned = match self {
            Tool::Picklescan => summary_count(&outcome.stdout, "Scanned files:"),
            Tool::Modelscan => std::fs::read_to_string(&json_out)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .and_then(|report| report["summary"]["scanned"]["total_scanned"].as_u64()),
            Tool::FicklingApi => Some(outcome.stdout.lines().count() as u64),
            Tool::Tpkg => serde_json::from_str::<Value>(&outcome.stdout)
                .ok()
                .and_then(|report| report["summary"]["files"].as_u64()),
            _ => None,
        };
        Ok(Some(FolderRun {
            command: text.to_owned(),
            seconds: outcome.seconds,
            scanned,
            exit: outcome.code(),
        }))
    }
}
