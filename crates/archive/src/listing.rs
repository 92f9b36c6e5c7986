//! `PyTorchStreamReader`'s view of a zip: which archives open, the records
//! `get_all_records()` lists, and which entry each name stands for.
//!
//! On top of miniz's directory ([`crate::miniz`]), PyTorch's reader
//! (`caffe2/serialize/inline_container.cc`) adds its own rules at open:
//! no `PYTORCH1` preview magic, at least one entry, the package folder taken
//! from the first entry's name up to its first `/`, the serialization id
//! readable when present, and a `.data/version` (or `version`) record that
//! `std::stoull` parses to a version between 1 and 10. Listing copies each
//! name through a 512-byte C buffer (so at most 511 bytes, up to the first
//! NUL), requires the folder in front, and pybind11 decodes it as UTF-8.
//! Reading a name locates it with miniz's case-insensitive search, so a
//! listed name may stand for another entry than its own.

use std::borrow::Cow;
use std::io::Read;

use crate::error::{ArchiveError, NameProblem, Result};
use crate::miniz::{self, CentralDirectory, DataLocation, EntryStat, Fault, MAX_LISTED_NAME};
use crate::reader::{Compression, ReadOptions, RecordInfo};

/// The newest file format version PyTorch's reader accepts
/// (`kMaxSupportedFileFormatVersion` in torch 2.13).
pub(crate) const MAX_FORMAT_VERSION: i64 = 10;
/// The oldest (`kMinSupportedFileFormatVersion`).
pub(crate) const MIN_FORMAT_VERSION: i64 = 1;

/// Deflate cannot expand data by more than about 1032:1; a header that
/// claims more is lying, and we refuse it before allocating anything.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Why an entry's bytes cannot be read, found at open and raised when the
/// entry is read (PyTorch too only fails when a record is read).
#[derive(Debug, Clone)]
enum EntryFault {
    /// miniz refuses the entry's header, local header or data.
    Miniz(Fault),
    /// PyTorch hands out `size` bytes of memory miniz never wrote: a
    /// directory entry, or one with no compressed bytes.
    Indeterminate { size: u64 },
    /// Bigger than [`ReadOptions::max_record_size`].
    TooLarge { size: u64, limit: u64 },
    /// Claims more bytes than deflate can produce from its data.
    ImplausibleRatio {
        size: u64,
        compressed_size: u64,
        offset: u64,
    },
}

/// One central directory entry: what reading it gives.
#[derive(Debug, Clone)]
struct Entry {
    info: RecordInfo,
    fault: Option<EntryFault>,
}

/// The zip side of a [`PackageReader`](crate::PackageReader): miniz's
/// directory and each entry's record information.
#[derive(Debug)]
pub(crate) struct ZipIndex {
    directory: CentralDirectory,
    /// The package folder and `/`, as the bytes lookups start with.
    key_prefix: Vec<u8>,
    entries: Vec<Entry>,
}

/// What opening a zip gives: the folder, the listing, the index.
#[derive(Debug)]
pub(crate) struct ZipListing {
    pub prefix: String,
    pub records: Vec<RecordInfo>,
    pub index: ZipIndex,
}

impl ZipIndex {
    /// The entry PyTorch reads for record `name`, as `getRecordID` finds it.
    pub fn locate(&self, data: &[u8], name: &str) -> Option<usize> {
        let mut key = Vec::with_capacity(self.key_prefix.len() + name.len());
        key.extend_from_slice(&self.key_prefix);
        key.extend_from_slice(name.as_bytes());
        self.directory.locate(data, &key)
    }

    /// Record information of entry `index`, or why it cannot be read.
    pub fn entry(&self, label: &str, index: usize) -> Result<&RecordInfo> {
        let entry = self
            .entries
            .get(index)
            .ok_or_else(|| ArchiveError::RecordNotFound {
                archive: label.to_owned(),
                record: format!("#{index}"),
            })?;
        match &entry.fault {
            None => Ok(&entry.info),
            Some(fault) => Err(fault_error(label, &entry.info.name, fault)),
        }
    }

    /// Offset of entry `index`'s central header.
    pub fn header_offset(&self, index: usize) -> Option<u64> {
        self.directory.entry(index).map(|entry| entry.header_offset)
    }

    /// Number of central directory entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

fn fault_error(label: &str, record: &str, fault: &EntryFault) -> ArchiveError {
    match *fault {
        EntryFault::Miniz(fault) => ArchiveError::ZipRefused {
            archive: label.to_owned(),
            record: Some(record.to_owned()),
            structure: fault.structure,
            offset: fault.offset,
            error: fault.error,
        },
        EntryFault::Indeterminate { size } => ArchiveError::IndeterminateRecord {
            archive: label.to_owned(),
            record: record.to_owned(),
            size,
        },
        EntryFault::TooLarge { size, limit } => ArchiveError::LimitExceeded {
            archive: label.to_owned(),
            what: format!("size of record {record:?}"),
            value: size,
            limit,
        },
        EntryFault::ImplausibleRatio {
            size,
            compressed_size,
            offset,
        } => ArchiveError::CorruptZip {
            archive: label.to_owned(),
            offset,
            reason: format!(
                "record {record:?} claims {size} bytes from {compressed_size} deflated bytes"
            ),
        },
    }
}

fn refused(label: &str, fault: Fault) -> ArchiveError {
    ArchiveError::ZipRefused {
        archive: label.to_owned(),
        record: None,
        structure: fault.structure,
        offset: fault.offset,
        error: fault.error,
    }
}

/// Opens `data` as `PyTorchStreamReader` does and lists it as
/// `get_all_records()` does.
pub(crate) fn list_zip(label: &str, data: &[u8], options: &ReadOptions) -> Result<ZipListing> {
    if data.len() > 8 && data.starts_with(b"PYTORCH1") {
        return Err(ArchiveError::NotAZip {
            archive: label.to_owned(),
            reason: "it is in the format of PyTorch's preview release (magic PYTORCH1), which PyTorch no longer reads".to_owned(),
        });
    }
    let directory = CentralDirectory::read(data).map_err(|fault| match fault.error {
        miniz::MinizError::NotAnArchive | miniz::MinizError::FailedFindingCentralDir
            if !data.starts_with(b"PK") =>
        {
            ArchiveError::NotAZip {
                archive: label.to_owned(),
                reason: if data.is_empty() {
                    "the file is empty".to_owned()
                } else {
                    format!("{} ({})", fault.error, fault.structure)
                },
            }
        }
        _ => refused(label, fault),
    })?;
    if directory.len() == 0 {
        return Err(ArchiveError::Empty {
            archive: label.to_owned(),
        });
    }
    if directory.len() > options.max_records {
        return Err(ArchiveError::LimitExceeded {
            archive: label.to_owned(),
            what: "number of entries".to_owned(),
            value: directory.len() as u64,
            limit: options.max_records as u64,
        });
    }
    let first = directory.name(data, 0);
    let bad_name = |name: &[u8], index: usize, problem| ArchiveError::BadName {
        archive: label.to_owned(),
        name: String::from_utf8_lossy(name).into_owned(),
        offset: directory.entry(index).map(|entry| entry.header_offset),
        problem,
    };
    let Some(slash) = first.iter().position(|&b| b == b'/') else {
        return Err(bad_name(first, 0, NameProblem::NoPackageFolder));
    };
    let prefix_bytes = &first[..slash];
    if prefix_bytes.contains(&0) {
        return Err(bad_name(first, 0, NameProblem::Nul));
    }
    let prefix = String::from_utf8_lossy(prefix_bytes).into_owned();
    let mut key_prefix = prefix_bytes.to_vec();
    key_prefix.push(b'/');

    let entries = (0..directory.len())
        .map(|index| describe_entry(data, &directory, &key_prefix, index, options))
        .collect();
    let index = ZipIndex {
        directory,
        key_prefix,
        entries,
    };
    check_bookkeeping(label, data, &index)?;
    let records = list_records(label, data, &index, &prefix)?;
    Ok(ZipListing {
        prefix,
        records,
        index,
    })
}

/// The name `get_all_records()` gives entry `index` (the bytes after the
/// folder), or the error it raises.
fn listed_name<'d>(
    label: &str,
    data: &'d [u8],
    index: &ZipIndex,
    prefix: &str,
    entry: usize,
) -> Result<&'d str> {
    let raw = index.directory.name(data, entry);
    let copied = &raw[..raw.len().min(MAX_LISTED_NAME)];
    let c_string = copied.split(|&b| b == 0).next().unwrap_or(&[]);
    let offset = index.header_offset(entry);
    let Some(rest) = c_string.strip_prefix(index.key_prefix.as_slice()) else {
        return Err(ArchiveError::OutsidePrefix {
            archive: label.to_owned(),
            name: String::from_utf8_lossy(raw).into_owned(),
            prefix: prefix.to_owned(),
            offset: offset.unwrap_or(0),
        });
    };
    std::str::from_utf8(rest).map_err(|_| ArchiveError::BadName {
        archive: label.to_owned(),
        name: String::from_utf8_lossy(raw).into_owned(),
        offset,
        problem: NameProblem::NotUtf8,
    })
}

/// Every listed record, described by the entry its name stands for.
fn list_records(
    label: &str,
    data: &[u8],
    index: &ZipIndex,
    prefix: &str,
) -> Result<Vec<RecordInfo>> {
    let mut records = Vec::with_capacity(index.len());
    for entry in 0..index.len() {
        let name = listed_name(label, data, index, prefix, entry)?;
        let found = index.locate(data, name).unwrap_or(entry);
        let mut info = index.entries[found].info.clone();
        info.name = name.to_owned();
        records.push(info);
    }
    Ok(records)
}

/// `mz_zip_reader_file_stat` and the local-header walk of
/// `mz_zip_reader_extract_to_mem` for one entry, done once at open; a
/// failure is kept for when the entry is read.
fn describe_entry(
    data: &[u8],
    directory: &CentralDirectory,
    key_prefix: &[u8],
    index: usize,
    options: &ReadOptions,
) -> Entry {
    let raw = directory.name(data, index);
    let name = String::from_utf8_lossy(raw.strip_prefix(key_prefix).unwrap_or(raw)).into_owned();
    let unreadable = |fault| Entry {
        info: RecordInfo {
            name: name.clone(),
            size: 0,
            compressed_size: 0,
            compression: Compression::Stored,
            crc32: None,
            data_offset: None,
        },
        fault: Some(fault),
    };
    let stat = match directory.stat(data, index) {
        Ok(stat) => stat,
        Err(fault) => return unreadable(EntryFault::Miniz(fault)),
    };
    let compression = if stat.method == 0 {
        Compression::Stored
    } else {
        Compression::Deflated
    };
    let mut info = RecordInfo {
        name,
        size: stat.size,
        // miniz reads `size` bytes of a stored entry, whatever the
        // compressed size says.
        compressed_size: if compression == Compression::Stored {
            stat.size
        } else {
            stat.compressed_size
        },
        compression,
        crc32: Some(stat.crc32),
        data_offset: None,
    };
    let fault = locate_data(data, directory, index, &stat, &mut info, options).err();
    Entry { info, fault }
}

fn locate_data(
    data: &[u8],
    directory: &CentralDirectory,
    index: usize,
    stat: &EntryStat,
    info: &mut RecordInfo,
    options: &ReadOptions,
) -> Result<(), EntryFault> {
    if stat.size > options.max_record_size {
        return Err(EntryFault::TooLarge {
            size: stat.size,
            limit: options.max_record_size,
        });
    }
    let location = directory
        .locate_data(data, index, stat)
        .map_err(EntryFault::Miniz)?;
    let data_at = match location {
        DataLocation::Untouched if stat.size == 0 => {
            // An empty record: its bytes are nowhere and nothing.
            info.data_offset = Some(0);
            info.compression = Compression::Stored;
            info.compressed_size = 0;
            return Ok(());
        }
        DataLocation::Untouched => return Err(EntryFault::Indeterminate { size: stat.size }),
        DataLocation::At(at) => at,
    };
    let readable_to = data_at.checked_add(info.compressed_size);
    if readable_to.is_none_or(|end| end > data.len() as u64) {
        // miniz's read of the stored bytes comes back short.
        return Err(EntryFault::Miniz(Fault {
            error: miniz::MinizError::FileReadFailed,
            structure: miniz::ZipStructure::EntryData { index },
            offset: data_at,
        }));
    }
    if info.compression == Compression::Deflated
        && stat.size
            > stat
                .compressed_size
                .saturating_mul(MAX_DEFLATE_RATIO)
                .saturating_add(64)
    {
        return Err(EntryFault::ImplausibleRatio {
            size: stat.size,
            compressed_size: stat.compressed_size,
            offset: data_at,
        });
    }
    info.data_offset = Some(data_at);
    Ok(())
}

/// The bytes of entry `index` (stored: a slice; deflated: inflated to its
/// declared size), for the records PyTorch reads while opening.
fn read_entry<'d>(
    label: &str,
    data: &'d [u8],
    index: &ZipIndex,
    entry: usize,
) -> Result<Cow<'d, [u8]>> {
    let info = index.entry(label, entry)?;
    let (Some(start), Ok(size)) = (info.data_offset, usize::try_from(info.size)) else {
        return Err(ArchiveError::RecordNotFound {
            archive: label.to_owned(),
            record: info.name.clone(),
        });
    };
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let compressed_len = usize::try_from(info.compressed_size).unwrap_or(usize::MAX);
    let stored = data
        .get(start..start.saturating_add(compressed_len))
        .unwrap_or(&[]);
    match info.compression {
        Compression::Stored => Ok(Cow::Borrowed(stored.get(..size).unwrap_or(stored))),
        Compression::Deflated => {
            let mut out = Vec::with_capacity(size.min(1 << 20));
            flate2::read::DeflateDecoder::new(stored)
                .take(info.size)
                .read_to_end(&mut out)
                .map_err(|error| ArchiveError::CorruptZip {
                    archive: label.to_owned(),
                    offset: start as u64,
                    reason: format!("record {:?}: {error}", info.name),
                })?;
            if out.len() != size {
                return Err(ArchiveError::SizeMismatch {
                    archive: label.to_owned(),
                    record: info.name.clone(),
                    declared: info.size,
                    actual: out.len() as u64,
                    at_least: false,
                });
            }
            Ok(Cow::Owned(out))
        }
    }
}

/// What `PyTorchStreamReader::init` reads: the serialization id when there
/// is one, and the format version, which must parse and be supported.
fn check_bookkeeping(label: &str, data: &[u8], index: &ZipIndex) -> Result<()> {
    if let Some(entry) = index.locate(data, ".data/serialization_id") {
        read_entry(label, data, index, entry)?;
    }
    let (record, entry) = match index.locate(data, ".data/version") {
        Some(entry) => (".data/version", entry),
        None => match index.locate(data, "version") {
            Some(entry) => ("version", entry),
            None => {
                return Err(ArchiveError::BadMetadata {
                    archive: label.to_owned(),
                    record: ".data/version".to_owned(),
                    reason: "there is no version record (neither .data/version nor version), so PyTorch refuses the archive".to_owned(),
                });
            }
        },
    };
    let text = read_entry(label, data, index, entry)?;
    let bad = |reason: String| ArchiveError::BadMetadata {
        archive: label.to_owned(),
        record: record.to_owned(),
        reason,
    };
    let version = parse_stoull(&text).ok_or_else(|| {
        bad(format!(
            "the version {:?} does not parse as an unsigned integer",
            String::from_utf8_lossy(&text)
        ))
    })?;
    // PyTorch keeps the value in a signed 64-bit integer.
    let version = version as i64;
    if !(MIN_FORMAT_VERSION..=MAX_FORMAT_VERSION).contains(&version) {
        return Err(bad(format!(
            "format version {version} is outside what PyTorch reads ({MIN_FORMAT_VERSION} to {MAX_FORMAT_VERSION})"
        )));
    }
    Ok(())
}

/// C++'s `std::stoull(text)`: optional leading whitespace, an optional sign
/// (a minus negates modulo 2^64), decimal digits up to the first non-digit;
/// `None` when there are no digits or the digits overflow.
pub(crate) fn parse_stoull(text: &[u8]) -> Option<u64> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = text.iter().position(|b| !is_space(b))?;
    let mut rest = &text[start..];
    let negative = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in &rest[..digits] {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

#[cfg(test)]
mod tests {
    use super::parse_stoull;

    #[test]
    fn stoull_reads_as_cpp_does() {
        assert_eq!(parse_stoull(b"3\n"), Some(3));
        assert_eq!(parse_stoull(b" \n+7abc"), Some(7));
        assert_eq!(parse_stoull(b"-1"), Some(u64::MAX));
        assert_eq!(parse_stoull(b"abc"), None);
        assert_eq!(parse_stoull(b""), None);
        assert_eq!(parse_stoull(b"-"), None);
        assert_eq!(parse_stoull(b"99999999999999999999999"), None);
        assert_eq!(parse_stoull(b"18446744073709551615"), Some(u64::MAX));
    }
}
