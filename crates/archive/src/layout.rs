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

use unicode_normalization::UnicodeNormalization;

/// One oddity in a zip file's structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// Byte offset in the file where it is.
    pub offset: u64,
    /// The entry's name, when it concerns one.
    pub record: Option<String>,
    /// A short, stable name (`local-header-mismatch`, `overlap`, ...).
    pub kind: &'static str,
    /// What exactly.
    pub detail: String,
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

/// Every structural anomaly of the zip file `data`: what makes two zip
/// parsers see different files in the same bytes. The end record, the
/// central directory and every local header are walked without trusting
/// any of them, and each disagreement or oddity is reported with its byte
/// offset. It never fails: damage is an anomaly too.
///
/// ```
/// use tpkg_archive::{PackageWriter, WriteOptions, zip_anomalies};
/// let mut writer = PackageWriter::in_memory(WriteOptions::default()).unwrap();
/// writer.write_record("a.txt", b"hi").unwrap();
/// let mut bytes = writer.finish().unwrap();
/// assert!(zip_anomalies(&bytes).is_empty());
/// bytes.extend_from_slice(b"trailing"); // data after the end record
/// assert_eq!(zip_anomalies(&bytes)[0].kind, "data-after-end-record");
/// ```
pub fn zip_anomalies(data: &[u8]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let anomaly = |offset: u64, record: Option<&str>, kind: &'static str, detail: String| Anomaly {
        offset,
        record: record.map(str::to_owned),
        kind,
        detail,
    };
    let len = data.len() as u64;
    // The end record: the last signature whose comment reaches the end.
    let search_from = len.saturating_sub(22 + 0xFFFF);
    let mut eocd = None;
    let mut at = len.saturating_sub(22);
    loop {
        if u32_at(data, at) == Some(EOCD) {
            eocd = Some(at);
            break;
        }
        if at == search_from || at == 0 {
            break;
        }
        at -= 1;
    }
    let Some(eocd) = eocd else {
        out.push(anomaly(
            0,
            None,
            "no-end-record",
            "no end-of-central-directory record".into(),
        ));
        return out;
    };
    let comment_len = u64::from(u16_at(data, eocd + 20).unwrap_or(0));
    let end = eocd + 22 + comment_len;
    if end < len {
        out.push(anomaly(
            end,
            None,
            "data-after-end-record",
            format!("{} bytes after the end record and its comment", len - end),
        ));
    } else if end > len {
        out.push(anomaly(
            eocd,
            None,
            "truncated",
            "the end record's comment runs past the file".into(),
        ));
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
            out.push(anomaly(
                eocd - 20,
                None,
                "bad-zip64-record",
                "the zip64 locator points at no zip64 end record".into(),
            ));
        }
    }
    // Prepended data shifts every offset by the same amount.
    let cd_start = cd_end_limit.saturating_sub(cd_size);
    let shift = cd_start.saturating_sub(cd_offset);
    if cd_start != cd_offset {
        out.push(anomaly(
            0,
            None,
            "prepended-data",
            format!("the central directory is at {cd_start}, the end record says {cd_offset}"),
        ));
    }

    let mut parsed = Vec::new();
    let mut pos = cd_start;
    for index in 0..entries.min(1 << 20) {
        if u32_at(data, pos) != Some(CENTRAL) {
            out.push(anomaly(
                pos,
                None,
                "bad-central-directory",
                format!("entry {index} has no central header signature"),
            ));
            break;
        }
        let (Some(flags), Some(method), Some(crc)) = (
            u16_at(data, pos + 8),
            u16_at(data, pos + 10),
            u32_at(data, pos + 16),
        ) else {
            break;
        };
        let mut compressed = u64::from(u32_at(data, pos + 20).unwrap_or(0));
        let mut uncompressed = u64::from(u32_at(data, pos + 24).unwrap_or(0));
        let name_len = u64::from(u16_at(data, pos + 28).unwrap_or(0));
        let extra_len = u64::from(u16_at(data, pos + 30).unwrap_or(0));
        let comment_len = u64::from(u16_at(data, pos + 32).unwrap_or(0));
        let mut local_offset = u64::from(u32_at(data, pos + 42).unwrap_or(0));
        let Some(name_bytes) = bytes_at(data, pos + 46, name_len) else {
            out.push(anomaly(
                pos,
                None,
                "truncated",
                "a central entry's name runs past the file".into(),
            ));
            break;
        };
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        // zip64 extended information: the fields whose 32-bit value is all ones.
        let mut extra_at = pos + 46 + name_len;
        let extra_end = extra_at + extra_len;
        while extra_at + 4 <= extra_end {
            let id = u16_at(data, extra_at).unwrap_or(0);
            let size = u64::from(u16_at(data, extra_at + 2).unwrap_or(0));
            if id == 1 {
                let mut field = extra_at + 4;
                for value in [&mut uncompressed, &mut compressed, &mut local_offset] {
                    if *value == u64::from(u32::MAX) && field + 8 <= extra_at + 4 + size {
                        *value = u64_at(data, field).unwrap_or(*value);
                        field += 8;
                    }
                }
            }
            extra_at += 4 + size;
        }
        parsed.push(Entry {
            central_offset: pos,
            name,
            flags,
            method,
            crc,
            compressed,
            uncompressed,
            local_offset: local_offset.saturating_add(shift),
        });
        pos += 46 + name_len + extra_len + comment_len;
    }
    if pos < cd_end_limit && (parsed.len() as u64) == entries {
        out.push(anomaly(
            pos,
            None,
            "unreferenced-bytes",
            format!(
                "{} bytes after the central directory's entries",
                cd_end_limit - pos
            ),
        ));
    }

    // Names: duplicates, and names other tools would take as the same file.
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut seen_exact: HashMap<&str, u64> = HashMap::new();
    for entry in &parsed {
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
            out.push(anomaly(
                entry.central_offset,
                Some(&entry.name),
                "unsafe-name",
                format!("{problem}: extracting it could write outside the target folder"),
            ));
        }
        if let Some(first) = seen_exact.insert(&entry.name, entry.central_offset) {
            out.push(anomaly(
                entry.central_offset,
                Some(&entry.name),
                "duplicate-name",
                format!("also at central offset {first}; parsers disagree on which one wins"),
            ));
            continue;
        }
        let normal: String = entry
            .name
            .replace('\\', "/")
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect::<Vec<_>>()
            .join("/")
            .nfc()
            .collect::<String>()
            .to_lowercase();
        if let Some(other) = seen.insert(normal, &entry.name) {
            out.push(anomaly(
                entry.central_offset,
                Some(&entry.name),
                "names-differ-by-normalisation",
                format!(
                    "{:?} and {other:?} are the same file on some systems",
                    entry.name
                ),
            ));
        }
    }

    // Each entry against its local header, and where its bytes lie.
    let mut spans: Vec<(u64, u64, &str)> = Vec::new();
    for entry in &parsed {
        let name = Some(entry.name.as_str());
        let at = entry.local_offset;
        if entry.flags & 0x0001 != 0 || entry.flags & 0x0040 != 0 || entry.flags & 0x2000 != 0 {
            out.push(anomaly(
                entry.central_offset,
                name,
                "encrypted",
                format!("flag bits {:#06x}: encrypted or masked", entry.flags),
            ));
        }
        if !matches!(entry.method, 0 | 8) {
            out.push(anomaly(
                entry.central_offset,
                name,
                "unusual-compression",
                format!("compression method {}", entry.method),
            ));
        }
        if u32_at(data, at) != Some(LOCAL) {
            out.push(anomaly(
                at,
                name,
                "bad-local-header",
                "no local header where the central directory points".into(),
            ));
            continue;
        }
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
                && (local_compressed != entry.compressed
                    || local_uncompressed != entry.uncompressed)
            {
                mismatches.push(format!(
                    "sizes {local_compressed}/{local_uncompressed} vs {}/{}",
                    entry.compressed, entry.uncompressed
                ));
            }
        }
        if !mismatches.is_empty() {
            out.push(anomaly(
                at,
                name,
                "local-header-mismatch",
                mismatches.join(", "),
            ));
        }
        let data_start = at + 30 + name_len + extra_len;
        let mut span_end = data_start.saturating_add(entry.compressed);
        if descriptor {
            // Optional signature, crc, then 32- or 64-bit sizes.
            let sig = u64::from(u32_at(data, span_end) == Some(DESCRIPTOR)) * 4;
            let wide = entry.compressed >= u64::from(u32::MAX)
                || entry.uncompressed >= u64::from(u32::MAX);
            span_end += sig + 4 + if wide { 16 } else { 8 };
        }
        if span_end > cd_start {
            out.push(anomaly(
                at,
                name,
                "truncated",
                "the entry's data runs into the central directory or past the file".into(),
            ));
        }
        spans.push((at, span_end.min(cd_start), &entry.name));
    }
    spans.sort();
    let mut covered = 0u64;
    let mut previous: Option<&str> = None;
    for (start, end, name) in &spans {
        if *start < covered {
            out.push(anomaly(
                *start,
                Some(name),
                "overlap",
                format!(
                    "its bytes overlap {:?}'s",
                    previous.unwrap_or("another entry")
                ),
            ));
        } else if *start > covered {
            let kind = if covered == 0 {
                "data-before-first-entry"
            } else {
                "unreferenced-bytes"
            };
            out.push(anomaly(
                covered,
                None,
                kind,
                format!("{} bytes no entry accounts for", start - covered),
            ));
        }
        covered = covered.max(*end);
        previous = Some(name);
    }
    if !spans.is_empty() && covered < cd_start {
        out.push(anomaly(
            covered,
            None,
            "unreferenced-bytes",
            format!(
                "{} bytes between the last entry and the central directory",
                cd_start - covered
            ),
        ));
    }
    out
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
        zip_anomalies(data).into_iter().map(|a| a.kind).collect()
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
