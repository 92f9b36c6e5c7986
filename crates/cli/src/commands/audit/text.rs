//! `tpkg audit`'s text output: the verdict first (file, level, exit
//! reason), then the unsafe findings with their chains (pickle global →
//! interned module → call, or record → byte offset → what), then the review
//! findings grouped by kind with counts and a few examples (every one, and
//! the safe ones too, with `--all`). Folders: a verdict line per file, the
//! summary and exit reason, then each file's findings.

use std::io::{self, Write};

use tpkg::audit::{Finding, FindingKind, Level};

use super::{FileResult, Summary, Verdict};

/// Examples shown per review kind without `--all`.
const EXAMPLES: usize = 3;

/// Longest example shown (longer subjects are cut with `…`).
const EXAMPLE_CHARS: usize = 48;

/// ANSI styling, on or off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Whether to colour.
    pub color: bool,
}

impl Style {
    /// Colour when standard output is a terminal and `NO_COLOR` is unset or
    /// empty.
    pub fn detect() -> Style {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Style {
            color: !no_color && io::stdout().is_terminal(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    fn verdict(self, verdict: Verdict, text: &str) -> String {
        let code = match verdict {
            Verdict::Unsafe => "1;31",
            Verdict::Unreadable => "1;35",
            Verdict::Review => "1;33",
            Verdict::Clean => "1;32",
            Verdict::Skipped => "2",
        };
        self.paint(code, text)
    }

    fn level(self, level: Level, text: &str) -> String {
        let verdict = match level {
            Level::Unsafe => Verdict::Unsafe,
            Level::Review => Verdict::Review,
            Level::Safe => Verdict::Clean,
        };
        self.verdict(verdict, text)
    }
}

/// The verdict's word in text output.
fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Skipped => "skipped",
        Verdict::Clean => "safe",
        Verdict::Review => "review",
        Verdict::Unsafe => "unsafe",
        Verdict::Unreadable => "unreadable",
    }
}

/// Findings at `level`, repeats counted.
fn count(findings: &[Finding], level: Level) -> usize {
    findings
        .iter()
        .filter(|f| f.level == level)
        .map(|f| f.count)
        .sum()
}

/// The exit status a run with these results has, and why.
pub fn exit_reason<'a>(
    results: impl IntoIterator<Item = &'a FileResult>,
    fail_on: Level,
) -> (u8, String) {
    let mut worst = None;
    let mut unreadable = 0;
    for result in results {
        if result.verdict == Verdict::Unreadable {
            unreadable += 1;
        }
        worst = worst.max(result.report.worst());
    }
    if unreadable > 0 {
        let what = if unreadable == 1 {
            "a file cannot be read (never clean)".to_owned()
        } else {
            format!("{unreadable} files cannot be read (never clean)")
        };
        return (2, what);
    }
    match worst {
        Some(worst) if worst >= fail_on => (
            1,
            format!("{worst} findings, at or above --fail-on {fail_on}"),
        ),
        _ => (0, format!("nothing at or above --fail-on {fail_on}")),
    }
}

/// One file's findings at each level: `3 unsafe, 5 to review, 12 safe`.
fn counts_line(findings: &[Finding]) -> String {
    format!(
        "{} unsafe, {} to review, {} safe",
        count(findings, Level::Unsafe),
        count(findings, Level::Review),
        count(findings, Level::Safe)
    )
}

/// `n things`, `thing` made plural unless `n` is 1.
fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// What was read: `package: 2 pickles, 35 sources`.
fn contents(result: &FileResult) -> String {
    let report = &result.report;
    let format = report
        .format
        .map_or_else(|| "unknown format".to_owned(), |f| f.to_string());
    format!(
        "{format}: {}, {}",
        plural(report.pickles, "pickle"),
        plural(report.sources, "source")
    )
}

/// The text of one file's audit (`tpkg audit FILE`).
pub fn write_single(
    out: &mut impl Write,
    result: &FileResult,
    fail_on: Level,
    all: bool,
    style: Style,
) -> io::Result<()> {
    let (code, reason) = exit_reason([result], fail_on);
    let word = verdict_word(result.verdict);
    writeln!(
        out,
        "{}  {}  ({})",
        style.verdict(result.verdict, word),
        style.bold(&result.path),
        contents(result)
    )?;
    writeln!(out, "  exit {code}: {reason}")?;
    writeln!(out, "  {}", counts_line(&result.report.findings))?;
    write_findings(out, &result.report.findings, all, style)
}

/// The text of a folder's or several files' audit.
pub fn write_several(
    out: &mut impl Write,
    results: &[FileResult],
    summary: &Summary,
    fail_on: Level,
    all: bool,
    style: Style,
) -> io::Result<()> {
    for result in results {
        let word = verdict_word(result.verdict);
        let detail = match result.verdict {
            Verdict::Skipped => "not a PyTorch file".to_owned(),
            _ => counts_line(&result.report.findings),
        };
        writeln!(
            out,
            "{} {}  {}",
            style.verdict(result.verdict, &format!("{word:<10}")),
            result.path,
            style.dim(&format!("({detail})"))
        )?;
    }
    let (code, reason) = exit_reason(results, fail_on);
    writeln!(
        out,
        "\n{} files: {} unsafe, {} to review, {} safe, {} unreadable, {} not PyTorch files ({:.2} s)",
        summary.files,
        summary.unsafe_,
        summary.review,
        summary.clean,
        summary.unreadable,
        summary.skipped,
        summary.seconds
    )?;
    writeln!(out, "exit {code}: {reason}")?;
    for result in results {
        let listed = result
            .report
            .findings
            .iter()
            .any(|f| all || f.level > Level::Safe);
        if !listed {
            continue;
        }
        writeln!(
            out,
            "\n{} {}  ({})",
            style.verdict(
                result.verdict,
                &format!("── {}", verdict_word(result.verdict))
            ),
            style.bold(&result.path),
            contents(result)
        )?;
        write_findings(out, &result.report.findings, all, style)?;
    }
    Ok(())
}

/// Unsafe findings with their chains, then review findings by kind (and
/// with `all`, every review and safe finding by kind).
fn write_findings(
    out: &mut impl Write,
    findings: &[Finding],
    all: bool,
    style: Style,
) -> io::Result<()> {
    let unsafe_: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.level == Level::Unsafe)
        .collect();
    if !unsafe_.is_empty() {
        writeln!(
            out,
            "\n{}",
            style.level(
                Level::Unsafe,
                &format!("unsafe ({})", count(findings, Level::Unsafe))
            )
        )?;
        for finding in unsafe_ {
            let times = if finding.count > 1 {
                format!(" (×{})", finding.count)
            } else {
                String::new()
            };
            writeln!(out, "  {}{times}", chain(finding, findings).join(" → "))?;
            writeln!(out, "      {}", style.dim(&finding.reason))?;
        }
    }
    for level in [Level::Review, Level::Safe] {
        if level == Level::Safe && !all {
            let safe = count(findings, Level::Safe);
            if safe > 0 {
                writeln!(
                    out,
                    "\n{}",
                    style.dim(&format!(
                        "{safe} safe findings not listed (--all lists them)"
                    ))
                )?;
            }
            continue;
        }
        write_groups(out, findings, level, all, style)?;
    }
    Ok(())
}

/// One kind's findings at one level.
#[derive(Debug, PartialEq, Eq)]
pub struct Group<'a> {
    /// The kind.
    pub kind: FindingKind,
    /// Findings, repeats counted.
    pub count: usize,
    /// The findings, in report order.
    pub findings: Vec<&'a Finding>,
}

/// `level`'s findings grouped by kind, largest group first (ties in the
/// order kinds first appear).
pub fn groups(findings: &[Finding], level: Level) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for finding in findings.iter().filter(|f| f.level == level) {
        match groups.iter_mut().find(|g| g.kind == finding.kind) {
            Some(group) => {
                group.count += finding.count;
                group.findings.push(finding);
            }
            None => groups.push(Group {
                kind: finding.kind,
                count: finding.count,
                findings: vec![finding],
            }),
        }
    }
    // A stable sort keeps first-appearance order among equal counts.
    groups.sort_by_key(|group| std::cmp::Reverse(group.count));
    groups
}

/// A few distinct subjects of a group, cut to [`EXAMPLE_CHARS`], and how
/// many distinct subjects are left out.
pub fn examples(group: &Group<'_>, limit: usize) -> (Vec<String>, usize) {
    let mut distinct: Vec<&str> = Vec::new();
    for finding in &group.findings {
        if !distinct.contains(&finding.subject.as_str()) {
            distinct.push(&finding.subject);
        }
    }
    let more = distinct.len().saturating_sub(limit);
    let shown = distinct
        .into_iter()
        .take(limit)
        .map(|subject| cut(subject, EXAMPLE_CHARS))
        .collect();
    (shown, more)
}

/// `text` cut to `limit` characters, ending with `…` when cut.
fn cut(text: &str, limit: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(limit.saturating_sub(1)).collect();
    short.push('…');
    short
}

fn write_groups(
    out: &mut impl Write,
    findings: &[Finding],
    level: Level,
    all: bool,
    style: Style,
) -> io::Result<()> {
    let groups = groups(findings, level);
    if groups.is_empty() {
        return Ok(());
    }
    let heading = match level {
        Level::Review => "to review",
        _ => "safe",
    };
    writeln!(
        out,
        "\n{}",
        style.level(
            level,
            &format!("{heading} ({}), by kind", count(findings, level))
        )
    )?;
    let width = groups
        .iter()
        .map(|g| g.kind.as_str().len())
        .max()
        .unwrap_or(0);
    for group in &groups {
        if all {
            writeln!(out, "  {:<width$}  {:>5}", group.kind, group.count)?;
            for finding in &group.findings {
                write_finding_line(out, finding, "      ")?;
            }
            continue;
        }
        let (shown, more) = examples(group, EXAMPLES);
        let more = if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {:<width$}  {:>5}  {}{more}",
            group.kind,
            group.count,
            shown.join(", ")
        )?;
    }
    if !all {
        writeln!(out, "  {}", style.dim("(--all lists every finding)"))?;
    }
    Ok(())
}

/// Where a finding is: `record@offset`, `record:line`, `record`.
fn place(finding: &Finding) -> String {
    match (&finding.record, finding.offset, finding.line) {
        (Some(record), Some(offset), _) => format!("{record}@{offset}"),
        (Some(record), None, Some(line)) => format!("{record}:{line}"),
        (Some(record), None, None) => record.clone(),
        (None, Some(offset), _) => format!("@{offset}"),
        (None, None, _) => String::new(),
    }
}

/// One finding on one line: `place: subject — reason (×n)`.
fn write_finding_line(out: &mut impl Write, finding: &Finding, indent: &str) -> io::Result<()> {
    let times = if finding.count > 1 {
        format!(" (×{})", finding.count)
    } else {
        String::new()
    };
    writeln!(
        out,
        "{indent}{}: {} — {}{times}",
        place(finding),
        finding.subject,
        finding.reason
    )
}

/// Whether a finding is about an interned source (not a pickle).
fn is_source_finding(finding: &Finding) -> bool {
    matches!(
        finding.kind,
        FindingKind::ImportTimeCode
            | FindingKind::DynamicImport
            | FindingKind::DangerousImport
            | FindingKind::PackageCode
            | FindingKind::Shadowing
    ) && finding
        .record
        .as_deref()
        .is_some_and(|r| r.ends_with(".py"))
}

/// Whether a finding is a pickle's own (a global, call, instantiation,
/// BUILD or persistent id at a byte offset of a pickle).
fn is_pickle_finding(finding: &Finding) -> bool {
    matches!(
        finding.kind,
        FindingKind::Import
            | FindingKind::Call
            | FindingKind::Instantiate
            | FindingKind::SetState
            | FindingKind::PersistentId
    ) && finding.offset.is_some()
}

/// The pickle finding that leads to interned code: for a module's import-time
/// code, the first global of that module a pickle imports; for a package
/// function a pickle calls, that call (or instantiation, or BUILD of its
/// class).
fn pickle_link<'a>(
    findings: &'a [Finding],
    module: &str,
    function: Option<&str>,
) -> Option<&'a Finding> {
    let pickles = findings.iter().filter(|f| is_pickle_finding(f));
    match function {
        Some(function) => pickles.filter(|f| f.kind != FindingKind::Import).find(|f| {
            f.subject == function
                || function
                    .strip_prefix(f.subject.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        }),
        None => pickles.filter(|f| f.kind == FindingKind::Import).find(|f| {
            f.subject
                .strip_prefix(module)
                .is_some_and(|rest| rest.starts_with('.'))
        }),
    }
}

/// The steps from what a load reads to what runs: `record → byte N → call
/// os.system`, or `pickle@N imports m.Class → interned m (m.py:3) →
/// os.system`.
pub fn chain(finding: &Finding, findings: &[Finding]) -> Vec<String> {
    let mut steps = Vec::new();
    let record = finding.record.as_deref().unwrap_or("(file)");
    if is_source_finding(finding)
        && let Some(module) = tpkg::files::records::module_of_record(record)
    {
        let (function, rest) = match finding.kind {
            FindingKind::PackageCode => match finding.subject.split_once(" → ") {
                Some((function, rest)) => (Some(function), rest),
                None => (Some(finding.subject.as_str()), ""),
            },
            _ => (None, finding.subject.as_str()),
        };
        if let Some(link) = pickle_link(findings, &module, function) {
            let verb = match link.kind {
                FindingKind::Import => "imports",
                FindingKind::Instantiate => "instantiates",
                FindingKind::SetState => "builds",
                _ => "calls",
            };
            steps.push(format!("{} {verb} {}", place(link), link.subject));
        }
        let line = finding.line.map(|l| format!(":{l}")).unwrap_or_default();
        steps.push(format!("interned {module} ({record}{line})"));
        let what = match finding.kind {
            FindingKind::PackageCode | FindingKind::ImportTimeCode => rest.to_owned(),
            kind => format!("{kind} {rest}"),
        };
        if !rest.is_empty() {
            steps.push(what);
        }
        return steps;
    }
    steps.push(record.to_owned());
    if let Some(offset) = finding.offset {
        steps.push(format!("byte {offset}"));
    }
    if let Some(line) = finding.line {
        steps.push(format!("line {line}"));
    }
    if finding.subject == record {
        steps.push(finding.kind.to_string());
    } else {
        steps.push(format!("{} {}", finding.kind, finding.subject));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(level: Level, kind: FindingKind, record: &str, subject: &str) -> Finding {
        Finding {
            level,
            kind,
            record: Some(record.to_owned()),
            offset: None,
            line: None,
            subject: subject.to_owned(),
            reason: "why".to_owned(),
            count: 1,
        }
    }

    fn at(mut finding: Finding, offset: Option<usize>, line: Option<usize>) -> Finding {
        finding.offset = offset;
        finding.line = line;
        finding
    }

    #[test]
    fn a_pickle_finding_chains_record_offset_and_call() {
        let call = at(
            finding(Level::Unsafe, FindingKind::Call, "x/p.pkl", "os.system"),
            Some(21),
            None,
        );
        assert_eq!(
            chain(&call, std::slice::from_ref(&call)),
            ["x/p.pkl", "byte 21", "call os.system"]
        );
    }

    #[test]
    fn import_time_code_chains_from_the_pickle_global_of_its_module() {
        let findings = [
            at(
                finding(
                    Level::Review,
                    FindingKind::Import,
                    "model/model.pkl",
                    "evil.model.Net",
                ),
                Some(2),
                None,
            ),
            at(
                finding(
                    Level::Unsafe,
                    FindingKind::ImportTimeCode,
                    "evil/model.py",
                    "os.system",
                ),
                None,
                Some(3),
            ),
        ];
        assert_eq!(
            chain(&findings[1], &findings),
            [
                "model/model.pkl@2 imports evil.model.Net",
                "interned evil.model (evil/model.py:3)",
                "os.system"
            ]
        );
        // A global of another module whose name starts the same is no link.
        let other = at(
            finding(
                Level::Review,
                FindingKind::Import,
                "m.pkl",
                "evil.modelling.X",
            ),
            Some(2),
            None,
        );
        assert_eq!(chain(&findings[1], &[other, findings[1].clone()]).len(), 2);
    }

    #[test]
    fn package_code_chains_from_the_pickle_call() {
        let findings = [
            at(
                finding(
                    Level::Review,
                    FindingKind::Import,
                    "m/m.pkl",
                    "evil.helpers.rebuild",
                ),
                Some(22),
                None,
            ),
            at(
                finding(
                    Level::Review,
                    FindingKind::Call,
                    "m/m.pkl",
                    "evil.helpers.rebuild",
                ),
                Some(46),
                None,
            ),
            finding(
                Level::Unsafe,
                FindingKind::PackageCode,
                "evil/helpers.py",
                "evil.helpers.rebuild → os.system",
            ),
        ];
        assert_eq!(
            chain(&findings[2], &findings),
            [
                "m/m.pkl@46 calls evil.helpers.rebuild",
                "interned evil.helpers (evil/helpers.py)",
                "os.system"
            ]
        );
    }

    #[test]
    fn groups_count_repeats_and_put_the_largest_first() {
        let mut repeated = finding(
            Level::Review,
            FindingKind::Extern,
            ".data/extern_modules",
            "os",
        );
        repeated.count = 3;
        let findings = [
            finding(Level::Review, FindingKind::Import, "a.pkl", "m.A"),
            finding(Level::Review, FindingKind::Import, "a.pkl", "m.B"),
            repeated,
            finding(Level::Unsafe, FindingKind::Call, "a.pkl", "os.system"),
            finding(Level::Safe, FindingKind::Import, "a.pkl", "torch.Size"),
        ];
        let review = groups(&findings, Level::Review);
        let summary: Vec<(FindingKind, usize, usize)> = review
            .iter()
            .map(|g| (g.kind, g.count, g.findings.len()))
            .collect();
        assert_eq!(
            summary,
            [(FindingKind::Extern, 3, 1), (FindingKind::Import, 2, 2)]
        );
        assert_eq!(groups(&findings, Level::Safe).len(), 1);
    }

    #[test]
    fn examples_are_distinct_cut_and_counted() {
        let long = "x".repeat(100);
        let findings = [
            finding(Level::Review, FindingKind::Import, "a.pkl", "m.A"),
            finding(Level::Review, FindingKind::Import, "b.pkl", "m.A"),
            finding(Level::Review, FindingKind::Import, "a.pkl", &long),
            finding(Level::Review, FindingKind::Import, "a.pkl", "m.C"),
        ];
        let group = groups(&findings, Level::Review).remove(0);
        let (shown, more) = examples(&group, 2);
        assert_eq!(shown[0], "m.A");
        assert_eq!(shown[1].chars().count(), EXAMPLE_CHARS);
        assert!(shown[1].ends_with('…'));
        assert_eq!(more, 1);
    }

    fn result(verdict: Verdict, findings: Vec<Finding>) -> FileResult {
        FileResult {
            path: "f.pt".into(),
            verdict,
            report: tpkg::audit::AuditReport {
                findings,
                ..Default::default()
            },
        }
    }

    #[test]
    fn the_exit_reason_names_the_threshold_crossed() {
        let review = result(
            Verdict::Review,
            vec![finding(Level::Review, FindingKind::Extern, "e", "os")],
        );
        let clean = result(Verdict::Clean, Vec::new());
        let (code, reason) = exit_reason([&review, &clean], Level::Unsafe);
        assert_eq!(
            (code, reason.as_str()),
            (0, "nothing at or above --fail-on unsafe")
        );
        let (code, reason) = exit_reason([&review, &clean], Level::Review);
        assert_eq!(
            (code, reason.as_str()),
            (1, "review findings, at or above --fail-on review")
        );
        // Unreadable wins over any level, and counts files.
        let unreadable = result(Verdict::Unreadable, Vec::new());
        let (code, reason) = exit_reason([&review, &unreadable, &unreadable], Level::Review);
        assert_eq!(
            (code, reason.as_str()),
            (2, "2 files cannot be read (never clean)")
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let on = Style { color: true };
        let off = Style { color: false };
        assert_eq!(off.level(Level::Unsafe, "unsafe"), "unsafe");
        assert_eq!(on.level(Level::Unsafe, "unsafe"), "\x1b[1;31munsafe\x1b[0m");
    }
}
