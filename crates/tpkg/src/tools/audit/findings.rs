//! Accumulating findings, repeats folded.

use std::collections::BTreeMap;

use super::{Finding, FindingKind, Level};

/// Where a finding is.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct At<'a> {
    pub record: Option<&'a str>,
    pub offset: Option<usize>,
    pub line: Option<usize>,
}

impl<'a> At<'a> {
    pub fn record(record: &'a str) -> Self {
        At {
            record: Some(record),
            ..At::default()
        }
    }

    pub fn offset(record: &'a str, offset: Option<usize>) -> Self {
        At {
            record: Some(record),
            offset,
            line: None,
        }
    }

    pub fn line(record: &'a str, line: usize) -> Self {
        At {
            record: Some(record),
            offset: None,
            line: Some(line),
        }
    }
}

/// A finding to add: what, where, how bad and why.
pub(crate) struct NewFinding<'a> {
    pub level: Level,
    pub kind: FindingKind,
    pub at: At<'a>,
    /// What is imported, called or found.
    pub subject: String,
    pub reason: String,
}

/// Findings in order, the same (record, kind, subject) folded into one
/// with a count (source findings, which have lines, are kept apart).
#[derive(Default)]
pub(crate) struct Findings {
    pub list: Vec<Finding>,
    index: BTreeMap<(String, FindingKind, String), usize>,
}

impl Findings {
    /// A record (or the file) that could not be audited: the subject is
    /// the record.
    pub fn unreadable(&mut self, level: Level, record: &str, reason: String) {
        self.add(NewFinding {
            level,
            kind: FindingKind::Unreadable,
            at: At::record(record),
            subject: record.to_owned(),
            reason,
        });
    }

    pub fn add(&mut self, finding: NewFinding<'_>) {
        let NewFinding {
            level,
            kind,
            at,
            subject,
            reason,
        } = finding;
        let key = (
            at.record.unwrap_or_default().to_owned(),
            kind,
            subject.clone(),
        );
        if at.line.is_none()
            && let Some(&index) = self.index.get(&key)
        {
            let folded = &mut self.list[index];
            folded.count += 1;
            // The worst of the repeats counts.
            if level > folded.level {
                folded.level = level;
                folded.reason = reason;
            }
            return;
        }
        self.index.insert(key, self.list.len());
        self.list.push(Finding {
            level,
            kind,
            record: at.record.map(str::to_owned),
            offset: at.offset,
            line: at.line,
            subject,
            reason,
            count: 1,
        });
    }

    /// Adds a nested file's findings, their records prefixed with where the
    /// nested file is (`outer > inner`).
    pub fn nest(&mut self, place: &str, nested: Vec<Finding>) {
        for mut finding in nested {
            finding.record = Some(match finding.record {
                Some(inner) => format!("{place} > {inner}"),
                None => place.to_owned(),
            });
            let key = (
                finding.record.clone().unwrap_or_default(),
                finding.kind,
                finding.subject.clone(),
            );
            self.index.entry(key).or_insert(self.list.len());
            self.list.push(finding);
        }
    }
}
