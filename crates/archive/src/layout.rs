//! The raw layout of a zip file, for auditing: what makes two zip parsers
//! see different files in the same bytes.
//!
//! [`PackageReader`](crate::PackageReader) reads the central directory, as
//! PyTorch's reader does; tools that stream local headers, or that resolve
//! duplicate names or case differently, can see other contents. This module
//! walks the end record, the central directory and every local header
//! without trusting any of them, and reports each disagreement or oddity
//! with its byte offset. It never fails: damage is an anomaly too.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use unicode_normalization::UnicodeNormalization;

/// One oddity in a zip file's structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// Byte offset in the file where it is.
    pub offset: u64,
    /// The entry's name, when it concerns one.
    pub record: Option<String>,
    /// What kind of oddity; [`AnomalyKind::as_str`] gives its short, stable
    /// name (`local-header-mismatch`, `overlap`, ...).
    pub kind: AnomalyKind,
    /// What exactly.
    pub detail: String,
}

/// The kinds of [`Anomaly`]. Serialized (and shown) as the short, stable
/// kebab-case names [`as_str`](Self::as_str) gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AnomalyKind {
    /// `no-end-record`: no end-of-central-directory record.
    NoEndRecord,
    /// `data-after-end-record`: bytes after the end record and its comment.
    DataAfterEndRecord,
    /// `truncated`: a record or an entry's data runs past where it may.
    Truncated,
    /// `bad-zip64-record`: the zip64 locator points at no zip64 end record.
    BadZip64Record,
    /// `prepended-data`: the central directory is not where the end record
    /// says (bytes were put before the zip).
    PrependedData,
    /// `bad-central-directory`: an entry has no central header signature.
    BadCentralDirectory,
    /// `unreferenced-bytes`: bytes no entry or directory accounts for.
    UnreferencedBytes,
    /// `unsafe-name`: extracting the entry could write outside the folder.
    UnsafeName,
    /// `duplicate-name`: two entries with one name.
    DuplicateName,
    /// `names-differ-by-normalisation`: names that are the same file on
    /// some systems (case, Unicode normalisation, separators).
    NamesDifferByNormalisation,
    /// `encrypted`: flag bits for encryption or masking.
    Encrypted,
    /// `unusual-compression`: neither stored nor deflated.
    UnusualCompression,
    /// `bad-local-header`: no local header where the central directory points.
    BadLocalHeader,
    /// `local-header-mismatch`: the local header says something else than
    /// the central directory.
    LocalHeaderMismatch,
    /// `overlap`: two entries' bytes overlap.
    Overlap,
    /// `data-before-first-entry`: bytes before the first entry.
    DataBeforeFirstEntry,
}

impl AnomalyKind {
    /// The short, stable name, as in reports (`local-header-mismatch`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::NoEndRecord => "no-end-record",
            AnomalyKind::DataAfterEndRecord => "data-after-end-record",
            AnomalyKind::Truncated => "truncated",
            AnomalyKind::BadZip64Record => "bad-zip64-record",
            AnomalyKind::PrependedData => "prepended-data",
            AnomalyKind::BadCentralDirectory => "bad-central-directory",
            AnomalyKind::UnreferencedBytes => "unreferenced-bytes",
            AnomalyKind::UnsafeName => "unsafe-name",
            AnomalyKind::DuplicateName => "duplicate-name",
            AnomalyKind::NamesDifferByNormalisation => "names-differ-by-normalisation",
            AnomalyKind::Encrypted => "encrypted",
            AnomalyKind::UnusualCompression => "unusual-compression",
            AnomalyKind::BadLocalHeader => "bad-local-header",
            AnomalyKind::LocalHeaderMismatch => "local-header-mismatch",
            AnomalyKind::Overlap => "overlap",
            AnomalyKind::DataBeforeFirstEntry => "data-before-first-entry",
        }
    }
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for AnomalyKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

const EOCD: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EOCD: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;

fn u16_at(data: &[u8], at: u64) -> Option<u16> {
    let at = usize::try_from(at).ok()?;
    Some(u16::from_le_bytes(
        data.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(data: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    Some(u32::from_le_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(data: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    Some(u64::from_le_bytes(
        data.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn bytes_at(data: &[u8], at: u64, len: u64) -> Option<&[u8]> {
    let at = usize::try_from(at).ok()?;
    let len = usize::try_from(len).ok()?;
    data.get(at..at.checked_add(len)?)
}

/// One central-directory entry, sizes and offset resolved through zip64.
struct Entry {
    central_offset: u64,
    name: String,
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

/// Where the central directory is, as the end records say.
struct Directory {
    /// Entries the end record (or its zip64 twin) counts.
    entries: u64,
    /// Where the central directory actually starts.
    start: u64,
    /// Where it must end: the zip64 end record, or the end record.
    end_limit: u64,
    /// How far prepended data shifts every offset.
    shift: u64,
}

/// The anomalies found so far.
#[derive(Default)]
struct Anomalies(Vec<Anomaly>);

impl Anomalies {
    fn push(&mut self, offset: u64, record: Option<&str>, kind: AnomalyKind, detail: String) {
        self.0.push(Anomaly {
            offset,
            record: record.map(str::to_owned),
            kind,
            detail,
        });
    }
}

/// Every structural anomaly of the zip file `data`: what makes two zip
/// parsers see different files in the same bytes. The end record, the
/// central directory and every local header are walked without trusting
/// any of them, and each disagreement or oddity is reported with its byte
/// offset. It never fails: damage is an anomaly too.
///
/// ```
/// use tpkg_archive::{AnomalyKind, PackageWriter, WriteOptions, zip_anomalies};
/// let mut writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
/// writer.write_record("a.txt", b"hi").unwrap();
/// let mut bytes = writer.finish().unwrap();
/// assert!(zip_anomalies(&bytes).is_empty());
/// bytes.extend_from_slice(b"trailing"); // data after the end record
/// assert_eq!(zip_anomalies(&bytes)[0].kind, AnomalyKind::DataAfterEndRecord);
/// assert_eq!(zip_anomalies(&bytes)[0].kind.as_str(), "data-after-end-record");
/// ```
pub fn zip_anomalies(data: &[u8]) -> Vec<Anomaly> {
    let mut out = Anomalies::default();
    let Some(eocd) = find_end_record(data) else {
        out.push(
            0,
            None,
            AnomalyKind::NoEndRecord,
            "no end-of-central-directory record".into(),
        );
        return out.0;
    };
    let directory = read_end_records(data, eocd, &mut out);
    let parsed = central_entries(data, &directory, &mut out);
    check_names(&parsed, &mut out);
    let spans = check_local_headers(data, &parsed, directory.start, &mut out);
    check_coverage(spans, directory.start, &mut out);
    out.0
}

/// The end record: the last signature whose comment reaches the end.
fn find_end_record(data: &[u8]) -> Option<u64> {
    let len = data.len() as u64;
    let search_from = len.saturating_sub(22 + 0xFFFF);
    let mut at = len.saturating_sub(22);
    loop {
        if u32_at(data, at) == Some(EOCD) {
            return Some(at);
        }
        if at == search_from || at == 0 {
            return None;
        }
        at -= 1;
    }
}

/// The end record at `eocd` and its zip64 twin: where the central directory
/// is, and what lies around them.
fn read_end_records(data: &[u8], eocd: u64, out: &mut Anomalies) -> Directory {
    let len = data.len() as u64;
    let comment_len = u64::from(u16_at(data, eocd + 20).unwrap_or(0));
    let end = eocd + 22 + comment_len;
    if end < len {
        out.push(
            end,
            None,
            AnomalyKind::DataAfterEndRecord,
            format!("{} bytes after the end record and its comment", len - end),
        );
    } else if end > len {
        out.push(
            eocd,
            None,
            AnomalyKind::Truncated,
            "the end record's comment runs past the file".into(),
        );
    }
    let mut entries = u64::from(u16_at(data, eocd + 10).unwrap_or(0));
    let mut cd_size = u64::from(u32_at(data, eocd + 12).unwrap_or(0));
    let mut cd_offset = u64::from(u32_at(data, eocd + 16).unwrap_or(0));
    let mut cd_end_limit = eocd;
    if eocd >= 20 && u32_at(data, eocd - 20) == Some(ZIP64_LOCATOR) {
        let zip64_at = u64_at(data, eocd - 12).unwrap_or(u64::MAX);
        if u32_at(data, zip64_at) == Some(ZIP64_EOCD) {
            entries = u64_at(data, zip64_at + 32).unwrap_or(entries);
            cd_size = u64_at(data, zip64_at + 40).unwrap_or(cd_size);
            cd_offset = u64_at(data, zip64_at + 48).unwrap_or(cd_offset);
            cd_end_limit = zip64_at;
        } else {
            out.push(
                eocd - 20,
                None,
                AnomalyKind::BadZip64Record,
                "the zip64 locator points at no zip64 end record".into(),
            );
        }
    }
    // Prepended data shifts every offset by the same amount.
    let cd_start = cd_end_limit.saturating_sub(cd_size);
    if cd_start != cd_offset {
        out.push(
            0,
            None,
            AnomalyKind::PrependedData,
            format!("the central directory is at {cd_start}, the end record says {cd_offset}"),
        );
    }
    Directory {
        entries,
        start: cd_start,
        end_limit: cd_end_limit,
        shift: cd_start.saturating_sub(cd_offset),
    }
}

/// The central directory's entries, as far as they can be read.
fn central_entries(data: &[u8], directory: &Directory, out: &mut Anomalies) -> Vec<Entry> {
    let mut parsed = Vec::new();
    let mut pos = directory.start;
    for index in 0..directory.entries.min(1 << 20) {
        if u32_at(data, pos) != Some(CENTRAL) {
            out.push(
                pos,
                None,
                AnomalyKind::BadCentralDirectory,
                format!("entry {index} has no central header signature"),
            );
            break;
        }
        let Some((entry, next)) = central_entry(data, pos, directory.shift, out) else {
            break;
        };
        parsed.push(entry);
        pos = next;
    }
    if pos < directory.end_limit && (parsed.len() as u64) == directory.entries {
        out.push(
            pos,
            None,
            AnomalyKind::UnreferencedBytes,
            format!(
                "{} bytes after the central directory's entries",
                directory.end_limit - pos
            ),
        );
    }
    parsed
}

/// The central entry at `pos` (its signature checked), and where the next
/// one starts; `None` when it runs past the file.
fn central_entry(data: &[u8], pos: u64, shift: u64, out: &mut Anomalies) -> Option<(Entry, u64)> {
    let (Some(flags), Some(method), Some(crc)) = (
        u16_at(data, pos + 8),
        u16_at(data, pos + 10),
        u32_at(data, pos + 16),
    ) else {
        return None;
    };
    let mut compressed = u64::from(u32_at(data, pos + 20).unwrap_or(0));
    let mut uncompressed = u64::from(u32_at(data, pos + 24).unwrap_or(0));
    let name_len = u64::from(u16_at(data, pos + 28).unwrap_or(0));
    let extra_len = u64::from(u16_at(data, pos + 30).unwrap_or(0));
    let comment_len = u64::from(u16_at(data, pos + 32).unwrap_or(0));
    let mut local_offset = u64::from(u32_at(data, pos + 42).unwrap_or(0));
    let Some(name_bytes) = bytes_at(data, pos + 46, name_len) else {
        out.push(
            pos,
            None,
            AnomalyKind::Truncated,
            "a central entry's name runs past the file".into(),
        );
        return None;
    };
    let name = String::from_utf8_lossy(name_bytes).into_owned();
    let extra_at = pos + 46 + name_len;
    let fields = [&mut uncompressed, &mut compressed, &mut local_offset];
    apply_zip64_extra(data, extra_at, extra_at + extra_len, fields);
    let entry = Entry {
        central_offset: pos,
        name,
        flags,
        method,
        crc,
        compressed,
        uncompressed,
        local_offset: local_offset.saturating_add(shift),
    };
    Some((entry, pos + 46 + name_len + extra_len + comment_len))
}

/// zip64 extended information in the extra fields `extra_at..extra_end`:
/// replaces the `fields` (uncompressed size, compressed size, local header
/// offset) whose 32-bit value is all ones.
fn apply_zip64_extra(data: &[u8], mut extra_at: u64, extra_end: u64, fields: [&mut u64; 3]) {
    let mut fields = fields;
    while extra_at + 4 <= extra_end {
        let id = u16_at(data, extra_at).unwrap_or(0);
        let size = u64::from(u16_at(data, extra_at + 2).unwrap_or(0));
        if id == 1 {
            let mut field = extra_at + 4;
            for value in fields.iter_mut() {
                if **value == u64::from(u32::MAX) && field + 8 <= extra_at + 4 + size {
                    **value = u64_at(data, field).unwrap_or(**value);
                    field += 8;
                }
            }
        }
        extra_at += 4 + size;
    }
}

/// Names: unsafe ones, duplicates, and names other tools would take as the
/// same file.
fn check_names(parsed: &[Entry], out: &mut Anomalies) {
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut seen_exact: HashMap<&str, u64> = HashMap::new();
    for entry in parsed {
        // PyTorch reads any name; a tool that extracts it could write
        // outside its folder ("zip slip").
        // Folder entries (`pkg/`, `pkg/.data/`) end with `/`.
        let in_folder = entry.name.split_once('/').map_or("", |(_, rest)| rest);
        let path = in_folder.strip_suffix('/').unwrap_or(in_folder);
        if let Err(problem) = crate::name::validate_record_name(path).or_else(|problem| {
            if path.is_empty() {
                Ok(())
            } else {
                Err(problem)
            }
        }) {
            out.push(
                entry.central_offset,
                Some(&entry.name),
                AnomalyKind::UnsafeName,
                format!("{problem}: extracting it could write outside the target folder"),
            );
        }
        if let Some(first) = seen_exact.insert(&entry.name, entry.central_offset) {
            out.push(
                entry.central_offset,
                Some(&entry.name),
                AnomalyKind::DuplicateName,
                format!("also at central offset {first}; parsers disagree on which one wins"),
            );
            continue;
        }
        if let Some(other) = seen.insert(normalised(&entry.name), &entry.name) {
            out.push(
                entry.central_offset,
                Some(&entry.name),
                AnomalyKind::NamesDifferByNormalisation,
                format!(
                    "{:?} and {other:?} are the same file on some systems",
                    entry.name
                ),
            );
        }
    }
}

/// A name as a tool that folds separators, `.` parts, Unicode
/// normalisation and case sees it.
fn normalised(name: &str) -> String {
    name.replace('\\', "/")
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect::<Vec<_>>()
        .join("/")
        .nfc()
        .collect::<String>()
        .to_lowercase()
}

/// Each entry against its local header; returns where each entry's bytes
/// lie (start, end, name), cut at the central directory.
fn check_local_headers<'e>(
    data: &[u8],
    parsed: &'e [Entry],
    cd_start: u64,
    out: &mut Anomalies,
) -> Vec<(u64, u64, &'e str)> {
    let mut spans = Vec::new();
    for entry in parsed {
        let name = Some(entry.name.as_str());
        let at = entry.local_offset;
        if entry.flags & 0x0001 != 0 || entry.flags & 0x0040 != 0 || entry.flags & 0x2000 != 0 {
            out.push(
                entry.central_offset,
                name,
                AnomalyKind::Encrypted,
                format!("flag bits {:#06x}: encrypted or masked", entry.flags),
            );
        }
        if !matches!(entry.method, 0 | 8) {
            out.push(
                entry.central_offset,
                name,
                AnomalyKind::UnusualCompression,
                format!("compression method {}", entry.method),
            );
        }
        if u32_at(data, at) != Some(LOCAL) {
            out.push(
                at,
                name,
                AnomalyKind::BadLocalHeader,
                "no local header where the central directory points".into(),
            );
            continue;
        }
        let span_end = check_local_header(data, entry, out);
        if span_end > cd_start {
            out.push(
                at,
                name,
                AnomalyKind::Truncated,
                "the entry's data runs into the central directory or past the file".into(),
            );
        }
        spans.push((at, span_end.min(cd_start), entry.name.as_str()));
    }
    spans
}

/// Compares the local header of `entry` (its signature checked) with the
/// central entry, and returns where the entry's bytes end (data and data
/// descriptor).
fn check_local_header(data: &[u8], entry: &Entry, out: &mut Anomalies) -> u64 {
    let at = entry.local_offset;
    let local_flags = u16_at(data, at + 6).unwrap_or(0);
    let local_method = u16_at(data, at + 8).unwrap_or(0);
    let local_crc = u32_at(data, at + 14).unwrap_or(0);
    let local_compressed = u64::from(u32_at(data, at + 18).unwrap_or(0));
    let local_uncompressed = u64::from(u32_at(data, at + 22).unwrap_or(0));
    let name_len = u64::from(u16_at(data, at + 26).unwrap_or(0));
    let extra_len = u64::from(u16_at(data, at + 28).unwrap_or(0));
    let local_name = bytes_at(data, at + 30, name_len).map(String::from_utf8_lossy);
    let mut mismatches = Vec::new();
    if local_name.as_deref() != Some(entry.name.as_str()) {
        mismatches.push(format!(
            "name {:?}",
            local_name.as_deref().unwrap_or("<truncated>")
        ));
    }
    if local_method != entry.method {
        mismatches.push(format!("compression {local_method} vs {}", entry.method));
    }
    if (local_flags ^ entry.flags) & !0x0008 != 0 {
        mismatches.push(format!("flags {local_flags:#06x} vs {:#06x}", entry.flags));
    }
    let descriptor = local_flags & 0x0008 != 0;
    if !descriptor || local_crc != 0 {
        if local_crc != entry.crc {
            mismatches.push(format!("crc {local_crc:#010x} vs {:#010x}", entry.crc));
        }
        let sizes_are_zip64 = local_compressed == u64::from(u32::MAX);
        if !sizes_are_zip64
            && (local_compressed != entry.compressed || local_uncompressed != entry.uncompressed)
        {
            mismatches.push(format!(
                "sizes {local_compressed}/{local_uncompressed} vs {}/{}",
                entry.compressed, entry.uncompressed
            ));
        }
    }
    if !mismatches.is_empty() {
        out.push(
            at,
            Some(&entry.name),
            AnomalyKind::LocalHeaderMismatch,
            mismatches.join(", "),
        );
    }
    let data_start = at + 30 + name_len + extra_len;
    let mut span_end = data_start.saturating_add(entry.compressed);
    if descriptor {
        // Optional signature, crc, then 32- or 64-bit sizes.
        let sig = u64::from(u32_at(data, span_end) == Some(DESCRIPTOR)) * 4;
        let wide =
            entry.compressed >= u64::from(u32::MAX) || entry.uncompressed >= u64::from(u32::MAX);
        span_end += sig + 4 + if wide { 16 } else { 8 };
    }
    span_end
}

/// Where the entries' bytes lie: overlaps, and bytes before, between and
/// after them that no entry accounts for.
fn check_coverage(mut spans: Vec<(u64, u64, &str)>, cd_start: u64, out: &mut Anomalies) {
    spans.sort();
    let mut covered = 0u64;
    let mut previous: Option<&str> = None;
    for (start, end, name) in &spans {
        if *start < covered {
            out.push(
                *start,
                Some(name),
                AnomalyKind::Overlap,
                format!(
                    "its bytes overlap {:?}'s",
                    previous.unwrap_or("another entry")
                ),
            );
        } else if *start > covered {
            let kind = if covered == 0 {
                AnomalyKind::DataBeforeFirstEntry
            } else {
                AnomalyKind::UnreferencedBytes
            };
            out.push(
                covered,
                None,
                kind,
                format!("{} bytes no entry accounts for", start - covered),
            );
        }
        covered = covered.max(*end);
        previous = Some(name);
    }
    if !spans.is_empty() && covered < cd_start {
        out.push(
            covered,
            None,
            AnomalyKind::UnreferencedBytes,
            format!(
                "{} bytes between the last entry and the central directory",
                cd_start - covered
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PackageWriter, WriteOptions};

    fn package() -> Vec<u8> {
        let mut writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
        writer.write_record("pkg/a.py", b"import os\n").unwrap();
        writer.write_record("pkg/b.txt", b"hello").unwrap();
        writer.finish().unwrap()
    }

    fn kinds(data: &[u8]) -> Vec<&'static str> {
        zip_anomalies(data)
            .into_iter()
            .map(|a| a.kind.as_str())
            .collect()
    }

    #[test]
    fn kinds_serialize_as_their_names() {
        use AnomalyKind::*;
        for kind in [
            NoEndRecord,
            DataAfterEndRecord,
            Truncated,
            BadZip64Record,
            PrependedData,
            BadCentralDirectory,
            UnreferencedBytes,
            UnsafeName,
            DuplicateName,
            NamesDifferByNormalisation,
            Encrypted,
            UnusualCompression,
            BadLocalHeader,
            LocalHeaderMismatch,
            Overlap,
            DataBeforeFirstEntry,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(kind.to_string(), kind.as_str());
        }
    }

    #[test]
    fn a_clean_package_has_no_anomalies() {
        assert!(
            kinds(&package()).is_empty(),
            "{:?}",
            zip_anomalies(&package())
        );
    }

    #[test]
    fn damage_is_reported_not_fatal() {
        let clean = package();
        // Prepended bytes.
        let mut prepended = b"MZ-stub".to_vec();
        prepended.extend_from_slice(&clean);
        assert!(kinds(&prepended).contains(&"prepended-data"));
        // A local header's name changed: parsers that stream see another file.
        let mut renamed = clean.clone();
        let at = renamed.windows(8).position(|w| w == b"pkg/a.py").unwrap();
        renamed[at + 4] = b'z';
        assert!(
            kinds(&renamed).contains(&"local-header-mismatch"),
            "{:?}",
            kinds(&renamed)
        );
        // Truncation and garbage never panic.
        for cut in (0..clean.len()).step_by(97) {
            let _ = zip_anomalies(&clean[..cut]);
        }
        assert_eq!(kinds(b""), ["no-end-record"]);
    }
}
