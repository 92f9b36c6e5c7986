//! Auditing a file that is not a zip: a legacy `torch.save` (stream or
//! tar form) or a plain pickle file.

use tpkg_pickle::{DecodeOptions, Symbolic};

use super::classify::{Context, Reader};
use super::findings::Findings;
use super::nested::nested_audit;
use super::pickles::PickleAudit;
use super::zip::{is_pickle, undecodable};
use super::{AuditPolicy, AuditReport, Level};

/// Audits every pickle of a legacy `torch.save` file that parsed (see
/// [`audit_stream`]), reading its bytes where they are (the memory map of
/// [`LegacyFile::open`](crate::legacy::LegacyFile::open)).
pub fn audit_legacy(file: &crate::legacy::LegacyFile, policy: &AuditPolicy) -> AuditReport {
    audit_legacy_at(file, policy, 0)
}

fn audit_legacy_at(
    file: &crate::legacy::LegacyFile,
    policy: &AuditPolicy,
    depth: usize,
) -> AuditReport {
    let mut findings = Findings::default();
    let mut report = AuditReport::default();
    let options = DecodeOptions::default();
    let ctx = Context {
        policy,
        interned: &[],
        reader: Reader::Python,
    };
    for span in file.pickles() {
        let label = span.role.name();
        let range = usize::try_from(span.range.start).unwrap_or(usize::MAX)
            ..usize::try_from(span.range.end).unwrap_or(usize::MAX);
        let data = file.bytes().get(range).unwrap_or(&[]);
        match tpkg_pickle::decode_with(data, &options, &Symbolic) {
            Ok(graph) => {
                report.pickles += 1;
                PickleAudit {
                    graph: &graph,
                    data,
                    record: label,
                    ctx,
                    depth,
                    package_calls: Default::default(),
                }
                .run(&mut findings);
            }
            Err(error) => findings.unreadable(
                Level::Unsafe,
                label,
                format!("the pickle does not decode: {error}"),
            ),
        }
    }
    // Bytes torch.load never reads may hold anything another reader would.
    let trailing = file.trailing();
    if !trailing.is_empty() {
        let start = usize::try_from(trailing.start).unwrap_or(usize::MAX);
        let rest = file.bytes().get(start..).unwrap_or(&[]);
        nested_audit(
            rest,
            &format!("(bytes after the data, from byte {start})"),
            policy,
            depth + 1,
            false,
            &mut findings,
        );
    }
    report.findings = findings.list;
    report
}

/// Audits the pickles of `bytes` one after another, as far as they go; a
/// pickle that fails is audited up to its failure (`pickle[i]` labels, in
/// `member` when given).
fn audit_pickles(
    bytes: &[u8],
    member: &str,
    ctx: Context<'_>,
    depth: usize,
    is_legacy: bool,
    report: &mut AuditReport,
    findings: &mut Findings,
) {
    let options = DecodeOptions::default();
    let prefix = if member.is_empty() {
        String::new()
    } else {
        format!("{member}: ")
    };
    let first = report.pickles;
    for pickle in tpkg_pickle::decode_stream(bytes, &options, &Symbolic) {
        let (at, graph, error) = match pickle {
            Ok((at, graph)) => (at, graph, None),
            Err((at, error)) => {
                let (graph, _) = tpkg_pickle::decode_partial(&bytes[at..], &options, &Symbolic);
                (at, graph, Some(error))
            }
        };
        let label = format!("{prefix}pickle[{}]", report.pickles - first);
        if let Some(error) = &error {
            // A legacy stream read past its pickles into raw storage
            // bytes: only a failing first pickle is news.
            if !is_pickle(
                &graph,
                &Err(error.clone()),
                report.pickles == first || !is_legacy,
            ) {
                break;
            }
            findings.unreadable(
                Level::Unsafe,
                &format!("{label} (byte {at})"),
                undecodable(error),
            );
        }
        report.pickles += 1;
        PickleAudit {
            graph: &graph,
            data: &bytes[at..],
            record: &label,
            ctx,
            depth,
            package_calls: Default::default(),
        }
        .run(findings);
    }
}

/// Audits a file that is not a zip: a legacy `torch.save` (stream or tar)
/// or a plain pickle file. Every pickle `torch.load` or `pickle.load`
/// would unpickle is decoded and audited; findings name the pickle by its
/// role in a legacy file (`object`, `sys_info`, ...) or its position in a
/// pickle file (`pickle[1]`, the second), and the offset inside it. When
/// the legacy layout does not parse, the pickles are read one after
/// another from the start (what `torch.load` unpickles before it fails)
/// and the failure is an unsafe `unreadable` finding: unreadable never
/// reads as clean.
pub fn audit_stream(bytes: &[u8], policy: &AuditPolicy) -> AuditReport {
    audit_stream_at(bytes, policy, 0)
}

pub(super) fn audit_stream_at(bytes: &[u8], policy: &AuditPolicy, depth: usize) -> AuditReport {
    let is_legacy = crate::legacy::looks_legacy(bytes) || crate::legacy::looks_legacy_tar(bytes);
    let parsed = is_legacy.then(|| crate::legacy::LegacyFile::from_bytes(bytes.to_vec()));
    if let Some(Ok(file)) = &parsed {
        return audit_legacy_at(file, policy, depth);
    }
    let mut findings = Findings::default();
    let mut report = AuditReport::default();
    let ctx = Context {
        policy,
        interned: &[],
        reader: Reader::Python,
    };
    if let Some(Err(error)) = parsed {
        findings.unreadable(Level::Unsafe, "(file)", crate::error_chain(&error));
    }
    // A damaged tar form: each member's pickles (`torch.load` unpickles
    // `sys_info`, `pickle`, `storages` and `tensors` by name).
    let members = crate::legacy::looks_legacy_tar(bytes)
        .then(|| crate::legacy::list_tar(bytes).ok().flatten())
        .flatten();
    match members {
        Some(members) => {
            for member in members {
                let range = usize::try_from(member.data.start).unwrap_or(usize::MAX)
                    ..usize::try_from(member.data.end).unwrap_or(usize::MAX);
                if let Some(data) = bytes.get(range) {
                    audit_pickles(
                        data,
                        &member.name,
                        ctx,
                        depth,
                        is_legacy,
                        &mut report,
                        &mut findings,
                    );
                }
            }
        }
        None => audit_pickles(bytes, "", ctx, depth, is_legacy, &mut report, &mut findings),
    }
    report.findings = findings.list;
    report
}
