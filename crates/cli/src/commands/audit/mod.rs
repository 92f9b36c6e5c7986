//! `tpkg audit PATH...`: every file under the paths, judged by content, on
//! all cores; one result per file and a summary, as text, JSON or SARIF.
//!
//! Exit status: 2 if any file is unreadable (never clean: what tpkg cannot
//! read, it cannot vouch for), else 1 if any file has a finding at or
//! above `--fail-on`, else 0.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;
use tpkg::audit::{AuditPolicy, AuditReport, FindingKind, Level, audit_path};

use super::write_json;

mod text;

/// How `tpkg audit` prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// The verdict and exit reason, then unsafe findings with their
    /// chains, then review findings grouped by kind.
    Text,
    /// One JSON object (a report; for several files, `files` and `summary`).
    Json,
    /// SARIF 2.1.0, as GitHub code scanning accepts it.
    Sarif,
}

/// What `tpkg audit` was asked.
#[derive(Debug)]
pub struct AuditArgs {
    pub paths: Vec<PathBuf>,
    pub format: OutputFormat,
    pub policy: Option<PathBuf>,
    pub fail_on: Level,
    pub all: bool,
}

/// The verdict on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    /// A file met while walking a folder that is no PyTorch file at all
    /// (no zip, pickle or legacy stream): nothing loads it.
    Skipped,
    Clean,
    Review,
    Unsafe,
    Unreadable,
}

fn verdict(report: &AuditReport) -> Verdict {
    if report.is_unreadable() {
        return Verdict::Unreadable;
    }
    match report.worst() {
        Some(Level::Unsafe) => Verdict::Unsafe,
        Some(Level::Review) => Verdict::Review,
        _ => Verdict::Clean,
    }
}

/// One file's result.
#[derive(Debug, Serialize)]
struct FileResult {
    path: String,
    verdict: Verdict,
    #[serde(flatten)]
    report: AuditReport,
}

/// Totals over every file.
#[derive(Debug, Default, Serialize)]
struct Summary {
    files: usize,
    clean: usize,
    review: usize,
    unsafe_: usize,
    unreadable: usize,
    skipped: usize,
    seconds: f64,
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let policy = match &args.policy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading policy {}", path.display()))?;
            serde_json::from_str::<AuditPolicy>(&text)
                .with_context(|| format!("policy {}", path.display()))?
        }
        None => AuditPolicy::default(),
    };
    let start = Instant::now();
    let single = args.paths.len() == 1 && !is_folder_of_files(&args.paths[0]);
    let files = collect_files(&args.paths)?;
    let results = audit_all(&files, &policy);
    let mut summary = Summary {
        files: results.len(),
        seconds: start.elapsed().as_secs_f64(),
        ..Summary::default()
    };
    for result in &results {
        match result.verdict {
            Verdict::Clean => summary.clean += 1,
            Verdict::Review => summary.review += 1,
            Verdict::Unsafe => summary.unsafe_ += 1,
            Verdict::Unreadable => summary.unreadable += 1,
            Verdict::Skipped => summary.skipped += 1,
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        OutputFormat::Json if single => write_json(&mut out, &results[0].report)?,
        OutputFormat::Json => write_json(
            &mut out,
            &serde_json::json!({ "files": results, "summary": summary_json(&summary) }),
        )?,
        OutputFormat::Sarif => write_json(&mut out, &sarif(&results, args.all))?,
        OutputFormat::Text => {
            let style = text::Style::detect();
            if single {
                text::write_single(&mut out, &results[0], args.fail_on, args.all, style)?;
            } else {
                text::write_several(&mut out, &results, &summary, args.fail_on, args.all, style)?;
            }
        }
    }
    out.flush()?;
    // A file that could not be opened at all is also an error message.
    for result in &results {
        let opened = result.report.findings.iter().find(|f| {
            f.kind == FindingKind::Unreadable
                && f.record.as_deref() == Some("(file)")
                && result.report.format.is_none()
        });
        if let Some(finding) = opened {
            eprintln!("tpkg: error: {}", finding.reason);
        }
    }
    let (code, _) = text::exit_reason(&results, args.fail_on);
    Ok(ExitCode::from(code))
}

fn summary_json(summary: &Summary) -> serde_json::Value {
    serde_json::json!({
        "files": summary.files,
        "clean": summary.clean,
        "review": summary.review,
        "unsafe": summary.unsafe_,
        "unreadable": summary.unreadable,
        "skipped": summary.skipped,
        "seconds": summary.seconds,
    })
}

/// Whether `path` is a folder to walk (not a package in directory form,
/// which is one file to audit).
fn is_folder_of_files(path: &Path) -> bool {
    path.is_dir() && !path.join(".data").join("version").is_file()
}

/// Whether a file could be something PyTorch loads: it starts as a zip, a
/// legacy `torch.save`, a tar or a pickle (an unreadable file is left to
/// the audit, which says why).
fn is_pytorch_file(path: &Path) -> bool {
    use tpkg::formats::Sniffed;
    let mut head = [0u8; 4];
    let starts_as_zip = std::fs::File::open(path)
        .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut head))
        .is_ok_and(|()| head.starts_with(b"PK"));
    starts_as_zip || !matches!(tpkg::formats::sniff_path(path), Ok(Sniffed::Zip))
}

/// Every file under `paths` (with whether it was found by walking a
/// folder), folders walked recursively (sorted), a
/// package in directory form kept whole. Symbolic links to folders are not
/// followed (no cycles).
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, bool)>> {
    let mut files = Vec::new();
    let mut stack: Vec<(PathBuf, bool)> = paths.iter().rev().map(|p| (p.clone(), false)).collect();
    while let Some((path, walked)) = stack.pop() {
        if !is_folder_of_files(&path) {
            files.push((path, walked));
            continue;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&path)
            .with_context(|| format!("reading folder {}", path.display()))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading folder {}", path.display()))?;
        entries.sort();
        for entry in entries.into_iter().rev() {
            let is_link_to_folder = entry.is_symlink() && entry.is_dir();
            if !is_link_to_folder {
                stack.push((entry, true));
            }
        }
    }
    Ok(files)
}

/// Audits every file on every core, in order of `files`; progress on
/// standard error when it is a terminal and there are several files.
fn audit_all(files: &[(PathBuf, bool)], policy: &AuditPolicy) -> Vec<FileResult> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(files.len().max(1));
    let total = files.len() as u64;
    let progress = (files.len() > 1)
        .then(|| super::progress::Bar::files("auditing", total))
        .flatten();
    let mut results: Vec<Option<FileResult>> = (0..files.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some((path, walked)) = files.get(index) else {
                            break;
                        };
                        let (verdict, report) = if *walked && !is_pytorch_file(path) {
                            (Verdict::Skipped, AuditReport::default())
                        } else {
                            let report = audit_path(path, policy);
                            (verdict(&report), report)
                        };
                        mine.push((
                            index,
                            FileResult {
                                path: path.display().to_string(),
                                verdict,
                                report,
                            },
                        ));
                        let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if let Some(bar) = &progress {
                            bar.set(finished as u64, total);
                        }
                    }
                    mine
                })
            })
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(mine) => {
                    for (index, result) in mine {
                        results[index] = Some(result);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    if let Some(bar) = progress {
        bar.finish();
    }
    results.into_iter().flatten().collect()
}

/// The results as a SARIF 2.1.0 log: one run, a rule per finding kind,
/// a result per finding that is not safe (every finding with `--all`),
/// located at the file with the record (and offset or line) as a logical
/// location.
fn sarif(results: &[FileResult], all: bool) -> serde_json::Value {
    use serde_json::json;
    let mut kinds: Vec<&str> = results
        .iter()
        .flat_map(|r| r.report.findings.iter().map(|f| f.kind.as_str()))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let rules: Vec<_> = kinds
        .iter()
        .map(|kind| {
            json!({
                "id": kind,
                "name": kind,
                "shortDescription": { "text": format!("tpkg audit: {kind}") },
                "helpUri": "https://github.com/tpkg/tpkg/blob/main/SECURITY.md",
            })
        })
        .collect();
    let mut sarif_results = Vec::new();
    for result in results {
        for finding in &result.report.findings {
            if finding.level == Level::Safe && !all {
                continue;
            }
            let level = match finding.level {
                Level::Unsafe => "error",
                Level::Review => "warning",
                Level::Safe => "note",
            };
            let mut place = finding.record.clone().unwrap_or_default();
            if let Some(offset) = finding.offset {
                place.push_str(&format!(" byte {offset}"));
            }
            if let Some(line) = finding.line {
                place.push_str(&format!(" line {line}"));
            }
            let mut location = json!({
                "physicalLocation": { "artifactLocation": { "uri": uri(&result.path) } },
            });
            if !place.is_empty() {
                location["logicalLocations"] = json!([{ "fullyQualifiedName": place.trim() }]);
            }
            sarif_results.push(json!({
                "ruleId": finding.kind,
                "ruleIndex": kinds.iter().position(|k| *k == finding.kind.as_str()).unwrap_or(0),
                "level": level,
                "message": { "text": format!("{} — {}", finding.subject, finding.reason) },
                "locations": [location],
                "properties": { "tpkgLevel": finding.level, "count": finding.count },
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "tpkg",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/tpkg/tpkg",
                "rules": rules,
            }},
            "results": sarif_results,
        }],
    })
}

/// A path as a SARIF URI reference: relative paths as they are (with `/`),
/// absolute ones as `file://` URIs; spaces and `%` escaped.
fn uri(path: &str) -> String {
    let escaped = path
        .replace('%', "%25")
        .replace(' ', "%20")
        .replace('\\', "/");
    if escaped.starts_with('/') {
        format!("file://{escaped}")
    } else {
        escaped
    }
}
