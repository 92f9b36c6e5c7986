//! Other pickle scanners beside `tpkg audit`: `cargo xtask scanners` and
//! the bench's `scanners` section.
//!
//! picklescan, modelscan and fickling, pinned in [`PINS`], live in a venv
//! of their own under the setup cache folder (`venv-scanners`), created
//! with the system `python3` and reused while the pins are unchanged. They
//! are never dependencies of tpkg.
//!
//! The section runs every tool once per file of two corpora, one whose
//! files must be flagged (`tests/data/bypass`, standing in
//! `tests/data/hostile` while it is missing) and one whose files must not
//! (`tests/data/clean`, else `tests/data/golden`), and reads a verdict per
//! file: unsafe, clean, error (the tool says it could not scan: for tpkg,
//! exit 2, unreadable), crash (an uncaught exception, a signal, a time-out)
//! or skipped (the tool says it scanned nothing). It then times each tool
//! on a folder of generated clean files (`bench/scanners_corpus.py`, cached
//! in `target/bench/scanners-<N>/`): a per-file loop for every tool alike,
//! and the tool's own folder scan where it has one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{setup, util};

/// The scanners and their pins. typing_extensions: fickling 0.1.12 imports
/// it but declares it only for its `dev` and `lint` extras, so without it
/// `fickling` does not start.
const PINS: &[(&str, &str)] = &[
    ("picklescan", "1.0.5"),
    ("modelscan", "0.8.8"),
    ("fickling", "0.1.12"),
    ("typing_extensions", "4.16.0"),
];

/// The bench row name that selects the section.
pub const ROW: &str = "scanners";

/// How long one tool may take on one file (or one folder).
const TIMEOUT: Duration = Duration::from_secs(300);

/// The scanners' venv.
#[derive(Debug)]
pub struct Venv {
    /// Its `bin/` folder.
    pub bin: PathBuf,
    /// `name version` of each pinned package, and `python`.
    pub versions: BTreeMap<String, String>,
}

/// `cargo xtask scanners [PATH...]`: the venv and its versions; with paths,
/// every tool's verdict on each.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    if args.iter().any(|arg| arg.starts_with('-')) {
        bail!("usage: cargo xtask scanners [FILE|DIR...]");
    }
    let venv = ensure()?;
    if args.is_empty() {
        for (name, version) in &venv.versions {
            println!("{name} {version}");
        }
        return Ok(());
    }
    let root = util::root();
    build_tpkg()?;
    let work = root.join("target/bench/scanners-work");
    std::fs::create_dir_all(&work)?;
    let items: Vec<Item> = args
        .iter()
        .map(|arg| Item {
            path: std::path::absolute(arg).unwrap_or_else(|_| PathBuf::from(arg)),
            name: arg.clone(),
            manifest: Value::Null,
        })
        .collect();
    for &tool in TOOLS {
        for item in &items {
            let run = tool.scan(&venv, &item.path, &work)?;
            println!(
                "{:<12} {:<8} {:>7.3}s {}  {}",
                tool.name(),
                run.verdict.name(),
                run.seconds,
                item.name,
                run.detail
            );
        }
    }
    Ok(())
}

/// The venv, created or updated when the pins changed; reused without
/// running anything otherwise. Prints the versions.
pub fn ensure() -> anyhow::Result<Venv> {
    let start = Instant::now();
    let venv = setup::cache_dir()?.join("venv-scanners");
    let bin = venv.join("bin");
    let python = bin.join("python");
    let stamp = venv.join("tpkg-scanners.json");
    let requirements: Vec<String> = PINS
        .iter()
        .map(|(name, version)| format!("{name}=={version}"))
        .collect();
    let recorded: Value = std::fs::read_to_string(&stamp)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let how = if recorded["requirements"] == json!(requirements) && python.exists() {
        "cached venv"
    } else {
        util::step(
            &format!(
                "installing picklescan, modelscan, fickling into {}",
                venv.display()
            ),
            || {
                if !python.exists() {
                    let base =
                        std::env::var_os("TPKG_BASE_PYTHON").unwrap_or_else(|| "python3".into());
                    util::run(Command::new(&base).args(["-m", "venv"]).arg(&venv)).context(
                        "creating the venv failed; is Python 3 with the venv module installed (Debian: python3-venv)?",
                    )?;
                }
                util::run(
                    Command::new(&python)
                        .args(["-m", "pip", "install", "--quiet", "--progress-bar", "off"])
                        .args(&requirements),
                )
            },
        )?;
        const PROBE: &str = "import importlib.metadata as m, platform, sys\n\
            print('python', platform.python_version())\n\
            for name in sys.argv[1:]: print(name, m.version(name))";
        let text = util::output(
            Command::new(&python)
                .args(["-c", PROBE])
                .args(PINS.iter().map(|(name, _)| name)),
        )?;
        let versions: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|line| line.split_once(' '))
            .collect();
        for (name, version) in PINS {
            anyhow::ensure!(
                versions.get(name) == Some(version),
                "{} has {name} {:?}, not the pinned {version}",
                venv.display(),
                versions.get(name)
            );
        }
        let freeze = util::output(Command::new(&python).args(["-m", "pip", "freeze"]))?;
        let text = json!({
            "requirements": requirements,
            "versions": versions,
            "freeze": freeze.lines().collect::<Vec<_>>(),
        });
        std::fs::write(&stamp, serde_json::to_string_pretty(&text)?)
            .with_context(|| format!("writing {}", stamp.display()))?;
        "freshly installed venv"
    };
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(&stamp)?)?;
    let versions: BTreeMap<String, String> = recorded["versions"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, version)| (name.clone(), version.as_str().unwrap_or("?").to_owned()))
        .collect();
    eprintln!(
        "xtask: scanners ready ({how}) in {:.2}s: {}",
        start.elapsed().as_secs_f64(),
        versions
            .iter()
            .map(|(name, version)| format!("{name} {version}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Venv { bin, versions })
}

/// The section's parameters, taken from `cargo xtask bench`'s arguments.
#[derive(Debug, Default)]
pub struct Options {
    /// Files that must be flagged (`--bypass DIR`).
    bypass: Option<PathBuf>,
    /// Files that must not be flagged (`--clean DIR`).
    clean: Option<PathBuf>,
    /// How many generated files to time on (`--speed-files N`).
    speed_files: Option<usize>,
}

impl Options {
    /// Takes `--bypass DIR`, `--clean DIR` and `--speed-files N` out of
    /// the bench's arguments; the rest are row names.
    pub fn from_args(args: &[String]) -> anyhow::Result<(Options, Vec<String>)> {
        let mut options = Options::default();
        let mut rows = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .with_context(|| format!("{arg} needs a value"))
                    .cloned()
            };
            match arg.as_str() {
                "--bypass" => options.bypass = Some(value()?.into()),
                "--clean" => options.clean = Some(value()?.into()),
                "--speed-files" => {
                    let text = value()?;
                    let count = text
                        .parse()
                        .with_context(|| format!("--speed-files {text:?}"))?;
                    options.speed_files = Some(count);
                }
                _ => rows.push(arg.clone()),
            }
        }
        Ok((options, rows))
    }
}

/// Whether a bench row name selects the section (`scanners`, or a prefix
/// pattern such as `scan*`).
pub fn selected_by(name: &str) -> bool {
    match name.strip_suffix('*') {
        Some(prefix) => ROW.starts_with(prefix),
        None => name == ROW,
    }
}

/// The section's results: `report.json`'s `scanners` and its tables.
#[derive(Debug)]
pub struct Section {
    pub json: Value,
    pub markdown: String,
}

/// Runs the section: verdicts on the two corpora, times on the generated
/// folder. `python` is the oracle (it writes the generated folder).
pub fn bench(options: &Options, python: &Path, out: &Path) -> anyhow::Result<Section> {
    let root = util::root();
    let venv = ensure()?;
    build_tpkg()?;
    let work = out.join("scanners-work");
    std::fs::create_dir_all(&work)?;
    let count = options.speed_files.unwrap_or(1000);
    let speed_dir = out.join(format!("scanners-{count}"));
    util::step(
        &format!("the speed corpus: {count} files in {}", speed_dir.display()),
        || {
            util::run(
                Command::new(python)
                    .arg(root.join("bench/scanners_corpus.py"))
                    .arg(&speed_dir)
                    .arg(count.to_string()),
            )
        },
    )?;

    let corpus = |given: &Option<PathBuf>, wanted: &str, stand_in: &str| {
        let wanted = root.join(wanted);
        match given {
            Some(dir) => (std::path::absolute(dir).unwrap_or(dir.clone()), false),
            None if wanted.is_dir() => (wanted, false),
            None => (root.join(stand_in), true),
        }
    };
    let (bypass_dir, bypass_stand_in) =
        corpus(&options.bypass, "tests/data/bypass", "tests/data/hostile");
    let (clean_dir, clean_stand_in) =
        corpus(&options.clean, "tests/data/clean", "tests/data/golden");
    let bypass = corpus_items(&bypass_dir)?;
    let clean = corpus_items(&clean_dir)?;
    let speed: Vec<Item> = corpus_items(&speed_dir)?;
    anyhow::ensure!(
        speed.len() == count,
        "{} holds {} files, not {count}",
        speed_dir.display(),
        speed.len()
    );

    let mut runs: BTreeMap<(&str, Tool), Vec<FileRun>> = BTreeMap::new();
    for (label, items) in [("bypass", &bypass), ("clean", &clean)] {
        for &tool in TOOLS {
            let name = format!("{} on {label} ({} files)", tool.name(), items.len());
            let results = util::step(&name, || {
                items
                    .iter()
                    .map(|item| tool.scan(&venv, &item.path, &work))
                    .collect::<anyhow::Result<Vec<_>>>()
            })?;
            runs.insert((label, tool), results);
        }
    }
    let mut folder_runs = BTreeMap::new();
    let tpkg_takes_many = tpkg_takes_many_paths()?;
    for &tool in TOOLS {
        warm(&speed)?;
        let name = format!("{} on {count} files, one process per file", tool.name());
        let results = util::step(&name, || {
            speed
                .iter()
                .map(|item| tool.scan(&venv, &item.path, &work))
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        runs.insert(("speed", tool), results);
        warm(&speed)?;
        if let Some(folder) = tool.folder_scan(&venv, &speed_dir, &speed, &work, tpkg_takes_many)? {
            folder_runs.insert(tool, folder);
        }
    }
    // fickling's API read with a higher threshold: the same runs.
    for label in ["bypass", "clean", "speed"] {
        let overt: Vec<FileRun> = runs[&(label, Tool::FicklingApi)]
            .iter()
            .map(FileRun::overtly_malicious)
            .collect();
        runs.insert((label, Tool::FicklingApiOvert), overt);
    }

    let corpora = json!({
        "bypass": {
            "path": bypass_dir, "files": bypass.len(), "stand_in": bypass_stand_in,
            "must": "be flagged",
        },
        "clean": {
            "path": clean_dir, "files": clean.len(), "stand_in": clean_stand_in,
            "must": "not be flagged",
        },
        "speed": { "path": speed_dir, "files": speed.len(), "made_by": "bench/scanners_corpus.py" },
    });
    let tpkg_loop = seconds(&runs[&("speed", Tool::Tpkg)]);
    let tools: Vec<Value> = ALL_ROWS
        .iter()
        .map(|&tool| {
            let summary = |label| tally(&runs[&(label, tool)]);
            let speed_seconds = seconds(&runs[&("speed", tool)]);
            let folder = match tool {
                Tool::FicklingApiOvert => folder_runs.get(&Tool::FicklingApi),
                _ => folder_runs.get(&tool),
            };
            let folder_reference = folder_runs
                .get(&Tool::Tpkg)
                .map_or(tpkg_loop, |f| f.seconds);
            json!({
                "tool": tool.name(),
                "invocation": tool.invocation(),
                "bypass": summary("bypass"),
                "clean": summary("clean"),
                "speed": summary("speed"),
                "speed_loop_seconds": speed_seconds,
                "speed_loop_ratio_to_tpkg": speed_seconds / tpkg_loop,
                "folder": folder.map(|f| json!({
                    "command": f.command,
                    "seconds": f.seconds,
                    "scanned": f.scanned,
                    "exit": f.exit,
                    "ratio_to_tpkg": f.seconds / folder_reference,
                })),
            })
        })
        .collect();
    let files = |label: &str, items: &[Item], only_unexpected: bool| -> Vec<Value> {
        items
            .iter()
            .enumerate()
            .filter(|&(index, _)| {
                !only_unexpected
                    || ALL_ROWS
                        .iter()
                        .any(|&tool| runs[&(label, tool)][index].verdict != Verdict::Clean)
            })
            .map(|(index, item)| {
                let mut entry = json!({ "file": item.name, "manifest": item.manifest });
                for &tool in ALL_ROWS {
                    entry[tool.name()] = runs[&(label, tool)][index].to_json();
                }
                entry
            })
            .collect()
    };
    let json = json!({
        "versions": venv.versions,
        "corpora": corpora,
        "tools": tools,
        "files": {
            "bypass": files("bypass", &bypass, false),
            "clean": files("clean", &clean, false),
            // Only the generated files some tool did not call clean.
            "speed_not_clean": files("speed", &speed, true),
        },
        "note": "one run of each tool per file; verdicts: unsafe, clean, error (the tool says it could not scan; tpkg: exit 2, unreadable: a detection by refusal on the bypass corpus, a false positive on the clean one), crash (uncaught exception, signal or time-out), skipped (the tool scanned nothing); speed_loop_seconds: the sum over the generated files of each process's wall time (page cache warm); folder: the tool's own scan of the folder in one process, ratio to tpkg's per-file loop unless tpkg audit takes several paths; fickling-api≥overt: fickling-api's runs, unsafe only at LIKELY_OVERTLY_MALICIOUS or above",
    });
    let markdown = markdown(&json, &runs, &bypass, &clean);
    Ok(Section { json, markdown })
}

/// Builds the release `tpkg`.
fn build_tpkg() -> anyhow::Result<()> {
    util::step("build tpkg (release)", || {
        util::cargo(&["build", "--quiet", "--release", "--package", "tpkg-cli"])
    })
}

fn tpkg_binary() -> PathBuf {
    util::root().join("target/release/tpkg")
}

/// Whether `tpkg audit` takes several paths (`<PACKAGE>...` in its help).
fn tpkg_takes_many_paths() -> anyhow::Result<bool> {
    let help = util::output(Command::new(tpkg_binary()).args(["audit", "--help"]))?;
    Ok(help.contains("<PACKAGE>..."))
}

/// One file or package folder of a corpus.
struct Item {
    path: PathBuf,
    /// Its path in the corpus folder.
    name: String,
    /// Its entry in the corpus's `manifest.json`, if any.
    manifest: Value,
}

/// The files of a corpus folder, in order: every file, and every package
/// folder (one holding `.data/`) as one item, without the corpus's own
/// bookkeeping (`manifest.json`, `stamp.json`, READMEs, `.md`, `.py`,
/// `.txt`, `.git*`).
fn corpus_items(dir: &Path) -> anyhow::Result<Vec<Item>> {
    let manifest: Value = std::fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let mut items = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&folder)
            .with_context(|| format!("listing {}", folder.display()))?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for path in entries {
            let file_name = path.file_name().unwrap_or_default().to_string_lossy();
            let bookkeeping = ["manifest.json", "stamp.json"].contains(&&*file_name)
                || file_name.starts_with("README")
                || file_name.starts_with(".git")
                || [".md", ".py", ".txt"]
                    .iter()
                    .any(|ext| file_name.ends_with(ext));
            let package = path.join(".data").is_dir();
            if path.is_dir() && !package {
                pending.push(path);
                continue;
            }
            if bookkeeping && !package {
                continue;
            }
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let manifest = manifest_entry(&manifest, &name);
            items.push(Item {
                path,
                name,
                manifest,
            });
        }
    }
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(items)
}

/// A file's entry in a corpus manifest: `{"files": [{"file": NAME, ...}]}`
/// (the scanner corpora) or `{NAME: {...}}` (the hostile corpus).
fn manifest_entry(manifest: &Value, name: &str) -> Value {
    let listed = manifest["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|entry| entry["file"] == name);
    listed
        .or_else(|| manifest.get(name))
        .cloned()
        .unwrap_or(Value::Null)
}

/// What a manifest entry says a file is, in a few words.
fn manifest_summary(entry: &Value) -> String {
    let text = |key: &str| entry[key].as_str().unwrap_or_default();
    let what = [text("technique"), text("kind")]
        .into_iter()
        .find(|what| !what.is_empty());
    match (what, text("container")) {
        (Some(what), "") => what.to_owned(),
        (Some(what), container) => format!("{what} ({container})"),
        (None, _) => match entry["audit"].as_u64() {
            Some(audit) => format!("audit exit {audit}"),
            None => String::new(),
        },
    }
}

/// Reads every file once (untimed), so every tool reads from the page cache.
fn warm(items: &[Item]) -> anyhow::Result<()> {
    for item in items {
        if item.path.is_file() {
            std::fs::read(&item.path)?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tool {
    Tpkg,
    Picklescan,
    Modelscan,
    FicklingCli,
    FicklingApi,
    /// fickling-api's runs read with a higher threshold (not run itself).
    FicklingApiOvert,
}

/// The tools that run.
const TOOLS: &[Tool] = &[
    Tool::Tpkg,
    Tool::Picklescan,
    Tool::Modelscan,
    Tool::FicklingCli,
    Tool::FicklingApi,
];

/// The rows of the report.
const ALL_ROWS: &[Tool] = &[
    Tool::Tpkg,
    Tool::Picklescan,
    Tool::Modelscan,
    Tool::FicklingCli,
    Tool::FicklingApi,
    Tool::FicklingApiOvert,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Unsafe,
    Clean,
    Error,
    Crash,
    Skipped,
}

impl Verdict {
    fn name(self) -> &'static str {
        match self {
            Verdict::Unsafe => "unsafe",
            Verdict::Clean => "clean",
            Verdict::Error => "error",
            Verdict::Crash => "crash",
            Verdict::Skipped => "skipped",
        }
    }

    /// The mark in the per-file tables.
    fn mark(self) -> &'static str {
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
struct FileRun {
    verdict: Verdict,
    detail: String,
    seconds: f64,
    exit: Option<i32>,
    /// fickling-api's highest severity.
    severity: Option<String>,
}

impl FileRun {
    fn to_json(&self) -> Value {
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
    fn overtly_malicious(&self) -> FileRun {
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
struct Outcome {
    /// None: killed after [`TIMEOUT`].
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    seconds: f64,
}

impl Outcome {
    fn code(&self) -> Option<i32> {
        self.status.and_then(|status| status.code())
    }

    /// The verdict when the process did not exit normally.
    fn abnormal(&self) -> Option<(Verdict, String)> {
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
fn last_line(text: &str) -> String {
    let line = text.lines().rev().find(|line| !line.trim().is_empty());
    shorten(line.unwrap_or_default().trim())
}

fn shorten(text: &str) -> String {
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
fn execute(command: &mut Command, work: &Path) -> anyhow::Result<Outcome> {
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
struct FolderRun {
    command: String,
    seconds: f64,
    /// How many files the tool says it scanned.
    scanned: Option<u64>,
    exit: Option<i32>,
}

impl Tool {
    fn name(self) -> &'static str {
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
    fn invocation(self) -> &'static str {
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
    fn scan(self, venv: &Venv, path: &Path, work: &Path) -> anyhow::Result<FileRun> {
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
    fn folder_scan(
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

/// tpkg: exit 0 clean, 1 unsafe (the first unsafe finding), 2 unreadable.
fn read_tpkg(outcome: &Outcome) -> (Verdict, String) {
    let report: Value = serde_json::from_str(&outcome.stdout).unwrap_or_default();
    match outcome.code() {
        Some(0) => (Verdict::Clean, String::new()),
        Some(1) => {
            let findings = report["findings"].as_array().cloned().unwrap_or_default();
            let first = findings
                .iter()
                .find(|finding| finding["level"] == "unsafe")
                .map(|finding| {
                    format!(
                        "{} {} ({})",
                        finding["kind"].as_str().unwrap_or("?"),
                        finding["subject"].as_str().unwrap_or("?"),
                        finding["record"].as_str().unwrap_or("-")
                    )
                })
                .unwrap_or_default();
            (Verdict::Unsafe, shorten(&first))
        }
        Some(2) => {
            let error = report["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| last_line(&outcome.stderr));
            (Verdict::Error, shorten(&format!("unreadable: {error}")))
        }
        other => (
            Verdict::Crash,
            format!("exit {other:?}: {}", last_line(&outcome.stderr)),
        ),
    }
}

/// `Name: N` from a summary.
fn summary_count(text: &str, label: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
}

/// picklescan: its summary, not only its exit status (exit 2, a scan error,
/// wins over exit 1 when a file has both). Dangerous globals → unsafe; exit
/// 2 → error; no summary → crash (it caught an exception).
fn read_picklescan(outcome: &Outcome) -> (Verdict, String) {
    let text = format!("{}{}", outcome.stdout, outcome.stderr);
    let Some(dangerous) = summary_count(&text, "Dangerous globals:") else {
        return (Verdict::Crash, last_line(&text));
    };
    let lines = |needle: &str| {
        shorten(
            &text
                .lines()
                .filter(|line| line.contains(needle))
                .collect::<Vec<_>>()
                .join("; "),
        )
    };
    if dangerous > 0 {
        return (Verdict::Unsafe, lines("FOUND"));
    }
    if outcome.code() == Some(2) {
        return (Verdict::Error, lines("ERROR"));
    }
    if summary_count(&text, "Scanned files:") == Some(0) {
        return (Verdict::Skipped, String::new());
    }
    if outcome.code() != Some(0) {
        return (
            Verdict::Crash,
            format!("exit {:?}: {}", outcome.code(), last_line(&text)),
        );
    }
    // A file it cannot parse as a pickle is clean to it, with a warning.
    (Verdict::Clean, lines("WARNING"))
}

/// modelscan: its JSON report (issues → unsafe; errors → error; nothing
/// scanned → skipped); exit 2 without a report is an exception it caught.
fn read_modelscan(outcome: &Outcome, json_out: &Path) -> (Verdict, String) {
    let report: Option<Value> = std::fs::read_to_string(json_out)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let Some(report) = report else {
        return (
            Verdict::Crash,
            format!(
                "exit {:?}, no report: {}",
                outcome.code(),
                last_line(&outcome.stdout)
            ),
        );
    };
    let list = |key: &str| report[key].as_array().cloned().unwrap_or_default();
    let (issues, errors) = (list("issues"), list("errors"));
    if let Some(issue) = issues.first() {
        let detail = issue["description"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| issue.to_string());
        return (Verdict::Unsafe, shorten(&detail));
    }
    if let Some(error) = errors.first() {
        let detail = error["description"]
            .as_str()
            .or(error["message"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| error.to_string());
        return (Verdict::Error, shorten(&detail));
    }
    let scanned = report["summary"]["scanned"]["total_scanned"].as_u64();
    match outcome.code() {
        Some(3) => (Verdict::Skipped, "no supported file (exit 3)".to_owned()),
        _ if scanned == Some(0) => (Verdict::Skipped, "nothing scanned".to_owned()),
        Some(0) => (Verdict::Clean, String::new()),
        Some(2) => (Verdict::Error, "exit 2 with no error listed".to_owned()),
        other => (
            Verdict::Crash,
            format!("exit {other:?}: {}", last_line(&outcome.stdout)),
        ),
    }
}

/// fickling's CLI: exit 0 clean, 1 unsafe, 2 error (it could not parse the
/// file); a Python traceback is a crash, whatever the exit status (an
/// uncaught exception exits 1, like a finding).
fn read_fickling_cli(outcome: &Outcome) -> (Verdict, String) {
    if outcome.stderr.contains("Traceback (most recent call last)") {
        return (Verdict::Crash, last_line(&outcome.stderr));
    }
    match outcome.code() {
        Some(0) => (Verdict::Clean, String::new()),
        Some(1) => (Verdict::Unsafe, String::new()),
        Some(2) => {
            let first = outcome.stderr.lines().next().unwrap_or_default();
            (Verdict::Error, shorten(first))
        }
        other => (
            Verdict::Crash,
            format!("exit {other:?}: {}", last_line(&outcome.stderr)),
        ),
    }
}

/// `bench/fickling_scan.py`'s JSON line.
fn read_fickling_api(outcome: &Outcome) -> (Verdict, String, Option<String>) {
    let line: Option<Value> = outcome
        .stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok());
    let Some(line) = line else {
        return (
            Verdict::Crash,
            format!("exit {:?}: {}", outcome.code(), last_line(&outcome.stderr)),
            None,
        );
    };
    let verdict = match line["verdict"].as_str() {
        Some("unsafe") => Verdict::Unsafe,
        Some("clean") => Verdict::Clean,
        Some("error") => Verdict::Error,
        Some("skipped") => Verdict::Skipped,
        _ => Verdict::Crash,
    };
    let detail = line["detail"].as_str().unwrap_or_default();
    let severity = line["severity"].as_str().map(str::to_owned);
    (verdict, shorten(detail), severity)
}

/// Verdict counts and the summed seconds of one tool on one corpus.
fn tally(runs: &[FileRun]) -> Value {
    let count = |verdict| runs.iter().filter(|run| run.verdict == verdict).count();
    json!({
        "total": runs.len(),
        "unsafe": count(Verdict::Unsafe),
        "clean": count(Verdict::Clean),
        "error": count(Verdict::Error),
        "crash": count(Verdict::Crash),
        "skipped": count(Verdict::Skipped),
        "seconds": seconds(runs),
    })
}

fn seconds(runs: &[FileRun]) -> f64 {
    runs.iter().map(|run| run.seconds).sum()
}

/// The summary table and the per-file tables of the two corpora.
fn markdown(
    json: &Value,
    runs: &BTreeMap<(&str, Tool), Vec<FileRun>>,
    bypass: &[Item],
    clean: &[Item],
) -> String {
    let corpora = &json["corpora"];
    let corpus_line = |label: &str| {
        let corpus = &corpora[label];
        format!(
            "{} ({} items{})",
            corpus["path"]
                .as_str()
                .map(|path| path
                    .strip_prefix(&format!("{}/", util::root().display()))
                    .unwrap_or(path))
                .unwrap_or_default(),
            corpus["files"],
            if corpus["stand_in"] == true {
                ", standing in while the real corpus is missing"
            } else {
                ""
            }
        )
    };
    let speed_files = corpora["speed"]["files"].as_u64().unwrap_or(0);
    let mut text = format!(
        "## Scanners\n\nMust be flagged: {}. Must not be flagged: {}. Speed: {speed_files} generated clean files. Versions: {}.\n\n",
        corpus_line("bypass"),
        corpus_line("clean"),
        json["versions"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, version)| format!("{name} {}", version.as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", "),
    );
    text.push_str(
        "| tool | bypass: detected / total | bypass: error (refusal) | bypass: crash / skipped | clean: false positives / total | clean: error | clean: crash / skipped | speed files not clean (FP / error / crash / skipped) | per-file loop s | × tpkg | own folder scan s | × tpkg |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for tool in json["tools"].as_array().into_iter().flatten() {
        let n = |corpus: &str, key: &str| tool[corpus][key].as_u64().unwrap_or(0);
        let folder = &tool["folder"];
        let (folder_seconds, folder_ratio) = match folder["seconds"].as_f64() {
            Some(seconds) => (
                format!(
                    "{seconds:.2} (`{}`)",
                    folder["command"].as_str().unwrap_or("")
                ),
                format!(
                    "{:.2}x",
                    folder["ratio_to_tpkg"].as_f64().unwrap_or(f64::NAN)
                ),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        text.push_str(&format!(
            "| {} | {} / {} | {} | {} / {} | {} / {} | {} | {} / {} | {} / {} / {} / {} | {:.2} | {:.2}x | {folder_seconds} | {folder_ratio} |\n",
            tool["tool"].as_str().unwrap_or_default(),
            n("bypass", "unsafe"),
            n("bypass", "total"),
            n("bypass", "error"),
            n("bypass", "crash"),
            n("bypass", "skipped"),
            n("clean", "unsafe"),
            n("clean", "total"),
            n("clean", "error"),
            n("clean", "crash"),
            n("clean", "skipped"),
            n("speed", "unsafe"),
            n("speed", "error"),
            n("speed", "crash"),
            n("speed", "skipped"),
            tool["speed_loop_seconds"].as_f64().unwrap_or(f64::NAN),
            tool["speed_loop_ratio_to_tpkg"]
                .as_f64()
                .unwrap_or(f64::NAN),
        ));
    }
    text.push_str(
        "\nInvocations (one process per file, working folder target/bench/scanners-work):\n\n",
    );
    for tool in json["tools"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "- {}: `{}`\n",
            tool["tool"].as_str().unwrap_or_default(),
            tool["invocation"].as_str().unwrap_or_default()
        ));
    }
    text.push_str(
        "\nVerdicts: UNSAFE flagged; clean; error: the tool says it could not scan (tpkg: exit 2, unreadable — a detection by refusal on the bypass corpus, a false positive on the clean one); CRASH: uncaught exception, signal or time-out; skipped: the tool scanned nothing. fickling-api≥overt: fickling-api's runs, unsafe only at LIKELY_OVERTLY_MALICIOUS or above. Details per file in report.json.\n",
    );
    for (label, items) in [("bypass", bypass), ("clean", clean)] {
        text.push_str(&format!(
            "\n### {label}: {}\n\n| file | manifest says |",
            corpus_line(label)
        ));
        for tool in ALL_ROWS {
            text.push_str(&format!(" {} |", tool.name()));
        }
        text.push_str("\n|---|---|");
        text.push_str(&"---|".repeat(ALL_ROWS.len()));
        text.push('\n');
        for (index, item) in items.iter().enumerate() {
            text.push_str(&format!(
                "| {} | {} |",
                item.name,
                manifest_summary(&item.manifest).replace('|', "/")
            ));
            for &tool in ALL_ROWS {
                text.push_str(&format!(
                    " {} |",
                    runs[&(label, tool)][index].verdict.mark()
                ));
            }
            text.push('\n');
        }
    }
    text
}
