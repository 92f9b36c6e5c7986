//! The zip directory exactly as PyTorch's reader sees it.
//!
//! PyTorch reads every archive (`torch.load`, `torch.jit.load`,
//! `PackageImporter`) through `PyTorchStreamReader`, which sits on the miniz
//! library (`third_party/miniz-3.0.2`, built with
//! `MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS`). A reader that disagrees with it
//! about which archives open, which entries exist, or which bytes a name
//! stands for is a parser differential: the way scanners are bypassed. So
//! this module is a port of miniz's rules, quirks included, not a general zip
//! parser:
//!
//! - the end record is the *last* `PK\5\6` with 22 bytes after it, found by
//!   miniz's windowed backward scan (the comment length is never checked);
//! - a zip64 locator right before it and a zip64 end record where it points
//!   replace the classic counts, size and offset; no other consistency check;
//! - the central directory is read at the recorded offset, never at an
//!   offset adjusted for bytes in front of the archive (Python's `zipfile`
//!   and the `zip` crate do adjust, so they read archives PyTorch refuses);
//! - each central header is checked as `mz_zip_reader_read_central_dir`
//!   does (including its zip64-extra quirk of reading past the directory
//!   from the directory's start);
//! - names are looked up case-insensitively (ASCII) by miniz's binary search
//!   over its heap-sorted index, so with two names that differ only in case
//!   the one miniz finds is the one PyTorch reads;
//! - a record's data is located through its local header only when read, as
//!   `mz_zip_reader_extract_to_mem` does; empty and directory entries are
//!   never located.
//!
//! Everything here works on the archive's bytes; reads past the end return
//! short, as PyTorch's `FileAdapter` does.

use std::fmt;
use std::ops::Range;

/// Sizes of the fixed parts of zip structures.
const END_RECORD_SIZE: u64 = 22;
const ZIP64_LOCATOR_SIZE: u64 = 20;
const ZIP64_END_RECORD_SIZE: u64 = 56;
const CENTRAL_HEADER_SIZE: u64 = 46;
const LOCAL_HEADER_SIZE: u64 = 30;

const END_RECORD_SIGNATURE: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const ZIP64_END_RECORD_SIGNATURE: u32 = 0x0606_4b50;
const CENTRAL_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const LOCAL_HEADER_SIGNATURE: u32 = 0x0403_4b50;

const ZIP64_EXTRA_FIELD: u32 = 0x0001;
/// General purpose flags miniz refuses: encrypted, patch data, strong
/// encryption, and (in the directory scan) a masked local header.
const FLAG_ENCRYPTED: u16 = 0x0001;
const FLAG_COMPRESSED_PATCH: u16 = 0x0020;
const FLAG_STRONG_ENCRYPTION: u16 = 0x0040;
const FLAG_LOCAL_DIR_IS_MASKED: u16 = 0x2000;
/// The DOS directory bit of the external attributes.
const DOS_DIRECTORY_ATTRIBUTE: u32 = 0x10;
/// miniz's `MZ_ZIP_MAX_ARCHIVE_FILENAME_SIZE`: names are copied out through
/// a buffer of this size, so PyTorch sees at most 511 bytes of a name.
pub(crate) const MAX_LISTED_NAME: usize = 511;

/// miniz's error codes that its reader can raise, with miniz's own texts
/// (PyTorch shows them after "PytorchStreamReader failed ...").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MinizError {
    /// `MZ_ZIP_NOT_AN_ARCHIVE`.
    NotAnArchive,
    /// `MZ_ZIP_FAILED_FINDING_CENTRAL_DIR`: no end record in the last 64 KiB.
    FailedFindingCentralDir,
    /// `MZ_ZIP_INVALID_HEADER_OR_CORRUPTED`.
    InvalidHeaderOrCorrupted,
    /// `MZ_ZIP_UNSUPPORTED_MULTIDISK`.
    UnsupportedMultidisk,
    /// `MZ_ZIP_TOO_MANY_FILES`.
    TooManyFiles,
    /// `MZ_ZIP_UNSUPPORTED_CDIR_SIZE`.
    UnsupportedCdirSize,
    /// `MZ_ZIP_UNSUPPORTED_ENCRYPTION`.
    UnsupportedEncryption,
    /// `MZ_ZIP_UNSUPPORTED_METHOD`.
    UnsupportedMethod,
    /// `MZ_ZIP_UNSUPPORTED_FEATURE`.
    UnsupportedFeature,
    /// `MZ_ZIP_FILE_READ_FAILED`: a structure reaches past the end of the file.
    FileReadFailed,
    /// `MZ_ZIP_FILE_NOT_FOUND`.
    FileNotFound,
    /// `MZ_ZIP_UNEXPECTED_DECOMPRESSED_SIZE`.
    UnexpectedDecompressedSize,
    /// `MZ_ZIP_DECOMPRESSION_FAILED`.
    DecompressionFailed,
}

impl fmt::Display for MinizError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MinizError::NotAnArchive => "not a ZIP archive",
            MinizError::FailedFindingCentralDir => "failed finding central directory",
            MinizError::InvalidHeaderOrCorrupted => "invalid header or archive is corrupted",
            MinizError::UnsupportedMultidisk => "unsupported multidisk archive",
            MinizError::TooManyFiles => "too many files",
            MinizError::UnsupportedCdirSize => "unsupported central directory size",
            MinizError::UnsupportedEncryption => "unsupported encryption",
            MinizError::UnsupportedMethod => "unsupported method",
            MinizError::UnsupportedFeature => "unsupported feature",
            MinizError::FileReadFailed => "file read failed",
            MinizError::FileNotFound => "file not found",
            MinizError::UnexpectedDecompressedSize => "unexpected decompressed size",
            MinizError::DecompressionFailed => "decompression failed",
        })
    }
}

/// Which zip structure a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZipStructure {
    /// The whole file (too small, or an old preview-release magic number).
    File,
    /// The end-of-central-directory record.
    EndRecord,
    /// The zip64 end-of-central-directory locator.
    Zip64Locator,
    /// The zip64 end-of-central-directory record.
    Zip64EndRecord,
    /// The central directory as a whole (its size or offset).
    CentralDirectory,
    /// The central directory header of entry `index` (0-based).
    CentralHeader {
        /// The entry's position in the central directory.
        index: usize,
    },
    /// The local header of entry `index`.
    LocalHeader {
        /// The entry's position in the central directory.
        index: usize,
    },
    /// The data of entry `index`.
    EntryData {
        /// The entry's position in the central directory.
        index: usize,
    },
}

impl fmt::Display for ZipStructure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZipStructure::File => f.write_str("the file"),
            ZipStructure::EndRecord => f.write_str("the end-of-central-directory record"),
            ZipStructure::Zip64Locator => f.write_str("the zip64 end-of-central-directory locator"),
            ZipStructure::Zip64EndRecord => {
                f.write_str("the zip64 end-of-central-directory record")
            }
            ZipStructure::CentralDirectory => f.write_str("the central directory"),
            ZipStructure::CentralHeader { index } => {
                write!(f, "the central directory header of entry {index}")
            }
            ZipStructure::LocalHeader { index } => write!(f, "the local header of entry {index}"),
            ZipStructure::EntryData { index } => write!(f, "the data of entry {index}"),
        }
    }
}

/// A miniz refusal: what, in which structure, at which byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault {
    pub error: MinizError,
    pub structure: ZipStructure,
    pub offset: u64,
}

fn fault(error: MinizError, structure: ZipStructure, offset: u64) -> Fault {
    Fault {
        error,
        structure,
        offset,
    }
}

/// Little-endian reads that return `None` past the end (a short read).
fn le16(data: &[u8], at: u64) -> Option<u16> {
    let at = usize::try_from(at).ok()?;
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([bytes[0], bytes[1]]))
}

fn le32(data: &[u8], at: u64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn le64(data: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    let bytes = data.get(at..at.checked_add(8)?)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    Some(u64::from_le_bytes(word))
}

/// `len` bytes at `at`, or `None` if the file is shorter (miniz's short read).
fn span(data: &[u8], at: u64, len: u64) -> Option<&[u8]> {
    let at = usize::try_from(at).ok()?;
    let len = usize::try_from(len).ok()?;
    data.get(at..at.checked_add(len)?)
}

/// One central directory entry: the fields of its header as stored.
#[derive(Debug, Clone)]
pub(crate) struct CentralEntry {
    /// Absolute offset of the central header.
    pub header_offset: u64,
    /// The header and its variable parts (name, extra, comment), within the
    /// central directory buffer.
    header: Range<usize>,
    name_len: usize,
    extra_len: usize,
}

/// The central directory, read and indexed as miniz reads it.
#[derive(Debug)]
pub(crate) struct CentralDirectory {
    /// The central directory bytes (miniz copies them into a heap block).
    buffer: Range<usize>,
    entries: Vec<CentralEntry>,
    /// Entry indices in miniz's heap-sorted (ASCII-lowercase) name order.
    sorted: Vec<u32>,
}

/// A record's statistics as `mz_zip_reader_file_stat` returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryStat {
    pub method: u16,
    pub bit_flags: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub size: u64,
    pub local_header_offset: u64,
    pub is_directory: bool,
}

/// Where an entry's data is, as `mz_zip_reader_extract_to_mem` finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataLocation {
    /// miniz returns without touching the output buffer: the entry is a
    /// directory or has no compressed bytes. PyTorch then hands out `size`
    /// bytes of memory it never wrote (zero when `size` is 0).
    Untouched,
    /// The stored or compressed bytes start here.
    At(u64),
}

impl CentralDirectory {
    /// `mz_zip_reader_read_central_dir` on `data`.
    pub fn read(data: &[u8]) -> Result<Self, Fault> {
        use MinizError::*;
        let size = data.len() as u64;
        if size < END_RECORD_SIZE {
            return Err(fault(NotAnArchive, ZipStructure::File, 0));
        }
        let end_offset = locate_end_record(data).ok_or(fault(
            FailedFindingCentralDir,
            ZipStructure::EndRecord,
            size,
        ))?;
        let end = span(data, end_offset, END_RECORD_SIZE).ok_or(fault(
            FileReadFailed,
            ZipStructure::EndRecord,
            end_offset,
        ))?;
        let field16 = |at: u64| le16(end, at).map_or(0, u32::from);
        let mut total_files = field16(10);
        let mut entries_on_this_disk = field16(8);
        let mut num_this_disk = field16(4);
        let mut cdir_disk_index = field16(6);
        let mut cdir_size = le32(end, 12).unwrap_or(0);
        let mut cdir_offset = u64::from(le32(end, 16).unwrap_or(0));

        if let Some(zip64) = read_zip64_records(data, end_offset)? {
            let locator = zip64.locator;
            let record = zip64.record;
            let record_offset = zip64.record_offset;
            let total_disks = le32(locator, 16).unwrap_or(0);
            let z_total = le64(record, 32).unwrap_or(0);
            let z_on_disk = le64(record, 24).unwrap_or(0);
            let z_record_size = le64(record, 4).unwrap_or(0);
            let z_cdir_size = le64(record, 40).unwrap_or(0);
            let at = |structure| move |error| fault(error, structure, record_offset);
            if z_record_size < ZIP64_END_RECORD_SIZE - 12 {
                return Err(at(ZipStructure::Zip64EndRecord)(InvalidHeaderOrCorrupted));
            }
            if total_disks != 1 {
                return Err(fault(
                    UnsupportedMultidisk,
                    ZipStructure::Zip64Locator,
                    end_offset - ZIP64_LOCATOR_SIZE,
                ));
            }
            total_files = u32::try_from(z_total)
                .map_err(|_| at(ZipStructure::Zip64EndRecord)(TooManyFiles))?;
            entries_on_this_disk = u32::try_from(z_on_disk)
                .map_err(|_| at(ZipStructure::Zip64EndRecord)(TooManyFiles))?;
            cdir_size = u32::try_from(z_cdir_size)
                .map_err(|_| at(ZipStructure::Zip64EndRecord)(UnsupportedCdirSize))?;
            num_this_disk = le32(record, 16).unwrap_or(0);
            cdir_disk_index = le32(record, 20).unwrap_or(0);
            cdir_offset = le64(record, 48).unwrap_or(0);
        }

        if total_files != entries_on_this_disk {
            return Err(fault(
                UnsupportedMultidisk,
                ZipStructure::EndRecord,
                end_offset,
            ));
        }
        if (num_this_disk | cdir_disk_index) != 0 && (num_this_disk != 1 || cdir_disk_index != 1) {
            return Err(fault(
                UnsupportedMultidisk,
                ZipStructure::EndRecord,
                end_offset,
            ));
        }
        if u64::from(cdir_size) < u64::from(total_files) * CENTRAL_HEADER_SIZE {
            return Err(fault(
                InvalidHeaderOrCorrupted,
                ZipStructure::CentralDirectory,
                cdir_offset,
            ));
        }
        // miniz adds in 64-bit unsigned arithmetic, wrapping.
        if cdir_offset.wrapping_add(u64::from(cdir_size)) > size {
            return Err(fault(
                InvalidHeaderOrCorrupted,
                ZipStructure::CentralDirectory,
                cdir_offset,
            ));
        }
        let mut directory = CentralDirectory {
            buffer: 0..0,
            entries: Vec::new(),
            sorted: Vec::new(),
        };
        if total_files == 0 {
            return Ok(directory);
        }
        let buffer_start = usize::try_from(cdir_offset)
            .map_err(|_| fault(FileReadFailed, ZipStructure::CentralDirectory, cdir_offset))?;
        let buffer = span(data, cdir_offset, u64::from(cdir_size)).ok_or(fault(
            FileReadFailed,
            ZipStructure::CentralDirectory,
            cdir_offset,
        ))?;
        directory.buffer = buffer_start..buffer_start + buffer.len();
        directory.entries =
            scan_central_headers(data, buffer, cdir_offset, total_files, num_this_disk)?;
        directory.sorted = (0..total_files).collect();
        directory.heap_sort(buffer);
        Ok(directory)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The central header of entry `index`.
    pub fn entry(&self, index: usize) -> Option<&CentralEntry> {
        self.entries.get(index)
    }

    fn header<'d>(&self, data: &'d [u8], entry: &CentralEntry) -> &'d [u8] {
        let start = self.buffer.start + entry.header.start;
        let end = self.buffer.start + entry.header.end;
        data.get(start..end).unwrap_or(&[])
    }

    /// The raw name bytes of entry `index`.
    pub fn name<'d>(&self, data: &'d [u8], index: usize) -> &'d [u8] {
        let Some(entry) = self.entries.get(index) else {
            return &[];
        };
        let header = self.header(data, entry);
        let start = CENTRAL_HEADER_SIZE as usize;
        header.get(start..start + entry.name_len).unwrap_or(&[])
    }

    /// `mz_zip_reader_locate_file` with no flags: the binary search over the
    /// sorted index, ASCII case-insensitive. `key` is used up to its first
    /// NUL byte, as a C string would be.
    pub fn locate(&self, data: &[u8], key: &[u8]) -> Option<usize> {
        let key = key.split(|&b| b == 0).next().unwrap_or(&[]);
        let (mut low, mut high) = (0i64, self.sorted.len() as i64 - 1);
        while low <= high {
            let middle = low + ((high - low) >> 1);
            let index = self.sorted[middle as usize] as usize;
            let name = self.name(data, index);
            match compare_names(name, key) {
                std::cmp::Ordering::Equal => return Some(index),
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle - 1,
            }
        }
        None
    }

    /// `mz_zip_reader_file_stat` of entry `index`, including the errors it
    /// leaves behind for PyTorch's check (`is_file_supported`).
    pub fn stat(&self, data: &[u8], index: usize) -> Result<EntryStat, Fault> {
        use MinizError::*;
        let entry = self.entries.get(index).ok_or(fault(
            FileNotFound,
            ZipStructure::CentralDirectory,
            0,
        ))?;
        let header = self.header(data, entry);
        let at = fault_at(ZipStructure::CentralHeader { index }, entry.header_offset);
        let field16 = |offset: u64| le16(header, offset).unwrap_or(0);
        let field32 = |offset: u64| le32(header, offset).unwrap_or(0);
        let method = field16(10);
        let bit_flags = field16(8);
        let external_attr = field32(38);
        let mut stat = EntryStat {
            method,
            bit_flags,
            crc32: field32(16),
            compressed_size: u64::from(field32(20)),
            size: u64::from(field32(24)),
            local_header_offset: u64::from(field32(42)),
            is_directory: self.name(data, index).last() == Some(&b'/')
                || external_attr & DOS_DIRECTORY_ATTRIBUTE != 0,
        };
        let max32 = u64::from(u32::MAX);
        if stat
            .compressed_size
            .max(stat.size)
            .max(stat.local_header_offset)
            == max32
        {
            let extra_start = CENTRAL_HEADER_SIZE as usize + entry.name_len;
            let extra = header
                .get(extra_start..extra_start + entry.extra_len)
                .unwrap_or(&[]);
            read_zip64_stat(extra, &mut stat).map_err(at)?;
        }
        // `is_file_supported` sets the error PyTorch's `valid()` then sees.
        if method != 0 && method != 8 {
            return Err(at(UnsupportedMethod));
        }
        if bit_flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) != 0 {
            return Err(at(UnsupportedEncryption));
        }
        if bit_flags & FLAG_COMPRESSED_PATCH != 0 {
            return Err(at(UnsupportedFeature));
        }
        Ok(stat)
    }

    /// Where `mz_zip_reader_extract_to_mem` finds entry `index`'s data.
    pub fn locate_data(
        &self,
        data: &[u8],
        index: usize,
        stat: &EntryStat,
    ) -> Result<DataLocation, Fault> {
        use MinizError::*;
        if stat.is_directory || stat.compressed_size == 0 {
            return Ok(DataLocation::Untouched);
        }
        let header_at = stat.local_header_offset;
        let local = fault_at(ZipStructure::LocalHeader { index }, header_at);
        let header = span(data, header_at, LOCAL_HEADER_SIZE).ok_or(local(FileReadFailed))?;
        if le32(header, 0) != Some(LOCAL_HEADER_SIGNATURE) {
            return Err(local(InvalidHeaderOrCorrupted));
        }
        let name_len = u64::from(le16(header, 26).unwrap_or(0));
        let extra_len = u64::from(le16(header, 28).unwrap_or(0));
        let data_at = header_at
            .wrapping_add(LOCAL_HEADER_SIZE)
            .wrapping_add(name_len)
            .wrapping_add(extra_len);
        if data_at.wrapping_add(stat.compressed_size) > data.len() as u64 {
            return Err(local(InvalidHeaderOrCorrupted));
        }
        Ok(DataLocation::At(data_at))
    }

    /// miniz's heap sort of the index by ASCII-lowercased name. Kept as
    /// miniz writes it: for names equal up to case, the order it leaves
    /// decides which entry a lookup finds.
    fn heap_sort(&mut self, buffer: &[u8]) {
        let size = self.sorted.len();
        if size <= 1 {
            return;
        }
        let names: Vec<&[u8]> = self
            .entries
            .iter()
            .map(|entry| {
                let start = entry.header.start + CENTRAL_HEADER_SIZE as usize;
                buffer.get(start..start + entry.name_len).unwrap_or(&[])
            })
            .collect();
        let less = |left: u32, right: u32| name_less(names[left as usize], names[right as usize]);
        let indices = &mut self.sorted;
        let mut start = (size - 2) >> 1;
        loop {
            sift_down(indices, start, size, &less);
            if start == 0 {
                break;
            }
            start -= 1;
        }
        let mut end = size - 1;
        while end > 0 {
            indices.swap(end, 0);
            sift_down(indices, 0, end, &less);
            end -= 1;
        }
    }
}

/// One sift-down of miniz's heap sort over `indices[..end]` from `root`.
fn sift_down(indices: &mut [u32], mut root: usize, end: usize, less: &impl Fn(u32, u32) -> bool) {
    loop {
        let mut child = (root << 1) + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && less(indices[child], indices[child + 1]) {
            child += 1;
        }
        if !less(indices[root], indices[child]) {
            break;
        }
        indices.swap(root, child);
        root = child;
    }
}

fn fault_at(structure: ZipStructure, offset: u64) -> impl Fn(MinizError) -> Fault + Copy {
    move |error| fault(error, structure, offset)
}

fn ascii_lower(byte: u8) -> u8 {
    byte.to_ascii_lowercase()
}

/// `mz_zip_reader_filename_less`.
fn name_less(left: &[u8], right: &[u8]) -> bool {
    let common = left.len().min(right.len());
    for k in 0..common {
        let (l, r) = (ascii_lower(left[k]), ascii_lower(right[k]));
        if l != r {
            return l < r;
        }
    }
    left.len() < right.len()
}

/// `mz_zip_filename_compare`: the stored name against the key.
fn compare_names(stored: &[u8], key: &[u8]) -> std::cmp::Ordering {
    let common = stored.len().min(key.len());
    for k in 0..common {
        let (l, r) = (ascii_lower(stored[k]), ascii_lower(key[k]));
        if l != r {
            return l.cmp(&r);
        }
    }
    stored.len().cmp(&key.len())
}

/// `mz_zip_reader_locate_header_sig`: the last end-record signature with at
/// least 22 bytes after it, scanned backwards in 4 KiB windows that step
/// back 4093 bytes; gives up once a window starts 64 KiB + 22 bytes before
/// the end, or when the next step would go below 0 (miniz's wrap).
fn locate_end_record(data: &[u8]) -> Option<u64> {
    const WINDOW: u64 = 4096;
    let size = data.len() as u64;
    if size < END_RECORD_SIZE {
        return None;
    }
    let mut window_start = size.saturating_sub(WINDOW);
    loop {
        let window_len = WINDOW.min(size - window_start);
        let window = span(data, window_start, window_len)?;
        if window_len >= 4 {
            for i in (0..=window_len - 4).rev() {
                if le32(window, i) == Some(END_RECORD_SIGNATURE)
                    && size - (window_start + i) >= END_RECORD_SIZE
                {
                    return Some(window_start + i);
                }
            }
        }
        if window_start == 0 || size - window_start >= u64::from(u16::MAX) + END_RECORD_SIZE {
            return None;
        }
        // miniz computes `MZ_MAX(cur - 4093, 0)` with an unsigned subtraction:
        // below 4093 it wraps, the next read fails, and the search gives up
        // (so an end record in the first bytes of a long tail is not found).
        window_start = window_start.checked_sub(WINDOW - 3)?;
    }
}

struct Zip64Records<'d> {
    locator: &'d [u8],
    record: &'d [u8],
    record_offset: u64,
}

/// The zip64 locator just before the end record and the zip64 end record it
/// points at, when both signatures are there (miniz checks nothing else
/// before trusting them).
fn read_zip64_records(data: &[u8], end_offset: u64) -> Result<Option<Zip64Records<'_>>, Fault> {
    if end_offset < ZIP64_LOCATOR_SIZE + ZIP64_END_RECORD_SIZE {
        return Ok(None);
    }
    let locator_offset = end_offset - ZIP64_LOCATOR_SIZE;
    let Some(locator) = span(data, locator_offset, ZIP64_LOCATOR_SIZE) else {
        return Ok(None);
    };
    if le32(locator, 0) != Some(ZIP64_LOCATOR_SIGNATURE) {
        return Ok(None);
    }
    let record_offset = le64(locator, 8).unwrap_or(0);
    if record_offset > data.len() as u64 - ZIP64_END_RECORD_SIZE {
        return Err(fault(
            MinizError::NotAnArchive,
            ZipStructure::Zip64Locator,
            locator_offset,
        ));
    }
    let Some(record) = span(data, record_offset, ZIP64_END_RECORD_SIZE) else {
        return Ok(None);
    };
    if le32(record, 0) != Some(ZIP64_END_RECORD_SIGNATURE) {
        return Ok(None);
    }
    Ok(Some(Zip64Records {
        locator,
        record,
        record_offset,
    }))
}

/// The per-entry loop of `mz_zip_reader_read_central_dir`.
fn scan_central_headers(
    data: &[u8],
    buffer: &[u8],
    cdir_offset: u64,
    total_files: u32,
    num_this_disk: u32,
) -> Result<Vec<CentralEntry>, Fault> {
    use MinizError::*;
    let max32 = u64::from(u32::MAX);
    let mut entries = Vec::with_capacity(total_files.min(1 << 20) as usize);
    let mut position = 0usize;
    for index in 0..total_files as usize {
        let remaining = buffer.len() - position;
        let header_offset = cdir_offset + position as u64;
        let at = fault_at(ZipStructure::CentralHeader { index }, header_offset);
        let p = &buffer[position..];
        if (remaining as u64) < CENTRAL_HEADER_SIZE || le32(p, 0) != Some(CENTRAL_HEADER_SIGNATURE)
        {
            return Err(at(InvalidHeaderOrCorrupted));
        }
        let field16 = |offset: u64| u64::from(le16(p, offset).unwrap_or(0));
        let field32 = |offset: u64| u64::from(le32(p, offset).unwrap_or(0));
        let mut compressed_size = field32(20);
        let mut size = field32(24);
        let mut local_header_offset = field32(42);
        let name_len = field16(28);
        let extra_len = field16(30);
        let comment_len = field16(32);
        if extra_len != 0 && compressed_size.max(size).max(local_header_offset) == max32 {
            // miniz's quirk: an extra field reaching past the directory is
            // read from the file at the directory's start, not the entry's.
            let extra = if CENTRAL_HEADER_SIZE + name_len + extra_len > remaining as u64 {
                span(
                    data,
                    cdir_offset + CENTRAL_HEADER_SIZE + name_len,
                    extra_len,
                )
                .ok_or(at(FileReadFailed))?
            } else {
                let start = (CENTRAL_HEADER_SIZE + name_len) as usize;
                &p[start..start + extra_len as usize]
            };
            scan_zip64_extra(
                extra,
                &mut compressed_size,
                &mut size,
                &mut local_header_offset,
            )
            .map_err(at)?;
        }
        if compressed_size != max32 && size != max32 {
            // miniz reads the method as a 32-bit word (method and time).
            let stored = field32(10) == 0;
            if (stored && size != compressed_size) || (size != 0 && compressed_size == 0) {
                return Err(at(InvalidHeaderOrCorrupted));
            }
        }
        let disk_index = field16(34);
        if disk_index == u64::from(u16::MAX)
            || (disk_index != u64::from(num_this_disk) && disk_index != 1)
        {
            return Err(at(UnsupportedMultidisk));
        }
        if compressed_size != max32
            && local_header_offset
                .wrapping_add(LOCAL_HEADER_SIZE)
                .wrapping_add(compressed_size)
                > data.len() as u64
        {
            return Err(at(InvalidHeaderOrCorrupted));
        }
        if field16(8) as u16 & FLAG_LOCAL_DIR_IS_MASKED != 0 {
            return Err(at(UnsupportedEncryption));
        }
        let total = CENTRAL_HEADER_SIZE + name_len + extra_len + comment_len;
        if total > remaining as u64 {
            return Err(at(InvalidHeaderOrCorrupted));
        }
        entries.push(CentralEntry {
            header_offset,
            header: position..position + total as usize,
            name_len: name_len as usize,
            extra_len: extra_len as usize,
        });
        position += total as usize;
    }
    Ok(entries)
}

/// The zip64 extra-field walk of `mz_zip_reader_read_central_dir`: finds
/// field 1 and reads the 64-bit values it can, bounded by what is left of
/// the whole extra data (not the field's own size), as miniz does.
fn scan_zip64_extra(
    extra: &[u8],
    compressed_size: &mut u64,
    size: &mut u64,
    local_header_offset: &mut u64,
) -> Result<(), MinizError> {
    let max32 = u64::from(u32::MAX);
    let mut remaining = extra.len() as u64;
    let mut at = 0u64;
    let mut found = false;
    while remaining > 0 {
        if remaining < 4 {
            return Err(MinizError::InvalidHeaderOrCorrupted);
        }
        let field_id = u32::from(le16(extra, at).unwrap_or(0));
        let field_size = u64::from(le16(extra, at + 2).unwrap_or(0));
        if field_size + 4 > remaining {
            return Err(MinizError::InvalidHeaderOrCorrupted);
        }
        if field_id == ZIP64_EXTRA_FIELD {
            found = true;
            break;
        }
        at += 4 + field_size;
        remaining -= 4 + field_size;
    }
    if found && remaining >= 4 {
        remaining -= 4;
        at += 4;
        for value in [size, compressed_size, local_header_offset] {
            if *value == max32 && remaining >= 8 {
                *value = le64(extra, at).unwrap_or(0);
                remaining -= 8;
                at += 8;
            }
        }
    }
    Ok(())
}

/// The zip64 part of `mz_zip_file_stat_internal`: here a field too short
/// for a value it must hold is an error, and values are read from the
/// field's own data.
fn read_zip64_stat(extra: &[u8], stat: &mut EntryStat) -> Result<(), MinizError> {
    let max32 = u64::from(u32::MAX);
    let mut remaining = extra.len() as u64;
    let mut at = 0u64;
    while remaining > 0 {
        if remaining < 4 {
            return Err(MinizError::InvalidHeaderOrCorrupted);
        }
        let field_id = u32::from(le16(extra, at).unwrap_or(0));
        let field_size = u64::from(le16(extra, at + 2).unwrap_or(0));
        if field_size + 4 > remaining {
            return Err(MinizError::InvalidHeaderOrCorrupted);
        }
        if field_id == ZIP64_EXTRA_FIELD {
            let mut field_at = at + 4;
            let mut field_remaining = field_size;
            for value in [
                &mut stat.size,
                &mut stat.compressed_size,
                &mut stat.local_header_offset,
            ] {
                if *value == max32 {
                    if field_remaining < 8 {
                        return Err(MinizError::InvalidHeaderOrCorrupted);
                    }
                    *value = le64(extra, field_at).unwrap_or(0);
                    field_at += 8;
                    field_remaining -= 8;
                }
            }
            return Ok(());
        }
        at += 4 + field_size;
        remaining -= 4 + field_size;
    }
    Ok(())
}
