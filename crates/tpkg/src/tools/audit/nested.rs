//! Files inside files: a record, a pickle's byte string or the bytes
//! after a legacy file's data audited as a file of their own.

use tpkg_archive::PackageReader;
use tpkg_pickle::{DecodeOptions, Symbolic};

use super::findings::Findings;
use super::stream::audit_stream_at;
use super::zip::audit_zip;
use super::{AuditPolicy, Level, MAX_NESTED_DEPTH};
use crate::formats::{Sniffed, sniff_strict};

/// Audits `bytes` found inside a file (a record, a pickle's byte string)
/// as a file of their own when they are one, adding the findings under
/// `place`. `loaded`: the bytes are certainly loaded as a file (a
/// `_load_from_bytes` argument), so anything unreadable is unsafe; other
/// bytes that do not read as a file are left alone.
pub(super) fn nested_audit(
    bytes: &[u8],
    place: &str,
    policy: &AuditPolicy,
    depth: usize,
    loaded: bool,
    findings: &mut Findings,
) {
    if depth > MAX_NESTED_DEPTH {
        findings.unreadable(
            Level::Unsafe,
            place,
            format!("files nested deeper than {MAX_NESTED_DEPTH}: not audited"),
        );
        return;
    }
    let report = match sniff_strict(bytes) {
        Some(Sniffed::Zip) => match PackageReader::from_bytes(bytes.to_vec()) {
            Ok(reader) => audit_zip(&reader, Some(bytes), policy, depth),
            Err(error) if loaded => {
                findings.unreadable(Level::Unsafe, place, crate::error_chain(&error));
                return;
            }
            Err(_) => return,
        },
        Some(Sniffed::LegacyStream | Sniffed::Tar) => audit_stream_at(bytes, policy, depth),
        Some(Sniffed::Pickle) => {
            let decodes = tpkg_pickle::decode_stream(bytes, &DecodeOptions::default(), &Symbolic)
                .all(|pickle| pickle.is_ok());
            if !decodes && !loaded {
                return;
            }
            audit_stream_at(bytes, policy, depth)
        }
        None if loaded => audit_stream_at(bytes, policy, depth),
        None => return,
    };
    findings.nest(place, report.findings);
}
